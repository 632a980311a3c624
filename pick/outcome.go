package pick

import (
	"slices"
	"sync/atomic"
	"time"
)

// Outcome is what the proxy saw of one finished request to an endpoint. The
// proxy reports it once per try that reached the endpoint and got a reply
// (Endpoint.Observe), after the response body ended.
type Outcome struct {
	// TTFT is the time from the request's start at the proxy to the first
	// response body byte read from the endpoint; 0 when no body byte came
	// (or the reply was not watched).
	TTFT time.Duration
	// Duration is the time from the request's start to the end of the body.
	Duration time.Duration
	// PromptTokens, CachedTokens and CompletionTokens come from the
	// response's usage object; all 0 when it had none.
	PromptTokens, CachedTokens, CompletionTokens int
	// Status is the HTTP status the endpoint answered with.
	Status int
}

// ttftWindow is the number of recent TTFT samples an endpoint keeps for its
// quantiles (bounded memory: 4 bytes a sample).
const ttftWindow = 256

// latencyRing keeps the last ttftWindow TTFTs in microseconds. Writers race
// benignly: each sample goes to its own slot; a reader sees a mix of samples
// from about the same moment, which is all a recent quantile needs.
type latencyRing struct {
	n    atomic.Uint64
	usec [ttftWindow]atomic.Uint32
}

func (r *latencyRing) add(d time.Duration) {
	us := d.Microseconds()
	if us < 1 {
		us = 1
	}
	if us > 1<<32-1 {
		us = 1<<32 - 1
	}
	i := r.n.Add(1) - 1
	r.usec[i%ttftWindow].Store(uint32(us))
}

// quantiles returns the q-quantiles of the kept samples and their count.
func (r *latencyRing) quantiles(qs ...float64) ([]time.Duration, int) {
	n := min(r.n.Load(), ttftWindow)
	s := make([]uint32, 0, n)
	for i := range n {
		if v := r.usec[i].Load(); v != 0 {
			s = append(s, v)
		}
	}
	out := make([]time.Duration, len(qs))
	if len(s) == 0 {
		return out, 0
	}
	slices.Sort(s)
	for i, q := range qs {
		k := int(q*float64(len(s)-1) + 0.5)
		out[i] = time.Duration(s[min(max(k, 0), len(s)-1)]) * time.Microsecond
	}
	return out, len(s)
}

// Observe records a finished request's outcome: its TTFT joins the recent
// window (TTFTQuantiles). Safe for concurrent use; it allocates only the
// window, on the endpoint's first TTFT.
func (e *Endpoint) Observe(o Outcome) {
	if o.PromptTokens > 0 {
		e.promptToks.Add(uint64(o.PromptTokens))
		e.cachedToks.Add(uint64(min(max(o.CachedTokens, 0), o.PromptTokens)))
	}
	if o.TTFT <= 0 {
		return
	}
	r := e.ttft.Load()
	if r == nil {
		e.ttft.CompareAndSwap(nil, new(latencyRing)) // a racing first TTFT may win instead
		r = e.ttft.Load()
	}
	r.add(o.TTFT)
}

// UsageTokens returns the prompt tokens and, of those, the cached tokens the
// endpoint reported in its replies' usage (Observe), since the endpoint was
// created: cached/prompt is its prefix cache hit rate.
func (e *Endpoint) UsageTokens() (prompt, cached uint64) {
	return e.promptToks.Load(), e.cachedToks.Load()
}

// TTFTQuantiles returns the q-quantiles of the endpoint's last 256 observed
// TTFTs and how many samples they are over (0: none yet).
func (e *Endpoint) TTFTQuantiles(qs ...float64) ([]time.Duration, int) {
	r := e.ttft.Load()
	if r == nil {
		return make([]time.Duration, len(qs)), 0
	}
	return r.quantiles(qs...)
}
