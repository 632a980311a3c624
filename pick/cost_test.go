package pick

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kvgate/kvgate/cache"
)

// The cost model recovers a known linear TTFT law from noisy samples with
// outliers, for several endpoint shapes.
func TestCostModelLearns(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		base, perKTok, ahead float64 // seconds
	}{
		{"fast prefill, costly queue", 0.002, 0.02, 0.15},
		{"slow prefill", 0.005, 0.2, 0.05},
		{"queue only", 0.01, 0, 0.3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m costModel
			r := rand.New(rand.NewPCG(7, 9))
			now := time.Now().UnixNano()
			for i := range 3000 {
				u := r.IntN(8000)
				q := float64(r.IntN(6))
				y := tc.base + tc.perKTok*float64(u)/1000 + tc.ahead*q
				y *= 1 + 0.05*r.NormFloat64()
				if i%50 == 0 {
					y *= 20 // a stalled reply
				}
				m.learn(y, u, q, now)
			}
			c := m.coefficients()
			check := func(what string, got, want, tol float64) {
				if math.Abs(got-want) > tol {
					t.Errorf("%s = %.4f, want %.4f ± %.4f", what, got, want, tol)
				}
			}
			check("perKiloToken", c[1], tc.perKTok, 0.15*tc.perKTok+0.01)
			check("perAhead", c[2], tc.ahead, 0.15*tc.ahead+0.01)
			if c[0] < 0 || c[0] > 0.05 {
				t.Errorf("base = %.4f, want about %.4f", c[0], tc.base)
			}
			if m.samples.Load() != 3000 {
				t.Errorf("samples %d", m.samples.Load())
			}
		})
	}
	var m costModel
	for _, bad := range []struct {
		y     float64
		u     int
		ahead float64
	}{{0, 10, 0}, {-1, 10, 0}, {math.NaN(), 10, 0}, {math.Inf(1), 1, 0}, {1, -1, 0}, {1, 1, math.NaN()}} {
		m.learn(bad.y, bad.u, bad.ahead, 1)
	}
	if m.samples.Load() != 0 {
		t.Errorf("invalid samples were learned: %d", m.samples.Load())
	}
}

// latencyPool is a pool of n endpoints with the latency preset and a scrape
// interval of zero (queues are kvgate's own in-flight counts).
func latencyPool(t testing.TB, n int) (*Pool, []*Endpoint) {
	return testPool(t, n, func(o *Options) { o.Preset = "latency" })
}

// teach gives e n samples of a model of base, perKTok and perAhead seconds.
func teach(e *Endpoint, n int, base, perKTok, perAhead float64) {
	now := time.Now().UnixNano()
	for i := range n {
		u, q := 500+i*700%6000, float64(i%4)
		e.cost.learn(base+perKTok*float64(u)/1000+perAhead*float64(q), u, q, now)
	}
}

// anyReason accepts placement or spill-over: where a new prompt's placement
// falls depends on the endpoints' addresses.
const anyReason Reason = 255

// notHolder accepts any endpoint but the holder (index 1) of
// TestLatencyPredictionTable: where a spill-over lands depends on the
// endpoints' addresses.
const notHolder = -1

