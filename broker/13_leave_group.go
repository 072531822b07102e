package broker

// LeaveGroup (key 13), versions 0–5.
//
// v0–v2 name one member; v3+ a batch, each by member id, instance id
// (KIP-345 administrative removal) or both, with a per-member error. The
// leave starts a rebalance (or empties the group: its metadata record is
// durable before the response). While the coordinator loads:
// COORDINATOR_LOAD_IN_PROGRESS.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/group"
	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleLeaveGroup(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.LeaveGroupRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	return deferGroupReply(b, r,
		func(c *group.Coordinator, now time.Time) (kmsg.Response, group.Ticket, group.Result) {
			resp, res := c.LeaveGroup(now, req)
			return resp, 0, res
		},
		func(code int16) kmsg.Response {
			resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
			resp.ErrorCode = code
			return resp
		},
		nil,
	), nil
}
