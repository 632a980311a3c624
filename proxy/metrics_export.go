package proxy

import (
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/kvgate/kvgate/internal/buildinfo"
)

// This file is the exposition of /metrics: prometheus/client_golang renders
// the families, in the Prometheus text format or, when the scraper asks
// for application/openmetrics-text, in OpenMetrics with exemplars (the
// trace of a recent observation, when tracing is on). kvgate's own series
// are read at scrape time by proxyCollector from the atomics the request
// path updates (metrics.go); the Go runtime and process families come from
// the library's collectors. Nothing here runs on the request path.

// newMetricsHandler builds p's registry and its /metrics handler.
//
// The Go collector's go_memstats_alloc_bytes_total is left out: in
// OpenMetrics a counter's family drops _total, so it would clash with the
// gauge go_memstats_alloc_bytes and the exposition would not parse;
// go_gc_heap_allocs_bytes_total (from runtime/metrics) counts the same.
func newMetricsHandler(p *Proxy) http.Handler { return metricsHandler(p, true) }

// metricsHandler serves p's families, and the Go and process ones when runtime is set.
func metricsHandler(p *Proxy, runtime bool) http.Handler {
	return promhttp.HandlerFor(metricsGatherer(p, runtime), promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorHandling:     promhttp.ContinueOnError,
	})
}

