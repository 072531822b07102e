package group

import (
	"bytes"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func millis(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

func joinError(req *kmsg.JoinGroupRequest, memberID string, code int16) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = req.Version
	resp.ErrorCode = code
	resp.Generation = -1
	resp.MemberID = memberID
	return resp
}

func cloneProtocols(ps []kmsg.JoinGroupRequestProtocol) []protocol {
	out := make([]protocol, len(ps))
	for i, p := range ps {
		// Request bytes may alias a pooled frame: keep a copy.
		out[i] = protocol{name: p.Name, metadata: bytes.Clone(p.Metadata)}
	}
	return out
}

func sameProtocols(a, b []protocol) bool {
	return slices.EqualFunc(a, b, func(x, y protocol) bool {
		return x.name == y.name && bytes.Equal(x.metadata, y.metadata)
	})
}

// supportsProtocols is Kafka's GroupMetadata.supportsProtocols: an empty
// group accepts any non-empty protocol type and list; otherwise the type must
// match and one of the protocols must be supported by every member.
func (g *group) supportsProtocols(protocolType string, ps []protocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(ps) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range ps {
		if g.supportedByAll(p.name) {
			return true
		}
	}
	return false
}

func (g *group) supportedByAll(name string) bool {
	for _, m := range g.members {
		if !slices.ContainsFunc(m.protocols, func(q protocol) bool { return q.name == name }) {
			return false
		}
	}
	return true
}

// selectProtocol is Kafka's: of the protocols every member supports, each
// member votes for the first in its own preference order; most votes wins.
// Ties go to the candidate the earliest-joined member prefers, which makes
// the choice deterministic where Kafka's is arbitrary.
func (g *group) selectProtocol() string {
	votes := map[string]int{}
	for _, id := range g.order {
		for _, p := range g.members[id].protocols {
			if g.supportedByAll(p.name) {
				votes[p.name]++
				break
			}
		}
	}
	best, bestVotes := "", 0
	for _, id := range g.order {
		for _, p := range g.members[id].protocols {
			if v := votes[p.name]; v > bestVotes {
				best, bestVotes = p.name, v
			}
		}
	}
	return best
}

func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// validateMember is Kafka's validateCurrentMember: with an instance id, it
// must be known and mapped to memberID (else a newer instance took over:
// FENCED_INSTANCE_ID, KIP-345); without one, memberID must be a member.
func (g *group) validateMember(memberID string, instanceID *string) int16 {
	if instanceID != nil {
		known, ok := g.static[*instanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case known != memberID:
			return kerr.FencedInstanceID.Code
		}
		return 0
	}
	if g.members[memberID] == nil {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

// acceptJoining is Kafka's acceptJoiningMember: group.max.size counts the
// members already rejoined while rebalancing, all members otherwise.
func (g *group) acceptJoining(memberID string, maxSize int) bool {
	m := g.members[memberID]
	switch g.state {
	case PreparingRebalance:
		awaiting := 0
		for _, o := range g.members {
			if o.awaitingJoin() {
				awaiting++
			}
		}
		return m != nil && m.awaitingJoin() || awaiting < maxSize
	case CompletingRebalance, Stable:
		return m != nil || len(g.members) < maxSize
	default:
		return true
	}
}

// settle moves the completion for t, if res holds one, out of res: a request
// whose answer is already known is answered immediately, not deferred.
func settle[T any](res *Result, t Ticket, pick func(Completion) *T) (*T, Ticket) {
	for i, c := range res.Completions {
		if c.Ticket == t {
			res.Completions = slices.Delete(res.Completions, i, i+1)
			return pick(c), 0
		}
	}
	return nil, t
}

func pickJoin(c Completion) *kmsg.JoinGroupResponse { return c.Join }
func pickSync(c Completion) *kmsg.SyncGroupResponse { return c.Sync }

// JoinGroup handles JoinGroup v0–v9. It returns either a response (Ticket
// 0) or a Ticket whose response arrives later as a Completion, once the
// rebalance completes: every known member rejoined, the rebalance timeout
// passed, or, for a group that was empty, the initial rebalance delay passed.
func (c *Coordinator) JoinGroup(now time.Time, req *kmsg.JoinGroupRequest, client Client) (*kmsg.JoinGroupResponse, Ticket, Result) {
	var res Result
	fail := func(code int16) (*kmsg.JoinGroupResponse, Ticket, Result) {
		return joinError(req, req.MemberID, code), 0, res
	}
	if code := c.coordinatorError(req.Group, false); code != 0 {
		return fail(code)
	}
	session := millis(req.SessionTimeoutMillis)
	if session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout.Code)
	}
	rebalance := millis(req.RebalanceTimeoutMillis)
	if req.Version == 0 || req.RebalanceTimeoutMillis <= 0 {
		// v0 has no rebalance timeout: Kafka uses the session timeout. A
		// zero one would make every rebalance wait nothing at all.
		rebalance = session
	}
	if req.InstanceID != nil && (*req.InstanceID == "" || len(*req.InstanceID) > MaxStringBytes) {
		return fail(kerr.InvalidGroupID.Code) // Kafka rejects an empty group.instance.id
	}
	if len(req.ProtocolType) > MaxStringBytes || slices.ContainsFunc(req.Protocols, func(p kmsg.JoinGroupRequestProtocol) bool {
		return len(p.Name) > MaxStringBytes
	}) {
		return fail(kerr.InvalidRequest.Code) // could not be stored in the group's record
	}
	protocols := cloneProtocols(req.Protocols)

	g := c.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			return fail(kerr.UnknownMemberID.Code)
		}
		g = newGroup(req.Group, now)
	}
	if !g.acceptJoining(req.MemberID, c.cfg.MaxGroupSize) {
		// Over group.max.size (perhaps lowered): the member is out.
		delete(g.pending, req.MemberID)
		if m := g.members[req.MemberID]; m != nil {
			c.removeMember(g, m, now, kerr.GroupMaxSizeReached.Code, &res)
		}
		return joinError(req, "", kerr.GroupMaxSizeReached.Code), 0, res
	}
	if !g.supportsProtocols(req.ProtocolType, protocols) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	c.groups[g.id] = g // an existing group, or a new one that passed validation

	j := joining{req: req, client: client, session: session, rebalance: rebalance, protocols: protocols}
	var t Ticket
	if req.MemberID == "" {
		var resp *kmsg.JoinGroupResponse
		resp, t = c.joinNewMember(now, g, &j, &res)
		if resp != nil {
			return resp, 0, res
		}
	} else {
		var code int16
		var resp *kmsg.JoinGroupResponse
		resp, t, code = c.joinKnownMember(now, g, &j, &res)
		if code != 0 {
			return fail(code)
		}
		if resp != nil {
			return resp, 0, res
		}
	}
	resp, t := settle(&res, t, pickJoin)
	return resp, t, res
}