// What the latency picker chooses, given each endpoint's learned model,
// queue and cached prefix.
func TestLatencyPredictionTable(t *testing.T) {
	sys := longText("tenant-system", 4096) // 64 blocks of 64 bytes: 1,024 tokens
	q := func(tag string) string { return sys + longText(tag, 256) }
	type ep struct {
		perKTok, perAhead float64 // learned model (base 1 ms)
		inflight          int     // requests in flight (the queue ahead without a scrape)
		holds             bool    // the index holds the system prompt
	}
	for _, tc := range []struct {
		name   string
		eps    []ep
		text   string
		want   int
		reason Reason
	}{
		{"holder wins when queues are equal",
			[]ep{{0.1, 0.1, 0, false}, {0.1, 0.1, 0, true}, {0.1, 0.1, 0, false}}, q("a"), 1, ReasonAffinity},
		{"holder keeps a request one queue place behind",
			[]ep{{0.1, 0.1, 0, false}, {0.1, 0.1, 1, true}, {0.1, 0.1, 0, false}}, q("b"), 1, ReasonAffinity},
		{"the load bound spills a short conversation predicted about as fast elsewhere",
			[]ep{{0.1, 0.02, 0, false}, {0.1, 0.02, 5, true}, {0.1, 0.02, 0, false}}, q("d"), notHolder, ReasonSpillover},
		{"the holder keeps a long context the load bound would spill",
			[]ep{{1, 0.02, 0, false}, {1, 0.02, 5, true}, {1, 0.02, 0, false}}, q("e"), 1, ReasonAffinity},
		{"a long queue at the holder costs more than the prefill",
			[]ep{{0.1, 0.1, 0, false}, {0.1, 0.1, 8, true}, {0.1, 0.1, 1, false}}, q("c"), 0, ReasonSpillover},
		{"a slow prefill rate is worth a queue place",
			[]ep{{2, 0.1, 1, false}, {2, 0.1, 0, false}, {0.1, 0.1, 1, false}}, longText("fresh", 5120), 2, anyReason},
		{"among endpoints holding the whole prompt the emptier one",
			[]ep{{0.1, 0.1, 3, true}, {0.1, 0.1, 0, true}, {0.1, 0.1, 3, true}}, sys, 1, ReasonAffinity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, eps := latencyPool(t, len(tc.eps))
			for i, e := range tc.eps {
				teach(eps[i], 64, 0.001, e.perKTok, e.perAhead)
				for range e.inflight {
					eps[i].Begin(0)
				}
				if e.holds {
					p.Index().Record(eps[i].Addr, prompt("m", "", sys).Blocks)
				}
			}
			d := pick(t, p, eps, prompt("m", "", tc.text))
			okIndex := d.Index == tc.want || tc.want == notHolder && d.Index != 1
			if !okIndex || tc.reason != anyReason && d.Reason != tc.reason {
				t.Errorf("picked %d (%s), want %d (%s)", d.Index, d.Reason, tc.want, tc.reason)
			}
			if !d.Predicted.Valid || d.Predicted.TTFT <= 0 || d.Predicted.Ahead != float64(tc.eps[d.Index].inflight) {
				t.Errorf("prediction %+v", d.Predicted)
			}
		})
	}
}

// A new prefix goes to its consistent placement, so that kvgate replicas
// agree, unless that endpoint is predicted far slower than the best.
func TestLatencyPlacement(t *testing.T) {
	p1, eps1 := latencyPool(t, 4)
	p2, eps2 := latencyPool(t, 4)
	for i := range 20 {
		r := prompt("m", "", longText(fmt.Sprint("conv-", i), 2048))
		a, b := pick(t, p1, eps1, r), pick(t, p2, eps2, r)
		if a.Index != b.Index || a.Reason != ReasonPlacement {
			t.Errorf("conversation %d: replicas placed it on %d and %d (%s)", i, a.Index, b.Index, a.Reason)
		}
		a.Endpoint.End(a.Tokens)
		b.Endpoint.End(b.Tokens)
	}
	// Make the placed endpoint of a new prompt (where replica 2 places it)
	// very slow in replica 1: there the prompt moves.
	r := prompt("m", "", longText("conv-x", 2048))
	d := pick(t, p2, eps2, r)
	d.Endpoint.End(d.Tokens)
	for i, e := range eps1 {
		if i == d.Index {
			teach(e, 64, 0.5, 5, 1)
		} else {
			teach(e, 64, 0.001, 0.1, 0.1)
		}
	}
	d2 := pick(t, p1, eps1, r)
	if d2.Index == d.Index || d2.Reason != ReasonSpillover {
		t.Errorf("slow placed endpoint kept the prompt: %d (%s)", d2.Index, d2.Reason)
	}
}

