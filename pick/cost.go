package pick

import (
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvgate/kvgate/cache"
)

// This file is the cost model behind the latency preset: each endpoint's
// time to first token predicted from what kvgate has seen it do, and the
// pick that keeps a prompt with the holder of its prefix (or its placement)
// unless another endpoint's prediction is several times smaller
// (Pool.chooseLatency).
//
// The model. A request sent to endpoint e waits behind the requests ahead
// of it and then prefills the prompt tokens e does not hold:
//
//	TTFT(e) = base(e) + perToken(e) × uncached(e) + perAhead(e) × ahead(e)
//
//   - ahead(e) is the queue the request joins: with a fresh scrape the
//     server's waiting and running requests plus what kvgate sent it since
//     that scrape, minus what of kvgate's ended since (at least kvgate's
//     own requests in flight); without one, kvgate's own requests in
//     flight to e;
//   - uncached(e) is the prompt's estimated tokens minus the tokens of the
//     leading blocks the prefix index says e holds;
//   - base, perToken (the inverse of the prefill rate) and perAhead (the
//     queue cost of one request ahead: about a service time divided by the
//     batch the server runs) are learned per endpoint, online, from every
//     finished streamed reply (Endpoint.Observe): the time from the pick to
//     the first body byte against the queue ahead at the pick and the
//     uncached tokens the usage object reports (prompt − cached).
//
// The pick compares TTFT(e) plus an eviction charge: the prompt tokens e
// would add to its cache beyond the room its prefix index says it has left
// (Candidate.Room), times e's prefill rate, times costEvictWeight. The
// request itself does not pay it; the conversations whose blocks it evicts
// pay it back as prefill later, so a full cache is charged for taking a
// long new context that an endpoint with room would hold for free.
//
// Learning is normalised least mean squares on the three features
// (1, uncached/1000, ahead) with a robust step: a residual is clipped to
// costClip × the running mean absolute residual, so that one stalled reply
// (a GC pause, a network hiccup) moves the model by a bounded amount while a
// lasting change moves it within a few requests. Coefficients never go
// negative. Memory is a few words per endpoint.
//
// Until an endpoint has costWarmSamples samples, and as its last sample
// ages (half-life costHalfLife), its coefficients are blended towards the
// mean of the other endpoints' learned ones (towards costPrior when none has
// learned): a new endpoint starts as the pool's average, and an endpoint
// that lost its traffic for being slow is tried again once its estimate has
// relaxed, so that a recovered endpoint regains traffic and a still-slow one
// sends a probe every few half-lives.
//
// Limits: the model is linear, so it cannot see that a server with free
// batch slots starts a request at once while a full one makes it wait (it
// learns the average cost of a request ahead); it knows the prompt's length
// only as bytes/4 and the endpoint's cache only through the prefix index
// (approximate unless fed by KV events); a reply that is not streamed
// (one JSON object) does not teach it, its first byte being its last; and
// it learns per model for the first costModelsPerEndpoint models (or LoRA
// adapters) an endpoint serves, while any further model shares the
// endpoint's model of all its requests.
//
// Per model. Besides its model of all its requests, an endpoint learns one
// for each of the first costModelsPerEndpoint names a request's "model"
// field gave it (an adapter prefills at its base model's rate, but a second
// base model on the same server, or a quantised variant, does not). A
// request's prediction blends its model's coefficients with the endpoint's
// blended ones by the model's weight, as the endpoint's are blended with the
// pool's: a model new to an endpoint starts as that endpoint's average.