// newMemberID is a new member's id: its client id and a unique suffix, as
// Kafka makes them. The client id part is cut to maxClientIDInMemberID, so
// that a client id of up to 32767 bytes (what a request header carries)
// still gives a member id that every version of the group APIs and the
// group's record can carry.
func (c *Coordinator) newMemberID(clientID string) string {
	if len(clientID) > maxClientIDInMemberID {
		clientID = strings.ToValidUTF8(clientID[:maxClientIDInMemberID], "")
	}
	return clientID + "-" + c.cfg.NewUUID()
}

// maxClientIDInMemberID bounds the client id part of a member id (client
// ids are rarely longer than a few dozen bytes).
const maxClientIDInMemberID = 255

type joining struct {
	req                *kmsg.JoinGroupRequest
	client             Client
	session, rebalance time.Duration
	protocols          []protocol
}

func (c *Coordinator) joinNewMember(now time.Time, g *group, j *joining, res *Result) (*kmsg.JoinGroupResponse, Ticket) {
	req := j.req
	if req.InstanceID != nil {
		if oldID, ok := g.static[*req.InstanceID]; ok {
			return c.rejoinStatic(now, g, g.members[oldID], j, res)
		}
	}
	id := c.newMemberID(j.client.ID)
	if req.InstanceID == nil && req.Version >= 4 {
		// KIP-394: hand out the id first, so a client whose join times out
		// does not leave a ghost member behind. Only v4+ clients know this.
		g.pending[id] = now.Add(j.session)
		return joinError(req, id, kerr.MemberIDRequired.Code), 0
	}
	return nil, c.addMemberAndRebalance(now, g, id, j, res)
}

