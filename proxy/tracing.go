package proxy

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/kvgate/kvgate/config"
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
// client and sent upstream. When tracing is off Proxy.tracing is nil and
// the request path only compares two pointers with nil.

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
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName))),
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
}

// start opens x's server span, continuing the client's trace context.
func (t *tracing) start(x *Exchange) {
	ctx := t.prop.Extract(context.Background(), requestCarrier{x.hdr})
	_, s := t.tracer.Start(ctx, x.method, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(x.start))
	x.span.s = s
	if s.IsRecording() {
		// Spans outlive the request (exporters batch them), and x's strings
		// may alias buffers the next request reuses: a span keeps copies.
		s.SetAttributes(
			attribute.String("http.request.method", strings.Clone(x.method)),
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
		attrs := make([]attribute.KeyValue, 0, 12)
		attrs = append(attrs, attribute.Int("http.response.status_code", status),
			attribute.String("kvgate.route", x.route), attribute.String("kvgate.pool", x.pool),
			attribute.String("kvgate.request_id", strings.Clone(x.requestID)))
		if x.ep != nil {
			attrs = append(attrs, attribute.String("kvgate.endpoint", x.ep.addr))
		}
		if x.inf.reason != "" {
			attrs = append(attrs, attribute.String("kvgate.pick_reason", x.inf.reason))
		}
		if x.modelRead && x.model != "" {
			attrs = append(attrs, attribute.String("gen_ai.request.model", x.model))
		}
		if x.hasTokens {
			attrs = append(attrs, attribute.Int64("gen_ai.usage.input_tokens", x.tokens.Prompt),
				attribute.Int64("gen_ai.usage.output_tokens", x.tokens.Completion),
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

// injectTrace writes the span's traceparent (and tracestate) upstream.
func injectTrace(x *Exchange, dst headerSink) {
	ctx := trace.ContextWithSpanContext(context.Background(), x.span.s.SpanContext())
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
