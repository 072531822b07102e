package wire

// A server's metrics, through the OpenTelemetry metric API, named
// strata.<Config.Name>.* (strata.broker.requests, strata.controller.requests,
// …). Which exporter (Prometheus, OTLP) receives them is wired in
// internal/telemetry by setting the global MeterProvider; instruments
// created before that are delegated to it once it is set, so the order of
// startup does not matter.

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// meterName is the instrumentation scope of a server's metrics when
// Config.Meter is nil.
const meterName = "github.com/stratalog/strata/wire"

// metrics holds a server's instruments. All methods are safe for concurrent
// use. Attribute sets for every (api, version) in the server's table are
// built once, so recording allocates nothing.
type metrics struct {
	requests    metric.Int64Counter       // strata.<name>.requests{api,version}
	reqErrors   metric.Int64Counter       // strata.<name>.request.errors{api,version,kind}
	badInput    metric.Int64Counter       // strata.<name>.bad_input{kind}
	connections metric.Int64UpDownCounter // strata.<name>.connections
	accepted    metric.Int64Counter       // strata.<name>.connections.accepted
	bytesIn     metric.Int64Counter       // strata.<name>.bytes_in (request frames, with size prefix)
	bytesOut    metric.Int64Counter       // strata.<name>.bytes_out (response frames, with size prefix)
	latency     metric.Float64Histogram   // strata.<name>.request.duration{api,version}, seconds
	decode      metric.Float64Histogram   // strata.<name>.request.decode{api}, seconds
	rejected    metric.Int64Counter       // strata.<name>.connections.rejected{reason}

	apiAttrs map[apiVersion]metric.MeasurementOption
	keyAttrs map[int16]metric.MeasurementOption // api only
}

type apiVersion struct{ key, version int16 }

// Request error kinds (the "kind" attribute of strata.<name>.request.errors).
const (
	errKindHandler = "handler_error" // the handler returned an error: connection closed
	errKindPanic   = "panic"         // the handler panicked: recovered, connection closed
	errKindWrite   = "write"         // the response could not be encoded or written
)