func (c *Coordinator) joinKnownMember(now time.Time, g *group, j *joining, res *Result) (*kmsg.JoinGroupResponse, Ticket, int16) {
	req := j.req
	if _, ok := g.pending[req.MemberID]; ok {
		delete(g.pending, req.MemberID)
		if req.InstanceID != nil {
			// Pending ids go to dynamic members only (Kafka throws here):
			// make the client start over with an unknown member id.
			return nil, 0, kerr.UnknownMemberID.Code
		}
		return nil, c.addMemberAndRebalance(now, g, req.MemberID, j, res), 0
	}
	if code := g.validateMember(req.MemberID, req.InstanceID); code != 0 {
		return nil, 0, code
	}
	m := g.members[req.MemberID]
	switch g.state {
	case PreparingRebalance:
		return nil, c.updateMemberAndRebalance(now, g, m, j, res), 0
	case CompletingRebalance:
		if sameProtocols(m.protocols, j.protocols) {
			// The member missed its JoinGroup response: send it again.
			m.lastSeen = now
			return c.joinResponse(g, m, req.Version, m.id == g.leader, false), 0, 0
		}
		return nil, c.updateMemberAndRebalance(now, g, m, j, res), 0
	case Stable:
		if m.id == g.leader || !sameProtocols(m.protocols, j.protocols) {
			return nil, c.updateMemberAndRebalance(now, g, m, j, res), 0
		}
		m.lastSeen = now
		return c.joinResponse(g, m, req.Version, false, false), 0, 0
	default:
		return nil, 0, kerr.UnknownMemberID.Code
	}
}

