package pick

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvgate/kvgate/cache"
)

// The settings these tests pass where the proxy passes a pool's configured
// ones (the configuration defaults when written). Package pick has no
// defaults: config/defaults.go declares them.
const (
	testPreset         = "prefix-affinity"
	testBalancer       = "least-request"
	testBlockSize      = 64
	testCacheBlocks    = 16384
	testLoadBound      = 1.25
	testQueueThreshold = 5
	testKVThreshold    = 0.8
	testScrapeInterval = 50 * time.Millisecond
)

// testOptions are the options the proxy passes for an inference pool
// configured with the test settings.
func testOptions() Options {
	return Options{
		Preset: testPreset, Balancer: testBalancer,
		BlockSize: testBlockSize, CacheBlocks: testCacheBlocks, LoadBound: testLoadBound,
		QueueThreshold: testQueueThreshold, KVThreshold: testKVThreshold, ScrapeInterval: testScrapeInterval,
	}
}

// plainOptions are the options the proxy passes for a plain pool: its
// balancer alone.
func plainOptions() Options { return Options{Balancer: testBalancer} }

// testPool is a Pool of n endpoints named 10.0.0.i:8000.
func testPool(t testing.TB, n int, mod func(o *Options)) (*Pool, []*Endpoint) {
	t.Helper()
	o := testOptions()
	if mod != nil {
		mod(&o)
	}
	p, err := NewPool(o)
	if err != nil {
		t.Fatal(err)
	}
	eps := make([]*Endpoint, n)
	for i := range eps {
		eps[i] = p.Endpoint(fmt.Sprintf("10.0.0.%d:8000", i))
	}
	return p, eps
}

// prompt returns a PickRequest for text under model and salt.
func prompt(model, salt, text string) PickRequest {
	seed := cache.Seed(model, salt)
	return PickRequest{HasPrompt: true, Seed: seed, Model: model, PromptTokens: len(text) / 4,
		Blocks: cache.Blocks(seed, []byte(text), testBlockSize, nil)}
}

func pick(t testing.TB, p *Pool, eps []*Endpoint, r PickRequest) Decision {
	t.Helper()
	pc := AcquirePickContext()
	defer ReleasePickContext(pc)
	pc.Req = r
	return p.Pick(pc, eps)
}

// warm fills p's window of recent picks with RecentWindow requests for
// distinct prompts, as a pool that has been serving for a while has, so that
// a test's own picks are weighed against a realistic share.
func warm(t testing.TB, p *Pool, eps []*Endpoint) {
	t.Helper()
	for i := range RecentWindow {
		d := pick(t, p, eps, prompt("m", "", longText(fmt.Sprint("warm-up ", i), 512)))
		d.Endpoint.End(d.Tokens)
	}
}

func longText(tag string, n int) string {
	return strings.Repeat(tag+" lorem ipsum dolor sit amet. ", n/20+1)[:n]
}

func TestPickAffinityAndPlacement(t *testing.T) {
	p, eps := testPool(t, 8, nil)
	text := longText("conversation-1", 4096)
	first := pick(t, p, eps, prompt("m", "", text))
	if first.Reason != ReasonPlacement || first.Matched != 0 {
		t.Fatalf("first pick: %+v, want placement with no match", first)
	}
	first.Endpoint.End(first.Tokens)
	for range 5 {
		d := pick(t, p, eps, prompt("m", "", text+" and a follow-up question"))
		if d.Endpoint != first.Endpoint || d.Reason != ReasonAffinity || d.Matched != d.Total {
			t.Fatalf("follow-up: %+v on %s, want affinity to %s with a full match", d, d.Endpoint.Addr, first.Endpoint.Addr)
		}
		d.Endpoint.End(d.Tokens)
	}
	if got := first.Endpoint.Picks(ReasonAffinity); got != 5 {
		t.Errorf("affinity picks = %d, want 5", got)
	}
	for _, e := range eps {
		if n, tok := e.Inflight(); n != 0 || tok != 0 {
			t.Errorf("%s in flight %d/%d after every End", e.Addr, n, tok)
		}
	}
}

