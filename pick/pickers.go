package pick

import (
	"math/rand/v2"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/kvgate/kvgate/cache"
)

// The built-in pickers, registered by name.
var (
	pickerMaxScore = pickerPlugin("max-score",
		"the highest score, ties broken at random",
		func() Picker { return MaxScorePicker{} })
	pickerP2C = pickerPlugin("p2c",
		"power of two choices: the better scored of two random endpoints",
		func() Picker { return P2CPicker{} })
	pickerRoundRobin = pickerPlugin("round-robin",
		"each endpoint in turn",
		func() Picker { return &RoundRobinPicker{} })
	pickerRandom = pickerPlugin("random",
		"uniformly at random",
		func() Picker { return RandomPicker{} })
	pickerSession = pickerPlugin("session",
		"the same endpoint for the same session header value (rendezvous hashing); else the highest score",
		func() Picker { return SessionPicker{} })
	pickerSGLang = pickerPlugin("sglang-cache-aware",
		"SGLang's cache_aware rule: least loaded when imbalanced, else the longest match over half the prompt, else the emptiest cache",
		func() Picker { return SGLangPicker{} })
	pickerLeastTTFT = pickerPlugin("least-ttft",
		"the smallest predicted time to first token (learned cost of the queue ahead plus the uncached prompt at the learned prefill rate), within the affinity and placement rules",
		func() Picker { return LeastTTFTPicker{} })
)

// Interface guards.
var (
	_ Picker = MaxScorePicker{}
	_ Picker = P2CPicker{}
	_ Picker = (*RoundRobinPicker)(nil)
	_ Picker = RandomPicker{}
	_ Picker = SessionPicker{}
	_ Picker = SGLangPicker{}
	_ Picker = LeastTTFTPicker{}

	_ CacheReader = SGLangPicker{}
)

// MaxScorePicker picks the highest score, breaking ties at random.
type MaxScorePicker struct{}

func (MaxScorePicker) Pick(_ *PickContext, cands []Candidate) int {
	best, ties := 0, 1
	for i := 1; i < len(cands); i++ {
		switch s := cands[i].Score; {
		case s > cands[best].Score:
			best, ties = i, 1
		case s == cands[best].Score:
			ties++
			if rand.IntN(ties) == 0 { // reservoir: each tie equally likely
				best = i
			}
		}
	}
	return best
}

// P2CPicker is power of two choices: the better scored of two random picks
// (the first on a tie). With the inflight-requests scorer alone it is least
// request: the one of two random endpoints with fewer requests in flight.
type P2CPicker struct{}

func (P2CPicker) Pick(_ *PickContext, cands []Candidate) int {
	a, b := rand.IntN(len(cands)), rand.IntN(len(cands))
	if cands[b].Score > cands[a].Score {
		return b
	}
	return a
}

// RoundRobinPicker cycles through the candidates. Its counter is shared by
// every request of a pool (one atomic add per pick).
type RoundRobinPicker struct{ n atomic.Uint64 }

func (r *RoundRobinPicker) Pick(_ *PickContext, cands []Candidate) int {
	return int((r.n.Add(1) - 1) % uint64(len(cands)))
}

// RandomPicker picks uniformly at random.
type RandomPicker struct{}

func (RandomPicker) Pick(_ *PickContext, cands []Candidate) int { return rand.IntN(len(cands)) }

// SessionPicker sends every request with the same session header value to
// the same endpoint (rendezvous hashing on the value, so a departed endpoint
// moves only its own sessions). Without the header it picks the best score.
type SessionPicker struct{}

func (SessionPicker) Pick(pc *PickContext, cands []Candidate) int {
	if pc.Req.Session == "" {
		return MaxScorePicker{}.Pick(pc, cands)
	}
	addrs := pc.addrs[:0]
	for i := range cands {
		addrs = append(addrs, cands[i].E.Addr)
	}
	pc.addrs = addrs
	// No loads: every endpoint fits, so the bound (1, the least) plays no part.
	return max(cache.Place(xxhash.Sum64String(pc.Req.Session), addrs, nil, 1), 0)
}

// SGLangPicker is SGLang's cache_aware router rule (sgl-router), for
// comparisons and migrations; in-flight requests stand for its per-worker
// load:
//
//  1. when the load is imbalanced (busiest − idlest > 64 and busiest >
//     1.5 × idlest), the least loaded endpoint;
//  2. else, when the longest prefix match covers more than half of the
//     prompt's blocks, the endpoint holding it (least loaded among equals);
//  3. else the endpoint whose cache holds the fewest blocks (its "smallest
//     tree", Candidate.Cached), to grow the emptiest cache.
type SGLangPicker struct{}

// SGLang's defaults: balance_abs_threshold, balance_rel_threshold,
// cache_threshold.
const (
	sglangAbs   = 64
	sglangRel   = 1.5
	sglangMatch = 0.5
)

// ReadsCache implements CacheReader: the rule reads matches and cache sizes.
func (SGLangPicker) ReadsCache() bool { return true }

func (SGLangPicker) Pick(pc *PickContext, cands []Candidate) int {
	lo, hi := 0, 0
	for i := range cands {
		if cands[i].Inflight < cands[lo].Inflight {
			lo = i
		}
		if cands[i].Inflight > cands[hi].Inflight {
			hi = i
		}
	}
	minL, maxL := float64(cands[lo].Inflight), float64(cands[hi].Inflight)
	if maxL-minL > sglangAbs && maxL > sglangRel*minL {
		return lo
	}
	best := 0
	for i := range cands {
		c, b := &cands[i], &cands[best]
		if c.Matched > b.Matched || c.Matched == b.Matched && c.Inflight < b.Inflight {
			best = i
		}
	}
	if n := len(pc.Req.Blocks); n > 0 && float64(cands[best].Matched) > sglangMatch*float64(n) {
		return best
	}
	small := 0
	for i := range cands {
		if cands[i].Cached < cands[small].Cached {
			small = i
		}
	}
	return small
}
