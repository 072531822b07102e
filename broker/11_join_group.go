package broker

// JoinGroup (key 11), versions 0–9.
//
// The classic rebalance protocol, decided by broker/group: a member joins
// (v4+: a new dynamic member first gets MEMBER_ID_REQUIRED with its id, as
// Kafka answers; v5+: static members by group.instance.id) and its response
// waits until the rebalance completes — every known member rejoined, the
// rebalance timeout passed, or, for an empty group, the initial rebalance
// delay (group.initial.rebalance.delay.ms) passed. The wait is a deferred
// reply (group_driver.go), so the connection keeps serving other requests;
// if the connection closes first, the coordinator's later answer is
// dropped. The member's client id and host (the header's client id, the
// peer IP as "/ip") are stored and shown by DescribeGroups. Records the
// join causes (a static member's rejoin, a group left empty) are durable in
// __consumer_offsets before any response goes out. While the coordinator
// loads: COORDINATOR_LOAD_IN_PROGRESS.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/group"
	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleJoinGroup(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.JoinGroupRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	client := groupClient(r)
	return deferGroupReply(b, r,
		func(c *group.Coordinator, now time.Time) (kmsg.Response, group.Ticket, group.Result) {
			resp, t, res := c.JoinGroup(now, req, client)
			if resp == nil {
				return nil, t, res
			}
			return resp, t, res
		},
		func(code int16) kmsg.Response {
			resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
			resp.ErrorCode, resp.Generation, resp.MemberID = code, -1, req.MemberID
			return resp
		},
		func(c group.Completion) kmsg.Response { return c.Join },
	), nil
}
