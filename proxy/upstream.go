package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
	"github.com/kvgate/kvgate/pick"
)

// endpoint is one upstream address of a pool: its state (in-flight counts,
// passive-health ejection, scraped metrics), which package pick owns and
// keeps by pool and address across reloads, and the transport that reaches
// it. Plain and inference pools pick through the same state.
type endpoint struct {
	state *pick.Endpoint
	pool  string
	addr  string       // state.Addr: what rt dials and what logs name
	base  string       // scheme://addr, the tokenize calls' base URL (picker_kvevents.go)
	rt    roundTripper // per-endpoint connection pool
}

// endpointList is one immutable list of a pool's endpoints, swapped whole
// (reload, DNS answer).
type endpointList struct {
	eps    []*endpoint
	states []*pick.Endpoint // eps[i].state, index for index: what pick.Pool picks among
}

// pool is a named group of endpoints. Its endpoint list is swapped
// atomically by the DNS resolver; its picking (the balancer, and for an
// inference pool the preset) is a pick.Pool, which outlives the pool when a
// reload replaces it.
type pool struct {
	name     string
	cfg      config.Pool
	limits   config.Limits
	picks    *pick.Pool
	list     atomic.Pointer[endpointList]
	mu       sync.Mutex // serialises setEndpoints
	tr       transportFactory
	started  bool // start ran; start and close run under upstreams.mu
	stop     context.CancelFunc
	done     chan struct{}       // closed when the resolver has stopped (at once for static pools)
	ids      mtls.IdentitySource // for SPIFFE upstream TLS (scrapes use it too); nil: none
	resolved chan struct{}       // closed after the first DNS answer (or at once for static pools)
}

// pick chooses an endpoint with the pool's balancer, other than avoid when
// another is ready, and counts it in flight with tokens: the caller owes it
// exactly one release (Exchange.release) or state.End(tokens). It returns
// nil when every endpoint is ejected. It never blocks and takes no lock.
func (p *pool) pick(avoid *endpoint, tokens int) *endpoint {
	l := p.list.Load()
	if len(l.eps) == 0 {
		return nil
	}
	pc := pick.AcquirePickContext()
	pc.Req.PromptTokens = tokens
	if avoid != nil {
		pc.Req.Avoid = avoid.state
	}
	d := p.picks.Balance(pc, l.states)
	pick.ReleasePickContext(pc)
	if d.Endpoint == nil {
		return nil
	}
	return l.eps[d.Index]
}

// pickOptions translates a pool's configuration into its picking options.
func pickOptions(pc *config.Pool) pick.Options {
	o := pick.Options{Balancer: pc.Balancer}
	if in := pc.Inference; in != nil {
		o.Preset = in.Picker
		for _, s := range in.Scorers {
			o.Scorers = append(o.Scorers, pick.ScorerWeight{Name: s.Name, Weight: s.Weight})
		}
		o.CacheBlocks = in.CacheBlocks
		o.BlockSize = in.BlockSize
		o.LoadBound = in.LoadBound
		o.QueueThreshold = in.QueueThreshold
		o.KVThreshold = in.KVThreshold
		o.ScrapeInterval = in.ScrapeInterval.D()
	}
	return o
}

// upstreams holds every pool by name. It survives reloads: endpoints keep
// their state when a new config names the same pool and address.
type upstreams struct {
	mu    sync.Mutex
	pools map[string]*pool
	log   *slog.Logger
	ids   mtls.IdentitySource // workload identity for SPIFFE upstream TLS; nil: none
	live  connSet             // every open upstream connection, of current and replaced pools
}

func newUpstreams(log *slog.Logger) *upstreams {
	return &upstreams{pools: map[string]*pool{}, log: log}
}

// sync makes the pool set match cfg and returns the pools by name. A pool
// whose transports must change is rebuilt and keeps its pick.Pool, so its
// endpoints keep their state. A pool that cannot be built leaves the running
// pools as they were (pools built so far are not started: they hold no
// connection and no goroutine). Picking options are checked by config
// validation, so Configure fails only for a configuration that skipped it.
func (u *upstreams) sync(cfg *config.Config) (map[string]*pool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	next := make(map[string]*pool, len(cfg.Pools))
	var built []*pool
	for _, pc := range cfg.Pools {
		old := u.pools[pc.Name]
		if old != nil && samePoolShape(old.cfg, pc) && old.limits == cfg.Limits {
			next[pc.Name] = old
			continue
		}
		var picks *pick.Pool
		if old != nil {
			picks = old.picks
		} else {
			var err error
			if picks, err = pick.NewPool(pickOptions(&pc)); err != nil {
				return nil, fmt.Errorf("proxy: pool %s: %w", pc.Name, err)
			}
		}
		p, err := newPool(pc, cfg.Limits, u.ids, picks, &u.live)
		if err != nil {
			return nil, err
		}
		built = append(built, p)
		next[pc.Name] = p
	}
	for _, pc := range cfg.Pools {
		// cfg is read by requests in flight: only the picking may change
		// on a kept pool (samePoolShape), and pick.Pool publishes it
		// atomically.
		if err := next[pc.Name].picks.Configure(pickOptions(&pc)); err != nil {
			return nil, fmt.Errorf("proxy: pool %s: %w", pc.Name, err)
		}
	}
	// A replaced pool's resolver stops before its successor sets endpoints:
	// both would keep the endpoint set of the pick.Pool they share.
	for name, p := range u.pools {
		if next[name] != p {
			p.close()
		}
	}
	for _, pc := range cfg.Pools {
		p := next[pc.Name]
		switch {
		case slices.Contains(built, p):
			p.start(u.log)
		case pc.DNS == "":
			p.setEndpoints(pc.Endpoints) // empty only for a Discovered pool
		}
	}
	u.pools = next
	return next, nil
}

