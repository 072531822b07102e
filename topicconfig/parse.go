package topicconfig

// The one table of topic-level config keys Strata supports (defs), with
// Kafka's names, defaults, types and minima (Kafka's LogConfig/TopicConfig
// definitions) and each key's broker-level synonym; parsing and rendering
// go through it. doc.go gives the parsing rules.

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/segments"
)

// Error reports an unknown config key or an invalid value. Its message
// names the key and the value. The broker answers it as Kafka's
// INVALID_CONFIG (broker/errors.go).
type Error struct {
	Key    string
	Value  string
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid value %q for configuration %s: %s", e.Value, e.Key, e.Reason)
}

// MinSegmentBytes is the smallest segment.bytes accepted: 1 MiB, Kafka
// 4.0's minimum (KIP-1030; Kafka 3.x accepted 14 bytes). A segment keeps
// three files open for as long as it exists, so a topic of 14-byte segments
// turns every produced batch into three file handles.
const MinSegmentBytes = 1 << 20 // 1048576

// InternalSegmentBytesKey is Kafka 4.0's test-only topic config that
// overrides segment.bytes without its minimum. Strata's tests use it to
// roll segments with little data, as Kafka's do; operators should not.
const InternalSegmentBytesKey = "internal.segment.bytes"

// minInternalSegmentBytes is internal.segment.bytes' floor: Kafka 3.x's
// segment.bytes minimum, the v0 record overhead (14 bytes).
const minInternalSegmentBytes = 14

// Default returns Kafka's topic defaults.
func Default() Config {
	return Config{
		CleanupPolicy:       "delete",
		SegmentBytes:        1 << 30,            // 1073741824
		SegmentRollAge:      7 * 24 * time.Hour, // 604800000 ms
		SegmentIndexBytes:   10 << 20,           // 10485760
		IndexIntervalBytes:  4096,
		RetentionAge:        7 * 24 * time.Hour, // 604800000 ms
		RetentionBytes:      -1,                 // unlimited
		MaxMessageBytes:     1024*1024 + 12,     // 1048588: 1 MiB plus Kafka's LOG_OVERHEAD (offset 8 + size 4)
		TimestampType:       segments.CreateTime,
		TimestampBeforeMax:  time.Duration(math.MaxInt64), // Long.MAX_VALUE: no limit
		TimestampAfterMax:   time.Hour,                    // 3600000 ms (Kafka 4.0, KIP-937)
		MinInsyncReplicas:   1,
		CompressionType:     "producer",
		FileDeleteDelay:     60 * time.Second, // 60000 ms
		DeleteRetention:     24 * time.Hour,   // 86400000 ms
		MinCleanableRatio:   0.5,
		MinCompactionLag:    0,
		MaxCompactionLag:    time.Duration(math.MaxInt64), // Long.MAX_VALUE: no limit
		RemoteStorage:       true,                         // whenever an object store is configured
		LocalRetentionAge:   sameAsTotal * time.Millisecond,
		LocalRetentionBytes: sameAsTotal,
	}
}

// Parse applies the key/value pairs in kv on top of base and returns the
// result. Keys are Kafka's topic-level names (segment.bytes, …). The first
// invalid pair, in key order, is returned as an *Error; on error the
// returned config is base unchanged.
func Parse(base Config, kv map[string]string) (Config, error) {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	c := base
	for _, k := range keys {
		def := lookup(k)
		if def == nil {
			return base, UnknownKeyError(k, kv[k])
		}
		if err := def.set(&c, strings.TrimSpace(kv[k])); err != nil {
			return base, &Error{Key: k, Value: kv[k], Reason: err.Error()}
		}
	}
	if err := checkLocalRetention(c, kv); err != nil {
		return base, err
	}
	return c, nil
}

// checkLocalRetention applies Kafka's cross-key rule: local retention may
// not keep more than total retention (-1, unlimited, only with an
// unlimited total). The error names the local key when it was given.
func checkLocalRetention(c Config, kv map[string]string) error {
	check := func(key string, local, total int64, render string) error {
		if local == sameAsTotal || total < 0 || (local >= 0 && local <= total) {
			return nil
		}
		v, ok := kv[key]
		if !ok {
			v = render
		}
		return &Error{Key: key, Value: v, Reason: fmt.Sprintf("must be -2 (the total) or at most the total retention, %d", total)}
	}
	if err := check("local.retention.ms", int64(c.LocalRetentionAge/time.Millisecond), int64(c.RetentionAge/time.Millisecond), formatMillis(c.LocalRetentionAge)); err != nil {
		return err
	}
	return check("local.retention.bytes", c.LocalRetentionBytes, c.RetentionBytes, strconv.FormatInt(c.LocalRetentionBytes, 10))
}

