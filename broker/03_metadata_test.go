package broker

import (
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/wire"
)

func admMetadataTopics(names ...string) []kmsg.MetadataRequestTopic {
	out := []kmsg.MetadataRequestTopic{}
	for _, n := range names {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		out = append(out, rt)
	}
	return out
}

func TestMetadataAllVersions(t *testing.T) {
	b := admNew(t)
	if _, err := b.topics.create("existing", 3, nil); err != nil {
		t.Fatal(err)
	}
	for v := int16(0); v <= 12; v++ {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = admMetadataTopics("existing")
		resp := admCall[*kmsg.MetadataResponse](t, b, req, v)
		if len(resp.Brokers) != 1 {
			t.Fatalf("v%d brokers %+v", v, resp.Brokers)
		}
		br := resp.Brokers[0]
		if br.NodeID != 1 || br.Host != "broker.example" || br.Port != 19092 || br.Rack != nil {
			t.Fatalf("v%d broker %+v", v, br)
		}
		if v >= 1 && resp.ControllerID != 1 {
			t.Fatalf("v%d controller %d", v, resp.ControllerID)
		}
		if v >= 2 && (resp.ClusterID == nil || *resp.ClusterID != b.ClusterID() || *resp.ClusterID == "") {
			t.Fatalf("v%d cluster id %v", v, resp.ClusterID)
		}
		if len(resp.Topics) != 1 {
			t.Fatalf("v%d topics %+v", v, resp.Topics)
		}
		mt := resp.Topics[0]
		if mt.ErrorCode != 0 || *mt.Topic != "existing" || len(mt.Partitions) != 3 {
			t.Fatalf("v%d topic %+v", v, mt)
		}
		if v >= 10 && mt.TopicID != b.topics.get("existing").id {
			t.Fatalf("v%d topic id", v)
		}
		if v >= 8 && mt.AuthorizedOperations != -2147483648 {
			t.Fatalf("v%d authorized operations %d", v, mt.AuthorizedOperations)
		}
		for i, p := range mt.Partitions {
			if p.Partition != int32(i) || p.Leader != 1 || len(p.Replicas) != 1 || p.Replicas[0] != 1 || len(p.ISR) != 1 || p.ISR[0] != 1 {
				t.Fatalf("v%d partition %+v", v, p)
			}
			if v >= 7 && p.LeaderEpoch < 0 {
				t.Fatalf("v%d leader epoch %d", v, p.LeaderEpoch)
			}
		}
	}
}