func TestPickIsolatesModelsAndSalts(t *testing.T) {
	p, eps := testPool(t, 8, nil)
	text := longText("shared", 2048)
	d := pick(t, p, eps, prompt("m", "", text))
	d.Endpoint.End(d.Tokens)
	for _, r := range []PickRequest{prompt("other-model", "", text), prompt("m", "salt-a", text)} {
		d := pick(t, p, eps, r)
		if d.Matched != 0 || d.Reason != ReasonPlacement {
			t.Errorf("model %q: %+v; a different model or salt must never match", r.Model, d)
		}
		d.Endpoint.End(d.Tokens)
	}
}

// Two pools with the same endpoints and no shared state place a new prefix
// on the same endpoint.
func TestPlacementAgreesAcrossReplicas(t *testing.T) {
	a, ea := testPool(t, 16, nil)
	b, eb := testPool(t, 16, nil)
	for i := range 50 {
		r := prompt("m", "", longText(fmt.Sprint("prefix-", i), 1024))
		da, db := pick(t, a, ea, r), pick(t, b, eb, r)
		if da.Endpoint.Addr != db.Endpoint.Addr {
			t.Fatalf("prompt %d: replica a chose %s, b chose %s", i, da.Endpoint.Addr, db.Endpoint.Addr)
		}
		da.Endpoint.End(da.Tokens)
		db.Endpoint.End(db.Tokens)
	}
}

func TestPickSpillsOverAtLoadBound(t *testing.T) {
	p, eps := testPool(t, 4, nil)
	text := longText("hot", 2048)
	var ds []Decision
	spill := 0
	holder := ""
	for i := range 20 {
		d := pick(t, p, eps, prompt("m", "", text))
		ds = append(ds, d)
		if i == 0 {
			holder = d.Endpoint.Addr
		}
		if d.Reason == ReasonSpillover {
			spill++
		}
		n, _ := d.Endpoint.Inflight()
		var total int64
		for _, e := range eps {
			m, _ := e.Inflight()
			total += m
		}
		// Every endpoint that takes the prompt caches all of it, so its
		// bound is stretched by the full factor of 2 (affinityStretch); in
		// flight, counts up to the queue threshold (5) never spill.
		if limit := max(2*math.Ceil(1.25*float64(total)/4), 5); float64(n) > limit {
			t.Fatalf("pick %d put %s at %d in flight, over the stretched bound %g", i, d.Endpoint.Addr, n, limit)
		}
	}
	if spill == 0 {
		t.Fatalf("20 concurrent requests for one prefix never spilled over from %s", holder)
	}
	for _, d := range ds {
		d.Endpoint.End(d.Tokens)
	}
}

func TestAffinityStretch(t *testing.T) {
	for _, c := range []struct {
		matched, n int
		want       float64
	}{{0, 10, 1}, {5, 10, 1.5}, {10, 10, 2}, {12, 10, 2}, {3, 0, 1}} {
		if got := affinityStretch(c.matched, c.n); got != c.want {
			t.Errorf("affinityStretch(%d, %d) = %g, want %g", c.matched, c.n, got, c.want)
		}
	}
}

