package tiering

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/segments"
)

func TestLayoutKeys(t *testing.T) {
	uid := UID{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	const prefix = "topics/orders/0123456789abcdeffedcba9876543210/3/"
	if got := PartitionPrefix(testTP); got != prefix {
		t.Errorf("PartitionPrefix = %q, want %q", got, prefix)
	}
	if got := ManifestKey(testTP); got != prefix+"manifest.json" {
		t.Errorf("ManifestKey = %q", got)
	}
	if got := SegmentsPrefix(testTP); got != prefix+"segments/" {
		t.Errorf("SegmentsPrefix = %q", got)
	}
	key := SegmentKey(testTP, 1000, 7, uid)
	if want := prefix + "segments/00000000000000001000-0000000007-0123456789abcdef.seg"; key != want {
		t.Errorf("SegmentKey = %q, want %q", key, want)
	}
	if got := TopicPrefix("orders"); !strings.HasPrefix(prefix, got) || got != "topics/orders/" {
		t.Errorf("TopicPrefix = %q", got)
	}
	for _, k := range []string{MetadataKey, key, ManifestKey(testTP)} {
		if err := objectstore.ValidateKey(k); err != nil {
			t.Errorf("layout key %q is not a valid store key: %v", k, err)
		}
	}
}

func TestSegmentKeyRoundTrip(t *testing.T) {
	cases := []SegmentRef{
		{testTP, 0, 0, NewUID()},
		{testTP, 1<<63 - 1, 1<<31 - 1, NewUID()},
		{TopicPartition{"a", testID, 0}, 42, 1, NewUID()},
		{TopicPartition{strings.Repeat("x", MaxTopicNameBytes), testID, 1<<31 - 1}, 5, 2, NewUID()},
		{TopicPartition{"__consumer_offsets", TopicID{15: 1}, 49}, 123456789, 3, UID{}},
		{TopicPartition{"a-b.c_d", testID, 10}, 9, 9, NewUID()},
	}
	for _, want := range cases {
		key := want.Key()
		got, err := ParseSegmentKey(key)
		if err != nil {
			t.Errorf("ParseSegmentKey(%q): %v", key, err)
			continue
		}
		if got != want {
			t.Errorf("ParseSegmentKey(%q) = %+v, want %+v", key, got, want)
		}
		tp, err := ParseManifestKey(ManifestKey(want.TopicPartition))
		if err != nil || tp != want.TopicPartition {
			t.Errorf("ParseManifestKey(%q) = %v, %v", ManifestKey(want.TopicPartition), tp, err)
		}
		if err := objectstore.ValidateKey(key); err != nil {
			t.Errorf("%q is not a valid store key: %v", key, err)
		}
	}
}

// The longest legal topic name gives keys whose every path segment fits a
// file name (255 bytes), so they work on the file store.
func TestLongestTopicOnFileStore(t *testing.T) {
	store, err := objectstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	tp := TopicPartition{Topic: strings.Repeat("t", MaxTopicNameBytes), TopicID: testID, Partition: 1<<31 - 1}
	ctx := context.Background()
	key := SegmentKey(tp, 1<<63-1, 1<<31-1, NewUID())
	for _, k := range []string{key, ManifestKey(tp)} {
		if _, err := store.Put(ctx, k, strings.NewReader("x"), 1); err != nil {
			t.Fatalf("put %q on the file store: %v", k, err)
		}
	}
	var listed []string
	for info, err := range store.List(ctx, SegmentsPrefix(tp)) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, info.Key)
	}
	if !slices.Equal(listed, []string{key}) {
		t.Fatalf("listing %q = %q, want [%q]", SegmentsPrefix(tp), listed, key)
	}
}

// Keys of one partition list (ascending byte order) in offset order.
func TestSegmentKeysSortByOffset(t *testing.T) {
	bases := []segments.Offset{0, 9, 10, 99, 100, 1 << 40, 1<<63 - 1}
	var keys []string
	for i, b := range bases {
		keys = append(keys, SegmentKey(testTP, b, segments.LeaderEpoch(len(bases)-i), NewUID()))
	}
	if !slices.IsSorted(keys) {
		t.Fatalf("segment keys do not sort by base offset: %q", keys)
	}
}

