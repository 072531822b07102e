package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestCreatePartitions(t *testing.T) {
	cfg := admTestConfig(t.TempDir())
	b := admOpen(t, cfg)
	if _, err := b.topics.create("grow", 2, nil); err != nil {
		t.Fatal(err)
	}
	topic := func(name string, count int32, assignment ...[]int32) kmsg.CreatePartitionsRequestTopic {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = name, count
		for _, r := range assignment {
			a := kmsg.NewCreatePartitionsRequestTopicAssignment()
			a.Replicas = r
			rt.Assignment = append(rt.Assignment, a)
		}
		return rt
	}
	for v := int16(0); v <= 3; v++ {
		want := int32(3 + v)
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.Topics = []kmsg.CreatePartitionsRequestTopic{topic("grow", want)}
		resp := admCall[*kmsg.CreatePartitionsResponse](t, b, req, v)
		if resp.Topics[0].ErrorCode != 0 || len(b.topics.get("grow").partitions) != int(want) {
			t.Fatalf("v%d: %+v", v, resp.Topics[0])
		}
	}
	// Now 6 partitions.
	cases := []struct {
		rt   kmsg.CreatePartitionsRequestTopic
		code int16
	}{
		{topic("grow", 6), kerr.InvalidPartitions.Code},
		{topic("grow", 5), kerr.InvalidPartitions.Code},
		{topic("grow", 100000), kerr.InvalidPartitions.Code},
		{topic("missing", 2), kerr.UnknownTopicOrPartition.Code},
		{topic("grow", 8, []int32{1}), kerr.InvalidReplicaAssignment.Code},
		{topic("grow", 7, []int32{2}), kerr.InvalidReplicaAssignment.Code},
	}
	for i, tc := range cases {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.Topics = []kmsg.CreatePartitionsRequestTopic{tc.rt}
		st := admCall[*kmsg.CreatePartitionsResponse](t, b, req, 3).Topics[0]
		if st.ErrorCode != tc.code || st.ErrorMessage == nil {
			t.Errorf("case %d: code %d (%v), want %d", i, st.ErrorCode, deref(st.ErrorMessage), tc.code)
		}
	}
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.ValidateOnly = true
	req.Topics = []kmsg.CreatePartitionsRequestTopic{topic("grow", 8, []int32{1}, []int32{1})}
	if st := admCall[*kmsg.CreatePartitionsResponse](t, b, req, 1).Topics[0]; st.ErrorCode != 0 {
		t.Fatalf("validate only: %+v", st)
	}
	if n := len(b.topics.get("grow").partitions); n != 6 {
		t.Fatalf("validate_only changed the count to %d", n)
	}
	req.ValidateOnly = false
	req.Topics = []kmsg.CreatePartitionsRequestTopic{topic("grow", 7), topic("grow", 7)}
	for _, st := range admCall[*kmsg.CreatePartitionsResponse](t, b, req, 2).Topics {
		if st.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("duplicate: %+v", st)
		}
	}

	admClose(t, b)
	b = admOpen(t, cfg)
	if n := len(b.topics.get("grow").partitions); n != 6 {
		t.Fatalf("after restart: %d partitions", n)
	}
}
