package broker

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// sumOf returns the value of the int64 sum metric name at the data point
// with attribute key=value ("" matches any point; points are added up).
func sumOf(t *testing.T, rm metricdata.ResourceMetrics, name, key, value string) int64 {
	t.Helper()
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is %T", name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				if v, ok := dp.Attributes.Value(attribute.Key(key)); key == "" || ok && v.String() == value {
					total += dp.Value
				}
			}
		}
	}
	return total
}

func TestBrokerMetricsCount(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())

	tb := newTestBroker(t, nil, nil, func(b *Broker) { b.metrics = newBrokerMetricsFrom(provider.Meter(meterName)) })

	c := tb.dial(t)
	checkAPIVersions(t, c, 3, 1)
	checkAPIVersions(t, c, 3, 2)
	checkAPIVersions(t, c, 0, 3)
	bad := tb.dial(t)
	bad.Write([]byte{0x7f, 0, 0, 0})
	expectClosed(t, bad)

	var rm metricdata.ResourceMetrics
	collect := func() {
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
	}
	collect()
	if n := sumOf(t, rm, "strata.broker.requests", "version", "3"); n != 2 {
		t.Fatalf("requests{version=3} = %d, want 2", n)
	}
	if n := sumOf(t, rm, "strata.broker.requests", "api", "ApiVersions"); n != 3 {
		t.Fatalf("requests{api=ApiVersions} = %d, want 3", n)
	}
	// The bad connection is counted once closed on the server side.
	waitFor(t, "the bad-input event", func() bool {
		collect()
		return sumOf(t, rm, "strata.broker.bad_input", "kind", badFrameSize) == 1
	})
	if n := sumOf(t, rm, "strata.broker.connections.accepted", "", ""); n != 2 {
		t.Fatalf("accepted = %d, want 2", n)
	}
	if n := sumOf(t, rm, "strata.broker.bytes_in", "", ""); n <= 0 {
		t.Fatalf("bytes_in = %d", n)
	}
	if n := sumOf(t, rm, "strata.broker.bytes_out", "", ""); n <= 0 {
		t.Fatalf("bytes_out = %d", n)
	}
	waitFor(t, "the bad connection to be gone", func() bool {
		collect()
		return sumOf(t, rm, "strata.broker.connections", "", "") == 1
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
