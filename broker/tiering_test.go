package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/tiering"
	"github.com/stratalog/strata/topicconfig"
)

// tierBroker is a broker with tiered storage on a file store outside its
// data directory, so that the data directory can be wiped and the bucket
// kept. Loops run every few milliseconds.
type tierBroker struct {
	t           *testing.T
	dataDir     string
	bucket      string            // file store directory
	store       objectstore.Store // instead of the file store, if set
	orphanGrace time.Duration     // remote.log.orphan.grace.ms, if set
	b           *Broker
	addr        string
	stop        func()
}

func newTierBroker(t *testing.T) *tierBroker {
	return newTierBrokerWith(t, nil)
}

// newTierBrokerWith uses store (when not nil) instead of the file store.
func newTierBrokerWith(t *testing.T, store objectstore.Store) *tierBroker {
	tb := &tierBroker{t: t, dataDir: t.TempDir(), bucket: t.TempDir(), store: store}
	tb.start()
	t.Cleanup(func() {
		if tb.stop != nil {
			tb.stop()
		}
	})
	return tb
}

func (tb *tierBroker) start() {
	t := tb.t
	t.Helper()
	b, err := New(Config{
		NodeID: 1, Listen: "127.0.0.1:0", DataDir: tb.dataDir,
		SocketRequestMaxBytes: 100 << 20, ConnectionsMaxIdle: 10 * time.Minute, MaxInFlightPerConnection: 100,
		NumPartitions: 1, DefaultReplicationFactor: 1, MaxIncrementalFetchSessions: 1000,
		RetentionCheckInterval: 50 * time.Millisecond,
		TopicDefaults:          topicconfig.Default(),
		Tiering: TieringConfig{
			ObjectStore:  (&url.URL{Scheme: "file", Path: tb.bucket}).String(),
			TaskInterval: 20 * time.Millisecond,
			CacheBytes:   64 << 20,
			FetchMaxWait: 200 * time.Millisecond,
			OrphanGrace:  tb.orphanGrace,
			Store:        tb.store,
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve(ln) }()
	tb.b, tb.addr = b, ln.Addr().String()
	tb.stop = func() {
		tb.stop = nil
		if err := b.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
}

func (tb *tierBroker) client(opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(tb.addr)}, opts...)...)
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Cleanup(cl.Close)
	return cl
}

// status returns partition p of topic's tiering status.
func (tb *tierBroker) status(topic string, p int32) TieringPartitionStatus {
	parts, _ := tb.b.TieringStatus(topic)
	for _, s := range parts {
		if s.Partition == p {
			return s
		}
	}
	tb.t.Fatalf("no status for %s-%d", topic, p)
	return TieringPartitionStatus{}
}

func tierValue(i int) []byte { return fmt.Appendf(nil, "record-%06d-%s", i, make([]byte, 80)) }

// produceN produces n records to partition 0 with timestamps base+i ms.
func produceN(t *testing.T, cl *kgo.Client, topic string, from, n int, base time.Time) {
	t.Helper()
	for i := from; i < from+n; i++ {
		r := &kgo.Record{Topic: topic, Partition: 0, Value: tierValue(i), Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
}

// consumeFrom reads partition 0 from offset `from` to the high watermark
// and checks every value.
func consumeFrom(t *testing.T, tb *tierBroker, topic string, from int64) int {
	t.Helper()
	hw := tb.status(topic, 0).HighWatermark
	cl := tb.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}}), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	next := from
	for next < hw {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("fetch at %d: %v", next, err)
		}
		for _, r := range fs.Records() {
			if r.Offset != next || string(r.Value) != string(tierValue(int(next))) {
				t.Fatalf("record at offset %d (want %d): %.20q", r.Offset, next, r.Value)
			}
			next++
		}
	}
	return int(next - from)
}

func createTopicWith(t *testing.T, cl *kgo.Client, name string, configs map[string]*string) error {
	t.Helper()
	resp, err := kadm.NewClient(cl).CreateTopics(context.Background(), 1, 1, configs, name)
	if err != nil {
		return err
	}
	return resp[name].Err
}

func strp(s string) *string { return &s }

