package broker

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func admAlter(typ kmsg.ConfigResourceType, name string, kv ...string) kmsg.AlterConfigsRequestResource {
	rr := kmsg.NewAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = typ, name
	for i := 0; i+1 < len(kv); i += 2 {
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name, c.Value = kv[i], kmsg.StringPtr(kv[i+1])
		rr.Configs = append(rr.Configs, c)
	}
	return rr
}

func TestAlterConfigs(t *testing.T) {
	cfg := admTestConfig(t.TempDir())
	b := admOpen(t, cfg)
	seg := "2000000"
	if _, err := b.topics.create("alter", 2, map[string]*string{"segment.bytes": &seg}); err != nil {
		t.Fatal(err)
	}
	topic := kmsg.ConfigResourceTypeTopic
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrAlterConfigsRequest()
		req.Resources = []kmsg.AlterConfigsRequestResource{admAlter(topic, "alter", "retention.ms", "60000", "max.message.bytes", "1000")}
		resp := admCall[*kmsg.AlterConfigsResponse](t, b, req, v)
		if r := resp.Resources[0]; r.ErrorCode != 0 || r.ResourceName != "alter" || r.ResourceType != topic {
			t.Fatalf("v%d: %+v", v, r)
		}
	}
	tp := b.topics.get("alter")
	// The override set was replaced: segment.bytes is back to the default.
	if tp.config.RetentionAge.Milliseconds() != 60000 || tp.config.MaxMessageBytes != 1000 || tp.config.SegmentBytes != 1<<30 || len(tp.overrides) != 2 {
		t.Fatalf("config %+v overrides %v", tp.config, tp.overrides)
	}

	cases := []struct {
		rr   kmsg.AlterConfigsRequestResource
		code int16
		msg  string
	}{
		{admAlter(topic, "alter", "retention.ms", "soon"), kerr.InvalidConfig.Code, "soon"},
		{admAlter(topic, "alter", "cleanup.policy", "compact,shred"), kerr.InvalidConfig.Code, "delete and compact"},
		{admAlter(topic, "alter", "retention.ms", "1", "retention.ms", "2"), kerr.InvalidRequest.Code, "duplicate"},
		{admAlter(topic, "missing", "retention.ms", "1"), kerr.UnknownTopicOrPartition.Code, "missing"},
		{admAlter(topic, "bad/name"), kerr.InvalidTopicException.Code, ""},
		{admAlter(kmsg.ConfigResourceTypeBroker, "1", "log.retention.ms", "1"), kerr.InvalidRequest.Code, "dynamic broker configs"},
		{admAlter(kmsg.ConfigResourceTypeBroker, "", "log.retention.ms", "1"), kerr.InvalidRequest.Code, "dynamic broker configs"},
		{admAlter(kmsg.ConfigResourceTypeBrokerLogger, "1"), kerr.InvalidRequest.Code, "Unsupported"},
	}
	for i, tc := range cases {
		req := kmsg.NewPtrAlterConfigsRequest()
		req.Resources = []kmsg.AlterConfigsRequestResource{tc.rr}
		r := admCall[*kmsg.AlterConfigsResponse](t, b, req, 1).Resources[0]
		if r.ErrorCode != tc.code || r.ErrorMessage == nil || !strings.Contains(*r.ErrorMessage, tc.msg) {
			t.Errorf("case %d: code %d msg %q, want %d containing %q", i, r.ErrorCode, deref(r.ErrorMessage), tc.code, tc.msg)
		}
	}
	nullValue := admAlter(topic, "alter")
	nullValue.Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms"}}
	req := kmsg.NewPtrAlterConfigsRequest()
	req.Resources = []kmsg.AlterConfigsRequestResource{nullValue, admAlter(topic, "alter"), admAlter(topic, "alter")}
	resp := admCall[*kmsg.AlterConfigsResponse](t, b, req, 2)
	for i, r := range resp.Resources {
		if r.ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("null/duplicate resource %d: %+v", i, r)
		}
	}

	// validate_only changes nothing.
	req = kmsg.NewPtrAlterConfigsRequest()
	req.ValidateOnly = true
	req.Resources = []kmsg.AlterConfigsRequestResource{admAlter(topic, "alter", "retention.ms", "5")}
	if r := admCall[*kmsg.AlterConfigsResponse](t, b, req, 0).Resources[0]; r.ErrorCode != 0 {
		t.Fatalf("validate only: %+v", r)
	}
	if b.topics.get("alter").config.RetentionAge.Milliseconds() != 60000 {
		t.Fatal("validate_only changed the config")
	}

	// Persisted.
	admClose(t, b)
	b = admOpen(t, cfg)
	tp = b.topics.get("alter")
	if tp.config.RetentionAge.Milliseconds() != 60000 || tp.config.MaxMessageBytes != 1000 || tp.config.SegmentBytes != 1<<30 {
		t.Fatalf("after restart: %+v", tp.config)
	}
}
