package proxy

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/internal/buildinfo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// This file is the span part of a request's accounting: one OpenTelemetry
// server span per request, started in Proxy.Serve and ended in
// Exchange.finish exactly once, with W3C trace context taken from the
// client; and one client span per upstream try (the hop to the model
// server), whose context is the one sent upstream. Both follow the
// OpenTelemetry GenAI conventions where the request is an OpenAI-shaped
// model call (gen_ai.operation.name, gen_ai.provider.name,
// gen_ai.request.model, gen_ai.usage.*). When tracing is off
// Proxy.tracing is nil and the request path only compares pointers with nil.

// tracerName is the instrumentation scope of kvgate's spans.
const tracerName = "github.com/kvgate/kvgate/proxy"

// tracing holds the tracer provider. It is built once in New and shut
// down (flushing batched spans) at the end of Shutdown.
type tracing struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	prop   propagation.TraceContext
}

// newTracing builds the OTLP/HTTP exporter and a parent-based ratio
// sampler from cfg; nil, nil when tracing is off. cfg went through
// config.Default, which sets sampleRatio and serviceName; an absent ratio
// samples no new trace (parents' decisions still hold), never a default.
func newTracing(cfg config.Tracing) (*tracing, error) {
	if cfg.Endpoint == "" {
		return nil, nil
	}
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(tracesURL(cfg.Endpoint)))
	if err != nil {
		return nil, fmt.Errorf("proxy: tracing.endpoint %q: %w (write the collector's OTLP/HTTP URL, e.g. http://127.0.0.1:4318)", cfg.Endpoint, err)
	}
	ratio := 0.0
	if cfg.SampleRatio != nil {
		ratio = *cfg.SampleRatio
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName),
			attribute.String("service.version", buildinfo.Version()))),
	)
	return tracingFrom(tp), nil
}

// tracingFrom wraps a tracer provider (tests pass one with an in-memory exporter).
func tracingFrom(tp *sdktrace.TracerProvider) *tracing {
	return &tracing{tp: tp, tracer: tp.Tracer(tracerName)}
}

// tracesURL appends OTLP's /v1/traces to a base URL without a path.
func tracesURL(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil && (u.Path == "" || u.Path == "/") {
		return strings.TrimSuffix(endpoint, "/") + "/v1/traces"
	}
	return endpoint
}

func (t *tracing) shutdown(ctx context.Context) {
	if t != nil {
		_ = t.tp.Shutdown(ctx)
	}
}

// spanState is the tracing part of an Exchange.
type spanState struct {
	s trace.Span // nil: no span (tracing off, or already ended)
	c trace.Span // the current try's client span; nil when none
	t *tracing
}

// sampled is the server span's context when the span is sampled (it then
// becomes the exemplar of the request's metrics), else the zero context.
func (st *spanState) sampled() trace.SpanContext {
	if st.s == nil {
		return trace.SpanContext{}
	}
	if sc := st.s.SpanContext(); sc.IsSampled() {
		return sc
	}
	return trace.SpanContext{}
}

// genaiOperation is gen_ai.operation.name for an OpenAI-shaped path, "" for others.
func genaiOperation(path string) string {
	switch {
	case strings.HasSuffix(path, "/v1/chat/completions"), strings.HasSuffix(path, "/v1/responses"):
		return "chat"
	case strings.HasSuffix(path, "/v1/completions"):
		return "text_completion"
	case strings.HasSuffix(path, "/v1/embeddings"):
		return "embeddings"
	}
	return ""
}

// genaiProvider is gen_ai.provider.name: the inference pool's modelServer
// (vllm, sglang, ...), else "openai" for the OpenAI-compatible API.
func genaiProvider(x *Exchange) string {
	if ip := x.inf.ip; ip != nil {
		if c := ip.cfg.Load(); c != nil && c.ModelServer != "" {
			return c.ModelServer
		}
	}
	return "openai"
}

