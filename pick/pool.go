package pick

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvgate/kvgate/cache"
)

// Reason says why an endpoint was picked; it labels kvgate_picks_total.
type Reason uint8

const (
	// ReasonAffinity: the endpoint holding the longest prefix of the prompt won.
	ReasonAffinity Reason = iota
	// ReasonSpillover: an endpoint held a prefix but was over the load bound
	// (or lost on load scores), so another took the request.
	ReasonSpillover
	// ReasonPlacement: no endpoint held the prompt's first block; consistent
	// placement with bounded loads (cache.Place) chose, so replicas agree.
	ReasonPlacement
	// ReasonFallback: no usable prompt (not JSON, unknown path) or a preset
	// without prefix scoring; the preset's picker chose on load alone.
	ReasonFallback
	numReasons
)

// Reasons lists every Reason, for exposition.
var Reasons = [...]Reason{ReasonAffinity, ReasonSpillover, ReasonPlacement, ReasonFallback}

var reasonNames = [...]string{"affinity", "spillover", "placement", "fallback"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// PickRequest is what the picker knows about one request. For an inference
// pick the proxy fills it from a bounded prefix of the body (openai.Extract,
// cache.Seed, cache.Blocks); a balancer pick reads only PromptTokens and Avoid.
type PickRequest struct {
	// HasPrompt is false when the body was not a usable OpenAI request; the
	// pick then falls back to load alone and nothing is recorded.
	HasPrompt bool
	// Seed is cache.Seed(model, cache_salt); Blocks the chained block hashes.
	Seed   uint64
	Blocks []uint64
	// Model is the body's model: a base model or a LoRA adapter name.
	Model string
	// PromptTokens is an estimate (bytes/4) counted in the in-flight tokens.
	PromptTokens int
	// TailBlocks estimates the blocks of a prompt longer than the hashed
	// prefix beyond Blocks (from the body length); the index ages the chosen
	// endpoint's cache by them too (cache.Index.RecordTail). 0 none.
	TailBlocks int
	// TokenBlocks are the own hashes of the prompt's token blocks
	// (cache.TokenBlocks over the token ids the model server's tokenizer
	// gave): set, they turn on precise matching for the endpoints whose KV
	// events are live (see precise.go). nil: approximate matching only.
	TokenBlocks []uint64
	// Session is the session header's value (session preset); "" none.
	Session string
	// StopIfSaturated makes Pick return no endpoint, with Decision.Saturated,
	// when every healthy endpoint is saturated, so that the caller can shed
	// or queue the request. Otherwise Pick chooses among saturated ones.
	StopIfSaturated bool
	// Avoid is the endpoint a retry's previous try failed on: it is left out
	// unless it is the only candidate past the filters. nil none.
	Avoid *Endpoint
}

// Candidate is one endpoint during one pick, with the signals the scorers
// read, loaded once from the Endpoint's atomics.
type Candidate struct {
	E *Endpoint
	// Matched is how many leading prompt blocks the index says E holds.
	Matched int
	// Fresh reports a scrape no older than twice the scrape interval; when
	// false the scraped Queue and KV are replaced by proxy-side counts.
	Fresh bool
	// Queue is the scraped queue depth when fresh, else proxy in-flight requests.
	Queue float64
	// KV is the scraped KV utilisation in [0,1] when fresh; NaN otherwise.
	KV float64
	// Inflight and Tokens are proxy-side in-flight requests and prompt tokens.
	Inflight, Tokens int64
	// Recent is how many of the pool's last RecentWindow picks chose E.
	Recent int64
	// Since is how many picks chose E after its last fresh scrape (0 when
	// stale): requests its scraped queue does not count yet.
	Since int64
	// Cached is how many blocks the index holds for E; filled only for a
	// picker that is a CacheReader (SGLangPicker).
	Cached int
	// Score is the weighted score in [0,1] the picker reads.
	Score float64
	// Precise reports that Matched comes from E's KV events (precise mode),
	// and CachedTokens is then E's cached prefix of the prompt in tokens.
	Precise      bool
	CachedTokens int
	// Room is how many more blocks the index takes for E before it
	// evicts (its capacity less its entries); filled only for the latency
	// preset, whose cost charges a pick for what it would evict.
	Room int
}

// PickContext is the per-request scratch space of a pick. It is not safe for
// concurrent use: take one per request (AcquirePickContext) and release it
// after the pick. Filters, scorers and pickers may read Req and the pool
// settings through it.
type PickContext struct {
	Req PickRequest
	// Now is the pick time in unix nanoseconds; 0 makes the pick read the clock.
	Now int64
	// Saturated is set by the not-saturated filter when every candidate was.
	Saturated bool
	// Keep makes a pick copy the candidates it scored (those past the
	// filters, with their Score) into Kept, for a decision log or a dry
	// run; the copy reuses Kept's memory. Off (the default), a pick keeps
	// nothing.
	Keep bool
	// Kept holds the scored candidates of the last pick when Keep is set;
	// filtered-out endpoints are absent. Valid until the next pick with pc.
	Kept []Candidate

	set    *settings
	cands  []Candidate
	scores []float64
	match  []int
	pmatch []int // precise matches by token-index slot
	addrs  []string
	loads  []int
	idx    []int
	sizes  []int
	room   []int

	costs     []costView // cost.go
	predicted []costView // the costs of the last latency pick; nil otherwise
}

var pickContexts = sync.Pool{New: func() any { return new(PickContext) }}

// AcquirePickContext returns a cleared PickContext from a pool.
func AcquirePickContext() *PickContext {
	pc := pickContexts.Get().(*PickContext)
	pc.Req = PickRequest{Blocks: pc.Req.Blocks[:0], TokenBlocks: pc.Req.TokenBlocks[:0]}
	pc.Now = 0
	pc.Saturated = false
	pc.Keep = false
	pc.Kept = pc.Kept[:0]
	return pc
}

// ReleasePickContext returns pc to the pool; pc must not be used afterwards.
func ReleasePickContext(pc *PickContext) {
	pc.set = nil
	clear(pc.cands)
	clear(pc.addrs)
	clear(pc.Kept)
	pickContexts.Put(pc)
}

// QueueThreshold is the pool's queue depth at which an endpoint is saturated.
func (pc *PickContext) QueueThreshold() float64 { return float64(pc.set.queueT) }

// KVThreshold is the pool's KV utilisation at which an endpoint is
// saturated; +Inf when Options.KVThreshold leaves KV out.
func (pc *PickContext) KVThreshold() float64 { return pc.set.kvT }

// saturated reports whether c is saturated by its fresh scraped metrics
// and kvgate's picks since: queue ≥ queueThreshold or KV ≥ kvThreshold.
// Stale metrics never saturate.
func (pc *PickContext) saturated(c *Candidate) bool {
	if !c.Fresh {
		return false
	}
	return c.Queue+sentQueued(c) >= pc.QueueThreshold() || !math.IsNaN(c.KV) && c.KV >= pc.KVThreshold()
}

// sentQueued is how many of the picks sent to c since its fresh scrape, and
// still in flight, wait for a batch slot: all of them when the scrape showed
// requests waiting, those beyond the free slots when it did not and the
// server's batch is known (the most requests it was seen running while
// others waited), none when it is not known. Without it a burst within one
// scrape interval all went to the endpoint the scrape showed just below the
// threshold; counting every pick as queued instead would saturate a server
// with free slots that takes more than the threshold per interval.
func sentQueued(c *Candidate) float64 {
	sent := min(c.Since, c.Inflight)
	if sent <= 0 {
		return 0
	}
	if c.Queue > 0 {
		return float64(sent)
	}
	batch := c.E.batch.Load()
	if batch <= 0 {
		return 0
	}
	return float64(max(sent-max(batch-c.E.running.Load(), 0), 0))
}

// scrapedSaturated is saturated on the scrape alone (NotSaturatedFilter's
// ScrapeOnly).
func (pc *PickContext) scrapedSaturated(c *Candidate) bool {
	return c.Fresh && (c.Queue >= pc.QueueThreshold() || !math.IsNaN(c.KV) && c.KV >= pc.KVThreshold())
}

// Decision is the outcome of one pick.
type Decision struct {
	// Index is the chosen endpoint's position in the slice passed to Pick
	// (or Balance); -1 none.
	Index int
	// Endpoint is the chosen endpoint; Begin has been called on it with
	// Tokens, and the caller must call End(Tokens) exactly once.
	Endpoint *Endpoint
	Tokens   int
	Reason   Reason
	// Matched of Total prompt blocks were held by the chosen endpoint.
	Matched, Total int
	// Saturated: every healthy endpoint was saturated.
	Saturated bool
	// Predicted is what the pick expected of the request (cost.go); the
	// caller sets its At and hands it back in the request's Outcome.
	Predicted Prediction
}

// Options configures the picking of one pool. The proxy fills it from the
// pool's configuration (balancer, inference) after config.Default has filled
// in every default; this package reads no configuration and has no defaults
// of its own, so each field is used as given, and a value outside its range
// acts as noted below, never as a default. A plain pool sets only Balancer.
type Options struct {
	// Preset names the pipeline Pick runs (Presets): an inference pool's
	// picker. "" makes a plain pool, whose Pick runs Balancer.
	Preset string
	// Scorers, when set, replace the preset's weighted scorers (Names(KindScorer)).
	Scorers []ScorerWeight
	// Balancer names the pipeline Balance runs, a preset marked Balancer:
	// retries and mirrors of any pool, and every pick of a plain pool.
	// Required: "" is an error, as is any name not in BalancerNames.
	Balancer string
	// CacheBlocks is each endpoint's prefix-index capacity, in blocks, until
	// a scrape reports num_gpu_blocks; at least 1 (smaller is 1, see
	// cache.NewIndex).
	CacheBlocks int
	// BlockSize is the characters per hashed block, to convert the scraped
	// num_gpu_blocks; 0 or less leaves every endpoint at CacheBlocks.
	BlockSize int
	// LoadBound is the bounded-load factor over the mean (see bounds); at
	// least 1 (smaller, or NaN, is 1: the strictest balance).
	LoadBound float64
	// QueueThreshold is the queue depth at which an endpoint is saturated;
	// at least 1 (smaller is 1).
	QueueThreshold int
	// KVThreshold is the KV utilisation at which an endpoint is saturated,
	// in (0, 1]; 0 or less (or NaN) leaves KV utilisation out of saturation.
	KVThreshold float64
	// ScrapeInterval is how often the caller scrapes server metrics; metrics
	// older than two intervals are stale. 0 or less: no scrape is ever
	// fresh, as in a plain pool, which is not scraped.
	ScrapeInterval time.Duration
}

func (o *Options) equal(b *Options) bool {
	c, d := *o, *b
	c.Scorers, d.Scorers = nil, nil
	return reflect.DeepEqual(c, d) && slices.Equal(o.Scorers, b.Scorers)
}

// settings is one configuration of a pool's picking; swapped on reload.
type settings struct {
	opts       Options
	pick       plan // what Pick runs
	balance    plan // what Balance runs
	queueT     int
	kvT        float64
	bound      float64
	staleAfter int64 // nanoseconds
	blockSize  int
	interval   time.Duration
}

// plan is a pipeline with what a pick needs to know about it, worked out once.
type plan struct {
	pipe     Pipeline
	affinity bool // prefix scoring with placement and spill-over
	index    bool // picks read prefix matches (affinity, or a plain preset that scores prefixes)
	sizes    bool // the picker reads Candidate.Cached
	latency  bool // the picker is LeastTTFTPicker: Pool.chooseLatency
}

func newPlan(pipe Pipeline) plan {
	_, latency := pipe.Picker.(LeastTTFTPicker)
	return plan{pipe: pipe, affinity: pipe.affinity(), index: pipe.usesIndex() || latency, sizes: readsCache(pipe.Picker), latency: latency}
}

// Pool is the picking state of one pool, plain or inference: its endpoints
// by address, its prefix index and its current pipelines. It lives outside
// configuration snapshots and survives reloads (Configure swaps settings).
//
// Concurrency: Pick and Balance may be called by any number of goroutines at
// once and take no pool-wide lock (only the index's short read and write
// locks). Endpoint, Retain and Configure serialise on a mutex and are meant
// for the reload path, the resolver and the scrapers, not for every request.
type Pool struct {
	index  *cache.Index
	tokens *cache.TokenIndex // precise state from KV events (precise.go)
	set    atomic.Pointer[settings]

	mu  sync.Mutex
	eps map[string]*Endpoint

	ratio  [len(RatioBuckets)]atomic.Uint64
	rsum   atomic.Uint64 // sum of observed ratios, in millionths
	picks  atomic.Uint64
	recent recentWindow
}

// RatioBuckets are the upper bounds of the prefix match ratio histogram.
var RatioBuckets = [...]float64{0, 0.1, 0.25, 0.5, 0.75, 0.9, 1}

// NewPool returns the picking state of a pool configured by opts.
func NewPool(opts Options) (*Pool, error) {
	p := &Pool{eps: map[string]*Endpoint{}, index: cache.NewIndex(opts.CacheBlocks), tokens: cache.NewTokenIndex(1, 0)}
	if err := p.Configure(opts); err != nil {
		return nil, err
	}
	return p, nil
}

// Configure builds the pipelines opts names and swaps them in; options equal
// to the running ones keep their pipelines (and a round robin its place). On
// error the running settings stay.
func (p *Pool) Configure(opts Options) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.set.Load(); old != nil && old.opts.equal(&opts) {
		return nil
	}
	opts.Scorers = slices.Clone(opts.Scorers)
	if pr, ok := LookupPreset(opts.Balancer); !ok || !pr.Balancer {
		return fmt.Errorf("pick: unknown balancer %q; use one of %s", opts.Balancer, strings.Join(BalancerNames(), ", "))
	}
	bal, err := buildPipeline(opts.Balancer, nil)
	if err != nil {
		return err
	}
	main := bal
	if opts.Preset != "" {
		if main, err = buildPipeline(opts.Preset, opts.Scorers); err != nil {
			return err
		}
	}
	s := &settings{
		opts:       opts,
		pick:       newPlan(main),
		balance:    newPlan(bal),
		queueT:     max(opts.QueueThreshold, 1),
		kvT:        opts.KVThreshold,
		bound:      opts.LoadBound,
		staleAfter: int64(2 * opts.ScrapeInterval),
		blockSize:  opts.BlockSize,
		interval:   opts.ScrapeInterval,
	}
	if !(s.kvT > 0) { // also NaN
		s.kvT = math.Inf(1)
	}
	if !(s.bound >= 1) { // also NaN
		s.bound = 1
	}
	if opts.ScrapeInterval <= 0 {
		s.staleAfter = math.MinInt64
	}
	p.index.SetDefaultCapacity(opts.CacheBlocks)
	p.set.Store(s)
	return nil
}

