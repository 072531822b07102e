package broker

// OffsetForLeaderEpoch, API key 23, versions 0–4.
//
// Per partition: unknown topic or partition → UNKNOWN_TOPIC_OR_PARTITION;
// CurrentLeaderEpoch (v2+), when given: older than the partition's →
// FENCED_LEADER_EPOCH, newer → UNKNOWN_LEADER_EPOCH. Otherwise Kafka's
// semantics through Partition.EndOffsetForEpoch: the largest epoch ≤ the
// requested one and its end offset (the start offset of the next epoch, or
// the log end offset for the latest epoch); when the log has no answer
// (end offset -1, e.g. for the undefined epoch -1) the response carries
// epoch -1 and end offset -1 (UNDEFINED), without error, as Kafka does.
// LeaderEpoch in the response exists from v1. ReplicaID (v3+) changes
// nothing: this broker leads every partition it hosts.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/segments"
	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleOffsetForLeaderEpoch(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.OffsetForLeaderEpochRequest)
	if !ok {
		return nil, fmt.Errorf("offset for leader epoch: unexpected body %T", r.Body)
	}
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	resp.Topics = make([]kmsg.OffsetForLeaderEpochResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		st := &resp.Topics[ti]
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetForLeaderEpochResponseTopicPartition, len(rt.Partitions))
		t := b.topics.get(rt.Topic)
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := &st.Partitions[pi]
			sp.Default()
			sp.Partition = rp.Partition
			p, code := t.led(rp.Partition)
			if code != 0 {
				sp.ErrorCode = code
				continue
			}
			current := segments.LeaderEpoch(-1)
			if req.Version >= 2 {
				current = segments.LeaderEpoch(rp.CurrentLeaderEpoch)
			}
			if code := checkLeaderEpoch(current, p.LeaderEpoch()); code != 0 {
				sp.ErrorCode = code
				continue
			}
			epoch, end := p.EndOffsetForEpoch(segments.LeaderEpoch(rp.LeaderEpoch))
			if end < 0 {
				epoch = -1 // UNDEFINED_EPOCH with UNDEFINED_EPOCH_OFFSET
			}
			sp.LeaderEpoch, sp.EndOffset = int32(epoch), int64(end)
		}
	}
	return wire.Completed(resp), nil
}
