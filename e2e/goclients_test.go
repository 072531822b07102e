package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const goCount = 5000 // records per codec and client

var kgoCodecs = []struct {
	name  string
	codec kgo.CompressionCodec
}{
	{"none", kgo.NoCompression()},
	{"gzip", kgo.GzipCompression()},
	{"snappy", kgo.SnappyCompression()},
	{"lz4", kgo.Lz4Compression()},
	{"zstd", kgo.ZstdCompression()},
}

// TestFranzGo: franz-go produces (idempotent, acks=all, linger) with each codec and consumes by
// partition; every record must come back byte-exact at the offset its produce was acknowledged at.
func TestFranzGo(t *testing.T) {
	b := startStrata(t)
	for _, c := range kgoCodecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "franz-go-" + c.name
			tag := "kgo-" + c.name
			b.createTopic(t, topic, 3, nil)
			cl := b.kgoClient(t, kgo.DefaultProduceTopic(topic),
				kgo.ProducerBatchCompression(c.codec), kgo.ProducerLinger(5*time.Millisecond))
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			recs := make([]*kgo.Record, goCount)
			for i := range recs {
				recs[i] = &kgo.Record{Key: recKey(i), Value: recValue(tag, i)}
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			got := b.consumeAll(t, topic)
			checkRecValues(t, topic, tag, goCount, got)
			for i, r := range recs {
				g := got[r.Partition]
				if r.Offset >= int64(len(g)) || string(g[r.Offset].Value) != string(r.Value) {
					t.Fatalf("record %d was acknowledged at %d/%d but is not there", i, r.Partition, r.Offset)
				}
			}
		})
	}
}

var saramaCodecs = []struct {
	name  string
	codec sarama.CompressionCodec
}{
	{"none", sarama.CompressionNone},
	{"gzip", sarama.CompressionGZIP},
	{"snappy", sarama.CompressionSnappy},
	{"lz4", sarama.CompressionLZ4},
	{"zstd", sarama.CompressionZSTD},
}

// TestSarama: sarama produces (SyncProducer, WaitForAll, batching by flush frequency) with each
// codec and consumes each partition from the oldest offset — with its default protocol version
// (2.8) and the newest it knows; sarama limits each request to the versions the broker advertises.
func TestSarama(t *testing.T) {
	b := startStrata(t)
	versions := []struct {
		name string
		v    sarama.KafkaVersion
	}{{"default", sarama.DefaultVersion}, {"newest", sarama.MaxVersion}}
	for _, ver := range versions {
		for _, c := range saramaCodecs {
			if ver.name == "default" && c.name != "none" && c.name != "zstd" {
				continue // the codecs' encoding does not depend on the protocol version; keep the run short
			}
			t.Run(ver.name+"/"+c.name, func(t *testing.T) {
				topic := fmt.Sprintf("sarama-%s-%s", ver.name, c.name)
				tag := "sarama-" + ver.name + "-" + c.name
				b.createTopic(t, topic, 3, nil)
				saramaRoundTrip(t, b, ver.v, c.codec, topic, tag)
			})
		}
	}
	b.logRequestVersions(t)
}

func saramaRoundTrip(t *testing.T, b *strataProc, v sarama.KafkaVersion, codec sarama.CompressionCodec, topic, tag string) {
	cfg := sarama.NewConfig()
	cfg.ClientID = "e2e-sarama"
	cfg.Version = v
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Compression = codec
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	cfg.Producer.Flush.Messages = 200
	cfg.Producer.Partitioner = sarama.NewHashPartitioner
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
	cfg.Metadata.AllowAutoTopicCreation = false

	p, err := sarama.NewSyncProducer([]string{b.Addr()}, cfg)
	if err != nil {
		t.Fatalf("sarama.NewSyncProducer: %v", err)
	}
	msgs := make([]*sarama.ProducerMessage, goCount)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Key: sarama.ByteEncoder(recKey(i)), Value: sarama.ByteEncoder(recValue(tag, i))}
	}
	if err := p.SendMessages(msgs); err != nil {
		var sb strings.Builder
		if pe, ok := err.(sarama.ProducerErrors); ok {
			for i, e := range pe {
				if i == 5 {
					break
				}
				fmt.Fprintf(&sb, "\n  %v", e.Err)
			}
		}
		p.Close()
		t.Fatalf("sarama SendMessages: %v%s", err, sb.String())
	}
	if err := p.Close(); err != nil {
		t.Fatalf("sarama producer close: %v", err)
	}

	perPart := map[int32]int64{}
	for _, m := range msgs {
		perPart[m.Partition]++
	}
	c, err := sarama.NewConsumer([]string{b.Addr()}, cfg)
	if err != nil {
		t.Fatalf("sarama.NewConsumer: %v", err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatalf("sarama Partitions: %v", err)
	}
	got := map[int32][]*kgo.Record{}
	for _, part := range parts {
		pc, err := c.ConsumePartition(topic, part, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("sarama ConsumePartition %d: %v", part, err)
		}
		deadline := time.After(opTimeout)
		for int64(len(got[part])) < perPart[part] {
			select {
			case m := <-pc.Messages():
				got[part] = append(got[part], &kgo.Record{Partition: part, Offset: m.Offset, Key: m.Key, Value: m.Value})
			case e := <-pc.Errors():
				pc.Close()
				t.Fatalf("sarama consume %s/%d: %v", topic, part, e)
			case <-deadline:
				pc.Close()
				t.Fatalf("sarama consume %s/%d: %d of %d records after %v", topic, part, len(got[part]), perPart[part], opTimeout)
			}
		}
		pc.Close()
		for i, r := range got[part] {
			if r.Offset != int64(i) {
				t.Fatalf("%s/%d: sarama record %d at offset %d", topic, part, i, r.Offset)
			}
		}
	}
	checkRecValues(t, topic, tag, goCount, got)
	for i, m := range msgs {
		g := got[m.Partition]
		if m.Offset >= int64(len(g)) || string(g[m.Offset].Value) != string(recValue(tag, i)) {
			t.Fatalf("sarama record %d was acknowledged at %d/%d but is not there", i, m.Partition, m.Offset)
		}
	}
}

