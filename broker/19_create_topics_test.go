package broker

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/topicconfig"
)

func admCreateTopic(name string, partitions int32, rf int16, configs ...string) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	for i := 0; i+1 < len(configs); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = configs[i], kmsg.StringPtr(configs[i+1])
		rt.Configs = append(rt.Configs, c)
	}
	return rt
}

func TestCreateTopicsAllVersions(t *testing.T) {
	b := admNew(t)
	for v := int16(0); v <= 7; v++ {
		name := "t" + string(rune('0'+v))
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Topics = []kmsg.CreateTopicsRequestTopic{admCreateTopic(name, 3, 1, "retention.ms", "1000")}
		resp := admCall[*kmsg.CreateTopicsResponse](t, b, req, v)
		if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || resp.Topics[0].Topic != name {
			t.Fatalf("v%d: %+v", v, resp.Topics)
		}
		st := resp.Topics[0]
		tp := b.topics.get(name)
		if tp == nil || len(tp.partitions) != 3 || tp.config.RetentionAge.Milliseconds() != 1000 {
			t.Fatalf("v%d: topic %+v", v, tp)
		}
		if v >= 5 {
			if st.NumPartitions != 3 || st.ReplicationFactor != 1 || len(st.Configs) != len(topicconfig.Keys()) {
				t.Fatalf("v%d: partitions %d rf %d configs %d", v, st.NumPartitions, st.ReplicationFactor, len(st.Configs))
			}
			for _, c := range st.Configs {
				if c.Name == "retention.ms" && (c.Value == nil || *c.Value != "1000" || c.Source != int8(kmsg.ConfigSourceDynamicTopicConfig)) {
					t.Fatalf("v%d: retention.ms entry %+v", v, c)
				}
			}
		}
		if v >= 7 && st.TopicID != tp.id {
			t.Fatalf("v%d: topic id %x, want %x", v, st.TopicID, tp.id)
		}
	}
}

func TestCreateTopicsErrors(t *testing.T) {
	b := admNew(t)
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Topics = []kmsg.CreateTopicsRequestTopic{admCreateTopic("exists", 1, 1)}
	if resp := admCall[*kmsg.CreateTopicsResponse](t, b, req, 7); resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("%+v", resp.Topics[0])
	}

	assign := func(name string, replicas ...[]int32) kmsg.CreateTopicsRequestTopic {
		rt := admCreateTopic(name, -1, -1)
		for i, r := range replicas {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = int32(i), r
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		}
		return rt
	}
	cases := []struct {
		topic kmsg.CreateTopicsRequestTopic
		err   *kerr.Error
		msg   string
	}{
		{admCreateTopic("exists", 1, 1), kerr.TopicAlreadyExists, "already exists"},
		{admCreateTopic("exists", 1, 1, "cleanup.policy", "compact"), kerr.TopicAlreadyExists, "already exists"},
		{admCreateTopic("bad name", 1, 1), kerr.InvalidTopicException, "illegal"},
		{admCreateTopic(strings.Repeat("x", 250), 1, 1), kerr.InvalidTopicException, "249"},
		{admCreateTopic("..", 1, 1), kerr.InvalidTopicException, ""},
		{admCreateTopic("zero", 0, 1), kerr.InvalidPartitions, "non-positive"},
		{admCreateTopic("neg", -2, 1), kerr.InvalidPartitions, "non-positive"},
		{admCreateTopic("rf3", 1, 3), kerr.InvalidReplicationFactor, "only 1 broker"},
		{admCreateTopic("rf0", 1, 0), kerr.InvalidReplicationFactor, "larger than 0"},
		{admCreateTopic("cfg", 1, 1, "segment.bytes", "10"), kerr.InvalidConfig, `"10"`},
		{admCreateTopic("compact", 1, 1, "cleanup.policy", "compact,shred"), kerr.InvalidConfig, "delete and compact"},
		{admCreateTopic("unknown", 1, 1, "foo.bar", "1"), kerr.InvalidConfig, "foo.bar"},
		{admCreateTopic("dupcfg", 1, 1, "retention.ms", "1", "retention.ms", "2"), kerr.InvalidRequest, "retention.ms"},
		{assign("other-broker", []int32{2}), kerr.InvalidReplicaAssignment, "broker 2"},
		{assign("two-replicas", []int32{1, 1}), kerr.InvalidReplicaAssignment, ""},
		{assign("empty-replicas", []int32{}), kerr.InvalidReplicaAssignment, ""},
	}
	mixed := assign("mixed", []int32{1})
	mixed.NumPartitions = 1
	cases = append(cases, struct {
		topic kmsg.CreateTopicsRequestTopic
		err   *kerr.Error
		msg   string
	}{mixed, kerr.InvalidRequest, "Both"})
	for _, tc := range cases {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Topics = []kmsg.CreateTopicsRequestTopic{tc.topic}
		resp := admCall[*kmsg.CreateTopicsResponse](t, b, req, 7)
		st := resp.Topics[0]
		if st.ErrorCode != tc.err.Code || st.ErrorMessage == nil || !strings.Contains(*st.ErrorMessage, tc.msg) {
			t.Errorf("%.20s: code %d msg %v, want %s containing %q", tc.topic.Topic, st.ErrorCode, kmsg.StringPtr(deref(st.ErrorMessage)), tc.err.Message, tc.msg)
		}
		if st.NumPartitions != -1 || st.ReplicationFactor != -1 || st.TopicID != ([16]byte{}) {
			t.Errorf("%.20s: error response fields %+v", tc.topic.Topic, st)
		}
	}
	if n := len(b.topics.all()); n != 2 { // the one created and __consumer_offsets
		t.Fatalf("%d topics exist after failed creates", n)
	}

	// Duplicates within one request: every mention fails.
	req = kmsg.NewPtrCreateTopicsRequest()
	req.Topics = []kmsg.CreateTopicsRequestTopic{admCreateTopic("dup", 1, 1), admCreateTopic("dup", 1, 1), admCreateTopic("single", 1, 1)}
	resp := admCall[*kmsg.CreateTopicsResponse](t, b, req, 4)
	if resp.Topics[0].ErrorCode != kerr.InvalidRequest.Code || resp.Topics[1].ErrorCode != kerr.InvalidRequest.Code || resp.Topics[2].ErrorCode != 0 {
		t.Fatalf("duplicates: %+v", resp.Topics)
	}
}

