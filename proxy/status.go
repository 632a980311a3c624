package proxy

import (
	"crypto/x509"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/pick"
)

// This file keeps what the status page and the /debug endpoints show that
// the proxy would not keep otherwise (per-second samples, recent reloads,
// recent denials, the last pick decisions, route hits), and builds the
// read-only views of it on demand (Status, Picks). The request path only
// adds to atomics and, once per inference pick, copies the scored
// candidates into a preallocated ring slot it takes with TryLock (a slot a
// reader holds is skipped, never waited for). Everything else runs when
// someone looks: the views allocate then, not per request.

// statusState is the proxy's status bookkeeping. Its zero value is ready.
type statusState struct {
	reqs    atomic.Uint64 // requests finished
	errs    atomic.Uint64 // of those, answered 5xx
	ttftUS  atomic.Uint64 // sum of TTFTs of watched replies, microseconds
	ttftN   atomic.Uint64 // how many TTFTs
	prompt  atomic.Uint64 // prompt tokens from usage
	cached  atomic.Uint64 // cached prompt tokens from usage
	routes  atomic.Pointer[map[string]*routeHits]
	started atomic.Int64 // unix nanos of Start; 0 not started

	reloads eventRing[ReloadEvent]
	denials denialLog
	picks   pickRing
	samples sampleRing

	stopOnce sync.Once
	stop     chan struct{} // closes the sampler; nil until Start
	done     chan struct{}
}

// routeHits counts one route's requests, in total and by backend pool. The
// maps are immutable once published; a reload keeps the counters (the
// same pointers) of the routes and backends that stay, so a request that
// loaded the map before the swap still counts where the view reads.
type routeHits struct {
	hits     *atomic.Uint64
	backends map[string]*atomic.Uint64
}

// syncRoutes publishes the hit counters of cfg's routes, keeping the counts
// of routes and backends that stay.
func (st *statusState) syncRoutes(cfg *config.Config) {
	var old map[string]*routeHits
	if m := st.routes.Load(); m != nil {
		old = *m
	}
	next := make(map[string]*routeHits, len(cfg.Routes))
	for _, r := range cfg.Routes {
		h := &routeHits{hits: new(atomic.Uint64), backends: map[string]*atomic.Uint64{}}
		if o := old[r.Name]; o != nil {
			h.hits = o.hits
			for k, v := range o.backends {
				h.backends[k] = v
			}
		}
		for _, b := range r.Backends {
			if h.backends[b.Pool] == nil {
				h.backends[b.Pool] = new(atomic.Uint64)
			}
		}
		next[r.Name] = h
	}
	st.routes.Store(&next)
}

// observe counts one finished request (Exchange.finish).
func (st *statusState) observe(x *Exchange, status int) {
	st.reqs.Add(1)
	if status >= 500 {
		st.errs.Add(1)
	}
	if x.ttft > 0 {
		st.ttftUS.Add(uint64(x.ttft.Microseconds()))
		st.ttftN.Add(1)
	}
	if x.tokens.Prompt > 0 {
		st.prompt.Add(uint64(x.tokens.Prompt))
		st.cached.Add(uint64(min(max(x.tokens.Cached, 0), x.tokens.Prompt)))
	}
	if x.route == "" {
		return
	}
	if m := st.routes.Load(); m != nil {
		if h := (*m)[x.route]; h != nil {
			h.hits.Add(1)
			if c := h.backends[x.pool]; c != nil {
				c.Add(1)
			}
		}
	}
}

// eventRing keeps the last len(buf) events, newest last in snapshot.
type eventRing[T any] struct {
	mu  sync.Mutex
	buf []T
	n   int
}

const keepEvents = 32

func (r *eventRing[T]) add(e T) {
	r.mu.Lock()
	if r.buf == nil {
		r.buf = make([]T, keepEvents)
	}
	r.buf[r.n%len(r.buf)] = e
	r.n++
	r.mu.Unlock()
}

// snapshot returns the kept events, newest first.
func (r *eventRing[T]) snapshot() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := min(r.n, len(r.buf))
	out := make([]T, 0, k)
	for i := 1; i <= k; i++ {
		out = append(out, r.buf[(r.n-i)%len(r.buf)])
	}
	return out
}

// ReloadEvent is one configuration load: the first at start, then every
// reload, applied or refused.
type ReloadEvent struct {
	Time   time.Time `json:"time"`
	Result string    `json:"result"` // ok | error
	Source string    `json:"source"`
	Error  string    `json:"error,omitempty"`
}

func (st *statusState) recordReload(source string, err error) {
	e := ReloadEvent{Time: time.Now(), Result: "ok", Source: source}
	if err != nil {
		e.Result, e.Error = "error", err.Error()
	}
	st.reloads.add(e)
}

// denialLog counts authorization denials by policy and keeps the last few.
// A denial is not the hot path of a healthy proxy; a flood of them takes
// one short lock each.
type denialLog struct {
	mu       sync.Mutex
	byPolicy map[string]*DenialCount
	recent   eventRing[DenialEvent]
}