func TestPickFiltersAndStaleness(t *testing.T) {
	now := time.Now().UnixNano()
	fresh := func(e *Endpoint, waiting int, kv float64) {
		e.store(&ServerMetrics{Waiting: float64(waiting), KV: kv, HasKV: true}, now)
	}
	t.Run("saturated endpoints are skipped", func(t *testing.T) {
		p, eps := testPool(t, 3, nil)
		fresh(eps[0], 10, 0.1)
		fresh(eps[1], 0, 0.95)
		fresh(eps[2], 0, 0.1)
		for range 10 {
			d := pick(t, p, eps, prompt("m", "", longText(fmt.Sprint(now), 512)))
			if d.Endpoint != eps[2] {
				t.Fatalf("picked %s, want the only unsaturated endpoint", d.Endpoint.Addr)
			}
			d.Endpoint.End(d.Tokens)
		}
	})
	t.Run("picks since the scrape count towards the threshold", func(t *testing.T) {
		// A burst within one scrape interval: the endpoint the scrape showed
		// one below the threshold takes one request, not the whole burst.
		p, eps := testPool(t, 3, nil)
		fresh(eps[0], 4, 0.1)
		fresh(eps[1], 10, 0.1)
		fresh(eps[2], 10, 0.1)
		r := prompt("m", "", "x")
		r.StopIfSaturated = true
		d := pick(t, p, eps, r)
		if d.Endpoint != eps[0] || d.Saturated {
			t.Fatalf("first pick: %+v, want the endpoint below the threshold", d)
		}
		if e := pick(t, p, eps, r); e.Endpoint != nil || !e.Saturated {
			t.Fatalf("second pick within the interval: %+v, want Saturated (4 queued + 1 sent = 5)", e)
		}
		d.Endpoint.End(d.Tokens)
		if e := pick(t, p, eps, r); e.Endpoint != eps[0] {
			t.Fatalf("after the first request ended: %+v, want the endpoint again", e)
		} else {
			e.Endpoint.End(e.Tokens)
		}
	})
	t.Run("picks since the scrape fill free batch slots first", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			batch    int // running seen while others waited; 0: never
			running  int // at the last scrape, nobody waiting
			accepted int // picks taken before the endpoint saturates: free slots + the threshold (5)
		}{
			{"known batch with two free slots", 4, 2, 2 + 5},
			{"known batch, full", 4, 4, 5},
			{"batch never seen: sends do not count", 0, 2, 12},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p, eps := testPool(t, 2, nil)
				if tc.batch > 0 {
					p.StoreScrape(eps[0], &ServerMetrics{Waiting: 1, Running: float64(tc.batch), KV: 0.1, HasKV: true}, now)
				}
				p.StoreScrape(eps[0], &ServerMetrics{Running: float64(tc.running), KV: 0.1, HasKV: true}, now)
				fresh(eps[1], 10, 0.1)
				r := prompt("m", "", "x")
				r.StopIfSaturated = true
				var open []Decision
				for range 12 {
					d := pick(t, p, eps, r)
					if d.Endpoint == nil {
						break
					}
					open = append(open, d)
				}
				if len(open) != tc.accepted {
					t.Errorf("%d picks before saturation, want %d", len(open), tc.accepted)
				}
				for _, d := range open {
					d.Endpoint.End(d.Tokens)
				}
			})
		}
	})
	t.Run("all saturated stops when asked", func(t *testing.T) {
		p, eps := testPool(t, 2, nil)
		fresh(eps[0], 10, 0.1)
		fresh(eps[1], 10, 0.1)
		r := prompt("m", "", "x")
		r.StopIfSaturated = true
		if d := pick(t, p, eps, r); d.Endpoint != nil || !d.Saturated {
			t.Fatalf("got %+v, want no endpoint and Saturated", d)
		}
		r.StopIfSaturated = false
		d := pick(t, p, eps, r)
		if d.Endpoint == nil || !d.Saturated {
			t.Fatalf("got %+v, want an endpoint and Saturated", d)
		}
		d.Endpoint.End(d.Tokens)
	})
	t.Run("stale metrics are ignored", func(t *testing.T) {
		p, eps := testPool(t, 2, nil)
		old := now - int64(time.Second) // 20 intervals of 50ms ago
		eps[0].store(&ServerMetrics{Waiting: 50, KV: 0.99, HasKV: true}, old)
		eps[1].store(&ServerMetrics{Waiting: 50, KV: 0.99, HasKV: true}, old)
		r := prompt("m", "", "x")
		r.StopIfSaturated = true
		d := pick(t, p, eps, r)
		if d.Endpoint == nil || d.Saturated {
			t.Fatalf("stale saturation figures were used: %+v", d)
		}
		d.Endpoint.End(d.Tokens)
	})
	t.Run("suspect endpoints are skipped while others are fine", func(t *testing.T) {
		p, eps := testPool(t, 3, nil)
		eps[0].MarkSuspect(true)
		eps[1].MarkSuspect(true)
		for i := range 10 {
			d := pick(t, p, eps, prompt("m", "", longText(fmt.Sprint(i), 512)))
			if d.Endpoint != eps[2] {
				t.Fatalf("picked suspect %s", d.Endpoint.Addr)
			}
			d.Endpoint.End(d.Tokens)
		}
		eps[2].MarkSuspect(true)
		if d := pick(t, p, eps, prompt("m", "", "x")); d.Endpoint == nil {
			t.Fatal("all suspect: no endpoint, want any")
		} else {
			d.Endpoint.End(d.Tokens)
		}
	})
	t.Run("ejected endpoints are skipped", func(t *testing.T) {
		p, eps := testPool(t, 2, nil)
		for range EjectAfterFails {
			eps[0].ObserveConnect(true)
			eps[1].ObserveConnect(true)
		}
		if d := pick(t, p, eps, prompt("m", "", "x")); d.Endpoint != nil {
			t.Fatalf("picked ejected %s", d.Endpoint.Addr)
		}
	})
	t.Run("lora adapter present or loadable", func(t *testing.T) {
		p, eps := testPool(t, 3, nil)
		eps[0].store(&ServerMetrics{HasLoRA: true, LoRA: LoRAInfo{Running: []string{"x", "y"}, Max: 2}}, now)
		eps[1].store(&ServerMetrics{HasLoRA: true, LoRA: LoRAInfo{Running: []string{"ad"}, Max: 2}}, now)
		eps[2].store(&ServerMetrics{HasLoRA: true, LoRA: LoRAInfo{Running: []string{"x"}, Max: 2}}, now)
		seen := map[*Endpoint]bool{}
		for i := range 40 {
			d := pick(t, p, eps, prompt("ad", "", longText(fmt.Sprint(i), 300)))
			seen[d.Endpoint] = true
			d.Endpoint.End(d.Tokens)
		}
		if seen[eps[0]] {
			t.Errorf("picked %s, whose adapter slots are full and which lacks the adapter", eps[0].Addr)
		}
	})
}

