package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// Telemetry is the process's metrics pipeline: OpenTelemetry instruments →
// MeterProvider → Prometheus exporter → a private registry served as
// Prometheus text by Handler.
type Telemetry struct {
	registry *prometheus.Registry
	provider *sdkmetric.MeterProvider
}

// Setup builds the pipeline and installs it as the global OpenTelemetry
// meter provider. Call it once per process (tests may call it more often;
// the last call wins the global). service and version label the
// target_info metric.
func Setup(service, version string) (*Telemetry, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("telemetry: go collector: %w", err)
	}
	// process_resident_memory_bytes and friends (Linux /proc); the bench
	// reads peak RSS from /proc directly, this is for operators.
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("telemetry: process collector: %w", err)
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", service),
		attribute.String("service.version", version),
	)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	otel.SetMeterProvider(mp)
	return &Telemetry{registry: reg, provider: mp}, nil
}

// Handler serves the registry in the Prometheus text format. A collector
// that fails (the process collector cannot read /proc while the process
// is out of file handles, say) is logged as a warning and left out; the
// other metrics are still served, since that is when an operator needs
// them. Only if nothing can be gathered is the answer HTTP 500.
func (t *Telemetry) Handler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, ErrorLog: slogPrintln{}})
}

// slogPrintln adapts the default slog logger to promhttp.Logger.
type slogPrintln struct{}

func (slogPrintln) Println(v ...any) { slog.Warn("metrics collection", "err", fmt.Sprint(v...)) }

// Shutdown stops the MeterProvider; instruments become no-ops.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if err := t.provider.Shutdown(ctx); err != nil && !errors.Is(err, sdkmetric.ErrReaderShutdown) {
		return err
	}
	return nil
}