// DenialCount is how many requests one policy denied, and when it last did.
type DenialCount struct {
	Policy string    `json:"policy"`
	Count  uint64    `json:"count"`
	Last   time.Time `json:"last"`
}

// DenialEvent is one denied request.
type DenialEvent struct {
	Time      time.Time `json:"time"`
	Policy    string    `json:"policy"`
	Route     string    `json:"route"`
	Principal string    `json:"principal,omitempty"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
}

// maxDenialPolicies bounds the policy map (policy names come from the
// configuration, but reloads may rename them forever).
const maxDenialPolicies = 256

func (d *denialLog) add(policy string, x *Exchange) {
	now := time.Now()
	path := x.path
	if len(path) > 200 {
		path = path[:200]
	}
	// The request's strings may live in pooled buffers: copy them.
	d.recent.add(DenialEvent{Time: now, Policy: policy, Route: x.route, Principal: strings.Clone(x.peerID),
		Method: strings.Clone(x.method), Path: strings.Clone(path)})
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byPolicy == nil {
		d.byPolicy = map[string]*DenialCount{}
	}
	c := d.byPolicy[policy]
	if c == nil {
		if len(d.byPolicy) >= maxDenialPolicies {
			return
		}
		c = &DenialCount{Policy: policy}
		d.byPolicy[policy] = c
	}
	c.Count++
	c.Last = now
}

func (d *denialLog) counts() []DenialCount {
	d.mu.Lock()
	out := make([]DenialCount, 0, len(d.byPolicy))
	for _, c := range d.byPolicy {
		out = append(out, *c)
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b DenialCount) int { return strings.Compare(a.Policy, b.Policy) })
	return out
}

// Sample is one second of traffic, for the page's charts.
type Sample struct {
	// Time is the end of the second, unix milliseconds.
	Time int64 `json:"t"`
	// Requests finished in the second, and of those 5xx.
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	// TTFTMs is the mean time to first token of the second's watched
	// replies, milliseconds; -1 none.
	TTFTMs float64 `json:"ttftMs"`
	// HitRate is cached / prompt tokens reported in the second's usage; -1 none.
	HitRate float64 `json:"hitRate"`
}

// keepSamples is the sample ring's length: ten minutes of seconds.
const keepSamples = 600

type sampleRing struct {
	mu   sync.Mutex
	buf  [keepSamples]Sample
	n    int
	last [6]uint64 // reqs, errs, ttftUS, ttftN, prompt, cached at the previous sample
}

// sample takes one sample of st's counters.
func (st *statusState) sample(now time.Time) {
	cur := [6]uint64{st.reqs.Load(), st.errs.Load(), st.ttftUS.Load(), st.ttftN.Load(), st.prompt.Load(), st.cached.Load()}
	r := &st.samples
	r.mu.Lock()
	defer r.mu.Unlock()
	var d [6]uint64
	for i := range cur {
		d[i] = cur[i] - r.last[i]
	}
	r.last = cur
	s := Sample{Time: now.UnixMilli(), Requests: d[0], Errors: d[1], TTFTMs: -1, HitRate: -1}
	if d[3] > 0 {
		s.TTFTMs = float64(d[2]) / float64(d[3]) / 1000
	}
	if d[4] > 0 {
		s.HitRate = float64(d[5]) / float64(d[4])
	}
	r.buf[r.n%keepSamples] = s
	r.n++
}

// snapshot returns the kept samples, oldest first.
func (r *sampleRing) snapshot() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := min(r.n, keepSamples)
	out := make([]Sample, 0, k)
	for i := r.n - k; i < r.n; i++ {
		out = append(out, r.buf[i%keepSamples])
	}
	return out
}

// startSampler takes a sample every second until stopSampler.
func (st *statusState) startSampler() {
	st.started.Store(time.Now().UnixNano())
	st.stop, st.done = make(chan struct{}), make(chan struct{})
	st.samples.mu.Lock()
	st.samples.last = [6]uint64{st.reqs.Load(), st.errs.Load(), st.ttftUS.Load(), st.ttftN.Load(), st.prompt.Load(), st.cached.Load()}
	st.samples.mu.Unlock()
	go func() {
		defer close(st.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-st.stop:
				return
			case now := <-t.C:
				st.sample(now)
			}
		}
	}()
}

func (st *statusState) stopSampler() {
	if st.stop == nil {
		return
	}
	st.stopOnce.Do(func() {
		close(st.stop)
		<-st.done
	})
}

// keepPicks is how many inference pick decisions the pick ring keeps.
const keepPicks = 64

// pickRing keeps the last keepPicks inference decisions. Each slot owns its
// memory (candidate slice, byte buffers), reused from one decision to the
// next, so recording does not allocate once every slot has seen the pool's
// size; a writer that finds a slot locked (a reader is copying it) drops
// that one decision rather than wait.
type pickRing struct {
	next  atomic.Uint64
	slots [keepPicks]pickSlot
}

type pickSlot struct {
	mu      sync.Mutex
	seq     uint64 // 0: empty
	at      int64
	route   string // from the configuration: long-lived
	pool    string
	reason  pick.Reason
	matched int
	total   int
	tokens  int
	chosen  *pick.Endpoint
	reqID   []byte // copies: the request's strings may live in pooled buffers
	model   []byte
	cands   []pick.Candidate
	all     []*pick.Endpoint // the pool's endpoints at the pick (an immutable list)
}

func (r *pickRing) record(x *Exchange, pool string, pc *pick.PickContext, d *pick.Decision, all []*pick.Endpoint) {
	seq := r.next.Add(1)
	s := &r.slots[(seq-1)%keepPicks]
	if !s.mu.TryLock() {
		return
	}
	s.seq, s.at, s.route, s.pool = seq, pc.Now, x.route, pool
	s.reason, s.matched, s.total, s.tokens, s.chosen = d.Reason, d.Matched, d.Total, d.Tokens, d.Endpoint
	s.reqID = append(s.reqID[:0], x.requestID...)
	s.model = append(s.model[:0], pc.Req.Model...)
	s.cands = append(s.cands[:0], pc.Kept...)
	s.all = all
	s.mu.Unlock()
}

// PickRecord is one inference pick decision: where a request went and why.
type PickRecord struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"requestId"`
	Route     string    `json:"route"`
	Pool      string    `json:"pool"`
	Model     string    `json:"model,omitempty"`
	Endpoint  string    `json:"endpoint"`
	// Reason is why it went there: affinity | spillover | placement | fallback.
	Reason string `json:"reason"`
	// MatchedBlocks of PromptBlocks leading prompt blocks were cached on the
	// chosen endpoint, as the prefix index saw it.
	MatchedBlocks int         `json:"matchedBlocks"`
	PromptBlocks  int         `json:"promptBlocks"`
	PromptTokens  int         `json:"promptTokens"`
	Candidates    []Candidate `json:"candidates"`
}

