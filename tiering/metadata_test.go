package tiering

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stratalog/strata/objectstore"
)

func testMetadata() *ClusterMetadata {
	return NewClusterMetadata("MkU3OEVBNTcwNTJENDM2Qk", time.UnixMilli(1_700_000_000_000), []TopicMetadata{
		{Name: "orders", ID: testID, Partitions: 6, Configs: map[string]string{"retention.ms": "604800000", "cleanup.policy": "delete"}},
		{Name: "__consumer_offsets", ID: TopicID{15: 7}, Partitions: 50, Configs: map[string]string{"cleanup.policy": "compact"}},
		{Name: "audit", ID: TopicID{0: 0xaa, 15: 1}, Partitions: 1},
	})
}

func TestMetadataRoundTrip(t *testing.T) {
	m := testMetadata()
	if names := []string{m.Topics[0].Name, m.Topics[1].Name, m.Topics[2].Name}; !reflect.DeepEqual(names, []string{"__consumer_offsets", "audit", "orders"}) {
		t.Fatalf("NewClusterMetadata did not sort: %v", names)
	}
	for _, in := range []*ClusterMetadata{m, NewClusterMetadata("c", time.UnixMilli(0), nil)} {
		b, err := in.Encode()
		if err != nil {
			t.Fatal(err)
		}
		out, err := DecodeMetadata(b)
		if err != nil {
			t.Fatalf("DecodeMetadata(%s): %v", b, err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("round trip:\n in  %+v\n out %+v", in, out)
		}
	}
	tm, ok := m.Topic("orders")
	if !ok || tm.ID != testID || tm.Partitions != 6 || tm.Partition(2) != (TopicPartition{"orders", testID, 2}) {
		t.Fatalf("Topic(orders) = %+v, %v", tm, ok)
	}
	if _, ok := m.Topic("nope"); ok {
		t.Fatal("Topic(nope) found")
	}
	b, _ := NewClusterMetadata("c", time.UnixMilli(5), nil).Encode()
	if want := `{"version":1,"clusterId":"c","updatedAtMs":5,"topics":[]}`; string(b) != want {
		t.Errorf("empty snapshot encodes to %s, want %s", b, want)
	}
}

func TestMetadataValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(m *ClusterMetadata)
		want   string
	}{
		{"version", func(m *ClusterMetadata) { m.Version = 0 }, "version 0"},
		{"empty cluster id", func(m *ClusterMetadata) { m.ClusterID = "" }, `clusterId "": length 0`},
		{"cluster id space", func(m *ClusterMetadata) { m.ClusterID = "a b" }, `clusterId "a b": character ' '`},
		{"cluster id long", func(m *ClusterMetadata) { m.ClusterID = strings.Repeat("c", 256) }, "length 256"},
		{"updated at", func(m *ClusterMetadata) { m.UpdatedAtMs = -1 }, "updatedAtMs -1"},
		{"topic name", func(m *ClusterMetadata) { m.Topics[1].Name = "a/b" }, `topics[1].name: tiering: not a key of the bucket layout: topic name "a/b"`},
		{"unsorted", func(m *ClusterMetadata) { m.Topics[0], m.Topics[1] = m.Topics[1], m.Topics[0] }, `topics[1].name "__consumer_offsets" is not after topics[0].name "audit"`},
		{"duplicate name", func(m *ClusterMetadata) { m.Topics[2].Name = "audit" }, `topics[2].name "audit" is not after`},
		{"zero id", func(m *ClusterMetadata) { m.Topics[0].ID = TopicID{} }, `topics[0] ("__consumer_offsets").id is zero`},
		{"duplicate id", func(m *ClusterMetadata) { m.Topics[2].ID = m.Topics[0].ID }, "is also topics[0]'s"},
		{"no partitions", func(m *ClusterMetadata) { m.Topics[1].Partitions = 0 }, `topics[1] ("audit").partitions 0`},
		{"too many partitions", func(m *ClusterMetadata) { m.Topics[1].Partitions = MaxPartitionsPerTopic + 1 }, "partitions 1000001"},
		{"config name", func(m *ClusterMetadata) { m.Topics[2].Configs["bad name"] = "1" }, `name "bad name"`},
		{"empty config name", func(m *ClusterMetadata) { m.Topics[2].Configs[""] = "1" }, `name ""`},
		{"config value", func(m *ClusterMetadata) {
			m.Topics[2].Configs["x"] = strings.Repeat("v", MaxConfigValueBytes+1)
		}, `configs["x"] is 65537 bytes`},
		{"config utf8", func(m *ClusterMetadata) { m.Topics[2].Configs["x"] = "\xff" }, `configs["x"] is not valid UTF-8`},
		{"too many configs", func(m *ClusterMetadata) {
			m.Topics[1].Configs = map[string]string{}
			for i := range MaxConfigsPerTopic + 1 {
				m.Topics[1].Configs[fmt.Sprintf("k%d", i)] = "v"
			}
		}, "configs, more than 1000"},
	}
	for _, c := range cases {
		m := testMetadata()
		if err := m.Validate(); err != nil {
			t.Fatalf("control: %v", err)
		}
		c.mutate(m)
		err := m.Validate()
		if !errors.Is(err, ErrInvalidMetadata) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate = %v; want ErrInvalidMetadata mentioning %q", c.name, err, c.want)
		}
		if _, err := m.Encode(); !errors.Is(err, ErrInvalidMetadata) {
			t.Errorf("%s: Encode = %v", c.name, err)
		}
	}
}

