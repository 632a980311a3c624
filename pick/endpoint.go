package pick

import (
	"math"
	"sync/atomic"
	"time"
)

// Endpoint is the long-lived state of one upstream endpoint, in plain and
// inference pools alike: proxy-side in-flight counts (taken at pick, given
// back at the end of the stream), passive-health ejection, and the last
// metrics scraped from a model server. It is created by a Pool, keyed by
// address, and survives configuration reloads; the proxy's transport for the
// address points to it, so this is the one place that state lives.
//
// Concurrency: every field is an atomic; any number of goroutines may read
// and update an Endpoint at once. The request path only loads and adds.
type Endpoint struct {
	// Addr is the endpoint's host:port. Read-only.
	Addr string

	slot  int // index slot in the pool's cache.Index; set before the Endpoint is published
	tslot int // slot in the pool's cache.TokenIndex (precise mode); set likewise

	inflight     atomic.Int64 // proxy-side requests between pick and end of stream
	inflightToks atomic.Int64 // proxy-side prompt tokens of those requests
	fails        atomic.Int32 // connection failures in a row
	downUntil    atomic.Int64 // unix nanos until which the endpoint is ejected (passive health)
	suspect      atomic.Bool  // the last scrape failed

	scrapedAt atomic.Int64  // unix nanos of the last good scrape; 0 never
	waiting   atomic.Int64  // scraped queue depth
	running   atomic.Int64  // scraped running requests
	batch     atomic.Int64  // the most running requests scraped while others waited: its batch (sentQueued)
	kv        atomic.Uint64 // float64 bits of KV utilisation in [0,1]; NaN unknown
	gpuBlocks atomic.Int64  // scraped num_gpu_blocks; 0 unknown
	lora      atomic.Pointer[LoRAInfo]

	picks  [numReasons]atomic.Uint64
	recent atomic.Int64 // picks among its pool's last RecentWindow picks (recentWindow)
	since  atomic.Int64 // picks since the last good scrape (not yet in its counts)
	ended  atomic.Int64 // Ends since the last good scrape (perhaps still in its counts; cost.go)

	// ttft holds recent observed TTFTs (outcome.go), made on the first
	// one: 1 KB that a pool of 10,000 discovered endpoints, most of them
	// never used by this replica, would otherwise hold for each.
	ttft       atomic.Pointer[latencyRing]
	promptToks atomic.Uint64 // prompt tokens reported in usage (Observe)
	cachedToks atomic.Uint64 // of those, cached tokens
	cost       costModel     // learned TTFT model of all its requests (cost.go)
	// models holds per-model TTFT models (cost.go), made on the first
	// pick that names a model, for the reason ttft is made lazily.
	models atomic.Pointer[modelCosts]
}

// LoRAInfo is what a vLLM server reports in lora_requests_info. It is
// immutable once published.
type LoRAInfo struct {
	Running []string // adapters with running requests
	Waiting []string // adapters with waiting requests
	Max     int      // max_lora: how many adapters may be loaded at once
}

func newEndpoint(addr string) *Endpoint {
	e := &Endpoint{Addr: addr, slot: -1, tslot: -1}
	e.kv.Store(math.Float64bits(math.NaN()))
	return e
}

// Begin counts a request picked for this endpoint with its prompt tokens.
// Pool.Pick and Pool.Balance call it for the endpoint they choose; every
// Begin must be matched by exactly one End with the same tokens.
func (e *Endpoint) Begin(tokens int) {
	e.inflight.Add(1)
	e.since.Add(1)
	e.inflightToks.Add(int64(tokens))
}

// End undoes one Begin.
func (e *Endpoint) End(tokens int) {
	e.ended.Add(1)
	e.inflight.Add(-1)
	e.inflightToks.Add(-int64(tokens))
}

// Inflight returns the proxy-side in-flight requests and prompt tokens.
func (e *Endpoint) Inflight() (requests, tokens int64) {
	return e.inflight.Load(), e.inflightToks.Load()
}

// Passive health: after EjectAfterFails connection failures in a row an
// endpoint is ejected (skipped by the healthy filter) for EjectFor.
const (
	EjectAfterFails = 3
	EjectFor        = 5 * time.Second
)

// ObserveConnect records the outcome of a connection attempt to the
// endpoint: a success clears the failure count, the EjectAfterFails-th
// failure in a row ejects it for EjectFor.
func (e *Endpoint) ObserveConnect(failed bool) {
	if !failed {
		if e.fails.Load() != 0 {
			e.fails.Store(0)
		}
		return
	}
	if e.fails.Add(1) >= EjectAfterFails {
		e.downUntil.Store(time.Now().Add(EjectFor).UnixNano())
		e.fails.Store(0)
	}
}

// Ready reports whether the endpoint is not ejected at unixNanos.
func (e *Endpoint) Ready(unixNanos int64) bool { return e.downUntil.Load() <= unixNanos }

// MarkSuspect records a failed scrape (true) or a good one (false).
func (e *Endpoint) MarkSuspect(s bool) {
	if e.suspect.Load() != s {
		e.suspect.Store(s)
	}
}

// Suspect reports whether the last scrape failed.
func (e *Endpoint) Suspect() bool { return e.suspect.Load() }

// store publishes a successful scrape taken at unixNanos and clears suspect
// (Pool.StoreScrape).
func (e *Endpoint) store(m *ServerMetrics, unixNanos int64) {
	e.waiting.Store(int64(min(m.Waiting, 1e9)))
	e.running.Store(int64(min(m.Running, 1e9)))
	for r := int64(min(m.Running, 1e9)); m.Waiting > 0; {
		if b := e.batch.Load(); r <= b || e.batch.CompareAndSwap(b, r) {
			break
		}
	}
	kv := math.NaN()
	if m.HasKV {
		kv = min(max(m.KV, 0), 1)
	}
	e.kv.Store(math.Float64bits(kv))
	if m.NumGPUBlocks > 0 {
		e.gpuBlocks.Store(int64(m.NumGPUBlocks))
	}
	if m.HasLoRA {
		old := e.lora.Load()
		if old == nil || old.Max != m.LoRA.Max || !equalStrings(old.Running, m.LoRA.Running) || !equalStrings(old.Waiting, m.LoRA.Waiting) {
			l := &LoRAInfo{Running: append([]string(nil), m.LoRA.Running...), Waiting: append([]string(nil), m.LoRA.Waiting...), Max: m.LoRA.Max}
			e.lora.Store(l)
		}
	}
	e.since.Store(0)
	e.ended.Store(0)
	e.scrapedAt.Store(unixNanos)
	e.MarkSuspect(false)
}

// Scraped is one endpoint's scraped load, as of At (unix nanos; 0 never).
type Scraped struct {
	Waiting, Running int64
	KV               float64 // NaN when the server does not report it
	NumGPUBlocks     int64
	At               int64
}

// Scraped returns the last stored scrape.
func (e *Endpoint) Scraped() Scraped {
	return Scraped{
		Waiting: e.waiting.Load(), Running: e.running.Load(),
		KV: math.Float64frombits(e.kv.Load()), NumGPUBlocks: e.gpuBlocks.Load(), At: e.scrapedAt.Load(),
	}
}

// Picks returns how many requests were picked for this endpoint for reason.
func (e *Endpoint) Picks(r Reason) uint64 {
	if int(r) >= len(e.picks) {
		return 0
	}
	return e.picks[r].Load()
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Recent returns how many of its pool's last RecentWindow picks chose e.
func (e *Endpoint) Recent() int64 { return e.recent.Load() }
