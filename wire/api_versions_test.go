package wire

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestAPIVersionsResponseFromTable(t *testing.T) {
	s, err := NewServer(Config{Name: "test"}, testAPIs())
	if err != nil {
		t.Fatal(err)
	}
	for v := int16(0); v <= 4; v++ {
		req := apiVersionsRequest(v)
		rep, err := s.handleAPIVersions(&Request{Header: Header{APIKey: 18, APIVersion: v}, Body: req})
		if err != nil || rep.Msg == nil || rep.Done != nil {
			t.Fatalf("v%d: %+v, %v", v, rep, err)
		}
		resp := rep.Msg.(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 || resp.ThrottleMillis != 0 || len(resp.ApiKeys) != len(s.apis) {
			t.Fatalf("v%d: %+v", v, resp)
		}
		for i, k := range resp.ApiKeys {
			if i > 0 && resp.ApiKeys[i-1].ApiKey >= k.ApiKey {
				t.Fatalf("keys not sorted: %+v", resp.ApiKeys)
			}
			a := s.apis[k.ApiKey]
			if a == nil || a.MinVersion != k.MinVersion || a.MaxVersion != k.MaxVersion {
				t.Fatalf("advertised %+v, table has %+v", k, a)
			}
			// Everything we advertise, kmsg can decode.
			if r := kmsg.RequestForKey(k.ApiKey); r == nil || r.MaxVersion() < k.MaxVersion {
				t.Fatalf("key %d v%d unknown to kmsg", k.ApiKey, k.MaxVersion)
			}
		}
		// It encodes and decodes at its version.
		resp.SetVersion(v)
		back := kmsg.NewPtrApiVersionsResponse()
		back.SetVersion(v)
		if err := back.ReadFrom(resp.AppendTo(nil)); err != nil || len(back.ApiKeys) != len(s.apis) {
			t.Fatalf("v%d round trip: %v", v, err)
		}
	}
}
