package proxy

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// metrics is kvgate's own small Prometheus registry. Series are created on
// first use under a lock and then updated with atomics only, so the request
// path takes a read lock to find its series and never allocates after warm-up.
// (A hand-written registry keeps the request path allocation-free and the
// binary small; the exposition format is plain Prometheus text.)
type metrics struct {
	mu          sync.RWMutex
	reqs        map[reqKey]*reqSeries
	reloads     *labeledCounter
	parseErrors atomic.Uint64
	tlsErrors   atomic.Uint64
	errors      *labeledCounter
	retries     *labeledCounter // by result: retried | budget_exhausted
	mirrors     *labeledCounter // by result: sent | error | dropped
	authz       *labeledCounter // see authzDenied
	authzOnce   sync.Once
	tokens      tokenMetrics // metrics_tokens.go
}

type reqKey struct {
	listener, route, pool, endpoint string
	class                           uint8 // status / 100; 4 for 499
}

// durationBuckets are upper bounds in seconds.
var durationBuckets = [...]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

type reqSeries struct {
	count   atomic.Uint64
	sumNs   atomic.Uint64
	buckets [len(durationBuckets)]atomic.Uint64
}

func newMetrics() *metrics {
	return &metrics{reqs: map[reqKey]*reqSeries{}, reloads: newLabeledCounter(), errors: newLabeledCounter(),
		retries: newLabeledCounter(), mirrors: newLabeledCounter()}
}

func (m *metrics) observe(x *Exchange, status int) {
	k := reqKey{listener: x.listener.name, route: x.route, pool: x.pool, class: uint8(status / 100)}
	if x.ep != nil {
		k.endpoint = x.ep.addr
	}
	m.mu.RLock()
	s := m.reqs[k]
	m.mu.RUnlock()
	if s == nil {
		m.mu.Lock()
		if s = m.reqs[k]; s == nil {
			s = &reqSeries{}
			m.reqs[k] = s
		}
		m.mu.Unlock()
	}
	d := time.Since(x.start)
	s.count.Add(1)
	s.sumNs.Add(uint64(d))
	sec := d.Seconds()
	for i, b := range durationBuckets {
		if sec <= b {
			s.buckets[i].Add(1)
			break
		}
	}
	if x.errKind != "" {
		m.errors.WithLabel(string(x.errKind)).Add(1)
	}
}

// labeledCounter is a counter family with one label.
type labeledCounter struct {
	mu sync.RWMutex
	m  map[string]*atomic.Uint64
}

func newLabeledCounter() *labeledCounter { return &labeledCounter{m: map[string]*atomic.Uint64{}} }

func (c *labeledCounter) WithLabel(v string) *atomic.Uint64 {
	c.mu.RLock()
	n := c.m[v]
	c.mu.RUnlock()
	if n != nil {
		return n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n = c.m[v]; n == nil {
		n = new(atomic.Uint64)
		c.m[v] = n
	}
	return n
}

func (c *labeledCounter) write(w io.Writer, name, label string) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	keys := make([]string, 0, len(c.m))
	for k := range c.m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s{%s=%q} %d\n", name, label, k, c.m[k].Load())
	}
}

var classNames = [...]string{"0xx", "1xx", "2xx", "3xx", "4xx", "5xx"}

