package broker

// DeleteGroups (key 42), versions 0–3.
//
// An empty group is deleted with its committed offsets: a tombstone per
// offset, then one for the group, durable in __consumer_offsets before the
// response. A group with members is NON_EMPTY_GROUP, an unknown one
// GROUP_ID_NOT_FOUND. While the coordinator loads:
// COORDINATOR_LOAD_IN_PROGRESS for each group; a failed append:
// NOT_COORDINATOR.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/group"
	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleDeleteGroups(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.DeleteGroupsRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	return deferGroupReply(b, r,
		func(c *group.Coordinator, _ time.Time) (kmsg.Response, group.Ticket, group.Result) {
			resp, res := c.DeleteGroups(req)
			return resp, 0, res
		},
		func(code int16) kmsg.Response {
			resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
			for _, g := range req.Groups {
				rg := kmsg.NewDeleteGroupsResponseGroup()
				rg.Group, rg.ErrorCode = g, code
				resp.Groups = append(resp.Groups, rg)
			}
			return resp
		},
		nil,
	), nil
}
