package proxy

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
)

// endpoint is one upstream address. It lives outside config snapshots, keyed
// by pool and address, so in-flight counts and health survive reloads.
type endpoint struct {
	pool     string
	addr     string
	inflight atomic.Int64
	fails    atomic.Int32
	ejected  atomic.Int64 // unix nanos until which the endpoint is skipped
	rt       roundTripper // per-endpoint connection pool
}

const (
	ejectAfterFails = 3
	ejectFor        = 5 * time.Second
)

func (e *endpoint) ready(now int64) bool { return e.ejected.Load() <= now }

// observe records the outcome of a connection attempt (passive health).
func (e *endpoint) observe(connectFailed bool) {
	if !connectFailed {
		if e.fails.Load() != 0 {
			e.fails.Store(0)
		}
		return
	}
	if e.fails.Add(1) >= ejectAfterFails {
		e.ejected.Store(time.Now().Add(ejectFor).UnixNano())
		e.fails.Store(0)
	}
}

// pool is a named group of endpoints with one balancer. Its endpoint list is
// an immutable slice swapped atomically by the DNS resolver.
type pool struct {
	name     string
	cfg      config.Pool
	limits   config.Limits
	eps      atomic.Pointer[[]*endpoint]
	rr       atomic.Uint64
	rrMode   atomic.Bool // cfg.Balancer is round-robin; updated in place on reload
	tr       transportFactory
	stop     context.CancelFunc
	ids      mtls.IdentitySource // for SPIFFE upstream TLS (scrapes use it too); nil: none
	resolved chan struct{}       // closed after the first DNS answer (or at once for static pools)
}

// pick chooses a ready endpoint other than avoid (when another exists).
// It never blocks and takes no lock.
func (p *pool) pick(avoid *endpoint) *endpoint {
	eps := *p.eps.Load()
	n := len(eps)
	if n == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	if p.rrMode.Load() {
		start := int(p.rr.Add(1) % uint64(n))
		return scanReady(eps, start, now, avoid)
	}
	// Least request by power of two choices.
	a := eps[rand.IntN(n)]
	b := eps[rand.IntN(n)]
	if b.inflight.Load() < a.inflight.Load() {
		a, b = b, a
	}
	if a.ready(now) && a != avoid {
		return a
	}
	if b.ready(now) && b != avoid {
		return b
	}
	return scanReady(eps, rand.IntN(n), now, avoid)
}

func scanReady(eps []*endpoint, start int, now int64, avoid *endpoint) *endpoint {
	var fallback *endpoint
	for i := range eps {
		e := eps[(start+i)%len(eps)]
		if !e.ready(now) {
			continue
		}
		if e != avoid {
			return e
		}
		fallback = e
	}
	return fallback
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

// sync makes the pool set match cfg and returns the pools by name.
func (u *upstreams) sync(cfg *config.Config) (map[string]*pool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	next := make(map[string]*pool, len(cfg.Pools))
	for _, pc := range cfg.Pools {
		old := u.pools[pc.Name]
		if old != nil && samePoolShape(old.cfg, pc) && old.limits == cfg.Limits {
			if len(pc.Endpoints) > 0 {
				old.setEndpoints(pc.Endpoints)
			}
			// cfg is read by requests in flight: only the balancer may
			// change here (samePoolShape), and it is published atomically.
			old.rrMode.Store(pc.Balancer == "round-robin")
			next[pc.Name] = old
			continue
		}
		p, err := newPool(pc, cfg.Limits, u.log, u.ids, &u.live)
		if err != nil {
			return nil, err
		}
		if old != nil {
			p.adopt(old)
		}
		next[pc.Name] = p
	}
	for name, p := range u.pools {
		if next[name] != p {
			p.close()
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

func newPool(pc config.Pool, lim config.Limits, log *slog.Logger, ids mtls.IdentitySource, live *connSet) (*pool, error) {
	tf, err := newTransportFactory(pc, lim, ids, live)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pool{name: pc.Name, cfg: pc, limits: lim, tr: tf, stop: cancel, resolved: make(chan struct{}), ids: ids}
	p.rrMode.Store(pc.Balancer == "round-robin")
	empty := []*endpoint{}
	p.eps.Store(&empty)
	if pc.DNS != "" {
		go p.resolveLoop(ctx, log)
	} else {
		p.setEndpoints(pc.Endpoints)
		close(p.resolved)
	}
	return p, nil
}

// adopt carries in-flight counts and health over from a replaced pool.
func (p *pool) adopt(old *pool) {
	oldEps := *old.eps.Load()
	for _, e := range *p.eps.Load() {
		for _, o := range oldEps {
			if o.addr == e.addr {
				e.inflight.Store(o.inflight.Load())
				e.ejected.Store(o.ejected.Load())
			}
		}
	}
}

// setEndpoints swaps in a new address list, keeping endpoints already known.
func (p *pool) setEndpoints(addrs []string) {
	cur := *p.eps.Load()
	next := make([]*endpoint, 0, len(addrs))
	for _, a := range addrs {
		i := slices.IndexFunc(cur, func(e *endpoint) bool { return e.addr == a })
		if i >= 0 {
			next = append(next, cur[i])
			continue
		}
		next = append(next, &endpoint{pool: p.name, addr: a, rt: p.tr.forEndpoint(a)})
	}
	for _, e := range cur {
		if !slices.Contains(next, e) {
			e.rt.close()
		}
	}
	p.eps.Store(&next)
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

func (p *pool) close() {
	p.stop()
	for _, e := range *p.eps.Load() {
		e.rt.close()
	}
}