func TestCreateTopicsDefaultsAssignmentsValidateOnly(t *testing.T) {
	b := admNew(t)
	req := kmsg.NewPtrCreateTopicsRequest()
	a0, a1 := kmsg.NewCreateTopicsRequestTopicReplicaAssignment(), kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	a0.Partition, a0.Replicas = 1, []int32{1}
	a1.Partition, a1.Replicas = 0, []int32{1}
	manual := admCreateTopic("manual", -1, -1)
	manual.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{a0, a1}
	req.Topics = []kmsg.CreateTopicsRequestTopic{admCreateTopic("defaults", -1, -1), manual}
	resp := admCall[*kmsg.CreateTopicsResponse](t, b, req, 5)
	for _, st := range resp.Topics {
		if st.ErrorCode != 0 || st.NumPartitions != 2 {
			t.Fatalf("%+v", st)
		}
	}

	req = kmsg.NewPtrCreateTopicsRequest()
	req.ValidateOnly = true
	req.Topics = []kmsg.CreateTopicsRequestTopic{admCreateTopic("dry", 4, 1, "retention.ms", "5"), admCreateTopic("dry-bad", 1, 1, "retention.ms", "x")}
	resp = admCall[*kmsg.CreateTopicsResponse](t, b, req, 7)
	if st := resp.Topics[0]; st.ErrorCode != 0 || st.NumPartitions != 4 || len(st.Configs) == 0 {
		t.Fatalf("validate only: %+v", st)
	}
	if resp.Topics[1].ErrorCode != kerr.InvalidConfig.Code {
		t.Fatalf("validate only, bad config: %+v", resp.Topics[1])
	}
	if b.topics.get("dry") != nil {
		t.Fatal("validate_only created the topic")
	}
	if v0 := admCall[*kmsg.CreateTopicsResponse](t, b, req, 0); v0.Topics[1].ErrorCode != kerr.InvalidConfig.Code {
		t.Fatalf("v0: %+v", v0.Topics)
	}
}