// Index returns the pool's prefix index.
func (p *Pool) Index() *cache.Index { return p.index }

// Endpoint returns the state of addr, creating it (and registering it in the
// index) on first use. The same address always yields the same *Endpoint
// until Retain drops it.
func (p *Pool) Endpoint(addr string) *Endpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.eps[addr]; e != nil {
		return e
	}
	e := newEndpoint(addr)
	e.slot = p.index.Add(addr)
	e.tslot = p.tokens.Add(addr)
	p.eps[addr] = e
	return e
}

// Retain drops every endpoint whose address is not in addrs, purging its
// index entries. Requests still in flight to a dropped endpoint end on the
// object they hold.
func (p *Pool) Retain(addrs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		keep[a] = true
	}
	for a := range p.eps {
		if !keep[a] {
			p.index.Remove(a)
			p.tokens.Remove(a)
			delete(p.eps, a)
		}
	}
}

// StoreScrape publishes a scrape of e taken at unixNanos, and sizes e's
// index LRU from num_gpu_blocks when the server reports it.
func (p *Pool) StoreScrape(e *Endpoint, m *ServerMetrics, unixNanos int64) {
	old := e.gpuBlocks.Load()
	e.store(m, unixNanos)
	if m.NumGPUBlocks > 0 && int64(m.NumGPUBlocks) != old {
		bs := m.BlockSize
		if bs <= 0 {
			bs = 16
		}
		p.index.SetCapacity(e.Addr, cache.CapacityFromServer(m.NumGPUBlocks, bs, p.set.Load().blockSize))
	}
}

