package proxy

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// discardExporter drops spans: the benchmarks measure the request path, not
// an exporter.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

func withTracing(sampler sdktrace.Sampler) func(*Proxy) {
	return func(p *Proxy) {
		p.tracing = tracingFrom(sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler),
			sdktrace.WithBatcher(discardExporter{})))
	}
}

// BenchmarkProxyH1Traced is BenchmarkProxyH1 with every request sampled:
// the cost of a recorded span with its attributes and trace propagation.
func BenchmarkProxyH1Traced(b *testing.B) {
	addr := benchProxy(b, "routes:\n  - {name: r, backends: [{pool: b}]}", withTracing(sdktrace.AlwaysSample()))
	benchPost(b, addr, "/v1/chat/completions")
}

// BenchmarkProxyH1TracedUnsampled is tracing on with no request sampled
// (sampleRatio 0): a span context is still made and propagated.
func BenchmarkProxyH1TracedUnsampled(b *testing.B) {
	addr := benchProxy(b, "routes:\n  - {name: r, backends: [{pool: b}]}", withTracing(sdktrace.NeverSample()))
	benchPost(b, addr, "/v1/chat/completions")
}
