// Package sim is a GPU-free stand-in for a vLLM OpenAI-compatible model server,
// used by kvgate's tests, the trace-replay benchmark and the demo.
//
// It owns: the HTTP surface (POST /v1/chat/completions, POST /v1/completions,
// POST /tokenize, GET /v1/models, GET /metrics, GET /health), a stand-in
// tokenizer, a paged prefix cache with vLLM's accounting and its KV events in
// vLLM's wire format, and a timing model that makes time to
// first token depend on queueing and on prefix-cache hits. It must not import
// any other kvgate package, must not read hint headers (a request's cache
// result is computed only from the body it received), and must not need a GPU,
// a network outside loopback, or a real model.
//
// # Tokenizer
//
// One token is 4 bytes of prompt text (CharsPerToken), rounded up:
// prompt_tokens = ceil(len(text)/4). The text is what the server received:
//
//   - /v1/completions: the prompt string; a list of strings is joined in order
//     with no separator and answered with one choice. Token-id prompts are
//     rejected.
//   - /v1/chat/completions: a fixed template over the messages, for each one
//     "<|" + role + "|>\n" + content + "<|end|>\n", followed by
//     "<|assistant|>\n". Content is a string or a list of parts whose "text"
//     fields are concatenated; parts without text (images) add nothing.
//
// Output tokens are 4-byte words from a small fixed vocabulary, so that
// completion_tokens and the length of the generated text agree.
//
// # Prefix cache
//
// The cache is a pool of NumGPUBlocks blocks of BlockTokens (16) tokens, that
// is BlockChars (64) bytes of prompt text. Each full block of the prompt is
// named by a chained xxhash64: the seed is xxhash64(model + "\x00" +
// cache_salt), and block i hashes the previous hash (8 bytes, little endian)
// followed by its 64 bytes. Requests with different salts or models therefore
// never share a block.
//
// When a request is admitted it looks up its leading block hashes; the run of
// hits from the start is its cached prefix, and prompt_tokens_details.
// cached_tokens = 16 × hits. As in vLLM, the last prompt token is always
// computed, so at most floor((prompt_tokens-1)/16) blocks can hit. The request
// then holds ceil((prompt_tokens+max_tokens)/16) blocks until it ends: the hit
// blocks (shared, pinned) and fresh ones. After prefill every full prompt
// block is registered under its hash. When the request ends its hashed blocks
// become evictable, deepest block first in eviction order, and the least
// recently used evictable block is dropped whenever fresh blocks are needed.
// A request waits in the queue while the blocks it needs are not free, and one
// that could never fit (more blocks than NumGPUBlocks) is rejected with 400.
//
// vllm:prefix_cache_queries_total counts prompt tokens looked up and
// vllm:prefix_cache_hits_total the cached tokens among them, as vLLM counts
// them. vllm:kv_cache_usage_perc (and its older name
// vllm:gpu_cache_usage_perc) is the fraction 0..1 of the pool held by running
// requests (their private blocks plus the pinned hashed blocks); cached blocks
// that no running request holds are free-but-reusable and do not count, which
// is vLLM's definition (1 - free/total, cached idle blocks being free).
//
// # Token ids, /tokenize and KV events
//
// The token id of each 4-byte piece of text is those bytes read as a
// little-endian uint32 (TokenIDs; the last piece zero-padded), so equal text
// gives equal ids. POST /tokenize takes {"model", "messages"} (rendered with
// the chat template above) or {"model", "prompt"} and answers {"count",
// "max_model_len", "tokens"}, as vLLM does.
//
// With Config.KVEvents.Endpoint set, Start opens a ZMQ PUB socket (and a
// ROUTER socket for Config.KVEvents.Replay) and publishes what vLLM's
// ZmqEventPublisher publishes: multipart messages [topic, 8-byte big-endian
// sequence number, msgpack KVEventBatch]. The batch and its events are
// msgpack maps as msgspec writes current vLLM's structs: {"ts",
// "events", "data_parallel_rank"}, each event tagged by "type". A batch is
// sent for each admission that evicted blocks (BlockRemoved with their
// hashes) and each commit that registered new blocks (one BlockStored per
// run of consecutive new blocks, with its parent's hash, its token ids and
// block_size 16). The ROUTER answers [identity, "", start seq] with every
// kept batch from start seq (BufferSteps, default 10000) then [identity, "",
// -1, ""]. KVPublisher.DropNext withholds batches from the PUB socket (they
// stay replayable) to force gaps in tests.
//
// # Timing model
//
// Every duration in Config is multiplied by Config.TimeScale. A zero duration
// means "instantaneous"; DefaultConfig gives values of the order of an 8B model
// on one modern GPU.
//
//   - At most MaxBatch requests run at once; the others wait in one FIFO queue
//     (vllm:num_requests_waiting). The head of the queue is admitted when a
//     slot and its blocks are free; nothing behind it overtakes it.
//   - Prefill takes PrefillBase + PrefillPerToken × (prompt_tokens −
//     cached_tokens). The first output token is sent when prefill ends, so
//     time to first token = queueing + prefill, and a cache hit shortens it.
//   - Each further token takes DecodePerToken + DecodePerRunning × (running − 1),
//     where running is the number of running requests at that step.
//   - Streams send one SSE event per TokensPerEvent tokens.
//   - Output length is max_tokens (or max_completion_tokens, or
//     DefaultMaxTokens). With StopEarly set and ignore_eos not set, it is
//     instead a deterministic length in 1..max_tokens drawn from the prompt
//     hash, ending with finish_reason "stop".
//
// A client that goes away (or a Close) cancels its request at the next step:
// it leaves the queue or frees its batch slot and blocks at once.
package sim
