package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRestartKeepsEverything: records in several topics (plain and compressed batches), a topic
// config override and the topics themselves survive two clean restarts (SIGTERM, exit 0, start);
// offsets continue after the restart instead of being reused.
func TestRestartKeepsEverything(t *testing.T) {
	// Small segments and a dense index, so the data spans many segment files and indexes.
	b := startStrata(t, "--internal.segment.bytes=131072", "--index.interval.bytes=1024")
	const n = 4000
	topics := []struct {
		name       string
		partitions int32
		codec      kgo.CompressionCodec
	}{
		{"restart-one", 1, kgo.NoCompression()},
		{"restart-four", 4, kgo.ZstdCompression()},
	}
	retention := "86400000"
	for _, tp := range topics {
		b.createTopic(t, tp.name, tp.partitions, map[string]*string{"retention.ms": &retention})
		cl := b.kgoClient(t, kgo.DefaultProduceTopic(tp.name), kgo.ProducerBatchCompression(tp.codec),
			kgo.ProducerLinger(2*time.Millisecond))
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = &kgo.Record{Key: recKey(i), Value: recValue(tp.name, i)}
		}
		err := cl.ProduceSync(ctx, recs...).FirstErr()
		cancel()
		if err != nil {
			t.Fatalf("produce to %s: %v", tp.name, err)
		}
		cl.Close()
	}

	// A consumer that lives across the restarts: it reads everything now, and after the restarts
	// it must go on to read the record produced then (its connections and fetch session are
	// gone; the client reconnects and the broker serves it from where it was).
	live := b.kgoClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"restart-one": {0: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.MetadataMinAge(100*time.Millisecond))
	liveNext := int64(0)
	liveRead := func(upTo int64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		for liveNext < upTo {
			fs := live.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("live consumer: at offset %d of %d after %v", liveNext, upTo, opTimeout)
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Logf("live consumer: fetch error (retried): %v", err) })
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != liveNext {
					t.Fatalf("live consumer: got offset %d, want %d", r.Offset, liveNext)
				}
				liveNext++
			})
		}
	}
	liveRead(n)

	for round := 1; round <= 2; round++ {
		b.Stop()
		b.Restart()
		// A clean shutdown leaves nothing to recover or repair: the new start logs no warning.
		for _, l := range b.LogOfStart(b.Starts()) {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				t.Errorf("round %d: the start after a clean shutdown logged: %s", round, l)
			}
		}
		for _, tp := range topics {
			got := b.consumeAll(t, tp.name)
			checkRecValues(t, tp.name, tp.name, n, got)
		}
		// The topic config override survived too.
		cl := b.kgoClient(t)
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, topics[0].name)
		cancel()
		if err != nil {
			t.Fatalf("round %d: DescribeTopicConfigs: %v", round, err)
		}
		rc, err := rcs.On(topics[0].name, nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("round %d: DescribeTopicConfigs %s: %v %v", round, topics[0].name, err, rc.Err)
		}
		found := false
		for _, c := range rc.Configs {
			if c.Key == "retention.ms" {
				found = true
				if c.MaybeValue() != retention {
					t.Errorf("round %d: retention.ms = %q after restart, want %q", round, c.MaybeValue(), retention)
				}
			}
		}
		if !found {
			t.Errorf("round %d: retention.ms missing from DescribeConfigs after restart", round)
		}
	}

	// New records get new offsets: nothing is reused after a restart.
	ends := b.endOffsets(t, "restart-one")
	cl := b.kgoClient(t, kgo.DefaultProduceTopic("restart-one"))
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	r := &kgo.Record{Value: []byte("after-restart")}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatalf("produce after restart: %v", err)
	}
	if r.Offset != ends[0] {
		t.Fatalf("record produced after restart got offset %d, want %d (the end offset before it)", r.Offset, ends[0])
	}
	liveRead(ends[0] + 1)
}

// ackLog records acknowledged produces from promise callbacks (which run concurrently).
type ackLog struct {
	mu    sync.Mutex
	acked []*kgo.Record
	errs  []error
	n     atomic.Int64
}

func (a *ackLog) promise(r *kgo.Record, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.errs = append(a.errs, fmt.Errorf("record %q: %w", label(r.Value), err))
		return
	}
	a.acked = append(a.acked, r)
	a.n.Add(1)
}

