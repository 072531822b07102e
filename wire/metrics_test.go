package wire

import (
	"github.com/stratalog/strata/internal/metrictest"

	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestMetricsCount: a server named "broker" counts under the names the
// broker's metrics have always had (strata.broker.*; dashboards and e2e
// tests read them as strata_broker_*).
func TestMetricsCount(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())

	ts := newTestServer(t, nil, func(c *Config) { c.Name, c.Meter = "broker", provider.Meter(meterName) })

	c := ts.dial(t)
	ts.checkAPIVersions(t, c, 3, 1)
	ts.checkAPIVersions(t, c, 3, 2)
	ts.checkAPIVersions(t, c, 0, 3)
	bad := ts.dial(t)
	bad.Write([]byte{0x7f, 0, 0, 0})
	expectClosed(t, bad)

	var rm metricdata.ResourceMetrics
	collect := func() {
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
	}
	collect()
	if n := metrictest.Sum(t, rm, "strata.broker.requests", "version", "3"); n != 2 {
		t.Fatalf("requests{version=3} = %d, want 2", n)
	}
	if n := metrictest.Sum(t, rm, "strata.broker.requests", "api", "ApiVersions"); n != 3 {
		t.Fatalf("requests{api=ApiVersions} = %d, want 3", n)
	}
	// The bad connection is counted once closed on the server side.
	waitFor(t, "the bad-input event", func() bool {
		collect()
		return metrictest.Sum(t, rm, "strata.broker.bad_input", "kind", badFrameSize) == 1
	})
	if n := metrictest.Sum(t, rm, "strata.broker.connections.accepted"); n != 2 {
		t.Fatalf("accepted = %d, want 2", n)
	}
	if n := metrictest.Sum(t, rm, "strata.broker.bytes_in"); n <= 0 {
		t.Fatalf("bytes_in = %d", n)
	}
	if n := metrictest.Sum(t, rm, "strata.broker.bytes_out"); n <= 0 {
		t.Fatalf("bytes_out = %d", n)
	}
	waitFor(t, "the bad connection to be gone", func() bool {
		collect()
		return metrictest.Sum(t, rm, "strata.broker.connections") == 1
	})
	var histCount uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "strata.broker.request.duration" {
				for _, dp := range h.DataPoints {
					histCount += dp.Count
				}
			}
		}
	}
	if histCount != 3 {
		t.Fatalf("request.duration has %d observations, want 3", histCount)
	}
}
