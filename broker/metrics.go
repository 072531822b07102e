package broker

// The broker's own metrics, through the OpenTelemetry metric API. Which
// exporter (Prometheus, OTLP) receives them is wired in internal/telemetry
// by setting the global MeterProvider; instruments created before that are
// delegated to it once it is set, so the order of startup does not matter.

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// meterName is the instrumentation scope of every broker metric.
const meterName = "github.com/stratalog/strata/broker"

// brokerMetrics holds the broker's instruments. All methods are safe for
// concurrent use. Attribute sets for every (api, version) we serve are built
// once, so recording allocates nothing.
type brokerMetrics struct {
	requests    metric.Int64Counter       // strata.broker.requests{api,version}
	reqErrors   metric.Int64Counter       // strata.broker.request.errors{api,version,kind}
	badInput    metric.Int64Counter       // strata.broker.bad_input{kind}
	connections metric.Int64UpDownCounter // strata.broker.connections
	accepted    metric.Int64Counter       // strata.broker.connections.accepted
	bytesIn     metric.Int64Counter       // strata.broker.bytes_in (request frames, with size prefix)
	bytesOut    metric.Int64Counter       // strata.broker.bytes_out (response frames, with size prefix)
	latency     metric.Float64Histogram   // strata.broker.request.duration{api,version}, seconds
	decode      metric.Float64Histogram   // strata.broker.request.decode{api}, seconds
	rejected    metric.Int64Counter       // strata.broker.connections.rejected{reason}

	apiAttrs map[apiVersion]metric.MeasurementOption
	keyAttrs map[int16]metric.MeasurementOption // api only
}

type apiVersion struct{ key, version int16 }

// Request error kinds (the "kind" attribute of strata.broker.request.errors).
const (
	errKindHandler = "handler_error" // the handler returned an error: connection closed
	errKindPanic   = "panic"         // the handler panicked: recovered, connection closed
	errKindWrite   = "write"         // the response could not be encoded or written
)

// newBrokerMetrics creates the instruments on the global MeterProvider.
func newBrokerMetrics() *brokerMetrics {
	return newBrokerMetricsFrom(otel.Meter(meterName))
}

func newBrokerMetricsFrom(meter metric.Meter) *brokerMetrics {
	fallback := noop.NewMeterProvider().Meter(meterName)
	counter := func(name, desc, unit string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		if err != nil {
			c, _ = fallback.Int64Counter(name)
		}
		return c
	}
	m := &brokerMetrics{
		requests:  counter("strata.broker.requests", "Requests decoded, by API and version.", "{request}"),
		reqErrors: counter("strata.broker.request.errors", "Requests whose handling failed (connection closed), by API, version and kind.", "{request}"),
		badInput:  counter("strata.broker.bad_input", "Malformed or unsupported input from clients, by kind; each closes the connection except kind api_versions_version.", "{event}"),
		accepted:  counter("strata.broker.connections.accepted", "Client connections accepted.", "{connection}"),
		bytesIn:   counter("strata.broker.bytes_in", "Request bytes read from clients, size prefixes included.", "By"),
		bytesOut:  counter("strata.broker.bytes_out", "Response bytes written to clients, size prefixes included.", "By"),
		rejected: counter("strata.broker.connections.rejected",
			"Connections closed at accept because a limit was reached, by reason (max_connections_per_ip).", "{connection}"),
	}
	var err error
	if m.connections, err = meter.Int64UpDownCounter("strata.broker.connections",
		metric.WithDescription("Open client connections."), metric.WithUnit("{connection}")); err != nil {
		m.connections, _ = fallback.Int64UpDownCounter("strata.broker.connections")
	}
	if m.latency, err = meter.Float64Histogram("strata.broker.request.duration",
		metric.WithDescription("Time from a request's last byte read to its response's last byte written, by API and version."),
		metric.WithUnit("s"),
		// 0.1 ms … ~26 s, doubling: produce with fsync lives in the low
		// milliseconds, Fetch long-polls up to max_wait_ms.
		metric.WithExplicitBucketBoundaries(0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128,
			0.0256, 0.0512, 0.1024, 0.2048, 0.4096, 0.8192, 1.6384, 3.2768, 6.5536, 13.1072, 26.2144)); err != nil {
		m.latency, _ = fallback.Float64Histogram("strata.broker.request.duration")
	}
	if m.decode, err = meter.Float64Histogram("strata.broker.request.decode",
		metric.WithDescription("Time to check a request body's shape and decode it, by API; bounded by the body's size whatever it claims."),
		metric.WithUnit("s"),
		// 1 µs … ~1 s, ×4: a small request decodes in microseconds, a
		// 100 MiB produce in milliseconds.
		metric.WithExplicitBucketBoundaries(0.000001, 0.000004, 0.000016, 0.000064, 0.000256, 0.001024, 0.004096,
			0.016384, 0.065536, 0.262144, 1.048576)); err != nil {
		m.decode, _ = fallback.Float64Histogram("strata.broker.request.decode")
	}
	m.apiAttrs = make(map[apiVersion]metric.MeasurementOption)
	m.keyAttrs = make(map[int16]metric.MeasurementOption)
	for _, a := range apis {
		m.keyAttrs[a.key] = metric.WithAttributeSet(attribute.NewSet(attribute.String("api", kmsg.NameForKey(a.key))))
		for v := a.minVersion; v <= a.maxVersion; v++ {
			m.apiAttrs[apiVersion{a.key, v}] = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("api", kmsg.NameForKey(a.key)),
				attribute.Int("version", int(v)),
			))
		}
	}
	return m
}

func (m *brokerMetrics) attrs(key, version int16) metric.MeasurementOption {
	if o, ok := m.apiAttrs[apiVersion{key, version}]; ok {
		return o
	}
	// An API served outside the apis table (tests); rare, so allocate.
	return metric.WithAttributes(attribute.String("api", kmsg.NameForKey(key)), attribute.Int("version", int(version)))
}

func (m *brokerMetrics) request(key, version int16) {
	m.requests.Add(context.Background(), 1, m.attrs(key, version))
}

func (m *brokerMetrics) requestDone(key, version int16, d time.Duration) {
	m.latency.Record(context.Background(), d.Seconds(), m.attrs(key, version))
}

// decoded records what checking and decoding a request of API key took.
// Keys outside the apis table are not recorded (they are not decoded).
func (m *brokerMetrics) decoded(key int16, d time.Duration) {
	if o, ok := m.keyAttrs[key]; ok {
		m.decode.Record(context.Background(), d.Seconds(), o)
	}
}

// connRejected counts a connection closed at accept for reason.
func (m *brokerMetrics) connRejected(reason string) {
	m.rejected.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", reason)))
}

func (m *brokerMetrics) requestError(key, version int16, kind string) {
	m.reqErrors.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("api", kmsg.NameForKey(key)),
		attribute.Int("version", int(version)),
		attribute.String("kind", kind)))
}

func (m *brokerMetrics) badInputEvent(kind string) {
	m.badInput.Add(context.Background(), 1, metric.WithAttributes(attribute.String("kind", kind)))
}

func (m *brokerMetrics) connOpened() {
	m.accepted.Add(context.Background(), 1)
	m.connections.Add(context.Background(), 1)
}

func (m *brokerMetrics) connClosed() { m.connections.Add(context.Background(), -1) }

func (m *brokerMetrics) read(n int)  { m.bytesIn.Add(context.Background(), int64(n)) }
func (m *brokerMetrics) wrote(n int) { m.bytesOut.Add(context.Background(), int64(n)) }
