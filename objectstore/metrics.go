package objectstore

// Metrics, through the OpenTelemetry metric API (the exporter is wired in
// internal/telemetry). Instruments, all with attribute store=<name>:
//
//	strata.objectstore.operations{op}          calls, by operation
//	strata.objectstore.errors{op,kind}         failed calls; kind is not_exist,
//	                                           precondition_failed, unsupported,
//	                                           canceled or other
//	strata.objectstore.bytes{op}               bytes put (put ops) or read (get)
//	strata.objectstore.duration{op}            seconds per call: for Get until the
//	                                           reader is returned (first byte), for
//	                                           List until the iteration ends
//	strata.objectstore.requests{class}         requests by S3 pricing class: A for
//	                                           PUT, COPY, POST and LIST requests
//	                                           (puts, deletes, lists), B for GET and
//	                                           HEAD (get, stat)
//
// The request count is what the calls would cost on S3, estimated from the
// calls: one request per call, or for List and Delete one per 1000 entries
// listed or keys deleted (S3's page and batch sizes), at least one. A multipart upload counts as one request here.

import (
	"context"
	"errors"
	"io"
	"iter"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// meterName is the instrumentation scope of every objectstore metric.
const meterName = "github.com/stratalog/strata/objectstore"

// s3PageSize is both S3's ListObjectsV2 page and DeleteObjects batch limit.
const s3PageSize = 1000

// Request classes.
const (
	ClassA = "A"
	ClassB = "B"
)

// RequestClass gives the S3 pricing class of an operation.
func RequestClass(op Op) string {
	if op&(OpGet|OpStat) != 0 {
		return ClassB
	}
	return ClassA
}

type instrumented struct {
	inner Store
	m     *storeMetrics
}

var _ Store = (*instrumented)(nil)

type storeMetrics struct {
	ops      metric.Int64Counter
	errs     metric.Int64Counter
	bytes    metric.Int64Counter
	requests metric.Int64Counter
	latency  metric.Float64Histogram

	opAttrs    map[Op]metric.MeasurementOption // store, op
	classAttrs map[string]metric.MeasurementOption
	name       string
}

// Instrumented wraps s so that every call is counted and timed on the
// global MeterProvider, with attribute store=name.
func Instrumented(s Store, name string) Store {
	return InstrumentedWith(s, name, otel.GetMeterProvider())
}

// InstrumentedWith is Instrumented on a given MeterProvider (tests).
func InstrumentedWith(s Store, name string, mp metric.MeterProvider) Store {
	return &instrumented{inner: s, m: newStoreMetrics(mp.Meter(meterName), name)}
}

func newStoreMetrics(meter metric.Meter, name string) *storeMetrics {
	fallback := noop.NewMeterProvider().Meter(meterName)
	counter := func(n, desc, unit string) metric.Int64Counter {
		c, err := meter.Int64Counter(n, metric.WithDescription(desc), metric.WithUnit(unit))
		if err != nil {
			c, _ = fallback.Int64Counter(n)
		}
		return c
	}
	m := &storeMetrics{
		ops:      counter("strata.objectstore.operations", "Object-store calls, by store and operation.", "{call}"),
		errs:     counter("strata.objectstore.errors", "Object-store calls that failed, by store, operation and kind.", "{call}"),
		bytes:    counter("strata.objectstore.bytes", "Object bytes put (put operations) or read (get), by store and operation.", "By"),
		requests: counter("strata.objectstore.requests", "Object-store requests by S3 pricing class (A: put, list, delete; B: get, stat), estimated from calls.", "{request}"),
		name:     name,
	}
	var err error
	if m.latency, err = meter.Float64Histogram("strata.objectstore.duration",
		metric.WithDescription("Object-store call latency (Get: until the reader is returned), by store and operation."),
		metric.WithUnit("s"),
		// 0.5 ms … ~65 s, doubling: a local file put with fsync is under
		// a millisecond, a large S3 multipart upload takes seconds.
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128,
			0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384, 32.768, 65.536)); err != nil {
		m.latency, _ = fallback.Float64Histogram("strata.objectstore.duration")
	}
	m.opAttrs = make(map[Op]metric.MeasurementOption)
	for i := range opNames {
		op := Op(1 << i)
		m.opAttrs[op] = metric.WithAttributeSet(attribute.NewSet(
			attribute.String("store", name), attribute.String("op", op.String())))
	}
	m.classAttrs = map[string]metric.MeasurementOption{
		ClassA: metric.WithAttributeSet(attribute.NewSet(attribute.String("store", name), attribute.String("class", ClassA))),
		ClassB: metric.WithAttributeSet(attribute.NewSet(attribute.String("store", name), attribute.String("class", ClassB))),
	}
	return m
}

