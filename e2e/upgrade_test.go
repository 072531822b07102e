package e2e

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/internal/harness"
)

// testdata/single-node-v1 is a data directory written by Strata before
// the metadata log (commit 81c1f42, --object-store=none,
// --offsets.topic.num.partitions=3): topics.json with topic "legacy" (id
// XXL0KkKlTV693vbsHW25uQ, 3 partitions, retention.ms=86400000), 100
// records per partition (key k<i>, value legacy-<p>-<i>), group
// "legacy-group" with offsets 40, 41, 42 committed on partitions 0–2, and
// producer ids reserved below 1000 (producer-ids).
const (
	legacyFixture = "testdata/single-node-v1"
	legacyTopicID = "XXL0KkKlTV693vbsHW25uQ"
	legacyCluster = "uJuGEwMkJBVKIy3-xIh9GQ"
)

// TestSingleNodeUpgrade: a single-node data directory of the release
// before the metadata log starts under this one with nothing lost: the
// topic keeps its id, partitions and override, every record reads back
// byte-exact at its offset, the group's committed offsets are there, the
// cluster id is kept, and topics.json is retired. New records go on at
// the next offsets, and all of it survives another restart.
func TestSingleNodeUpgrade(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.CopyFS(dir, os.DirFS(legacyFixture)); err != nil {
		t.Fatal(err)
	}
	b := &strataProc{Broker: harness.Start(t, harness.Options{DataDir: dir, StopTimeout: stopTimeout,
		Args: []string{"--object-store=none"}}), t: t}
	check := func(extra int) {
		t.Helper()
		cl := b.kgoClient(t)
		adm := kadm.NewClient(cl)
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		md, err := adm.Metadata(ctx, "legacy")
		if err != nil {
			t.Fatal(err)
		}
		td := md.Topics["legacy"]
		if td.Err != nil || len(td.Partitions) != 3 || base64.RawURLEncoding.EncodeToString(td.ID[:]) != legacyTopicID || md.Cluster != legacyCluster {
			t.Fatalf("legacy topic: err %v, %d partitions, id %s (want %s), cluster %q (want %q)", td.Err, len(td.Partitions), td.ID, legacyTopicID, md.Cluster, legacyCluster)
		}
		rcs, err := adm.DescribeTopicConfigs(ctx, "legacy")
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On("legacy", nil)
		if err != nil {
			t.Fatal(err)
		}
		var retention string
		for _, c := range rc.Configs {
			if c.Key == "retention.ms" && c.Source == kmsg.ConfigSourceDynamicTopicConfig {
				retention = c.MaybeValue()
			}
		}
		if retention != "86400000" {
			t.Errorf("retention.ms override: %q, want 86400000", retention)
		}
		offs, err := adm.FetchOffsets(ctx, "legacy-group")
		if err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < 3; p++ {
			if o, ok := offs.Lookup("legacy", p); !ok || o.At != int64(40+p) {
				t.Errorf("legacy-group offset of partition %d: %+v (found %v), want %d", p, o, ok, 40+p)
			}
		}
		ends := map[int32]int64{0: int64(100 + extra), 1: 100, 2: 100}
		want := func(p int32, off int64) string {
			if off >= 100 {
				return fmt.Sprintf("after-upgrade-%d", off)
			}
			return fmt.Sprintf("legacy-%d-%d", p, off)
		}
		if err := consumeStream(ctx, b.Addr(), "legacy", ends, func(r *kgo.Record) error {
			if string(r.Value) != want(r.Partition, r.Offset) {
				return fmt.Errorf("partition %d offset %d: %q, want %q", r.Partition, r.Offset, r.Value, want(r.Partition, r.Offset))
			}
			if r.Offset < 100 && string(r.Key) != fmt.Sprintf("k%d", r.Offset) {
				return fmt.Errorf("partition %d offset %d: key %q", r.Partition, r.Offset, r.Key)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	check(0)
	if _, err := os.Stat(filepath.Join(dir, "topics.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("topics.json still in use after the upgrade: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "topics.json.adopted")); err != nil {
		t.Errorf("topics.json not kept as topics.json.adopted: %v", err)
	}

	prod := b.kgoClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	// The old node had reserved producer ids below 1000 (its producer-ids
	// file): the cluster's ids go on past them.
	if pid, _, err := prod.ProducerID(ctx); err != nil || pid < 1000 {
		t.Errorf("producer id after the upgrade: %d, %v; want at least 1000", pid, err)
	}
	for i := 100; i < 110; i++ {
		r := &kgo.Record{Topic: "legacy", Partition: 0, Value: []byte(fmt.Sprintf("after-upgrade-%d", i))}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if r.Offset != int64(i) {
			t.Fatalf("new record at offset %d, want %d", r.Offset, i)
		}
	}
	b.Stop()
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	check(10)
}