func TestPresets(t *testing.T) {
	for _, name := range PresetNames() {
		t.Run(name, func(t *testing.T) {
			p, eps := testPool(t, 4, func(o *Options) { o.Preset = name })
			counts := map[string]int{}
			for i := range 40 {
				r := prompt("m", "", longText(fmt.Sprint(i), 256))
				r.Session = "user-7"
				d := pick(t, p, eps, r)
				counts[d.Endpoint.Addr]++
				if name != "prefix-affinity" && name != "latency" && d.Reason != ReasonFallback {
					t.Errorf("reason %s, want fallback", d.Reason)
				}
				d.Endpoint.End(d.Tokens)
			}
			switch name {
			case "session":
				if len(counts) != 1 {
					t.Errorf("one session went to %d endpoints", len(counts))
				}
			case "round-robin":
				for a, n := range counts {
					if n != 10 {
						t.Errorf("%s got %d of 40", a, n)
					}
				}
			default:
				if len(counts) < 2 {
					t.Errorf("40 distinct prompts all went to %v", counts)
				}
			}
		})
	}
	if _, err := buildPipeline("nope", nil); err == nil {
		t.Error("unknown preset accepted")
	}
	if _, err := buildPipeline("", nil); err == nil {
		t.Error("empty preset name accepted")
	}
	pipe, err := buildPipeline(testPreset, []ScorerWeight{{Name: "queue", Weight: 1}})
	if err != nil || len(pipe.Scorers) != 1 || pipe.affinity() {
		t.Errorf("scorer override: %+v, %v; want queue alone and no affinity", pipe, err)
	}
}

func TestRetainPurgesIndex(t *testing.T) {
	p, eps := testPool(t, 2, nil)
	d := pick(t, p, eps, prompt("m", "", longText("a", 1024)))
	d.Endpoint.End(d.Tokens)
	if n, _ := p.Index().Stats(); n == 0 {
		t.Fatal("nothing recorded")
	}
	p.Retain(nil)
	if n, _ := p.Index().Stats(); n != 0 {
		t.Errorf("%d entries left after every endpoint departed", n)
	}
	if p.Endpoint(eps[0].Addr) == eps[0] {
		t.Error("a departed endpoint came back with its old state")
	}
}

func TestCapacityFromScrape(t *testing.T) {
	p, eps := testPool(t, 1, func(o *Options) { o.CacheBlocks = 1 << 20 })
	p.StoreScrape(eps[0], &ServerMetrics{NumGPUBlocks: 4, BlockSize: 16}, time.Now().UnixNano())
	for i := range 3 {
		d := pick(t, p, eps, prompt("m", "", longText(fmt.Sprint(i), 64*10)))
		d.Endpoint.End(d.Tokens)
	}
	if n, _ := p.Index().Stats(); n != 4 {
		t.Errorf("index holds %d entries, want the scraped capacity 4", n)
	}
}

