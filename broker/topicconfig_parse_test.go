package broker

import (
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratalog/strata/segments"
)

func TestDefaultTopicConfigIsKafkas(t *testing.T) {
	want := map[string]string{
		"cleanup.policy":                  "delete",
		"compression.type":                "producer",
		"delete.retention.ms":             "86400000",
		"file.delete.delay.ms":            "60000",
		"max.compaction.lag.ms":           "9223372036854775807",
		"min.cleanable.dirty.ratio":       "0.5",
		"min.compaction.lag.ms":           "0",
		"index.interval.bytes":            "4096",
		"max.message.bytes":               "1048588",
		"message.timestamp.type":          "CreateTime",
		"message.timestamp.before.max.ms": "9223372036854775807",
		"message.timestamp.after.max.ms":  "3600000",
		"min.insync.replicas":             "1",
		"retention.bytes":                 "-1",
		"retention.ms":                    "604800000",
		"segment.bytes":                   "1073741824",
		"segment.index.bytes":             "10485760",
		"segment.ms":                      "604800000",
		"remote.storage.enable":           "true",
		"local.retention.ms":              "-2",
		"local.retention.bytes":           "-2",
	}
	got := TopicConfigEntries(DefaultTopicConfig())
	if !maps.Equal(got, want) {
		t.Fatalf("TopicConfigEntries(DefaultTopicConfig()) =\n%v\nwant\n%v", got, want)
	}
	keys := TopicConfigKeys()
	if len(keys) != len(want) {
		t.Fatalf("TopicConfigKeys() = %v", keys)
	}
	for i, k := range keys {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected key %q", k)
		}
		if i > 0 && keys[i-1] >= k {
			t.Errorf("keys not sorted: %v", keys)
		}
	}
}