// A prefix most endpoints hold (a system prompt) does not keep new
// conversations off the endpoint that lacks it: their placement goes
// there as it would had that endpoint cached the prefix too, or its cache
// would stay empty while the others evict.
func TestLatencyPoolWidePrefixDoesNotStarveAnEndpoint(t *testing.T) {
	p, eps := latencyPool(t, 4)
	sys := longText("agent-instructions", 8192)
	for i, e := range eps {
		teach(e, 64, 0.001, 0.1, 0.1)
		if i != 3 {
			p.Index().Record(e.Addr, prompt("m", "", sys).Blocks)
		}
	}
	for i := range 40 {
		d := pick(t, p, eps, prompt("m", "", sys+longText(fmt.Sprint("task-", i), 1024)))
		d.Endpoint.End(d.Tokens)
		if d.Index == 3 {
			if d.Reason != ReasonPlacement {
				t.Errorf("conversation %d went to the endpoint without the prefix as %s, want placement", i, d.Reason)
			}
			return
		}
	}
	t.Error("40 new conversations, none placed on the endpoint that lacks the system prompt")
}

// The learning loop: an endpoint that turns slow loses its traffic within a
// few dozen requests, and regains it once it has recovered and its
// estimate has relaxed (its half-life passed without samples).
func TestLatencySlowEndpointLosesAndRegainsTraffic(t *testing.T) {
	p, eps := latencyPool(t, 4)
	slow := false
	now := time.Now().UnixNano()
	seq := 0 // every prompt is new
	// serve picks n distinct prompts and answers each with TTFTs from the
	// endpoints' true laws (endpoint 0 ten times slower while slow); it
	// returns how many of the last `tail` went to endpoint 0.
	serve := func(n, tail int) int {
		got := 0
		for i := range n {
			pc := AcquirePickContext()
			seq++
			pc.Req = prompt("m", "", longText(fmt.Sprint("req-", seq, "-"), 2048))
			pc.Now = now
			d := p.Pick(pc, eps)
			ReleasePickContext(pc)
			y := 0.001 + 0.05*float64(d.Predicted.Uncached)/1000
			if slow && d.Index == 0 {
				y *= 10
			}
			pr := d.Predicted
			d.Endpoint.Observe(Outcome{TTFT: time.Duration(y * float64(time.Second)), Status: 200, Streamed: true, Predicted: pr})
			d.Endpoint.End(d.Tokens)
			if i >= n-tail && d.Index == 0 {
				got++
			}
		}
		return got
	}
	if got := serve(200, 100); got < 10 {
		t.Fatalf("healthy endpoint 0 got %d of 100 picks", got)
	}
	slow = true
	if got := serve(40, 20); got != 0 {
		t.Errorf("slow endpoint 0 still got %d of the last 20 of 40 picks", got)
	}
	if got := serve(100, 100); got > 2 {
		t.Errorf("slow endpoint 0 got %d of 100 picks", got)
	}
	slow = false
	now = time.Now().Add(4 * costHalfLife).UnixNano()
	if got := serve(100, 50); got < 5 {
		t.Errorf("recovered endpoint 0 got %d of the last 50 of 100 picks", got)
	}
}

