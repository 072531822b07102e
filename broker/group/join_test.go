package group

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestJoinSyncHeartbeatThreeMembers(t *testing.T) {
	h := newHarness(t, Config{})
	// Three members arrive one second apart: the initial rebalance delay
	// (3 s) is extended once because members were still arriving.
	var ids []string
	var tickets []Ticket
	for i := range 3 {
		if i > 0 {
			h.advance(time.Second)
		}
		id, tk := h.joinNew("g", joinOpt{})
		if tk == 0 {
			t.Fatalf("member %d answered at once", i)
		}
		ids = append(ids, id)
		tickets = append(tickets, tk)
	}
	if s := h.state("g"); s != PreparingRebalance {
		t.Fatalf("state %v", s)
	}
	h.now = t0.Add(3*time.Second - time.Millisecond)
	h.tick()
	if len(h.waiting) != 3 {
		t.Fatal("rebalance completed before the initial delay")
	}
	h.now = t0.Add(3 * time.Second)
	h.tick()
	if len(h.waiting) != 3 {
		t.Fatal("initial delay not extended although members joined during it")
	}
	h.now = t0.Add(6 * time.Second)
	h.tick()
	if len(h.waiting) != 0 {
		t.Fatalf("rebalance did not complete after the extended delay; waiting %v", h.waiting)
	}
	leader := h.joinResult(tickets[0])
	if leader.ErrorCode != 0 || leader.Generation != 1 || *leader.Protocol != "range" || *leader.ProtocolType != "consumer" ||
		leader.LeaderID != leader.MemberID || len(leader.Members) != 3 {
		t.Fatalf("leader response %+v", leader)
	}
	for i, tk := range tickets[1:] {
		r := h.joinResult(tk)
		if r.ErrorCode != 0 || r.Generation != 1 || r.LeaderID != leader.MemberID || len(r.Members) != 0 || r.MemberID == leader.MemberID {
			t.Fatalf("follower %d response %+v", i+1, r)
		}
		ids[i+1] = r.MemberID
	}
	ids[0] = leader.MemberID
	if s := h.state("g"); s != CompletingRebalance {
		t.Fatalf("state %v", s)
	}
	// Followers wait for the leader's assignment.
	_, f1 := h.sync("g", ids[1], 1, "", nil)
	_, f2 := h.sync("g", ids[2], 1, "", nil)
	if f1 == 0 || f2 == 0 {
		t.Fatal("follower sync answered before the leader synced")
	}
	if code := h.heartbeat("g", ids[1], 1, ""); code != 0 {
		t.Fatalf("heartbeat while completing: %d", code)
	}
	resp, _ := h.sync("g", ids[0], 1, "", map[string]string{ids[0]: "p0", ids[1]: "p1"})
	mustEqualBytes(t, "leader assignment", resp.MemberAssignment, "p0")
	mustEqualBytes(t, "follower 1 assignment", h.syncResult(f1).MemberAssignment, "p1")
	mustEqualBytes(t, "follower 2 assignment (left out by the leader)", h.syncResult(f2).MemberAssignment, "")
	if s := h.state("g"); s != Stable {
		t.Fatalf("state %v", s)
	}
	if len(h.log) != 1 {
		t.Fatalf("want one group metadata record, got %d records", len(h.log))
	}
	for _, id := range ids {
		if code := h.heartbeat("g", id, 1, ""); code != 0 {
			t.Fatalf("heartbeat %s: %d", id, code)
		}
	}
	if code := h.heartbeat("g", ids[0], 0, ""); code != kerr.IllegalGeneration.Code {
		t.Fatalf("stale heartbeat: %d", code)
	}
	if code := h.heartbeat("g", "nobody", 1, ""); code != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown heartbeat: %d", code)
	}
	// A follower's sync in Stable returns its assignment at once.
	resp, _ = h.sync("g", ids[1], 1, "", nil)
	mustEqualBytes(t, "re-sync", resp.MemberAssignment, "p1")
	if resp, _ = h.sync("g", ids[1], 2, "", nil); resp.ErrorCode != kerr.IllegalGeneration.Code {
		t.Fatalf("sync wrong generation: %d", resp.ErrorCode)
	}
	if resp, _ = h.sync("g", "nobody", 1, "", nil); resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("sync unknown member: %d", resp.ErrorCode)
	}
	h.checkReplay()
}