func TestDecodeMetadataRejects(t *testing.T) {
	good, err := testMetadata().Encode()
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	cases := map[string]struct{ in, want string }{
		"not json":      {"{", "unexpected EOF"},
		"unknown field": {strings.Replace(s, `"topics"`, `"brokers":[],"topics"`, 1), `unknown field "brokers"`},
		"nested field":  {strings.Replace(s, `"partitions":1`, `"partitions":1,"replicas":3`, 1), `unknown field "replicas"`},
		"trailing":      {s + "x", "data after the JSON object"},
		"newer version": {strings.Replace(strings.Replace(s, `"version":1`, `"version":7`, 1), `"topics"`, `"brokers":[],"topics"`, 1), "unsupported version 7"},
		"bad id":        {strings.Replace(s, testID.String(), "xyz", 1), `topic id "xyz"`},
		"partitions":    {strings.Replace(s, `"partitions":1`, `"partitions":-1`, 1), "partitions -1"},
	}
	for name, c := range cases {
		if _, err := DecodeMetadata([]byte(c.in)); !errors.Is(err, ErrInvalidMetadata) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: DecodeMetadata = %v; want ErrInvalidMetadata mentioning %q", name, err, c.want)
		}
	}
	if _, err := DecodeMetadata(make([]byte, MaxMetadataBytes+1)); !errors.Is(err, ErrInvalidMetadata) {
		t.Errorf("oversized: %v", err)
	}
}

