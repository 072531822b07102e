package group

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups handles DescribeGroups v0–v6. A group this coordinator
// does not know is described as Dead (v6+: with GROUP_ID_NOT_FOUND and a
// message, as Kafka answers). Member metadata and assignments are shown
// only while the group is Stable, as in Kafka. AuthorizedOperations is left
// at kmsg's default (not requested); a driver with ACLs fills it in.
func (c *Coordinator) DescribeGroups(req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := kmsg.NewPtrDescribeGroupsResponse()
	resp.Version = req.Version
	for _, id := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = id
		if rg.ErrorCode = c.coordinatorError(id, true); rg.ErrorCode != 0 {
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		g := c.groups[id]
		if g == nil {
			rg.State = Dead.String()
			if req.Version >= 6 {
				rg.ErrorCode = kerr.GroupIDNotFound.Code
				msg := "Group " + id + " not found."
				rg.ErrorMessage = &msg
			}
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		rg.State = g.state.String()
		rg.ProtocolType = g.protocolType
		stable := g.state == Stable
		if stable {
			rg.Protocol = g.protocol
		}
		for _, mid := range g.order {
			m := g.members[mid]
			rm := kmsg.NewDescribeGroupsResponseGroupMember()
			rm.MemberID, rm.InstanceID = m.id, m.instanceID
			rm.ClientID, rm.ClientHost = m.clientID, m.clientHost
			rm.ProtocolMetadata, rm.MemberAssignment = []byte{}, []byte{}
			if stable {
				if md := m.metadataFor(g.protocol); md != nil {
					rm.ProtocolMetadata = md
				}
				if m.assignment != nil {
					rm.MemberAssignment = m.assignment
				}
			}
			rg.Members = append(rg.Members, rm)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// ListGroups handles ListGroups v0–v5 for the groups of the partitions this
// coordinator has loaded; the driver concatenates coordinators' answers.
// The state filter (v4+) and type filter (v5+) are case-insensitive; every
// group here is of type "classic".
func (c *Coordinator) ListGroups(req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := kmsg.NewPtrListGroupsResponse()
	resp.Version = req.Version
	if len(req.TypesFilter) > 0 && !containsFold(req.TypesFilter, "classic") {
		return resp
	}
	for _, id := range c.sortedGroupIDs() {
		g := c.groups[id]
		if !c.owned[c.partition(id)] {
			continue
		}
		if len(req.StatesFilter) > 0 && !containsFold(req.StatesFilter, g.state.String()) {
			continue
		}
		rg := kmsg.NewListGroupsResponseGroup()
		rg.Group, rg.ProtocolType = id, g.protocolType
		rg.GroupState, rg.GroupType = g.state.String(), "classic"
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// DeleteGroups handles DeleteGroups v0–v3: an empty group is deleted with
// its offsets (tombstones for each, then for the group); a group with
// members is refused with NON_EMPTY_GROUP.
func (c *Coordinator) DeleteGroups(req *kmsg.DeleteGroupsRequest) (*kmsg.DeleteGroupsResponse, Result) {
	var res Result
	resp := kmsg.NewPtrDeleteGroupsResponse()
	resp.Version = req.Version
	for _, id := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		rg.ErrorCode = c.deleteGroup(id, &res)
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, res
}

func (c *Coordinator) deleteGroup(id string, res *Result) int16 {
	if code := c.coordinatorError(id, true); code != 0 {
		return code
	}
	g := c.groups[id]
	switch {
	case g == nil:
		return kerr.GroupIDNotFound.Code
	case g.state != Empty:
		return kerr.NonEmptyGroup.Code
	}
	for _, t := range sortedTopics(g) {
		for _, p := range sortedPartitions(g.offsets[t]) {
			res.Records = append(res.Records, c.offsetRecord(id, t, p, nil))
		}
	}
	res.Records = append(res.Records, c.groupTombstone(id))
	delete(c.groups, id)
	return 0
}
