package proxy

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvgate/kvgate/cache"
	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/openai"
	"github.com/kvgate/kvgate/pick"
	"github.com/kvgate/kvgate/router"
)

// This file wires KV-cache-aware picking (the preset of the pool's
// pick.Pool) into the request path of inference pools: a bounded read of the
// body prefix, prompt extraction and block hashing, the pick, and the
// saturation queue. The in-flight count the pick takes is the Exchange's
// (x.ep), given back exactly once by Exchange.release.

// objectiveHeader names an InferenceObjective whose priority applies.
const objectiveHeader = "x-gateway-inference-objective"

// inferenceSet holds the inference state of every inference pool, by pool
// name. It survives reloads; the request path reads an immutable map.
type inferenceSet struct {
	mu    sync.Mutex // serialises sync and stop
	pools atomic.Pointer[map[string]*infPool]
	log   *slog.Logger
}

// infPool is one inference pool's long-lived state beside its pick.Pool
// (which the proxy pool owns): the configuration, the saturation queue and
// the scraper.
type infPool struct {
	name string
	cfg  atomic.Pointer[config.Inference]
	pool atomic.Pointer[pool] // the proxy pool currently carrying its endpoints
	q    waitQueue
	kv   atomic.Pointer[kvState] // precise mode; nil off (picker_kvevents.go)

	stop context.CancelFunc
	done chan struct{} // closed when the scraper has stopped
}

// picks returns the pool's picking state.
func (ip *infPool) picks() *pick.Pool { return ip.pool.Load().picks }

// endpoints returns the pool's current endpoints.
func (ip *infPool) endpoints() *endpointList { return ip.pool.Load().list.Load() }

func (s *inferenceSet) get(name string) *infPool {
	m := s.pools.Load()
	if m == nil {
		return nil
	}
	return (*m)[name]
}

// sync makes the inference pools match cfg, reusing state by pool name.
// Their picking is configured with the proxy pools (upstreams.sync).
func (s *inferenceSet) sync(cfg *config.Config, pools map[string]*pool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := map[string]*infPool{}
	if m := s.pools.Load(); m != nil {
		old = *m
	}
	next := make(map[string]*infPool)
	for _, pc := range cfg.Pools {
		if pc.Inference == nil || pools[pc.Name] == nil {
			continue
		}
		ip := old[pc.Name]
		if ip == nil {
			ip = &infPool{name: pc.Name}
		}
		ip.cfg.Store(pc.Inference)
		ip.pool.Store(pools[pc.Name])
		next[pc.Name] = ip
	}
	s.pools.Store(&next)
	for name, ip := range old {
		if next[name] != ip {
			ip.close()
		}
	}
	for _, ip := range next {
		if ip.done == nil {
			ip.startScraper(s.log)
		}
	}
}

// stopAll stops every scraper.
func (s *inferenceSet) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.pools.Load(); m != nil {
		for _, ip := range *m {
			ip.close()
		}
	}
	empty := map[string]*infPool{}
	s.pools.Store(&empty)
}

func (ip *infPool) close() {
	if ip.stop != nil {
		ip.stop()
		<-ip.done
		ip.stop, ip.done = nil, nil
	}
}

// inferScratch is the pooled per-request memory of an inference pick. It is
// held until Exchange.finish, because the body prefix it holds is still
// being forwarded.
type inferScratch struct {
	buf    []byte
	body   []byte // the body prefix read (buf's bytes), for the tokenizer
	prompt openai.Prompt
}

var inferScratchPool = sync.Pool{New: func() any { return new(inferScratch) }}

// inferState is the inference part of an Exchange.
type inferState struct {
	ip     *infPool
	sc     *inferScratch
	picked bool            // the pool's preset picked x.ep
	tokens int             // the prompt's estimated tokens, counted in flight with x.ep
	reason string          // why the endpoint was picked (pick.Reason), for the span
	addr   string          // for x-kvgate-endpoint; "" when the header is off
	w      *waiter         // the queue place, once queued
	pred   pick.Prediction // what the pick expected, for the endpoint's cost model (usage.go)
}

// end returns the scratch memory and, after a pick, lets the next queued
// request try: Exchange.finish calls it exactly once, after release.
func (s *inferState) end() {
	if s.picked {
		s.picked = false
		s.ip.q.kick()
	}
	if s.sc != nil {
		inferScratchPool.Put(s.sc)
		s.sc = nil
	}
}

// annotate adds x-kvgate-endpoint to r when the pool asks for it.
func (s *inferState) annotate(r *Reply) *Reply {
	if s.addr != "" {
		r.Header = append(r.Header, Field{"x-kvgate-endpoint", s.addr})
	}
	return r
}

