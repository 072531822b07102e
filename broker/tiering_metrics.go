package broker

// Tiered-storage metrics and status.
//
//	strata.tiering.uploaded{topic,partition}           bytes of segment objects uploaded and committed
//	strata.tiering.uploaded_segments{topic,partition}  segment objects uploaded and committed
//	strata.tiering.upload_lag{topic,partition}         bytes of closed local segments not yet in the bucket
//	strata.tiering.upload_lag_age{topic,partition}     seconds the oldest of them has waited
//	strata.tiering.remote_read{topic,partition}        bytes served from the remote tier
//	strata.tiering.remote_read.duration                seconds per remote read (cache hits included)
//	strata.tiering.remote_read.errors{topic,partition} failed remote reads
//	strata.tiering.remote_read.corrupt{topic,partition} of those, reads refused because bucket data failed verification
//	strata.tiering.cache.hits / .misses                chunk-cache lookups
//	strata.tiering.cache.size                          bytes of the chunk cache on disk
//
// The object store's own per-operation metrics (strata.objectstore.*,
// store "tiering") count requests, bytes and errors by operation.

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/stratalog/strata/segments"
	"github.com/stratalog/strata/tiering"
)

type tierMetrics struct {
	uploadedBytes    metric.Int64Counter
	uploadedSegments metric.Int64Counter
	readBytes        metric.Int64Counter
	readErrors       metric.Int64Counter
	readCorrupt      metric.Int64Counter
	readDuration     metric.Float64Histogram
	reg              metric.Registration
}

// newTierMetrics registers the instruments; a failure leaves no-op ones
// (metrics never stop the broker).
func newTierMetrics(tm *tierManager) *tierMetrics {
	meter := otel.Meter(meterName)
	m := &tierMetrics{}
	var err error
	report := func(e error) {
		if e != nil && err == nil {
			err = e
		}
	}
	counter := func(name, desc, unit string) metric.Int64Counter {
		c, e := meter.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		report(e)
		return c
	}
	m.uploadedBytes = counter("strata.tiering.uploaded", "Bytes of segment objects uploaded and committed to the object store, by topic and partition.", "By")
	m.uploadedSegments = counter("strata.tiering.uploaded_segments", "Segment objects uploaded and committed, by topic and partition.", "{segment}")
	m.readBytes = counter("strata.tiering.remote_read", "Record bytes served from the remote tier, by topic and partition.", "By")
	m.readErrors = counter("strata.tiering.remote_read.errors", "Remote reads that failed, by topic and partition.", "{read}")
	m.readCorrupt = counter("strata.tiering.remote_read.corrupt", "Remote reads refused because bucket data failed verification (chunk or batch checksum, framing), by topic and partition; also counted in remote_read.errors.", "{read}")
	h, e := meter.Float64Histogram("strata.tiering.remote_read.duration", metric.WithDescription("Time to serve one remote read (chunk-cache hits included)."), metric.WithUnit("s"))
	report(e)
	m.readDuration = h

	gauge := func(name, desc, unit string) metric.Int64ObservableGauge {
		g, e := meter.Int64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
		report(e)
		return g
	}
	lag := gauge("strata.tiering.upload_lag", "Bytes of closed local segments not yet committed to the object store, by topic and partition.", "By")
	lagAge := gauge("strata.tiering.upload_lag_age", "Seconds the oldest closed segment not yet uploaded has waited, by topic and partition.", "s")
	cacheSize := gauge("strata.tiering.cache.size", "Bytes of the remote-read chunk cache on disk.", "By")
	hits, e := meter.Int64ObservableCounter("strata.tiering.cache.hits", metric.WithDescription("Chunk-cache lookups served by a cached chunk."), metric.WithUnit("{lookup}"))
	report(e)
	misses, e := meter.Int64ObservableCounter("strata.tiering.cache.misses", metric.WithDescription("Chunk-cache lookups that started or joined a download."), metric.WithUnit("{lookup}"))
	report(e)
	if err == nil {
		m.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			now := time.Now()
			for _, tp := range tm.partitions() {
				l := tp.uploadLag(now)
				attrs := tp.attrs()
				o.ObserveInt64(lag, l.Bytes, attrs)
				o.ObserveInt64(lagAge, int64(l.Age.Seconds()), attrs)
			}
			cs := tm.cache.Stats()
			o.ObserveInt64(cacheSize, cs.SizeBytes)
			o.ObserveInt64(hits, cs.Hits)
			o.ObserveInt64(misses, cs.Misses)
			return nil
		}, lag, lagAge, cacheSize, hits, misses)
	}
	if err != nil {
		tm.log.Warn("tiering metrics unavailable", "err", err)
	}
	return m
}