// ScrapeInterval returns the configured scrape interval.
func (p *Pool) ScrapeInterval() time.Duration { return p.set.Load().interval }

// Ratio returns the cumulative prefix match ratio histogram (one count per
// RatioBuckets bound) and the total number of affinity-mode picks.
func (p *Pool) Ratio() (cum [len(RatioBuckets)]uint64, count uint64) {
	var c uint64
	for i := range p.ratio {
		c += p.ratio[i].Load()
		cum[i] = c
	}
	return cum, p.picks.Load()
}

// RatioSum is the sum of the prefix match ratios observed (the histogram's
// _sum), to a millionth per pick.
func (p *Pool) RatioSum() float64 { return float64(p.rsum.Load()) / 1e6 }

// Pick chooses one of eps for pc.Req with the pool's preset: filters, then
// weighted scorers, then the picker; in affinity mode (a pipeline with the
// prefix scorer) a prompt no endpoint holds is placed with cache.Place, and a
// holder over the load bound spills over. On success it calls Begin on the
// endpoint and records the prompt's blocks for it in the index. It never
// blocks and does no I/O. eps must be endpoints of this pool (from Endpoint).
func (p *Pool) Pick(pc *PickContext, eps []*Endpoint) Decision {
	s := p.set.Load()
	return p.pick(pc, s, &s.pick, eps, false)
}