// Cost-model constants (see the comment above).
const (
	// costRate is the normalised LMS step, in (0, 1].
	costRate = 0.5
	// costClip bounds a residual, in running mean absolute residuals.
	costClip = 3
	// costSpreadRate is the EWMA rate of the mean absolute residual.
	costSpreadRate = 0.1
	// costWarmSamples is how many samples make an endpoint's own
	// coefficients count fully.
	costWarmSamples = 8
	// costHalfLife is how fast an endpoint's coefficients relax towards the
	// pool's once it gets no more samples.
	costHalfLife = 10 * time.Second
	// costAffinityTolerance: the holder of the longest prefix keeps the
	// request while its predicted TTFT is within (1 + tolerance) × the
	// best prediction, i.e. until another endpoint is predicted three
	// times faster. Moving a conversation duplicates its prefix in a
	// second cache, which costs other prompts their hits later; on the
	// agentic replay a tolerance of 0.25 lost a tenth of the hit rate to
	// such moves (68.9-71.3% against 76.4-76.6% at 2.0, same quiet
	// machine), while the tenants workload kept its hit rate (74-75%).
	costAffinityTolerance = 2.0
	// costPlacementTolerance is the same for the consistent placement of
	// a prompt no endpoint holds more of than the others (a new
	// conversation): overriding it makes kvgate replicas disagree about
	// where a conversation lives, but a new conversation has no cache to
	// lose, so a placement predicted twice as slow gives way.
	costPlacementTolerance = 1.0
	// costMoveTolerance: prefix-affinity's load-bound spill-over off the
	// holder is taken while the endpoint it spills to is predicted at most
	// (1 + tolerance) × the holder's TTFT (Pool.chooseLatency). On the
	// agentic replay, 3 runs each, quiet machine: 79.5% hit rate (76.6-81.7)
	// and TTFT p99 2.6 s against 74.5% (68.6-77.8) and 4.1 s without the
	// spill, 78.6% (78.0-79.2) at 0.5; the tenants replay kept its hit rate
	// (74.8% against 74.0%).
	costMoveTolerance = 1.0
	// costModelsPerEndpoint bounds the models an endpoint learns one cost
	// model for (bounded memory: a few hundred bytes each, made on an
	// endpoint's first named model).
	costModelsPerEndpoint = 4
	// costEvictWeight is the share of the tokens a pick evicts from an
	// endpoint's cache that the pick is charged for at that endpoint's
	// prefill rate: the evicted blocks are its least recently used, which
	// another request needs again about as often as not.
	costEvictWeight = 0.5
)

// costPrior is the model of an endpoint when no endpoint of the pool has
// learned one: 20,000 prefill tokens/s and a tenth of a second per request
// ahead (an 8B model on one modern GPU). Only its ratio matters while every
// endpoint uses it.
var costPrior = [3]float64{0, 0.05, 0.1}

// costModel is one endpoint's learned TTFT model. Observe updates it under
// its mutex (once per finished reply, never on the pick path); picks read
// the published coefficients from atomics.
type costModel struct {
	mu     sync.Mutex
	theta  [3]float64 // seconds: base, per 1,000 uncached tokens, per request ahead
	spread float64    // running mean absolute residual, seconds
	n      int64

	pub     [3]atomic.Uint64 // theta as float64 bits
	samples atomic.Int64
	lastAt  atomic.Int64 // unix nanos of the last sample
}

// learn adds one sample: y seconds from pick to first byte for a request
// that had uncached tokens to prefill and ahead requests ahead of it.
func (m *costModel) learn(y float64, uncached int, ahead float64, now int64) {
	if !(y > 0) || math.IsInf(y, 0) || !(ahead >= 0) || uncached < 0 {
		return
	}
	x := [3]float64{1, float64(uncached) / 1000, ahead}
	norm := x[0]*x[0] + x[1]*x[1] + x[2]*x[2]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == 0 {
		// Start from the prior's shape at the scale of the first sample, so
		// that a coefficient the samples do not move yet (the queue cost of
		// an endpoint that never had a queue) is not zero.
		p := costPrior[0]*x[0] + costPrior[1]*x[1] + costPrior[2]*x[2]
		for k := range m.theta {
			m.theta[k] = costPrior[k] * y / p
		}
		m.spread = y / 4
	}
	pred := m.theta[0]*x[0] + m.theta[1]*x[1] + m.theta[2]*x[2]
	r := y - pred
	// The clip never falls below 1.5 × the prediction, so that a
	// model fitted to quiet samples follows a lasting change within a few
	// samples (a tenfold slowdown in about five), while one stalled reply
	// moves the prediction by at most 75%.
	scale := max(m.spread, 0.5*pred, 1e-6)
	rc := min(max(r, -costClip*scale), costClip*scale)
	m.spread += costSpreadRate * (min(math.Abs(r), 10*scale) - m.spread)
	for k := range m.theta {
		m.theta[k] = max(m.theta[k]+costRate*rc*x[k]/norm, 0)
		m.pub[k].Store(math.Float64bits(m.theta[k]))
	}
	m.n++
	m.samples.Store(m.n)
	m.lastAt.Store(now)
}