func TestProtocolSelection(t *testing.T) {
	h := newHarness(t, Config{InitialRebalanceDelay: -1})
	p := func(names ...string) []kmsg.JoinGroupRequestProtocol {
		var ps []kmsg.JoinGroupRequestProtocol
		for _, n := range names {
			ps = append(ps, kmsg.JoinGroupRequestProtocol{Name: n, Metadata: consumerMeta("t")})
		}
		return ps
	}
	// With no initial delay, the first join completes a rebalance alone.
	ra, _ := h.join("g", "", joinOpt{version: 3, protocols: p("sticky", "range", "roundrobin")})
	if ra == nil || *ra.Protocol != "sticky" {
		t.Fatalf("one member: %+v", ra)
	}
	h.sync("g", ra.MemberID, ra.Generation, "", nil)
	// Two more join; the stable leader must rejoin as well.
	_, b := h.join("g", "", joinOpt{version: 3, protocols: p("range", "roundrobin")})
	_, c := h.join("g", "", joinOpt{version: 3, protocols: p("roundrobin", "range")})
	if !h.waiting[b] || !h.waiting[c] {
		t.Fatal("rebalance completed before all members rejoined")
	}
	// Another member that shares no protocol is refused.
	resp, _ := h.join("g", "", joinOpt{version: 3, protocols: p("sticky")})
	if resp == nil || resp.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("incompatible member: %+v", resp)
	}
	// So is a different protocol type.
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version, req.Group, req.SessionTimeoutMillis, req.ProtocolType, req.Protocols = 3, "g", 10000, "connect", p("range")
	if resp, _, _ := h.c.JoinGroup(h.now, req, Client{}); resp.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("wrong protocol type: %d", resp.ErrorCode)
	}
	ra, _ = h.join("g", ra.MemberID, joinOpt{version: 3, protocols: p("sticky", "range", "roundrobin")})
	// Candidates: range, roundrobin. Votes: a→range, b→range, c→roundrobin.
	if ra == nil || *ra.Protocol != "range" || *h.joinResult(c).Protocol != "range" || len(ra.Members) != 3 {
		t.Fatalf("selected %+v, want range", ra)
	}
}

func TestMemberIDRequiredOnlyV4Plus(t *testing.T) {
	for v := int16(0); v <= 9; v++ {
		h := newHarness(t, Config{})
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version, req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = v, "g", 10000, 30000
		req.ProtocolType, req.Protocols = "consumer", rangeProtocols("t")
		resp, ticket, _ := h.c.JoinGroup(h.now, req, Client{ID: "cl"})
		if v >= 4 {
			if resp == nil || resp.ErrorCode != kerr.MemberIDRequired.Code || resp.MemberID == "" || resp.Generation != -1 {
				t.Fatalf("v%d: want MEMBER_ID_REQUIRED with a member id, got %+v", v, resp)
			}
			// The id handed out is accepted.
			req.MemberID = resp.MemberID
			resp, ticket, _ = h.c.JoinGroup(h.now, req, Client{ID: "cl"})
		}
		if resp != nil || ticket == 0 {
			t.Fatalf("v%d: join should wait for the rebalance, got %+v", v, resp)
		}
		h.waiting[ticket] = true
		if v >= 5 {
			// A static member never gets MEMBER_ID_REQUIRED.
			inst := "i"
			req.MemberID, req.InstanceID = "", &inst
			resp, ticket, _ := h.c.JoinGroup(h.now, req, Client{ID: "cl"})
			if resp != nil {
				t.Fatalf("v%d static: %+v", v, resp)
			}
			h.waiting[ticket] = true
		}
	}
}

func TestPendingMemberExpires(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := stableGroup(t, h, "g", 1)
	resp, _ := h.join("g", "", joinOpt{})
	if resp.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatal(resp.ErrorCode)
	}
	// The leader rejoins: the rebalance waits for the pending member too.
	_, lt := h.join("g", ids[0], joinOpt{})
	h.advance(session - time.Millisecond)
	h.heartbeat("g", ids[0], gen, "")
	h.tick()
	if !h.waiting[lt] {
		t.Fatal("rebalance completed while a MEMBER_ID_REQUIRED member was pending")
	}
	h.advance(time.Millisecond)
	h.tick()
	if r := h.joinResult(lt); r.ErrorCode != 0 || len(r.Members) != 1 {
		t.Fatalf("%+v", r)
	}
	// Too late now: the id expired.
	if resp, _ := h.join("g", resp.MemberID, joinOpt{}); resp == nil || resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("expired pending member rejoined: %+v", resp)
	}
}