// Explain is a dry run of Pick: the same filters, scorers, placement and
// picker over the same state, with no effect on it. It calls no Begin (the
// Decision's Endpoint must not be Ended), counts no pick and records nothing
// in the prefix index, so the answer says where Pick would send pc.Req now.
// A stateful picker (round-robin) may still advance. Set pc.Keep to read
// each endpoint's score from pc.Kept.
func (p *Pool) Explain(pc *PickContext, eps []*Endpoint) Decision {
	s := p.set.Load()
	return p.pick(pc, s, &s.pick, eps, true)
}

// Balance is Pick with the pool's balancer (Options.Balancer), which reads
// no prompt: the pick of a plain pool, and of a retry or a mirror in any
// pool.
func (p *Pool) Balance(pc *PickContext, eps []*Endpoint) Decision {
	s := p.set.Load()
	return p.pick(pc, s, &s.balance, eps, false)
}

func (p *Pool) pick(pc *PickContext, s *settings, pl *plan, eps []*Endpoint, dry bool) Decision {
	pc.set = s
	pc.predicted = nil
	if pc.Now == 0 {
		pc.Now = time.Now().UnixNano()
	}
	d := Decision{Index: -1, Total: len(pc.Req.Blocks)}
	useIndex := pl.index && pc.Req.HasPrompt
	pc.match, pc.pmatch = pc.match[:0], pc.pmatch[:0]
	if useIndex && len(pc.Req.Blocks) > 0 && !p.matchPrecise(pc, eps) {
		pc.match = p.index.Match(pc.Req.Blocks, pc.match)
	}
	cands := p.candidates(pc, pl, eps)
	for _, f := range pl.pipe.Filters {
		if cands = f.Filter(pc, cands); len(cands) == 0 {
			return d
		}
	}
	if pc.Saturated {
		d.Saturated = true
		if pc.Req.StopIfSaturated {
			return d
		}
	}
	if a := pc.Req.Avoid; a != nil && len(cands) > 1 {
		// Endpoints are distinct, so at most one candidate is a.
		out := cands[:0]
		for _, c := range cands {
			if c.E != a {
				out = append(out, c)
			}
		}
		cands = out
	}
	i, reason := p.choose(pc, s, pl, cands, useIndex)
	if pc.Keep {
		pc.Kept = append(pc.Kept[:0], cands...)
	}
	c := &cands[i]
	for j, e := range eps {
		if e == c.E {
			d.Index = j
			break
		}
	}
	d.Endpoint, d.Reason, d.Matched, d.Tokens = c.E, reason, c.Matched, pc.Req.PromptTokens
	if pl == &s.pick {
		d.Predicted = prediction(pc, c, i)
	}
	if dry {
		return d
	}
	d.Predicted.claimModel(c.E, pc.Req.Model)
	c.E.Begin(d.Tokens)
	p.tokens.Picked(c.E.tslot, pc.Now)
	p.tokens.Speculate(c.E.tslot, pc.Req.TokenBlocks, pc.Now)
	p.recent.add(c.E)
	c.E.picks[reason].Add(1)
	if useIndex {
		p.observeRatio(d.Matched, d.Total)
		if len(pc.Req.Blocks) > 0 {
			p.index.RecordTail(c.E.Addr, pc.Req.Blocks, pc.Req.TailBlocks)
		}
	}
	return d
}

