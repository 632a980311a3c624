package router

import (
	"math"
	"sync/atomic"
)

// Endpoint is the long-lived picking state of one model-server endpoint:
// proxy-side in-flight counts (changed at pick and at the end of the stream)
// and the last metrics scraped from the server. It is created by a
// PickerPool, keyed by address, and survives configuration reloads.
//
// Concurrency: every field is an atomic; any number of goroutines may read
// and update an Endpoint at once. The request path only loads and adds.
type Endpoint struct {
	// Addr is the endpoint's host:port. Read-only.
	Addr string

	slot int // index slot in the pool's cache.Index; written under PickerPool.mu

	inflight     atomic.Int64 // proxy-side requests between pick and end of stream
	inflightToks atomic.Int64 // proxy-side prompt tokens of those requests
	downUntil    atomic.Int64 // unix nanos until which the endpoint is ejected (passive health)
	suspect      atomic.Bool  // the last scrape failed

	scrapedAt atomic.Int64  // unix nanos of the last good scrape; 0 never
	waiting   atomic.Int64  // scraped queue depth
	running   atomic.Int64  // scraped running requests
	kv        atomic.Uint64 // float64 bits of KV utilisation in [0,1]; NaN unknown
	gpuBlocks atomic.Int64  // scraped num_gpu_blocks; 0 unknown
	lora      atomic.Pointer[LoRAInfo]

	picks  [numReasons]atomic.Uint64
	recent atomic.Int64 // picks among its pool's last RecentWindow picks (recentWindow)
	since  atomic.Int64 // picks since the last good scrape (not yet in its counts)
}

// LoRAInfo is what a vLLM server reports in lora_requests_info. It is
// immutable once published.
type LoRAInfo struct {
	Running []string // adapters with running requests
	Waiting []string // adapters with waiting requests
	Max     int      // max_lora: how many adapters may be loaded at once
}

func newEndpoint(addr string) *Endpoint {
	e := &Endpoint{Addr: addr, slot: -1}
	e.kv.Store(math.Float64bits(math.NaN()))
	return e
}

// Begin counts a request picked for this endpoint with its prompt tokens.
// Every Begin must be matched by exactly one End with the same tokens.
func (e *Endpoint) Begin(tokens int) {
	e.inflight.Add(1)
	e.since.Add(1)
	e.inflightToks.Add(int64(tokens))
}

// End undoes one Begin.
func (e *Endpoint) End(tokens int) {
	e.inflight.Add(-1)
	e.inflightToks.Add(-int64(tokens))
}

// Inflight returns the proxy-side in-flight requests and prompt tokens.
func (e *Endpoint) Inflight() (requests, tokens int64) {
	return e.inflight.Load(), e.inflightToks.Load()
}

// SetDownUntil records passive-health ejection: the endpoint is unhealthy
// until unixNanos. Stores only on change, so callers may mirror it per request.
func (e *Endpoint) SetDownUntil(unixNanos int64) {
	if e.downUntil.Load() != unixNanos {
		e.downUntil.Store(unixNanos)
	}
}

// MarkSuspect records a failed scrape (true) or a good one (false).
func (e *Endpoint) MarkSuspect(s bool) {
	if e.suspect.Load() != s {
		e.suspect.Store(s)
	}
}

// Suspect reports whether the last scrape failed.
func (e *Endpoint) Suspect() bool { return e.suspect.Load() }

// Store publishes a successful scrape taken at unixNanos and clears suspect.
func (e *Endpoint) Store(m *ServerMetrics, unixNanos int64) {
	e.waiting.Store(int64(min(m.Waiting, 1e9)))
	e.running.Store(int64(min(m.Running, 1e9)))
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

// LoRA returns the last scraped adapter info, nil when none was reported.
func (e *Endpoint) LoRA() *LoRAInfo { return e.lora.Load() }

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