func TestParseSegmentKeyRejects(t *testing.T) {
	good := SegmentKey(testTP, 1000, 7, UID{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef})
	p := PartitionPrefix(testTP)
	bad := map[string]string{
		"empty":                "",
		"metadata":             MetadataKey,
		"manifest":             ManifestKey(testTP),
		"segments dir":         SegmentsPrefix(testTP),
		"no suffix":            strings.TrimSuffix(good, ".seg"),
		"other suffix":         strings.TrimSuffix(good, ".seg") + ".log",
		"temp file":            good + ".tmp",
		"leading slash":        "/" + good,
		"store prefix":         "bucket/" + good,
		"upper-case uid":       p + "segments/00000000000000001000-0000000007-0123456789ABCDEF.seg",
		"short uid":            p + "segments/00000000000000001000-0000000007-0123456789abcde.seg",
		"unpadded base":        p + "segments/1000-0000000007-0123456789abcdef.seg",
		"21-digit base":        p + "segments/000000000000000001000-0000000007-0123456789abcdef.seg",
		"base overflow":        p + "segments/99999999999999999999-0000000007-0123456789abcdef.seg",
		"signed base":          p + "segments/+0000000000000001000-0000000007-0123456789abcdef.seg",
		"negative base":        p + "segments/-0000000000000001000-0000000007-0123456789abcdef.seg",
		"epoch overflow":       p + "segments/00000000000000001000-2147483648-0123456789abcdef.seg",
		"unpadded epoch":       p + "segments/00000000000000001000-7-0123456789abcdef.seg",
		"underscores":          p + "segments/00000000000000001000_0000000007_0123456789abcdef.seg",
		"nested":               p + "segments/x/00000000000000001000-0000000007-0123456789abcdef.seg",
		"kafka segment":        p + "segments/00000000000000001000.log",
		"partition zero-pad":   "topics/orders/0123456789abcdeffedcba9876543210/03/segments/00000000000000001000-0000000007-0123456789abcdef.seg",
		"partition negative":   "topics/orders/0123456789abcdeffedcba9876543210/-3/segments/00000000000000001000-0000000007-0123456789abcdef.seg",
		"partition overflow":   "topics/orders/0123456789abcdeffedcba9876543210/2147483648/segments/00000000000000001000-0000000007-0123456789abcdef.seg",
		"topic id upper-case":  "topics/orders/0123456789ABCDEFFEDCBA9876543210/3/segments/00000000000000001000-0000000007-0123456789abcdef.seg",
		"topic id short":       "topics/orders/0123456789abcdeffedcba987654321/3/segments/00000000000000001000-0000000007-0123456789abcdef.seg",
		"topic id zero":        "topics/orders/00000000000000000000000000000000/3/segments/00000000000000001000-0000000007-0123456789abcdef.seg",
		"id in name (brief's)": "topics/orders-0123456789abcdeffedcba9876543210/3/segments/00000000000000001000-0000000007-0123456789abcdef.seg",
		"illegal topic":        "topics/or ders/0123456789abcdeffedcba9876543210/3/segments/00000000000000001000-0000000007-0123456789abcdef.seg",
		"dot topic":            "topics/../0123456789abcdeffedcba9876543210/3/segments/00000000000000001000-0000000007-0123456789abcdef.seg",
		"long topic":           "topics/" + strings.Repeat("x", 250) + "/0123456789abcdeffedcba9876543210/3/segments/00000000000000001000-0000000007-0123456789abcdef.seg",
		"not topics":           "topic/orders/0123456789abcdeffedcba9876543210/3/segments/00000000000000001000-0000000007-0123456789abcdef.seg",
	}
	if _, err := ParseSegmentKey(good); err != nil {
		t.Fatalf("the control key %q does not parse: %v", good, err)
	}
	for name, key := range bad {
		if ref, err := ParseSegmentKey(key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: ParseSegmentKey(%q) = %+v, %v; want ErrInvalidKey", name, key, ref, err)
		}
	}
	for _, key := range []string{good, SegmentsPrefix(testTP) + "manifest.json", p + "manifest.json.bak", p + "x/manifest.json"} {
		if tp, err := ParseManifestKey(key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParseManifestKey(%q) = %v, %v; want ErrInvalidKey", key, tp, err)
		}
	}
}

func TestTopicPartitionValidate(t *testing.T) {
	valid := []TopicPartition{
		testTP,
		{Topic: strings.Repeat("x", MaxTopicNameBytes), TopicID: testID},
		{Topic: "...", TopicID: testID, Partition: 1<<31 - 1},
	}
	for _, tp := range valid {
		if err := tp.Validate(); err != nil {
			t.Errorf("%v: %v", tp, err)
		}
	}
	invalid := map[string]TopicPartition{
		"empty name":      {Topic: "", TopicID: testID},
		"dot":             {Topic: ".", TopicID: testID},
		"dot dot":         {Topic: "..", TopicID: testID},
		"too long":        {Topic: strings.Repeat("x", MaxTopicNameBytes+1), TopicID: testID},
		"slash":           {Topic: "a/b", TopicID: testID},
		"space":           {Topic: "a b", TopicID: testID},
		"non-ascii":       {Topic: "ü", TopicID: testID},
		"zero id":         {Topic: "a"},
		"negative number": {Topic: "a", TopicID: testID, Partition: -1},
	}
	for name, tp := range invalid {
		if err := tp.Validate(); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: Validate(%+v) = %v, want ErrInvalidKey", name, tp, err)
		}
	}
}

func TestKeyBuildersPanicOnInvalidInput(t *testing.T) {
	for name, fn := range map[string]func(){
		"manifest of slash topic": func() { ManifestKey(TopicPartition{Topic: "a/b", TopicID: testID}) },
		"prefix of zero id":       func() { PartitionPrefix(TopicPartition{Topic: "a"}) },
		"negative base":           func() { SegmentKey(testTP, -1, 0, NewUID()) },
		"negative epoch":          func() { SegmentKey(testTP, 0, -1, NewUID()) },
		"topic prefix":            func() { TopicPrefix("..") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			fn()
		}()
	}
}

func TestIDsText(t *testing.T) {
	if got := testID.String(); got != "0123456789abcdeffedcba9876543210" {
		t.Errorf("TopicID.String = %q", got)
	}
	for _, s := range []string{"", "0123456789ABCDEFFEDCBA9876543210", "0123456789abcdeffedcba987654321", "0123456789abcdeffedcba98765432100", "0123456789abcdeffedcba987654321g"} {
		if _, err := ParseTopicID(s); err == nil {
			t.Errorf("ParseTopicID(%q) succeeded", s)
		}
	}
	seen := map[UID]bool{}
	for range 1000 {
		u := NewUID()
		if u == (UID{}) || seen[u] {
			t.Fatalf("NewUID returned %v, zero or repeated", u)
		}
		seen[u] = true
		back, err := ParseUID(u.String())
		if err != nil || back != u {
			t.Fatalf("ParseUID(%q) = %v, %v", u.String(), back, err)
		}
	}
	for _, s := range []string{"", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "0x23456789abcdef"} {
		if _, err := ParseUID(s); err == nil {
			t.Errorf("ParseUID(%q) succeeded", s)
		}
	}
}
