package e2e

import (
	"context"
	"fmt"
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
	resp, err := adm.CreateTopics(ctx, partitions, 1, nil, names...)
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
	check("before restart")
	b.Stop()
	b.Restart()
	check("after a clean restart")
	b.Kill()
	b.Restart()
	check("after kill -9 and restart")
}
