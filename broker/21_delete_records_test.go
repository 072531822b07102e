package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDeleteRecords(t *testing.T) {
	b := admNew(t)
	if _, err := b.topics.create("recs", 2, nil); err != nil {
		t.Fatal(err)
	}
	admProduce(t, b, "recs", 0, 4, 5) // offsets 0..19
	admProduce(t, b, "recs", 1, 1, 3) // offsets 0..2

	part := func(p int32, off int64) kmsg.DeleteRecordsRequestTopicPartition {
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = p, off
		return rp
	}
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrDeleteRecordsRequest()
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = "recs"
		rt.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{part(0, int64(5+v)), part(2, 0)}
		missing := kmsg.NewDeleteRecordsRequestTopic()
		missing.Topic = "missing"
		missing.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{part(0, 0)}
		req.Topics = []kmsg.DeleteRecordsRequestTopic{rt, missing}
		resp := admCall[*kmsg.DeleteRecordsResponse](t, b, req, v)
		if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.LowWatermark != int64(5+v) {
			t.Fatalf("v%d: %+v", v, p)
		}
		if p := resp.Topics[0].Partitions[1]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code || p.LowWatermark != -1 {
			t.Fatalf("v%d unknown partition: %+v", v, p)
		}
		if p := resp.Topics[1].Partitions[0]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("v%d unknown topic: %+v", v, p)
		}
	}
	if got := b.topics.get("recs").partition(0).LogStartOffset(); got != 7 {
		t.Fatalf("log start = %d, want 7", got)
	}

	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "recs"
	rt.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{part(0, 21), part(1, -1)}
	req.Topics = []kmsg.DeleteRecordsRequestTopic{rt}
	resp := admCall[*kmsg.DeleteRecordsResponse](t, b, req, 2)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.OffsetOutOfRange.Code || p.LowWatermark != -1 {
		t.Fatalf("beyond high watermark: %+v", p)
	}
	if p := resp.Topics[0].Partitions[1]; p.ErrorCode != 0 || p.LowWatermark != 3 {
		t.Fatalf("-1 (high watermark): %+v", p)
	}
	rt.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{part(0, -2)}
	req.Topics = []kmsg.DeleteRecordsRequestTopic{rt}
	if p := admCall[*kmsg.DeleteRecordsResponse](t, b, req, 2).Topics[0].Partitions[0]; p.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("negative offset: %+v", p)
	}
}