// With a system prompt that every endpoint already holds, a new conversation
// is placed by its key, so the turns of one conversation reaching different
// replicas (independent pools) go to the same endpoint.
func TestReplicasAgreePastSharedSystemPrompt(t *testing.T) {
	a, ea := testPool(t, 8, nil)
	b, eb := testPool(t, 8, nil)
	system := longText("system prompt shared by every conversation", 2048) // 32 blocks, below the placement depth
	for _, p := range []struct {
		pool *Pool
		eps  []*Endpoint
	}{{a, ea}, {b, eb}} {
		warm(t, p.pool, p.eps)
		for _, e := range p.eps { // every endpoint of both replicas holds the system prompt
			p.pool.Index().Record(e.Addr, prompt("m", "", system).Blocks)
		}
	}
	for c := range 40 {
		turn1 := system + longText(fmt.Sprint("conversation ", c, " first question"), 6000)
		turn2 := turn1 + longText(" the answer, then a second question", 3000)
		d1 := pick(t, a, ea, prompt("m", "", turn1))
		d2 := pick(t, b, eb, prompt("m", "", turn2))
		if d1.Reason != ReasonPlacement || d2.Reason != ReasonPlacement {
			t.Fatalf("conversation %d: reasons %v and %v, want placement for a prompt held only up to the system prompt", c, d1.Reason, d2.Reason)
		}
		if d1.Endpoint.Addr != d2.Endpoint.Addr {
			t.Fatalf("conversation %d: turn 1 via replica a went to %s, turn 2 via replica b to %s", c, d1.Endpoint.Addr, d2.Endpoint.Addr)
		}
		d1.Endpoint.End(d1.Tokens)
		d2.Endpoint.End(d2.Tokens)
		// Through the replica that saw turn 1, turn 2 follows the cache.
		if d := pick(t, a, ea, prompt("m", "", turn2)); d.Endpoint != d1.Endpoint || d.Reason != ReasonAffinity {
			t.Fatalf("conversation %d: turn 2 via replica a: %s (%v), want affinity to %s", c, d.Endpoint.Addr, d.Reason, d1.Endpoint.Addr)
		} else {
			d.Endpoint.End(d.Tokens)
		}
	}
}

// A holder with a request or two in flight while the others are idle keeps
// the next turn: at model-server loads in-flight counts are small integers,
// and moving the turn would throw its cached prefill away for nothing.
func TestHolderKeepsTurnAtLowLoad(t *testing.T) {
	p, eps := testPool(t, 8, nil)
	warm(t, p, eps)
	turn := longText("a long conversation", 8192)
	first := pick(t, p, eps, prompt("m", "", turn))
	var open []Decision
	for i := range 4 { // the holder's in flight: 1, 2, 3, 4 (below the queue threshold 5)
		// Fresh scrapes: nobody queues; the holder's KV use grows.
		for _, e := range eps {
			kv := 0.05
			if e == first.Endpoint {
				kv = 0.1 * float64(i+1)
			}
			p.StoreScrape(e, &ServerMetrics{Running: float64(i + 1), KV: kv, HasKV: true}, time.Now().UnixNano())
		}
		turn += longText(fmt.Sprint(" turn ", i), 1024)
		d := pick(t, p, eps, prompt("m", "", turn))
		if d.Endpoint != first.Endpoint || d.Reason != ReasonAffinity {
			t.Fatalf("turn %d with %d in flight on the holder: %s (%v), want affinity to %s", i, i+1, d.Endpoint.Addr, d.Reason, first.Endpoint.Addr)
		}
		open = append(open, d)
	}
	for _, d := range append(open, first) {
		d.Endpoint.End(d.Tokens)
	}
}

// A holder with more of the pool's recent traffic than the stretched bound
// allows loses the next request to the best endpoint within the bound, even
// with nothing in flight.
func TestHolderSpillsOnRecentShare(t *testing.T) {
	p, eps := testPool(t, 4, nil)
	text := longText("one hot prompt", 4096)
	var holder *Endpoint
	spilled := false
	for i := range RecentWindow {
		d := pick(t, p, eps, prompt("m", "", text))
		d.Endpoint.End(d.Tokens)
		if i == 0 {
			holder = d.Endpoint
		}
		spilled = spilled || d.Reason == ReasonSpillover
	}
	if !spilled {
		t.Fatal("one prompt sent 256 times never spilled over")
	}
	// A fully cached prompt stretches the bound 2×: at most 2 × 1.25 of the
	// mean share, plus rounding.
	if got, limit := holder.Recent(), int64(2*math.Ceil(1.25*RecentWindow/4)); got > limit {
		t.Errorf("holder has %d of the last %d picks, over the stretched bound %d", got, RecentWindow, limit)
	}
}

