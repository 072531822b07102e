package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/topicconfig"
)

func admDescribe(t *testing.T, b *Broker, v int16, typ kmsg.ConfigResourceType, name string, keys []string, synonyms, docs bool) kmsg.DescribeConfigsResponseResource {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = typ, name, keys
	req.Resources = []kmsg.DescribeConfigsRequestResource{rr}
	req.IncludeSynonyms, req.IncludeDocumentation = synonyms, docs
	resp := admCall[*kmsg.DescribeConfigsResponse](t, b, req, v)
	if len(resp.Resources) != 1 {
		t.Fatalf("resources: %+v", resp.Resources)
	}
	return resp.Resources[0]
}

func admConfigByName(cs []kmsg.DescribeConfigsResponseResourceConfig) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	m := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range cs {
		m[c.Name] = c
	}
	return m
}

func TestDescribeConfigsTopic(t *testing.T) {
	cfg := admTestConfig(t.TempDir())
	// A broker-level default that differs from Kafka's.
	cfg.TopicDefaults.SegmentBytes = 1 << 20
	b := admOpen(t, cfg)
	ms := "1000"
	if _, err := b.topics.create("described", 1, map[string]*string{"retention.ms": &ms}); err != nil {
		t.Fatal(err)
	}
	for v := int16(0); v <= 4; v++ {
		res := admDescribe(t, b, v, kmsg.ConfigResourceTypeTopic, "described", nil, true, true)
		if res.ErrorCode != 0 || len(res.Configs) != len(topicconfig.Keys()) {
			t.Fatalf("v%d: %+v", v, res)
		}
		m := admConfigByName(res.Configs)
		ret, seg, pol := m["retention.ms"], m["segment.bytes"], m["cleanup.policy"]
		if *ret.Value != "1000" || *seg.Value != "1048576" || *pol.Value != "delete" {
			t.Fatalf("v%d values: %v %v %v", v, *ret.Value, *seg.Value, *pol.Value)
		}
		if ret.IsDefault || seg.IsDefault || (v == 0 && !pol.IsDefault) || ret.ReadOnly {
			t.Fatalf("v%d is_default/read_only: %+v %+v %+v", v, ret, seg, pol)
		}
		if v >= 1 {
			if ret.Source != kmsg.ConfigSourceDynamicTopicConfig || seg.Source != kmsg.ConfigSourceStaticBrokerConfig || pol.Source != kmsg.ConfigSourceDefaultConfig {
				t.Fatalf("v%d sources: %v %v %v", v, ret.Source, seg.Source, pol.Source)
			}
			// Synonyms, most specific first.
			if len(ret.ConfigSynonyms) != 2 || ret.ConfigSynonyms[0].Name != "retention.ms" || ret.ConfigSynonyms[1].Name != "log.retention.ms" || *ret.ConfigSynonyms[1].Value != "604800000" {
				t.Fatalf("v%d retention.ms synonyms: %+v", v, ret.ConfigSynonyms)
			}
			if len(seg.ConfigSynonyms) != 2 || seg.ConfigSynonyms[0].Name != "log.segment.bytes" || seg.ConfigSynonyms[0].Source != kmsg.ConfigSourceStaticBrokerConfig || *seg.ConfigSynonyms[1].Value != "1073741824" {
				t.Fatalf("v%d segment.bytes synonyms: %+v", v, seg.ConfigSynonyms)
			}
		}
		if v >= 3 && (ret.Documentation == nil || ret.ConfigType != kmsg.ConfigTypeLong) {
			t.Fatalf("v%d documentation/type: %+v", v, ret)
		}
	}
	// Named keys only; no synonyms or docs unless asked.
	res := admDescribe(t, b, 4, kmsg.ConfigResourceTypeTopic, "described", []string{"segment.ms", "no.such"}, false, false)
	if len(res.Configs) != 1 || res.Configs[0].Name != "segment.ms" || res.Configs[0].ConfigSynonyms != nil || res.Configs[0].Documentation != nil {
		t.Fatalf("named keys: %+v", res.Configs)
	}
	if res := admDescribe(t, b, 4, kmsg.ConfigResourceTypeTopic, "missing", nil, false, false); res.ErrorCode != kerr.UnknownTopicOrPartition.Code || res.ErrorMessage == nil {
		t.Fatalf("unknown topic: %+v", res)
	}
	if res := admDescribe(t, b, 1, kmsg.ConfigResourceTypeTopic, "bad name", nil, false, false); res.ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("invalid topic: %+v", res)
	}
	if res := admDescribe(t, b, 1, kmsg.ConfigResourceTypeBrokerLogger, "1", nil, false, false); res.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("broker logger: %+v", res)
	}
}

func TestDescribeConfigsBroker(t *testing.T) {
	b := admNew(t)
	for v := int16(0); v <= 4; v++ {
		res := admDescribe(t, b, v, kmsg.ConfigResourceTypeBroker, "1", nil, true, false)
		if res.ErrorCode != 0 {
			t.Fatalf("v%d: %+v", v, res)
		}
		m := admConfigByName(res.Configs)
		want := map[string]string{
			"log.segment.bytes":         "1073741824",
			"log.retention.ms":          "604800000",
			"log.retention.bytes":       "-1",
			"log.cleanup.policy":        "delete",
			"message.max.bytes":         "1048588",
			"num.partitions":            "2",
			"auto.create.topics.enable": "true",
			"node.id":                   "1",
			"advertised.listeners":      "PLAINTEXT://broker.example:19092",
		}
		for k, val := range want {
			c, ok := m[k]
			if !ok || c.Value == nil || *c.Value != val || !c.ReadOnly {
				t.Fatalf("v%d %s: %+v", v, k, c)
			}
			if v >= 1 && c.Source != kmsg.ConfigSourceStaticBrokerConfig {
				t.Fatalf("v%d %s source %v", v, k, c.Source)
			}
		}
	}
	if res := admDescribe(t, b, 2, kmsg.ConfigResourceTypeBroker, "", nil, false, false); res.ErrorCode != 0 || len(res.Configs) != 0 {
		t.Fatalf("cluster-wide dynamic defaults: %+v", res)
	}
	if res := admDescribe(t, b, 2, kmsg.ConfigResourceTypeBroker, "2", nil, false, false); res.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("other broker: %+v", res)
	}
}