// TestUncachedOfPrecise: a precise candidate's uncached tokens come from its
// CachedTokens, not from Matched converted back from text blocks (which
// rounds 16 cached tokens in 100-byte blocks down to none).
func TestUncachedOfPrecise(t *testing.T) {
	pc := &PickContext{set: &settings{blockSize: 100}}
	pc.Req.PromptTokens = 100
	for _, tc := range []struct {
		name string
		c    Candidate
		want int
	}{
		{"approximate", Candidate{Matched: 2}, 50},
		{"precise below one text block", Candidate{Precise: true, CachedTokens: 16, Matched: 0}, 84},
		{"precise whole prompt", Candidate{Precise: true, CachedTokens: 112, Matched: 4}, 0},
	} {
		if got := uncachedOf(pc, &tc.c); got != tc.want {
			t.Errorf("%s: uncachedOf = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// The eviction charge: a candidate is charged, at its prefill rate, for
// costEvictWeight of the prompt tokens it would add past its index's room,
// and nothing while the prompt fits.
func TestLatencyEvictionCharge(t *testing.T) {
	p, eps := latencyPool(t, 3)
	for _, e := range eps {
		teach(e, 64, 0.001, 0.1, 0.1)
	}
	pc := AcquirePickContext()
	defer ReleasePickContext(pc)
	pc.Req = prompt("m", "", longText("evict", 8192))
	pc.set = p.set.Load()
	pc.Now = time.Now().UnixNano()
	n := len(pc.Req.Blocks)
	cands := []Candidate{
		{E: eps[0], Room: 1 << 20},               // fits
		{E: eps[1], Room: 0},                     // every block evicts one
		{E: eps[2], Room: n / 2, Matched: n / 4}, // holds a quarter, room for half
	}
	cv := predict(pc, cands)
	tokens := func(blocks int) float64 { return float64(blocks * pc.set.blockSize / cache.CharsPerToken) }
	for i, want := range []float64{0, tokens(n), tokens(n - n/4 - n/2)} {
		got := cv[i].t - cv[i].ttft
		want = cv[i].theta[1] * want / 1000 * costEvictWeight
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("candidate %d: eviction charge %.6f s, want %.6f s", i, got, want)
		}
	}
}

// Per model: an endpoint serving two models, one ten times slower to
// prefill, learns each one's rate from the replies it gets, and predicts
// each request by its model's; a model beyond costModelsPerEndpoint shares
// the endpoint's model of all its requests, and its pick allocates nothing.
func TestLatencyLearnsPerModel(t *testing.T) {
	p, eps := latencyPool(t, 1)
	rate := map[string]float64{"small": 0.02, "big": 0.2} // seconds per 1,000 uncached tokens
	seq := 0
	predicted := func(model string) Decision {
		seq++
		d := pick(t, p, eps, prompt(model, "", longText(fmt.Sprint("q-", seq, "-"), 4096)))
		d.Endpoint.End(d.Tokens)
		return d
	}
	for i := range 200 {
		model := "small"
		if i%2 == 1 {
			model = "big"
		}
		d := predicted(model)
		y := 0.001 + rate[model]*float64(d.Predicted.Uncached)/1000
		d.Endpoint.Observe(Outcome{TTFT: time.Duration(y * float64(time.Second)), Status: 200, Streamed: true, Predicted: d.Predicted})
	}
	models := eps[0].ModelCostModels()
	for name, want := range rate {
		if m := models[name]; math.Abs(m.PerKiloToken-want) > 0.15*want || m.Samples != 100 {
			t.Errorf("%s: learned %+v, want %.3f s per 1,000 tokens from 100 samples", name, m, want)
		}
	}
	if all := eps[0].CostModel(); all.Samples != 200 {
		t.Errorf("the endpoint's model of all requests learned %d samples, want 200", all.Samples)
	}
	small, big := predicted("small").Predicted.TTFT, predicted("big").Predicted.TTFT
	if r := float64(big) / float64(small); r < 6 || r > 14 {
		t.Errorf("predicted TTFT big/small = %.1f (%v / %v), want about 10", r, big, small)
	}
	// Bounded: the slots fill up, further models fall back to the
	// endpoint's model of all requests, and picking one allocates nothing.
	for i := range 10 {
		predicted(fmt.Sprint("adapter-", i))
	}
	if n := len(eps[0].ModelCostModels()); n != costModelsPerEndpoint {
		t.Errorf("%d per-model cost models, want the bound %d", n, costModelsPerEndpoint)
	}
	req := prompt("one-more-adapter", "", longText("q-alloc", 4096))
	if d := pick(t, p, eps, req); d.Predicted.model != 0 || d.Predicted.TTFT <= 0 {
		t.Errorf("a model past the bound: prediction %+v, want the endpoint's, with no slot", d.Predicted)
	} else {
		d.Endpoint.End(d.Tokens)
	}
	if raceEnabled {
		return
	}
	if a := testing.AllocsPerRun(50, func() {
		d := pick(t, p, eps, req)
		d.Endpoint.End(d.Tokens)
	}); a != 0 {
		t.Errorf("a pick for a model past the bound allocates %.0f times", a)
	}
}