// TestFranzGoAcksAndLimits: acks=0 and acks=1 produces are stored; records close to
// max.message.bytes come back through a consumer whose per-partition fetch limit is far smaller
// (the first batch is always returned whole); DeleteRecords moves the log start, and a consumer
// starting "at the start" begins there.
func TestFranzGoAcksAndLimits(t *testing.T) {
	b := startStrata(t)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()

	for _, a := range []struct {
		name string
		acks kgo.Acks
	}{{"acks0", kgo.NoAck()}, {"acks1", kgo.LeaderAck()}} {
		t.Run(a.name, func(t *testing.T) {
			topic, tag := "franz-go-"+a.name, "kgo-"+a.name
			b.createTopic(t, topic, 2, nil)
			cl := b.kgoClient(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(a.acks), kgo.DisableIdempotentWrite())
			recs := make([]*kgo.Record, 2000)
			for i := range recs {
				recs[i] = &kgo.Record{Key: recKey(i), Value: recValue(tag, i)}
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			// acks=0 is answered by nobody: wait (hang guard) until the records are readable.
			deadline := time.Now().Add(opTimeout)
			for {
				var total int64
				for _, end := range b.endOffsets(t, topic) {
					total += end
				}
				if total == int64(len(recs)) {
					break
				}
				if total > int64(len(recs)) || time.Now().After(deadline) {
					t.Fatalf("%s: end offsets add up to %d, want %d", topic, total, len(recs))
				}
				time.Sleep(20 * time.Millisecond)
			}
			checkRecValues(t, topic, tag, len(recs), b.consumeAll(t, topic))
		})
	}

	t.Run("big records, small fetch limits", func(t *testing.T) {
		const topic, n = "franz-go-big", 12
		b.createTopic(t, topic, 1, nil)
		cl := b.kgoClient(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchMaxBytes(1<<20))
		big := func(i int) []byte {
			v := recValue("big", i)
			for len(v) < 900<<10 {
				v = append(v, byte(len(v)*31+i))
			}
			return v
		}
		for i := 0; i < n; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: big(i)}).FirstErr(); err != nil {
				t.Fatalf("produce 900 KiB record %d: %v", i, err)
			}
		}
		cons := b.kgoClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
			kgo.FetchMaxPartitionBytes(16<<10), kgo.FetchMaxBytes(32<<10), kgo.FetchMaxWait(200*time.Millisecond))
		for got := 0; got < n; {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d big records: %v", got, n, ctx.Err())
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != int64(got) || string(r.Value) != string(big(got)) {
					t.Fatalf("big record at offset %d (len %d) is not record %d", r.Offset, len(r.Value), got)
				}
				got++
			})
		}
	})

	t.Run("delete records", func(t *testing.T) {
		const topic = "franz-go-delete-records"
		b.createTopic(t, topic, 1, nil)
		cl := b.kgoClient(t, kgo.DefaultProduceTopic(topic))
		recs := make([]*kgo.Record, 100)
		for i := range recs {
			recs[i] = &kgo.Record{Key: recKey(i), Value: recValue("dr", i)}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		adm := kadm.NewClient(cl)
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 60})
		resp, err := adm.DeleteRecords(ctx, offs)
		if err != nil {
			t.Fatalf("DeleteRecords: %v", err)
		}
		if r, ok := resp.Lookup(topic, 0); !ok || r.Err != nil || r.LowWatermark != 60 {
			t.Fatalf("DeleteRecords before 60: %+v", r)
		}
		starts, err := adm.ListStartOffsets(ctx, topic)
		if err != nil {
			t.Fatalf("ListStartOffsets: %v", err)
		}
		if s, _ := starts.Lookup(topic, 0); s.Err != nil || s.Offset != 60 {
			t.Fatalf("start offset after DeleteRecords: %+v, want 60", s)
		}
		cons := b.kgoClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
			kgo.FetchMaxWait(200*time.Millisecond))
		for next := 60; next < 100; {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consuming after DeleteRecords: %v", ctx.Err())
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != int64(next) || string(r.Value) != string(recValue("dr", next)) {
					t.Fatalf("after DeleteRecords before 60, read offset %d (%s), want %d", r.Offset, label(r.Value), next)
				}
				next++
			})
		}
	})
}
