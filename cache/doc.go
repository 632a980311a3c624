// Package cache is the pure library behind KV-cache-aware endpoint picking.
//
// It owns five things, in request order:
//
//   - Extract / ModelOf: reading the model, cache_salt and a canonical prompt
//     text from a bounded prefix of an OpenAI-shaped JSON body, with a small
//     hand-written scanner that appends into a caller buffer;
//   - Seed / Blocks: chained xxhash64 block hashes of that text, seeded by
//     model and salt so different models and salts never share a hash;
//   - Index: per pool, a per-endpoint LRU of block hashes with a reverse map,
//     answering "how many leading blocks does each endpoint hold" (Match) and
//     learning from picks (Record);
//   - PlacementKey / Place: rendezvous hashing with bounded loads, so that
//     kvgate replicas agree where a prefix nobody holds should go;
//   - UsageScanner: on the way back, the token usage an OpenAI-shaped
//     response reports (JSON or SSE), read incrementally from the bytes
//     passing through with a bounded state, never buffering the body.
//
// It must not do I/O, read configuration files, scrape metrics, keep global
// state, or decide the final pick: package pick combines the prefix score
// with load and queue scorers. Everything here is safe for concurrent use as
// documented per type, and the request path (Extract, Blocks, Match, Place)
// does not allocate once its buffers are warm.
package cache
