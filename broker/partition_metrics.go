package broker

import (
	"context"

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
	gauge := func(name, desc, unit string) (metric.Int64ObservableGauge, error) {
		return meter.Int64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
	}
	start, err := gauge("strata.partition.log_start_offset", "First offset still stored, by topic and partition.", "{offset}")
	if err != nil {
		return nil, err
	}
	end, err := gauge("strata.partition.log_end_offset", "Next offset to assign, by topic and partition.", "{offset}")
	if err != nil {
		return nil, err
	}
	hw, err := gauge("strata.partition.high_watermark", "Offset below which records are fsynced and readable, by topic and partition.", "{offset}")
	if err != nil {
		return nil, err
	}
	epoch, err := gauge("strata.partition.leader_epoch", "Current leader epoch, by topic and partition.", "{epoch}")
	if err != nil {
		return nil, err
	}
	size, err := gauge("strata.partition.size", "Bytes of segment files on local disk, by topic and partition.", "By")
	if err != nil {
		return nil, err
	}
	offline, err := gauge("strata.partition.offline", "1 while the partition cannot take writes (a storage failure it is recovering from, or no new segment could be created), else 0; by topic and partition.", "")
	if err != nil {
		return nil, err
	}
	periods, err := meter.Int64ObservableCounter("strata.partition.offline_periods",
		metric.WithDescription("Times the partition went offline since it was opened, by topic and partition."), metric.WithUnit("{period}"))
	if err != nil {
		return nil, err
	}
	offlineCount, err := gauge("strata.broker.offline_partitions", "Partitions that cannot take writes now (Kafka's OfflinePartitionsCount for this broker).", "{partition}")
	if err != nil {
		return nil, err
	}
	fsyncs, err := meter.Int64ObservableCounter("strata.replica.fsyncs",
		metric.WithDescription("Log fsyncs made by the group commit; appends per fsync shows how much one fsync serves."), metric.WithUnit("{fsync}"))
	if err != nil {
		return nil, err
	}
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		var nOffline int64
		for _, t := range b.topics.all() {
			for _, p := range t.partitions {
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
