package router

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/kvgate/kvgate/cache"
	"github.com/kvgate/kvgate/config"
)

// Filter narrows the candidates of one pick.
//
// Contract: Filter returns the candidates that pass, in their order, and may
// reuse cands' backing array (filter in place). An empty result ends the pick
// with no endpoint, so a filter that would empty the set for a soft reason
// (saturation, a missing adapter) returns cands unchanged instead. It is
// called concurrently from many requests (with distinct PickContexts) and
// must not block, do I/O, allocate on the steady path or keep cands.
type Filter interface {
	Name() string
	Filter(pc *PickContext, cands []Candidate) []Candidate
}

// Scorer rates every candidate of one pick.
//
// Contract: Score writes to out[i] a score for cands[i], in [0,1], higher is
// better; len(out) == len(cands) > 0. The same concurrency and no-I/O rules
// as Filter apply; Score must not change cands.
type Scorer interface {
	Name() string
	Score(pc *PickContext, cands []Candidate, out []float64)
}

// Picker chooses one candidate, reading Candidate.Score (the weighted sum of
// the scorers, in [0,1]).
//
// Contract: Pick returns an index in [0, len(cands)); len(cands) > 0. It may
// be called concurrently and must not block or do I/O.
type Picker interface {
	Name() string
	Pick(pc *PickContext, cands []Candidate) int
}

// CacheReader is implemented by a Picker that reads the prefix index itself:
// when ReadsCache reports true, every pick fills Candidate.Matched and
// Candidate.Cached for it even without a prefix scorer (SGLangPicker).
type CacheReader interface {
	ReadsCache() bool
}

// WeightedScorer is one scorer with its weight (≥ 0).
type WeightedScorer struct {
	Scorer Scorer
	Weight float64
}

// Pipeline is filters, then weighted scorers, then one picker. It is
// immutable once built.
type Pipeline struct {
	Filters []Filter
	Scorers []WeightedScorer
	Picker  Picker
	// Plain makes the picker's choice final: no consistent placement of new
	// prefixes and no load bound, as other routers do (the gie and sglang
	// presets, kept for comparisons and migrations).
	Plain bool
}

// affinity reports whether the pipeline scores prefixes and is not plain
// (and so places new prefixes consistently and spills over on the load
// bound).
func (p Pipeline) affinity() bool {
	if p.Plain {
		return false
	}
	if _, ok := p.Picker.(MaxScorePicker); !ok {
		return false
	}
	for _, ws := range p.Scorers {
		if _, ok := ws.Scorer.(PrefixScorer); ok && ws.Weight > 0 {
			return true
		}
	}
	return false
}

// usesIndex reports whether picks need prefix matches: a prefix scorer with
// weight, or a picker that reads Candidate.Matched.
func (p Pipeline) usesIndex() bool {
	if readsCache(p.Picker) {
		return true
	}
	for _, ws := range p.Scorers {
		if _, ok := ws.Scorer.(PrefixScorer); ok && ws.Weight > 0 {
			return true
		}
	}
	return false
}

// score sets every candidate's Score to the normalised weighted sum.
func (p Pipeline) score(pc *PickContext, cands []Candidate) {
	for i := range cands {
		cands[i].Score = 0
	}
	var total float64
	for _, ws := range p.Scorers {
		if ws.Weight <= 0 {
			continue
		}
		total += ws.Weight
		if cap(pc.scores) < len(cands) {
			pc.scores = make([]float64, len(cands))
		}
		out := pc.scores[:len(cands)]
		clear(out)
		ws.Scorer.Score(pc, cands, out)
		for i, v := range out {
			cands[i].Score += ws.Weight * min(max(v, 0), 1)
		}
	}
	if total > 0 {
		for i := range cands {
			cands[i].Score /= total
		}
	}
}

// Interface guards.
var (
	_ Filter = HealthyFilter{}
	_ Filter = NotSaturatedFilter{}
	_ Filter = LoRAFilter{}
	_ Scorer = PrefixScorer{}
	_ Scorer = QueueScorer{}
	_ Scorer = MinMaxQueueScorer{}
	_ Scorer = KVScorer{}
	_ Scorer = InflightScorer{}
	_ Scorer = TokensScorer{}
	_ Scorer = LoRAScorer{}
	_ Picker = MaxScorePicker{}
	_ Picker = WeightedRandomPicker{}
	_ Picker = P2CPicker{}
	_ Picker = (*RoundRobinPicker)(nil)
	_ Picker = RandomPicker{}
	_ Picker = SessionPicker{}
	_ Picker = SGLangPicker{}

	_ CacheReader = SGLangPicker{}
)