func TestParseTopicConfigValid(t *testing.T) {
	base := DefaultTopicConfig()
	c, err := ParseTopicConfig(base, map[string]string{
		"segment.bytes":             " 1048576 ",
		"internal.segment.bytes":    " 14 ",
		"segment.ms":                "1",
		"retention.ms":              "-1",
		"retention.bytes":           "1000",
		"max.message.bytes":         "0",
		"message.timestamp.type":    "LogAppendTime",
		"min.insync.replicas":       "2",
		"cleanup.policy":            "compact, delete,compact",
		"delete.retention.ms":       "0",
		"min.cleanable.dirty.ratio": "0.25",
		"min.compaction.lag.ms":     "5",
		"max.compaction.lag.ms":     "1",
		"index.interval.bytes":      "0",
		"segment.index.bytes":       "4",
		"file.delete.delay.ms":      "0",
		"compression.type":          "producer",
		"remote.storage.enable":     "false",
		"local.retention.ms":        "-1",
		"local.retention.bytes":     "500",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := TopicConfig{
		CleanupPolicy:        "compact,delete",
		SegmentBytes:         1 << 20,
		InternalSegmentBytes: 14,
		SegmentRollAge:       time.Millisecond,
		SegmentIndexBytes:    4,
		IndexIntervalBytes:   0,
		RetentionAge:         -time.Millisecond,
		RetentionBytes:       1000,
		MaxMessageBytes:      0,
		TimestampType:        segments.LogAppendTime,
		TimestampBeforeMax:   time.Duration(math.MaxInt64),
		TimestampAfterMax:    time.Hour,
		MinInsyncReplicas:    2,
		CompressionType:      "producer",
		FileDeleteDelay:      0,
		DeleteRetention:      0,
		MinCleanableRatio:    0.25,
		MinCompactionLag:     5 * time.Millisecond,
		MaxCompactionLag:     time.Millisecond,
		LocalRetentionAge:    -time.Millisecond,
		LocalRetentionBytes:  500,
	}
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	// The rendering parses back to the same config.
	again, err := ParseTopicConfig(base, TopicConfigEntries(c))
	if err != nil || again != c {
		t.Fatalf("round trip: %+v, %v", again, err)
	}
	// Millisecond counts beyond a Duration clamp to "never" and render as Long.MAX_VALUE.
	c, err = ParseTopicConfig(base, map[string]string{"retention.ms": "9223372036854775807"})
	if err != nil {
		t.Fatal(err)
	}
	if got := TopicConfigEntries(c)["retention.ms"]; got != "9223372036854775807" {
		t.Fatalf("retention.ms rendered %q", got)
	}
}

func TestParseTopicConfigInvalid(t *testing.T) {
	cases := []struct {
		key, value, reason string
	}{
		{"segment.bytes", "1048575", "at least 1048576"}, // Kafka 4.0's minimum
		{"segment.bytes", "14", "at least 1048576"},
		{"internal.segment.bytes", "13", "at least 14"},
		{"internal.segment.bytes", "2147483648", "at most"},
		{"segment.bytes", "2147483648", "at most"},
		{"segment.bytes", "1MB", "not a number"},
		{"segment.ms", "0", "at least 1"},
		{"retention.ms", "-2", "at least -1"},
		{"segment.index.bytes", "3", "at least 4"},
		{"index.interval.bytes", "-1", "at least 0"},
		{"max.message.bytes", "-1", "at least 0"},
		{"min.insync.replicas", "0", "at least 1"},
		{"file.delete.delay.ms", "-1", "at least 0"},
		{"message.timestamp.type", "createtime", "CreateTime or LogAppendTime"},
		{"cleanup.policy", "compact,remove", "delete and compact"},
		{"min.cleanable.dirty.ratio", "1.5", "between 0 and 1"},
		{"min.cleanable.dirty.ratio", "NaN", "between 0 and 1"},
		{"max.compaction.lag.ms", "0", "at least 1"},
		{"delete.retention.ms", "-1", "at least 0"},
		{"cleanup.policy", "", "must not be empty"},
		{"cleanup.policy", "remove", "delete and compact"},
		{"compression.type", "brotli", "must be one of"},
		{"compression.type", "gzip", "only producer"},
		{"retention.bytes", "", "not a number"},
		{"no.such.key", "1", "unknown topic config name"},
		{"unclean.leader.election.enable", "true", "not supported by Strata"},
		{"remote.storage.enable", "yes", "true or false"},
		{"local.retention.bytes", "-3", "at least -2"},
		{"local.retention.bytes", "6", "at most the total retention"},
		{"local.retention.bytes", "-1", "at most the total retention"},
		{"local.retention.ms", "-3", "at least -2"},
		{"local.retention.ms", "604800001", "at most the total retention"},
	}
	base := DefaultTopicConfig()
	for _, tc := range cases {
		got, err := ParseTopicConfig(base, map[string]string{"retention.bytes": "5", tc.key: tc.value})
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s=%q: err = %v, want *ConfigError", tc.key, tc.value, err)
			continue
		}
		msg := err.Error()
		if ce.Key != tc.key || !strings.Contains(msg, tc.key) || !strings.Contains(msg, `"`+tc.value+`"`) || !strings.Contains(msg, tc.reason) {
			t.Errorf("%s=%q: message %q should name key, value and say %q", tc.key, tc.value, msg, tc.reason)
		}
		if got != base {
			t.Errorf("%s=%q: config changed on error: %+v", tc.key, tc.value, got)
		}
	}
}

func TestValidateTopicName(t *testing.T) {
	valid := []string{"a", "A-b_c.d", "__consumer_offsets", "0", strings.Repeat("x", 249), "..."}
	for _, n := range valid {
		if err := validateTopicName(n); err != nil {
			t.Errorf("validateTopicName(%q) = %v", n, err)
		}
	}
	invalid := []string{"", ".", "..", strings.Repeat("x", 250), "a b", "a/b", "ü", "a\x00", "a:b", "a*"}
	for _, n := range invalid {
		err := validateTopicName(n)
		if code, _ := adminErrorCode(err); err == nil || code != 17 {
			t.Errorf("validateTopicName(%q) = %v, want INVALID_TOPIC_EXCEPTION", n, err)
		}
	}
}

func TestParsePartitionDir(t *testing.T) {
	cases := []struct {
		dir  string
		name string
		part int32
		ok   bool
	}{
		{"orders-0", "orders", 0, true},
		{"a-b-12", "a-b", 12, true},
		{"a-1-0", "a-1", 0, true},
		{"orders", "", 0, false},
		{"orders-", "", 0, false},
		{"-1", "", 0, false},
		{"orders-01", "", 0, false},
		{"orders--1", "orders-", 1, true}, // topic "orders-", partition 1
		{"orders-x", "", 0, false},
		{"bad name-0", "", 0, false},
	}
	for _, tc := range cases {
		name, part, ok := parsePartitionDir(tc.dir)
		if ok != tc.ok || name != tc.name || part != tc.part {
			t.Errorf("parsePartitionDir(%q) = %q, %d, %v", tc.dir, name, part, ok)
		}
	}
}

func TestTopicIDString(t *testing.T) {
	id := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	s := topicIDString(id)
	if len(s) != 22 {
		t.Fatalf("topicIDString = %q", s)
	}
	back, err := parseTopicID(s)
	if err != nil || back != id {
		t.Fatalf("parseTopicID(%q) = %v, %v", s, back, err)
	}
	if _, err := parseTopicID(topicIDString([16]byte{})); err == nil {
		t.Fatal("all-zero id accepted")
	}
}

// internal.segment.bytes (test-only, as in Kafka 4.0) replaces
// segment.bytes in the log config while set, and is hidden while not.
func TestInternalSegmentBytes(t *testing.T) {
	c, err := ParseTopicConfig(DefaultTopicConfig(), map[string]string{"internal.segment.bytes": "400"})
	if err != nil {
		t.Fatal(err)
	}
	if lc := c.LogConfig(); lc.SegmentBytes != 400 || c.SegmentBytes != 1<<30 {
		t.Fatalf("log config segment bytes %d, segment.bytes %d", lc.SegmentBytes, c.SegmentBytes)
	}
	if got := TopicConfigEntries(c)["internal.segment.bytes"]; got != "400" {
		t.Fatalf("rendered %q", got)
	}
	if _, ok := TopicConfigEntries(DefaultTopicConfig())["internal.segment.bytes"]; ok {
		t.Fatal("an unset internal.segment.bytes is rendered")
	}
	if slices.Contains(TopicConfigKeys(), "internal.segment.bytes") {
		t.Fatal("TopicConfigKeys lists the internal key")
	}
	unset, err := ParseTopicConfig(c, map[string]string{"internal.segment.bytes": ""})
	if err != nil || unset.InternalSegmentBytes != 0 || unset.LogConfig().SegmentBytes != 1<<30 {
		t.Fatalf("unsetting: %+v, %v", unset, err)
	}
}