// newMetrics creates the instruments strata.<name>.* on meter (nil: the
// global MeterProvider's), with attribute sets for every API in table.
func newMetrics(name string, meter metric.Meter, table map[int16]*API) *metrics {
	if meter == nil {
		meter = otel.Meter(meterName)
	}
	prefix := "strata." + name + "."
	fallback := noop.NewMeterProvider().Meter(meterName)
	counter := func(name, desc, unit string) metric.Int64Counter {
		c, err := meter.Int64Counter(prefix+name, metric.WithDescription(desc), metric.WithUnit(unit))
		if err != nil {
			c, _ = fallback.Int64Counter(prefix + name)
		}
		return c
	}
	m := &metrics{
		requests:  counter("requests", "Requests decoded, by API and version.", "{request}"),
		reqErrors: counter("request.errors", "Requests whose handling failed (connection closed), by API, version and kind.", "{request}"),
		badInput:  counter("bad_input", "Malformed or hostile input from clients, by kind: protocol violations, each of which closes its connection, and input a handler refuses with an error code (Conn.BadInput).", "{event}"),
		accepted:  counter("connections.accepted", "Client connections accepted.", "{connection}"),
		bytesIn:   counter("bytes_in", "Request bytes read from clients, size prefixes included.", "By"),
		bytesOut:  counter("bytes_out", "Response bytes written to clients, size prefixes included.", "By"),
		rejected: counter("connections.rejected",
			"Connections closed at accept because a limit was reached, by reason (max_connections_per_ip).", "{connection}"),
	}
	var err error
	if m.connections, err = meter.Int64UpDownCounter(prefix+"connections",
		metric.WithDescription("Open client connections."), metric.WithUnit("{connection}")); err != nil {
		m.connections, _ = fallback.Int64UpDownCounter(prefix + "connections")
	}
	if m.latency, err = meter.Float64Histogram(prefix+"request.duration",
		metric.WithDescription("Time from a request's last byte read to its response's last byte written, by API and version."),
		metric.WithUnit("s"),
		// 0.1 ms … ~26 s, doubling: produce with fsync lives in the low
		// milliseconds, Fetch long-polls up to max_wait_ms.
		metric.WithExplicitBucketBoundaries(0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128,
			0.0256, 0.0512, 0.1024, 0.2048, 0.4096, 0.8192, 1.6384, 3.2768, 6.5536, 13.1072, 26.2144)); err != nil {
		m.latency, _ = fallback.Float64Histogram(prefix + "request.duration")
	}
	if m.decode, err = meter.Float64Histogram(prefix+"request.decode",
		metric.WithDescription("Time to check a request body's shape and decode it, by API; bounded by the body's size whatever it claims."),
		metric.WithUnit("s"),
		// 1 µs … ~1 s, ×4: a small request decodes in microseconds, a
		// 100 MiB produce in milliseconds.
		metric.WithExplicitBucketBoundaries(0.000001, 0.000004, 0.000016, 0.000064, 0.000256, 0.001024, 0.004096,
			0.016384, 0.065536, 0.262144, 1.048576)); err != nil {
		m.decode, _ = fallback.Float64Histogram(prefix + "request.decode")
	}
	m.apiAttrs = make(map[apiVersion]metric.MeasurementOption)
	m.keyAttrs = make(map[int16]metric.MeasurementOption)
	for _, a := range table {
		m.keyAttrs[a.Key] = metric.WithAttributeSet(attribute.NewSet(attribute.String("api", kmsg.NameForKey(a.Key))))
		for v := a.MinVersion; v <= a.MaxVersion; v++ {
			m.apiAttrs[apiVersion{a.Key, v}] = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("api", kmsg.NameForKey(a.Key)),
				attribute.Int("version", int(v)),
			))
		}
	}
	return m
}

// attrs is the attribute set of (key, version). Every request that reaches
// a handler is in the table; an ApiVersions request above our range is
// answered, and counted, as v0.
func (m *metrics) attrs(key, version int16) metric.MeasurementOption {
	if o, ok := m.apiAttrs[apiVersion{key, version}]; ok {
		return o
	}
	// Outside the table: a bug, but not worth failing a request for.
	return metric.WithAttributes(attribute.String("api", kmsg.NameForKey(key)), attribute.Int("version", int(version)))
}

func (m *metrics) request(key, version int16) {
	m.requests.Add(context.Background(), 1, m.attrs(key, version))
}

func (m *metrics) requestDone(key, version int16, d time.Duration) {
	m.latency.Record(context.Background(), d.Seconds(), m.attrs(key, version))
}

// decoded records what checking and decoding a request of API key took.
// Keys outside the table are not recorded (they are not decoded).
func (m *metrics) decoded(key int16, d time.Duration) {
	if o, ok := m.keyAttrs[key]; ok {
		m.decode.Record(context.Background(), d.Seconds(), o)
	}
}

// connRejected counts a connection closed at accept for reason.
func (m *metrics) connRejected(reason string) {
	m.rejected.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", reason)))
}

func (m *metrics) requestError(key, version int16, kind string) {
	m.reqErrors.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("api", kmsg.NameForKey(key)),
		attribute.Int("version", int(version)),
		attribute.String("kind", kind)))
}

func (m *metrics) badInputEvent(kind string) {
	m.badInput.Add(context.Background(), 1, metric.WithAttributes(attribute.String("kind", kind)))
}

func (m *metrics) connOpened() {
	m.accepted.Add(context.Background(), 1)
	m.connections.Add(context.Background(), 1)
}

func (m *metrics) connClosed() { m.connections.Add(context.Background(), -1) }

func (m *metrics) read(n int)  { m.bytesIn.Add(context.Background(), int64(n)) }
func (m *metrics) wrote(n int) { m.bytesOut.Add(context.Background(), int64(n)) }
