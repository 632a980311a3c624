// Package openai reads and rewrites the bodies of OpenAI-shaped API requests
// and responses: it is the one place in kvgate that knows their JSON.
//
// It owns, in request order:
//
//   - Model / RewriteModel: the top-level "model" string of a request body
//     (for model-match routes, read from a bounded prefix) and its
//     replacement by a backend's model rewrite, every other byte kept;
//   - Extract / Prompt: the model, the cache_salt and a canonical prompt text
//     read from a bounded prefix of a chat, completions, responses or
//     embeddings request, for prefix hashing (package cache hashes it);
//   - UsageScanner, ReportsUsage, UsageModeOf: on the way back, the token
//     usage a response reports, in one JSON object or a text/event-stream,
//     read incrementally from the bytes passing through with a bounded state.
//
// Everything is built on one small JSON scanner (scan.go) that works on a
// byte slice, validates what it reads, tells a cut body (errEOF) from a
// broken one (errSyntax), and appends into caller buffers. Each reader is
// fuzzed against encoding/json (FuzzExtract, FuzzRewriteModel,
// FuzzUsageScanner; corpora under testdata/fuzz).
//
// The package must not import any other kvgate package but internal/jsonstr
// (the one JSON string writer, itself a leaf): it is a leaf, and the proxy glues it to router (which calls Model through its Request view)
// and to cache (which hashes Prompt.Text). It must not do I/O, read
// configuration or keep global state; it must not keep a reference to a body
// after a call returns, nor modify one. Reading must not allocate beyond
// what each function documents: Extract and UsageScanner do not allocate
// once warm, Model allocates only the string it returns and RewriteModel
// only the body it returns. All functions are safe for concurrent use on
// distinct values.
package openai