// rejoinStatic handles a JoinGroup with an unknown member id and a known
// group.instance.id: the new request replaces the old member id, fencing
// the old instance (its waiting requests get FENCED_INSTANCE_ID). In a
// stable group whose selected protocol the rejoin does not change, this
// needs no rebalance: the member keeps its assignment and syncs to the
// current generation.
func (c *Coordinator) rejoinStatic(now time.Time, g *group, old *member, j *joining, res *Result) (*kmsg.JoinGroupResponse, Ticket) {
	req := j.req
	newID := c.newMemberID(j.client.ID)
	if old.joinTicket != 0 {
		res.complete(Completion{Ticket: old.joinTicket, Join: joinError(&kmsg.JoinGroupRequest{Version: old.joinVersion}, old.id, kerr.FencedInstanceID.Code)})
		old.joinTicket = 0
	}
	if old.syncTicket != 0 {
		res.complete(Completion{Ticket: old.syncTicket, Sync: syncError(old.syncVersion, kerr.FencedInstanceID.Code)})
		old.syncTicket = 0
	}
	oldID, currentLeader := old.id, g.leader
	delete(g.members, oldID)
	old.id = newID
	g.members[newID] = old
	g.order[slices.Index(g.order, oldID)] = newID
	g.static[*req.InstanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	if g.pendingSync[oldID] {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = true
	}
	old.clientID, old.clientHost = j.client.ID, j.client.Host
	m := old

	if g.state != Stable {
		// Rebalancing: the new instance joins it. In CompletingRebalance
		// the leader may be assigning to the old member id, so Kafka
		// rebalances again.
		return nil, c.updateMemberAndRebalance(now, g, m, j, res)
	}
	// As Kafka: only a change of the selected protocol forces a rebalance.
	// The metadata itself may differ (a restarted cooperative consumer
	// reports no owned partitions and generation −1); it is stored.
	oldProtocols := m.protocols
	m.protocols = j.protocols
	if g.selectProtocol() != g.protocol {
		m.protocols = oldProtocols
		return nil, c.updateMemberAndRebalance(now, g, m, j, res)
	}
	m.sessionTimeout, m.rebalanceTimeout = j.session, j.rebalance
	m.lastSeen = now
	// Persist the new member id so that a coordinator failover keeps fencing
	// the old instance.
	res.Records = append(res.Records, c.groupRecord(g))
	if req.Version >= 9 {
		// KIP-814: a rejoining leader gets the members, to keep watching
		// metadata, but is told to skip the assignment.
		isLeader := m.id == g.leader
		return c.joinResponse(g, m, req.Version, isLeader, isLeader), 0
	}
	// Before v9 the response names the previous leader id, so that a
	// rejoining leader does not assign: a stable group would not pass
	// its new assignment on.
	resp := c.joinResponse(g, m, req.Version, false, false)
	resp.LeaderID = currentLeader
	return resp, 0
}

func (c *Coordinator) addMemberAndRebalance(now time.Time, g *group, id string, j *joining, res *Result) Ticket {
	req := j.req
	m := &member{
		id:               id,
		clientID:         j.client.ID,
		clientHost:       j.client.Host,
		sessionTimeout:   j.session,
		rebalanceTimeout: j.rebalance,
		protocolType:     req.ProtocolType,
		protocols:        j.protocols,
		joinTicket:       c.ticket(),
		joinVersion:      req.Version,
		lastSeen:         now,
		newDeadline:      now.Add(newMemberJoinTimeout),
	}
	if req.InstanceID != nil {
		inst := *req.InstanceID
		m.instanceID = &inst
		g.static[inst] = id
	}
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	g.members[id] = m
	g.order = append(g.order, id)
	if g.leader == "" {
		g.leader = id
	}
	if g.state == PreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	t := m.joinTicket
	c.maybePrepareRebalance(now, g, res)
	c.maybeCompleteJoin(g, now, res)
	return t
}

func (c *Coordinator) updateMemberAndRebalance(now time.Time, g *group, m *member, j *joining, res *Result) Ticket {
	if m.joinTicket != 0 {
		// A second JoinGroup while the first still waits: the first
		// connection is presumably gone; answer it so nothing leaks.
		res.complete(Completion{Ticket: m.joinTicket, Join: joinError(&kmsg.JoinGroupRequest{Version: m.joinVersion}, m.id, kerr.RebalanceInProgress.Code)})
	}
	m.protocols = j.protocols
	m.protocolType = j.req.ProtocolType
	m.sessionTimeout, m.rebalanceTimeout = j.session, j.rebalance
	t := c.ticket()
	m.joinTicket = t
	m.joinVersion = j.req.Version
	m.lastSeen = now
	c.maybePrepareRebalance(now, g, res)
	c.maybeCompleteJoin(g, now, res)
	return t
}

func (c *Coordinator) maybePrepareRebalance(now time.Time, g *group, res *Result) {
	switch g.state {
	case Stable, CompletingRebalance, Empty:
		c.prepareRebalance(now, g, res)
	}
}

func (c *Coordinator) prepareRebalance(now time.Time, g *group, res *Result) {
	clear(g.pendingSync)
	if g.state == CompletingRebalance {
		c.resetAssignments(g, kerr.RebalanceInProgress.Code, now, res)
	}
	timeout := g.maxRebalanceTimeout()
	if g.state == Empty && c.cfg.InitialRebalanceDelay > 0 {
		delay := c.cfg.InitialRebalanceDelay
		g.initialDelay = true
		g.newMemberAdded = false
		g.initialRemaining = max(timeout-delay, 0)
		g.rebalanceDeadline = now.Add(delay)
	} else {
		g.initialDelay = false
		g.rebalanceDeadline = now.Add(timeout)
	}
	g.transition(PreparingRebalance, now)
}

// resetAssignments is Kafka's resetAndPropagateAssignmentError: a rebalance
// that restarts before the leader synced drops the assignments and tells
// waiting followers.
func (c *Coordinator) resetAssignments(g *group, code int16, now time.Time, res *Result) {
	for _, id := range g.order {
		m := g.members[id]
		m.assignment = nil
		if m.syncTicket != 0 {
			res.complete(Completion{Ticket: m.syncTicket, Sync: syncError(m.syncVersion, code)})
			m.syncTicket = 0
			// As Kafka: the session clock restarts when a wait ends, or a
			// member that waited longer than its session would expire at
			// once.
			m.lastSeen = now
		}
	}
}

func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if !m.awaitingJoin() {
			return false
		}
	}
	return true
}

func (c *Coordinator) maybeCompleteJoin(g *group, now time.Time, res *Result) {
	if g.state != PreparingRebalance {
		return
	}
	if g.initialDelay {
		if now.Before(g.rebalanceDeadline) {
			return
		}
		if g.newMemberAdded && g.initialRemaining > 0 {
			// Kafka's InitialDelayedJoin: members are still arriving, wait
			// another delay, never beyond the rebalance timeout in total.
			d := min(c.cfg.InitialRebalanceDelay, g.initialRemaining)
			g.initialRemaining = max(g.initialRemaining-c.cfg.InitialRebalanceDelay, 0)
			g.newMemberAdded = false
			g.rebalanceDeadline = now.Add(d)
			return
		}
	} else if !g.allJoined() && now.Before(g.rebalanceDeadline) {
		return
	}
	c.completeJoin(g, now, res)
}