func TestWriteReadMetadata(t *testing.T) {
	for _, conditional := range []bool{true, false} {
		ctx := context.Background()
		f := objectstore.NewFaulty(objectstore.NewMem(), 1)
		f.DisableConditional(!conditional)
		if _, _, err := ReadMetadata(ctx, f); !errors.Is(err, objectstore.ErrNotExist) {
			t.Fatalf("ReadMetadata of an empty bucket = %v, want ErrNotExist", err)
		}
		m1 := testMetadata()
		etag1, err := WriteMetadata(ctx, f, "", m1)
		if err != nil {
			t.Fatal(err)
		}
		got, etag, err := ReadMetadata(ctx, f)
		if err != nil || etag != etag1 || !reflect.DeepEqual(got, m1) {
			t.Fatalf("ReadMetadata = %+v, %q, %v; want %+v, %q", got, etag, err, m1, etag1)
		}
		// A writer that did not read the current snapshot conflicts.
		m2 := NewClusterMetadata(m1.ClusterID, time.UnixMilli(1_700_000_001_000), m1.Topics[:2])
		if _, err := WriteMetadata(ctx, f, "", m2); !errors.Is(err, ErrConflict) {
			t.Fatalf("conditional=%v: write without the current ETag = %v, want ErrConflict", conditional, err)
		}
		// A write whose reply is lost is recognised.
		f.Add(objectstore.Fault{Ops: objectstore.OpAllPuts, Kind: objectstore.FaultErrorAfter, Times: 1})
		etag2, err := WriteMetadata(ctx, f, etag1, m2)
		if err != nil || f.Injected() != 1 {
			t.Fatalf("conditional=%v: write with a lost reply = %v (%d faults)", conditional, err, f.Injected())
		}
		if got, etag, _ := ReadMetadata(ctx, f); etag != etag2 || !reflect.DeepEqual(got, m2) {
			t.Fatalf("after the lost reply: %+v %q", got, etag)
		}
		// Repeating the write is harmless.
		if again, err := WriteMetadata(ctx, f, etag1, m2); err != nil || again != etag2 {
			t.Fatalf("repeated write = %q, %v", again, err)
		}
		// Another cluster's snapshot is never overwritten.
		alien := NewClusterMetadata("another-cluster", time.UnixMilli(0), nil)
		if _, err := WriteMetadata(ctx, f, etag2, alien); !errors.Is(err, ErrClusterMismatch) {
			t.Fatalf("write of another cluster's snapshot = %v, want ErrClusterMismatch", err)
		}
		if _, err := WriteMetadata(ctx, f, etag2, &ClusterMetadata{}); !errors.Is(err, ErrInvalidMetadata) {
			t.Fatalf("write of an invalid snapshot = %v", err)
		}
	}
}

// Two writers racing between WriteMetadata's read and its put: with
// conditional puts the second fails with ErrConflict instead of
// overwriting.
func TestWriteMetadataRace(t *testing.T) {
	ctx := context.Background()
	mem := objectstore.NewMem()
	hs := &hookStore{Store: mem}
	m1 := testMetadata()
	etag, err := WriteMetadata(ctx, hs, "", m1)
	if err != nil {
		t.Fatal(err)
	}
	winner := NewClusterMetadata(m1.ClusterID, time.UnixMilli(1_800_000_000_000), m1.Topics[:1])
	hs.setHook(func() {
		if _, err := WriteMetadata(ctx, mem, etag, winner); err != nil {
			t.Errorf("the racing write failed: %v", err)
		}
	})
	loser := NewClusterMetadata(m1.ClusterID, time.UnixMilli(1_800_000_000_001), m1.Topics[1:])
	if _, err := WriteMetadata(ctx, hs, etag, loser); !errors.Is(err, ErrConflict) {
		t.Fatalf("racing write = %v, want ErrConflict", err)
	}
	got, _, err := ReadMetadata(ctx, mem)
	if err != nil || !reflect.DeepEqual(got, winner) {
		t.Fatalf("stored %+v (%v), want the winner's", got, err)
	}
	// A corrupt snapshot in the bucket is reported, not overwritten.
	junk := []byte(`{"version":1}`)
	if _, err := mem.Put(ctx, MetadataKey, bytes.NewReader(junk), int64(len(junk))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadMetadata(ctx, mem); !errors.Is(err, ErrInvalidMetadata) {
		t.Fatalf("ReadMetadata of a corrupt snapshot = %v", err)
	}
	if _, err := WriteMetadata(ctx, mem, "", m1); !errors.Is(err, ErrInvalidMetadata) {
		t.Fatalf("WriteMetadata over a corrupt snapshot = %v", err)
	}
}
