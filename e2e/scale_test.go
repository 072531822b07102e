package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestConcurrentProducers: eight franz-go clients (idempotent, acks=all, each its own producer
// id) produce to the same three partitions at once while a consumer reads; afterwards each
// producer's records are all there exactly once, in that producer's order within each partition.
func TestConcurrentProducers(t *testing.T) {
	b := startStrata(t)
	const topic, producers, each = "concurrent-producers", 8, 4000
	b.createTopic(t, topic, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := 0; p < producers; p++ {
		cl := b.kgoClient(t, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond),
			kgo.ProducerBatchCompression([]kgo.CompressionCodec{kgo.NoCompression(), kgo.ZstdCompression()}[p%2]))
		wg.Add(1)
		go func() {
			defer wg.Done()
			tag := fmt.Sprintf("p%d", p)
			recs := make([]*kgo.Record, each)
			for i := range recs {
				recs[i] = &kgo.Record{Key: recKey(i), Value: recValue(tag, i)}
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				errs <- fmt.Errorf("producer %d: %w", p, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := b.consumeAll(t, topic)
	for p := 0; p < producers; p++ {
		tag := fmt.Sprintf("p%d", p)
		mine := map[int32][]*kgo.Record{}
		for part, rs := range got {
			for _, r := range rs {
				if strings.HasPrefix(string(r.Value), tag+":") {
					mine[part] = append(mine[part], r)
				}
			}
		}
		checkRecValues(t, topic, tag, each, mine)
	}
}

// TestManyPartitionsRestart: 100 topics of 10 partitions each (1,000 partitions, each with its
// segment and index files) are created, written and survive a clean restart and a kill -9.
func TestManyPartitionsRestart(t *testing.T) {
	b := startStrata(t)
	const topics, partitions = 100, 10
	cl := b.kgoClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var names []string
	for i := 0; i < topics; i++ {
		names = append(names, fmt.Sprintf("many-%03d", i))
	}
	tc := time.Now()
	resp, err := adm.CreateTopics(ctx, partitions, 1, nil, names...)
	t.Logf("create: %v", time.Since(tc))
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	for _, r := range resp {
		if r.Err != nil {
			t.Fatalf("CreateTopics %s: %v (%s)", r.Topic, r.Err, r.ErrMessage)
		}
	}
	var recs []*kgo.Record
	for _, name := range names {
		for p := int32(0); p < partitions; p++ {
			for i := 0; i < 3; i++ {
				recs = append(recs, &kgo.Record{Topic: name, Partition: p, Key: recKey(i), Value: recValue(fmt.Sprintf("%s/%d", name, p), i)})
			}
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %d partitions: %v", topics*partitions, err)
	}
	cl.Close()

	check := func(when string) {
		t.Helper()
		cl := b.kgoClient(t)
		adm := kadm.NewClient(cl)
		ends, err := adm.ListEndOffsets(ctx, names...)
		if err != nil {
			t.Fatalf("%s: ListEndOffsets: %v", when, err)
		}
		n := 0
		ends.Each(func(o kadm.ListedOffset) {
			n++
			if o.Err != nil || o.Offset != 3 {
				t.Errorf("%s: %s/%d end offset %d (%v), want 3", when, o.Topic, o.Partition, o.Offset, o.Err)
			}
		})
		if n != topics*partitions {
			t.Fatalf("%s: %d partitions listed, want %d", when, n, topics*partitions)
		}
		// Read a sample back byte for byte: the first and last topics, every partition.
		for _, name := range []string{names[0], names[len(names)-1]} {
			got := b.consumeAll(t, name)
			for p := int32(0); p < partitions; p++ {
				checkRecValues(t, name, fmt.Sprintf("%s/%d", name, p), 3, map[int32][]*kgo.Record{p: got[p]})
			}
		}
	}
	t0 := time.Now()
	check("before restart")
	t.Logf("check: %v", time.Since(t0))
	t0 = time.Now()
	b.Stop()
	t.Logf("stop: %v", time.Since(t0))
	t0 = time.Now()
	b.Restart()
	t.Logf("restart: %v", time.Since(t0))
	check("after a clean restart")
	b.Kill()
	b.Restart()
	check("after kill -9 and restart")
}

// TestRetention: with the retention check every 200 ms, a topic limited by retention.bytes and
// one whose records carry 25-year-old timestamps (retention.ms = 1 hour) lose their old closed
// segments — whole segments, never the active one: the retention-bytes topic's closed segments
// shrink to at most retention.bytes, the retention-ms topic keeps only its active segment — and
// consumers starting "at the start" read intact records from the new log start to the end.
func TestRetention(t *testing.T) {
	b := startStrata(t, "--log.retention.check.interval.ms=200")
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	const retentionBytes = 65536
	seg, rbytes, rms := "16384", strconv.Itoa(retentionBytes), "3600000"
	cases := []struct {
		topic   string
		configs map[string]*string
		ts      time.Time
	}{
		{"retention-bytes", map[string]*string{"internal.segment.bytes": &seg, "retention.bytes": &rbytes}, time.Time{}},
		{"retention-ms", map[string]*string{"internal.segment.bytes": &seg, "retention.ms": &rms}, time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	const n = 2000
	for _, c := range cases {
		b.createTopic(t, c.topic, 1, c.configs)
		cl := b.kgoClient(t, kgo.DefaultProduceTopic(c.topic))
		for i := 0; i < n; i += 100 { // 20 batches of ~50 KiB: one segment each (segment.bytes 16 KiB)
			recs := make([]*kgo.Record, 100)
			for j := range recs {
				recs[j] = &kgo.Record{Key: recKey(i + j), Value: recValue(c.topic, i+j), Timestamp: c.ts}
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatalf("%s: produce: %v", c.topic, err)
			}
		}
	}
	for _, c := range cases {
		adm := kadm.NewClient(b.kgoClient(t))
		deadline := time.Now().Add(opTimeout)
		var start int64
		for {
			starts, err := adm.ListStartOffsets(ctx, c.topic)
			if err != nil {
				t.Fatalf("%s: ListStartOffsets: %v", c.topic, err)
			}
			o, _ := starts.Lookup(c.topic, 0)
			if o.Err != nil {
				t.Fatalf("%s: ListStartOffsets: %v", c.topic, o.Err)
			}
			start = o.Offset
			segs, err := localSegments(b.DataDir(), c.topic, 0)
			if err != nil {
				t.Fatalf("%s: %v", c.topic, err)
			}
			active, closedBytes := segs[len(segs)-1].base, int64(0)
			for _, sg := range segs[:len(segs)-1] {
				closedBytes += sg.size
			}
			done := false
			switch c.topic {
			case "retention-bytes":
				done = start > 0 && closedBytes <= retentionBytes
			case "retention-ms":
				done = len(segs) == 1 && start == active
			}
			if done {
				t.Logf("%s: log start %d, %d segment files, %d bytes in closed segments: %v", c.topic, start, len(segs), closedBytes, segs)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: after %v, log start %d, %d segment files, %d bytes in closed segments: retention did not bring the log within its limit",
					c.topic, opTimeout, start, len(segs), closedBytes)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if end := b.endOffsets(t, c.topic)[0]; end != n || start >= end {
			t.Fatalf("%s: log start %d, end %d after retention (want 0 < start < end = %d: the active segment stays)", c.topic, start, end, n)
		}
		cons := b.kgoClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.topic: {0: kgo.NewOffset().AtStart()}}),
			kgo.FetchMaxWait(200*time.Millisecond))
		first := int64(-1)
		for next := int64(-1); next != n; {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("%s: consuming from the start: %v", c.topic, ctx.Err())
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Logf("%s: fetch error (retried): %v", c.topic, err) })
			fs.EachRecord(func(r *kgo.Record) {
				if next == -1 {
					first, next = r.Offset, r.Offset
				}
				if r.Offset != next || string(r.Value) != string(recValue(c.topic, int(next))) {
					t.Fatalf("%s: read %s at offset %d, want record %d", c.topic, label(r.Value), r.Offset, next)
				}
				next++
			})
		}
		if first != start {
			t.Errorf("%s: a consumer starting at the log start (%d) read offset %d first", c.topic, start, first)
		}
	}
}