// coefficients returns the published coefficients.
func (m *costModel) coefficients() [3]float64 {
	return [3]float64{
		math.Float64frombits(m.pub[0].Load()),
		math.Float64frombits(m.pub[1].Load()),
		math.Float64frombits(m.pub[2].Load()),
	}
}

// weight is how much the endpoint's own coefficients count at now: the
// share of costWarmSamples it has seen, halved every costHalfLife since its
// last sample.
func (m *costModel) weight(now int64) float64 {
	n := m.samples.Load()
	if n <= 0 {
		return 0
	}
	w := min(float64(n)/costWarmSamples, 1)
	if age := now - m.lastAt.Load(); age > 0 {
		w *= math.Exp2(-float64(age) / float64(costHalfLife))
	}
	return w
}

// CostModel is an endpoint's learned TTFT model, for inspection: seconds of
// base latency, per 1,000 uncached prompt tokens and per request ahead, and
// the number of samples it learned from.
type CostModel struct {
	Base, PerKiloToken, PerAhead float64
	Samples                      int64
}

// CostModel returns the endpoint's learned TTFT model (all zero before its
// first streamed reply).
func (e *Endpoint) CostModel() CostModel { return e.cost.inspect() }

// inspect returns m's published coefficients and sample count.
func (m *costModel) inspect() CostModel {
	c := m.coefficients()
	return CostModel{Base: c[0], PerKiloToken: c[1], PerAhead: c[2], Samples: m.samples.Load()}
}

// modelCosts are an endpoint's per-model cost models: slot k learns the
// requests whose model is names[k]. A slot's name is set once, by the first
// pick of a model that found a free slot, and never changes.
type modelCosts struct {
	names [costModelsPerEndpoint]atomic.Pointer[string]
	m     [costModelsPerEndpoint]costModel
}

// modelCost returns e's per-model cost model for model, nil when e has none.
// Read-only, no allocation: the pick path calls it for every candidate.
func (e *Endpoint) modelCost(model string) *costModel {
	mc := e.models.Load()
	if k := mc.slot(model); k >= 0 {
		return &mc.m[k]
	}
	return nil
}

// slot returns the slot of mc (nil: none yet) named model, or -1.
func (mc *modelCosts) slot(model string) int {
	if mc == nil || model == "" {
		return -1
	}
	for k := range mc.names {
		n := mc.names[k].Load()
		if n == nil {
			return -1 // slots fill in order
		}
		if *n == model {
			return k
		}
	}
	return -1
}

// claimModelSlot returns e's slot for model, taking a free one when e has
// none (a copy of model is kept: the caller's string may point into a
// buffer that is reused); -1 when model is empty or every slot is taken.
func (e *Endpoint) claimModelSlot(model string) int {
	if model == "" {
		return -1
	}
	mc := e.models.Load()
	if k := mc.slot(model); k >= 0 {
		return k
	}
	if mc == nil {
		e.models.CompareAndSwap(nil, new(modelCosts)) // a racing claim may win instead
		mc = e.models.Load()
	}
	var owned *string
	for k := range mc.names {
		n := mc.names[k].Load()
		if n == nil {
			if owned == nil {
				c := strings.Clone(model)
				owned = &c
			}
			if mc.names[k].CompareAndSwap(nil, owned) {
				return k
			}
			n = mc.names[k].Load() // another claim took the slot first
		}
		if *n == model {
			return k
		}
	}
	return -1
}