func (p *Pool) observeRatio(matched, total int) {
	r := 0.0
	if total > 0 {
		r = float64(matched) / float64(total)
	}
	for i, b := range RatioBuckets {
		if r <= b {
			p.ratio[i].Add(1)
			break
		}
	}
	p.rsum.Add(uint64(r*1e6 + 0.5))
	p.picks.Add(1)
}

// candidates loads every endpoint's signals once.
func (p *Pool) candidates(pc *PickContext, pl *plan, eps []*Endpoint) []Candidate {
	if pl.sizes {
		pc.sizes = p.index.Sizes(pc.sizes)
	}
	if pl.latency {
		pc.room = p.index.Room(pc.room)
	}
	cands := pc.cands[:0]
	for _, e := range eps {
		c := Candidate{E: e, KV: math.NaN()}
		if s := e.slot; s >= 0 && s < len(pc.match) {
			c.Matched = pc.match[s]
		}
		p.precise(pc, &c)
		c.Inflight, c.Tokens = e.inflight.Load(), e.inflightToks.Load()
		c.Recent = e.recent.Load()
		if s := e.slot; pl.sizes && s >= 0 && s < len(pc.sizes) {
			c.Cached = pc.sizes[s]
		}
		if s := e.slot; pl.latency && s >= 0 && s < len(pc.room) {
			c.Room = pc.room[s]
		}
		if at := e.scrapedAt.Load(); at > 0 && pc.Now-at <= pc.set.staleAfter {
			c.Fresh = true
			c.Since = e.since.Load()
			c.Queue = float64(e.waiting.Load())
			c.KV = math.Float64frombits(e.kv.Load())
		} else {
			c.Queue = float64(c.Inflight)
		}
		cands = append(cands, c)
	}
	pc.cands = cands
	return cands
}

