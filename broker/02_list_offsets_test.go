package broker

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/segments"
)

// fakeOffsets is a partitionView with fixed answers.
type fakeOffsets struct {
	epoch              segments.LeaderEpoch
	start, hw, leo     segments.Offset
	localStart         segments.Offset // 0: same as start
	maxTs              int64
	maxTsOffset        segments.Offset
	tsOffset           segments.Offset // OffsetForTimestamp answer (-1: not found)
	tsBatchTs          int64
	tsErr              error
	lastTimestampAsked int64
}

func (f *fakeOffsets) LeaderEpoch() segments.LeaderEpoch { return f.epoch }
func (f *fakeOffsets) HighWatermark() segments.Offset    { return f.hw }
func (f *fakeOffsets) LogStartOffset() segments.Offset   { return f.start }
func (f *fakeOffsets) LogEndOffset() segments.Offset     { return f.leo }
func (f *fakeOffsets) LocalLogStartOffset() segments.Offset {
	if f.localStart == 0 {
		return f.start
	}
	return f.localStart
}
func (f *fakeOffsets) MaxTimestamp() (int64, segments.Offset) {
	return f.maxTs, f.maxTsOffset
}
func (f *fakeOffsets) OffsetForTimestamp(ts int64) (segments.Offset, int64, bool, error) {
	f.lastTimestampAsked = ts
	if f.tsErr != nil {
		return -1, -1, false, f.tsErr
	}
	return f.tsOffset, f.tsBatchTs, f.tsOffset >= 0, nil
}