func (c *Coordinator) completeJoin(g *group, now time.Time, res *Result) {
	for _, id := range slices.Clone(g.order) {
		if m := g.members[id]; !m.awaitingJoin() && m.instanceID == nil {
			// A dynamic member that did not rejoin in time is out. Static
			// members stay until their session expires (KIP-345).
			c.dropMember(g, m, kerr.UnknownMemberID.Code, res)
		}
	}
	if l := g.members[g.leader]; l != nil && !l.awaitingJoin() {
		// Kafka's maybeElectNewJoinedLeader: the leader must be a member
		// that rejoined; with none, wait another rebalance timeout for
		// sessions to expire the absent static members.
		joined := slices.IndexFunc(g.order, func(id string) bool { return g.members[id].awaitingJoin() })
		if joined >= 0 {
			g.leader = g.order[joined]
		} else {
			g.initialDelay = false
			g.rebalanceDeadline = now.Add(g.maxRebalanceTimeout())
			return
		}
	}
	g.initialDelay, g.newMemberAdded = false, false
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.transition(Empty, now)
		res.Records = append(res.Records, c.groupRecord(g))
		return
	}
	g.protocol = g.selectProtocol()
	g.transition(CompletingRebalance, now)
	for _, id := range g.order {
		m := g.members[id]
		if m.joinTicket != 0 {
			resp := c.joinResponse(g, m, m.joinVersion, id == g.leader, false)
			res.complete(Completion{Ticket: m.joinTicket, Join: resp})
			m.joinTicket = 0
		}
		m.newDeadline = time.Time{}
		m.lastSeen = now
		g.pendingSync[id] = true
	}
	g.syncDeadline = now.Add(g.maxRebalanceTimeout())
}

func (c *Coordinator) joinResponse(g *group, m *member, version int16, withMembers, skipAssignment bool) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = version
	resp.Generation = g.generation
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType = &pt
	resp.Protocol = &p
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	resp.SkipAssignment = skipAssignment
	if withMembers {
		for _, id := range g.order {
			o := g.members[id]
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID = o.id
			rm.InstanceID = o.instanceID
			rm.ProtocolMetadata = o.metadataFor(g.protocol)
			resp.Members = append(resp.Members, rm)
		}
	}
	return resp
}

// dropMember takes m out of g, answering its waiting requests with code,
// and moves leadership to the earliest remaining member if m led.
func (c *Coordinator) dropMember(g *group, m *member, code int16, res *Result) {
	if m.joinTicket != 0 {
		res.complete(Completion{Ticket: m.joinTicket, Join: joinError(&kmsg.JoinGroupRequest{Version: m.joinVersion}, m.id, code)})
		m.joinTicket = 0
	}
	if m.syncTicket != 0 {
		res.complete(Completion{Ticket: m.syncTicket, Sync: syncError(m.syncVersion, code)})
		m.syncTicket = 0
	}
	delete(g.members, m.id)
	delete(g.pendingSync, m.id)
	g.order = slices.DeleteFunc(g.order, func(id string) bool { return id == m.id })
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if len(g.order) > 0 {
			g.leader = g.order[0]
		}
	}
}

// removeMember is a member leaving (LeaveGroup or session expiry): out of
// the group, and the group rebalances.
func (c *Coordinator) removeMember(g *group, m *member, now time.Time, code int16, res *Result) {
	c.dropMember(g, m, code, res)
	switch g.state {
	case Stable, CompletingRebalance:
		c.maybePrepareRebalance(now, g, res)
	}
	c.maybeCompleteJoin(g, now, res)
}

func syncError(version int16, code int16) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = version
	resp.ErrorCode = code
	resp.MemberAssignment = []byte{}
	return resp
}

func (c *Coordinator) syncResponse(g *group, m *member, version int16) *kmsg.SyncGroupResponse {
	resp := syncError(version, 0)
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &p
	if m.assignment != nil {
		resp.MemberAssignment = m.assignment
	}
	return resp
}

