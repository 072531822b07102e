package broker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/topicconfig"
	"github.com/stratalog/strata/wire"
)

// Helpers shared by the data-path tests (prefix dp).

// dpBroker returns a broker over a fresh data directory, not listening.
func dpBroker(t *testing.T) *Broker {
	t.Helper()
	b, err := New(Config{
		NodeID:                      1,
		DataDir:                     t.TempDir(),
		SocketRequestMaxBytes:       100 << 20,
		NumPartitions:               1,
		DefaultReplicationFactor:    1,
		MaxIncrementalFetchSessions: 100,
		RetentionCheckInterval:      time.Hour,
		TopicDefaults:               topicconfig.Default(),
		Logger:                      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.closeStorage(); err != nil {
			t.Errorf("closing storage: %v", err)
		}
	})
	return b
}

// dpTopic creates a topic with n partitions.
func dpTopic(t *testing.T, b *Broker, name string, n int32) *topic {
	t.Helper()
	tp, err := b.topics.create(name, n, nil)
	if err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	return tp
}

var dpCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// dpBatchOpts describes a magic-v2 batch to build.
type dpBatchOpts struct {
	producerID    int64
	producerEpoch int16
	sequence      int32
	attributes    int16
	timestamp     int64 // first timestamp; 0 means now
}

// dpBatch builds an uncompressed magic-v2 batch of one record per value,
// with no producer id.
func dpBatch(values ...string) []byte {
	return dpBatchWith(dpBatchOpts{producerID: -1, producerEpoch: -1, sequence: -1}, values...)
}

// dpBatchWith builds an uncompressed magic-v2 batch with a valid CRC.
func dpBatchWith(o dpBatchOpts, values ...string) []byte {
	ts := o.timestamp
	if ts == 0 {
		ts = time.Now().UnixMilli()
	}
	var recs []byte
	for i, v := range values {
		var body []byte
		body = kbin.AppendInt8(body, 0)               // attributes
		body = kbin.AppendVarlong(body, int64(i))     // timestamp delta
		body = kbin.AppendVarint(body, int32(i))      // offset delta
		body = kbin.AppendVarint(body, -1)            // null key
		body = kbin.AppendVarint(body, int32(len(v))) // value
		body = append(body, v...)
		body = kbin.AppendVarint(body, 0) // no headers
		recs = kbin.AppendVarint(recs, int32(len(body)))
		recs = append(recs, body...)
	}
	n := int32(len(values))
	var b []byte
	b = kbin.AppendInt64(b, 0)  // base offset
	b = kbin.AppendInt32(b, 0)  // length, below
	b = kbin.AppendInt32(b, -1) // partition leader epoch
	b = kbin.AppendInt8(b, 2)   // magic
	b = kbin.AppendInt32(b, 0)  // crc, below
	b = kbin.AppendInt16(b, o.attributes)
	b = kbin.AppendInt32(b, n-1)
	b = kbin.AppendInt64(b, ts)
	b = kbin.AppendInt64(b, ts+int64(n-1))
	b = kbin.AppendInt64(b, o.producerID)
	b = kbin.AppendInt16(b, o.producerEpoch)
	b = kbin.AppendInt32(b, o.sequence)
	b = kbin.AppendInt32(b, n)
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], dpCastagnoli))
	return b
}

// dpCall runs a handler for body (at body's version) and waits for the
// reply to complete.
func dpCall(t *testing.T, b *Broker, body kmsg.Request) *wire.Reply {
	t.Helper()
	rep := dpStart(t, b, context.Background(), body)
	if rep != nil && rep.Done != nil {
		<-rep.Done
	}
	return rep
}

// dpStart runs a handler for body without waiting for a deferred reply.
func dpStart(t *testing.T, b *Broker, ctx context.Context, body kmsg.Request) *wire.Reply {
	t.Helper()
	a := apiFor(t, b, body.Key())
	r := &wire.Request{Ctx: ctx, Header: wire.Header{APIKey: body.Key(), APIVersion: body.GetVersion(), CorrelationID: 1}, Body: body}
	rep, err := a.Handle(r)
	if err != nil {
		t.Fatalf("handler error: %v", err)
	}
	return rep
}