func TestLeaveTriggersRebalance(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := stableGroup(t, h, "g", 3)
	lr := h.leave("g", kmsg.LeaveGroupRequestMember{MemberID: ids[2]}, kmsg.LeaveGroupRequestMember{MemberID: "ghost"})
	if lr.ErrorCode != 0 || lr.Members[0].ErrorCode != 0 || lr.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave: %+v", lr)
	}
	if s := h.state("g"); s != PreparingRebalance {
		t.Fatalf("state %v", s)
	}
	if code := h.heartbeat("g", ids[1], gen, ""); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat: %d", code)
	}
	if code := h.commit("g", ids[1], gen, "t", 0, 5); code != 0 {
		t.Fatalf("commit during PreparingRebalance: %d", code)
	}
	// Members keep their assignment across the rebalance (cooperative).
	mustEqualBytes(t, "kept assignment", h.c.groups["g"].members[ids[1]].assignment, "a1")
	if resp, _ := h.sync("g", ids[1], gen, "", nil); resp.ErrorCode != kerr.RebalanceInProgress.Code {
		t.Fatalf("sync during rebalance: %d", resp.ErrorCode)
	}
	_, t0 := h.join("g", ids[0], joinOpt{})
	_, t1 := h.join("g", ids[1], joinOpt{})
	// The last rejoin completes the rebalance at once: the second member's
	// JoinGroup is answered immediately.
	if t1 != 0 {
		t.Fatal("rebalance did not complete when every member had rejoined")
	}
	r := h.joinResult(t0)
	if r.Generation != gen+1 || len(r.Members) != 2 {
		t.Fatalf("%+v", r)
	}
	// v0–v2: one member, top-level error.
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version, req.Group, req.MemberID = 1, "g", "ghost"
	resp, _ := h.c.LeaveGroup(h.now, req)
	if resp.ErrorCode != kerr.UnknownMemberID.Code || resp.Members != nil {
		t.Fatalf("v1 leave: %+v", resp)
	}
}

func TestLastMemberLeavesGroupEmpty(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := stableGroup(t, h, "g", 1)
	h.commit("g", ids[0], gen, "t", 0, 7)
	h.leave("g", kmsg.LeaveGroupRequestMember{MemberID: ids[0]})
	if s := h.state("g"); s != Empty {
		t.Fatalf("state %v", s)
	}
	if g := h.c.groups["g"]; g.generation != gen+1 {
		t.Fatalf("generation %d", g.generation)
	}
	h.checkReplay()
}

func TestSessionExpiry(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := stableGroup(t, h, "g", 3)
	for range 5 {
		h.advance(session / 2)
		h.heartbeat("g", ids[0], gen, "")
		h.heartbeat("g", ids[1], gen, "")
		h.tick()
	}
	g := h.c.groups["g"]
	if g.members[ids[2]] != nil || g.members[ids[0]] == nil || g.members[ids[1]] == nil {
		t.Fatal("the silent member should be gone and the others kept")
	}
	if s := h.state("g"); s != PreparingRebalance {
		t.Fatalf("state %v", s)
	}
	if code := h.heartbeat("g", ids[2], gen, ""); code != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member heartbeat: %d", code)
	}
	// A session expiring while the leader is expected to sync restarts the
	// rebalance and tells waiting followers.
	_, a := h.join("g", ids[0], joinOpt{})
	_, b := h.join("g", ids[1], joinOpt{})
	_ = b
	gen = h.joinResult(a).Generation
	_, st := h.sync("g", ids[1], gen, "", nil)
	h.advance(session)
	h.heartbeat("g", ids[1], gen, "")
	h.tick()
	if r := h.syncResult(st); r.ErrorCode != kerr.RebalanceInProgress.Code {
		t.Fatalf("waiting follower: %d", r.ErrorCode)
	}
	if g.members[ids[0]] != nil {
		t.Fatal("leader that never synced should have expired")
	}
}