// ModelCostModels returns the per-model cost models e learned, by model
// name (nil before the first named model), for inspection.
func (e *Endpoint) ModelCostModels() map[string]CostModel {
	mc := e.models.Load()
	if mc == nil {
		return nil
	}
	out := make(map[string]CostModel, costModelsPerEndpoint)
	for k := range mc.names {
		if n := mc.names[k].Load(); n != nil {
			out[*n] = mc.m[k].inspect()
		}
	}
	return out
}

// Prediction is what a pick expected of the request it placed, carried by
// the caller to the request's Outcome so that the endpoint learns from it.
type Prediction struct {
	// Valid is false for a pick that predicted nothing (a balancer pick).
	Valid bool
	// Ahead is the queue the request joined (see the cost model).
	Ahead float64
	// Uncached is the estimated prompt tokens the endpoint did not hold.
	Uncached int
	// TTFT is the predicted time from the pick to the first token; 0 when
	// the pool's preset does not predict (only latency does).
	TTFT time.Duration
	// model is 1 + the slot of the endpoint's per-model cost model the
	// outcome also teaches (modelCosts); 0 for none.
	model int
	// At is the time from the request's start to the pick, which the
	// caller sets (reading the body and waiting in the saturation queue
	// come before it); the model learns from TTFT − At.
	At time.Duration
}

// costView is one candidate's cost inputs during one pick.
type costView struct {
	w        float64
	theta    [3]float64
	x        [3]float64 // 1, uncached/1000, ahead
	uncached int        // uncachedOf, kept for the pick's Prediction
	ttft     float64    // predicted TTFT, seconds
	t        float64    // ttft plus the eviction charge: what the pick compares
}

// aheadOf is the queue a request sent to c joins: with a fresh scrape, the
// server's waiting and running requests plus kvgate's picks since the
// scrape minus kvgate's requests that ended since (a scrape lags: the
// request kvgate just finished is still running in it), and never fewer
// than kvgate's own requests in flight; without one, those alone.
func aheadOf(c *Candidate) float64 {
	own := float64(max(c.Inflight, 0))
	if c.Fresh {
		return max(c.Queue+float64(c.E.running.Load())+float64(c.Since-c.E.ended.Load()), own)
	}
	return own
}

// uncachedOf is the prompt's estimated tokens c does not hold. A precise
// candidate's held prefix is its CachedTokens, counted from its KV events;
// its Matched is that count converted to text blocks (precise.go), which
// rounds down and would count up to a block of cached tokens as uncached.
func uncachedOf(pc *PickContext, c *Candidate) int {
	held := 0
	if c.Precise {
		held = c.CachedTokens
	} else if bs := pc.set.blockSize; bs > 0 {
		held = c.Matched * bs / cache.CharsPerToken
	}
	return max(pc.Req.PromptTokens-held, 0)
}

// predict fills pc.costs with every candidate's predicted TTFT.
func predict(pc *PickContext, cands []Candidate) []costView {
	if cap(pc.costs) < len(cands) {
		pc.costs = make([]costView, len(cands))
	}
	cv := pc.costs[:len(cands)]
	var sum [3]float64
	var wsum float64
	for i := range cands {
		c := &cands[i]
		v := &cv[i]
		v.w = c.E.cost.weight(pc.Now)
		v.theta = c.E.cost.coefficients()
		v.uncached = uncachedOf(pc, c)
		v.x = [3]float64{1, float64(v.uncached) / 1000, aheadOf(c)}
		wsum += v.w
		for k := range sum {
			sum[k] += v.w * v.theta[k]
		}
	}
	prior := costPrior
	if wsum > 0 {
		for k := range prior {
			prior[k] = sum[k] / wsum
		}
	}
	for i := range cv {
		v := &cv[i]
		v.ttft = 0
		for k := range v.theta {
			v.theta[k] = v.w*v.theta[k] + (1-v.w)*prior[k]
		}
		if mm := cands[i].E.modelCost(pc.Req.Model); mm != nil {
			if w := mm.weight(pc.Now); w > 0 {
				mt := mm.coefficients()
				for k := range v.theta {
					v.theta[k] = w*mt[k] + (1-w)*v.theta[k]
				}
			}
		}
		for k := range v.theta {
			v.ttft += v.theta[k] * v.x[k]
		}
		v.t = v.ttft + v.theta[1]*float64(evictedOf(pc, &cands[i]))/1000*costEvictWeight
	}
	return cv
}

