package proxy

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	prombridge "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/internal/buildinfo"
)

// metricsPush sends the families of /metrics to an OTLP/HTTP collector
// (tracing.metricsInterval). It reads the same gatherer /metrics serves,
// through the OpenTelemetry Prometheus bridge, on its own goroutine: the
// request path does not know it exists.
type metricsPush struct{ mp *sdkmetric.MeterProvider }

// newMetricsPush starts the push; nil, nil when cfg asks for none.
func newMetricsPush(cfg config.Tracing, g prometheus.Gatherer) (*metricsPush, error) {
	if cfg.Endpoint == "" || cfg.MetricsInterval <= 0 {
		return nil, nil
	}
	exp, err := otlpmetrichttp.New(context.Background(), otlpmetrichttp.WithEndpointURL(otlpURL(cfg.Endpoint, "/v1/metrics")))
	if err != nil {
		return nil, fmt.Errorf("proxy: tracing.endpoint %q: %w (write the collector's OTLP/HTTP URL, e.g. http://127.0.0.1:4318)", cfg.Endpoint, err)
	}
	reader := sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(cfg.MetricsInterval.D()),
		sdkmetric.WithProducer(prombridge.NewMetricProducer(prombridge.WithGatherer(g))))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader),
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName),
			attribute.String("service.version", buildinfo.Version()))))
	return &metricsPush{mp: mp}, nil
}

// shutdown pushes once more and stops.
func (m *metricsPush) shutdown(ctx context.Context) {
	if m != nil {
		_ = m.mp.Shutdown(ctx)
	}
}

// otlpURL appends an OTLP signal path to a base URL without a path.
func otlpURL(endpoint, signal string) string {
	if u, err := url.Parse(endpoint); err == nil && (u.Path == "" || u.Path == "/") {
		return strings.TrimSuffix(endpoint, "/") + signal
	}
	return endpoint
}