func TestRebalanceTimeoutKicksLaggards(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := stableGroup(t, h, "g", 3)
	start := h.now
	_, a := h.join("g", ids[0], joinOpt{}) // the leader rejoins: rebalance
	_, b := h.join("g", ids[1], joinOpt{})
	// Member 2 keeps heartbeating but never rejoins.
	for h.now.Before(start.Add(rebalance)) {
		h.advance(time.Second)
		if code := h.heartbeat("g", ids[2], gen, ""); code != kerr.RebalanceInProgress.Code && h.waiting[a] {
			t.Fatalf("laggard heartbeat: %d", code)
		}
		h.tick()
		if h.now.Before(start.Add(rebalance)) && !h.waiting[a] {
			t.Fatalf("rebalance completed early at %v", h.now.Sub(start))
		}
	}
	ra, rb := h.joinResult(a), h.joinResult(b)
	if ra.Generation != gen+1 || len(ra.Members) != 2 || rb.ErrorCode != 0 {
		t.Fatalf("%+v %+v", ra, rb)
	}
	if code := h.heartbeat("g", ids[2], gen+1, ""); code != kerr.UnknownMemberID.Code {
		t.Fatalf("laggard after rebalance: %d", code)
	}
}

func TestStaticMemberRejoinKeepsAssignment(t *testing.T) {
	h := newHarness(t, Config{})
	_, ta := h.joinNew("g", joinOpt{instance: "A", client: "ca"})
	_, tb := h.joinNew("g", joinOpt{instance: "B", client: "cb"})
	h.tickUntilDone(rebalance, ta, tb)
	ra, rb := h.joinResult(ta), h.joinResult(tb)
	a, b, gen := ra.MemberID, rb.MemberID, ra.Generation
	if ra.LeaderID != a {
		t.Fatal("A should lead")
	}
	if len(ra.Members) != 2 || ra.Members[1].InstanceID == nil || *ra.Members[1].InstanceID != "B" {
		t.Fatalf("leader's member list lacks instance ids: %+v", ra.Members)
	}
	_, st := h.sync("g", b, gen, "B", nil)
	h.sync("g", a, gen, "A", map[string]string{a: "pa", b: "pb"})
	mustEqualBytes(t, "B", h.syncResult(st).MemberAssignment, "pb")
	logBefore := len(h.log)

	// B restarts: same instance id, unknown member id, new metadata (a
	// restarted cooperative consumer owns nothing yet).
	resp, ticket := h.join("g", "", joinOpt{instance: "B", client: "cb", protocols: rangeProtocols("t", "u")})
	if ticket != 0 || resp.ErrorCode != 0 {
		t.Fatalf("static rejoin should be answered at once: %+v", resp)
	}
	b2 := resp.MemberID
	if b2 == b || resp.Generation != gen || resp.LeaderID != a || len(resp.Members) != 0 || resp.SkipAssignment {
		t.Fatalf("static rejoin response %+v", resp)
	}
	if s := h.state("g"); s != Stable {
		t.Fatalf("static rejoin rebalanced: %v", s)
	}
	if len(h.log) != logBefore+1 {
		t.Fatal("the replacement member id must be persisted")
	}
	sresp, _ := h.sync("g", b2, gen, "B", nil)
	mustEqualBytes(t, "B after restart", sresp.MemberAssignment, "pb")
	// The old instance is fenced everywhere.
	if code := h.heartbeat("g", b, gen, "B"); code != kerr.FencedInstanceID.Code {
		t.Fatalf("old instance heartbeat: %d", code)
	}
	if r, _ := h.sync("g", b, gen, "B", nil); r.ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("old instance sync: %d", r.ErrorCode)
	}
	if r, _ := h.join("g", b, joinOpt{instance: "B"}); r == nil || r.ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("old instance join: %+v", r)
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	inst := "B"
	req.Version, req.Group, req.MemberID, req.Generation, req.InstanceID = 9, "g", b, gen, &inst
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	if cr, _ := h.c.OffsetCommit(h.now, req); cr.Topics[0].Partitions[0].ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("old instance commit: %d", cr.Topics[0].Partitions[0].ErrorCode)
	}
	if lr := h.leave("g", kmsg.LeaveGroupRequestMember{MemberID: b, InstanceID: &inst}); lr.Members[0].ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("old instance leave: %d", lr.Members[0].ErrorCode)
	}
	h.checkReplay()

	// The leader restarting with v9 is told to skip the assignment but gets
	// the member list; before v9 the response names the previous leader id,
	// so that the client does not assign. Neither rebalances.
	resp, ticket = h.join("g", "", joinOpt{instance: "A", client: "ca"})
	if ticket != 0 || !resp.SkipAssignment || len(resp.Members) != 2 || resp.LeaderID != resp.MemberID {
		t.Fatalf("v9 static leader rejoin: %+v", resp)
	}
	a2 := resp.MemberID
	resp, ticket = h.join("g", "", joinOpt{version: 8, instance: "A", client: "ca"})
	if ticket != 0 || resp.SkipAssignment || len(resp.Members) != 0 || resp.LeaderID != a2 || resp.MemberID == a2 || h.state("g") != Stable {
		t.Fatalf("v8 static leader rejoin: %+v", resp)
	}
	if g := h.c.groups["g"]; g.leader != resp.MemberID {
		t.Fatal("the replacement should lead")
	}
	// A static member whose rejoin changes the selected protocol does
	// rebalance.
	_, ticket = h.join("g", "", joinOpt{instance: "A", client: "ca", protocols: []kmsg.JoinGroupRequestProtocol{{Name: "roundrobin", Metadata: consumerMeta("t")}, {Name: "range", Metadata: consumerMeta("t")}}})
	if ticket != 0 {
		t.Fatal("B does not support roundrobin, so range stays: no rebalance expected")
	}
	_, ticket = h.join("g", "", joinOpt{instance: "B", client: "cb", protocols: []kmsg.JoinGroupRequestProtocol{{Name: "roundrobin", Metadata: consumerMeta("t")}, {Name: "range", Metadata: consumerMeta("t")}}})
	if ticket == 0 || h.state("g") != PreparingRebalance {
		t.Fatal("a rejoin that changes the selected protocol should rebalance")
	}
	// Leaving by instance id alone works.
	if lr := h.leave("g", kmsg.LeaveGroupRequestMember{InstanceID: &inst}); lr.Members[0].ErrorCode != 0 {
		t.Fatalf("leave by instance id: %d", lr.Members[0].ErrorCode)
	}
}

