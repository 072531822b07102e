package broker

// ListOffsets, API key 2, versions 1–8 (v0's OldStyleOffsets are not
// served).
//
// Per partition (Kafka's Partition.fetchOffsetForTimestamp):
//   - unknown topic or partition → UNKNOWN_TOPIC_OR_PARTITION; a partition
//     named twice in one request → INVALID_REQUEST for each occurrence;
//   - CurrentLeaderEpoch (v4+), when given: older than the partition's →
//     FENCED_LEADER_EPOCH, newer → UNKNOWN_LEADER_EPOCH;
//   - timestamp -2 (earliest): the log start offset, remote tier included
//     (KAFKA_STORAGE_ERROR while a tiered partition's remote tier is not
//     loaded and its local log starts above 0: tiering_read.go);
//     -4 (earliest local, v8, KIP-1005): the local log start offset;
//     timestamp -1;
//   - timestamp -1 (latest): the high watermark for consumers (ReplicaID
//     -1; read_committed gives the last stable offset, which is the high
//     watermark while there are no transactions), the log end offset for
//     anyone else; timestamp -1;
//   - timestamp -3 (max timestamp, v7+): the largest timestamp and the
//     offset of the batch carrying it;
//   - any other timestamp: the first offset whose batch's max timestamp is
//     ≥ it, through the time index, with that batch's timestamp; on a
//     tiered partition the remote tier is searched first when one of its
//     segments below the local log start has such a timestamp
//     (tiering_read.go; that lookup waits for the object store).
//
// -3 and timestamp lookups only count data below the high watermark (for
// consumers); nothing found → offset -1, timestamp -1. LeaderEpoch (v4+)
// is the partition's current epoch for "latest" and -1 otherwise (the
// partition layer does not expose the epoch of an arbitrary offset).

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/segments"
	"github.com/stratalog/strata/wire"
)

// Special ListOffsets timestamps.
const (
	listOffsetsLatest        = -1
	listOffsetsEarliest      = -2
	listOffsetsMaxTimestamp  = -3
	listOffsetsEarliestLocal = -4
)

func (b *Broker) handleListOffsets(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.ListOffsetsRequest)
	if !ok {
		return nil, fmt.Errorf("list offsets: unexpected body %T", r.Body)
	}
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)

	type tp struct {
		topic     string
		partition int32
	}
	count := make(map[tp]int)
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			count[tp{t.Topic, p.Partition}]++
		}
	}

	consumer := req.ReplicaID == -1
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		st := &resp.Topics[ti]
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, len(rt.Partitions))
		t := b.topics.get(rt.Topic)
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := &st.Partitions[pi]
			sp.Default()
			sp.Partition = rp.Partition
			if count[tp{rt.Topic, rp.Partition}] > 1 {
				sp.ErrorCode = kerr.InvalidRequest.Code
				continue
			}
			pp, code := t.led(rp.Partition)
			if code != 0 {
				sp.ErrorCode = code
				continue
			}
			var p partitionView = pp
			if b.tier.partition(pp) != nil {
				p = tieredView{Partition: pp, tm: b.tier, ctx: r.Ctx}
			}
			current := segments.LeaderEpoch(-1)
			if req.Version >= 4 {
				current = segments.LeaderEpoch(rp.CurrentLeaderEpoch)
			}
			if code := checkLeaderEpoch(current, p.LeaderEpoch()); code != 0 {
				sp.ErrorCode = code
				continue
			}
			ts, off, epoch, err := listOffset(p, rp.Timestamp, consumer)
			if err != nil {
				sp.ErrorCode = errorCode(err)
				if sp.ErrorCode == kerr.UnknownServerError.Code {
					b.log.Error("list offsets failed", "topic", rt.Topic, "partition", rp.Partition, "timestamp", rp.Timestamp, "err", err)
				}
				continue
			}
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = ts, int64(off), int32(epoch)
		}
	}
	return wire.Completed(resp), nil
}

// partitionView is the part of replica.Partition that ListOffsets needs
// (an interface so the decision logic can be tested on its own).
type partitionView interface {
	LeaderEpoch() segments.LeaderEpoch
	HighWatermark() segments.Offset
	LogStartOffset() segments.Offset
	LocalLogStartOffset() segments.Offset
	LogEndOffset() segments.Offset
	OffsetForTimestamp(ts int64) (segments.Offset, int64, bool, error)
	MaxTimestamp() (int64, segments.Offset)
}

// earliestView is a partitionView whose log start can be unknown (a tiered
// partition whose manifest is not loaded: tieredView); EarliestOffset then
// fails, with a retriable error, instead of answering the local start.
type earliestView interface {
	EarliestOffset() (segments.Offset, error)
}

// listOffset answers one ListOffsets partition query: the timestamp,
// offset and leader epoch to return (-1, -1, -1 when nothing matches).
// consumer limits the answer to data below the high watermark.
func listOffset(p partitionView, ts int64, consumer bool) (int64, segments.Offset, segments.LeaderEpoch, error) {
	fetchable := p.LogEndOffset()
	if consumer {
		fetchable = p.HighWatermark()
	}
	switch ts {
	case listOffsetsEarliest:
		if e, ok := p.(earliestView); ok {
			off, err := e.EarliestOffset()
			if err != nil {
				return -1, -1, -1, err
			}
			return -1, off, -1, nil
		}
		return -1, p.LogStartOffset(), -1, nil
	case listOffsetsEarliestLocal:
		return -1, p.LocalLogStartOffset(), -1, nil
	case listOffsetsLatest:
		return -1, fetchable, p.LeaderEpoch(), nil
	case listOffsetsMaxTimestamp:
		maxTs, off := p.MaxTimestamp()
		if off < 0 || off >= fetchable {
			return -1, -1, -1, nil
		}
		return maxTs, off, -1, nil
	default:
		off, batchTs, found, err := p.OffsetForTimestamp(ts)
		if err != nil {
			return -1, -1, -1, err
		}
		if !found || off >= fetchable {
			return -1, -1, -1, nil
		}
		return batchTs, off, -1, nil
	}
}
