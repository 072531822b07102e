package broker

import (
	"time"

	"github.com/stratalog/strata/segments"
)

// TopicConfig is a topic's effective configuration, with Kafka's names.
// Broker-level defaults (from `strata serve` flags/YAML/env under the same
// keys) are the base; per-topic overrides from CreateTopics/AlterConfigs
// apply on top.
type TopicConfig struct {
	CleanupPolicy      string                 // cleanup.policy: delete (compact comes with the groups issue)
	SegmentBytes       int64                  // segment.bytes (1 GiB)
	SegmentRollAge     time.Duration          // segment.ms (7 days)
	SegmentIndexBytes  int32                  // segment.index.bytes (10 MiB)
	IndexIntervalBytes int32                  // index.interval.bytes (4096)
	RetentionAge       time.Duration          // retention.ms (7 days; -1 unlimited)
	RetentionBytes     int64                  // retention.bytes (-1 unlimited)
	MaxMessageBytes    int32                  // max.message.bytes (1048588)
	TimestampType      segments.TimestampType // message.timestamp.type (CreateTime)
	TimestampBeforeMax time.Duration          // message.timestamp.before.max.ms (unlimited)
	TimestampAfterMax  time.Duration          // message.timestamp.after.max.ms (1 hour, as Kafka 4.0)
	MinInsyncReplicas  int16                  // min.insync.replicas (1)
	CompressionType    string                 // compression.type (producer)
	FileDeleteDelay    time.Duration          // file.delete.delay.ms (60 s)
}

// LogConfig projects the topic config onto the segments layer.
func (c TopicConfig) LogConfig() segments.Config {
	return segments.Config{
		SegmentBytes:       c.SegmentBytes,
		SegmentRollAge:     c.SegmentRollAge,
		IndexIntervalBytes: c.IndexIntervalBytes,
		SegmentIndexBytes:  c.SegmentIndexBytes,
		RetentionAge:       c.RetentionAge,
		RetentionBytes:     c.RetentionBytes,
		MaxMessageBytes:    c.MaxMessageBytes,
		TimestampType:      c.TimestampType,
		TimestampBeforeMax: c.TimestampBeforeMax,
		TimestampAfterMax:  c.TimestampAfterMax,
	}
}
