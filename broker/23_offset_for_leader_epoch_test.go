package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func dpOffsetForEpoch(t *testing.T, b *Broker, version int16, topic string, epoch, current int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = version
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.LeaderEpoch, rp.CurrentLeaderEpoch = epoch, current
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return dpCall(t, b, req).Msg.(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	b := dpBroker(t)
	dpTopic(t, b, "t", 1)
	dpMustProduce(t, b, "t", 0, dpBatch("a", "b", "c"))
	for v := int16(0); v <= 4; v++ {
		p := dpOffsetForEpoch(t, b, v, "t", 0, -1)
		if p.ErrorCode != 0 || p.EndOffset != 3 || (v >= 1 && p.LeaderEpoch != 0) {
			t.Fatalf("v%d epoch 0: %+v", v, p)
		}
	}
	if p := dpOffsetForEpoch(t, b, 4, "t", 0, 2); p.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("newer current epoch: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := dpOffsetForEpoch(t, b, 1, "t", 0, 2); p.ErrorCode != 0 {
		t.Fatalf("v1 has no current epoch: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := dpOffsetForEpoch(t, b, 4, "t", -1, -1); p.ErrorCode != 0 || p.EndOffset != -1 || p.LeaderEpoch != -1 {
		t.Fatalf("undefined epoch: %+v", p)
	}
	if p := dpOffsetForEpoch(t, b, 4, "nope", 0, -1); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %v", kerr.ErrorForCode(p.ErrorCode))
	}
}