// dpProduceReq is a one-partition produce request.
func dpProduceReq(version, acks int16, topic string, partition int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = version
	req.Acks = acks
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// dpProduce produces records to one partition and returns its result.
func dpProduce(t *testing.T, b *Broker, version, acks int16, topic string, partition int32, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	rep := dpCall(t, b, dpProduceReq(version, acks, topic, partition, records))
	resp, ok := rep.Msg.(*kmsg.ProduceResponse)
	if !ok {
		t.Fatalf("produce reply %+v", rep)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response shape %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

// dpMustProduce produces with acks=all and fails on any error.
func dpMustProduce(t *testing.T, b *Broker, topic string, partition int32, records []byte) int64 {
	t.Helper()
	p := dpProduce(t, b, 9, -1, topic, partition, records)
	if p.ErrorCode != 0 {
		t.Fatalf("produce to %s-%d: %v", topic, partition, kerr.ErrorForCode(p.ErrorCode))
	}
	return p.BaseOffset
}

// dpFetchResponse renders a Fetch reply to bytes, as the connection
// writer would (without sendfile), and decodes it.
func dpFetchResponse(t *testing.T, rep *wire.Reply, version int16) *kmsg.FetchResponse {
	t.Helper()
	if rep.Framed == nil {
		t.Fatalf("fetch reply without framed body: %+v", rep)
	}
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	if err := rep.Framed.WriteBody(bw, nil); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	rep.Framed.Release()
	if int64(buf.Len()) != rep.Framed.Len() {
		t.Fatalf("framed body %d bytes, Len says %d", buf.Len(), rep.Framed.Len())
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = version
	if err := resp.ReadFrom(buf.Bytes()); err != nil {
		t.Fatalf("decoding fetch response v%d: %v", version, err)
	}
	return resp
}

// dpSplitBatches splits record bytes into batches.
func dpSplitBatches(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 12 {
			t.Fatalf("%d trailing bytes", len(b))
		}
		n := 12 + int(binary.BigEndian.Uint32(b[8:]))
		if n > len(b) {
			t.Fatalf("batch of %d bytes, %d left", n, len(b))
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// dpSameBatch checks that got is want as stored: equal except the base
// offset (want's is 0) and the partition leader epoch, which the broker
// assigns outside the CRC.
func dpSameBatch(t *testing.T, got, want []byte, baseOffset int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("batch is %d bytes, produced %d", len(got), len(want))
	}
	if off := int64(binary.BigEndian.Uint64(got)); off != baseOffset {
		t.Fatalf("batch base offset %d, want %d", off, baseOffset)
	}
	if !bytes.Equal(got[8:12], want[8:12]) || !bytes.Equal(got[16:], want[16:]) {
		t.Fatalf("batch bytes differ from what was produced")
	}
}

func TestProduceEveryVersion(t *testing.T) {
	b := dpBroker(t)
	dpTopic(t, b, "t", 1)
	next := int64(0)
	var produced [][]byte
	for v := int16(3); v <= 11; v++ {
		batch := dpBatch("a", "b", "c")
		produced = append(produced, bytes.Clone(batch))
		p := dpProduce(t, b, v, -1, "t", 0, batch)
		if p.ErrorCode != 0 {
			t.Fatalf("v%d: %v", v, kerr.ErrorForCode(p.ErrorCode))
		}
		if p.BaseOffset != next || p.LogAppendTime != -1 {
			t.Fatalf("v%d: base offset %d log append time %d, want %d, -1", v, p.BaseOffset, p.LogAppendTime, next)
		}
		if v >= 5 && p.LogStartOffset != 0 {
			t.Fatalf("v%d: log start offset %d", v, p.LogStartOffset)
		}
		next += 3
	}
	// Everything acked is readable (acks=all: fsynced, so below the HW).
	resp := dpFetchResponse(t, dpCall(t, b, dpFetchReq(11, "t", 0, 0)), 11)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.HighWatermark != next {
		t.Fatalf("fetch: error %d HW %d, want HW %d", p.ErrorCode, p.HighWatermark, next)
	}
	got := dpSplitBatches(t, p.RecordBatches)
	if len(got) != len(produced) {
		t.Fatalf("%d batches, produced %d", len(got), len(produced))
	}
	for i := range got {
		dpSameBatch(t, got[i], produced[i], int64(3*i))
	}
}

func TestProduceErrors(t *testing.T) {
	b := dpBroker(t)
	dpTopic(t, b, "t", 2)

	corrupt := dpBatch("x")
	corrupt[len(corrupt)-1] ^= 0xff // breaks the CRC
	zstd := dpBatchWith(dpBatchOpts{producerID: -1, producerEpoch: -1, sequence: -1, attributes: compressionZstd}, "x")
	txnBatch := dpBatchWith(dpBatchOpts{producerID: 5, producerEpoch: 0, sequence: 0, attributes: attrTransactional}, "x")

	for _, tc := range []struct {
		name      string
		version   int16
		acks      int16
		topic     string
		partition int32
		records   []byte
		want      *kerr.Error
		message   bool // an ErrorMessage is expected (v8+)
	}{
		{"unknown topic", 9, -1, "nope", 0, dpBatch("x"), kerr.UnknownTopicOrPartition, false},
		{"partition out of range", 9, -1, "t", 2, dpBatch("x"), kerr.UnknownTopicOrPartition, false},
		{"negative partition", 9, -1, "t", -1, dpBatch("x"), kerr.UnknownTopicOrPartition, false},
		{"acks 2", 9, 2, "t", 0, dpBatch("x"), kerr.InvalidRequiredAcks, false},
		{"acks -2", 3, -2, "t", 0, dpBatch("x"), kerr.InvalidRequiredAcks, false},
		{"bad crc", 9, -1, "t", 0, corrupt, kerr.CorruptMessage, true},
		{"no records", 9, -1, "t", 0, nil, kerr.InvalidRecord, true},
		{"two batches", 9, -1, "t", 0, append(dpBatch("x"), dpBatch("y")...), kerr.InvalidRecord, true},
		{"zstd before v7", 6, -1, "t", 0, zstd, kerr.UnsupportedCompressionType, false},
		{"transactional batch", 9, -1, "t", 0, txnBatch, kerr.TransactionalIDAuthorizationFailed, true},
		{"truncated", 9, -1, "t", 0, dpBatch("x")[:40], nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := dpProduce(t, b, tc.version, tc.acks, tc.topic, tc.partition, tc.records)
			if tc.want == nil {
				if p.ErrorCode == 0 {
					t.Fatal("accepted")
				}
			} else if p.ErrorCode != tc.want.Code {
				t.Fatalf("error %v, want %v", kerr.ErrorForCode(p.ErrorCode), tc.want)
			}
			if p.BaseOffset != -1 || p.LogAppendTime != -1 || p.LogStartOffset != -1 {
				t.Fatalf("failed partition: base %d append time %d log start %d, want -1s", p.BaseOffset, p.LogAppendTime, p.LogStartOffset)
			}
			if tc.message && (p.ErrorMessage == nil || *p.ErrorMessage == "") {
				t.Fatal("no error message")
			}
		})
	}
	// Nothing was written by any of them.
	if leo := b.topics.get("t").partition(0).LogEndOffset(); leo != 0 {
		t.Fatalf("log end offset %d after rejected produces", leo)
	}
}

func TestProduceTransactionalID(t *testing.T) {
	b := dpBroker(t)
	dpTopic(t, b, "t", 1)
	req := dpProduceReq(9, -1, "t", 0, dpBatch("x"))
	req.TransactionID = kmsg.StringPtr("txn")
	resp := dpCall(t, b, req).Msg.(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("error %v", kerr.ErrorForCode(code))
	}
}

func TestProduceAcksZero(t *testing.T) {
	b := dpBroker(t)
	dpTopic(t, b, "t", 1)
	rep := dpCall(t, b, dpProduceReq(7, 0, "t", 0, dpBatch("a", "b")))
	if !rep.None || rep.Done != nil {
		t.Fatalf("acks=0 reply %+v, want none", rep)
	}
	if leo := b.topics.get("t").partition(0).LogEndOffset(); leo != 2 {
		t.Fatalf("log end offset %d, want 2", leo)
	}
	// A failure with acks=0 closes the connection (handler error).
	r := &wire.Request{Ctx: context.Background(), Header: wire.Header{APIKey: 0, APIVersion: 7}, Body: dpProduceReq(7, 0, "nope", 0, dpBatch("a"))}
	if _, err := b.handleProduce(r); err == nil {
		t.Fatal("acks=0 produce to an unknown topic did not close the connection")
	}
}

func TestProduceMultiplePartitions(t *testing.T) {
	b := dpBroker(t)
	dpTopic(t, b, "t", 3)
	req := kmsg.NewPtrProduceRequest()
	req.Version = 11
	req.Acks = 1
	for _, name := range []string{"t", "missing"} {
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = name
		for p := int32(0); p < 3; p++ {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = p
			rp.Records = dpBatch(strings.Repeat("v", int(p)+1))
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp := dpCall(t, b, req).Msg.(*kmsg.ProduceResponse)
	if len(resp.Topics) != 2 || resp.Topics[0].Topic != "t" || resp.Topics[1].Topic != "missing" {
		t.Fatalf("topics %+v", resp.Topics)
	}
	for p := int32(0); p < 3; p++ {
		ok, bad := resp.Topics[0].Partitions[p], resp.Topics[1].Partitions[p]
		if ok.Partition != p || ok.ErrorCode != 0 || ok.BaseOffset != 0 {
			t.Fatalf("t-%d: %+v", p, ok)
		}
		if bad.Partition != p || bad.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("missing-%d: %+v", p, bad)
		}
	}
}

func TestProduceIdempotentDuplicate(t *testing.T) {
	b := dpBroker(t)
	dpTopic(t, b, "t", 1)
	id, epoch, err := b.producers.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	o := dpBatchOpts{producerID: id, producerEpoch: epoch, sequence: 0}
	first := dpBatchWith(o, "a", "b")
	retry := bytes.Clone(first)
	if off := dpMustProduce(t, b, "t", 0, first); off != 0 {
		t.Fatalf("base offset %d", off)
	}
	o.sequence = 2
	if off := dpMustProduce(t, b, "t", 0, dpBatchWith(o, "c")); off != 2 {
		t.Fatalf("base offset %d", off)
	}
	// The retried first batch is acknowledged with its original offset
	// and not written again.
	if off := dpMustProduce(t, b, "t", 0, retry); off != 0 {
		t.Fatalf("duplicate acknowledged at %d, want 0", off)
	}
	if leo := b.topics.get("t").partition(0).LogEndOffset(); leo != 3 {
		t.Fatalf("log end offset %d, want 3", leo)
	}
	// A gap in the sequence is refused.
	o.sequence = 10
	p := dpProduce(t, b, 9, -1, "t", 0, dpBatchWith(o, "z"))
	if p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("sequence gap: %v", kerr.ErrorForCode(p.ErrorCode))
	}
}

func TestCheckProduceRecords(t *testing.T) {
	one := dpBatch("x")
	for _, tc := range []struct {
		name    string
		version int16
		records []byte
		want    int16
	}{
		{"one batch", 3, one, 0},
		{"empty", 3, nil, kerr.InvalidRecord.Code},
		{"short: left to Append", 3, one[:10], 0},
		{"two batches", 9, append(bytes.Clone(one), one...), kerr.InvalidRecord.Code},
		{"length beyond the payload: left to Append", 9, one[:len(one)-1], 0},
	} {
		if got, _ := checkProduceRecords(tc.version, tc.records); got != tc.want {
			t.Errorf("%s: code %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestProduceLogAppendTime(t *testing.T) {
	b := dpBroker(t)
	if _, err := b.topics.create("lat", 1, map[string]*string{"message.timestamp.type": kmsg.StringPtr("LogAppendTime")}); err != nil {
		t.Fatal(err)
	}
	before := time.Now().UnixMilli()
	p := dpProduce(t, b, 8, 1, "lat", 0, dpBatchWith(dpBatchOpts{producerID: -1, producerEpoch: -1, sequence: -1, timestamp: 1000}, "a", "b"))
	after := time.Now().UnixMilli()
	if p.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(p.ErrorCode))
	}
	if p.LogAppendTime < before || p.LogAppendTime > after {
		t.Fatalf("log append time %d not within [%d, %d]", p.LogAppendTime, before, after)
	}
	rb := dpFetch(t, b, dpFetchReq(11, "lat", 0, 0)).Topics[0].Partitions[0].RecordBatches
	var batch kmsg.RecordBatch
	if err := batch.ReadFrom(rb); err != nil {
		t.Fatal(err)
	}
	if batch.Attributes&0x08 == 0 || batch.MaxTimestamp != p.LogAppendTime {
		t.Fatalf("stored batch: attributes %#x max timestamp %d, want LogAppendTime %d", batch.Attributes, batch.MaxTimestamp, p.LogAppendTime)
	}
	if crc := crc32.Checksum(rb[21:], dpCastagnoli); uint32(batch.CRC) != crc {
		t.Fatalf("stored batch CRC %#x, computed %#x", uint32(batch.CRC), crc)
	}
}

// BenchmarkProduceHandler measures the Produce handler with acks=all on
// one partition: validation, append, group-commit fsync, response.
func BenchmarkProduceHandler(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		b.Run(byteSize(size), func(b *testing.B) {
			br := dpBenchBroker(b)
			values := make([]string, size/1024)
			for i := range values {
				values[i] = strings.Repeat("v", 1000)
			}
			batch := dpBatch(values...)
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := dpProduceReq(9, -1, "bench", 0, bytes.Clone(batch))
				rep, err := br.handleProduce(&wire.Request{Ctx: context.Background(), Header: wire.Header{APIVersion: 9}, Body: req})
				if err != nil {
					b.Fatal(err)
				}
				if rep.Done != nil {
					<-rep.Done
				}
				if code := rep.Msg.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
					b.Fatal(kerr.ErrorForCode(code))
				}
			}
		})
	}
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return strconv.Itoa(n>>10) + "KiB"
	default:
		return strconv.Itoa(n) + "B"
	}
}

// dpBenchBroker is dpBroker for benchmarks, with a topic "bench".
func dpBenchBroker(b *testing.B) *Broker {
	b.Helper()
	br, err := New(Config{
		NodeID:                      1,
		DataDir:                     b.TempDir(),
		MaxIncrementalFetchSessions: 100,
		RetentionCheckInterval:      time.Hour,
		TopicDefaults:               topicconfig.Default(),
		Logger:                      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = br.closeStorage() })
	if _, err := br.topics.create("bench", 1, nil); err != nil {
		b.Fatal(err)
	}
	return br
}

// TestProduceLargeMultiPartitionRequest takes the concurrent append path
// (several partitions, payload above parallelAppendMinBytes): every
// partition gets its batches in request order, a bad batch fails only its
// own partition, and a partition named twice keeps request order.
func TestProduceLargeMultiPartitionRequest(t *testing.T) {
	b := dpBroker(t)
	dpTopic(t, b, "big", 4)
	big := strings.Repeat("x", 100<<10) // 4 × 100 KiB > parallelAppendMinBytes
	corrupt := dpBatch(big)
	corrupt[len(corrupt)-1] ^= 0xff // breaks the CRC

	req := kmsg.NewPtrProduceRequest()
	req.Version = 11
	req.Acks = -1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "big"
	for p := int32(0); p < 4; p++ {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = dpBatch(big, strconv.Itoa(int(p)))
		if p == 2 {
			rp.Records = corrupt
		}
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	for round := int64(0); round < 3; round++ {
		resp := dpCall(t, b, req).Msg.(*kmsg.ProduceResponse)
		for p, sp := range resp.Topics[0].Partitions {
			switch {
			case p == 2 && sp.ErrorCode != kerr.CorruptMessage.Code:
				t.Fatalf("round %d partition 2 (corrupt): %+v", round, sp)
			case p != 2 && (sp.ErrorCode != 0 || sp.BaseOffset != 2*round):
				t.Fatalf("round %d partition %d: error %d base offset %d, want 0 and %d", round, p, sp.ErrorCode, sp.BaseOffset, 2*round)
			}
		}
	}
	for p := int32(0); p < 4; p++ {
		want := int64(6)
		if p == 2 {
			want = 0
		}
		if got := int64(b.topics.get("big").partition(p).HighWatermark()); got != want {
			t.Fatalf("partition %d high watermark %d, want %d", p, got, want)
		}
	}

	// The same partition twice in one request: appended in request order.
	twice := kmsg.NewPtrProduceRequest()
	twice.Version = 11
	twice.Acks = -1
	tt := kmsg.NewProduceRequestTopic()
	tt.Topic = "big"
	for _, v := range []string{"first", "second"} {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = 0
		rp.Records = dpBatch(big, v)
		tt.Partitions = append(tt.Partitions, rp)
	}
	twice.Topics = append(twice.Topics, tt)
	resp := dpCall(t, b, twice).Msg.(*kmsg.ProduceResponse)
	if a, c := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]; a.BaseOffset != 6 || c.BaseOffset != 8 {
		t.Fatalf("same partition twice: base offsets %d, %d; want 6, 8", a.BaseOffset, c.BaseOffset)
	}
}