// writeTo renders the Prometheus text exposition.
func (p *Proxy) writeMetrics(out io.Writer) {
	w := bufio.NewWriter(out)
	defer w.Flush()
	m := p.metrics
	m.mu.RLock()
	keys := make([]reqKey, 0, len(m.reqs))
	for k := range m.reqs {
		keys = append(keys, k)
	}
	m.mu.RUnlock()
	slices.SortFunc(keys, func(a, b reqKey) int {
		return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
	})
	fmt.Fprintln(w, "# HELP kvgate_requests_total Requests finished, by listener, route, pool, endpoint and status class.")
	fmt.Fprintln(w, "# TYPE kvgate_requests_total counter")
	for _, k := range keys {
		m.mu.RLock()
		s := m.reqs[k]
		m.mu.RUnlock()
		fmt.Fprintf(w, "kvgate_requests_total{%s} %d\n", k.labels(), s.count.Load())
	}
	fmt.Fprintln(w, "# HELP kvgate_request_duration_seconds Time from request start to the end of the response body.")
	fmt.Fprintln(w, "# TYPE kvgate_request_duration_seconds histogram")
	for _, k := range keys {
		m.mu.RLock()
		s := m.reqs[k]
		m.mu.RUnlock()
		var cum uint64
		lab := k.labels()
		for i, b := range durationBuckets {
			cum += s.buckets[i].Load()
			fmt.Fprintf(w, "kvgate_request_duration_seconds_bucket{%s,le=\"%g\"} %d\n", lab, b, cum)
		}
		fmt.Fprintf(w, "kvgate_request_duration_seconds_bucket{%s,le=\"+Inf\"} %d\n", lab, s.count.Load())
		fmt.Fprintf(w, "kvgate_request_duration_seconds_sum{%s} %g\n", lab, float64(s.sumNs.Load())/1e9)
		fmt.Fprintf(w, "kvgate_request_duration_seconds_count{%s} %d\n", lab, s.count.Load())
	}
	p.writePoolGauges(w)
	p.writePickerMetrics(w)
	m.tokens.write(w)
	fmt.Fprintln(w, "# TYPE kvgate_errors_total counter")
	m.errors.write(w, "kvgate_errors_total", "kind")
	fmt.Fprintln(w, "# TYPE kvgate_retries_total counter")
	m.retries.write(w, "kvgate_retries_total", "result")
	fmt.Fprintln(w, "# TYPE kvgate_mirrors_total counter")
	m.mirrors.write(w, "kvgate_mirrors_total", "result")
	fmt.Fprintln(w, "# TYPE kvgate_config_reloads_total counter")
	m.reloads.write(w, "kvgate_config_reloads_total", "result")
	m.writeAuthz(w)
	fmt.Fprintf(w, "# TYPE kvgate_http1_parse_errors_total counter\nkvgate_http1_parse_errors_total %d\n", m.parseErrors.Load())
	fmt.Fprintf(w, "# TYPE kvgate_tls_handshake_errors_total counter\nkvgate_tls_handshake_errors_total %d\n", m.tlsErrors.Load())
	fmt.Fprintf(w, "# TYPE kvgate_connections_open gauge\nkvgate_connections_open %d\n", len(p.connSem))
	draining := 0
	if p.draining.Load() {
		draining = 1
	}
	fmt.Fprintf(w, "# TYPE kvgate_draining gauge\nkvgate_draining %d\n", draining)
}

func (k reqKey) labels() string {
	cls := "0xx"
	if int(k.class) < len(classNames) {
		cls = classNames[k.class]
	}
	return fmt.Sprintf("listener=%q,route=%q,pool=%q,endpoint=%q,class=%q", k.listener, k.route, k.pool, k.endpoint, cls)
}

func (p *Proxy) writePoolGauges(w io.Writer) {
	pools := p.snap.Load().pools
	names := make([]string, 0, len(pools))
	for n := range pools {
		names = append(names, n)
	}
	slices.Sort(names)
	now := time.Now().UnixNano()
	fmt.Fprintln(w, "# HELP kvgate_pool_endpoints Endpoints known in a pool.")
	fmt.Fprintln(w, "# TYPE kvgate_pool_endpoints gauge")
	for _, n := range names {
		fmt.Fprintf(w, "kvgate_pool_endpoints{pool=%q} %d\n", n, len(pools[n].list.Load().eps))
	}
	fmt.Fprintln(w, "# HELP kvgate_endpoint_inflight_requests Requests in flight to an endpoint.")
	fmt.Fprintln(w, "# TYPE kvgate_endpoint_inflight_requests gauge")
	for _, n := range names {
		for _, e := range pools[n].list.Load().eps {
			inflight, _ := e.state.Inflight()
			fmt.Fprintf(w, "kvgate_endpoint_inflight_requests{pool=%q,endpoint=%q} %d\n", n, e.addr, inflight)
		}
	}
	fmt.Fprintln(w, "# HELP kvgate_endpoint_ready Whether an endpoint is taking requests (0 while ejected).")
	fmt.Fprintln(w, "# TYPE kvgate_endpoint_ready gauge")
	for _, n := range names {
		for _, e := range pools[n].list.Load().eps {
			r := 0
			if e.state.Ready(now) {
				r = 1
			}
			fmt.Fprintf(w, "kvgate_endpoint_ready{pool=%q,endpoint=%q} %d\n", n, e.addr, r)
		}
	}
}