// Every pick is counted in the window exactly once and leaves it exactly
// once, under concurrent picks.
func TestRecentWindowCountsExactlyOnce(t *testing.T) {
	p, eps := testPool(t, 8, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				d := pick(t, p, eps, prompt("m", "", longText(fmt.Sprint(g, " prompt ", i), 256)))
				d.Endpoint.End(d.Tokens)
			}
		})
	}
	wg.Wait()
	var sum int64
	for _, e := range eps {
		sum += e.Recent()
	}
	if sum != RecentWindow {
		t.Fatalf("recent counts sum to %d after 4,000 picks, want the window %d", sum, RecentWindow)
	}
}

// A long system prompt (past the placement depth) held by several endpoints
// does not attract new conversations: they are placed by their own first
// block and spread, and their next turns follow them.
func TestSharedLongSystemPromptSpreads(t *testing.T) {
	p, eps := testPool(t, 8, nil)
	warm(t, p, eps)
	system := longText("a long system prompt with tools", 8192) // 128 blocks, past the depth of 64
	p.Index().Record(eps[0].Addr, prompt("m", "", system).Blocks)
	alone := pick(t, p, eps, prompt("m", "", system+longText("question 0", 1024)))
	if alone.Endpoint != eps[0] || alone.Reason != ReasonAffinity {
		t.Fatalf("system prompt held by one endpoint: %s (%v), want affinity to its holder %s", alone.Endpoint.Addr, alone.Reason, eps[0].Addr)
	}
	alone.Endpoint.End(alone.Tokens)
	p.Index().Record(eps[1].Addr, prompt("m", "", system).Blocks)
	used := map[*Endpoint]bool{}
	for c := range 40 {
		turn1 := system + longText(fmt.Sprint("conversation ", c, " question"), 2048)
		d := pick(t, p, eps, prompt("m", "", turn1))
		d.Endpoint.End(d.Tokens)
		if d.Reason != ReasonPlacement {
			t.Fatalf("conversation %d: %v, want placement past a prefix two endpoints hold", c, d.Reason)
		}
		used[d.Endpoint] = true
		next := pick(t, p, eps, prompt("m", "", turn1+longText(" answer and follow-up", 2048)))
		next.Endpoint.End(next.Tokens)
		if next.Endpoint != d.Endpoint || next.Reason != ReasonAffinity {
			t.Fatalf("conversation %d turn 2: %s (%v), want affinity to %s", c, next.Endpoint.Addr, next.Reason, d.Endpoint.Addr)
		}
	}
	if len(used) < 6 {
		t.Errorf("40 new conversations went to %d of 8 endpoints, want them spread", len(used))
	}
}

func TestSGLangPicker(t *testing.T) {
	req := func(n int) *PickContext {
		pc := &PickContext{}
		pc.Req.Blocks = make([]uint64, n)
		return pc
	}
	for _, c := range []struct {
		name     string
		n        int
		inflight []int64
		matched  []int
		cached   []int
		want     int
	}{
		{"imbalanced: least loaded wins over a full match", 10, []int64{200, 10, 5}, []int{10, 0, 0}, []int{0, 0, 0}, 2},
		{"imbalance under the absolute threshold is ignored", 10, []int64{60, 0, 1}, []int{10, 0, 0}, []int{9, 1, 5}, 0},
		{"imbalance under the relative threshold is ignored", 10, []int64{180, 130, 150}, []int{0, 8, 0}, []int{9, 1, 5}, 1},
		{"match over half: longest match", 10, []int64{1, 0, 0}, []int{3, 6, 0}, []int{0, 9, 1}, 1},
		{"equal matches: least loaded", 10, []int64{3, 1, 0}, []int{6, 6, 0}, []int{0, 9, 1}, 1},
		{"match at most half: smallest cache", 10, []int64{0, 0, 0}, []int{5, 0, 0}, []int{7, 9, 2}, 2},
		{"empty prompt: smallest cache", 0, []int64{0, 0, 0}, []int{0, 0, 0}, []int{7, 1, 2}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			cands := make([]Candidate, len(c.inflight))
			for i := range cands {
				cands[i] = Candidate{Inflight: c.inflight[i], Matched: c.matched[i], Cached: c.cached[i]}
			}
			if got := (SGLangPicker{}).Pick(req(c.n), cands); got != c.want {
				t.Errorf("picked %d, want %d", got, c.want)
			}
		})
	}
}

