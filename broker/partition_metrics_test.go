package broker

import (
	"github.com/stratalog/strata/internal/metrictest"

	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestPartitionMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())

	b := admNew(t)
	defer admClose(t, b)
	reg, err := registerPartitionMetrics(provider.Meter(meterName), b)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	if _, err := b.topics.create("metered", 2, nil); err != nil {
		t.Fatal(err)
	}
	admProduce(t, b, "metered", 1, 3, 5) // 3 batches of 5 records into partition 1

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	gauge := func(name string, partition int) int64 {
		t.Helper()
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != name {
					continue
				}
				for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
					tp, _ := dp.Attributes.Value(attribute.Key("topic"))
					pp, _ := dp.Attributes.Value(attribute.Key("partition"))
					if tp.AsString() == "metered" && int(pp.AsInt64()) == partition {
						return dp.Value
					}
				}
			}
		}
		t.Fatalf("no %s{topic=metered,partition=%d}", name, partition)
		return 0
	}
	if got := gauge("strata.partition.log_end_offset", 1); got != 15 {
		t.Fatalf("log_end_offset = %d, want 15", got)
	}
	if got := gauge("strata.partition.high_watermark", 1); got != 15 {
		t.Fatalf("high_watermark = %d, want 15", got)
	}
	if got := gauge("strata.partition.log_end_offset", 0); got != 0 {
		t.Fatalf("empty partition log_end_offset = %d", got)
	}
	if got := gauge("strata.partition.size", 1); got <= 0 {
		t.Fatalf("size = %d, want > 0", got)
	}
	if got := metrictest.Sum(t, rm, "strata.replica.fsyncs"); got < 1 {
		t.Fatalf("fsyncs = %d", got)
	}
}