// SyncGroup handles SyncGroup v0–v5. The leader's request stores the
// assignment, emits the group metadata record and answers every waiting
// follower; a follower that syncs before the leader gets a Ticket.
func (c *Coordinator) SyncGroup(now time.Time, req *kmsg.SyncGroupRequest) (*kmsg.SyncGroupResponse, Ticket, Result) {
	var res Result
	fail := func(code int16) (*kmsg.SyncGroupResponse, Ticket, Result) {
		return syncError(req.Version, code), 0, res
	}
	if code := c.coordinatorError(req.Group, false); code != 0 {
		return fail(code)
	}
	g := c.groups[req.Group]
	if g == nil {
		return fail(kerr.UnknownMemberID.Code)
	}
	if code := g.validateMember(req.MemberID, req.InstanceID); code != 0 {
		return fail(code)
	}
	switch {
	case req.Generation != g.generation:
		return fail(kerr.IllegalGeneration.Code)
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	m := g.members[req.MemberID]
	switch g.state {
	case PreparingRebalance:
		return fail(kerr.RebalanceInProgress.Code)
	case Stable:
		delete(g.pendingSync, m.id)
		m.lastSeen = now
		return c.syncResponse(g, m, req.Version), 0, res
	case CompletingRebalance:
	default:
		return fail(kerr.UnknownMemberID.Code)
	}
	m.lastSeen = now
	delete(g.pendingSync, m.id)
	if m.syncTicket != 0 {
		res.complete(Completion{Ticket: m.syncTicket, Sync: syncError(m.syncVersion, kerr.RebalanceInProgress.Code)})
	}
	t := c.ticket()
	m.syncTicket, m.syncVersion = t, req.Version
	if m.id == g.leader {
		assigned := make(map[string][]byte, len(req.GroupAssignment))
		for _, a := range req.GroupAssignment {
			assigned[a.MemberID] = a.MemberAssignment
		}
		for _, id := range g.order {
			// Members the leader left out get an empty assignment, as in
			// Kafka. Bytes may alias a pooled request frame: copy.
			g.members[id].assignment = append([]byte{}, assigned[id]...)
		}
		g.transition(Stable, now)
		res.Records = append(res.Records, c.groupRecord(g))
		for _, id := range g.order {
			o := g.members[id]
			if o.syncTicket != 0 {
				res.complete(Completion{Ticket: o.syncTicket, Sync: c.syncResponse(g, o, o.syncVersion)})
				o.syncTicket = 0
				o.lastSeen = now // the session clock restarts, as in Kafka
			}
		}
	}
	resp, t := settle(&res, t, pickSync)
	return resp, t, res
}

// Heartbeat handles Heartbeat v0–v4.
func (c *Coordinator) Heartbeat(now time.Time, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.Version = req.Version
	resp.ErrorCode = c.heartbeat(now, req)
	return resp
}

func (c *Coordinator) heartbeat(now time.Time, req *kmsg.HeartbeatRequest) int16 {
	if code := c.coordinatorError(req.Group, false); code != 0 {
		return code
	}
	g := c.groups[req.Group]
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	if code := g.validateMember(req.MemberID, req.InstanceID); code != 0 {
		return code
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	g.members[req.MemberID].lastSeen = now
	if g.state == PreparingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// LeaveGroup handles LeaveGroup v0–v5 (v3+: a batch of members, each
// identified by member id, instance id, or both).
func (c *Coordinator) LeaveGroup(now time.Time, req *kmsg.LeaveGroupRequest) (*kmsg.LeaveGroupResponse, Result) {
	var res Result
	resp := kmsg.NewPtrLeaveGroupResponse()
	resp.Version = req.Version
	if code := c.coordinatorError(req.Group, false); code != 0 {
		resp.ErrorCode = code
		return resp, res
	}
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	g := c.groups[req.Group]
	for _, lm := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID = lm.MemberID
		if lm.InstanceID != nil {
			inst := *lm.InstanceID
			rm.InstanceID = &inst
		}
		rm.ErrorCode = c.leave(now, g, lm, &res)
		resp.Members = append(resp.Members, rm)
	}
	if req.Version < 3 {
		resp.ErrorCode = resp.Members[0].ErrorCode
		resp.Members = nil
	}
	return resp, res
}

func (c *Coordinator) leave(now time.Time, g *group, lm kmsg.LeaveGroupRequestMember, res *Result) int16 {
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	id := lm.MemberID
	switch _, pending := g.pending[id]; {
	case id == "":
		// Administrative removal by instance id alone (KIP-345).
		if lm.InstanceID == nil {
			return kerr.UnknownMemberID.Code
		}
		known, ok := g.static[*lm.InstanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		id = known
	case pending:
		delete(g.pending, id)
		c.maybeCompleteJoin(g, now, res)
		return 0
	default:
		if code := g.validateMember(id, lm.InstanceID); code != 0 {
			return code
		}
	}
	c.removeMember(g, g.members[id], now, kerr.UnknownMemberID.Code, res)
	return 0
}
