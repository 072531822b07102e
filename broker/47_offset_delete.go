package broker

// OffsetDelete (key 47), version 0.
//
// Deletes committed offsets of a group: any of an empty group's; of a
// consumer group with members, only those of topics no member subscribes
// to (others: GROUP_SUBSCRIBED_TO_TOPIC); any other non-empty group is
// NON_EMPTY_GROUP. Each deletion is a tombstone, durable before the
// response. While the coordinator loads: COORDINATOR_LOAD_IN_PROGRESS.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/group"
	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleOffsetDelete(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.OffsetDeleteRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	return deferGroupReply(b, r,
		func(c *group.Coordinator, _ time.Time) (kmsg.Response, group.Ticket, group.Result) {
			resp, res := c.OffsetDelete(req)
			return resp, 0, res
		},
		func(code int16) kmsg.Response {
			resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
			resp.ErrorCode = code
			return resp
		},
		nil,
	), nil
}
