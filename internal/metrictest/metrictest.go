package metrictest

import (
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Sum adds up the int64 sum metric name over the data points whose
// attributes include every key=value pair of attrs (all points when attrs
// is empty). A metric of that name with another type fails t.
func Sum(t testing.TB, rm metricdata.ResourceMetrics, name string, attrs ...string) int64 {
	t.Helper()
	if len(attrs)%2 != 0 {
		t.Fatalf("metrictest.Sum: attributes %q are not key, value pairs", attrs)
	}
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
		points:
			for _, dp := range sum.DataPoints {
				for i := 0; i < len(attrs); i += 2 {
					if v, ok := dp.Attributes.Value(attribute.Key(attrs[i])); !ok || v.String() != attrs[i+1] {
						continue points
					}
				}
				total += dp.Value
			}
		}
	}
	return total
}
