package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func admIncOp(name string, op kmsg.IncrementalAlterConfigOp, value *string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Op, c.Value = name, op, value
	return c
}

func admIncAlter(t *testing.T, b *Broker, v int16, validateOnly bool, topic string, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) kmsg.IncrementalAlterConfigsResponseResource {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.ValidateOnly = validateOnly
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.Configs = kmsg.ConfigResourceTypeTopic, topic, ops
	req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{rr}
	return admCall[*kmsg.IncrementalAlterConfigsResponse](t, b, req, v).Resources[0]
}

func TestIncrementalAlterConfigs(t *testing.T) {
	b := admNew(t)
	seg := "2000000"
	if _, err := b.topics.create("inc", 1, map[string]*string{"segment.bytes": &seg}); err != nil {
		t.Fatal(err)
	}
	set, del := kmsg.IncrementalAlterConfigOpSet, kmsg.IncrementalAlterConfigOpDelete
	app, sub := kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract
	for v := int16(0); v <= 1; v++ {
		r := admIncAlter(t, b, v, false, "inc", admIncOp("retention.ms", set, kmsg.StringPtr("1234")), admIncOp("segment.bytes", del, nil))
		if r.ErrorCode != 0 {
			t.Fatalf("v%d: %+v %v", v, r, deref(r.ErrorMessage))
		}
		tp := b.topics.get("inc")
		if tp.config.RetentionAge.Milliseconds() != 1234 || tp.config.SegmentBytes != 1<<30 || len(tp.overrides) != 1 {
			t.Fatalf("v%d: %+v %v", v, tp.config, tp.overrides)
		}
	}
	// APPEND of an item already there keeps the list; SUBTRACT to empty is invalid.
	if r := admIncAlter(t, b, 1, false, "inc", admIncOp("cleanup.policy", app, kmsg.StringPtr("delete"))); r.ErrorCode != 0 {
		t.Fatalf("append: %+v", r)
	}
	if got := b.topics.get("inc").overrides["cleanup.policy"]; got != "delete" {
		t.Fatalf("cleanup.policy override %q", got)
	}
	cases := []struct {
		ops  []kmsg.IncrementalAlterConfigsRequestResourceConfig
		code int16
	}{
		{[]kmsg.IncrementalAlterConfigsRequestResourceConfig{admIncOp("cleanup.policy", sub, kmsg.StringPtr("delete"))}, kerr.InvalidConfig.Code},
		{[]kmsg.IncrementalAlterConfigsRequestResourceConfig{admIncOp("cleanup.policy", app, kmsg.StringPtr("shred"))}, kerr.InvalidConfig.Code},
		{[]kmsg.IncrementalAlterConfigsRequestResourceConfig{admIncOp("retention.ms", app, kmsg.StringPtr("1"))}, kerr.InvalidConfig.Code},
		{[]kmsg.IncrementalAlterConfigsRequestResourceConfig{admIncOp("retention.ms", set, kmsg.StringPtr("-5"))}, kerr.InvalidConfig.Code},
		{[]kmsg.IncrementalAlterConfigsRequestResourceConfig{admIncOp("no.such.key", del, nil)}, kerr.InvalidConfig.Code},
		{[]kmsg.IncrementalAlterConfigsRequestResourceConfig{admIncOp("retention.ms", set, nil)}, kerr.InvalidRequest.Code},
		{[]kmsg.IncrementalAlterConfigsRequestResourceConfig{admIncOp("retention.ms", 9, kmsg.StringPtr("1"))}, kerr.InvalidRequest.Code},
		{[]kmsg.IncrementalAlterConfigsRequestResourceConfig{admIncOp("retention.ms", set, kmsg.StringPtr("1")), admIncOp("retention.ms", del, nil)}, kerr.InvalidRequest.Code},
	}
	for i, tc := range cases {
		if r := admIncAlter(t, b, 1, false, "inc", tc.ops...); r.ErrorCode != tc.code || r.ErrorMessage == nil {
			t.Errorf("case %d: code %d (%v), want %d", i, r.ErrorCode, deref(r.ErrorMessage), tc.code)
		}
	}
	if r := admIncAlter(t, b, 0, false, "missing", admIncOp("retention.ms", del, nil)); r.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %+v", r)
	}
	if r := admIncAlter(t, b, 1, true, "inc", admIncOp("retention.ms", set, kmsg.StringPtr("99"))); r.ErrorCode != 0 {
		t.Fatalf("validate only: %+v", r)
	}
	if tp := b.topics.get("inc"); tp.config.RetentionAge.Milliseconds() != 1234 || tp.config.CleanupPolicy != "delete" {
		t.Fatalf("failed or validate-only ops changed the config: %+v", tp.config)
	}
}

// A config change reaches the live partitions: lowering retention.bytes on
// a topic with several closed segments lets the next retention pass delete
// them.
func TestIncrementalAlterConfigsAppliesToPartitions(t *testing.T) {
	b := admNew(t)
	seg := "100" // about one batch per segment
	if _, err := b.topics.create("live", 1, map[string]*string{"internal.segment.bytes": &seg}); err != nil {
		t.Fatal(err)
	}
	admProduce(t, b, "live", 0, 5, 2)
	p := b.topics.get("live").partition(0)
	b.topics.applyRetention(time.Now())
	if start := p.LogStartOffset(); start != 0 {
		t.Fatalf("retention deleted data under the default retention: start %d", start)
	}
	r := admIncAlter(t, b, 1, false, "live", admIncOp("retention.bytes", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("100")))
	if r.ErrorCode != 0 {
		t.Fatalf("%+v", r)
	}
	b.topics.applyRetention(time.Now())
	if start := p.LogStartOffset(); start == 0 {
		t.Fatal("retention.bytes change did not reach the partition")
	}
}
