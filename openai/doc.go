// Package openai reads and rewrites the bodies of OpenAI-shaped API requests
// and responses: the one place in kvgate that knows their JSON.
//
// It owns:
//
//   - Extract: the model, the cache_salt and a canonical prompt text read
//     from a bounded prefix of a request body (chat, completions, responses,
//     embeddings), for prefix hashing;
//   - UsageScanner: the token usage a response reports (one JSON object or a
//     text/event-stream), read incrementally from the bytes passing through;
//
// all on one small, allocation-free JSON scanner (scan.go) that appends into
// caller buffers.
//
// It must not import any other kvgate package (it is a leaf: the proxy glues
// it to cache and router), do I/O, read configuration, keep global state, or
// keep a reference to a body after a call returns. Reading must not allocate
// beyond what each function documents.
package openai