func TestDuplicateStaticInstanceFencedWhileWaiting(t *testing.T) {
	h := newHarness(t, Config{})
	_, old := h.joinNew("g", joinOpt{instance: "X"})
	// A second process with the same instance id joins while the first
	// waits: the first is answered FENCED_INSTANCE_ID, the second waits.
	_, dup := h.joinNew("g", joinOpt{instance: "X"})
	if r := h.joinResult(old); r.ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("first instance: %+v", r)
	}
	h.tickUntilDone(rebalance, dup)
	r := h.joinResult(dup)
	if r.ErrorCode != 0 || len(r.Members) != 1 {
		t.Fatalf("second instance: %+v", r)
	}
	// A waiting SyncGroup of a replaced instance is fenced too.
	gen := r.Generation
	_, y := h.join("g", "", joinOpt{instance: "Y"}) // rebalance: X must rejoin
	rx, x := h.join("g", r.MemberID, joinOpt{instance: "X"})
	if x != 0 || rx.Generation != gen+1 {
		t.Fatalf("the last rejoin should complete the rebalance at once: %+v", rx)
	}
	follower := h.joinResult(y).MemberID
	_, ys := h.sync("g", follower, rx.Generation, "Y", nil)
	h.join("g", "", joinOpt{instance: "Y"})
	if r := h.syncResult(ys); r.ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("waiting sync of the replaced instance: %d", r.ErrorCode)
	}
}

func TestJoinValidation(t *testing.T) {
	h := newHarness(t, Config{MaxGroupSize: 1})
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version, req.Group, req.SessionTimeoutMillis, req.ProtocolType, req.Protocols = 9, "g", 1000, "consumer", rangeProtocols("t")
	if r, _, _ := h.c.JoinGroup(h.now, req, Client{}); r.ErrorCode != kerr.InvalidSessionTimeout.Code {
		t.Fatalf("short session: %d", r.ErrorCode)
	}
	req.Group = ""
	req.SessionTimeoutMillis = 10000
	if r, _, _ := h.c.JoinGroup(h.now, req, Client{}); r.ErrorCode != kerr.InvalidGroupID.Code {
		t.Fatalf("empty group id: %d", r.ErrorCode)
	}
	req.Group, req.MemberID = "g", "someone"
	if r, _, _ := h.c.JoinGroup(h.now, req, Client{}); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("member id for unknown group: %d", r.ErrorCode)
	}
	h.joinNew("g", joinOpt{})
	if r, _ := h.join("g", "", joinOpt{}); r.ErrorCode != kerr.GroupMaxSizeReached.Code {
		t.Fatalf("group.max.size: %d", r.ErrorCode)
	}
}