// waitAcked waits until at least n records were acknowledged (hang guard: opTimeout).
func (a *ackLog) waitAcked(t testing.TB, n int64, producerDone <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(opTimeout)
	for a.n.Load() < n {
		select {
		case <-producerDone:
			t.Fatalf("producer stopped after %d acknowledged records, before %d", a.n.Load(), n)
		default:
		}
		if time.Now().After(deadline) {
			a.mu.Lock()
			errs := a.errs
			a.mu.Unlock()
			t.Fatalf("only %d records acknowledged after %v (errors: %v)", a.n.Load(), opTimeout, errors.Join(errs...))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// streamUntil streams records recValue(tag, i), i = first, first+1, … with a franz-go producer
// (acks=all, idempotence off, up to 5 requests in flight) until `after` records are acknowledged,
// then calls interrupt (which stops the broker somehow), closes the producer and returns the
// records that were acknowledged and the next unused i.
func streamUntil(t *testing.T, b *strataProc, topic, tag string, first int, after int64, interrupt func()) ([]*kgo.Record, int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(),
		kgo.MaxProduceRequestsInflightPerBroker(5), kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchMaxBytes(64<<10))
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()
	var acks ackLog
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	next := first
	go func() {
		defer close(done)
		for ; ctx.Err() == nil; next++ {
			cl.Produce(ctx, &kgo.Record{Key: recKey(next), Value: recValue(tag, next)}, acks.promise)
		}
	}()
	acks.waitAcked(t, after, done)
	interrupt()
	cancel()
	<-done
	cl.Close() // fails whatever was not acknowledged
	acks.mu.Lock()
	defer acks.mu.Unlock()
	return append([]*kgo.Record(nil), acks.acked...), next
}

// checkAcked checks that every acknowledged record is at its offset, byte-exact, and that within
// each partition the sequence numbers (the producer's order) increase with the offset.
func checkAcked(t *testing.T, topic, tag string, acked []*kgo.Record, got map[int32][]*kgo.Record) {
	t.Helper()
	for _, r := range acked {
		g := got[r.Partition]
		if r.Offset >= int64(len(g)) {
			t.Fatalf("acknowledged record %s at %d/%d is gone after the restart (partition has %d records)",
				label(r.Value), r.Partition, r.Offset, len(g))
		}
		if string(g[r.Offset].Value) != string(r.Value) || string(g[r.Offset].Key) != string(r.Key) {
			t.Fatalf("%d/%d holds %s after the restart, but %s was acknowledged there", r.Partition, r.Offset,
				label(g[r.Offset].Value), label(r.Value))
		}
	}
	present := 0
	for part, rs := range got {
		last := -1
		for _, r := range rs {
			present++
			var seq int
			if _, err := fmt.Sscanf(string(r.Value), tag+":%07d:", &seq); err != nil {
				t.Fatalf("%d/%d: unexpected value %s", part, r.Offset, label(r.Value))
			}
			if seq <= last {
				t.Fatalf("%d/%d: record %d after record %d (order broken)", part, r.Offset, seq, last)
			}
			last = seq
		}
	}
	t.Logf("%s: %d records present, %d acknowledged", topic, present, len(acked))
}

// TestKill9DuringAcksAllStream: a franz-go producer (acks=all) streams records and the broker is
// killed with SIGKILL mid-stream, three times, with small segments so kills land around segment
// rolls too. After each restart every record that was ever acknowledged is at the offset it was
// acknowledged with, byte-exact, in the order it was produced.
func TestKill9DuringAcksAllStream(t *testing.T) {
	b := startStrata(t, "--internal.segment.bytes=131072", "--index.interval.bytes=1024")
	const topic, tag = "kill9-acks-all", "kill9"
	b.createTopic(t, topic, 3, nil)
	var acked []*kgo.Record
	next := 0
	for round := 1; round <= 3; round++ {
		var a []*kgo.Record
		a, next = streamUntil(t, b, topic, tag, next, 15_000, b.Kill)
		acked = append(acked, a...)
		b.Restart()
		checkAcked(t, topic, tag, acked, b.consumeAll(t, topic))
	}
}

// TestSIGTERMDuringAcksAllStream: SIGTERM while a producer streams: the broker finishes in-flight
// requests, exits 0, keeps every acknowledged record, and the next start finds a clean log (it
// logs no warning: nothing to recover).
func TestSIGTERMDuringAcksAllStream(t *testing.T) {
	b := startStrata(t, "--internal.segment.bytes=131072")
	const topic, tag = "sigterm-acks-all", "sigterm"
	b.createTopic(t, topic, 3, nil)
	acked, _ := streamUntil(t, b, topic, tag, 0, 15_000, b.Stop)
	b.Restart()
	for _, l := range b.LogOfStart(2) {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			t.Errorf("the start after SIGTERM logged: %s", l)
		}
	}
	checkAcked(t, topic, tag, acked, b.consumeAll(t, topic))
}

// TestIdempotentProducerAcrossKill9: an idempotent franz-go producer keeps producing while the
// broker is killed with SIGKILL and restarted, twice; the client retries with the same producer id
// and sequence numbers. Afterwards every record is present exactly once, in order, at the offset
// it was acknowledged with.
func TestIdempotentProducerAcrossKill9(t *testing.T) {
	b := startStrata(t, "--internal.segment.bytes=262144")
	const topic, tag, n = "idempotent-kill9", "idem", 60_000
	b.createTopic(t, topic, 3, nil)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchMaxBytes(64<<10), kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.MetadataMinAge(100*time.Millisecond)) // else the client waits 5 s before re-reading metadata after the kill
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()

	var acks ackLog
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	done := make(chan struct{})
	var flushErr error
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			cl.Produce(ctx, &kgo.Record{Key: recKey(i), Value: recValue(tag, i)}, acks.promise)
		}
		flushErr = cl.Flush(ctx)
	}()
	for _, at := range []int64{n / 3, 2 * n / 3} {
		acks.waitAcked(t, at, done)
		b.Kill()
		time.Sleep(300 * time.Millisecond) // let the client notice and retry against a dead port
		b.Restart()
	}
	<-done
	if flushErr != nil {
		t.Fatalf("flush: %v", flushErr)
	}
	acks.mu.Lock()
	errs, acked := acks.errs, acks.acked
	acks.mu.Unlock()
	if len(errs) > 0 {
		t.Fatalf("%d records failed (first ones: %v)", len(errs), errors.Join(errs[:min(5, len(errs))]...))
	}
	if len(acked) != n {
		t.Fatalf("%d records acknowledged, want %d", len(acked), n)
	}
	got := b.consumeAll(t, topic)
	checkRecValues(t, topic, tag, n, got) // exactly once, in order
	for _, r := range acked {
		g := got[r.Partition]
		if r.Offset >= int64(len(g)) || string(g[r.Offset].Value) != string(r.Value) {
			t.Fatalf("record %q was acknowledged at %d/%d but is not there", label(r.Value), r.Partition, r.Offset)
		}
	}
}
