// Package pick owns endpoint picking for every pool, plain or inference: the
// state of each upstream endpoint (Endpoint: in-flight requests and prompt
// tokens, passive-health ejection, the metrics last scraped from a model
// server), a pool's endpoints by address with its prefix index (Pool), and the
// pipeline that chooses among them: filters, then weighted scorers, then one
// picker.
//
// Plugins and presets. Every filter, scorer and picker is registered once,
// by name, with its kind, a one-line doc and a constructor (the var blocks
// of filters.go, scorers.go and pickers.go; see Plugins). Presets
// (presets.go) are named pipelines made of registered plugins; a pool's
// configuration names one for inference picking (Options.Preset) and one,
// marked Balancer, for its balancer (Options.Balancer), which picks every
// request of a plain pool and the retries and mirrors of any pool. Package
// config validates names against PresetNames, BalancerNames and
// Names(KindScorer), and lists them from there in its messages.
//
// Affinity. In affinity mode (the prefix-affinity preset) the endpoint that
// caches the longest leading part of the prompt keeps it unless that would
// put it over the load bound; a prompt no endpoint holds past a shared prefix
// is placed by consistent hashing with bounded loads, so replicas agree. The
// bound weighs each endpoint's share of the pool's last RecentWindow picks
// (and, against bursts, its in-flight requests past the queue threshold),
// stretched by how much of the prompt the endpoint caches.
//
// Precise mode (precise.go). A pool also keeps a cache.TokenIndex that the
// proxy's KV event subscribers (package kvevents) fill with what each
// endpoint reports it caches. A request carrying token blocks
// (PickRequest.TokenBlocks, from the model server's tokenizer) is matched
// against it; each endpoint whose events are live gets its real cached
// prefix as Candidate.Matched (in the prompt's text blocks, so scorers,
// placement and the load bound read it unchanged) and CachedTokens, the
// others keep the approximate index's estimate.
//
// Latency. The latency preset (cost.go) predicts each endpoint's time to
// first token, TTFT = base + perToken × uncached prompt tokens + perAhead ×
// requests ahead, with the three coefficients learned per endpoint and per
// model (the first four models an endpoint serves), online, from the
// replies the proxy reports (Endpoint.Observe with the pick's Prediction).
// It sends a prompt to the holder of its longest prefix (a new prompt: to
// its consistent placement) unless another endpoint's prediction is smaller
// by more than a tolerance (three times faster; twice against a
// placement): a holder or placement whose queue or prefill rate makes it
// slow gives way. Prefix-affinity's load bound moves a conversation off a
// holder only while the move is predicted cheap (at most twice the
// holder's TTFT: a young conversation). Picks are also charged for what
// they would evict, and a prefix most endpoints hold does not decide a
// placement. The model is linear; cost.go says what it cannot see.
//
// Accounting. A pick (Pool.Pick, Pool.Balance) calls Begin on the endpoint it
// returns; the caller calls End with the same tokens exactly once, when the
// stream ends or before a retry picks again. Endpoints and their counts live
// outside configuration snapshots and survive reloads (Pool.Configure swaps
// the pipelines atomically).
//
// The package must not do I/O (the proxy fetches metrics pages and hands
// the bytes to ParseMetrics), read configuration (it takes Options, which the
// proxy fills from package config, and must not import config, which imports
// it to validate names), hold defaults of its own (config/defaults.go
// declares every one, the default preset and balancer names included, and
// config's tests check that those names are registered here; Options says
// what a value outside its range does), know about HTTP or the proxy's
// engines and exchanges, or take a pool-wide lock or allocate on the request
// path: a pick loads atomics and takes only the prefix index's short locks.
package pick
