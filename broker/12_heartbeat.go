package broker

// Heartbeat (key 12), versions 0–4.
//
// Keeps a member's session alive; answers REBALANCE_IN_PROGRESS while the
// group rebalances (the member then rejoins), ILLEGAL_GENERATION,
// UNKNOWN_MEMBER_ID, and (v3+, static members) FENCED_INSTANCE_ID as Kafka
// does. Nothing is persisted. While the coordinator loads:
// COORDINATOR_LOAD_IN_PROGRESS.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/group"
	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleHeartbeat(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.HeartbeatRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	var resp *kmsg.HeartbeatResponse
	if b.groups.locked(func(c *group.Coordinator, now time.Time) { resp = c.Heartbeat(now, req) }) {
		resp = req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
	}
	return wire.Completed(resp), nil
}
