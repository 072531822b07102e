package broker

// DescribeGroups (key 15), versions 0–6.
//
// State, protocol type and members (client id, host "/ip", instance id);
// protocol, member metadata and assignments only while the group is
// Stable, as in Kafka. An unknown group is described as Dead (v6+: with
// GROUP_ID_NOT_FOUND and a message, as Kafka 4 answers).
// include_authorized_operations (v3+) is answered with
// authorized_operations omitted (-2147483648): there are no ACLs. While the
// coordinator loads: COORDINATOR_LOAD_IN_PROGRESS for each group.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/group"
	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleDescribeGroups(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.DescribeGroupsRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	var resp *kmsg.DescribeGroupsResponse
	if b.groups.locked(func(c *group.Coordinator, _ time.Time) { resp = c.DescribeGroups(req) }) {
		resp = req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for _, g := range req.Groups {
			rg := kmsg.NewDescribeGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, kerr.CoordinatorLoadInProgress.Code
			resp.Groups = append(resp.Groups, rg)
		}
	}
	return wire.Completed(resp), nil
}