// The plain presets read the index but neither place nor bound: the gie
// preset sends a new prefix to the least loaded endpoint and a known one to
// its holder however busy; the sglang preset grows the emptiest cache.
func TestPlainPresets(t *testing.T) {
	t.Run("gie", func(t *testing.T) {
		p, eps := testPool(t, 4, func(o *Options) { o.Preset = "gie" })
		now := time.Now().UnixNano()
		for i, e := range eps {
			p.StoreScrape(e, &ServerMetrics{Waiting: float64(3 - i), KV: 0.1, HasKV: true}, now)
		}
		text := longText("gie conversation", 4096)
		d := pick(t, p, eps, prompt("m", "", text))
		if d.Endpoint != eps[3] || d.Reason != ReasonFallback {
			t.Fatalf("new prefix: %s (%v), want the idlest %s by fallback", d.Endpoint.Addr, d.Reason, eps[3].Addr)
		}
		for range 20 { // far past any load bound: the holder keeps it
			e := pick(t, p, eps, prompt("m", "", text))
			if e.Endpoint != eps[3] || e.Reason != ReasonAffinity {
				t.Fatalf("known prefix: %s (%v), want affinity to %s", e.Endpoint.Addr, e.Reason, eps[3].Addr)
			}
		}
	})
	t.Run("sglang", func(t *testing.T) {
		p, eps := testPool(t, 3, func(o *Options) { o.Preset = "sglang" })
		p.Index().Record(eps[0].Addr, prompt("m", "", longText("filler a", 8192)).Blocks)
		p.Index().Record(eps[1].Addr, prompt("m", "", longText("filler b", 4096)).Blocks)
		d := pick(t, p, eps, prompt("m", "", longText("new", 2048)))
		if d.Endpoint != eps[2] {
			t.Fatalf("new prefix went to %s, want the emptiest cache %s", d.Endpoint.Addr, eps[2].Addr)
		}
		d = pick(t, p, eps, prompt("m", "", longText("filler a", 8192)+" more"))
		if d.Endpoint != eps[0] || d.Reason != ReasonAffinity {
			t.Fatalf("known prefix: %s (%v), want affinity to %s", d.Endpoint.Addr, d.Reason, eps[0].Addr)
		}
	})
}

// With fresh metrics the burst guard reads the server's queue plus the picks
// sent since the scrape: a holder that runs many requests with nobody
// waiting keeps the next turn past the in-flight bound, and one whose queue
// would reach the threshold with the picks since the scrape loses it.
func TestBurstGuardReadsFreshQueue(t *testing.T) {
	p, eps := testPool(t, 4, nil)
	warm(t, p, eps)
	turn := longText("a busy conversation", 8192)
	first := pick(t, p, eps, prompt("m", "", turn))
	open := []Decision{first}
	for range 7 { // 8 in flight on the holder, far over 1.25 × the mean
		first.Endpoint.Begin(0)
		open = append(open, Decision{Endpoint: first.Endpoint})
	}
	scrape := func(waiting int) {
		for _, e := range eps {
			w := 0
			if e == first.Endpoint {
				w = waiting
			}
			p.StoreScrape(e, &ServerMetrics{Waiting: float64(w), Running: 8, KV: 0.1, HasKV: true}, time.Now().UnixNano())
		}
	}
	scrape(0)
	d := pick(t, p, eps, prompt("m", "", turn+" next"))
	if d.Endpoint != first.Endpoint || d.Reason != ReasonAffinity {
		t.Fatalf("holder with 8 running and none waiting: %s (%v), want affinity to %s", d.Endpoint.Addr, d.Reason, first.Endpoint.Addr)
	}
	open = append(open, d)
	scrape(3) // 3 waiting; one more pick since the scrape makes 4, this one 5: still within 5
	for i, stays := range []bool{true, true, false} {
		d := pick(t, p, eps, prompt("m", "", turn+" next"))
		// The third is past the threshold: the holder is saturated (3
		// waiting + 2 sent since the scrape) and another endpoint takes it.
		if (d.Endpoint == first.Endpoint) != stays || stays && d.Reason != ReasonAffinity {
			t.Fatalf("pick %d after a scrape with 3 waiting: %v on %s, want it to stay on the holder: %v", i, d.Reason, d.Endpoint.Addr, stays)
		}
		open = append(open, d)
	}
	for _, d := range open {
		d.Endpoint.End(d.Tokens)
	}
}

