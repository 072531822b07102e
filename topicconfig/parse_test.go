package topicconfig

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

func TestDefaultIsKafkas(t *testing.T) {
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
	got := Entries(Default())
	if !maps.Equal(got, want) {
		t.Fatalf("Entries(Default()) =\n%v\nwant\n%v", got, want)
	}
	keys := Keys()
	if len(keys) != len(want) {
		t.Fatalf("Keys() = %v", keys)
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

func TestParseValid(t *testing.T) {
	base := Default()
	c, err := Parse(base, map[string]string{
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
	want := Config{
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
	again, err := Parse(base, Entries(c))
	if err != nil || again != c {
		t.Fatalf("round trip: %+v, %v", again, err)
	}
	// Millisecond counts beyond a Duration clamp to "never" and render as Long.MAX_VALUE.
	c, err = Parse(base, map[string]string{"retention.ms": "9223372036854775807"})
	if err != nil {
		t.Fatal(err)
	}
	if got := Entries(c)["retention.ms"]; got != "9223372036854775807" {
		t.Fatalf("retention.ms rendered %q", got)
	}
}

func TestParseInvalid(t *testing.T) {
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
	base := Default()
	for _, tc := range cases {
		got, err := Parse(base, map[string]string{"retention.bytes": "5", tc.key: tc.value})
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%s=%q: err = %v, want *Error", tc.key, tc.value, err)
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

// internal.segment.bytes (test-only, as in Kafka 4.0) replaces
// segment.bytes in the log config while set, and is hidden while not.
func TestInternalSegmentBytes(t *testing.T) {
	c, err := Parse(Default(), map[string]string{"internal.segment.bytes": "400"})
	if err != nil {
		t.Fatal(err)
	}
	if lc := c.LogConfig(); lc.SegmentBytes != 400 || c.SegmentBytes != 1<<30 {
		t.Fatalf("log config segment bytes %d, segment.bytes %d", lc.SegmentBytes, c.SegmentBytes)
	}
	if got := Entries(c)["internal.segment.bytes"]; got != "400" {
		t.Fatalf("rendered %q", got)
	}
	if _, ok := Entries(Default())["internal.segment.bytes"]; ok {
		t.Fatal("an unset internal.segment.bytes is rendered")
	}
	if slices.Contains(Keys(), "internal.segment.bytes") {
		t.Fatal("Keys lists the internal key")
	}
	unset, err := Parse(c, map[string]string{"internal.segment.bytes": ""})
	if err != nil || unset.InternalSegmentBytes != 0 || unset.LogConfig().SegmentBytes != 1<<30 {
		t.Fatalf("unsetting: %+v, %v", unset, err)
	}
}

// The definition table as callers see it: Defs is sorted, lists the
// internal key, and is a copy; Lookup finds exactly the keys Parse accepts.
func TestDefsAndLookup(t *testing.T) {
	ds := Defs()
	if len(ds) != len(Keys())+1 {
		t.Fatalf("%d defs for %d keys plus internal.segment.bytes", len(ds), len(Keys()))
	}
	for i, d := range ds {
		if i > 0 && ds[i-1].Key >= d.Key {
			t.Errorf("defs not sorted at %q", d.Key)
		}
		if d.Internal != (d.Key == InternalSegmentBytesKey) || d.BrokerKey == "" || d.Doc == "" || d.Type == 0 {
			t.Errorf("def %+v", d)
		}
		if l, ok := Lookup(d.Key); !ok || l.Key != d.Key || l.Value(Default()) != d.Value(Default()) {
			t.Errorf("Lookup(%q) = %+v, %v", d.Key, l, ok)
		}
	}
	ds[0].Key = "changed"
	if Defs()[0].Key == "changed" {
		t.Fatal("Defs shares the table")
	}
	if _, ok := Lookup("unclean.leader.election.enable"); ok {
		t.Fatal("Lookup found an unsupported key")
	}
	for _, k := range kafkaUnsupportedKeys {
		if _, ok := Lookup(k); ok {
			t.Errorf("%q is listed as unsupported but is supported", k)
		}
	}
	var ce *Error
	if _, err := Parse(Default(), map[string]string{"flush.ms": "1"}); !errors.As(err, &ce) || *ce != *UnknownKeyError("flush.ms", "1") {
		t.Errorf("Parse of an unsupported key: %v, UnknownKeyError: %v", err, UnknownKeyError("flush.ms", "1"))
	}
	if got := Entries(Default())["cleanup.policy"]; got != "delete" {
		t.Fatalf("cleanup.policy %q", got)
	}
}

// Overrides persisted before segment.bytes had its 1 MiB minimum move a
// small segment.bytes to internal.segment.bytes; nothing else changes.
func TestMigrateLegacySegmentBytes(t *testing.T) {
	cases := []struct {
		in   map[string]string
		want map[string]string // nil: nothing to rewrite
	}{
		{map[string]string{"segment.bytes": " 4096 ", "retention.ms": "1"}, map[string]string{"internal.segment.bytes": "4096", "retention.ms": "1"}},
		{map[string]string{"segment.bytes": "14"}, map[string]string{"internal.segment.bytes": "14"}},
		{map[string]string{"segment.bytes": "13"}, nil},      // below even the old minimum
		{map[string]string{"segment.bytes": "1048576"}, nil}, // valid today
		{map[string]string{"segment.bytes": "x"}, nil},
		{map[string]string{"segment.bytes": "4096", "internal.segment.bytes": "400"}, nil},
		{map[string]string{"retention.ms": "1"}, nil},
	}
	for _, tc := range cases {
		before := maps.Clone(tc.in)
		got, ok := MigrateLegacySegmentBytes(tc.in)
		if ok != (tc.want != nil) || !maps.Equal(got, tc.want) {
			t.Errorf("MigrateLegacySegmentBytes(%v) = %v, %v; want %v", tc.in, got, ok, tc.want)
		}
		if !maps.Equal(tc.in, before) {
			t.Errorf("input modified: %v", tc.in)
		}
		if ok {
			if _, err := Parse(Default(), got); err != nil {
				t.Errorf("migrated overrides %v do not parse: %v", got, err)
			}
		}
	}
}

// APPEND and SUBTRACT on a list value: items are trimmed, empty ones
// dropped, an appended item already there is not repeated.
func TestEditList(t *testing.T) {
	for _, tc := range []struct {
		list, items string
		add         bool
		want        string
	}{
		{"delete", "compact", true, "delete,compact"},
		{"delete", " compact , delete,", true, "delete,compact"},
		{"", "compact", true, "compact"},
		{"delete, compact", "delete", false, "compact"},
		{"delete", "delete", false, ""},
		{"delete", "compact", false, "delete"},
		{"delete,compact", "compact", true, "delete,compact"},
		{"delete, compact", " delete ", false, "compact"},
		{"", "a,b", true, "a,b"},
		{"a", "a", false, ""},
	} {
		if got := EditList(tc.list, tc.items, tc.add); got != tc.want {
			t.Errorf("EditList(%q, %q, %v) = %q, want %q", tc.list, tc.items, tc.add, got, tc.want)
		}
	}
}
