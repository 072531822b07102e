package topicconfig

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/stratalog/strata/segments"
)

// Config is a topic's effective configuration, with Kafka's names.
// Broker-level defaults (from `strata serve` flags/YAML/env under the same
// keys) are the base; per-topic overrides from CreateTopics/AlterConfigs
// apply on top.
type Config struct {
	CleanupPolicy string // cleanup.policy: delete, compact or compact,delete (delete)
	SegmentBytes  int64  // segment.bytes (1 GiB; at least 1 MiB)
	// InternalSegmentBytes is internal.segment.bytes, for tests only: when
	// non-zero it replaces segment.bytes, without the 1 MiB minimum
	// (Kafka 4.0's internal config of that name). 0 means unset.
	InternalSegmentBytes int64
	SegmentRollAge       time.Duration          // segment.ms (7 days)
	SegmentIndexBytes    int32                  // segment.index.bytes (10 MiB)
	IndexIntervalBytes   int32                  // index.interval.bytes (4096)
	RetentionAge         time.Duration          // retention.ms (7 days; -1 unlimited)
	RetentionBytes       int64                  // retention.bytes (-1 unlimited)
	MaxMessageBytes      int32                  // max.message.bytes (1048588)
	TimestampType        segments.TimestampType // message.timestamp.type (CreateTime)
	TimestampBeforeMax   time.Duration          // message.timestamp.before.max.ms (unlimited)
	TimestampAfterMax    time.Duration          // message.timestamp.after.max.ms (1 hour, as Kafka 4.0)
	MinInsyncReplicas    int16                  // min.insync.replicas (1)
	CompressionType      string                 // compression.type (producer)
	FileDeleteDelay      time.Duration          // file.delete.delay.ms (60 s)
	DeleteRetention      time.Duration          // delete.retention.ms (1 day): how long tombstones stay after their first cleaning
	MinCleanableRatio    float64                // min.cleanable.dirty.ratio (0.5)
	MinCompactionLag     time.Duration          // min.compaction.lag.ms (0)
	MaxCompactionLag     time.Duration          // max.compaction.lag.ms (unlimited)
	// Tiered storage (broker/tiering.go). RemoteStorage is remote.storage.enable
	// (true; the broker forces it off when no object store is configured,
	// and compacted topics are never tiered: see Tiered).
	RemoteStorage       bool
	LocalRetentionAge   time.Duration // local.retention.ms (-2 ms: retention.ms)
	LocalRetentionBytes int64         // local.retention.bytes (-2: retention.bytes)
}

// sameAsTotal is Kafka's -2 for local.retention.ms/bytes: "the same as
// retention.ms/bytes".
const sameAsTotal = -2

// Tiered reports whether the topic's closed segments go to the object
// store: remote.storage.enable, and not compacted (Kafka refuses remote
// storage on compacted topics; a cleaner rewriting uploaded segments
// would fork the two copies).
func (c Config) Tiered() bool { return c.RemoteStorage && !c.Compact() }

// localRetention resolves local.retention.ms/bytes (-2: the total).
func (c Config) localRetention() (time.Duration, int64) {
	age, size := c.LocalRetentionAge, c.LocalRetentionBytes
	if age == sameAsTotal*time.Millisecond {
		age = c.RetentionAge
	}
	if size == sameAsTotal {
		size = c.RetentionBytes
	}
	return age, size
}

// Compact reports whether cleanup.policy includes compact.
func (c Config) Compact() bool {
	return slices.Contains(strings.Split(c.CleanupPolicy, ","), "compact")
}

// deletes reports whether cleanup.policy includes delete (retention by
// time and size).
func (c Config) deletes() bool {
	return slices.Contains(strings.Split(c.CleanupPolicy, ","), "delete")
}

// segmentBytes is the roll size in effect: internal.segment.bytes when
// set, else segment.bytes.
func (c Config) segmentBytes() int64 {
	if c.InternalSegmentBytes > 0 {
		return c.InternalSegmentBytes
	}
	return c.SegmentBytes
}

// LogConfig projects the topic config onto the segments layer.
func (c Config) LogConfig() segments.Config {
	lc := segments.Config{
		SegmentBytes:       c.segmentBytes(),
		SegmentRollAge:     c.SegmentRollAge,
		IndexIntervalBytes: c.IndexIntervalBytes,
		SegmentIndexBytes:  c.SegmentIndexBytes,
		RetentionAge:       c.RetentionAge,
		RetentionBytes:     c.RetentionBytes,
		MaxMessageBytes:    c.MaxMessageBytes,
		TimestampType:      c.TimestampType,
		TimestampBeforeMax: c.TimestampBeforeMax,
		TimestampAfterMax:  c.TimestampAfterMax,
		Compact:            c.Compact(),
		MinCleanableRatio:  c.MinCleanableRatio,
		MinCompactionLag:   c.MinCompactionLag,
		MaxCompactionLag:   c.MaxCompactionLag,
		DeleteRetention:    c.DeleteRetention,
	}
	if !c.deletes() {
		// compact alone: nothing is deleted by age or size.
		lc.RetentionAge, lc.RetentionBytes = -1, -1
	}
	if c.Tiered() {
		lc.RemoteStorage = true
		lc.LocalRetentionAge, lc.LocalRetentionBytes = c.localRetention()
	}
	if lc.MaxCompactionLag == time.Duration(math.MaxInt64) {
		lc.MaxCompactionLag = 0 // unlimited
	}
	return lc
}
