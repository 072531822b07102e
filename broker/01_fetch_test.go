package broker

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/segments"
	"github.com/stratalog/strata/wire"
)

// dpFetchReq is a sessionless, non-waiting fetch of one partition.
func dpFetchReq(version int16, topic string, partition int32, offset int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = 50 << 20
	req.SessionEpoch = -1
	dpAddFetchPart(req, topic, [16]byte{}, partition, offset, 1<<20)
	return req
}

// dpAddFetchPart adds a partition to a fetch request, reusing the last
// topic entry if it names the same topic.
func dpAddFetchPart(req *kmsg.FetchRequest, topic string, id [16]byte, partition int32, offset int64, maxBytes int32) {
	n := len(req.Topics)
	if n == 0 || req.Topics[n-1].Topic != topic || req.Topics[n-1].TopicID != id {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		req.Topics = append(req.Topics, rt)
		n++
	}
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = maxBytes
	req.Topics[n-1].Partitions = append(req.Topics[n-1].Partitions, rp)
}

// dpFetch runs a fetch to completion and decodes the response.
func dpFetch(t *testing.T, b *Broker, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	t.Helper()
	return dpFetchResponse(t, dpCall(t, b, req), req.Version)
}

func TestFetchEveryVersion(t *testing.T) {
	b := dpBroker(t)
	tp := dpTopic(t, b, "t", 1)
	batches := [][]byte{dpBatch("one"), dpBatch("two", "three")}
	var want [][]byte
	for _, bt := range batches {
		want = append(want, bytes.Clone(bt))
		dpMustProduce(t, b, "t", 0, bt)
	}
	for v := int16(4); v <= 16; v++ {
		req := dpFetchReq(v, "t", 0, 0)
		if v >= 13 {
			req.Topics[0].Topic, req.Topics[0].TopicID = "", tp.id
		}
		resp := dpFetch(t, b, req)
		if resp.ErrorCode != 0 || resp.SessionID != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("v%d: response %+v", v, resp)
		}
		rt := resp.Topics[0]
		if v >= 13 && rt.TopicID != tp.id || v < 13 && rt.Topic != "t" {
			t.Fatalf("v%d: topic %q id %x", v, rt.Topic, rt.TopicID)
		}
		p := rt.Partitions[0]
		if p.ErrorCode != 0 || p.HighWatermark != 3 || p.LastStableOffset != 3 || (v >= 5 && p.LogStartOffset != 0) {
			t.Fatalf("v%d: partition %+v", v, p)
		}
		if v >= 11 && p.PreferredReadReplica != -1 {
			t.Fatalf("v%d: preferred read replica %d", v, p.PreferredReadReplica)
		}
		if p.AbortedTransactions != nil {
			t.Fatalf("v%d: read_uncommitted got aborted transactions %v", v, p.AbortedTransactions)
		}
		got := dpSplitBatches(t, p.RecordBatches)
		if len(got) != 2 {
			t.Fatalf("v%d: %d batches", v, len(got))
		}
		dpSameBatch(t, got[0], want[0], 0)
		dpSameBatch(t, got[1], want[1], 1)
	}
}

func TestFetchReadCommitted(t *testing.T) {
	b := dpBroker(t)
	dpTopic(t, b, "t", 1)
	dpMustProduce(t, b, "t", 0, dpBatch("x"))
	req := dpFetchReq(11, "t", 0, 0)
	req.IsolationLevel = 1
	p := dpFetch(t, b, req).Topics[0].Partitions[0]
	if p.AbortedTransactions == nil || len(p.AbortedTransactions) != 0 || p.LastStableOffset != 1 {
		t.Fatalf("read_committed: aborted %v LSO %d", p.AbortedTransactions, p.LastStableOffset)
	}
}

