package broker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stratalog/strata/topicconfig"
)

// dpServe starts a broker on a loopback port and returns its address; the
// broker is shut down when the test ends.
func dpServe(t *testing.T) (*Broker, string) {
	t.Helper()
	b, err := New(Config{
		NodeID:                      1,
		Listen:                      "127.0.0.1:0",
		DataDir:                     t.TempDir(),
		SocketRequestMaxBytes:       100 << 20,
		ConnectionsMaxIdle:          10 * time.Minute,
		MaxInFlightPerConnection:    100,
		NumPartitions:               1,
		DefaultReplicationFactor:    1,
		AutoCreateTopics:            false,
		MaxIncrementalFetchSessions: 1000,
		RetentionCheckInterval:      time.Hour,
		TopicDefaults:               topicconfig.Default(),
		Logger:                      slog.New(slog.DiscardHandler),
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
	t.Cleanup(func() {
		if err := b.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return b, ln.Addr().String()
}

// TestRoundTripKgo produces 1,000 records per codec with franz-go's
// idempotent producer (acks=all) and consumes them back, checking every
// key, value, header, timestamp and offset.
func TestRoundTripKgo(t *testing.T) {
	b, addr := dpServe(t)
	const partitions = 3
	const perCodec = 1000
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	// A safety net against hangs, not an assertion about speed.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			topicName := "rt-" + c.name
			dpTopic(t, b, topicName, partitions)
			producer, err := kgo.NewClient(
				kgo.SeedBrokers(addr),
				kgo.DefaultProduceTopic(topicName),
				kgo.RequiredAcks(kgo.AllISRAcks()),
				kgo.ProducerBatchCompression(c.codec),
				kgo.ProducerLinger(time.Millisecond),
				kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
			)
			if err != nil {
				t.Fatal(err)
			}
			defer producer.Close()

			base := time.UnixMilli(1_700_000_000_000)
			sent := make([]*kgo.Record, perCodec)
			for i := range sent {
				sent[i] = &kgo.Record{
					Key:       fmt.Appendf(nil, "key-%04d", i),
					Value:     bytes.Repeat([]byte{byte(i)}, i%300),
					Headers:   []kgo.RecordHeader{{Key: "i", Value: fmt.Appendf(nil, "%d", i)}},
					Timestamp: base.Add(time.Duration(i) * time.Millisecond),
				}
			}
			// Produce asynchronously so batches hold many records.
			errs := make(chan error, perCodec)
			for _, r := range sent {
				producer.Produce(ctx, r, func(_ *kgo.Record, err error) { errs <- err })
			}
			for range sent {
				if err := <-errs; err != nil {
					t.Fatalf("produce: %v", err)
				}
			}
			want := map[string]*kgo.Record{}
			next := map[int32]int64{}
			for _, r := range sent {
				want[string(r.Key)] = r
				next[r.Partition] = max(next[r.Partition], r.Offset+1)
			}

			consumer, err := kgo.NewClient(
				kgo.SeedBrokers(addr),
				kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topicName: {
					0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart(), 2: kgo.NewOffset().AtStart(),
				}}),
				kgo.FetchMaxBytes(64<<10), // several fetches, incremental sessions
			)
			if err != nil {
				t.Fatal(err)
			}
			defer consumer.Close()
			got := 0
			for got < perCodec {
				fs := consumer.PollFetches(ctx)
				if err := ctx.Err(); err != nil {
					t.Fatalf("consumed %d of %d: %v", got, perCodec, err)
				}
				fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
				fs.EachRecord(func(r *kgo.Record) {
					w := want[string(r.Key)]
					switch {
					case w == nil:
						t.Fatalf("unexpected record %q at %d-%d", r.Key, r.Partition, r.Offset)
					case r.Partition != w.Partition || r.Offset != w.Offset:
						t.Fatalf("%q at %d-%d, acknowledged at %d-%d", r.Key, r.Partition, r.Offset, w.Partition, w.Offset)
					case !bytes.Equal(r.Value, w.Value):
						t.Fatalf("%q: value differs", r.Key)
					case len(r.Headers) != 1 || r.Headers[0].Key != "i" || !bytes.Equal(r.Headers[0].Value, w.Headers[0].Value):
						t.Fatalf("%q: headers %v", r.Key, r.Headers)
					case !r.Timestamp.Equal(w.Timestamp):
						t.Fatalf("%q: timestamp %v, want %v", r.Key, r.Timestamp, w.Timestamp)
					}
					delete(want, string(r.Key))
					got++
				})
			}
			if len(want) != 0 {
				t.Fatalf("%d records not consumed", len(want))
			}
			for p := int32(0); p < partitions; p++ {
				if hw := b.topics.get(topicName).partition(p).HighWatermark(); int64(hw) != next[p] {
					t.Fatalf("partition %d: HW %d, acknowledged up to %d", p, hw, next[p])
				}
			}
		})
	}
}

// TestRoundTripSarama produces with sarama's idempotent sync producer and
// consumes with its partition consumer, at protocol versions from Kafka
// 0.11 (Produce v3, Fetch v5) to sarama's newest, checking every record.
func TestRoundTripSarama(t *testing.T) {
	b, addr := dpServe(t)
	const perVersion = 300
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // hang guard only
	defer cancel()
	for _, v := range []sarama.KafkaVersion{sarama.V0_11_0_0, sarama.V2_1_0_0, sarama.V2_8_0_0, sarama.MaxVersion} {
		t.Run(v.String(), func(t *testing.T) {
			topicName := "sarama-" + v.String()
			dpTopic(t, b, topicName, 1)
			cfg := sarama.NewConfig()
			cfg.Version = v
			cfg.ClientID = "strata-test"
			cfg.Producer.Return.Successes = true
			cfg.Producer.RequiredAcks = sarama.WaitForAll
			cfg.Producer.Idempotent = true
			cfg.Producer.Retry.Max = 5
			cfg.Net.MaxOpenRequests = 1
			cfg.Producer.Compression = sarama.CompressionSnappy
			cfg.Consumer.Return.Errors = true

			producer, err := sarama.NewSyncProducer([]string{addr}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer producer.Close()
			msgs := make([]*sarama.ProducerMessage, perVersion)
			for i := range msgs {
				msgs[i] = &sarama.ProducerMessage{
					Topic: topicName,
					Key:   sarama.StringEncoder(fmt.Sprintf("k%d", i)),
					Value: sarama.ByteEncoder(bytes.Repeat([]byte{byte(i)}, i)),
				}
			}
			if err := producer.SendMessages(msgs); err != nil {
				t.Fatalf("produce: %v", err)
			}
			for i, m := range msgs {
				if m.Offset != int64(i) {
					t.Fatalf("message %d acknowledged at offset %d", i, m.Offset)
				}
			}

			consumer, err := sarama.NewConsumer([]string{addr}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer consumer.Close()
			pc, err := consumer.ConsumePartition(topicName, 0, sarama.OffsetOldest)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			for i := 0; i < perVersion; i++ {
				select {
				case m := <-pc.Messages():
					want := bytes.Repeat([]byte{byte(i)}, i)
					if m.Offset != int64(i) || string(m.Key) != fmt.Sprintf("k%d", i) || !bytes.Equal(m.Value, want) {
						t.Fatalf("record %d: offset %d key %q, %d value bytes", i, m.Offset, m.Key, len(m.Value))
					}
				case err := <-pc.Errors():
					t.Fatalf("consume: %v", err)
				case <-ctx.Done():
					t.Fatalf("consumed %d of %d: %v", i, perVersion, ctx.Err())
				}
			}
		})
	}
}