// HealthyFilter drops endpoints ejected by passive health checks, and
// endpoints whose last scrape failed (suspect) unless every remaining one is.
type HealthyFilter struct{}

func (HealthyFilter) Name() string { return "healthy" }

func (HealthyFilter) Filter(pc *PickContext, cands []Candidate) []Candidate {
	out := cands[:0]
	suspects := 0
	for _, c := range cands {
		if c.E.downUntil.Load() > pc.Now {
			continue
		}
		if c.E.suspect.Load() {
			suspects++
		}
		out = append(out, c)
	}
	if suspects == 0 || suspects == len(out) {
		return out
	}
	fine := out[:0]
	for _, c := range out {
		if !c.E.suspect.Load() {
			fine = append(fine, c)
		}
	}
	return fine
}

// NotSaturatedFilter drops endpoints whose fresh metrics say they are
// saturated (queue ≥ queueThreshold or KV ≥ kvThreshold); when every one is,
// it keeps them all and sets PickContext.Saturated.
type NotSaturatedFilter struct{}

func (NotSaturatedFilter) Name() string { return "not-saturated" }

func (NotSaturatedFilter) Filter(pc *PickContext, cands []Candidate) []Candidate {
	n := 0
	for i := range cands {
		if !pc.saturated(&cands[i]) {
			n++
		}
	}
	if n == len(cands) {
		return cands
	}
	if n == 0 {
		pc.Saturated = true
		return cands
	}
	out := cands[:0]
	for _, c := range cands {
		if !pc.saturated(&c) {
			out = append(out, c)
		}
	}
	return out
}

// LoRAFilter keeps, for a request naming a LoRA adapter that some candidate
// reports (running or waiting), the endpoints where it is present or can be
// loaded (fewer running adapters than max_lora). Requests for a base model
// (an adapter no endpoint reports) pass unchanged, as do all candidates when
// none qualifies.
type LoRAFilter struct{}

func (LoRAFilter) Name() string { return "lora" }

func (LoRAFilter) Filter(pc *PickContext, cands []Candidate) []Candidate {
	m := pc.Req.Model
	if m == "" {
		return cands
	}
	known, ok := false, 0
	for i := range cands {
		st := loraState(cands[i].E.lora.Load(), m)
		known = known || st == loraRunning || st == loraWaiting
		if st != loraAbsent {
			ok++
		}
	}
	if !known || ok == 0 || ok == len(cands) {
		return cands
	}
	out := cands[:0]
	for _, c := range cands {
		if loraState(c.E.lora.Load(), m) != loraAbsent {
			out = append(out, c)
		}
	}
	return out
}

const (
	loraAbsent = iota
	loraLoadable
	loraWaiting
	loraRunning
)

func loraState(l *LoRAInfo, model string) int {
	if l == nil {
		return loraAbsent
	}
	for _, a := range l.Running {
		if a == model {
			return loraRunning
		}
	}
	for _, a := range l.Waiting {
		if a == model {
			return loraWaiting
		}
	}
	if l.Max > len(l.Running) {
		return loraLoadable
	}
	return loraAbsent
}

// PrefixScorer scores matched leading blocks / total blocks (0 when the
// prompt has no full block).
type PrefixScorer struct{}

func (PrefixScorer) Name() string { return "prefix" }

func (PrefixScorer) Score(pc *PickContext, cands []Candidate, out []float64) {
	n := len(pc.Req.Blocks)
	if n == 0 {
		return
	}
	for i := range cands {
		out[i] = float64(cands[i].Matched) / float64(n)
	}
}

// relativeLoad scores a load figure of every candidate against the busiest
// one: out[i] = 1 - load/(max load + smooth). The smoothing keeps one extra
// request from outweighing a cache hit while staying monotone (less load,
// higher score). load must not retain its argument.
func relativeLoad(cands []Candidate, out []float64, smooth float64, load func(*Candidate) float64) {
	hi := 0.0
	for i := range cands {
		hi = max(hi, load(&cands[i]))
	}
	for i := range cands {
		out[i] = 1 - load(&cands[i])/(hi+smooth)
	}
}

func queueOf(c *Candidate) float64    { return c.Queue }
func inflightOf(c *Candidate) float64 { return float64(c.Inflight) }
func tokensOf(c *Candidate) float64   { return float64(c.Tokens) }

// QueueScorer scores queue depth: scraped waiting requests when fresh, else
// proxy in-flight requests; 1 - q/(max q + queueThreshold).
type QueueScorer struct{}

func (QueueScorer) Name() string { return "queue" }