// errorKind classifies an error for the errors counter.
func errorKind(err error) string {
	switch {
	case errors.Is(err, ErrPreconditionFailed):
		return "precondition_failed"
	case errors.Is(err, ErrNotExist):
		return "not_exist"
	case errors.Is(err, ErrUnsupported):
		return "unsupported"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "other"
}

// done records one call of op that started at start and moved n bytes.
// requests is the estimated number of S3 requests it made.
func (m *storeMetrics) done(op Op, start time.Time, n int64, requests int64, err error) {
	ctx := context.Background()
	attrs := m.opAttrs[op]
	m.ops.Add(ctx, 1, attrs)
	m.latency.Record(ctx, time.Since(start).Seconds(), attrs)
	if n > 0 {
		m.bytes.Add(ctx, n, attrs)
	}
	m.requests.Add(ctx, requests, m.classAttrs[RequestClass(op)])
	if err != nil {
		m.errs.Add(ctx, 1, metric.WithAttributes(attribute.String("store", m.name),
			attribute.String("op", op.String()), attribute.String("kind", errorKind(err))))
	}
}

func (s *instrumented) Capabilities() Capabilities { return s.inner.Capabilities() }

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (s *instrumented) put(op Op, r io.Reader, do func(io.Reader) (ObjectInfo, error)) (ObjectInfo, error) {
	start := time.Now()
	cr := &countingReader{r: r}
	info, err := do(cr)
	n := cr.n
	if err != nil {
		n = 0 // bytes that were not stored are not "put"
	}
	s.m.done(op, start, n, 1, err)
	return info, err
}

func (s *instrumented) Put(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error) {
	return s.put(OpPut, r, func(r io.Reader) (ObjectInfo, error) { return s.inner.Put(ctx, key, r, size) })
}

func (s *instrumented) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error) {
	return s.put(OpPutIfAbsent, r, func(r io.Reader) (ObjectInfo, error) { return s.inner.PutIfAbsent(ctx, key, r, size) })
}

func (s *instrumented) PutIfMatch(ctx context.Context, key, etag string, r io.Reader, size int64) (ObjectInfo, error) {
	return s.put(OpPutIfMatch, r, func(r io.Reader) (ObjectInfo, error) { return s.inner.PutIfMatch(ctx, key, etag, r, size) })
}

func (s *instrumented) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, ObjectInfo, error) {
	start := time.Now()
	rc, info, err := s.inner.Get(ctx, key, offset, length)
	s.m.done(OpGet, start, 0, 1, err)
	if err != nil {
		return nil, info, err
	}
	return &meteredReader{rc: rc, m: s.m}, info, nil
}

// meteredReader adds the bytes a Get's reader delivers to the bytes
// counter as they are read.
type meteredReader struct {
	rc io.ReadCloser
	m  *storeMetrics
}

func (r *meteredReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if n > 0 {
		r.m.bytes.Add(context.Background(), int64(n), r.m.opAttrs[OpGet])
	}
	return n, err
}

func (r *meteredReader) Close() error { return r.rc.Close() }

func (s *instrumented) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	start := time.Now()
	info, err := s.inner.Stat(ctx, key)
	s.m.done(OpStat, start, 0, 1, err)
	return info, err
}

func (s *instrumented) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		start := time.Now()
		var n int64
		var lastErr error
		defer func() { s.m.done(OpList, start, 0, pages(n), lastErr) }()
		for info, err := range s.inner.List(ctx, prefix) {
			if err != nil {
				lastErr = err
			} else {
				n++
			}
			if !yield(info, err) {
				return
			}
		}
	}
}

func (s *instrumented) Delete(ctx context.Context, keys ...string) error {
	start := time.Now()
	err := s.inner.Delete(ctx, keys...)
	s.m.done(OpDelete, start, 0, pages(int64(len(keys))), err)
	return err
}

// pages is how many S3 requests of up to s3PageSize items n items take (at
// least one).
func pages(n int64) int64 { return max(1, (n+s3PageSize-1)/s3PageSize) }

func (s *instrumented) Close() error { return s.inner.Close() }