// Package pick has no defaults: a pool without a balancer is an error, and
// an option outside its range acts as Options says, never as a default.
func TestOptionsWithoutDefaults(t *testing.T) {
	o := testOptions()
	o.Balancer = ""
	if _, err := NewPool(o); err == nil || !strings.Contains(err.Error(), "unknown balancer") {
		t.Errorf("no balancer: %v, want an unknown balancer error", err)
	}
	t.Run("zero kv threshold leaves kv out", func(t *testing.T) {
		p, eps := testPool(t, 1, func(o *Options) { o.KVThreshold = 0 })
		p.StoreScrape(eps[0], &ServerMetrics{KV: 1, HasKV: true}, time.Now().UnixNano())
		r := prompt("m", "", "x")
		r.StopIfSaturated = true
		d := pick(t, p, eps, r)
		if d.Endpoint == nil || d.Saturated {
			t.Fatalf("a full KV cache saturated with kvThreshold 0: %+v", d)
		}
		d.Endpoint.End(d.Tokens)
	})
	t.Run("zero scrape interval is never fresh", func(t *testing.T) {
		p, eps := testPool(t, 1, func(o *Options) { o.ScrapeInterval = 0 })
		p.StoreScrape(eps[0], &ServerMetrics{Waiting: 50, KV: 0.99, HasKV: true}, time.Now().UnixNano())
		r := prompt("m", "", "x")
		r.StopIfSaturated = true
		d := pick(t, p, eps, r)
		if d.Endpoint == nil || d.Saturated {
			t.Fatalf("a scrape counted as fresh with scrapeInterval 0: %+v", d)
		}
		d.Endpoint.End(d.Tokens)
	})
	t.Run("load bound below 1 is 1", func(t *testing.T) {
		for _, b := range []float64{0, -1, 0.5, math.NaN()} {
			p, _ := testPool(t, 1, func(o *Options) { o.LoadBound = b })
			if got := p.set.Load().bound; got != 1 {
				t.Errorf("load bound %v became %v, want 1", b, got)
			}
		}
	})
	t.Run("zero block size keeps the configured capacity", func(t *testing.T) {
		p, eps := testPool(t, 1, func(o *Options) { o.BlockSize, o.CacheBlocks = 0, 8 })
		p.StoreScrape(eps[0], &ServerMetrics{NumGPUBlocks: 4, BlockSize: 16}, time.Now().UnixNano())
		p.Index().Record(eps[0].Addr, cache.Blocks(1, []byte(longText("y", 64*20)), testBlockSize, nil))
		if n, _ := p.Index().Stats(); n != 8 {
			t.Errorf("index holds %d entries, want cacheBlocks 8", n)
		}
	})
}

// The burst guard counts the picks sent since the scrape as the
// not-saturated filter does (sentQueued): a holder whose batch has free
// slots keeps a hot prompt's requests past the queue threshold, instead of
// spilling them as if each one waited.
func TestBurstGuardFillsFreeSlots(t *testing.T) {
	p, eps := testPool(t, 4, nil)
	warm(t, p, eps)
	now := time.Now().UnixNano()
	for _, e := range eps { // seen running 64 while others waited: a batch of 64
		p.StoreScrape(e, &ServerMetrics{Waiting: 1, Running: 64, KV: 0.1, HasKV: true}, now)
		p.StoreScrape(e, &ServerMetrics{KV: 0.1, HasKV: true}, now)
	}
	text := longText("hot prompt", 8192)
	first := pick(t, p, eps, prompt("m", "", text))
	open := []Decision{first}
	for i := range 8 {
		d := pick(t, p, eps, prompt("m", "", text))
		open = append(open, d)
		if d.Endpoint != first.Endpoint || d.Reason != ReasonAffinity {
			t.Fatalf("request %d of a hot prompt with 62 free slots at the holder: %s (%v), want affinity to %s", i+2, d.Endpoint.Addr, d.Reason, first.Endpoint.Addr)
		}
	}
	for _, d := range open {
		d.Endpoint.End(d.Tokens)
	}
}
