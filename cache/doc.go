// Package cache is the pure library behind KV-cache-aware endpoint picking.
//
// It owns three things, in request order:
//
//   - Seed / Blocks: chained xxhash64 block hashes of a prompt text, seeded by
//     model and salt so different models and salts never share a hash;
//   - Index: per pool, a per-endpoint LRU of block hashes with a reverse map,
//     answering "how many leading blocks does each endpoint hold" (Match) and
//     learning from picks (Record);
//   - PlacementKey / Place: rendezvous hashing with bounded loads, so that
//     kvgate replicas agree where a prefix nobody holds should go.
//
// For precise mode it also owns kvgate's own hash over token blocks
// (TokenSeed, TokenBlocks) and TokenIndex, the per-endpoint record of the
// blocks an endpoint's KV events say it caches, each rehashed from its
// token ids and chained on its parent (engine hashes name blocks, never
// match prompts), with the liveness rule that decides when it is trusted.
//
// The prompt text, model and cache_salt it hashes come from package openai
// (openai.Extract); the proxy glues the two, so cache takes plain bytes and
// strings and knows nothing of request or response bodies.
//
// It must not read or parse request or response bodies (that is package
// openai), do I/O, read configuration files, scrape metrics, keep global
// state, or decide the final pick: package pick combines the prefix
// score with load and queue scorers. Everything here is safe for concurrent
// use as documented per type, and the request path (Blocks, Match, Place)
// does not allocate once its buffers are warm.
package cache