// TestTieringEndToEnd: segments upload as they roll, local retention keeps
// only the local bound, consumers read every offset across the remote and
// local tiers, ListOffsets answers from both, DeleteRecords and
// retention.bytes trim the remote tier, and a wiped data directory comes
// back from the bucket.
func TestTieringEndToEnd(t *testing.T) {
	tb := newTierBroker(t)
	cl := tb.client(kgo.ProducerLinger(0))
	const topic = "tiered"
	if err := createTopicWith(t, cl, topic, map[string]*string{
		"internal.segment.bytes": strp("4096"), "local.retention.bytes": strp("8192"),
	}); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour)
	produceN(t, cl, topic, 0, 600, base)

	waitFor(t, "uploads to catch up and local retention to run", func() bool {
		s := tb.status(topic, 0)
		return s.UploadLagBytes == 0 && s.RemoteSegments > 0 && s.LocalStartOffset > 100 && s.LocalBytes < 8192+2*4096+4096
	})
	st := tb.status(topic, 0)
	if st.LogStartOffset != 0 || st.RemoteStartOffset != 0 || st.RemoteEndOffset < st.LocalStartOffset {
		t.Fatalf("status %+v: want log start 0 from the remote tier, remote end ≥ local start", st)
	}
	if n := consumeFrom(t, tb, topic, 0); n != 600 {
		t.Fatalf("consumed %d records from 0, want 600", n)
	}
	if n := consumeFrom(t, tb, topic, 37); n != 600-37 {
		t.Fatalf("consumed %d records from 37", n)
	}

	adm := kadm.NewClient(cl)
	ctx := context.Background()
	earliest, err := adm.ListStartOffsets(ctx, topic)
	if err != nil || earliest[topic][0].Offset != 0 {
		t.Fatalf("earliest: %v %+v", err, earliest)
	}
	// A timestamp only remote segments hold.
	byTime, err := adm.ListOffsetsAfterMilli(ctx, base.Add(50*time.Millisecond).UnixMilli(), topic)
	if err != nil || byTime[topic][0].Offset != 50 {
		t.Fatalf("offset for the timestamp of record 50: %v %+v", err, byTime[topic][0])
	}

	// DeleteRecords below the local start trims the remote tier.
	del, err := adm.DeleteRecords(ctx, kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: 20}}})
	if err != nil || del[topic][0].Err != nil || del[topic][0].LowWatermark != 20 {
		t.Fatalf("DeleteRecords before 20: %v %+v", err, del)
	}
	if n := consumeFrom(t, tb, topic, 20); n != 580 {
		t.Fatalf("consumed %d from 20", n)
	}
	if s := tb.status(topic, 0); s.LogStartOffset != 20 {
		t.Fatalf("log start after DeleteRecords: %+v", s)
	}

	// retention.bytes covers local plus remote: the remote tier shrinks.
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.bytes", Value: strp("20000")}}, topic); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "remote retention", func() bool { return tb.status(topic, 0).LogStartOffset > 200 })
	s := tb.status(topic, 0)
	if n := consumeFrom(t, tb, topic, s.LogStartOffset); n != int(600-s.LogStartOffset) {
		t.Fatalf("consumed %d from the new log start %d", n, s.LogStartOffset)
	}

	// Roll the active segment (produce past segment.bytes), let it upload,
	// then wipe the data directory: the bucket brings everything back.
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.bytes"}}, topic); err != nil {
		t.Fatal(err)
	}
	produceN(t, cl, topic, 600, 60, base)
	waitFor(t, "the new segments to upload", func() bool {
		s := tb.status(topic, 0)
		return s.UploadLagBytes == 0 && s.RemoteEndOffset > 600
	})
	tieredEnd := tb.status(topic, 0).RemoteEndOffset
	start := tb.status(topic, 0).LogStartOffset
	tb.stop()
	if err := os.RemoveAll(tb.dataDir); err != nil {
		t.Fatal(err)
	}
	tb.start()
	s = tb.status(topic, 0)
	if s.LogStartOffset != start || s.LocalEndOffset != tieredEnd || s.RemoteEndOffset != tieredEnd {
		t.Fatalf("after the wipe: %+v, want log start %d and local end = remote end = %d", s, start, tieredEnd)
	}
	if n := consumeFrom(t, tb, topic, start); n != int(tieredEnd-start) {
		t.Fatalf("after the wipe consumed %d from %d, want %d", n, start, tieredEnd-start)
	}
	cl = tb.client(kgo.ProducerLinger(0))
	adm = kadm.NewClient(cl)
	produceN(t, cl, topic, int(tieredEnd), 5, base)
	if n := consumeFrom(t, tb, topic, start); n != int(tieredEnd+5-start) {
		t.Fatalf("after producing on the restored log consumed %d", n)
	}

	// Deleting the topic deletes its remote data.
	store, err := objectstore.NewFile(tb.bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	id := tb.b.topics.get(topic).id
	if _, err := adm.DeleteTopics(ctx, topic); err != nil {
		t.Fatal(err)
	}
	prefix := tiering.TopicPrefix(topic) + tiering.TopicID(id).String() + "/"
	waitFor(t, "the topic's objects to be deleted", func() bool {
		for _, err := range store.List(ctx, prefix) {
			return err != nil
		}
		return true
	})
	waitFor(t, "the cluster metadata to drop the topic", func() bool {
		md, _, err := tiering.ReadMetadata(ctx, store)
		if err != nil {
			return false
		}
		_, ok := md.Topic(topic)
		return !ok
	})
}