// startClient opens the client span of a try to ep, a child of the server
// span; its context is the one sent upstream (injectTrace).
func (st *spanState) startClient(x *Exchange, ep *endpoint) {
	ctx := trace.ContextWithSpan(context.Background(), st.s)
	op := genaiOperation(x.path)
	// The span keeps its name: never a string aliasing the request's buffers.
	var name string
	switch {
	case op != "" && x.model != "":
		name = op + " " + x.model
	case op != "":
		name = op
	default:
		name = ownedMethod(x.method)
	}
	_, c := st.t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient))
	st.c = c
	if !c.IsRecording() {
		return
	}
	host, port := splitHostPort(ep.addr)
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs, attribute.String("http.request.method", ownedMethod(x.method)),
		attribute.String("server.address", host), attribute.String("kvgate.pool", x.pool),
		attribute.String("kvgate.endpoint", ep.addr))
	if port > 0 {
		attrs = append(attrs, attribute.Int("server.port", port))
	}
	if op != "" {
		attrs = append(attrs, attribute.String("gen_ai.operation.name", op),
			attribute.String("gen_ai.provider.name", genaiProvider(x)))
		if x.model != "" {
			attrs = append(attrs, attribute.String("gen_ai.request.model", strings.Clone(x.model)))
		}
	}
	c.SetAttributes(attrs...)
}

// endClient ends the try's client span, if any, with what the try came to.
func (st *spanState) endClient(x *Exchange, status int, err error) {
	c := st.c
	st.c = nil
	if c == nil {
		return
	}
	if c.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 5)
		if status > 0 {
			attrs = append(attrs, attribute.Int("http.response.status_code", status))
		}
		if x.hasTokens {
			attrs = append(attrs, attribute.Int64("gen_ai.usage.input_tokens", x.tokens.Prompt),
				attribute.Int64("gen_ai.usage.output_tokens", x.tokens.Completion),
				attribute.Int64("gen_ai.usage.cache_read.input_tokens", x.tokens.Cached))
		}
		if err != nil || status >= 500 {
			t := "error"
			if x.errKind != "" {
				t = string(x.errKind)
			} else if status >= 500 {
				t = strconv.Itoa(status)
			}
			attrs = append(attrs, attribute.String("error.type", t))
			c.SetStatus(codes.Error, t)
		}
		c.SetAttributes(attrs...)
	}
	c.End()
}

// ownedMethod is method as a string that does not alias the request's
// buffers: a constant for the common methods, else a copy.
func ownedMethod(method string) string {
	for _, m := range [...]string{"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"} {
		if method == m {
			return m
		}
	}
	return strings.Clone(method)
}

// splitHostPort splits an endpoint address; port 0 when it has none.
func splitHostPort(addr string) (string, int) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	n, _ := strconv.Atoi(p)
	return host, n
}

// start opens x's server span, continuing the client's trace context.
func (t *tracing) start(x *Exchange) {
	ctx := t.prop.Extract(context.Background(), requestCarrier{x.hdr})
	// The name stays when no route matches (end renames routed spans): a copy.
	_, s := t.tracer.Start(ctx, ownedMethod(x.method), trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(x.start))
	x.span.s = s
	x.span.t = t
	if s.IsRecording() {
		// Spans outlive the request (exporters batch them), and x's strings
		// may alias buffers the next request reuses: a span keeps copies.
		s.SetAttributes(
			attribute.String("http.request.method", ownedMethod(x.method)),
			attribute.String("url.path", strings.Clone(x.path)),
			attribute.String("server.address", strings.Clone(x.Host())),
			attribute.String("network.protocol.version", strings.TrimPrefix(x.proto, "HTTP/")),
			attribute.String("client.address", x.remote.Addr().String()),
			attribute.String("kvgate.listener", x.listener.name),
		)
	}
}