// choose runs scorers and the picker, with placement and spill-over in
// affinity mode. It returns an index into cands.
func (p *Pool) choose(pc *PickContext, s *settings, pl *plan, cands []Candidate, useIndex bool) (int, Reason) {
	pl.pipe.score(pc, cands)
	if pl.latency {
		return p.chooseLatency(pc, s, cands, useIndex)
	}
	if !pl.affinity {
		i := pl.pipe.Picker.Pick(pc, cands)
		return i, plainReason(cands, i, useIndex)
	}
	return p.chooseAffinity(pc, s, pl.pipe.Picker, cands, useIndex)
}

// chooseAffinity is choose in affinity mode, with picker choosing among
// the scored candidates.
func (p *Pool) chooseAffinity(pc *PickContext, s *settings, picker Picker, cands []Candidate, useIndex bool) (int, Reason) {
	if !useIndex {
		return picker.Pick(pc, cands), ReasonFallback
	}
	best, holders := 0, 0
	for i := range cands {
		switch m := cands[i].Matched; {
		case m > cands[best].Matched:
			best, holders = i, 1
		case m == cands[best].Matched:
			holders++
		}
	}
	b := newBounds(cands, s)
	if depth, ok := placeable(cands[best].Matched, holders, len(pc.Req.Blocks)); ok {
		return p.place(pc, s, cands, b, depth), ReasonPlacement
	}
	i := picker.Pick(pc, cands)
	if !b.fits(&cands[i], affinityStretch(cands[i].Matched, len(pc.Req.Blocks))) {
		i = b.bestFitting(cands, i)
	}
	if cands[i].Matched == cands[best].Matched {
		return i, ReasonAffinity
	}
	return i, ReasonSpillover
}