func (QueueScorer) Score(pc *PickContext, cands []Candidate, out []float64) {
	relativeLoad(cands, out, pc.QueueThreshold(), queueOf)
}

// MinMaxQueueScorer scores queue depth (as QueueScorer reads it) min-max
// normalised across the candidates, as the Inference Extension's queue scorer
// does: the shortest queue scores 1, the longest 0, and equal queues all
// score 1. One request of difference weighs as much as a hundred; the gie
// preset uses it.
type MinMaxQueueScorer struct{}

func (MinMaxQueueScorer) Name() string { return "queue-minmax" }

func (MinMaxQueueScorer) Score(pc *PickContext, cands []Candidate, out []float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range cands {
		lo, hi = min(lo, cands[i].Queue), max(hi, cands[i].Queue)
	}
	for i := range cands {
		out[i] = 1
		if hi > lo {
			out[i] = (hi - cands[i].Queue) / (hi - lo)
		}
	}
}

// tokenSmoothing is the in-flight token figure below which token counts
// matter little: about one typical prompt.
const tokenSmoothing = 2048

// KVScorer scores 1 - KV utilisation when fresh; for stale or missing
// metrics it scores proxy in-flight prompt tokens as TokensScorer does.
type KVScorer struct{}

func (KVScorer) Name() string { return "kv-utilization" }

func (KVScorer) Score(pc *PickContext, cands []Candidate, out []float64) {
	relativeLoad(cands, out, tokenSmoothing, tokensOf)
	for i := range cands {
		if kv := cands[i].KV; !math.IsNaN(kv) {
			out[i] = 1 - kv
		}
	}
}

// InflightScorer scores proxy-side in-flight requests.
type InflightScorer struct{}

func (InflightScorer) Name() string { return "inflight-requests" }

func (InflightScorer) Score(pc *PickContext, cands []Candidate, out []float64) {
	relativeLoad(cands, out, pc.QueueThreshold(), inflightOf)
}

// TokensScorer scores proxy-side in-flight prompt tokens.
type TokensScorer struct{}

func (TokensScorer) Name() string { return "inflight-tokens" }

func (TokensScorer) Score(pc *PickContext, cands []Candidate, out []float64) {
	relativeLoad(cands, out, tokenSmoothing, tokensOf)
}

// LoRAScorer prefers endpoints already running the requested adapter (1),
// then waiting on it (0.75), then able to load it (0.5), else 0. For a base
// model every endpoint scores the same.
type LoRAScorer struct{}

func (LoRAScorer) Name() string { return "lora" }

func (LoRAScorer) Score(pc *PickContext, cands []Candidate, out []float64) {
	for i := range cands {
		switch loraState(cands[i].E.lora.Load(), pc.Req.Model) {
		case loraRunning:
			out[i] = 1
		case loraWaiting:
			out[i] = 0.75
		case loraLoadable:
			out[i] = 0.5
		}
	}
}

// MaxScorePicker picks the highest score, breaking ties at random.
type MaxScorePicker struct{}

func (MaxScorePicker) Name() string { return "max-score" }

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

// WeightedRandomPicker picks with probability proportional to score
// (uniformly when every score is 0).
type WeightedRandomPicker struct{}

func (WeightedRandomPicker) Name() string { return "weighted-random" }

func (WeightedRandomPicker) Pick(_ *PickContext, cands []Candidate) int {
	var sum float64
	for i := range cands {
		sum += cands[i].Score
	}
	if sum <= 0 {
		return rand.IntN(len(cands))
	}
	r := rand.Float64() * sum
	for i := range cands {
		if r -= cands[i].Score; r < 0 {
			return i
		}
	}
	return len(cands) - 1
}

// P2CPicker is power of two choices: the better scored of two random picks.
type P2CPicker struct{}

func (P2CPicker) Name() string { return "p2c" }

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

func (*RoundRobinPicker) Name() string { return "round-robin" }

func (r *RoundRobinPicker) Pick(_ *PickContext, cands []Candidate) int {
	return int((r.n.Add(1) - 1) % uint64(len(cands)))
}

// RandomPicker picks uniformly at random.
type RandomPicker struct{}

func (RandomPicker) Name() string { return "random" }

func (RandomPicker) Pick(_ *PickContext, cands []Candidate) int { return rand.IntN(len(cands)) }

// SessionPicker sends every request with the same session header value to
// the same endpoint (rendezvous hashing on the value, so a departed endpoint
// moves only its own sessions). Without the header it picks the best score.
type SessionPicker struct{}

func (SessionPicker) Name() string { return "session" }