// Candidate is one endpoint in a pick: the signals the scorers read and the
// score they gave, or why it was not a candidate.
type Candidate struct {
	Endpoint string `json:"endpoint"`
	Chosen   bool   `json:"chosen,omitempty"`
	// Filtered says why the filters left it out ("ejected", "filtered");
	// the other fields are then empty.
	Filtered      string   `json:"filtered,omitempty"`
	Score         float64  `json:"score"`
	MatchedBlocks int      `json:"matchedBlocks"`
	Queue         float64  `json:"queue"`
	KV            *float64 `json:"kv,omitempty"`
	Fresh         bool     `json:"fresh"`
	Inflight      int64    `json:"inflight"`
	Recent        int64    `json:"recent"`
}

// candidateViews turns a pick's kept candidates into views, with every
// endpoint of the pool that the filters left out after them.
func candidateViews(kept []pick.Candidate, all []*pick.Endpoint, chosen *pick.Endpoint, at int64) []Candidate {
	out := make([]Candidate, 0, len(all))
	seen := make(map[*pick.Endpoint]bool, len(kept))
	for i := range kept {
		c := &kept[i]
		seen[c.E] = true
		v := Candidate{Endpoint: c.E.Addr, Chosen: c.E == chosen, Score: round3(c.Score), MatchedBlocks: c.Matched,
			Queue: c.Queue, Fresh: c.Fresh, Inflight: c.Inflight, Recent: c.Recent}
		if !math.IsNaN(c.KV) {
			kv := round3(c.KV)
			v.KV = &kv
		}
		out = append(out, v)
	}
	slices.SortStableFunc(out, func(a, b Candidate) int {
		switch {
		case a.Chosen != b.Chosen:
			if a.Chosen {
				return -1
			}
			return 1
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	for _, e := range all {
		if seen[e] {
			continue
		}
		why := "filtered"
		if !e.Ready(at) {
			why = "ejected"
		}
		out = append(out, Candidate{Endpoint: e.Addr, Filtered: why})
	}
	return out
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// Picks returns the last inference pick decisions, newest first, at most n
// (n <= 0: all kept).
func (p *Proxy) Picks(n int) []PickRecord {
	r := &p.status.picks
	out := make([]PickRecord, 0, keepPicks)
	for i := range r.slots {
		s := &r.slots[i]
		s.mu.Lock()
		if s.seq != 0 {
			out = append(out, PickRecord{
				Seq: s.seq, Time: time.Unix(0, s.at), RequestID: string(s.reqID), Route: s.route, Pool: s.pool,
				Model: string(s.model), Endpoint: s.chosen.Addr, Reason: s.reason.String(),
				MatchedBlocks: s.matched, PromptBlocks: s.total, PromptTokens: s.tokens,
				Candidates: candidateViews(s.cands, s.all, s.chosen, s.at),
			})
		}
		s.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b PickRecord) int {
		switch {
		case a.Seq > b.Seq:
			return -1
		case a.Seq < b.Seq:
			return 1
		}
		return 0
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// certExpiry is the NotAfter of a certificate's leaf, or zero.
func certExpiry(chain [][]byte, leaf *x509.Certificate) (time.Time, string) {
	if leaf == nil && len(chain) > 0 {
		leaf, _ = x509.ParseCertificate(chain[0])
	}
	if leaf == nil {
		return time.Time{}, ""
	}
	return leaf.NotAfter, leaf.Subject.String()
}
