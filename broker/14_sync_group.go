package broker

// SyncGroup (key 14), versions 0–5.
//
// The leader's SyncGroup carries the assignment: broker/group stores it,
// emits the group metadata record, and answers every follower waiting in
// SyncGroup. The record is durable in __consumer_offsets before the leader
// or any follower is answered. A follower that syncs before the leader
// waits in a deferred reply (dropped if its connection closes). v5 checks
// protocol type and name (INCONSISTENT_GROUP_PROTOCOL). While the
// coordinator loads: COORDINATOR_LOAD_IN_PROGRESS; a failed append:
// NOT_COORDINATOR (the client rediscovers the coordinator and rejoins).

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/group"
	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleSyncGroup(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.SyncGroupRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	return deferGroupReply(b, r,
		func(c *group.Coordinator, now time.Time) (kmsg.Response, group.Ticket, group.Result) {
			resp, t, res := c.SyncGroup(now, req)
			if resp == nil {
				return nil, t, res
			}
			return resp, t, res
		},
		func(code int16) kmsg.Response {
			resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
			resp.ErrorCode = code
			return resp
		},
		func(c group.Completion) kmsg.Response { return c.Sync },
	), nil
}