func TestFetchPartitionErrors(t *testing.T) {
	b := dpBroker(t)
	tp := dpTopic(t, b, "t", 1)
	dpMustProduce(t, b, "t", 0, dpBatch("a", "b"))
	dpMustProduce(t, b, "t", 0, dpBatch("c"))

	type check struct {
		name string
		req  *kmsg.FetchRequest
		want *kerr.Error
	}
	var checks []check
	add := func(name string, want *kerr.Error, mod func(*kmsg.FetchRequest)) {
		req := dpFetchReq(12, "t", 0, 0)
		req.MaxWaitMillis = 60_000 // errors answer at once anyway
		mod(req)
		checks = append(checks, check{name, req, want})
	}
	add("unknown topic", kerr.UnknownTopicOrPartition, func(r *kmsg.FetchRequest) { r.Topics[0].Topic = "nope" })
	add("partition out of range", kerr.UnknownTopicOrPartition, func(r *kmsg.FetchRequest) { r.Topics[0].Partitions[0].Partition = 1 })
	add("offset beyond log end", kerr.OffsetOutOfRange, func(r *kmsg.FetchRequest) { r.Topics[0].Partitions[0].FetchOffset = 4 })
	add("negative offset", kerr.OffsetOutOfRange, func(r *kmsg.FetchRequest) { r.Topics[0].Partitions[0].FetchOffset = -1 })
	add("newer leader epoch", kerr.UnknownLeaderEpoch, func(r *kmsg.FetchRequest) { r.Topics[0].Partitions[0].CurrentLeaderEpoch = 7 })
	add("replica fetch", kerr.NotLeaderForPartition, func(r *kmsg.FetchRequest) { r.ReplicaID = 2 })
	add("replica fetch with epoch", kerr.UnknownLeaderEpoch, func(r *kmsg.FetchRequest) {
		r.ReplicaID = 2
		r.Topics[0].Partitions[0].CurrentLeaderEpoch = 0
	})
	req := dpFetchReq(13, "", 0, 0)
	req.Topics[0].TopicID = [16]byte{1, 2, 3}
	checks = append(checks, check{"unknown topic id", req, kerr.UnknownTopicID})
	req = dpFetchReq(15, "t", 0, 0)
	req.Topics[0].Topic, req.Topics[0].TopicID = "", tp.id
	req.ReplicaState.ID = 3
	checks = append(checks, check{"replica fetch v15", req, kerr.NotLeaderForPartition})

	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			p := dpFetch(t, b, c.req).Topics[0].Partitions[0]
			if p.ErrorCode != c.want.Code {
				t.Fatalf("error %v, want %v", kerr.ErrorForCode(p.ErrorCode), c.want)
			}
			if p.HighWatermark != -1 || p.LastStableOffset != -1 || p.LogStartOffset != -1 || len(p.RecordBatches) != 0 {
				t.Fatalf("error partition carries data: %+v", p)
			}
		})
	}

	// An offset at the high watermark reads nothing, without error.
	p := dpFetch(t, b, dpFetchReq(12, "t", 0, 3)).Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 3 {
		t.Fatalf("fetch at HW: %+v", p)
	}
	// An offset inside a batch returns the whole batch.
	p = dpFetch(t, b, dpFetchReq(12, "t", 0, 1)).Topics[0].Partitions[0]
	if got := dpSplitBatches(t, p.RecordBatches); len(got) != 2 {
		t.Fatalf("fetch from offset 1: %d batches, want 2", len(got))
	}
}

func TestFetchDivergingEpoch(t *testing.T) {
	b := dpBroker(t)
	dpTopic(t, b, "t", 1)
	dpMustProduce(t, b, "t", 0, dpBatch("a", "b"))
	// Epoch 0 is the latest and ends at the log end, 2: a fetch at 2
	// with last fetched epoch 0 is consistent.
	req := dpFetchReq(12, "t", 0, 2)
	req.Topics[0].Partitions[0].LastFetchedEpoch = 0
	p := dpFetch(t, b, req).Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.DivergingEpoch.Epoch != -1 || p.DivergingEpoch.EndOffset != -1 {
		t.Fatalf("consistent fetch: %+v", p)
	}
	// A fetcher claiming epoch 0 up to offset 4 has a log the leader
	// does not: it must truncate to epoch 0's end, 2. Kafka checks this
	// before the offset range.
	req = dpFetchReq(12, "t", 0, 4)
	req.Topics[0].Partitions[0].LastFetchedEpoch = 0
	p = dpFetch(t, b, req).Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.DivergingEpoch.Epoch != 0 || p.DivergingEpoch.EndOffset != 2 || len(p.RecordBatches) != 0 {
		t.Fatalf("diverging fetch: %+v", p)
	}
	if p.HighWatermark != 2 {
		t.Fatalf("diverging fetch HW %d, want 2", p.HighWatermark)
	}
}