// metricsGatherer gathers p's families, and the Go and process ones when
// runtime is set: what /metrics serves and the OTLP push sends.
func metricsGatherer(p *Proxy, runtime bool) prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	reg.MustRegister(proxyCollector{p})
	if runtime {
		reg.MustRegister(
			collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
				collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/allocs:bytes$`)})),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
	}
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := reg.Gather()
		return slices.DeleteFunc(mfs, func(mf *dto.MetricFamily) bool { return mf.GetName() == "go_memstats_alloc_bytes_total" }), err
	})
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// endpointDesc describes a per-endpoint series: labels pool and endpoint.
func endpointDesc(name, help string) *prometheus.Desc {
	return desc(name, help, "pool", "endpoint")
}

var reqLabels = []string{"listener", "route", "pool", "endpoint", "model", "code", "class"}
var genaiLabels = []string{"route", "pool", "endpoint", "model"}

var (
	descBuildInfo  = desc("kvgate_build_info", "Always 1; the labels name the running kvgate build.", "version", "revision", "goversion")
	descRequests   = desc("kvgate_requests_total", "Requests finished, by listener, route, pool, endpoint, model, status code and its class (499: the client went away).", reqLabels...)
	descReqDur     = desc("kvgate_request_duration_seconds", "Time from a request's start to the end of its response body.", reqLabels...)
	descTTFT       = desc("kvgate_gen_ai_server_time_to_first_token_seconds", "Time from a model request's start to the first body byte of the upstream's reply (OpenTelemetry gen_ai.server.time_to_first_token).", genaiLabels...)
	descTPOT       = desc("kvgate_gen_ai_server_time_per_output_token_seconds", "Time per output token after the first: (duration - TTFT) / (output tokens - 1) (OpenTelemetry gen_ai.server.time_per_output_token).", genaiLabels...)
	descGenDur     = desc("kvgate_gen_ai_server_request_duration_seconds", "Duration of successful model requests to the last body byte (OpenTelemetry gen_ai.server.request.duration).", genaiLabels...)
	descTokenUsage = desc("kvgate_gen_ai_client_token_usage", "Tokens per model request as the reply's usage reported them, by gen_ai_token_type input or output; input and output never overlap (OpenTelemetry gen_ai.client.token.usage).", append(genaiLabels[:len(genaiLabels):len(genaiLabels)], "gen_ai_token_type")...)
	descCached     = desc("kvgate_gen_ai_usage_cache_read_input_tokens_total", "Input tokens the model server reported as read from its prompt cache; a part of the input tokens, not in addition to them (OpenTelemetry gen_ai.usage.cache_read.input_tokens).", genaiLabels...)
	descErrors     = desc("kvgate_errors_total", "Requests that ended in an error, by error code (the code field of kvgate's error bodies).", "kind")
	descRetries    = desc("kvgate_retries_total", "Retry decisions: retried, or budget_exhausted when the route's retry budget refused one.", "result")
	descMirrors    = desc("kvgate_mirrors_total", "Mirrored requests: sent, error, or dropped when too many mirrors were in flight.", "result")
	descReloads    = desc("kvgate_config_reloads_total", "Configuration reloads by result: ok or error.", "result")
	descAuthz      = desc("kvgate_authz_denied_total", "Requests denied by authorization, by deciding policy (\"\": no ALLOW policy matched).", "policy")
	descParseErr   = desc("kvgate_http1_parse_errors_total", "HTTP/1.1 requests that could not be parsed.")
	descTLSErr     = desc("kvgate_tls_handshake_errors_total", "Client TLS handshakes that failed.")
	descConns      = desc("kvgate_connections_open", "Client connections open now.")
	descDraining   = desc("kvgate_draining", "1 while kvgate drains before shutdown.")
	descPoolEps    = desc("kvgate_pool_endpoints", "Endpoints known in a pool.", "pool")
	descInflight   = endpointDesc("kvgate_endpoint_inflight_requests", "Requests in flight to an endpoint.")
	descReady      = endpointDesc("kvgate_endpoint_ready", "Whether an endpoint is taking requests (0 while ejected).")
)

// proxyCollector reads p's metrics at scrape time. It describes nothing
// (an unchecked collector): its series come and go with the configuration.
type proxyCollector struct{ p *Proxy }

func (proxyCollector) Describe(chan<- *prometheus.Desc) {}

func (c proxyCollector) Collect(ch chan<- prometheus.Metric) {
	e := emitter{ch}
	p, m := c.p, c.p.metrics
	e.gauge(descBuildInfo, 1, buildinfo.Version(), buildinfo.Revision(), runtime.Version())

	type req struct {
		k reqKey
		s *reqSeries
	}
	type gen struct {
		k genaiKey
		s *genaiSeries
	}
	m.mu.RLock()
	reqs := make([]req, 0, len(m.reqs))
	for k, s := range m.reqs {
		reqs = append(reqs, req{k, s})
	}
	gens := make([]gen, 0, len(m.genai))
	for k, s := range m.genai {
		gens = append(gens, gen{k, s})
	}
	m.mu.RUnlock()
	for _, r := range reqs {
		code := strconv.Itoa(int(r.k.code))
		class := "0xx"
		if c := r.k.code / 100; c >= 1 && c <= 9 {
			class = string(rune('0'+c)) + "xx"
		}
		lv := []string{r.k.listener, r.k.route, r.k.pool, r.k.endpoint, r.k.model, code, class}
		e.counter(descRequests, float64(r.s.duration.count.Load()), lv...)
		e.hist(descReqDur, &r.s.duration, lv...)
	}
	for _, g := range gens {
		lv := []string{g.k.route, g.k.pool, g.k.endpoint, g.k.model}
		e.hist(descTTFT, &g.s.ttft, lv...)
		e.hist(descTPOT, &g.s.tpot, lv...)
		e.hist(descGenDur, &g.s.duration, lv...)
		for i, typ := range tokenTypeLabels {
			e.hist(descTokenUsage, &g.s.tokens[i], append(lv[:4:4], typ)...)
		}
		e.counter(descCached, float64(g.s.cached.Load()), lv...)
	}
	p.collectPools(e)
	p.collectPicker(e) // picker_metrics.go
	m.errors.each(func(l string, v uint64) { e.counter(descErrors, float64(v), l) })
	m.retries.each(func(l string, v uint64) { e.counter(descRetries, float64(v), l) })
	m.mirrors.each(func(l string, v uint64) { e.counter(descMirrors, float64(v), l) })
	m.reloads.each(func(l string, v uint64) { e.counter(descReloads, float64(v), l) })
	m.authzDenied().each(func(l string, v uint64) { e.counter(descAuthz, float64(v), l) })
	e.counter(descParseErr, float64(m.parseErrors.Load()))
	e.counter(descTLSErr, float64(m.tlsErrors.Load()))
	e.gauge(descConns, float64(len(p.connSem)))
	draining := 0.0
	if p.draining.Load() {
		draining = 1
	}
	e.gauge(descDraining, draining)
}

func (p *Proxy) collectPools(e emitter) {
	s := p.snap.Load()
	if s == nil {
		return
	}
	now := time.Now().UnixNano()
	for n, pl := range s.pools {
		eps := pl.list.Load().eps
		e.gauge(descPoolEps, float64(len(eps)), n)
		for _, ep := range eps {
			inflight, _ := ep.state.Inflight()
			e.gauge(descInflight, float64(inflight), n, ep.addr)
			r := 0.0
			if ep.state.Ready(now) {
				r = 1
			}
			e.gauge(descReady, r, n, ep.addr)
		}
	}
}

// emitter sends const metrics built from kvgate's atomics. Label values
// are made valid UTF-8 first (client_golang refuses anything else); the
// library then escapes them as the exposition format says.
type emitter struct{ ch chan<- prometheus.Metric }

func (e emitter) send(d *prometheus.Desc, m prometheus.Metric, err error) {
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	e.ch <- m
}

func validLabels(lv []string) []string {
	for i, v := range lv {
		if !utf8.ValidString(v) {
			lv[i] = strings.ToValidUTF8(v, string(utf8.RuneError))
		}
	}
	return lv
}

func (e emitter) counter(d *prometheus.Desc, v float64, lv ...string) {
	m, err := prometheus.NewConstMetric(d, prometheus.CounterValue, v, validLabels(lv)...)
	e.send(d, m, err)
}

func (e emitter) gauge(d *prometheus.Desc, v float64, lv ...string) {
	m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, validLabels(lv)...)
	e.send(d, m, err)
}

// hist sends h with its exemplar, if it has one.
func (e emitter) hist(d *prometheus.Desc, h *histogram, lv ...string) {
	buckets := make(map[float64]uint64, len(h.bounds))
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i].Load()
		buckets[b] = cum
	}
	// Loaded after the buckets: observe counts before it buckets, so the
	// count is never below the cumulative bucket counts.
	count := h.count.Load()
	m, err := prometheus.NewConstHistogram(d, count, float64(h.sum.Load())*h.scale, buckets, validLabels(lv)...)
	if err == nil {
		if ex := h.ex.Load(); ex != nil {
			m, err = prometheus.NewMetricWithExemplars(m, prometheus.Exemplar{
				Value:     ex.value,
				Labels:    prometheus.Labels{"trace_id": ex.trace.TraceID().String(), "span_id": ex.trace.SpanID().String()},
				Timestamp: ex.at,
			})
		}
	}
	e.send(d, m, err)
}
