package objectstore

import (
	"github.com/stratalog/strata/internal/metrictest"

	"fmt"
	"io"
	"strings"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func histogramCount(rm metricdata.ResourceMetrics, name, op string) uint64 {
	var n uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, dp := range h.DataPoints {
					if v, ok := dp.Attributes.Value("op"); ok && v.AsString() == op {
						n += dp.Count
					}
				}
			}
		}
	}
	return n
}

func TestInstrumentedMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(t.Context())
	s := InstrumentedWith(NewMem(), "tier", provider)
	ctx := t.Context()

	var keys []string
	for i := range 2500 {
		keys = append(keys, fmt.Sprintf("k/%05d", i))
		putString(t, s, keys[i], "0123456789")
	}
	rc, _, err := s.Get(ctx, "k/00000", 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if _, err := s.Stat(ctx, "missing"); err == nil {
		t.Fatal("Stat of a missing key succeeded")
	}
	n := 0
	for _, err := range s.List(ctx, "k/") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if _, err := s.PutIfAbsent(ctx, "k/00001", strings.NewReader("x"), 1); err == nil {
		t.Fatal("PutIfAbsent over an existing key succeeded")
	}
	if err := s.Delete(ctx, keys[:1001]...); err != nil {
		t.Fatal(err)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		attrs []string
		want  int64
	}{
		{"strata.objectstore.operations", []string{"store", "tier", "op", "put"}, 2500},
		{"strata.objectstore.operations", []string{"op", "get"}, 1},
		{"strata.objectstore.operations", []string{"op", "list"}, 1},
		{"strata.objectstore.bytes", []string{"op", "put"}, 25000},
		{"strata.objectstore.bytes", []string{"op", "get"}, 5},
		{"strata.objectstore.bytes", []string{"op", "put_if_absent"}, 0}, // refused: nothing stored
		{"strata.objectstore.errors", []string{"op", "stat", "kind", "not_exist"}, 1},
		{"strata.objectstore.errors", []string{"op", "put_if_absent", "kind", "precondition_failed"}, 1},
		{"strata.objectstore.errors", []string{"op", "put"}, 0},
		// Class A: 2500 puts + 1 put-if-absent + 3 list pages + 2 delete batches.
		{"strata.objectstore.requests", []string{"store", "tier", "class", "A"}, 2500 + 1 + 3 + 2},
		// Class B: 1 get + 1 stat.
		{"strata.objectstore.requests", []string{"class", "B"}, 2},
	} {
		if got := metrictest.Sum(t, rm, c.name, c.attrs...); got != c.want {
			t.Errorf("%s%v = %d, want %d", c.name, c.attrs, got, c.want)
		}
	}
	if got := histogramCount(rm, "strata.objectstore.duration", "put"); got != 2500 {
		t.Errorf("duration{op=put} count %d", got)
	}
	if RequestClass(OpList) != ClassA || RequestClass(OpDelete) != ClassA || RequestClass(OpStat) != ClassB {
		t.Error("request classes")
	}
}