func TestFetchMinOneBatch(t *testing.T) {
	b := dpBroker(t)
	dpTopic(t, b, "t", 2)
	big := strings.Repeat("x", 1000)
	for p := int32(0); p < 2; p++ {
		for i := 0; i < 3; i++ {
			dpMustProduce(t, b, "t", p, dpBatch(big))
		}
	}
	batchSize := len(dpBatch(big))

	fetch := func(maxBytes, partMax int32) [2]int {
		req := dpFetchReq(11, "t", 0, 0)
		req.MaxBytes = maxBytes
		req.Topics[0].Partitions[0].PartitionMaxBytes = partMax
		dpAddFetchPart(req, "t", [16]byte{}, 1, 0, partMax)
		resp := dpFetch(t, b, req)
		var n [2]int
		for _, p := range resp.Topics[0].Partitions {
			if p.ErrorCode != 0 {
				t.Fatalf("partition %d: %v", p.Partition, kerr.ErrorForCode(p.ErrorCode))
			}
			n[p.Partition] = len(dpSplitBatches(t, p.RecordBatches))
		}
		return n
	}
	// Both limits below one batch: the first partition still gets its
	// first batch, the second nothing.
	if got := fetch(10, 10); got != [2]int{1, 0} {
		t.Fatalf("tiny limits: batches %v, want [1 0]", got)
	}
	// Partition limit below one batch, plenty of request bytes: the
	// exemption is used by partition 0 only.
	if got := fetch(1<<20, 10); got != [2]int{1, 0} {
		t.Fatalf("tiny partition limit: batches %v, want [1 0]", got)
	}
	// Request limit of two batches: partition 0 takes two, partition 1 is
	// left with nothing that fits.
	if got := fetch(int32(2*batchSize), 1<<20); got != [2]int{2, 0} {
		t.Fatalf("request limit of two batches: %v, want [2 0]", got)
	}
	// Enough for everything.
	if got := fetch(1<<20, 1<<20); got != [2]int{3, 3} {
		t.Fatalf("no limits: %v, want [3 3]", got)
	}
	// Partition 0 has nothing to read at its offset: partition 1 is the
	// first with data and gets the exemption.
	req := dpFetchReq(11, "t", 0, 3)
	req.MaxBytes = 10
	dpAddFetchPart(req, "t", [16]byte{}, 1, 0, 10)
	resp := dpFetch(t, b, req)
	if n := len(dpSplitBatches(t, resp.Topics[0].Partitions[1].RecordBatches)); n != 1 {
		t.Fatalf("second partition, first with data: %d batches, want 1", n)
	}
}

func TestFetchLongPollWakesOnProduce(t *testing.T) {
	b := dpBroker(t)
	dpTopic(t, b, "t", 2)
	req := dpFetchReq(11, "t", 0, 0)
	dpAddFetchPart(req, "t", [16]byte{}, 1, 0, 1<<20)
	req.MaxWaitMillis = 3_600_000 // an hour: only data can end this wait
	req.MinBytes = 1
	rep := dpStart(t, b, context.Background(), req)
	if rep.Done == nil {
		t.Fatal("empty fetch with max wait answered at once")
	}
	select {
	case <-rep.Done:
		t.Fatal("long-poll completed with no data")
	default:
	}
	batch := dpBatch("wake")
	want := bytes.Clone(batch)
	dpMustProduce(t, b, "t", 1, batch)
	<-rep.Done
	resp := dpFetchResponse(t, rep, 11)
	parts := resp.Topics[0].Partitions
	if len(parts) != 2 || len(parts[0].RecordBatches) != 0 || parts[1].HighWatermark != 1 {
		t.Fatalf("after wake: %+v", parts)
	}
	got := dpSplitBatches(t, parts[1].RecordBatches)
	if len(got) != 1 {
		t.Fatalf("%d batches", len(got))
	}
	dpSameBatch(t, got[0], want, 0)
}

func TestFetchLongPollWaitsForMinBytes(t *testing.T) {
	b := dpBroker(t)
	dpTopic(t, b, "t", 1)
	small := dpBatch("s")
	req := dpFetchReq(11, "t", 0, 0)
	req.MaxWaitMillis = 3_600_000
	req.MinBytes = int32(len(small) + 1) // more than one small batch
	rep := dpStart(t, b, context.Background(), req)
	if rep.Done == nil {
		t.Fatal("answered at once")
	}
	dpMustProduce(t, b, "t", 0, small)
	// The first batch is below MinBytes. Produce is synchronous up to
	// fsync, so the long-poll has seen (or will see) the HW move; it must
	// still be waiting. A second batch satisfies it.
	select {
	case <-rep.Done:
		t.Fatal("long-poll completed below min bytes")
	default:
	}
	dpMustProduce(t, b, "t", 0, dpBatch("t"))
	<-rep.Done
	p := dpFetchResponse(t, rep, 11).Topics[0].Partitions[0]
	if n := len(dpSplitBatches(t, p.RecordBatches)); n != 2 {
		t.Fatalf("%d batches, want 2", n)
	}
}

