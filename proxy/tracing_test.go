package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// traceRecorder is a backend that keeps the traceparent and tracestate it
// was sent, by request.
type traceRecorder struct {
	mu    sync.Mutex
	seen  []string // "traceparent|tracestate"
	inner http.Handler
}

func (b *traceRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.seen = append(b.seen, strings.Join(r.Header.Values("Traceparent"), ",")+"|"+strings.Join(r.Header.Values("Tracestate"), ","))
	b.mu.Unlock()
	b.inner.ServeHTTP(w, r)
}

func (b *traceRecorder) last() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen[len(b.seen)-1]
}

// memTracing installs a synchronous in-memory exporter that samples every
// new trace (and follows a caller's sampling decision).
func memTracing(exp *tracetest.InMemoryExporter) func(*Proxy) {
	return func(p *Proxy) {
		p.tracing = tracingFrom(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample()))))
	}
}

// waitSpans waits (bounded) until the exporter holds n spans and returns them.
func waitSpans(t *testing.T, exp *tracetest.InMemoryExporter, n int) tracetest.SpanStubs {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if s := exp.GetSpans(); len(s) >= n {
			return s
		}
	}
	t.Fatalf("%d spans ended, want %d", len(exp.GetSpans()), n)
	return nil
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

// serverSpans keeps the server spans of spans, in order.
func serverSpans(spans tracetest.SpanStubs) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindServer {
			out = append(out, s)
		}
	}
	return out
}

// spanOf returns the one span of kind k among spans.
func spanOf(t *testing.T, spans tracetest.SpanStubs, k trace.SpanKind) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range spans {
		if s.SpanKind == k {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans of kind %v among %d, want 1", len(found), k, len(spans))
	}
	return found[0]
}

// TestTracingSpan checks, on every engine, that a proxied request makes one
// server span and one client span for the upstream hop, both with the
// request's and the GenAI conventions' attributes; that the upstream sees a
// traceparent naming the client span, a child of the server span; and
// that a client's traceparent and tracestate are continued rather than
// forwarded as they were.
func TestTracingSpan(t *testing.T) {
	rec := &traceRecorder{inner: openAIBackend(sseStream())}
	addr := backend(t, rec)
	exp := tracetest.NewInMemoryExporter()
	p, _, _ := startTelemetryProxy(t, `
routes:
  - name: r
    matches: [{model: {value: m}}]
    backends: [{pool: b}]
pools:
  - name: b
    endpoints: ["`+addr+`"]
`, memTracing(exp))
	eachEngine(t, func(t *testing.T, e engine) {
		exp.Reset()
		c := e.client()
		resp, err := c.Post(e.url(p, "/v1/chat/completions"), "application/json", strings.NewReader(`{"model":"m"}`))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		spans := waitSpans(t, exp, 2)
		if len(spans) != 2 {
			t.Fatalf("%d spans, want 2", len(spans))
		}
		s := spanOf(t, spans, trace.SpanKindServer)
		if s.Parent.IsValid() || s.Name != "POST r" {
			t.Errorf("server span parent %v, name %q", s.Parent, s.Name)
		}
		a := attrs(s)
		for k, want := range map[string]any{
			"http.request.method": "POST", "url.path": "/v1/chat/completions", "server.address": "127.0.0.1",
			"http.response.status_code": int64(200), "kvgate.route": "r", "kvgate.pool": "b", "kvgate.endpoint": addr,
			"http.route": "r", "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "m",
			"gen_ai.usage.input_tokens": int64(12), "gen_ai.usage.output_tokens": int64(7), "gen_ai.usage.cache_read.input_tokens": int64(8),
		} {
			if got := a[attribute.Key(k)].AsInterface(); got != want {
				t.Errorf("server span attribute %s = %v, want %v", k, got, want)
			}
		}
		if _, ok := a["error.type"]; ok {
			t.Errorf("error.type set on a successful request: %v", a["error.type"])
		}
		cs := spanOf(t, spans, trace.SpanKindClient)
		if cs.Parent.SpanID() != s.SpanContext.SpanID() || cs.SpanContext.TraceID() != s.SpanContext.TraceID() || cs.Name != "chat m" {
			t.Errorf("client span %q parent %s, want \"chat m\" under the server span %s", cs.Name, cs.Parent.SpanID(), s.SpanContext.SpanID())
		}
		ca := attrs(cs)
		for k, want := range map[string]any{
			"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "m",
			"server.address": "127.0.0.1", "http.response.status_code": int64(200),
			"gen_ai.usage.input_tokens": int64(12), "gen_ai.usage.output_tokens": int64(7), "gen_ai.usage.cache_read.input_tokens": int64(8),
		} {
			if got := ca[attribute.Key(k)].AsInterface(); got != want {
				t.Errorf("client span attribute %s = %v, want %v", k, got, want)
			}
		}
		want := fmt.Sprintf("00-%s-%s-01|", cs.SpanContext.TraceID(), cs.SpanContext.SpanID())
		if got := rec.last(); got != want {
			t.Errorf("upstream trace context %q, want %q (the client span's)", got, want)
		}

		// A caller's trace is continued: same trace id, the caller's span as parent.
		exp.Reset()
		const tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
		req, _ := http.NewRequest("POST", e.url(p, "/v1/chat/completions"), strings.NewReader(`{"model":"m"}`))
		req.Header.Set("Traceparent", "00-"+tid+"-"+sid+"-01")
		req.Header.Set("Tracestate", "vendor=abc")
		resp, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		spans = waitSpans(t, exp, 2)
		s = spanOf(t, spans, trace.SpanKindServer)
		if s.SpanContext.TraceID().String() != tid || s.Parent.SpanID().String() != sid || !s.Parent.IsRemote() {
			t.Errorf("span trace %s parent %s; want trace %s parent %s", s.SpanContext.TraceID(), s.Parent.SpanID(), tid, sid)
		}
		cs = spanOf(t, spans, trace.SpanKindClient)
		want = fmt.Sprintf("00-%s-%s-01|vendor=abc", tid, cs.SpanContext.SpanID())
		if got := rec.last(); got != want {
			t.Errorf("upstream trace context %q, want %q (one traceparent, the client span's)", got, want)
		}
	})
}