// pickInference picks an endpoint of an inference pool for x with the pool's
// preset and counts it in flight as x.ep, or returns the error reply (413
// body, 429 shed, 503 no endpoint or queue timeout).
func (p *Proxy) pickInference(x *Exchange, ip *infPool, route *router.Route) (*endpoint, *Reply) {
	in := ip.cfg.Load()
	st := &x.inf
	st.ip = ip
	st.sc = inferScratchPool.Get().(*inferScratch)
	pc := pick.AcquirePickContext()
	defer pick.ReleasePickContext(pc)
	if r := readPrompt(x, in, st.sc, &pc.Req); r != nil {
		return nil, r
	}
	if kv := ip.kv.Load(); kv != nil {
		kv.tokenize(x, ip, st.sc, &pc.Req)
	}
	if in.Picker == "session" {
		pc.Req.Session = x.hdr.Get(in.SessionHeader)
	}
	pc.Req.StopIfSaturated = true
	pc.Keep = true // the scores go to the decision log (status.go)
	prio := priorityOf(x, in, route)
	var deadline time.Time
	for {
		l := ip.endpoints()
		now := time.Now()
		pc.Now = now.UnixNano()
		pc.Saturated = false
		d := ip.picks().Pick(pc, l.states)
		if d.Endpoint != nil {
			p.status.picks.record(x, ip.name, pc, &d, l.states)
			st.picked, st.tokens, st.reason = true, d.Tokens, d.Reason.String()
			st.pred = d.Predicted
			st.pred.At = max(now.Sub(x.start), 0) // the pick's clock reading, monotonic
			x.ep = l.eps[d.Index]
			if in.EndpointHeader {
				st.addr = d.Endpoint.Addr
			}
			if !deadline.IsZero() {
				ip.q.kick() // we left the queue: let the next waiter try
			}
			return x.ep, nil
		}
		if !d.Saturated {
			return nil, x.fail(503, errUnavailable, codeNoReadyEndpoint, "pool "+ip.name+" has no ready endpoint; retry later").
				withHeader("Retry-After", "1")
		}
		if prio < 0 {
			ip.q.shed.Add(1)
			return nil, x.fail(429, errRateLimit, codePoolSaturated, "every endpoint of pool "+ip.name+" is saturated and this request's priority is "+strconv.Itoa(prio)+"; retry later").
				withHeader("Retry-After", "1").withHeader("x-should-retry", "true")
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(in.QueueTimeout.D())
		}
		if r := ip.q.wait(x, prio, deadline, in, ip); r != nil {
			return nil, r
		}
	}
}

// readPrompt reads a bounded prefix of the body (in.MaxPromptBytes), puts it
// back in front of the rest, and fills req from it. A body that is not a
// usable OpenAI request leaves req.HasPrompt false (the fallback balancer then
// picks). in comes from a configuration that went through config.Default,
// so MaxPromptBytes and BlockSize are set; were MaxPromptBytes 0 no prompt
// would be read, and were BlockSize 0 no block hashed: never a default.
func readPrompt(x *Exchange, in *config.Inference, sc *inferScratch, req *pick.PickRequest) *Reply {
	n := in.MaxPromptBytes
	if x.body == nil || n <= 0 {
		return nil
	}
	if x.bodyLen >= 0 && x.bodyLen < int64(n) {
		n = int(x.bodyLen)
	}
	if cap(sc.buf) < n {
		sc.buf = make([]byte, n)
	}
	// A model rule may already have read part of the body: peekBody reads
	// only the rest, once, and replays all of it upstream.
	buf, err := x.peekBody(n, sc.buf)
	if errors.Is(err, errBodyTooLarge) {
		return x.fail(413, errInvalidRequest, codeBodyTooLarge, bodyTooLargeMsg(x.limit.max))
	}
	sc.body = buf
	if err != nil || openai.Extract(x.path, buf, &sc.prompt) != nil {
		return nil
	}
	if x.modelLabel == "" {
		// sc goes back to its pool before the metrics run: take the label now.
		x.modelLabel = x.proxy.metrics.models.label(sc.prompt.Model)
	}
	promptRequest(req, &sc.prompt, in.BlockSize)
	if rest := x.bodyLen - int64(len(buf)); rest > 0 && len(buf) == n {
		// The prompt runs past the bytes read: count the rest too, so the
		// in-flight tokens and the index's ageing see the whole prompt.
		if bs := in.BlockSize; bs > 0 {
			req.TailBlocks = int(min(rest/int64(bs), 1<<24))
		}
		req.PromptTokens += int(min(rest/cache.CharsPerToken, 1<<30))
	}
	return nil
}

// promptRequest fills what a pick reads of a prompt: its seed (model and
// cache_salt), its text blocks and its estimated tokens. The request path
// (readPrompt) and the dry run (explain.go) share it, so that an explained
// pick hashes exactly what a real one would.
func promptRequest(req *pick.PickRequest, p *openai.Prompt, blockSize int) {
	seed := cache.Seed(p.Model, p.CacheSalt)
	req.HasPrompt, req.Seed, req.Model = true, seed, p.Model
	req.Blocks = cache.Blocks(seed, p.Text, blockSize, req.Blocks)
	req.PromptTokens = cache.TokensOf(len(p.Text))
}

// priorityOf is the objective header's priority when it names a configured
// objective, else the route's.
func priorityOf(x *Exchange, in *config.Inference, route *router.Route) int {
	if name := x.hdr.Get(objectiveHeader); name != "" {
		for _, o := range in.Objectives {
			if o.Name == name {
				return o.Priority
			}
		}
	}
	if route != nil {
		return route.Priority
	}
	return 0
}