func TestFetchLongPollEndsWithContext(t *testing.T) {
	b := dpBroker(t)
	dpTopic(t, b, "t", 1)
	req := dpFetchReq(11, "t", 0, 0)
	req.MaxWaitMillis = 3_600_000
	ctx, cancel := context.WithCancel(context.Background())
	rep := dpStart(t, b, ctx, req)
	if rep.Done == nil {
		t.Fatal("answered at once")
	}
	cancel()
	<-rep.Done
	p := dpFetchResponse(t, rep, 11).Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("%+v", p)
	}
}

func TestFetchSessionsThroughHandler(t *testing.T) {
	b := dpBroker(t)
	dpTopic(t, b, "t", 2)
	dpMustProduce(t, b, "t", 0, dpBatch("a"))

	// Full fetch creating a session.
	req := dpFetchReq(12, "t", 0, 0)
	dpAddFetchPart(req, "t", [16]byte{}, 1, 0, 1<<20)
	req.SessionID, req.SessionEpoch = 0, 0
	resp := dpFetch(t, b, req)
	if resp.SessionID == 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
		t.Fatalf("full fetch: %+v", resp)
	}
	id := resp.SessionID

	// Incremental, client moved partition 0 past its batch: nothing new.
	inc := kmsg.NewPtrFetchRequest()
	inc.Version = 12
	inc.MaxBytes = 1 << 20
	inc.SessionID, inc.SessionEpoch = id, 1
	dpAddFetchPart(inc, "t", [16]byte{}, 0, 1, 1<<20)
	resp = dpFetch(t, b, inc)
	if resp.ErrorCode != 0 || resp.SessionID != id || len(resp.Topics) != 0 {
		t.Fatalf("idle incremental fetch: %+v", resp)
	}

	// New data on partition 1: only it comes back.
	dpMustProduce(t, b, "t", 1, dpBatch("b"))
	inc.Topics = nil
	inc.SessionEpoch = 2
	resp = dpFetch(t, b, inc)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].Partition != 1 {
		t.Fatalf("incremental fetch after produce: %+v", resp)
	}
	if n := len(dpSplitBatches(t, resp.Topics[0].Partitions[0].RecordBatches)); n != 1 {
		t.Fatalf("%d batches", n)
	}

	// Stale epoch, unknown session.
	inc.SessionEpoch = 2
	if resp = dpFetch(t, b, inc); resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code || resp.SessionID != 0 {
		t.Fatalf("stale epoch: %+v", resp)
	}
	inc.SessionID, inc.SessionEpoch = id+1, 1
	if resp = dpFetch(t, b, inc); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown session: %+v", resp)
	}

	// Close it.
	closeReq := dpFetchReq(12, "t", 0, 1)
	closeReq.SessionID, closeReq.SessionEpoch = id, -1
	if resp = dpFetch(t, b, closeReq); resp.SessionID != 0 || b.sessions.len() != 0 {
		t.Fatalf("close: session %d, %d cached", resp.SessionID, b.sessions.len())
	}
}