// UnknownKeyError is the error for a key Strata does not support (Lookup's
// ok is false), as Parse returns it; value is the one given with it.
func UnknownKeyError(key, value string) *Error {
	reason := "unknown topic config name"
	if slices.Contains(kafkaUnsupportedKeys, key) {
		reason = "this Kafka topic config is not supported by Strata"
	}
	return &Error{Key: key, Value: value, Reason: reason}
}

// Keys lists the supported topic config keys, sorted, without the
// test-only internal.segment.bytes (which Parse accepts too).
func Keys() []string {
	keys := make([]string, 0, len(defs))
	for _, d := range defs {
		if !d.Internal {
			keys = append(keys, d.Key)
		}
	}
	return keys
}

// Entries renders every key of c as Kafka would print it (durations in
// milliseconds); internal.segment.bytes only when set. Parse accepts the
// result.
func Entries(c Config) map[string]string {
	m := make(map[string]string, len(defs))
	for _, d := range defs {
		if v := d.get(c); v != "" || !d.Internal {
			m[d.Key] = v
		}
	}
	return m
}

// Def describes one supported topic-level key: what DescribeConfigs and
// the CLI's help say about it. The broker turns it into response entries
// (sources, synonym chains); nothing here knows about responses.
type Def struct {
	Key       string          // Kafka's topic-level name (segment.bytes)
	BrokerKey string          // Kafka's broker-level synonym, the default for all topics (log.segment.bytes)
	Type      kmsg.ConfigType // Kafka's config type (DescribeConfigs v3+)
	// Internal: a test-only key (Kafka's internal configs). DescribeConfigs
	// and CreateTopics responses list it only while it is set.
	Internal bool
	Doc      string // one-paragraph documentation (DescribeConfigs v3+)
	set      func(c *Config, v string) error
	get      func(c Config) string
}

// Value renders the key's value in c as Kafka prints it (durations in
// milliseconds); "" for an unset internal key.
func (d Def) Value(c Config) string { return d.get(c) }

// Defs returns the definitions of every supported key, sorted by key, the
// internal ones included. The slice is a fresh copy, the caller's.
func Defs() []Def { return slices.Clone(defs) }

// Lookup returns the definition of key; ok is false for a key Strata does
// not support (Parse rejects it with an *Error).
func Lookup(key string) (d Def, ok bool) {
	if p := lookup(key); p != nil {
		return *p, true
	}
	return Def{}, false
}

func lookup(key string) *Def {
	for i := range defs {
		if defs[i].Key == key {
			return &defs[i]
		}
	}
	return nil
}