// TestLongStringsRefused: flexible requests can carry strings longer than
// the int16-length strings of __consumer_offsets records and of old
// response versions; a group never stores one (the protocol fuzzer found a
// 40,000-byte group id that made ListGroups v0 undecodable for every client
// and an acknowledged commit unreadable after a restart). A long client id
// gives a member id cut to size.
func TestLongStringsRefused(t *testing.T) {
	h := newHarness(t, Config{})
	long := strings.Repeat("g", MaxStringBytes+1)
	if r, _ := h.join(long, "", joinOpt{}); r.ErrorCode != kerr.InvalidGroupID.Code {
		t.Errorf("group id of %d bytes: error %d, want INVALID_GROUP_ID", len(long), r.ErrorCode)
	}
	if code := h.commit(long, "", -1, "t", 0, 1); code != kerr.InvalidGroupID.Code {
		t.Errorf("commit for a group id of %d bytes: error %d, want INVALID_GROUP_ID", len(long), code)
	}
	if r, _ := h.join("g", "", joinOpt{instance: long}); r.ErrorCode != kerr.InvalidGroupID.Code {
		t.Errorf("instance id of %d bytes: error %d, want INVALID_GROUP_ID", len(long), r.ErrorCode)
	}
	if r, _ := h.join("g", "", joinOpt{protocols: []kmsg.JoinGroupRequestProtocol{{Name: long}}}); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("protocol name of %d bytes: error %d, want INVALID_REQUEST", len(long), r.ErrorCode)
	}
	if len(h.c.groups) != 0 {
		t.Errorf("refused joins left %d groups behind", len(h.c.groups))
	}
	r, _ := h.join("g", "", joinOpt{client: strings.Repeat("c", MaxStringBytes)})
	if id := r.MemberID; r.ErrorCode != kerr.MemberIDRequired.Code || len(id) > maxClientIDInMemberID+1+36 || !strings.HasPrefix(id, "ccc") {
		t.Errorf("member id of a %d-byte client id: %d bytes (error %d)", MaxStringBytes, len(id), r.ErrorCode)
	}
}

func TestNotCoordinatorAndUnload(t *testing.T) {
	h := newHarness(t, Config{})
	_, tk := h.joinNew("g", joinOpt{})
	res := h.c.Unload(0)
	h.absorb(res)
	if r := h.joinResult(tk); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("unload: %+v", r)
	}
	if r, _ := h.join("g", "", joinOpt{}); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("join after unload: %d", r.ErrorCode)
	}
	if code := h.heartbeat("g", "m", 1, ""); code != kerr.NotCoordinator.Code {
		t.Fatalf("heartbeat: %d", code)
	}
	// Several partitions: only loaded ones are served.
	c := New(Config{NumPartitions: 50})
	if err := c.Load(t0, PartitionFor("my-group", 50), nil); err != nil {
		t.Fatal(err)
	}
	if code := c.Heartbeat(t0, &kmsg.HeartbeatRequest{Group: "my-group"}).ErrorCode; code != kerr.UnknownMemberID.Code {
		t.Fatalf("owned group: %d", code)
	}
	if code := c.Heartbeat(t0, &kmsg.HeartbeatRequest{Group: "hello"}).ErrorCode; code != kerr.NotCoordinator.Code {
		t.Fatalf("foreign group: %d", code)
	}
}

func TestLeaderThatNeverSyncsIsRemoved(t *testing.T) {
	h := newHarness(t, Config{})
	ids, _ := stableGroup(t, h, "g", 2)
	// Both rejoin: a new generation whose leader then heartbeats but never
	// syncs.
	_, a := h.join("g", ids[0], joinOpt{})
	h.join("g", ids[1], joinOpt{})
	gen := h.joinResult(a).Generation
	_, fs := h.sync("g", ids[1], gen, "", nil)
	start := h.now
	for h.now.Before(start.Add(rebalance)) {
		h.advance(session / 2)
		h.heartbeat("g", ids[0], gen, "")
		h.tick()
	}
	if h.c.groups["g"].members[ids[0]] != nil {
		t.Fatal("a leader that never synced within the rebalance timeout should be removed")
	}
	if r := h.syncResult(fs); r.ErrorCode != kerr.RebalanceInProgress.Code {
		t.Fatalf("the waiting follower: %d", r.ErrorCode)
	}
	// The waiting follower was not expired by its session meanwhile.
	if h.c.groups["g"].members[ids[1]] == nil {
		t.Fatal("a member waiting in SyncGroup must not expire")
	}
}