func TestFetchSessionTopicIDs(t *testing.T) {
	b := dpBroker(t)
	tp := dpTopic(t, b, "t", 1)
	dpMustProduce(t, b, "t", 0, dpBatch("a"))
	req := dpFetchReq(13, "", 0, 0)
	req.Topics[0].TopicID = tp.id
	req.SessionEpoch = 0
	resp := dpFetch(t, b, req)
	if resp.SessionID == 0 || resp.Topics[0].TopicID != tp.id {
		t.Fatalf("v13 full fetch: %+v", resp)
	}
	// The same session from a v12 request is refused.
	inc := kmsg.NewPtrFetchRequest()
	inc.Version = 12
	inc.SessionID, inc.SessionEpoch = resp.SessionID, 1
	if r := dpFetch(t, b, inc); r.ErrorCode != kerr.FetchSessionTopicIDError.Code {
		t.Fatalf("v12 on a topic-id session: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

func TestCheckLeaderEpoch(t *testing.T) {
	for _, tc := range []struct {
		req, cur int32
		want     int16
	}{
		{-1, 3, 0},
		{3, 3, 0},
		{2, 3, kerr.FencedLeaderEpoch.Code},
		{4, 3, kerr.UnknownLeaderEpoch.Code},
	} {
		if got := checkLeaderEpoch(segments.LeaderEpoch(tc.req), segments.LeaderEpoch(tc.cur)); got != tc.want {
			t.Errorf("checkLeaderEpoch(%d, %d) = %d, want %d", tc.req, tc.cur, got, tc.want)
		}
	}
}

func TestWaitAnyChange(t *testing.T) {
	for _, n := range []int{1, maxSelectCases - 2, maxSelectCases - 1, 3 * maxSelectCases} {
		chans := make([]chan struct{}, n)
		ro := make([]<-chan struct{}, n)
		for i := range chans {
			chans[i] = make(chan struct{})
			ro[i] = chans[i]
		}
		// One channel closed: a change.
		close(chans[n-1])
		if !waitAnyChange(make(chan struct{}), nil, ro) {
			t.Fatalf("%d channels: closed channel not seen", n)
		}
		// None closed, stop closed: no change.
		chans[n-1] = make(chan struct{})
		ro[n-1] = chans[n-1]
		stop := make(chan struct{})
		close(stop)
		if waitAnyChange(stop, nil, ro) {
			t.Fatalf("%d channels: stop reported as a change", n)
		}
	}
}

func TestFetchLongPollEndsWhenTopicDeleted(t *testing.T) {
	b := dpBroker(t)
	tp := dpTopic(t, b, "t", 1)
	req := dpFetchReq(11, "t", 0, 0)
	req.MaxWaitMillis = 3_600_000
	rep := dpStart(t, b, context.Background(), req)
	if rep.Done == nil {
		t.Fatal("answered at once")
	}
	if err := b.topics.deleteTopic(tp); err != nil {
		t.Fatal(err)
	}
	<-rep.Done // the partition's Changed fires on close
	p := dpFetchResponse(t, rep, 11).Topics[0].Partitions[0]
	if p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("after delete: %v", kerr.ErrorForCode(p.ErrorCode))
	}
}

func TestFetchLongPollIncrementalSession(t *testing.T) {
	b := dpBroker(t)
	dpTopic(t, b, "t", 2)
	req := dpFetchReq(12, "t", 0, 0)
	dpAddFetchPart(req, "t", [16]byte{}, 1, 0, 1<<20)
	req.SessionEpoch = 0
	resp := dpFetch(t, b, req)
	if resp.SessionID == 0 {
		t.Fatal("no session")
	}
	// An incremental long-poll over the whole session wakes on data for
	// partition 1 and answers with partition 1 only.
	inc := kmsg.NewPtrFetchRequest()
	inc.Version = 12
	inc.MaxBytes = 1 << 20
	inc.MinBytes = 1
	inc.MaxWaitMillis = 3_600_000
	inc.SessionID, inc.SessionEpoch = resp.SessionID, 1
	rep := dpStart(t, b, context.Background(), inc)
	if rep.Done == nil {
		t.Fatal("answered at once")
	}
	dpMustProduce(t, b, "t", 1, dpBatch("x"))
	<-rep.Done
	resp = dpFetchResponse(t, rep, 12)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].Partition != 1 {
		t.Fatalf("incremental long-poll: %+v", resp.Topics)
	}
	if n := len(dpSplitBatches(t, resp.Topics[0].Partitions[0].RecordBatches)); n != 1 {
		t.Fatalf("%d batches", n)
	}
}

// BenchmarkFetchHandler measures a sessionless Fetch of 1 MiB already in
// the log: reads, framing and writing the body through pread (no socket).
func BenchmarkFetchHandler(b *testing.B) {
	br := dpBenchBroker(b)
	values := make([]string, 64)
	for i := range values {
		values[i] = strings.Repeat("v", 1000)
	}
	var total int64
	for total < 1<<20 {
		batch := dpBatch(values...)
		total += int64(len(batch))
		req := dpProduceReq(9, 1, "bench", 0, batch)
		rep, err := br.handleProduce(&wire.Request{Ctx: context.Background(), Body: req})
		if err != nil {
			b.Fatal(err)
		}
		<-rep.Done
	}
	b.SetBytes(total)
	b.ReportAllocs()
	var sink bytes.Buffer
	for b.Loop() {
		req := dpFetchReq(12, "bench", 0, 0)
		req.Topics[0].Partitions[0].PartitionMaxBytes = 2 << 20
		rep, err := br.handleFetch(&wire.Request{Ctx: context.Background(), Body: req})
		if err != nil {
			b.Fatal(err)
		}
		sink.Reset()
		bw := bufio.NewWriterSize(&sink, 64<<10)
		if err := rep.Framed.WriteBody(bw, nil); err != nil {
			b.Fatal(err)
		}
		bw.Flush()
		rep.Framed.Release()
		if int64(sink.Len()) < total {
			b.Fatalf("fetched %d bytes, want ≥ %d", sink.Len(), total)
		}
	}
}