// TestTieringConfigRefusals: what Kafka refuses about remote storage.
func TestTieringConfigRefusals(t *testing.T) {
	tb := newTierBroker(t)
	cl := tb.client()
	err := createTopicWith(t, cl, "c1", map[string]*string{"cleanup.policy": strp("compact"), "remote.storage.enable": strp("true")})
	if !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("compacted + remote.storage.enable=true: %v, want INVALID_CONFIG", err)
	}
	// Compacted by default is simply not tiered.
	if err := createTopicWith(t, cl, "c2", map[string]*string{"cleanup.policy": strp("compact")}); err != nil {
		t.Fatal(err)
	}
	if tb.status("c2", 0).Tiered {
		t.Fatal("a compacted topic is tiered")
	}
	if err := createTopicWith(t, cl, "d1", nil); err != nil {
		t.Fatal(err)
	}
	if !tb.status("d1", 0).Tiered {
		t.Fatal("a topic with the defaults is not tiered although the broker has an object store")
	}
	adm := kadm.NewClient(cl)
	for _, kv := range [][2]string{{"remote.storage.enable", "false"}, {"cleanup.policy", "compact"}} {
		resp, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: kv[0], Value: strp(kv[1])}}, "d1")
		if err == nil {
			err = resp[0].Err
		}
		if !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("turning %s=%s on a tiered topic: %v, want INVALID_CONFIG", kv[0], kv[1], err)
		}
	}

	// Without an object store, an explicit true is refused.
	b, err := New(Config{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	_, err = b.topics.create("x", 1, map[string]*string{"remote.storage.enable": strp("true")})
	var ce *topicconfig.Error
	if !errors.As(err, &ce) || ce.Key != "remote.storage.enable" {
		t.Fatalf("remote.storage.enable=true without a store: %v", err)
	}
	if _, err := os.Stat(filepath.Join(b.cfg.DataDir, "remote-cache")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a broker without an object store made a remote cache directory: %v", err)
	}
}

// TestTieringSlowStoreFetch: a failing object store fails only the remote
// partition of a Fetch (KAFKA_STORAGE_ERROR), a slow one leaves it empty
// without error while the other partition's records come back, and once
// the store is healthy the remote records are served.
func TestTieringSlowStoreFetch(t *testing.T) {
	store := objectstore.NewFaulty(objectstore.NewMem(), 1)
	tb := newTierBrokerWith(t, store)
	cl := tb.client(kgo.ProducerLinger(0))
	if err := createTopicWith(t, cl, "remote", map[string]*string{"internal.segment.bytes": strp("4096"), "local.retention.bytes": strp("0")}); err != nil {
		t.Fatal(err)
	}
	if err := createTopicWith(t, cl, "local", map[string]*string{"remote.storage.enable": strp("false")}); err != nil {
		t.Fatal(err)
	}
	produceN(t, cl, "remote", 0, 200, time.Now())
	produceN(t, cl, "local", 0, 10, time.Now())
	waitFor(t, "the remote topic's head to be remote only", func() bool { return tb.status("remote", 0).LocalStartOffset > 100 })

	fetch := func() map[string]kmsgPartition {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 100, 1, 2<<20
		for _, name := range []string{"remote", "local"} {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = name, tb.b.topics.get(name).id
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.PartitionMaxBytes = 1 << 20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(context.Background(), cl)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]kmsgPartition{}
		for _, rt := range resp.Topics {
			name := tb.b.topics.getByID(rt.TopicID).name
			for _, rp := range rt.Partitions {
				out[name] = kmsgPartition{code: rp.ErrorCode, bytes: len(rp.RecordBatches)}
			}
		}
		return out
	}

	store.Add(objectstore.Fault{Ops: objectstore.OpGet})
	got := fetch()
	if got["remote"].code != kerr.KafkaStorageError.Code || got["local"].code != 0 {
		t.Fatalf("failing store: %+v, want KAFKA_STORAGE_ERROR for the remote partition only", got)
	}
	store.Clear()
	store.Add(objectstore.Fault{Ops: objectstore.OpGet, Latency: 2 * time.Second}) // 10× remote.fetch.max.wait.ms
	got = fetch()
	if got["remote"].code != 0 || got["remote"].bytes != 0 || got["local"].code != 0 || got["local"].bytes == 0 {
		t.Fatalf("slow store: %+v, want the remote partition empty without error and the local one with records", got)
	}
	store.Clear()
	if n := consumeFrom(t, tb, "remote", 0); n != 200 {
		t.Fatalf("after the store recovered consumed %d records, want 200", n)
	}
}

type kmsgPartition struct {
	code  int16
	bytes int
}

// The loop's schedule: after a failed round the next comes after the
// backoff, never sooner, however overdue retention and orphan cleanup are
// (the hot loop of issue 9 came from waiting min(backoff, time until the
// retention deadline) once that deadline had passed); a good round resets
// the backoff and waits for the interval or the next pass due.
func TestTierScheduleFailuresBackOff(t *testing.T) {
	const interval = 200 * time.Millisecond
	for _, c := range []struct {
		name   string
		jitter func(time.Duration) time.Duration
	}{
		{"shortest delays", func(time.Duration) time.Duration { return 0 }},
		{"longest delays", func(n time.Duration) time.Duration { return n - 1 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			now := time.Unix(1_700_000_000, 0)
			s := newTierSchedule(now, interval, 50*time.Millisecond, time.Second)
			s.backoff.Jitter = c.jitter
			rounds := 0
			prev := time.Duration(0)
			for end := now.Add(10 * time.Minute); now.Before(end); rounds++ {
				if !s.retentionDue(now) || (now.After(time.Unix(1_700_000_001, 0)) && !s.orphansDue(now)) {
					t.Fatal("a pass that was never run is not due")
				}
				d := s.wait(now, true)
				if d < interval/2 || d > maxTierBackoff || d < prev/2 {
					t.Fatalf("round %d: wait %v after a failure (previous %v); want within [%v, %v], not shrinking", rounds, d, prev, interval/2, maxTierBackoff)
				}
				prev = d
				now = now.Add(d)
			}
			// Shortest: 0.1, 0.2, 0.4, … 25.6 s (51 s in 10 rounds), then
			// 30 s each: 28 rounds in 10 minutes. Longest: about half.
			if rounds > 30 {
				t.Fatalf("%d rounds in 10 minutes of failures", rounds)
			}
			// A good round ran the due passes and resets the backoff.
			s.retentionDone(now)
			s.orphansDone(now, false)
			if d := s.wait(now, false); d != 50*time.Millisecond {
				t.Fatalf("wait after a good round: %v, want the retention interval 50ms (shorter than the task interval)", d)
			}
			if d := s.wait(now, true); d > interval {
				t.Fatalf("first wait after the backoff was reset: %v, want at most %v", d, interval)
			}
		})
	}
	// With passes far apart, a good round waits for the task interval.
	now := time.Unix(1_700_000_000, 0)
	s := newTierSchedule(now, interval, time.Hour, time.Hour)
	s.retentionDone(now)
	if d := s.wait(now, false); d != interval {
		t.Fatalf("wait after a good round: %v, want the task interval", d)
	}
	// Orphan passes: hourly, or one grace period after a pass that kept
	// objects a commit may soon cover.
	s = newTierSchedule(now, interval, time.Hour, 3*time.Second)
	if s.orphansDue(now) || !s.orphansDue(now.Add(3*time.Second)) {
		t.Fatal("the first orphan pass is not one grace period after the start")
	}
	s.orphansDone(now, true)
	if !s.orphansDue(now.Add(3 * time.Second)) {
		t.Fatal("a pass that kept objects is not followed by one a grace period later")
	}
	s.orphansDone(now, false)
	if s.orphansDue(now.Add(orphanCleanInterval-time.Second)) || !s.orphansDue(now.Add(orphanCleanInterval)) {
		t.Fatal("a pass that kept nothing is not followed by one after orphanCleanInterval")
	}
}

// countingStore counts reads of manifests (Get and Stat): the partition
// loops' rounds.
type countingStore struct {
	objectstore.Store
	manifestReads atomic.Int64
}

func (s *countingStore) count(key string) {
	if _, err := tiering.ParseManifestKey(key); err == nil {
		s.manifestReads.Add(1)
	}
}

func (s *countingStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, objectstore.ObjectInfo, error) {
	s.count(key)
	return s.Store.Get(ctx, key, off, n)
}

func (s *countingStore) Stat(ctx context.Context, key string) (objectstore.ObjectInfo, error) {
	s.count(key)
	return s.Store.Stat(ctx, key)
}

// fetchAt fetches partition 0 of topic from offset (dpFetchReq through
// the handler) and returns the partition's error code and record bytes.
func (tb *tierBroker) fetchAt(topic string, offset int64) (int16, int) {
	tb.t.Helper()
	p := dpFetch(tb.t, tb.b, dpFetchReq(12, topic, 0, offset)).Topics[0].Partitions[0]
	return p.ErrorCode, len(p.RecordBatches)
}

// TestTieringManifestLostOrCorrupt: after a restart with one partition's
// manifest deleted and another's corrupt, neither loop runs hot (manifest
// reads stay few), no object is deleted although orphan cleanup is due,
// reads, ListOffsets and DeleteRecords below the local log start answer
// KAFKA_STORAGE_ERROR (retriable) instead of OFFSET_OUT_OF_RANGE, local
// reads go on, and once the manifests are restored the history reads
// again from offset 0.
func TestTieringManifestLostOrCorrupt(t *testing.T) {
	tb := &tierBroker{t: t, dataDir: t.TempDir(), bucket: t.TempDir(), orphanGrace: time.Millisecond}
	openStore := func() *countingStore {
		fs, err := objectstore.NewFile(tb.bucket)
		if err != nil {
			t.Fatal(err)
		}
		return &countingStore{Store: fs}
	}
	tb.store = openStore()
	tb.start()
	t.Cleanup(func() {
		if tb.stop != nil {
			tb.stop()
		}
	})
	cl := tb.client(kgo.ProducerLinger(0))
	topics := []string{"lost", "corrupt"}
	for _, topic := range topics {
		if err := createTopicWith(t, cl, topic, map[string]*string{"internal.segment.bytes": strp("4096"), "local.retention.bytes": strp("0")}); err != nil {
			t.Fatal(err)
		}
		produceN(t, cl, topic, 0, 200, time.Now())
	}
	for _, topic := range topics {
		waitFor(t, topic+": the head to be remote only", func() bool { return tb.status(topic, 0).LocalStartOffset > 100 })
	}
	keys := map[string]string{}      // topic → manifest key
	manifests := map[string][]byte{} // topic → its bytes
	objects := map[string][]string{} // topic → segment object files
	localStart := map[string]int64{} // topic → local log start
	for _, topic := range topics {
		tp := tierPartitionOf(tb.b.topics.get(topic), 0)
		keys[topic] = tiering.ManifestKey(tp)
		localStart[topic] = tb.status(topic, 0).LocalStartOffset
		objects[topic], _ = filepath.Glob(filepath.Join(tb.bucket, tiering.SegmentsPrefix(tp), "*.seg"))
		if len(objects[topic]) < 3 {
			t.Fatalf("%s: %d segment objects", topic, len(objects[topic]))
		}
	}
	tb.stop()
	for _, topic := range topics {
		path := filepath.Join(tb.bucket, keys[topic])
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		manifests[topic] = b
	}
	if err := os.Remove(filepath.Join(tb.bucket, keys["lost"])); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tb.bucket, keys["corrupt"]), []byte(`{"version":2,"topic":`), 0o644); err != nil {
		t.Fatal(err)
	}

	store := openStore()
	tb.store = store
	tb.start()
	cl = tb.client()
	const window = 1500 * time.Millisecond
	time.Sleep(window)
	// The loops run every 20 ms when healthy; failing, they back off
	// (20, 40, 80, … ms): about 7 rounds each in the window. The hot loop
	// made thousands.
	if n := store.manifestReads.Load(); n > 40 {
		t.Errorf("%d manifest reads in %v of failures (two partitions)", n, window)
	}
	for _, topic := range topics {
		st := tb.status(topic, 0)
		if st.LastError == "" || st.RemoteSegments != 0 {
			t.Errorf("%s: status %+v; want the failure shown and no remote tier", topic, st)
		}
		for _, path := range objects[topic] {
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s: segment object deleted while the manifest is unavailable: %v", topic, err)
			}
		}
		if code, _ := tb.fetchAt(topic, 0); code != kerr.KafkaStorageError.Code {
			t.Errorf("%s: Fetch at 0: %v, want KAFKA_STORAGE_ERROR", topic, kerr.ErrorForCode(code))
		}
		if code, n := tb.fetchAt(topic, localStart[topic]); code != 0 || n == 0 {
			t.Errorf("%s: Fetch at the local log start %d: %v, %d bytes; want records", topic, localStart[topic], kerr.ErrorForCode(code), n)
		}
		for _, ts := range []int64{-2, 1} {
			if p := dpListOffsets(t, tb.b, 7, topic, ts, -1); p.ErrorCode != kerr.KafkaStorageError.Code {
				t.Errorf("%s: ListOffsets at %d: %v, want KAFKA_STORAGE_ERROR", topic, ts, kerr.ErrorForCode(p.ErrorCode))
			}
		}
		if p := dpListOffsets(t, tb.b, 7, topic, -1, -1); p.ErrorCode != 0 || p.Offset != 200 {
			t.Errorf("%s: ListOffsets latest: %v, %d; want 200", topic, kerr.ErrorForCode(p.ErrorCode), p.Offset)
		}
		del, err := kadm.NewClient(cl).DeleteRecords(context.Background(), kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: 10}}})
		if err != nil || !errors.Is(del[topic][0].Err, kerr.KafkaStorageError) {
			t.Errorf("%s: DeleteRecords: %v %+v; want KAFKA_STORAGE_ERROR", topic, err, del[topic][0])
		}
	}
	if !strings.Contains(tb.status("lost", 0).LastError, "manifest lost") || !strings.Contains(tb.status("corrupt", 0).LastError, "invalid manifest") {
		t.Errorf("status errors %q and %q", tb.status("lost", 0).LastError, tb.status("corrupt", 0).LastError)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Restored: the loops pick the manifests up, orphan cleanup (due since
	// the start) runs and keeps every listed object, and the history reads.
	for _, topic := range topics {
		if err := os.WriteFile(filepath.Join(tb.bucket, keys[topic]), manifests[topic], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, topic := range topics {
		waitFor(t, topic+": the restored manifest to load", func() bool {
			st := tb.status(topic, 0)
			return st.RemoteSegments > 0 && st.LastError == "" && st.LogStartOffset == 0
		})
		if n := consumeFrom(t, tb, topic, 0); n != 200 {
			t.Fatalf("%s: consumed %d records from 0 after the restore, want 200", topic, n)
		}
		for _, path := range objects[topic] {
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s: a listed segment object is gone after the restore: %v", topic, err)
			}
		}
	}
}