// plainReason labels a pick of a plain pipeline (no placement, no bound):
// affinity when it went to the longest match, spill-over when a longer match
// was passed over, fallback when nothing matched or prefixes are not read.
func plainReason(cands []Candidate, i int, useIndex bool) Reason {
	if !useIndex {
		return ReasonFallback
	}
	best := 0
	for j := range cands {
		best = max(best, cands[j].Matched)
	}
	switch {
	case best == 0:
		return ReasonFallback
	case cands[i].Matched < best:
		return ReasonSpillover
	}
	return ReasonAffinity
}

// placeable reports whether a prompt of n blocks whose longest match on any
// endpoint is best blocks is new to the pool, and so placed by its key rather
// than scored: no endpoint holds its first block, or, for a prompt that
// reaches the placement depth, none holds the block its placement key is.
//
// A match shorter than the placement depth is typically a system prompt that
// every endpoint holds: it tells the endpoints apart by nothing, and choosing
// among them on load would send the turns of one conversation that reach
// different kvgate replicas (which never saw each other's picks) to
// different endpoints. Placement keyed past the shared part makes every
// replica choose the same endpoint for the same conversation.
//
// The same holds past the placement depth for a longest match that two or
// more endpoints hold: a prefix several endpoints cache (a long system
// prompt, a shared document) says nothing about where the rest of the
// prompt belongs, so the prompt is placed by the first block past it, and
// conversations that share a long system prompt spread instead of piling
// onto the first endpoint that cached it. Placing among every endpoint (not
// only the holders) may recompute the shared prefix once on a new endpoint;
// placing among the holders alone kept a demo workload's conversations on
// the first two endpoints (max/mean share 1.6-1.7 against 1.2-1.4). The
// placement depth is returned for cache.PlacementKey.
func placeable(best, holders, n int) (depth int, ok bool) {
	switch {
	case best == 0:
		return cache.PlacementDepth, true
	case n >= cache.PlacementDepth && best < cache.PlacementDepth:
		return cache.PlacementDepth, true
	case holders > 1 && best < n:
		return max(best+1, cache.PlacementDepth), true
	}
	return 0, false
}

