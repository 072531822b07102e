package broker

// DeleteRecords (key 21), versions 0–2.
//
// Moves each partition's log start offset (low watermark) up to the given
// offset: -1 means the high watermark; another negative offset or one above
// the high watermark is OFFSET_OUT_OF_RANGE (the partition layer checks the
// latter). Whole segments below the new start are deleted. The response
// carries the new low watermark (-1 on error). Unknown topics and partitions
// are UNKNOWN_TOPIC_OR_PARTITION. The timeout is ignored: the change is
// complete (and checkpointed by the partition layer) before the response.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/segments"
)

func handleDeleteRecords(b *Broker, r *request) (*reply, error) {
	req, ok := r.body.(*kmsg.DeleteRecordsRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		t := b.topics.get(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			p := t.partition(rp.Partition) // nil if t is nil or p out of range
			switch {
			case p == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Offset < -1:
				sp.ErrorCode = kerr.OffsetOutOfRange.Code
			default:
				low, err := p.DeleteRecordsBefore(segments.Offset(rp.Offset))
				if err != nil {
					sp.ErrorCode = errorCode(err)
					if !errors.Is(err, segments.ErrOffsetOutOfRange) {
						b.log.Warn("delete records", "topic", rt.Topic, "partition", rp.Partition, "offset", rp.Offset, "err", err)
					}
				} else {
					sp.LowWatermark = int64(low)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return completed(resp), nil
}
