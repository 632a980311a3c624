// Package loadgen replays inference workloads against kvgate and a pool of
// simulated model servers, and reports what an endpoint picker achieved.
//
// It owns: reading Mooncake-format traces (ReadTrace, LoadTrace), turning
// their block hash ids into deterministic prompt text (BlockText, PromptText),
// a synthetic conversation workload that needs no files (Synthetic), an
// OpenAI streaming client that measures time to first token (Client), and a
// harness that starts simulators and kvgate in process, replays a workload
// through them once per scenario and summarises the result (Run, Report,
// WriteMarkdown, WriteSVG).
//
// It must not change how kvgate picks endpoints (it only writes
// configuration), must not read files other than the trace it is given, and
// must not reach beyond loopback. The benchmark program (benchmarks/replay)
// and `kvgate demo` are thin front-ends over it.
//
// # Text
//
// A trace names each 512-token block of a prompt by a hash id. BlockText(id)
// is BlockChars (512 tokens × 4 bytes) bytes of words drawn from a fixed
// vocabulary by a generator seeded with the id, so equal ids give equal text
// and distinct ids give distinct text. PromptText joins the blocks of a
// request and cuts the last one so that the prompt is exactly
// input_length × 4 bytes, which is input_length tokens for the simulator's
// stand-in tokenizer (one token per 4 bytes). The simulator's chat template
// adds a few tokens around the message.
package loadgen
