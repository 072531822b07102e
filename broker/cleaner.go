package broker

// The log cleaner: one background goroutine that compacts the partitions of
// topics whose cleanup.policy includes compact (Kafka's LogCleaner with
// log.cleaner.threads=1). Each round it asks every partition whether a pass
// is due (segments.Log.CheckClean: dirty ratio, max.compaction.lag.ms,
// tombstones past their delete horizon), runs one pass on the most urgent
// partition, and sleeps log.cleaner.backoff.ms when nothing is due. The
// compaction itself is segments.Log.Clean; this file only schedules it,
// logs and counts.

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/stratalog/strata/broker/replica"
	"github.com/stratalog/strata/segments"
)

// CleanerConfig holds the log cleaner's broker-wide knobs (Kafka's names).
type CleanerConfig struct {
	Enable            bool          // log.cleaner.enable (true)
	Backoff           time.Duration // log.cleaner.backoff.ms (15 s): sleep when no log needs cleaning
	DedupeBufferBytes int64         // log.cleaner.dedupe.buffer.size (128 MiB): key map memory of one pass
}

// Defaults of CleanerConfig's zero fields.
const (
	defaultCleanerBackoff     = 15 * time.Second
	defaultDedupeBufferBytes  = 128 << 20 // 134217728, Kafka's default
	cleanerFailureBackoffMult = 10        // a partition whose pass failed waits 10 backoffs
)

type logCleaner struct {
	b      *Broker
	cfg    CleanerConfig
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	// failed holds partitions whose last pass failed, with the time they
	// may be tried again. Owned by the cleaner goroutine.
	failed map[*replica.Partition]time.Time

	passes       metric.Int64Counter // strata.log_cleaner.passes{topic,partition,result}
	bytesRead    metric.Int64Counter // strata.log_cleaner.bytes_read{topic,partition}
	bytesWritten metric.Int64Counter // strata.log_cleaner.bytes_written{topic,partition}
	removed      metric.Int64Counter // strata.log_cleaner.records_removed{topic,partition}
	duration     metric.Float64Histogram
}

// startLogCleaner starts the cleaner goroutine (unless disabled; then it
// returns nil, and close on nil does nothing).
func startLogCleaner(b *Broker, cfg CleanerConfig) *logCleaner {
	if !cfg.Enable {
		b.log.Info("log cleaner disabled (log.cleaner.enable=false): compacted topics are not compacted")
		return nil
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = defaultCleanerBackoff
	}
	if cfg.DedupeBufferBytes <= 0 {
		cfg.DedupeBufferBytes = defaultDedupeBufferBytes
	}
	meter := otel.Meter(meterName)
	c := &logCleaner{b: b, cfg: cfg, done: make(chan struct{}), failed: map[*replica.Partition]time.Time{}}
	c.passes, _ = meter.Int64Counter("strata.log_cleaner.passes", metric.WithDescription("Log cleaner passes, by topic, partition and result (ok, error)."), metric.WithUnit("{pass}"))
	c.bytesRead, _ = meter.Int64Counter("strata.log_cleaner.bytes_read", metric.WithDescription("Segment bytes read by the log cleaner's rewrites."), metric.WithUnit("By"))
	c.bytesWritten, _ = meter.Int64Counter("strata.log_cleaner.bytes_written", metric.WithDescription("Cleaned segment bytes written by the log cleaner."), metric.WithUnit("By"))
	c.removed, _ = meter.Int64Counter("strata.log_cleaner.records_removed", metric.WithDescription("Records removed by compaction (superseded, expired tombstones, keyless)."), metric.WithUnit("{record}"))
	c.duration, _ = meter.Float64Histogram("strata.log_cleaner.pass.duration", metric.WithDescription("Duration of one cleaning pass."), metric.WithUnit("s"))
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.run()
	return c
}

// close stops the cleaner, aborting a pass in progress (a pass aborted
// between segment swaps leaves a consistent log). Call before the
// partitions close.
func (c *logCleaner) close() {
	if c == nil {
		return
	}
	c.cancel()
	<-c.done
}

func (c *logCleaner) run() {
	defer close(c.done)
	for {
		if !c.cleanOne(time.Now()) {
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(c.cfg.Backoff):
			}
		}
		if c.ctx.Err() != nil {
			return
		}
	}
}

// cleanOne runs one pass on the partition that needs it most (a lag or
// delete-horizon deadline first, then the highest dirty ratio). It reports
// whether it ran a pass.
func (c *logCleaner) cleanOne(now time.Time) bool {
	var (
		best      *replica.Partition
		bestCheck segments.CleanCheck
	)
	urgency := func(k segments.CleanCheck) float64 {
		if k.Reason != "dirty ratio" {
			return 2 // deadlines first
		}
		return k.DirtyRatio
	}
	for _, t := range c.b.topics.all() {
		for _, p := range t.hosted() {
			if until, ok := c.failed[p]; ok {
				if now.Before(until) {
					continue
				}
				delete(c.failed, p)
			}
			k := p.CheckClean(now)
			if k.Due && (best == nil || urgency(k) > urgency(bestCheck)) {
				best, bestCheck = p, k
			}
		}
	}
	if best == nil {
		return false
	}
	attrs := metric.WithAttributes(attribute.String("topic", best.Topic()), attribute.Int("partition", int(best.Index())))
	log := c.b.log.With("topic", best.Topic(), "partition", best.Index())
	log.Info("cleaning log", "reason", bestCheck.Reason, "dirty_ratio", bestCheck.DirtyRatio, "dirty_bytes", bestCheck.DirtyBytes)
	start := time.Now()
	st, err := best.Clean(c.ctx, segments.CleanOptions{DedupeBufferBytes: c.cfg.DedupeBufferBytes, Now: now})
	elapsed := time.Since(start)
	c.bytesRead.Add(c.ctx, st.BytesRead, attrs)
	c.bytesWritten.Add(c.ctx, st.BytesWritten, attrs)
	c.removed.Add(c.ctx, st.RecordsRemoved, attrs)
	c.duration.Record(c.ctx, elapsed.Seconds(), attrs)
	switch {
	case err == nil:
		c.passes.Add(c.ctx, 1, attrs, metric.WithAttributes(attribute.String("result", "ok")))
		log.Info("cleaned log", "first_dirty", int64(st.FirstDirty), "cleaned_to", int64(st.CleanedTo),
			"segments_read", st.SegmentsRead, "segments_written", st.SegmentsWritten,
			"bytes_read", st.BytesRead, "bytes_written", st.BytesWritten,
			"records_read", st.RecordsRead, "records_removed", st.RecordsRemoved, "duration", elapsed)
	case c.ctx.Err() != nil, errors.Is(err, segments.ErrClosed):
		// Shutting down, or the topic was deleted meanwhile.
		log.Info("cleaning stopped", "reason", err)
	case errors.Is(err, segments.ErrCleanAborted):
		log.Info("cleaning aborted: retention, DeleteRecords or truncation changed the log; retrying", "cleaned_to", int64(st.CleanedTo))
	default:
		c.passes.Add(c.ctx, 1, attrs, metric.WithAttributes(attribute.String("result", "error")))
		retry := cleanerFailureBackoffMult * c.cfg.Backoff
		c.failed[best] = now.Add(retry)
		log.Error("log cleaning failed; the partition is skipped for a while", "err", err, "retry_in", retry)
	}
	return true
}
