package broker

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDeleteTopicsByName(t *testing.T) {
	b := admNew(t)
	for v := int16(0); v <= 5; v++ {
		if _, err := b.topics.create("doomed", 2, nil); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TopicNames = []string{"doomed", "never-existed"}
		resp := admCall[*kmsg.DeleteTopicsResponse](t, b, req, v)
		if len(resp.Topics) != 2 || resp.Topics[0].ErrorCode != 0 || *resp.Topics[0].Topic != "doomed" {
			t.Fatalf("v%d: %+v", v, resp.Topics)
		}
		if resp.Topics[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("v%d unknown: %+v", v, resp.Topics[1])
		}
		if v >= 5 && resp.Topics[1].ErrorMessage == nil {
			t.Fatalf("v%d: no error message", v)
		}
		if b.topics.get("doomed") != nil {
			t.Fatalf("v%d: topic still registered", v)
		}
		for p := 0; p < 2; p++ {
			if _, err := os.Stat(filepath.Join(b.cfg.DataDir, "doomed-"+string(rune('0'+p)))); !os.IsNotExist(err) {
				t.Fatalf("v%d: partition directory remains: %v", v, err)
			}
		}
	}
}

func TestDeleteTopicsByID(t *testing.T) {
	b := admNew(t)
	tp, err := b.topics.create("by-id", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.topics.create("twice", 1, nil); err != nil {
		t.Fatal(err)
	}
	byID, unknown, both := kmsg.NewDeleteTopicsRequestTopic(), kmsg.NewDeleteTopicsRequestTopic(), kmsg.NewDeleteTopicsRequestTopic()
	byID.TopicID = tp.id
	unknown.TopicID = [16]byte{7}
	both.Topic, both.TopicID = kmsg.StringPtr("twice"), [16]byte{1}
	twice := kmsg.NewDeleteTopicsRequestTopic()
	twice.Topic = kmsg.StringPtr("twice")
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Topics = []kmsg.DeleteTopicsRequestTopic{byID, unknown, both, twice, twice}
	resp := admCall[*kmsg.DeleteTopicsResponse](t, b, req, 6)
	want := []int16{0, kerr.UnknownTopicID.Code, kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, kerr.InvalidRequest.Code}
	for i, st := range resp.Topics {
		if st.ErrorCode != want[i] {
			t.Errorf("topic %d: code %d want %d (%v)", i, st.ErrorCode, want[i], deref(st.ErrorMessage))
		}
	}
	if st := resp.Topics[0]; st.Topic == nil || *st.Topic != "by-id" || st.TopicID != tp.id {
		t.Fatalf("deleted by id: %+v", st)
	}
	if b.topics.get("by-id") != nil || b.topics.getByID(tp.id) != nil {
		t.Fatal("topic still registered")
	}
	if b.topics.get("twice") == nil {
		t.Fatal("topic named twice was deleted")
	}

	// Re-creating the name gives a new topic with a new id and empty partitions.
	again, err := b.topics.create("by-id", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.id == tp.id || again.partition(0).LogEndOffset() != 0 {
		t.Fatalf("re-created topic: id reused or data kept")
	}
}