// defs is sorted by key. Minima are Kafka's (LogConfig). Keys of the two
// common shapes are built by millisKey and intKey; the others spell out
// their parsing.
var defs = []Def{
	{
		Key: "cleanup.policy", BrokerKey: "log.cleanup.policy", Type: kmsg.ConfigTypeList,
		Doc: "The retention policy for old log segments: delete removes whole segments past retention.ms/retention.bytes; compact keeps the latest record of every key (the log cleaner rewrites closed segments); compact,delete does both.",
		set: func(c *Config, v string) error {
			p, err := parseCleanupPolicy(v)
			if err == nil {
				c.CleanupPolicy = p
			}
			return err
		},
		get: func(c Config) string { return c.CleanupPolicy },
	},
	{
		Key: "compression.type", BrokerKey: "compression.type", Type: kmsg.ConfigTypeString,
		Doc: "The final compression of the topic's batches. Strata stores batches as produced, so only producer (keep the producer's codec) is accepted today.",
		set: func(c *Config, v string) error {
			if !slices.Contains([]string{"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"}, v) {
				return fmt.Errorf("must be one of uncompressed, zstd, lz4, snappy, gzip, producer")
			}
			if v != "producer" {
				return fmt.Errorf("batches are stored byte-for-byte as produced, so only producer is supported")
			}
			c.CompressionType = v
			return nil
		},
		get: func(c Config) string { return c.CompressionType },
	},
	millisKey(Def{
		Key: "delete.retention.ms", BrokerKey: "log.cleaner.delete.retention.ms",
		Doc: "For compacted topics, how long a tombstone (a null value) is kept after the cleaner first reaches it: a consumer reading from the start within this time sees the delete.",
	}, 0, func(c *Config) *time.Duration { return &c.DeleteRetention }),
	millisKey(Def{
		Key: "file.delete.delay.ms", BrokerKey: "log.segment.delete.delay.ms",
		Doc: "How long to wait before deleting a file from the filesystem.",
	}, 0, func(c *Config) *time.Duration { return &c.FileDeleteDelay }),
	intKey(Def{
		Key: "index.interval.bytes", BrokerKey: "log.index.interval.bytes", Type: kmsg.ConfigTypeInt,
		Doc: "How many bytes of batches between two entries of the offset index.",
	}, 0, math.MaxInt32, func(c *Config) *int32 { return &c.IndexIntervalBytes }),
	{
		Key: InternalSegmentBytesKey, BrokerKey: InternalSegmentBytesKey, Type: kmsg.ConfigTypeInt, Internal: true,
		Doc: "For tests only (Kafka 4.0's internal.segment.bytes): when set, the size at which a segment file is rolled instead of segment.bytes, with no 1 MiB minimum, so that tests can roll segments with little data. Empty means unset.",
		set: func(c *Config, v string) error {
			if v == "" {
				c.InternalSegmentBytes = 0
				return nil
			}
			n, err := parseInt(v, minInternalSegmentBytes, math.MaxInt32)
			if err == nil {
				c.InternalSegmentBytes = n
			}
			return err
		},
		get: func(c Config) string {
			if c.InternalSegmentBytes == 0 {
				return ""
			}
			return strconv.FormatInt(c.InternalSegmentBytes, 10)
		},
	},
	intKey(Def{
		Key: "local.retention.bytes", BrokerKey: "log.local.retention.bytes", Type: kmsg.ConfigTypeLong,
		Doc: "With remote storage, the largest size a partition's local log may keep once its segments are in the object store (older uploaded segments are deleted locally and read from the bucket); -2 means the same as retention.bytes, -1 no limit.",
	}, sameAsTotal, math.MaxInt64, func(c *Config) *int64 { return &c.LocalRetentionBytes }),
	{
		Key: "local.retention.ms", BrokerKey: "log.local.retention.ms", Type: kmsg.ConfigTypeLong,
		Doc: "With remote storage, how long uploaded segments stay on local disk; -2 means the same as retention.ms, -1 no limit.",
		set: func(c *Config, v string) error {
			n, err := parseInt(v, sameAsTotal, math.MaxInt64)
			if err != nil {
				return err
			}
			if n < 0 {
				c.LocalRetentionAge = time.Duration(n) * time.Millisecond
				return nil
			}
			c.LocalRetentionAge, err = parseMillis(v, 0)
			return err
		},
		get: func(c Config) string {
			if c.LocalRetentionAge < 0 {
				return strconv.FormatInt(int64(c.LocalRetentionAge/time.Millisecond), 10)
			}
			return formatMillis(c.LocalRetentionAge)
		},
	},
	millisKey(Def{
		Key: "max.compaction.lag.ms", BrokerKey: "log.cleaner.max.compaction.lag.ms",
		Doc: "For compacted topics, the longest a record stays uncompacted: a log whose oldest dirty record is older is cleaned whatever its dirty ratio (the active segment is never cleaned, so segment.ms bounds it too).",
	}, 1, func(c *Config) *time.Duration { return &c.MaxCompactionLag }),
	intKey(Def{
		Key: "max.message.bytes", BrokerKey: "message.max.bytes", Type: kmsg.ConfigTypeInt,
		Doc: "The largest record batch size allowed, after compression.",
	}, 0, math.MaxInt32, func(c *Config) *int32 { return &c.MaxMessageBytes }),
	millisKey(Def{
		Key: "message.timestamp.after.max.ms", BrokerKey: "log.message.timestamp.after.max.ms",
		Doc: "With CreateTime, the most a record's timestamp may lie after the broker's time; later batches are refused with INVALID_TIMESTAMP.",
	}, 0, func(c *Config) *time.Duration { return &c.TimestampAfterMax }),
	millisKey(Def{
		Key: "message.timestamp.before.max.ms", BrokerKey: "log.message.timestamp.before.max.ms",
		Doc: "With CreateTime, the most a record's timestamp may lie before the broker's time; older batches are refused with INVALID_TIMESTAMP.",
	}, 0, func(c *Config) *time.Duration { return &c.TimestampBeforeMax }),
	{
		Key: "message.timestamp.type", BrokerKey: "log.message.timestamp.type", Type: kmsg.ConfigTypeString,
		Doc: "Whether the timestamp in a record is the producer's (CreateTime) or the broker's append time (LogAppendTime).",
		set: func(c *Config, v string) error {
			switch v {
			case "CreateTime":
				c.TimestampType = segments.CreateTime
			case "LogAppendTime":
				c.TimestampType = segments.LogAppendTime
			default:
				return fmt.Errorf("must be CreateTime or LogAppendTime")
			}
			return nil
		},
		get: func(c Config) string {
			if c.TimestampType == segments.LogAppendTime {
				return "LogAppendTime"
			}
			return "CreateTime"
		},
	},
	{
		Key: "min.cleanable.dirty.ratio", BrokerKey: "log.cleaner.min.cleanable.ratio", Type: kmsg.ConfigTypeDouble,
		Doc: "For compacted topics, the share of the cleanable log that must be dirty (not yet compacted) before the cleaner rewrites it.",
		set: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
				return fmt.Errorf("must be a number between 0 and 1")
			}
			c.MinCleanableRatio = f
			return nil
		},
		get: func(c Config) string { return strconv.FormatFloat(c.MinCleanableRatio, 'g', -1, 64) },
	},
	millisKey(Def{
		Key: "min.compaction.lag.ms", BrokerKey: "log.cleaner.min.compaction.lag.ms",
		Doc: "For compacted topics, the youngest a record may be and still be compacted.",
	}, 0, func(c *Config) *time.Duration { return &c.MinCompactionLag }),
	intKey(Def{
		Key: "min.insync.replicas", BrokerKey: "min.insync.replicas", Type: kmsg.ConfigTypeInt,
		Doc: "The minimum number of in-sync replicas that must acknowledge an acks=all write.",
	}, 1, math.MaxInt16, func(c *Config) *int16 { return &c.MinInsyncReplicas }),
	{
		Key: "remote.storage.enable", BrokerKey: "remote.storage.enable", Type: kmsg.ConfigTypeBoolean,
		Doc: "Upload closed segments to the object store and serve history older than the local log from it. Default true when the broker has an object store (--object-store); compacted topics are never tiered.",
		set: func(c *Config, v string) error {
			switch v {
			case "true":
				c.RemoteStorage = true
			case "false":
				c.RemoteStorage = false
			default:
				return fmt.Errorf("must be true or false")
			}
			return nil
		},
		get: func(c Config) string { return strconv.FormatBool(c.RemoteStorage) },
	},
	intKey(Def{
		Key: "retention.bytes", BrokerKey: "log.retention.bytes", Type: kmsg.ConfigTypeLong,
		Doc: "The largest size a partition may grow to before old segments are deleted; -1 for no limit.",
	}, math.MinInt64, math.MaxInt64, func(c *Config) *int64 { return &c.RetentionBytes }),
	millisKey(Def{
		Key: "retention.ms", BrokerKey: "log.retention.ms",
		Doc: "How long a segment is kept after its newest record before it is deleted; -1 for no limit.",
	}, -1, func(c *Config) *time.Duration { return &c.RetentionAge }),
	// Kafka 4.0's minimum (KIP-1030): every segment holds three open
	// files, so tiny segments exhaust file handles.
	intKey(Def{
		Key: "segment.bytes", BrokerKey: "log.segment.bytes", Type: kmsg.ConfigTypeInt,
		Doc: "The size at which a segment file is rolled; at least 1048576 (1 MiB), as in Kafka 4.0.",
	}, MinSegmentBytes, math.MaxInt32, func(c *Config) *int64 { return &c.SegmentBytes }),
	intKey(Def{
		Key: "segment.index.bytes", BrokerKey: "log.index.size.max.bytes", Type: kmsg.ConfigTypeInt,
		Doc: "The maximum size of a segment's offset index.",
	}, 4, math.MaxInt32, func(c *Config) *int32 { return &c.SegmentIndexBytes }),
	millisKey(Def{
		Key: "segment.ms", BrokerKey: "log.roll.ms",
		Doc: "The age at which a segment is rolled even if it is not full.",
	}, 1, func(c *Config) *time.Duration { return &c.SegmentRollAge }),
}

