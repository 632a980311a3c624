package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// families parses an exposition with the reference parser (the text
// format, or OpenMetrics when ct says so).
func families(t testing.TB, body []byte, ct string) map[string]*dto.MetricFamily {
	t.Helper()
	f := expfmt.ResponseFormat(http.Header{"Content-Type": {ct}})
	dec := expfmt.NewDecoder(strings.NewReader(string(body)), f)
	out := map[string]*dto.MetricFamily{}
	for {
		mf := new(dto.MetricFamily)
		err := dec.Decode(mf)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("exposition (%s) does not parse: %v\n%s", ct, err, body)
		}
		name := mf.GetName()
		if mf.GetType() == dto.MetricType_COUNTER && !strings.HasSuffix(name, "_total") {
			name += "_total" // OpenMetrics names the counter family without it
		}
		out[name] = mf
	}
}

// scrapeFamilies GETs p's /metrics with accept and parses it.
// With OpenMetrics only the families named by the only prefixes (default
// kvgate_) are parsed.
func scrapeFamilies(t testing.TB, p *Proxy, accept string, only ...string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+p.AdminAddr().String()+"/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := plainClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %v\n%s", resp.StatusCode, err, b)
	}
	ct := resp.Header.Get("Content-Type")
	if strings.Contains(ct, "openmetrics") {
		// The OpenMetrics reference parser runs an ABNF parse per line,
		// seconds for a whole exposition: keep the families the test reads.
		b = ownLines(b, only...)
	}
	return families(t, b, ct)
}

// ownLines keeps an OpenMetrics exposition's families whose names start
// with one of prefixes (default kvgate_), and its end.
func ownLines(b []byte, prefixes ...string) []byte {
	if len(prefixes) == 0 {
		prefixes = []string{"kvgate_"}
	}
	var out []byte
	for _, l := range strings.SplitAfter(string(b), "\n") {
		name := l
		for _, pre := range []string{"# HELP ", "# TYPE ", "# UNIT "} {
			name = strings.TrimPrefix(name, pre)
		}
		keep := l == "# EOF\n" || l == "# EOF"
		for _, pre := range prefixes {
			keep = keep || strings.HasPrefix(name, pre)
		}
		if keep {
			out = append(out, l...)
		}
	}
	return out
}

// series returns the metrics of family name whose labels include want
// (name, value pairs).
func series(fams map[string]*dto.MetricFamily, name string, want ...string) []*dto.Metric {
	var out []*dto.Metric
	mf := fams[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.Metric {
		have := map[string]string{}
		for _, lp := range m.Label {
			have[lp.GetName()] = lp.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if v, ok := have[want[i]]; !ok || v != want[i+1] {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// one is the single series of name matching want, or a test failure.
func one(t testing.TB, fams map[string]*dto.MetricFamily, name string, want ...string) *dto.Metric {
	t.Helper()
	s := series(fams, name, want...)
	if len(s) != 1 {
		t.Fatalf("%d series of %s with %q, want 1 (family: %v)", len(s), name, want, fams[name])
	}
	return s[0]
}

// TestStatusCodesDistinct: a 429 from the model server, a 404 for no route
// and a 499 for a client that went away are three series, told apart by
// code (the class alone, 4xx, was all /metrics said before).
func TestStatusCodesDistinct(t *testing.T) {
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/shed":
			http.Error(w, "busy", http.StatusTooManyRequests)
		case "/v1/slow":
			select { // bounded: the client gives up long before
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
	}))
	p := startProxy(t, `routes:
  - {name: r, matches: [{path: {value: /v1/}}], backends: [{pool: b}]}
pools:
  - {name: b, endpoints: ["`+addr+`"]}`)
	c := plainClient()
	for _, path := range []string{"/v1/shed", "/nothing"} {
		mustGet(t, c, engines()[0].url(p, path))
	}
	h2c := engines()[1]
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h2c.url(p, "/v1/slow"), nil)
	if resp, err := h2c.client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the slow request answered; want the client to give up")
	}
	var fams map[string]*dto.MetricFamily
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		fams = scrapeFamilies(t, p, "")
		if len(series(fams, "kvgate_requests_total", "code", "499")) > 0 {
			break
		}
	}
	for _, tc := range []struct{ code, route string }{{"429", "r"}, {"404", ""}, {"499", "r"}} {
		m := one(t, fams, "kvgate_requests_total", "code", tc.code, "class", "4xx")
		if m.GetCounter().GetValue() != 1 {
			t.Errorf("code %s counted %v times, want 1", tc.code, m.GetCounter().GetValue())
		}
		if h := one(t, fams, "kvgate_request_duration_seconds", "code", tc.code, "route", tc.route); h.GetHistogram().GetSampleCount() != 1 {
			t.Errorf("code %s: duration count %d, want 1", tc.code, h.GetHistogram().GetSampleCount())
		}
	}
	lint(t, p)
}