func (tp *tieredPartition) attrs() metric.MeasurementOption {
	return metric.WithAttributes(attribute.String("topic", tp.topic), attribute.Int("partition", int(tp.p.Index())))
}

func (m *tierMetrics) uploaded(tp *tieredPartition, st tiering.UploadStats) {
	if m == nil || m.uploadedBytes == nil {
		return
	}
	ctx := context.Background()
	m.uploadedBytes.Add(ctx, st.Bytes, tp.attrs())
	m.uploadedSegments.Add(ctx, int64(st.Segments), tp.attrs())
}

func (m *tierMetrics) remoteRead(tp *tieredPartition, n int64, d time.Duration, err error) {
	if m == nil || m.readBytes == nil {
		return
	}
	ctx := context.Background()
	if err != nil {
		m.readErrors.Add(ctx, 1, tp.attrs())
		if errors.As(err, new(*segments.CorruptError)) {
			m.readCorrupt.Add(ctx, 1, tp.attrs())
		}
		return
	}
	m.readBytes.Add(ctx, n, tp.attrs())
	m.readDuration.Record(ctx, d.Seconds())
}

func (m *tierMetrics) close() {
	if m != nil && m.reg != nil {
		_ = m.reg.Unregister()
	}
}

// partitions returns every tiered partition's state.
func (tm *tierManager) partitions() []*tieredPartition {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	out := make([]*tieredPartition, 0, len(tm.mu.parts))
	for _, tp := range tm.mu.parts {
		out = append(out, tp)
	}
	return out
}

// TieringPartitionStatus is one partition's line of `strata tiering
// status` (GET /v1/tiering/status). Offsets are -1 and sizes 0 where there
// is nothing.
type TieringPartitionStatus struct {
	Topic            string `json:"topic"`
	Partition        int32  `json:"partition"`
	Tiered           bool   `json:"tiered"`
	LogStartOffset   int64  `json:"logStartOffset"`
	LocalStartOffset int64  `json:"localStartOffset"`
	LocalEndOffset   int64  `json:"localEndOffset"`
	HighWatermark    int64  `json:"highWatermark"`
	LocalBytes       int64  `json:"localBytes"`
	// RemoteStartOffset/RemoteEndOffset: the offsets the manifest
	// covers, [start, end).
	RemoteStartOffset int64   `json:"remoteStartOffset"`
	RemoteEndOffset   int64   `json:"remoteEndOffset"`
	RemoteBytes       int64   `json:"remoteBytes"`
	RemoteSegments    int     `json:"remoteSegments"`
	UploadLagBytes    int64   `json:"uploadLagBytes"`
	UploadLagSegments int     `json:"uploadLagSegments"`
	UploadLagSeconds  float64 `json:"uploadLagSeconds"`
	LastError         string  `json:"lastError,omitempty"`
}

// TieringStatusPath is the HTTP path of the tiering status (the
// ?topic=NAME query selects one topic); TieringStatusReply is its JSON.
const TieringStatusPath = "/v1/tiering/status"

// TieringStatusReply is the JSON body of GET TieringStatusPath.
type TieringStatusReply struct {
	Partitions []TieringPartitionStatus `json:"partitions"`
}

// TieringStatus reports every partition of topic (all topics if ""),
// sorted by topic and partition; false if the topic does not exist.
func (b *Broker) TieringStatus(topic string) ([]TieringPartitionStatus, bool) {
	var out []TieringPartitionStatus
	found := false
	for _, t := range b.topics.all() {
		if topic != "" && t.name != topic {
			continue
		}
		found = true
		for _, p := range t.hosted() {
			s := TieringPartitionStatus{
				Topic: t.name, Partition: p.Index(),
				LogStartOffset: int64(p.LogStartOffset()), LocalStartOffset: int64(p.LocalLogStartOffset()),
				LocalEndOffset: int64(p.LogEndOffset()), HighWatermark: int64(p.HighWatermark()), LocalBytes: p.SizeBytes(),
				RemoteStartOffset: -1, RemoteEndOffset: -1,
			}
			if tp := b.tier.partition(p); tp != nil {
				s.Tiered = true
				if m := tp.currentManifest(); m != nil && len(m.Segments) > 0 {
					s.RemoteStartOffset = int64(remoteLogStart(m))
					s.RemoteEndOffset = int64(m.EndOffset())
					s.RemoteBytes = m.LogBytes()
					s.RemoteSegments = len(m.Segments)
				}
				lag := tp.uploadLag(time.Now())
				s.UploadLagBytes, s.UploadLagSegments, s.UploadLagSeconds = lag.Bytes, lag.Segments, lag.Age.Seconds()
				s.LastError = tp.lastError()
			}
			out = append(out, s)
		}
	}
	return out, found
}