// evictedOf is the estimated tokens a request sent to c would evict from
// c's cache: the prompt blocks c does not hold beyond the room its index
// says c has left. Eviction costs this request nothing, but the requests
// whose prefixes it drops pay it back as prefill later.
func evictedOf(pc *PickContext, c *Candidate) int {
	bs := pc.set.blockSize
	if bs <= 0 {
		return 0
	}
	add := len(pc.Req.Blocks) - c.Matched + pc.Req.TailBlocks
	return max(add-c.Room, 0) * bs / cache.CharsPerToken
}

// leastCost returns the candidate with the smallest prediction, ties broken
// at random.
func leastCost(cv []costView) int {
	best, ties := 0, 1
	for i := 1; i < len(cv); i++ {
		switch {
		case cv[i].t < cv[best].t:
			best, ties = i, 1
		case cv[i].t == cv[best].t:
			ties++
			if rand.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return best
}

// tolerated reports whether prediction t is within tolerance of the best
// one (see costAffinityTolerance).
func tolerated(t float64, best *costView, tolerance float64) bool {
	return t <= best.t*(1+tolerance)
}

// LeastTTFTPicker picks the candidate with the smallest predicted time to
// first token. In a pool's preset it marks the latency pipeline, which
// keeps the affinity choice unless the prediction says otherwise
// (Pool.chooseLatency).
type LeastTTFTPicker struct{}

func (LeastTTFTPicker) Pick(pc *PickContext, cands []Candidate) int {
	return leastCost(predict(pc, cands))
}

// chooseLatency is choose for the latency preset. It weighs the prefix
// index's choice against the predicted TTFTs:
//
//   - a prompt new to the pool (placement: no endpoint holds more of it than
//     another, or none holds its placement key) goes where prefix-affinity's
//     consistent placement puts it, unless another endpoint's prediction
//     beats the placement's by more than the tolerance;
//   - a prompt some endpoints hold more of goes to the holder of the
//     longest prefix with the smallest prediction, unless another
//     endpoint's prediction beats it by more than costAffinityTolerance.
//
// Prefix-affinity's load bound moves a conversation off a holder only
// while that is cheap: while the endpoint the bound spills it to is
// predicted at most costMoveTolerance slower than the holder (a young
// conversation, or a holder with a long queue). Past that the queue term
// of the prediction is what moves it, and only when waiting at the holder
// is predicted to cost several times prefilling the conversation
// elsewhere. (Taking every spill-over, as this preset first did, let a
// long agent session leave a holder that was predicted to be nearly as
// fast, and pay the whole context's prefill on a second server; taking
// none let a server keep more conversations than its cache holds.)
func (p *Pool) chooseLatency(pc *PickContext, s *settings, cands []Candidate, useIndex bool) (int, Reason) {
	cv := predict(pc, cands)
	pc.predicted = cv
	best, holders, h := 0, 0, -1
	for j := range cands {
		switch m := cands[j].Matched; {
		case m > best:
			best, holders, h = m, 1, j
		case m == best:
			holders++
			if h < 0 || cv[j].t < cv[h].t {
				h = j
			}
		}
	}
	_, place := placeable(best, holders, len(pc.Req.Blocks))
	place = place || !useIndex || holders == len(cands)
	// A prefix most endpoints hold is the pool's (a system prompt, a tool
	// list): each endpoint prefills it once, whatever conversation brings
	// it, so it does not decide where a new conversation goes; otherwise
	// the few endpoints that lack it would never get one, and their caches
	// would sit empty while the others evict.
	poolWide := place && useIndex && best > 0 && 2*holders > len(cands)
	if poolWide {
		for j := range cands {
			if d := best - cands[j].Matched; d > 0 {
				cv[j].t -= cv[j].theta[1] * float64(d*s.blockSize/cache.CharsPerToken) / 1000
			}
		}
	}
	lo := leastCost(cv)
	var i int
	var reason Reason
	tol := costAffinityTolerance
	if place {
		i, reason = p.chooseAffinity(pc, s, MaxScorePicker{}, cands, useIndex)
		// Placement past a prefix the pool shares (or past nothing) is a
		// new conversation's: replicas agree on it and it spreads
		// conversations over the caches; another endpoint takes it when
		// predicted twice as fast. Placement past a prefix a few endpoints
		// hold (a tenant's context cached twice) is weighed like a holder's
		// choice: in practice a holder is predicted many times faster than
		// the placement, which would prefill the whole context.
		if reason == ReasonPlacement && (poolWide || holders == len(cands)) {
			tol = costPlacementTolerance
		}
	} else {
		i, reason = h, ReasonAffinity
		// Prefix-affinity's load bound spills a conversation off a holder
		// that takes more than its share of the picks. The prediction does
		// not see why that helps (a server that keeps more conversations
		// than its cache holds evicts one for every turn of another), so
		// the spill is taken while it is cheap: while the endpoint it goes
		// to is predicted no more than costMoveTolerance slower, which is a
		// young conversation (little context to prefill again) or a holder
		// with a long queue; a long context stays.
		if j, r := p.chooseAffinity(pc, s, MaxScorePicker{}, cands, useIndex); j != h && tolerated(cv[j].t, &cv[h], costMoveTolerance) {
			i, reason = j, r
		}
	}
	if tolerated(cv[i].t, &cv[lo], tol) {
		return i, reason
	}
	if !useIndex {
		return lo, ReasonFallback
	}
	if best > 0 && cands[lo].Matched == best {
		return lo, ReasonAffinity
	}
	return lo, ReasonSpillover
}

// prediction returns what the pick expected of c, candidate i. A latency
// pick already computed c's queue and uncached tokens in predict: they are
// reused rather than read again, which also keeps them the inputs of the
// predicted TTFT (the queue's counters may move in between).
//
// The per-model slot the outcome teaches is claimed only for a real pick
// (claimModel), so that a dry run does not take a slot.
func prediction(pc *PickContext, c *Candidate, i int) Prediction {
	if i < len(pc.predicted) {
		v := &pc.predicted[i]
		return Prediction{Valid: true, Ahead: v.x[2], Uncached: v.uncached,
			TTFT: time.Duration(v.ttft * float64(time.Second))}
	}
	return Prediction{Valid: true, Ahead: aheadOf(c), Uncached: uncachedOf(pc, c)}
}

// claimModel sets the per-model cost model pr's outcome teaches on e: the
// slot of the request's model, taken now if e has a free one.
func (pr *Prediction) claimModel(e *Endpoint, model string) {
	if pr.Valid {
		pr.model = e.claimModelSlot(model) + 1
	}
}

// learnOutcome teaches e's cost model from a finished reply (Observe).
func (e *Endpoint) learnOutcome(o *Outcome) {
	pr := &o.Predicted
	if !pr.Valid || !o.Streamed || o.TTFT <= pr.At || o.Status < 200 || o.Status > 299 {
		return
	}
	uncached := pr.Uncached
	if o.PromptTokens > 0 {
		uncached = max(o.PromptTokens-o.CachedTokens, 0)
	}
	y, now := (o.TTFT - pr.At).Seconds(), time.Now().UnixNano()
	e.cost.learn(y, uncached, pr.Ahead, now)
	if k := pr.model - 1; k >= 0 && k < costModelsPerEndpoint {
		if mc := e.models.Load(); mc != nil {
			mc.m[k].learn(y, uncached, pr.Ahead, now)
		}
	}
}