// end ends the span with what the request came to. Exchange.finish calls
// it once; the span is forgotten first, so a second call does nothing.
func (st *spanState) end(x *Exchange, status int, err error) {
	s := st.s
	st.s = nil
	if s == nil {
		return
	}
	if s.IsRecording() {
		if x.route != "" {
			s.SetName(x.method + " " + x.route)
		}
		attrs := make([]attribute.KeyValue, 0, 16)
		attrs = append(attrs, attribute.Int("http.response.status_code", status),
			attribute.String("kvgate.route", x.route), attribute.String("kvgate.pool", x.pool),
			attribute.String("kvgate.request_id", strings.Clone(x.requestID)))
		if x.ep != nil {
			attrs = append(attrs, attribute.String("kvgate.endpoint", x.ep.addr))
		}
		if x.inf.reason != "" {
			attrs = append(attrs, attribute.String("kvgate.pick_reason", x.inf.reason))
		}
		if x.route != "" {
			// kvgate's routes are named rules, not path templates: the name
			// is the low-cardinality value that says which rule matched.
			attrs = append(attrs, attribute.String("http.route", x.route))
		}
		if op := genaiOperation(x.path); op != "" {
			attrs = append(attrs, attribute.String("gen_ai.operation.name", op),
				attribute.String("gen_ai.provider.name", genaiProvider(x)))
		}
		if x.model != "" {
			// x.model aliases the request's body buffer: the span keeps a copy.
			attrs = append(attrs, attribute.String("gen_ai.request.model", strings.Clone(x.model)))
		}
		if x.hasTokens {
			attrs = append(attrs, attribute.Int64("gen_ai.usage.input_tokens", x.tokens.Prompt),
				attribute.Int64("gen_ai.usage.output_tokens", x.tokens.Completion),
				attribute.Int64("gen_ai.usage.cache_read.input_tokens", x.tokens.Cached),
				attribute.Int64("kvgate.usage.cached_tokens", x.tokens.Cached))
		}
		if x.errKind != "" {
			attrs = append(attrs, attribute.String("error.type", string(x.errKind)))
		}
		s.SetAttributes(attrs...)
		if status >= 500 || err != nil {
			s.SetStatus(codes.Error, string(x.errKind))
		}
	}
	s.End()
}

// isTraceHeader reports the W3C trace context fields, which a traced
// request sends with the span's values instead of the client's.
func isTraceHeader(name string) bool {
	return fieldIs(name, "traceparent") || fieldIs(name, "tracestate")
}

// injectTrace writes the try's client span's traceparent (and tracestate)
// upstream, or the server span's when there is no client span.
func injectTrace(x *Exchange, dst headerSink) {
	s := x.span.s
	if x.span.c != nil {
		s = x.span.c
	}
	ctx := trace.ContextWithSpanContext(context.Background(), s.SpanContext())
	propagation.TraceContext{}.Inject(ctx, sinkCarrier{dst})
}

// requestCarrier reads trace context from the request headers. Values are
// copied: the parsed tracestate keeps substrings of them in the span
// context, which outlives the request.
type requestCarrier struct{ h HeaderReader }

func (c requestCarrier) Get(key string) string { return strings.Clone(c.h.Get(key)) }
func (c requestCarrier) Set(string, string)    {}
func (c requestCarrier) Keys() []string {
	keys := make([]string, 0, c.h.Len())
	c.h.Each(VisitFunc(func(name, _ string) { keys = append(keys, name) }))
	return keys
}

// sinkCarrier writes trace context into the upstream request's headers.
type sinkCarrier struct{ dst headerSink }

func (c sinkCarrier) Get(string) string     { return "" }
func (c sinkCarrier) Set(key, value string) { c.dst.Add(key, value) }
func (c sinkCarrier) Keys() []string        { return nil }

var (
	_ propagation.TextMapCarrier = requestCarrier{}
	_ propagation.TextMapCarrier = sinkCarrier{}
)