func TestMetadataTopicSelection(t *testing.T) {
	b := admNew(t)
	for _, n := range []string{"a", "b"} {
		if _, err := b.topics.create(n, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	count := func(v int16, topics []kmsg.MetadataRequestTopic) int {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = topics
		return len(admCall[*kmsg.MetadataResponse](t, b, req, v).Topics)
	}
	// All topics: the two created and __consumer_offsets.
	if n := count(0, []kmsg.MetadataRequestTopic{}); n != 3 {
		t.Fatalf("v0 empty list: %d topics, want all", n)
	}
	if n := count(1, nil); n != 3 {
		t.Fatalf("v1 null: %d topics, want all", n)
	}
	if n := count(12, nil); n != 3 {
		t.Fatalf("v12 null: %d topics, want all", n)
	}
	if n := count(1, []kmsg.MetadataRequestTopic{}); n != 0 {
		t.Fatalf("v1 empty list: %d topics, want none", n)
	}
	if n := count(9, admMetadataTopics("a", "a")); n != 1 {
		t.Fatalf("duplicate names: %d topics", n)
	}
}

func TestMetadataAutoCreate(t *testing.T) {
	b := admNew(t)
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = admMetadataTopics("auto", "bad name", "no-auto")
	req.AllowAutoTopicCreation = true
	resp := admCall[*kmsg.MetadataResponse](t, b, req, 3) // < v4: always allowed
	if mt := resp.Topics[0]; mt.ErrorCode != 0 || len(mt.Partitions) != 2 {
		t.Fatalf("auto-created: %+v", mt)
	}
	if resp.Topics[1].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("invalid name: %+v", resp.Topics[1])
	}
	if b.topics.get("auto") == nil || b.topics.get("no-auto") == nil {
		t.Fatal("topics not created")
	}

	// v4+: only when the request allows it.
	req.Topics = admMetadataTopics("not-allowed", "bad name")
	req.AllowAutoTopicCreation = false
	resp = admCall[*kmsg.MetadataResponse](t, b, req, 12)
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || b.topics.get("not-allowed") != nil {
		t.Fatalf("not allowed: %+v", resp.Topics[0])
	}
	if resp.Topics[1].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("invalid name without auto-create: %+v", resp.Topics[1])
	}

	// Broker-level switch off.
	cfg := b.cfg
	cfg.DataDir = t.TempDir()
	cfg.AutoCreateTopics = false
	b2 := admOpen(t, cfg)
	req.Topics = admMetadataTopics("nope")
	req.AllowAutoTopicCreation = true
	resp = admCall[*kmsg.MetadataResponse](t, b2, req, 7)
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || b2.topics.get("nope") != nil {
		t.Fatalf("auto.create.topics.enable=false: %+v", resp.Topics[0])
	}

	// Collision under '.'/'_' equivalence.
	req.Topics = admMetadataTopics("a.b")
	admCall[*kmsg.MetadataResponse](t, b, req, 12)
	req.Topics = admMetadataTopics("a_b")
	resp = admCall[*kmsg.MetadataResponse](t, b, req, 12)
	if resp.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("collision: %+v", resp.Topics[0])
	}
}

func TestMetadataByTopicID(t *testing.T) {
	b := admNew(t)
	tp, err := b.topics.create("byid", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	known, unknown := kmsg.NewMetadataRequestTopic(), kmsg.NewMetadataRequestTopic()
	known.TopicID = tp.id
	unknown.TopicID = [16]byte{9}
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{known, unknown}
	req.IncludeTopicAuthorizedOperations = true
	resp := admCall[*kmsg.MetadataResponse](t, b, req, 12)
	if mt := resp.Topics[0]; mt.ErrorCode != 0 || mt.Topic == nil || *mt.Topic != "byid" || mt.TopicID != tp.id || len(mt.Partitions) != 2 {
		t.Fatalf("by id: %+v", mt)
	}
	if mt := resp.Topics[0]; mt.AuthorizedOperations != topicAuthorizedOps {
		t.Fatalf("requested authorized operations: %d", mt.AuthorizedOperations)
	}
	if mt := resp.Topics[1]; mt.ErrorCode != kerr.UnknownTopicID.Code || mt.TopicID != unknown.TopicID {
		t.Fatalf("unknown id: %+v", mt)
	}
}

// Concurrent Metadata requests auto-creating the same topic all succeed and
// create it once.
func TestMetadataAutoCreateConcurrent(t *testing.T) {
	b := admNew(t)
	const n = 8
	ids := make(chan [16]byte, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := kmsg.NewPtrMetadataRequest()
			req.Topics = admMetadataTopics("raced")
			req.AllowAutoTopicCreation = true
			req.SetVersion(12)
			rep, err := b.handleMetadata(&wire.Request{Header: wire.Header{APIKey: 3, APIVersion: 12}, Body: req})
			if err != nil {
				t.Error(err)
				return
			}
			mt := rep.Msg.(*kmsg.MetadataResponse).Topics[0]
			if mt.ErrorCode != 0 {
				t.Errorf("error %d", mt.ErrorCode)
			}
			ids <- mt.TopicID
		}()
	}
	wg.Wait()
	close(ids)
	want := b.topics.get("raced").id
	for id := range ids {
		if id != want {
			t.Fatalf("topic id %x, want %x", id, want)
		}
	}
}