func TestListOffsetDecisions(t *testing.T) {
	base := fakeOffsets{epoch: 4, start: 10, hw: 50, leo: 60, maxTs: 999, maxTsOffset: 40, tsOffset: 20, tsBatchTs: 555}
	type want struct {
		ts    int64
		off   segments.Offset
		epoch segments.LeaderEpoch
	}
	for _, tc := range []struct {
		name     string
		mod      func(*fakeOffsets)
		ts       int64
		consumer bool
		want     want
	}{
		{"earliest", nil, -2, true, want{-1, 10, -1}},
		{"earliest local", nil, -4, true, want{-1, 10, -1}},
		{"earliest with a remote tier", func(f *fakeOffsets) { f.localStart = 30 }, -2, true, want{-1, 10, -1}},
		{"earliest local with a remote tier", func(f *fakeOffsets) { f.localStart = 30 }, -4, true, want{-1, 30, -1}},
		{"latest for a consumer is the HW", nil, -1, true, want{-1, 50, 4}},
		{"latest for a replica is the LEO", nil, -1, false, want{-1, 60, 4}},
		{"max timestamp", nil, -3, true, want{999, 40, -1}},
		{"max timestamp above the HW", func(f *fakeOffsets) { f.maxTsOffset = 55 }, -3, true, want{-1, -1, -1}},
		{"max timestamp above the HW, replica", func(f *fakeOffsets) { f.maxTsOffset = 55 }, -3, false, want{999, 55, -1}},
		{"max timestamp of an empty log", func(f *fakeOffsets) { f.maxTs, f.maxTsOffset = -1, -1 }, -3, true, want{-1, -1, -1}},
		{"by timestamp", nil, 500, true, want{555, 20, -1}},
		{"by timestamp, not found", func(f *fakeOffsets) { f.tsOffset = -1 }, 500, true, want{-1, -1, -1}},
		{"by timestamp, above the HW", func(f *fakeOffsets) { f.tsOffset = 50 }, 500, true, want{-1, -1, -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := base
			if tc.mod != nil {
				tc.mod(&f)
			}
			ts, off, epoch, err := listOffset(&f, tc.ts, tc.consumer)
			if err != nil {
				t.Fatal(err)
			}
			if got := (want{ts, off, epoch}); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	f := base
	f.tsErr = errors.New("disk on fire")
	if _, _, _, err := listOffset(&f, 500, true); err == nil {
		t.Fatal("lookup error swallowed")
	}
}

// dpListOffsets asks for one timestamp on partition 0 of topic.
func dpListOffsets(t *testing.T, b *Broker, version int16, topic string, ts int64, current int32) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = version
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = ts
	rp.CurrentLeaderEpoch = current
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := dpCall(t, b, req).Msg.(*kmsg.ListOffsetsResponse)
	return resp.Topics[0].Partitions[0]
}

func TestListOffsetsHandler(t *testing.T) {
	b := dpBroker(t)
	dpTopic(t, b, "t", 1)
	// Single-record batches where timestamps matter: Kafka answers a
	// timestamp lookup with the matching record's own offset and
	// timestamp, which for one-record batches is the batch's.
	const t0 = 1_700_000_000_000
	at := func(ts int64, values ...string) []byte {
		return dpBatchWith(dpBatchOpts{producerID: -1, producerEpoch: -1, sequence: -1, timestamp: ts}, values...)
	}
	dpMustProduce(t, b, "t", 0, at(t0, "a"))          // offset 0
	dpMustProduce(t, b, "t", 0, at(t0+1000, "b"))     // offset 1
	dpMustProduce(t, b, "t", 0, at(t0+500, "c", "d")) // offsets 2-3, ts t0+500, t0+501

	for _, tc := range []struct {
		name    string
		version int16
		ts      int64
		off     int64
		rts     int64
		epoch   int32
	}{
		{"earliest v1", 1, -2, 0, -1, -1},
		{"latest v1", 1, -1, 4, -1, -1},
		{"latest v4 has the epoch", 4, -1, 4, -1, 0},
		{"max timestamp", 7, -3, 1, t0 + 1000, -1},
		{"by timestamp: exact", 8, t0, 0, t0, -1},
		{"by timestamp: before everything", 8, 1, 0, t0, -1},
		{"by timestamp: next batch", 8, t0 + 1, 1, t0 + 1000, -1},
		{"by timestamp: after everything", 8, t0 + 2000, -1, -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := dpListOffsets(t, b, tc.version, "t", tc.ts, -1)
			if p.ErrorCode != 0 {
				t.Fatal(kerr.ErrorForCode(p.ErrorCode))
			}
			if p.Offset != tc.off || p.Timestamp != tc.rts || (tc.version >= 4 && p.LeaderEpoch != tc.epoch) {
				t.Fatalf("offset %d timestamp %d epoch %d, want %d %d %d", p.Offset, p.Timestamp, p.LeaderEpoch, tc.off, tc.rts, tc.epoch)
			}
		})
	}

	if p := dpListOffsets(t, b, 4, "t", -1, 1); p.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("newer leader epoch: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := dpListOffsets(t, b, 3, "t", -1, 1); p.ErrorCode != 0 {
		t.Fatalf("v3 has no current leader epoch, got %v", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := dpListOffsets(t, b, 5, "nope", -1, -1); p.ErrorCode != kerr.UnknownTopicOrPartition.Code || p.Offset != -1 {
		t.Fatalf("unknown topic: %+v", p)
	}

	// Duplicate partitions: INVALID_REQUEST for each, other partitions fine.
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 5
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "t"
	for _, p := range []int32{0, 0, 1} {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	parts := dpCall(t, b, req).Msg.(*kmsg.ListOffsetsResponse).Topics[0].Partitions
	if parts[0].ErrorCode != kerr.InvalidRequest.Code || parts[1].ErrorCode != kerr.InvalidRequest.Code || parts[2].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("duplicates: %+v", parts)
	}

	// After DeleteRecords, earliest is the new log start.
	if _, err := b.topics.get("t").partition(0).DeleteRecordsBefore(2); err != nil {
		t.Fatal(err)
	}
	if p := dpListOffsets(t, b, 6, "t", -2, -1); p.Offset != 2 {
		t.Fatalf("earliest after delete records: %d", p.Offset)
	}
}