// TestTracingCancelledStream checks that a stream the client abandons ends
// its span exactly once, marked as an error, and that the next request's
// span is unaffected.
func TestTracingCancelledStream(t *testing.T) {
	var started atomic.Int32
	addr := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "GET" {
			_, _ = io.WriteString(w, "{}")
			return
		}
		started.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		for range 500 { // bounded: 10 s at most; the proxy notices the client left on its next write
			if _, err := io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n"); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	exp := tracetest.NewInMemoryExporter()
	p, _, _ := startTelemetryProxy(t, simple(addr), memTracing(exp))
	eachEngine(t, func(t *testing.T, e engine) {
		exp.Reset()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", e.url(p, "/v1/chat/completions"), strings.NewReader(`{"stream":true}`))
		resp, err := e.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := firstEvent(resp.Body); err != nil {
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()
		spans := waitSpans(t, exp, 2) // server and client span
		for _, k := range []trace.SpanKind{trace.SpanKindServer, trace.SpanKindClient} {
			a := attrs(spanOf(t, spans, k))
			if et := a["error.type"].AsString(); et != "client_closed" && et != "stream_aborted" {
				t.Errorf("%v span error.type %q, want client_closed or stream_aborted", k, et)
			}
		}
		// A second, complete request adds exactly two more spans: the
		// first spans did not end again.
		mustGet(t, e.client(), e.url(p, "/v1/models"))
		_ = waitSpans(t, exp, 4)
		if n := len(exp.GetSpans()); n != 4 {
			t.Fatalf("%d spans after a cancelled and a complete request, want 4", n)
		}
	})
	if started.Load() == 0 {
		t.Fatal("backend never saw a request")
	}
}

// firstEvent reads up to the first blank line: the first SSE event.
func firstEvent(r io.Reader) (string, error) {
	var b bytes.Buffer
	one := make([]byte, 1)
	for !bytes.HasSuffix(b.Bytes(), []byte("\n\n")) {
		if _, err := r.Read(one); err != nil {
			return b.String(), err
		}
		b.Write(one)
	}
	return b.String(), nil
}

// otlpCollector serves an OTLP/HTTP collector on loopback until t ends and
// returns its address; seen gets the body of every protobuf POST to path.
func otlpCollector(t *testing.T, path string, seen func(body []byte)) string {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == "POST" && r.URL.Path == path && r.Header.Get("Content-Type") == "application/x-protobuf" {
			seen(body)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ErrorLog: discardLog}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// TestTracingOTLPExport runs the real OTLP/HTTP exporter against a loopback
// collector that counts POSTs to /v1/traces: spans batched during the run
// are flushed by Shutdown, with the configured service name.
func TestTracingOTLPExport(t *testing.T) {
	var posts atomic.Int32
	var gotService atomic.Bool
	collector := otlpCollector(t, "/v1/traces", func(body []byte) {
		posts.Add(1)
		if bytes.Contains(body, []byte("kvgate-otlp-test")) {
			gotService.Store(true)
		}
	})

	addr := backend(t, openAIBackend(sseStream()))
	p, _, stop := startTelemetryProxy(t, simple(addr, fmt.Sprintf(
		"tracing: {endpoint: \"http://%s\", sampleRatio: 1, serviceName: kvgate-otlp-test}", collector)), nil)
	if p.tracing == nil {
		t.Fatal("tracing.endpoint set but tracing is off")
	}
	for range 3 {
		resp, _ := mustGet(t, plainClient(), "http://"+p.Listener("plain").Addr().String()+"/v1/chat/completions")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	stop() // flushes the batch processor
	if posts.Load() == 0 || !gotService.Load() {
		t.Fatalf("collector saw %d trace exports (service name seen: %v), want at least 1 after Shutdown", posts.Load(), gotService.Load())
	}
}

// TestMetricsOTLPExport: with tracing.metricsInterval set, the families of
// /metrics reach an OTLP/HTTP collector at /v1/metrics (here by the push
// Shutdown makes; the interval is an hour), with the service name.
func TestMetricsOTLPExport(t *testing.T) {
	var posts atomic.Int32
	var gotFamily, gotService atomic.Bool
	collector := otlpCollector(t, "/v1/metrics", func(body []byte) {
		posts.Add(1)
		gotFamily.Store(gotFamily.Load() || bytes.Contains(body, []byte("kvgate_gen_ai_server_time_to_first_token_seconds")))
		gotService.Store(gotService.Load() || bytes.Contains(body, []byte("kvgate-otlp-metrics")))
	})

	addr := backend(t, openAIBackend(sseStream()))
	p, _, stop := startTelemetryProxy(t, simple(addr, fmt.Sprintf(
		"tracing: {endpoint: \"http://%s\", sampleRatio: 0, serviceName: kvgate-otlp-metrics, metricsInterval: 1h}", collector)), nil)
	if p.push == nil {
		t.Fatal("tracing.metricsInterval set but no metrics push")
	}
	resp, err := plainClient().Post(engines()[0].url(p, "/v1/chat/completions"), "application/json", strings.NewReader(`{"model":"m"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	waitGenAI(t, p)
	stop() // pushes once more
	if posts.Load() == 0 || !gotFamily.Load() || !gotService.Load() {
		t.Fatalf("collector saw %d metric exports (TTFT family: %v, service name: %v), want at least 1 with both after Shutdown",
			posts.Load(), gotFamily.Load(), gotService.Load())
	}
}

// waitGenAI waits (bounded) until p has counted a GenAI series: the
// accounting runs just after the client has its last byte.
func waitGenAI(t *testing.T, p *Proxy) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		p.metrics.mu.RLock()
		n := len(p.metrics.genai)
		p.metrics.mu.RUnlock()
		if n > 0 {
			return
		}
	}
	t.Fatal("no GenAI series after 5s")
}

// TestTracingSpanNameOwned: a request no route matched keeps the server
// span's first name, its method; the span outlives the request (exporters
// batch), so the name must not alias the request buffer the H1 engine's
// method string points into. The buffer is reused after the span ends.
func TestTracingSpanNameOwned(t *testing.T) {
	for _, method := range []string{"PATCH", "PROPFIND"} {
		exp := tracetest.NewInMemoryExporter()
		tr := tracingFrom(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample())))
		buf := []byte(method)
		x := &Exchange{listener: &Listener{name: "l"}, hdr: fakeHeaders{}, method: b2s(buf), path: "/nowhere", host: "h", proto: "HTTP/1.1"}
		tr.start(x)
		x.span.end(x, 404, nil)
		copy(buf, strings.Repeat("X", len(buf))) // the next request reuses the buffer
		spans := exp.GetSpans()
		if len(spans) != 1 || spans[0].Name != method || attrs(spans[0])["http.request.method"].AsString() != method {
			t.Fatalf("server span names %v, want [%s] (name and method attribute) after the request buffer was reused", spanNames(spans), method)
		}
	}
}

func spanNames(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
