package broker

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Per-partition gauges, observed from the topic registry at collection
// time (nothing is recorded on the produce or fetch path):
//
//	strata.partition.log_start_offset{topic,partition}
//	strata.partition.log_end_offset{topic,partition}
//	strata.partition.high_watermark{topic,partition}   (the fsynced end)
//	strata.partition.leader_epoch{topic,partition}
//	strata.partition.size{topic,partition}              bytes of segment files
//	strata.partition.offline{topic,partition}           1 while the partition cannot take writes, else 0
//	strata.partition.offline_periods{topic,partition}   times it went offline (counter)
//	strata.broker.offline_partitions                    partitions offline now (0 from the start)
//	strata.replica.fsyncs                               Log.Sync calls by the group commit
//
// The lag between log_end_offset and high_watermark is data appended but
// not yet fsynced. offline_partitions is Kafka's OfflinePartitionsCount for
// one broker; /readyz names the offline partitions and why (offline.go).
func registerPartitionMetrics(meter metric.Meter, b *Broker) (metric.Registration, error) {
	var errs []error
	gauge := func(name, desc, unit string) metric.Int64ObservableGauge {
		g, err := meter.Int64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return g
	}
	counter := func(name, desc, unit string) metric.Int64ObservableCounter {
		c, err := meter.Int64ObservableCounter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return c
	}
	start := gauge("strata.partition.log_start_offset", "First offset still stored, by topic and partition.", "{offset}")
	end := gauge("strata.partition.log_end_offset", "Next offset to assign, by topic and partition.", "{offset}")
	hw := gauge("strata.partition.high_watermark", "Offset below which records are fsynced and readable, by topic and partition.", "{offset}")
	epoch := gauge("strata.partition.leader_epoch", "Current leader epoch, by topic and partition.", "{epoch}")
	size := gauge("strata.partition.size", "Bytes of segment files on local disk, by topic and partition.", "By")
	offline := gauge("strata.partition.offline", "1 while the partition cannot take writes (a storage failure it is recovering from, or no new segment could be created), else 0; by topic and partition.", "")
	periods := counter("strata.partition.offline_periods", "Times the partition went offline since it was opened, by topic and partition.", "{period}")
	offlineCount := gauge("strata.broker.offline_partitions", "Partitions that cannot take writes now (Kafka's OfflinePartitionsCount for this broker).", "{partition}")
	fsyncs := counter("strata.replica.fsyncs", "Log fsyncs made by the group commit; appends per fsync shows how much one fsync serves.", "{fsync}")
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		var nOffline int64
		for _, t := range b.topics.all() {
			for _, p := range t.hosted() {
				attrs := metric.WithAttributes(attribute.String("topic", t.name), attribute.Int("partition", int(p.Index())))
				o.ObserveInt64(start, int64(p.LogStartOffset()), attrs)
				o.ObserveInt64(end, int64(p.LogEndOffset()), attrs)
				o.ObserveInt64(hw, int64(p.HighWatermark()), attrs)
				o.ObserveInt64(epoch, int64(p.LeaderEpoch()), attrs)
				o.ObserveInt64(size, p.SizeBytes(), attrs)
				var off int64
				if _, isOff := p.Offline(); isOff {
					off = 1
				}
				nOffline += off
				o.ObserveInt64(offline, off, attrs)
				o.ObserveInt64(periods, int64(p.OfflinePeriods()), attrs)
			}
		}
		o.ObserveInt64(offlineCount, nOffline)
		o.ObserveInt64(fsyncs, int64(b.committer.Stats().Syncs))
		return nil
	}, start, end, hw, epoch, size, offline, periods, offlineCount, fsyncs)
}