// millisKey completes d for a key of type LONG whose value is a
// millisecond count of at least lo, held as a Duration in field(c).
func millisKey(d Def, lo int64, field func(c *Config) *time.Duration) Def {
	d.Type = kmsg.ConfigTypeLong
	d.set = func(c *Config, v string) error {
		ms, err := parseMillis(v, lo)
		if err == nil {
			*field(c) = ms
		}
		return err
	}
	d.get = func(c Config) string { return formatMillis(*field(&c)) }
	return d
}

// intKey completes d (its Type given) for a key whose value is a decimal
// integer in [lo, hi], held in field(c); hi fits T.
func intKey[T int16 | int32 | int64](d Def, lo, hi int64, field func(c *Config) *T) Def {
	d.set = func(c *Config, v string) error {
		n, err := parseInt(v, lo, hi)
		if err == nil {
			*field(c) = T(n)
		}
		return err
	}
	d.get = func(c Config) string { return strconv.FormatInt(int64(*field(&c)), 10) }
	return d
}

// kafkaUnsupportedKeys are Kafka topic configs Strata does not
// implement (yet); they get a clearer message than a plain unknown key.
var kafkaUnsupportedKeys = []string{
	"compression.gzip.level", "compression.lz4.level", "compression.zstd.level",
	"flush.messages", "flush.ms",
	"follower.replication.throttled.replicas", "leader.replication.throttled.replicas",
	"message.downconversion.enable", "message.format.version",
	"message.timestamp.difference.max.ms", "preallocate",
	"remote.log.copy.disable", "remote.log.delete.on.disable",
	"segment.jitter.ms", "unclean.leader.election.enable",
}