func (SessionPicker) Pick(pc *PickContext, cands []Candidate) int {
	if pc.Req.Session == "" {
		return MaxScorePicker{}.Pick(pc, cands)
	}
	addrs := pc.addrs[:0]
	for i := range cands {
		addrs = append(addrs, cands[i].E.Addr)
	}
	pc.addrs = addrs
	return max(cache.Place(xxhash.Sum64String(pc.Req.Session), addrs, nil, 0), 0)
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

func (SGLangPicker) Name() string { return "sglang-cache-aware" }

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

// ScorerByName returns a built-in scorer: prefix, queue, queue-minmax,
// kv-utilization, inflight-requests, inflight-tokens, lora.
func ScorerByName(name string) (Scorer, bool) {
	switch name {
	case "prefix":
		return PrefixScorer{}, true
	case "queue":
		return QueueScorer{}, true
	case "queue-minmax":
		return MinMaxQueueScorer{}, true
	case "kv-utilization":
		return KVScorer{}, true
	case "inflight-requests":
		return InflightScorer{}, true
	case "inflight-tokens":
		return TokensScorer{}, true
	case "lora":
		return LoRAScorer{}, true
	}
	return nil, false
}

// Presets are the picker presets inference.picker may name.
var Presets = []string{"prefix-affinity", "least-request", "round-robin", "random", "session", "gie", "sglang"}

// BuildPipeline returns the pipeline of in.Picker (default prefix-affinity)
// with in.Scorers, when set, replacing the preset's scorers:
//
//   - prefix-affinity: healthy, not-saturated, lora filters; scorers prefix 3,
//     queue 2, kv-utilization 2, inflight-requests 0.5, inflight-tokens 0.5,
//     lora 1; max-score picker (placement for new prefixes, spill-over over
//     the load bound).
//   - least-request: healthy, not-saturated; inflight-requests 1; p2c.
//   - round-robin, random: healthy, not-saturated; no scorer; their picker.
//   - session: healthy, not-saturated; inflight-requests 1; session picker
//     on inference.sessionHeader.
//   - gie: the Gateway API Inference Extension's default profile, plain:
//     healthy, not-saturated filters; prefix 3, queue-minmax 2,
//     kv-utilization 2; max-score picker; no placement, no load bound.
//   - sglang: SGLang's cache_aware rule, plain (SGLangPicker); healthy filter.
func BuildPipeline(in *config.Inference) (Pipeline, error) {
	filters := []Filter{HealthyFilter{}, NotSaturatedFilter{}}
	var p Pipeline
	switch in.Picker {
	case "", "prefix-affinity":
		p = Pipeline{
			Filters: append(filters, LoRAFilter{}),
			Scorers: []WeightedScorer{
				{PrefixScorer{}, 3}, {QueueScorer{}, 2}, {KVScorer{}, 2},
				{InflightScorer{}, 0.5}, {TokensScorer{}, 0.5}, {LoRAScorer{}, 1},
			},
			Picker: MaxScorePicker{},
		}
	case "least-request":
		p = Pipeline{Filters: filters, Scorers: []WeightedScorer{{InflightScorer{}, 1}}, Picker: P2CPicker{}}
	case "round-robin":
		p = Pipeline{Filters: filters, Picker: &RoundRobinPicker{}}
	case "random":
		p = Pipeline{Filters: filters, Picker: RandomPicker{}}
	case "session":
		p = Pipeline{Filters: filters, Scorers: []WeightedScorer{{InflightScorer{}, 1}}, Picker: SessionPicker{}}
	case "gie":
		p = Pipeline{Filters: filters, Scorers: []WeightedScorer{{PrefixScorer{}, 3}, {MinMaxQueueScorer{}, 2}, {KVScorer{}, 2}},
			Picker: MaxScorePicker{}, Plain: true}
	case "sglang":
		p = Pipeline{Filters: []Filter{HealthyFilter{}}, Picker: SGLangPicker{}, Plain: true}
	default:
		return Pipeline{}, fmt.Errorf("router: unknown picker preset %q; use one of prefix-affinity, least-request, round-robin, random, session, gie, sglang", in.Picker)
	}
	if len(in.Scorers) > 0 {
		p.Scorers = p.Scorers[:0:0]
		for _, sw := range in.Scorers {
			s, ok := ScorerByName(sw.Name)
			if !ok {
				return Pipeline{}, fmt.Errorf("router: unknown scorer %q; use prefix, queue, queue-minmax, kv-utilization, inflight-requests, inflight-tokens or lora", sw.Name)
			}
			p.Scorers = append(p.Scorers, WeightedScorer{s, sw.Weight})
		}
	}
	return p, nil
}
