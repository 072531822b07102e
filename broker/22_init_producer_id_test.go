package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestInitProducerID(t *testing.T) {
	b := dpBroker(t)
	seen := map[int64]bool{}
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = v
		req.TransactionTimeoutMillis = 60000
		if v >= 3 {
			// A producer asking to bump its epoch (KIP-360) still gets a
			// fresh id, as Kafka does without a transactional id.
			req.ProducerID, req.ProducerEpoch = 7, 3
		}
		resp := dpCall(t, b, req).Msg.(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != 0 || resp.ProducerID < 0 || resp.ProducerEpoch != 0 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		if seen[resp.ProducerID] {
			t.Fatalf("v%d: producer id %d handed out twice", v, resp.ProducerID)
		}
		seen[resp.ProducerID] = true
	}

	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	req.TransactionalID = kmsg.StringPtr("txn")
	resp := dpCall(t, b, req).Msg.(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code || resp.ProducerID != -1 {
		t.Fatalf("transactional: %+v", resp)
	}
}
