package broker

// DeleteRecords (key 21), versions 0–2.
//
// Moves each partition's log start offset (low watermark) up to the given
// offset: -1 means the high watermark; another negative offset or one above
// the high watermark is OFFSET_OUT_OF_RANGE (the partition layer checks the
// latter). Whole segments below the new start are deleted. The response
// carries the new low watermark (-1 on error). Unknown topics and partitions
// are UNKNOWN_TOPIC_OR_PARTITION. The change is complete before the
// response: on a tiered partition the remote tier's manifest is committed
// first (within the request's timeout; a store failure is
// KAFKA_STORAGE_ERROR), then the local log start is checkpointed.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/replica"
	"github.com/stratalog/strata/segments"
	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleDeleteRecords(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.DeleteRecordsRequest)
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
			p, code := t.led(rp.Partition)
			switch {
			case code != 0:
				sp.ErrorCode = code
			case rp.Offset < -1:
				sp.ErrorCode = kerr.OffsetOutOfRange.Code
			default:
				low, err := deleteRecords(r.Ctx, b, p, segments.Offset(rp.Offset), req.TimeoutMillis)
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
	return wire.Completed(resp), nil
}

// deleteRecords moves p's log start to o (-1: the high watermark): first
// in the remote tier (a manifest commit through the partition's tiering
// loop, within the request's timeout), then locally. It returns the new
// log start offset.
func deleteRecords(ctx context.Context, b *Broker, p *replica.Partition, o segments.Offset, timeoutMs int32) (segments.Offset, error) {
	o, err := p.DeleteRecordsTarget(o)
	if err != nil {
		return -1, err
	}
	if timeoutMs > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeoutMs)*time.Millisecond)
		defer cancel()
	}
	if err := b.tier.deleteRecords(ctx, p, o); err != nil {
		return -1, fmt.Errorf("%w: deleting remote records of %s-%d before %d: %w", errRemoteStorage, p.Topic(), p.Index(), o, err)
	}
	return p.DeleteRecordsBefore(o)
}