// lint runs the client library's linter over p's /metrics; every problem
// (a counter without _total, a unit not in base units, a missing HELP) fails.
func lint(t *testing.T, p *Proxy) {
	t.Helper()
	_, body := mustGet(t, plainClient(), "http://"+p.AdminAddr().String()+"/metrics")
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Errorf("promlint: %s: %s", pr.Metric, pr.Text)
	}
	for _, mf := range families(t, []byte(body), "text/plain; version=0.0.4") {
		if mf.GetHelp() == "" {
			t.Errorf("%s has no HELP", mf.GetName())
		}
	}
}

// exposedProxy is a Proxy with metrics and no listeners, for exposition tests.
func exposedProxy() *Proxy {
	return &Proxy{metrics: newMetrics(), infer: &inferenceSet{}}
}

// hostileLabels are label values the exposition must escape, not break on.
var hostileLabels = []string{
	`plain`, `with "quotes"`, `back\slash`, "new\nline", "tab\there", "bad\xffutf8", `\n literal`, "}", `{a="b"}`,
	"# HELP x y", "\x00nul", "ünïcødé", strings.Repeat("long", 64),
}

// exposeHostile records a request and GenAI observations under value as
// route, pool, endpoint and model, and under value as error kind, then
// checks that both the text format and OpenMetrics parse with the
// reference parser and give the value back (as valid UTF-8).
func exposeHostile(t testing.TB, value string, openMetrics bool) {
	p := exposedProxy()
	m := p.metrics
	model := m.models.label(value)
	k := reqKey{listener: value, route: value, pool: value, endpoint: value, model: model, code: 200}
	s := &reqSeries{duration: newHistogram(durationBuckets, 1e-9)}
	s.duration.observe(uint64(time.Millisecond), validSpan())
	m.reqs[k] = s
	g := newGenAISeries()
	g.ttft.observe(uint64(time.Millisecond), validSpan())
	m.genai[genaiKey{value, value, value, model}] = g
	m.errors.WithLabel(value).Add(1)
	// Only kvgate's own families: the OpenMetrics reference parser is slow
	// (an ABNF parse per line), and the Go runtime's names are not ours.
	h := metricsHandler(p, false)
	want := strings.ToValidUTF8(value, string(utf8.RuneError))
	accepts := []string{"", "application/openmetrics-text; version=1.0.0"}
	if !openMetrics || len(value) > 48 {
		// The OpenMetrics reference parser runs an ABNF parse per line whose
		// time grows faster than the line (and far slower under the fuzzer's
		// coverage instrumentation): the fuzz target parses the text format
		// (client_golang escapes both formats with the same code).
		accepts = accepts[:1]
	}
	for _, accept := range accepts {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Header.Set("Accept", accept)
		h.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		if accept != "" {
			// The OpenMetrics reference parser is slow (an ABNF parse per
			// line): parse the families checked below.
			body = ownLines(body, "kvgate_requests", "kvgate_errors")
		}
		fams := families(t, body, rec.Header().Get("Content-Type"))
		if len(series(fams, "kvgate_requests_total", "route", want, "listener", want, "pool", want, "endpoint", want)) != 1 {
			t.Fatalf("accept %q: no kvgate_requests_total with route %q:\n%s", accept, want, rec.Body)
		}
		if len(series(fams, "kvgate_errors_total", "kind", want)) != 1 {
			t.Fatalf("accept %q: no kvgate_errors_total with kind %q", accept, want)
		}
		wantModel := want
		if len(value) > maxModelLabelBytes {
			wantModel = otherModel
		}
		if accept == "" && len(series(fams, "kvgate_gen_ai_server_time_to_first_token_seconds", "model", wantModel)) != 1 {
			t.Fatalf("accept %q: no TTFT series with model %q", accept, wantModel)
		}
	}
}

// validSpan is a sampled span context, for exemplars.
func validSpan() trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled})
}

func TestMetricsLabelEscaping(t *testing.T) {
	for _, v := range hostileLabels {
		t.Run("", func(t *testing.T) { exposeHostile(t, v, true) })
	}
}

// FuzzMetricsLabels: whatever bytes a route, pool, endpoint or model has,
// both expositions parse and give the value back.
func FuzzMetricsLabels(f *testing.F) {
	for _, v := range hostileLabels {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if v == "" {
			return // "" is no label at all
		}
		exposeHostile(t, v, false)
	})
}