// staticPair builds a Stable group of static members A (leader) and B.
func staticPair(t *testing.T, h *harness) (a, b string, gen int32) {
	t.Helper()
	_, ta := h.joinNew("g", joinOpt{instance: "A"})
	_, tb := h.joinNew("g", joinOpt{instance: "B"})
	h.tickUntilDone(rebalance, ta, tb)
	ra, rb := h.joinResult(ta), h.joinResult(tb)
	_, bs := h.sync("g", rb.MemberID, ra.Generation, "B", nil)
	h.sync("g", ra.MemberID, ra.Generation, "A", map[string]string{ra.MemberID: "pa", rb.MemberID: "pb"})
	h.syncResult(bs)
	return ra.MemberID, rb.MemberID, ra.Generation
}

func TestAbsentStaticMemberSurvivesRebalance(t *testing.T) {
	h := newHarness(t, Config{})
	a, b, gen := staticPair(t, h)
	// A dynamic member joins and A rejoins; B keeps heartbeating but does
	// not rejoin. At the rebalance timeout B, being static, stays a member
	// (Kafka removes only dynamic laggards) and keeps its assignment.
	start := h.now
	_, c := h.join("g", "", joinOpt{version: 3})
	_, a2 := h.join("g", a, joinOpt{instance: "A"})
	for h.now.Before(start.Add(rebalance - 5*time.Second)) {
		h.advance(5 * time.Second)
		if code := h.heartbeat("g", b, gen, "B"); code != kerr.RebalanceInProgress.Code {
			t.Fatalf("B heartbeat: %d", code)
		}
		h.tick()
		if !h.waiting[a2] {
			t.Fatalf("rebalance completed early, after %v", h.now.Sub(start))
		}
	}
	h.now = start.Add(rebalance)
	h.tick()
	ra, rc := h.joinResult(a2), h.joinResult(c)
	if ra.Generation != gen+1 || ra.LeaderID != a || len(ra.Members) != 3 || rc.ErrorCode != 0 {
		t.Fatalf("after the rebalance timeout: %+v", ra)
	}
	g := h.c.groups["g"]
	if g.members[b] == nil || string(g.members[b].assignment) != "pb" {
		t.Fatal("the absent static member should still be there with its assignment")
	}
	// Without heartbeats, its session then expires.
	h.advance(session)
	h.heartbeat("g", a, gen+1, "A")
	h.tick()
	if g.members[b] != nil {
		t.Fatal("B's session should have expired")
	}
}

func TestNewMemberJoinTimeout(t *testing.T) {
	h := newHarness(t, Config{})
	_, b, gen := staticPair(t, h)
	// A new member with a rebalance timeout longer than Kafka's 5 min
	// new-member join timeout joins, and its client disappears; B keeps
	// heartbeating without rejoining, so the rebalance lasts.
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version, req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 3, "g", 10000, int32(time.Hour/time.Millisecond)
	req.ProtocolType, req.Protocols = "consumer", rangeProtocols("t")
	_, ticket, res := h.c.JoinGroup(h.now, req, Client{ID: "gone"})
	h.waiting[ticket] = true
	h.absorb(res)
	start := h.now
	for h.waiting[ticket] {
		h.advance(5 * time.Second)
		h.heartbeat("g", b, gen, "B")
		h.tick()
	}
	if took := h.now.Sub(start); took != newMemberJoinTimeout {
		t.Fatalf("abandoned new member removed after %v", took)
	}
	if r := h.joinResult(ticket); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("abandoned new member: %+v", r)
	}
}

func TestUnknownInstanceID(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := stableGroup(t, h, "g", 1)
	// A dynamic member claiming an instance id the group does not know.
	if code := h.heartbeat("g", ids[0], gen, "nope"); code != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat: %d", code)
	}
	inst := "nope"
	if lr := h.leave("g", kmsg.LeaveGroupRequestMember{InstanceID: &inst}); lr.Members[0].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave: %d", lr.Members[0].ErrorCode)
	}
	if lr := h.leave("g", kmsg.LeaveGroupRequestMember{}); lr.Members[0].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave with neither id: %d", lr.Members[0].ErrorCode)
	}
}
