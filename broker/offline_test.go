package broker

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/stratalog/strata/internal/fdlimit"
	"github.com/stratalog/strata/segments"
)

// collectInt64 returns the value of a metric's data point whose attributes
// include topic/partition (or the only point, if topic is "").
func collectInt64(t *testing.T, reader *sdkmetric.ManualReader, name, topic string, partition int) (int64, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			var points []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				points = d.DataPoints
			case metricdata.Sum[int64]:
				points = d.DataPoints
			}
			for _, dp := range points {
				tp, _ := dp.Attributes.Value(attribute.Key("topic"))
				pp, _ := dp.Attributes.Value(attribute.Key("partition"))
				if topic == "" || tp.AsString() == topic && int(pp.AsInt64()) == partition {
					return dp.Value, true
				}
			}
		}
	}
	return 0, false
}

// A partition whose roll cannot get file handles is reported offline — in
// the metrics and NotReady (/readyz) — with a retriable error for the
// producer, and is back by itself once handles are free again.
func TestOfflinePartitionReported(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())
	b := admNew(t)
	reg, err := registerPartitionMetrics(provider.Meter(meterName), b)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	if v, ok := collectInt64(t, reader, "strata.broker.offline_partitions", "", 0); !ok || v != 0 {
		t.Fatalf("offline_partitions at start = %d (present %v), want a 0 series", v, ok)
	}
	if _, err := b.topics.create("roll", 1, map[string]*string{"internal.segment.bytes": strPtr("100")}); err != nil {
		t.Fatal(err)
	}
	admProduce(t, b, "roll", 0, 2, 2) // every batch fills a segment
	p := b.topics.get("roll").partition(0)

	fdlimit.With(t, 0, func() {
		_, err = p.Append(admBatch(2))
	})
	if !errors.Is(err, segments.ErrRollFailed) || !errors.Is(err, syscall.EMFILE) || errorCode(err) != kerr.KafkaStorageError.Code {
		t.Fatalf("append without file handles: %v (code %d)", err, errorCode(err))
	}
	lines := b.NotReady()
	if len(lines) != 1 || !strings.Contains(lines[0], "partition roll-0 offline") || !strings.Contains(lines[0], "too many open files") {
		t.Fatalf("NotReady = %q", lines)
	}
	for name, want := range map[string]int64{"strata.partition.offline": 1, "strata.partition.offline_periods": 1} {
		if v, ok := collectInt64(t, reader, name, "roll", 0); !ok || v != want {
			t.Fatalf("%s = %d (present %v), want %d", name, v, ok, want)
		}
	}
	if v, _ := collectInt64(t, reader, "strata.broker.offline_partitions", "", 0); v != 1 {
		t.Fatalf("offline_partitions = %d, want 1", v)
	}

	// Handles are back: the recovery goroutine rolls (about 1 s later)
	// without any produce.
	deadline := time.Now().Add(10 * time.Second)
	for len(b.NotReady()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still offline: %q", b.NotReady())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v, _ := collectInt64(t, reader, "strata.broker.offline_partitions", "", 0); v != 0 {
		t.Fatalf("offline_partitions after recovery = %d", v)
	}
	admProduce(t, b, "roll", 0, 1, 2)
	if p.HighWatermark() != 6 {
		t.Fatalf("HW %d, want 6: the refused batch must not be in the log", p.HighWatermark())
	}
}
