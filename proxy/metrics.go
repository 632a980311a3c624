package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// metrics holds the counters and histograms the request path updates. A
// series is created once, under a lock, the first time its label values
// occur; from then on the request path finds it under a read lock and
// updates it with atomics only, so it allocates nothing after warm-up.
// Exposition is prometheus/client_golang's (metrics_export.go): at scrape
// time a collector turns these atomics into const metrics, which gives the
// exposition format's escaping, OpenMetrics with exemplars, and the go_* and
// process_* families without putting the library on the request path.
//
// Label values come from the configuration (listener, route, pool,
// endpoint), from a bounded set (status code, token type) or from the
// request's `model`, which modelLabels caps (metrics_genai.go).
type metrics struct {
	mu          sync.RWMutex
	reqs        map[reqKey]*reqSeries
	genai       map[genaiKey]*genaiSeries // metrics_genai.go
	models      modelLabels               // metrics_genai.go
	reloads     *labeledCounter
	parseErrors atomic.Uint64
	tlsErrors   atomic.Uint64
	errors      *labeledCounter
	retries     *labeledCounter // by result: retried | budget_exhausted
	mirrors     *labeledCounter // by result: sent | error | dropped
	authz       *labeledCounter // see authzDenied
	authzOnce   sync.Once
}

// reqKey names one kvgate_requests_total / kvgate_request_duration_seconds
// series. The status class label is derived from code at exposition.
type reqKey struct {
	listener, route, pool, endpoint, model string
	code                                   uint16 // HTTP status; 499: the client went away
}

// durationBuckets are upper bounds in seconds.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

type reqSeries struct {
	duration histogram // seconds, from the request's start to the end of its body
}

func newMetrics() *metrics {
	m := &metrics{reqs: map[reqKey]*reqSeries{}, genai: map[genaiKey]*genaiSeries{}, reloads: newLabeledCounter(),
		errors: newLabeledCounter(), retries: newLabeledCounter(), mirrors: newLabeledCounter()}
	// Known label values are exposed from the start, at 0, so that rate()
	// and dashboards see a series before its first event.
	for c, vs := range map[*labeledCounter][]string{
		m.reloads: {"ok", "error"}, m.retries: {"retried", "budget_exhausted"}, m.mirrors: {"sent", "error", "dropped"},
	} {
		for _, v := range vs {
			c.WithLabel(v)
		}
	}
	return m
}

// observe counts a finished request that took d. Exchange.finish calls it once.
func (m *metrics) observe(x *Exchange, status int, d time.Duration) {
	model := x.modelLabel
	if model == "" && x.model != "" {
		model = m.models.label(x.model)
		x.modelLabel = model
	}
	k := reqKey{listener: x.listener.name, route: x.route, pool: x.pool, model: model, code: uint16(min(max(status, 0), 999))}
	if x.ep != nil {
		k.endpoint = x.ep.addr
	}
	m.mu.RLock()
	s := m.reqs[k]
	m.mu.RUnlock()
	if s == nil {
		m.mu.Lock()
		if s = m.reqs[k]; s == nil {
			s = &reqSeries{duration: newHistogram(durationBuckets, 1e-9)}
			m.reqs[k] = s
		}
		m.mu.Unlock()
	}
	sc := x.span.sampled()
	s.duration.observe(uint64(d), sc)
	if x.errKind != "" {
		m.errors.WithLabel(string(x.errKind)).Add(1)
	}
	if x.ttft > 0 || x.hasTokens {
		m.observeGenAI(x, d, sc) // metrics_genai.go
	}
}

// histogram is a fixed-bucket histogram updated with atomics. Values are
// observed in integer units (nanoseconds, tokens) so that the sum is an
// atomic integer too; scale converts a unit to the exposed base unit.
type histogram struct {
	bounds []float64 // upper bounds in base units (seconds, tokens); +Inf implied
	scale  float64   // base units per observed unit
	count  atomic.Uint64
	sum    atomic.Uint64
	counts []atomic.Uint64 // per bucket, not cumulative; len(bounds)
	ex     atomic.Pointer[exemplar]
}

// exemplar is the trace of one recent observation, exposed in OpenMetrics.
type exemplar struct {
	trace trace.SpanContext
	value float64
	at    time.Time
}

func newHistogram(bounds []float64, scale float64) histogram {
	return histogram{bounds: bounds, scale: scale, counts: make([]atomic.Uint64, len(bounds))}
}

// observe adds one value. sc, when valid, becomes the histogram's
// exemplar: only sampled traces (tracing on) pay for one.
func (h *histogram) observe(v uint64, sc trace.SpanContext) {
	h.count.Add(1)
	h.sum.Add(v)
	f := float64(v) * h.scale
	for i, b := range h.bounds {
		if f <= b {
			h.counts[i].Add(1)
			break
		}
	}
	if sc.IsValid() {
		h.ex.Store(&exemplar{trace: sc, value: f, at: time.Now()})
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

// each visits the family's values; the caller must not keep the pointers' label strings past the call.
func (c *labeledCounter) each(fn func(label string, v uint64)) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for k, n := range c.m {
		fn(k, n.Load())
	}
}