// TestModelLabelCap: config-named models keep their label, the first
// maxLearnedModels others get one, later ones are counted as "other".
func TestModelLabelCap(t *testing.T) {
	var ml modelLabels
	cfg := proxyConfig(t, `routes:
  - name: r
    matches: [{model: {value: llama-3}}]
    backends: [{pool: b, modelRewrite: [{model: qwen-2}]}]
pools:
  - {name: b, endpoints: ["127.0.0.1:1"]}`, false)
	ml.configure(cfg)
	for i := range maxLearnedModels {
		if got, want := ml.label("m"+string(rune('A'+i))), "m"+string(rune('A'+i)); got != want {
			t.Fatalf("learned model %d labelled %q, want %q", i, got, want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"llama-3", "llama-3"}, {"qwen-2", "qwen-2"}, {"mA", "mA"}, {"new-after-cap", otherModel}, {"", ""},
	} {
		if got := ml.label(tc.in); got != tc.want {
			t.Errorf("label(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { ml.label("llama-3"); ml.label("unknown-model") }); allocs != 0 {
		t.Errorf("label allocates %v times per call pair after the cap, want 0", allocs)
	}
}

// TestExemplarsWithTracing: with tracing on, the OpenMetrics exposition
// carries the trace of a request as the exemplar of its histograms.
func TestExemplarsWithTracing(t *testing.T) {
	addr := backend(t, openAIBackend(sseStream()))
	exp := tracetest.NewInMemoryExporter()
	p, _, _ := startTelemetryProxy(t, simple(addr), memTracing(exp))
	resp, err := plainClient().Post(engines()[0].url(p, "/v1/chat/completions"), "application/json",
		strings.NewReader(`{"model":"m","stream":true,"stream_options":{"include_usage":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	spans := waitSpans(t, exp, 2)
	var traceID string
	for _, s := range spans {
		traceID = s.SpanContext.TraceID().String()
	}
	var fams map[string]*dto.MetricFamily
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		fams = scrapeFamilies(t, p, "application/openmetrics-text; version=1.0.0",
			"kvgate_request_duration_seconds", "kvgate_gen_ai_server_time_to_first_token_seconds")
		if len(series(fams, "kvgate_gen_ai_server_time_to_first_token_seconds")) > 0 {
			break
		}
	}
	for _, name := range []string{"kvgate_request_duration_seconds", "kvgate_gen_ai_server_time_to_first_token_seconds"} {
		found := false
		for _, m := range series(fams, name) {
			for _, b := range m.GetHistogram().GetBucket() {
				if ex := b.GetExemplar(); ex != nil {
					for _, lp := range ex.GetLabel() {
						if lp.GetName() == "trace_id" && lp.GetValue() == traceID {
							found = true
						}
					}
				}
			}
		}
		if !found {
			t.Errorf("%s has no exemplar with trace_id %s", name, traceID)
		}
	}
	// The text format has no exemplars, and tracing off records none.
	for _, m := range series(scrapeFamilies(t, p, ""), "kvgate_request_duration_seconds") {
		for _, b := range m.GetHistogram().GetBucket() {
			if b.GetExemplar() != nil {
				t.Fatal("the Prometheus text format carries an exemplar")
			}
		}
	}
}

// BenchmarkMetricsObserve is the accounting of one finished model request
// (request series, GenAI histograms and token usage), on a series that
// already exists: atomics under a read lock, no allocation.
func BenchmarkMetricsObserve(b *testing.B) {
	m := newMetrics()
	x := &Exchange{listener: &Listener{name: "plain"}, route: "r", pool: "llm", ep: &endpoint{addr: "10.0.0.1:8000"},
		model: "llama-3", start: time.Now(), status: 200, ttft: 30 * time.Millisecond, hasTokens: true}
	x.tokens.Prompt, x.tokens.Completion, x.tokens.Cached = 1200, 180, 1024
	b.ReportAllocs()
	for b.Loop() {
		x.modelLabel = ""
		m.observe(x, 200, time.Since(x.start))
	}
}

func TestMetricsObserveAllocs(t *testing.T) {
	m := newMetrics()
	x := &Exchange{listener: &Listener{name: "plain"}, route: "r", pool: "llm", ep: &endpoint{addr: "10.0.0.1:8000"},
		model: "llama-3", start: time.Now(), status: 200, ttft: 30 * time.Millisecond, hasTokens: true}
	x.tokens.Prompt, x.tokens.Completion = 1200, 180
	m.observe(x, 200, time.Since(x.start)) // creates the series
	if n := testing.AllocsPerRun(100, func() { x.modelLabel = ""; m.observe(x, 200, time.Since(x.start)) }); n != 0 {
		t.Fatalf("observe allocates %v times per request, want 0", n)
	}
}

// TestModelLabelOwned: a model name read from a request's body buffer
// becomes a label value (and a key of the known names) that the metrics
// own: reusing the buffer for the next request changes neither.
func TestModelLabelOwned(t *testing.T) {
	var ml modelLabels
	buf := []byte(`{"model":"llama-3-8b"}`)
	model := b2s(buf[10:20])
	l := ml.label(model)
	copy(buf[10:20], "xxxxxxxxxx") // the next request reuses the buffer
	if l != "llama-3-8b" {
		t.Fatalf("label %q after the body buffer was reused, want llama-3-8b", l)
	}
	if got := ml.label("llama-3-8b"); got != "llama-3-8b" || ml.learned != 1 {
		t.Fatalf("label(llama-3-8b) = %q with %d names learned after the buffer was reused, want the same label and 1", got, ml.learned)
	}
}
