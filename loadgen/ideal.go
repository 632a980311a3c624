package loadgen

import (
	"slices"
	"time"
)

// Ideal is what no picker can beat on a workload: one server with an
// unbounded cache and no queue, so every prompt reuses the longest prefix any
// earlier request sent and waits for nothing but its own prefill.
type Ideal struct {
	// HitRate is the share of prompt tokens in leading blocks seen before,
	// counted in tokens as the simulators count prefix-cache hits.
	HitRate float64
	// TTFTP50 and TTFTP99 are the floors of time to first token: base +
	// perToken × the uncached tokens of each request, at the same
	// percentiles the replay reports (model time).
	TTFTP50, TTFTP99 time.Duration
}

// IdealOf computes Ideal for reqs in arrival order, with a server that
// prefills in base plus perToken per uncached prompt token.
//
// A block counts as cached only when every block before it did too (a KV
// cache reuses an unbroken prefix), and the uncached part of a prompt is its
// input length past the cached blocks.
func IdealOf(reqs []Request, base, perToken time.Duration) Ideal {
	seen := map[uint64]bool{}
	var hit, all int64
	ttft := make([]time.Duration, 0, len(reqs))
	for _, r := range reqs {
		lead := 0
		for lead < len(r.HashIDs) && seen[r.HashIDs[lead]] {
			lead++
		}
		for _, id := range r.HashIDs {
			seen[id] = true
		}
		cached := min(lead*TraceBlockTokens, r.InputLength)
		hit += int64(cached)
		all += int64(r.InputLength)
		uncached := r.InputLength - cached
		ttft = append(ttft, base+time.Duration(uncached)*perToken)
	}
	slices.Sort(ttft)
	var id Ideal
	if all > 0 {
		id.HitRate = float64(hit) / float64(all)
	}
	id.TTFTP50, id.TTFTP99 = percentile(ttft, 0.50), percentile(ttft, 0.99)
	return id
}