// cutAll closes every upstream connection, in use or idle, and refuses new
// ones: the end of a drain, after which nothing may wait on an upstream.
func (u *upstreams) cutAll() { u.live.cutAll() }

func (u *upstreams) closeAll() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, p := range u.pools {
		p.close()
	}
	u.pools = map[string]*pool{}
}

// samePoolShape reports whether two pool configs can share transports.
func samePoolShape(a, b config.Pool) bool {
	return a.Protocol == b.Protocol && a.DNS == b.DNS && a.DialTimeout == b.DialTimeout &&
		a.IdleConnTimeout == b.IdleConnTimeout && a.MaxConnsPerEndpoint == b.MaxConnsPerEndpoint &&
		a.ResolveInterval == b.ResolveInterval && equalTLS(a.TLS, b.TLS)
}

func equalTLS(a, b *config.UpstreamTLS) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// newPool builds a pool with no endpoints yet; start gives it its endpoints.
func newPool(pc config.Pool, lim config.Limits, ids mtls.IdentitySource, picks *pick.Pool, live *connSet) (*pool, error) {
	tf, err := newTransportFactory(pc, lim, ids, live)
	if err != nil {
		return nil, err
	}
	p := &pool{name: pc.Name, cfg: pc, limits: lim, picks: picks, tr: tf, stop: func() {},
		done: make(chan struct{}), resolved: make(chan struct{}), ids: ids}
	p.list.Store(&endpointList{})
	return p, nil
}

// start sets a static pool's endpoints, or starts a DNS pool's resolver.
func (p *pool) start(log *slog.Logger) {
	p.started = true
	if p.cfg.DNS == "" {
		p.setEndpoints(p.cfg.Endpoints)
		close(p.resolved)
		close(p.done)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	go func() {
		defer close(p.done)
		p.resolveLoop(ctx, log)
	}()
}

// scheme is the URL scheme with which the pool's endpoints are reached.
func (p *pool) scheme() string {
	if p.cfg.TLS != nil {
		return "https://"
	}
	return "http://"
}

// setEndpoints swaps in a new address list, keeping endpoints already known,
// and drops the picking state of addresses no longer listed.
func (p *pool) setEndpoints(addrs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.list.Load().eps
	byAddr := make(map[string]*endpoint, len(cur))
	for _, e := range cur {
		byAddr[e.addr] = e
	}
	next := &endpointList{eps: make([]*endpoint, 0, len(addrs)), states: make([]*pick.Endpoint, 0, len(addrs))}
	kept := make(map[*endpoint]bool, len(cur))
	for _, a := range addrs {
		e := byAddr[a]
		if e != nil {
			kept[e] = true
		} else {
			e = &endpoint{state: p.picks.Endpoint(a), pool: p.name, addr: a, base: p.scheme() + a, rt: p.tr.forEndpoint(a)}
		}
		next.eps = append(next.eps, e)
		next.states = append(next.states, e.state)
	}
	for _, e := range cur {
		if !kept[e] {
			e.rt.close()
		}
	}
	p.picks.Retain(addrs)
	p.list.Store(next)
}

func (p *pool) resolveLoop(ctx context.Context, log *slog.Logger) {
	host, port, err := net.SplitHostPort(p.cfg.DNS)
	if err != nil {
		log.Error("pool dns is not host:port", "pool", p.name, "dns", p.cfg.DNS)
		close(p.resolved)
		return
	}
	first := true
	t := time.NewTicker(max(p.cfg.ResolveInterval.D(), 100*time.Millisecond))
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ips, err := net.DefaultResolver.LookupHost(rctx, host)
		cancel()
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			log.Warn("pool dns lookup failed; keeping the last answer", "pool", p.name, "dns", p.cfg.DNS, "err", err)
		case err == nil:
			slices.Sort(ips)
			addrs := make([]string, len(ips))
			for i, ip := range ips {
				addrs[i] = net.JoinHostPort(ip, port)
			}
			p.setEndpoints(addrs)
		}
		if first {
			close(p.resolved)
			first = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// close stops the resolver, waits for it, and closes every transport. A pool
// that was never started has nothing running.
func (p *pool) close() {
	if !p.started {
		return
	}
	p.stop()
	<-p.done
	for _, e := range p.list.Load().eps {
		e.rt.close()
	}
}