// parseCleanupPolicy parses Kafka's comma-separated cleanup.policy list.
func parseCleanupPolicy(v string) (string, error) {
	var out []string
	for _, item := range splitList(v) {
		if item != "delete" && item != "compact" {
			return "", fmt.Errorf("must be a list of delete and compact")
		}
		if !slices.Contains(out, item) {
			out = append(out, item)
		}
	}
	if len(out) == 0 {
		return "", fmt.Errorf("must not be empty: delete, compact or both")
	}
	return strings.Join(out, ","), nil
}

// splitList splits a list value (Type kmsg.ConfigTypeList) into its
// items: comma-separated, surrounding white space trimmed, empty items
// dropped.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// EditList applies IncrementalAlterConfigs' APPEND (add) or SUBTRACT to a
// list value: it appends the items of items that list lacks, or removes
// them from it, and returns the list comma-separated. The result is
// validated by Parse like any value.
func EditList(list, items string, add bool) string {
	cur := splitList(list)
	for _, it := range splitList(items) {
		if add && !slices.Contains(cur, it) {
			cur = append(cur, it)
		} else if !add {
			cur = slices.DeleteFunc(cur, func(x string) bool { return x == it })
		}
	}
	return strings.Join(cur, ",")
}

// parseInt parses a decimal integer in [lo, hi].
func parseInt(v string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a number")
	}
	if n < lo {
		return 0, fmt.Errorf("must be at least %d", lo)
	}
	if n > hi {
		return 0, fmt.Errorf("must be at most %d", hi)
	}
	return n, nil
}

// maxMillis is the largest millisecond count a time.Duration holds
// (about 292 years). Larger values (Kafka allows up to Long.MAX_VALUE ms)
// are clamped: they mean "never" in practice.
const maxMillis = math.MaxInt64 / int64(time.Millisecond)

// parseMillis parses a millisecond count >= lo into a Duration.
func parseMillis(v string, lo int64) (time.Duration, error) {
	n, err := parseInt(v, lo, math.MaxInt64)
	if err != nil {
		return 0, err
	}
	if n > maxMillis {
		return time.Duration(math.MaxInt64), nil
	}
	return time.Duration(n) * time.Millisecond, nil
}

// formatMillis renders a Duration as Kafka's millisecond count; a clamped
// "never" renders as Long.MAX_VALUE.
func formatMillis(d time.Duration) string {
	if d == time.Duration(math.MaxInt64) {
		return strconv.FormatInt(math.MaxInt64, 10)
	}
	return strconv.FormatInt(int64(d/time.Millisecond), 10)
}

// MigrateLegacySegmentBytes rewrites the persisted overrides of a topic
// created before segment.bytes had Kafka 4.0's 1 MiB minimum: a smaller
// segment.bytes (at least the old minimum of 14) becomes
// internal.segment.bytes, so the topic keeps rolling as before. The result
// is a new map (overrides is not modified); ok is false if there is
// nothing to rewrite.
func MigrateLegacySegmentBytes(overrides map[string]string) (map[string]string, bool) {
	v, ok := overrides["segment.bytes"]
	if !ok {
		return nil, false
	}
	if _, set := overrides[InternalSegmentBytesKey]; set {
		return nil, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < minInternalSegmentBytes || n >= MinSegmentBytes {
		return nil, false
	}
	out := maps.Clone(overrides)
	delete(out, "segment.bytes")
	out[InternalSegmentBytesKey] = strings.TrimSpace(v)
	return out, true
}
