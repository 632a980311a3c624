package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
	"github.com/kvgate/kvgate/router"
)

var discardLog = log.New(io.Discard, "", 0)

// snapshot is one compiled configuration. It is immutable once published;
// a reload builds a whole new one and swaps a single pointer.
type snapshot struct {
	cfg   *config.Config
	table *router.Table
	pools map[string]*pool
	authz *mtls.Authorizer // nil: no authorization policy
	paths pathOptions      // the paths block, compiled (pathnorm.go)
}

// Proxy is a running kvgate: listeners, the admin endpoint and the current
// configuration snapshot.
type Proxy struct {
	log       *slog.Logger
	snap      atomic.Pointer[snapshot]
	ups       *upstreams
	metrics   *metrics
	access    *accessLog
	draining  atomic.Bool
	listeners []*Listener
	admin     *http.Server
	adminLn   net.Listener
	connSem   chan struct{}
	mirrors   mirrorSet     // mirror.go
	infer     *inferenceSet // inference pools' picking state (picker.go)
	ident     mtls.Identity // workload SPIFFE identity; nil: none
	selfIDs   atomic.Pointer[selfIDCache]
	closeID   sync.Once    // closeIdentity runs once; Shutdown may be called twice
	tracing   *tracing     // nil when tracing is off (tracing.go); set before Start, read-only after
	push      *metricsPush // OTLP metrics push (metrics_otlp.go); nil when off
	loader    Loader       // how ReloadSource reads the config (reload.go); set before Start
	status    statusState  // what the status page shows (status.go)
	adminUI   http.Handler // mounted on the admin listener (SetAdminUI); nil none
	adminAuth adminAuth    // who may use the admin inspection endpoints (admin.go)
}

// New compiles cfg (already defaulted and validated) into a Proxy that is
// not yet listening.
func New(cfg *config.Config, log *slog.Logger) (*Proxy, error) {
	p := &Proxy{log: log, ups: newUpstreams(log), metrics: newMetrics(), infer: &inferenceSet{log: log}}
	acc, err := openAccessLog(cfg.AccessLog.Path)
	if err != nil {
		return nil, err
	}
	p.access = acc
	if err := p.openIdentity(cfg); err != nil {
		acc.close()
		return nil, err
	}
	if err := p.Reload(cfg); err != nil {
		p.closeIdentity()
		acc.close()
		return nil, err
	}
	p.connSem = make(chan struct{}, cfg.Limits.MaxConnections)
	for _, lc := range cfg.Listeners {
		l, err := newListener(p, lc)
		if err != nil {
			p.ups.closeAll()
			p.closeIdentity()
			acc.close()
			return nil, fmt.Errorf("proxy: listener %q: %w", lc.Name, err)
		}
		p.listeners = append(p.listeners, l)
	}
	if p.tracing, err = newTracing(cfg.Tracing); err != nil {
		p.infer.stopAll()
		p.ups.closeAll()
		p.closeIdentity()
		acc.close()
		return nil, err
	}
	if p.push, err = newMetricsPush(cfg.Tracing, metricsGatherer(p, true)); err != nil { // metrics_otlp.go
		p.tracing.shutdown(context.Background())
		p.infer.stopAll()
		p.ups.closeAll()
		p.closeIdentity()
		acc.close()
		return nil, err
	}
	return p, nil
}

// Reload compiles cfg into a new snapshot and swaps it in atomically. On
// error the running snapshot stays. Requests in flight finish on the
// snapshot they started with; endpoint state carries over by pool and address.
func (p *Proxy) Reload(cfg *config.Config) error {
	err := p.reload(cfg)
	p.status.recordReload(cfg.Source, err)
	return err
}

func (p *Proxy) reload(cfg *config.Config) error {
	table, err := router.Compile(cfg)
	if err != nil {
		p.metrics.reloads.WithLabel("error").Add(1)
		return fmt.Errorf("proxy: compile routes: %w", err)
	}
	authz, err := compileAuthz(cfg)
	if err != nil {
		p.metrics.reloads.WithLabel("error").Add(1)
		return err
	}
	pools, err := p.ups.sync(cfg)
	if err != nil {
		p.metrics.reloads.WithLabel("error").Add(1)
		return err
	}
	p.infer.sync(cfg, pools)
	p.status.syncRoutes(cfg)
	p.metrics.models.configure(cfg) // metrics_genai.go
	p.snap.Store(&snapshot{cfg: cfg, table: table, pools: pools, authz: authz, paths: compilePaths(cfg.Paths)})
	p.metrics.reloads.WithLabel("ok").Add(1)
	return nil
}