// place is consistent placement with bounded loads over the candidates: the
// load is each endpoint's share of the recent picks, and endpoints over the
// in-flight guard (a burst) are left out first.
//
// A key placement is this replica's affinity guess for a prompt its own
// index has not seen (another replica may have served the earlier turns
// there), so it tolerates the same imbalance as a full index match.
func (p *Pool) place(pc *PickContext, s *settings, cands []Candidate, b bounds, depth int) int {
	stretch := affinityStretch(1, 1)
	addrs, loads, idx := pc.addrs[:0], pc.loads[:0], pc.idx[:0]
	for pass := 0; pass < 2 && len(idx) == 0; pass++ {
		for i := range cands {
			if pass == 0 && !b.inflightFits(&cands[i], stretch) {
				continue
			}
			addrs = append(addrs, cands[i].E.Addr)
			loads = append(loads, int(cands[i].Recent))
			idx = append(idx, i)
		}
	}
	pc.addrs, pc.loads, pc.idx = addrs, loads, idx
	key := pc.Req.Seed
	if len(pc.Req.Blocks) > 0 {
		key = cache.PlacementKey(pc.Req.Seed, pc.Req.Blocks, depth)
	}
	return idx[max(cache.Place(key, addrs, loads, s.bound*stretch), 0)]
}

// affinityStretch widens the load bound for an endpoint by the share of the
// prompt it already caches: from 1 (nothing cached) to 2 (all of it). A spill
// throws away the cached prefill, so the more of the prompt an endpoint
// holds, the more imbalance is worth tolerating before moving the request;
// a request with little cached moves as soon as the plain bound is passed.
func affinityStretch(matched, n int) float64 {
	if n <= 0 || matched <= 0 {
		return 1
	}
	return 1 + float64(min(matched, n))/float64(n)
}

// bounds are the bounded-load ceilings of one pick, each ceil(bound ×
// (total+1) / n) over the candidates:
//
//   - recent: the share of the pool's last RecentWindow picks, the load that
//     keeps traffic and cache growth spread (see RecentWindow);
//   - inflight: a guard against bursts that the window has not seen yet
//     (inflightFits): the scraped queue plus picks since the scrape when
//     fresh, else proxy-side requests in flight. Counts below the pool's
//     queue threshold never count as overload: a server with a free batch
//     slot gains nothing from losing a request, and the cached prefill
//     would be thrown away.
//
// A share needs a sample: until the window holds minRecentShare picks per
// endpoint (a pool's first picks, or one that has just grown), every
// endpoint may take bound × minRecentShare of them, so that the first turns
// of the first conversations are not moved for having been the only traffic.
type bounds struct {
	recent, inflight, floor float64
}

// minRecentShare is the per-endpoint sample below which recent shares are
// not compared (see bounds).
const minRecentShare = 4

func newBounds(cands []Candidate, s *settings) bounds {
	bound := s.bound
	var recent, inflight int64
	for i := range cands {
		recent += max(cands[i].Recent, 0)
		inflight += max(cands[i].Inflight, 0)
	}
	n := float64(len(cands))
	return bounds{
		recent:   math.Ceil(bound * max(float64(recent+1)/n, minRecentShare)),
		inflight: math.Ceil(bound * float64(inflight+1) / n),
		floor:    float64(s.queueT),
	}
}

// fits reports whether c stays within both ceilings, multiplied by stretch,
// once this request is added.
func (b bounds) fits(c *Candidate, stretch float64) bool {
	return float64(c.Recent+1) <= b.recent*stretch && b.inflightFits(c, stretch)
}

// inflightFits is the burst guard. With a fresh scrape it reads the
// server's own queue plus the picks sent since the scrape that wait for a
// batch slot (sentQueued, as the not-saturated filter counts them): the
// endpoint fits while that, with this request, stays within the queue
// threshold, however many requests it runs at once.
// Without one it reads proxy-side in-flight requests against the bound.
func (b bounds) inflightFits(c *Candidate, stretch float64) bool {
	if c.Fresh {
		return c.Queue+sentQueued(c)+1 <= b.floor
	}
	return float64(c.Inflight+1) <= max(b.inflight*stretch, b.floor)
}

// bestFitting returns the highest-scored candidate within the unstretched
// ceilings, or fallback when none is.
func (b bounds) bestFitting(cands []Candidate, fallback int) int {
	best := -1
	for i := range cands {
		if !b.fits(&cands[i], 1) {
			continue
		}
		if best < 0 || cands[i].Score > cands[best].Score {
			best = i
		}
	}
	if best < 0 {
		return fallback
	}
	return best
}
