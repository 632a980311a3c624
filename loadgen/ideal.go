package loadgen

import (
	"slices"
	"time"
)

// Ideal is what no picker can beat on a workload: one server with an
// unbounded cache and no queue, so every prompt reuses the longest prefix any
// earlier request sent and waits for nothing but its own prefill.
type Ideal struct {
	// HitRate is the share of trace blocks whose leading prefix was seen
	// before, counted in TraceBlockTokens-token blocks.
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
	hit, all := 0, 0
	ttft := make([]time.Duration, 0, len(reqs))
	for _, r := range reqs {
		lead := 0
		for lead < len(r.HashIDs) && seen[r.HashIDs[lead]] {
			lead++
		}
		for _, id := range r.HashIDs {
			seen[id] = true
		}
		hit += lead
		all += len(r.HashIDs)
		uncached := max(r.InputLength-lead*TraceBlockTokens, 0)
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