func (p *Proxy) limits() config.Limits { return p.snap.Load().cfg.Limits }

// Start opens every listener and the admin endpoint.
func (p *Proxy) Start() error {
	for _, l := range p.listeners {
		if err := l.start(); err != nil {
			p.closeListeners()
			return fmt.Errorf("proxy: listener %q on %s: %w (is the port in use?)", l.name, l.cfg.Address, err)
		}
		p.log.Info("listening", "listener", l.name, "address", l.ln.Addr().String(), "protocols", l.cfg.Protocols, "tls", l.tlsConf != nil)
	}
	addr := p.snap.Load().cfg.Admin.Address
	if addr == "" || addr == "off" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.closeListeners()
		return fmt.Errorf("proxy: admin listener on %s: %w (set admin.address to a free port)", addr, err)
	}
	p.adminLn = ln
	h, err := p.adminHandler()
	if err != nil {
		_ = ln.Close()
		p.closeListeners()
		return err
	}
	p.admin = &http.Server{Handler: h, ErrorLog: discardLog}
	go func() { _ = p.admin.Serve(ln) }()
	p.status.startSampler()
	p.log.Info("admin listening", "address", ln.Addr().String(), "inspection", p.adminAuth.describe())
	return nil
}

func (p *Proxy) closeListeners() {
	for _, l := range p.listeners {
		if l.ln != nil {
			_ = l.ln.Close()
			_ = l.h1ln.Close()
		}
		l.closeHTTP3()
	}
}

// Listener returns the named listener, or nil.
func (p *Proxy) Listener(name string) *Listener {
	for _, l := range p.listeners {
		if l.name == name {
			return l
		}
	}
	return nil
}

// AdminAddr is the bound admin address, or nil when it is off.
func (p *Proxy) AdminAddr() net.Addr {
	if p.adminLn == nil {
		return nil
	}
	return p.adminLn.Addr()
}

// drainGrace bounds how long Shutdown waits, once its ctx is done, for the
// requests it cut to return and be accounted (access log, metrics).
const drainGrace = time.Second

// Shutdown drains: /readyz fails at once, listeners stop accepting, and
// in-flight requests and streams run until they end or ctx is done. Then
// every connection still open is closed, client and upstream side alike, so
// that no request is left waiting on either; Shutdown returns at most
// drainGrace after ctx is done. The admin endpoint stops last.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.draining.Store(true)
	p.log.Info("draining", "listeners", len(p.listeners))
	// At the deadline a request whose upstream is silent would wait on it
	// (up to limits.streamIdleTimeout) after its client connection closed:
	// cut the upstream side too, and refuse new upstream connections.
	stopCut := context.AfterFunc(ctx, p.ups.cutAll)
	defer stopCut()
	drained := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, l := range p.listeners {
			wg.Go(func() { l.shutdown(ctx) })
		}
		wg.Wait()
		close(drained)
	}()
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
	}
	if ctx.Err() != nil {
		err = errors.New("proxy: drainTimeout reached: requests still running were cut (raise drainTimeout to let long streams finish)")
		grace := time.NewTimer(drainGrace)
		defer grace.Stop()
		select {
		case <-drained:
			p.waitRequests(grace.C)
		case <-grace.C:
			p.log.Warn("drain: listeners still closing after drainTimeout; stopping anyway")
		}
	}
	if p.admin != nil {
		_ = p.admin.Close()
	}
	p.status.stopSampler()
	p.mirrors.stop(ctx)
	p.infer.stopAll()
	p.ups.closeAll()
	p.closeIdentity()
	p.access.close()
	p.push.shutdown(ctx)    // pushes the metrics once more
	p.tracing.shutdown(ctx) // flushes spans still batched
	return err
}

// waitRequests waits until no request is in flight to an endpoint, or until
// stop fires. Polling is fine here: it runs once, at the end of a drain.
func (p *Proxy) waitRequests(stop <-chan time.Time) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for p.inflight() > 0 {
		select {
		case <-stop:
			p.log.Warn("drain: requests still running after drainTimeout; stopping anyway", "requests", p.inflight())
			return
		case <-t.C:
		}
	}
}

// inflight counts the requests in flight to the endpoints of the running
// configuration's pools (mirrors included).
func (p *Proxy) inflight() int64 {
	var n int64
	for _, pl := range p.snap.Load().pools {
		for _, e := range pl.list.Load().eps {
			r, _ := e.state.Inflight()
			n += r
		}
	}
	return n
}
