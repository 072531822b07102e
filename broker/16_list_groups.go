package broker

// ListGroups (key 16), versions 0–5.
//
// Every group this node coordinates (all of them: it leads every
// __consumer_offsets partition), with protocol type, and state (v4+, with
// the case-insensitive states filter) and type "classic" (v5+, with the
// types filter). While the coordinator loads: COORDINATOR_LOAD_IN_PROGRESS.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/group"
	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleListGroups(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.ListGroupsRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	var resp *kmsg.ListGroupsResponse
	if b.groups.locked(func(c *group.Coordinator, _ time.Time) { resp = c.ListGroups(req) }) {
		resp = req.ResponseKind().(*kmsg.ListGroupsResponse)
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
	}
	return wire.Completed(resp), nil
}
