package group

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var t0 = time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)

const (
	session   = 10 * time.Second
	rebalance = 60 * time.Second
)

// harness drives a Coordinator the way a driver would: it keeps the
// records emitted (the __consumer_offsets log), collects completions by
// ticket, and checks that every ticket is completed exactly once.
type harness struct {
	t       *testing.T
	cfg     Config
	c       *Coordinator
	now     time.Time
	log     []Record
	done    map[Ticket]Completion
	waiting map[Ticket]bool
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	n := 0
	cfg.NumPartitions = 1
	cfg.NewUUID = func() string { n++; return fmt.Sprintf("uuid%d", n) }
	h := &harness{t: t, cfg: cfg, c: New(cfg), now: t0, done: map[Ticket]Completion{}, waiting: map[Ticket]bool{}}
	if err := h.c.Load(t0, 0, nil); err != nil {
		t.Fatal(err)
	}
	// Whatever a test leaves waiting must be answered when the partition
	// is unloaded: no Ticket ever leaks.
	t.Cleanup(func() {
		h.absorb(h.c.Unload(0))
		if len(h.waiting) > 0 {
			t.Errorf("tickets never completed: %v", h.waiting)
		}
	})
	return h
}

// encodable fails the test if a response does not encode at its version
// (for example a nil where that version needs a value).
func encodable(t *testing.T, resp interface{ AppendTo([]byte) []byte }) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%T does not encode: %v", resp, r)
		}
	}()
	resp.AppendTo(nil)
}

func (h *harness) advance(d time.Duration) { h.now = h.now.Add(d) }

func (h *harness) absorb(res Result) {
	h.t.Helper()
	h.log = append(h.log, res.Records...)
	for _, c := range res.Completions {
		if !h.waiting[c.Ticket] {
			h.t.Fatalf("completion for ticket %d that is not waiting", c.Ticket)
		}
		if (c.Join == nil) == (c.Sync == nil) {
			h.t.Fatalf("completion %d: exactly one of Join and Sync must be set", c.Ticket)
		}
		delete(h.waiting, c.Ticket)
		h.done[c.Ticket] = c
		if c.Join != nil {
			encodable(h.t, c.Join)
		} else {
			encodable(h.t, c.Sync)
		}
	}
}

func (h *harness) tick() {
	h.t.Helper()
	h.absorb(h.c.Tick(h.now))
}

// tickUntilDone moves time to each next deadline and ticks until no ticket
// in ts still waits; it fails if that takes longer than limit.
func (h *harness) tickUntilDone(limit time.Duration, ts ...Ticket) {
	h.t.Helper()
	end := h.now.Add(limit)
	for i := 0; slices.ContainsFunc(ts, func(t Ticket) bool { return h.waiting[t] }); i++ {
		if i == 100000 {
			h.t.Fatal("NextDeadline does not move: Tick leaves it in the past")
		}
		d := h.c.NextDeadline()
		if d.After(end) {
			h.t.Fatalf("tickets still waiting at %v", h.now)
		}
		if d.After(h.now) {
			h.now = d
		}
		h.tick()
	}
}

type joinOpt struct {
	version   int16
	instance  string
	protocols []kmsg.JoinGroupRequestProtocol
	client    string
}

func consumerMeta(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

func rangeProtocols(topics ...string) []kmsg.JoinGroupRequestProtocol {
	return []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: consumerMeta(topics...)}}
}

// join sends a JoinGroup; it returns the response if answered at once, or
// records the ticket and returns nil.
func (h *harness) join(groupID, memberID string, o joinOpt) (*kmsg.JoinGroupResponse, Ticket) {
	h.t.Helper()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = o.version
	if req.Version == 0 {
		req.Version = 9
	}
	req.Group = groupID
	req.MemberID = memberID
	req.SessionTimeoutMillis = int32(session / time.Millisecond)
	req.RebalanceTimeoutMillis = int32(rebalance / time.Millisecond)
	req.ProtocolType = "consumer"
	req.Protocols = o.protocols
	if req.Protocols == nil {
		req.Protocols = rangeProtocols("t")
	}
	if o.instance != "" {
		req.InstanceID = &o.instance
	}
	client := o.client
	if client == "" {
		client = "c"
	}
	resp, ticket, res := h.c.JoinGroup(h.now, req, Client{ID: client, Host: "/127.0.0.1"})
	if (resp == nil) == (ticket == 0) {
		h.t.Fatalf("JoinGroup: exactly one of response and ticket must be set (resp %v ticket %d)", resp, ticket)
	}
	if ticket != 0 {
		h.waiting[ticket] = true
	} else {
		encodable(h.t, resp)
	}
	h.absorb(res)
	return resp, ticket
}

// joinNew joins a dynamic member with a v4+ two-step join and returns its
// ticket and member id.
func (h *harness) joinNew(groupID string, o joinOpt) (string, Ticket) {
	h.t.Helper()
	resp, ticket := h.join(groupID, "", o)
	if o.instance != "" || o.version != 0 && o.version < 4 {
		if ticket == 0 {
			h.t.Fatalf("join: expected to wait, got error %d", resp.ErrorCode)
		}
		return "", ticket
	}
	if resp == nil || resp.ErrorCode != kerr.MemberIDRequired.Code {
		h.t.Fatalf("first join: want MEMBER_ID_REQUIRED, got %+v", resp)
	}
	resp, ticket = h.join(groupID, resp.MemberID, o)
	if resp != nil {
		return resp.MemberID, 0
	}
	return "", ticket
}

func (h *harness) joinResult(t Ticket) *kmsg.JoinGroupResponse {
	h.t.Helper()
	c, ok := h.done[t]
	if !ok || c.Join == nil {
		h.t.Fatalf("ticket %d: no JoinGroup completion", t)
	}
	return c.Join
}

func (h *harness) syncResult(t Ticket) *kmsg.SyncGroupResponse {
	h.t.Helper()
	c, ok := h.done[t]
	if !ok || c.Sync == nil {
		h.t.Fatalf("ticket %d: no SyncGroup completion", t)
	}
	return c.Sync
}

func (h *harness) sync(groupID, memberID string, gen int32, instance string, assign map[string]string) (*kmsg.SyncGroupResponse, Ticket) {
	h.t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = groupID, memberID, gen
	if instance != "" {
		req.InstanceID = &instance
	}
	for _, id := range slices.Sorted(maps.Keys(assign)) {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: []byte(assign[id])})
	}
	resp, ticket, res := h.c.SyncGroup(h.now, req)
	if (resp == nil) == (ticket == 0) {
		h.t.Fatalf("SyncGroup: exactly one of response and ticket must be set")
	}
	if ticket != 0 {
		h.waiting[ticket] = true
	} else {
		encodable(h.t, resp)
	}
	h.absorb(res)
	return resp, ticket
}

func (h *harness) heartbeat(groupID, memberID string, gen int32, instance string) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation = groupID, memberID, gen
	if instance != "" {
		req.InstanceID = &instance
	}
	return h.c.Heartbeat(h.now, req).ErrorCode
}

func (h *harness) leave(groupID string, members ...kmsg.LeaveGroupRequestMember) *kmsg.LeaveGroupResponse {
	h.t.Helper()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 5
	req.Group = groupID
	req.Members = members
	resp, res := h.c.LeaveGroup(h.now, req)
	h.absorb(res)
	return resp
}

func (h *harness) commit(groupID, memberID string, gen int32, topic string, partition int32, off int64) int16 {
	h.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 9
	req.Group, req.MemberID, req.Generation = groupID, memberID, gen
	md := "md"
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: partition, Offset: off, LeaderEpoch: 3, Metadata: &md}}}}
	resp, res := h.c.OffsetCommit(h.now, req)
	h.absorb(res)
	return resp.Topics[0].Partitions[0].ErrorCode
}

func (h *harness) state(groupID string) State {
	h.t.Helper()
	g := h.c.groups[groupID]
	if g == nil {
		return Dead
	}
	return g.state
}

// stableGroup builds a Stable group of n dynamic members (v9 clients); it
// returns the member ids in join
// order (the first leads) and the generation. Member i is assigned "a<i>".
func stableGroup(t *testing.T, h *harness, groupID string, n int) ([]string, int32) {
	t.Helper()
	var tickets []Ticket
	for range n {
		_, tk := h.joinNew(groupID, joinOpt{})
		tickets = append(tickets, tk)
	}
	// With the initial delay, the rebalance completes at its deadline.
	h.tickUntilDone(rebalance, tickets...)
	var ids []string
	var gen int32
	for _, tk := range tickets {
		r := h.joinResult(tk)
		if r.ErrorCode != 0 {
			t.Fatalf("join: error %d", r.ErrorCode)
		}
		ids = append(ids, r.MemberID)
		gen = r.Generation
	}
	assign := map[string]string{}
	for i, id := range ids {
		assign[id] = fmt.Sprintf("a%d", i)
	}
	var syncTickets []Ticket
	for _, id := range ids[1:] {
		_, tk := h.sync(groupID, id, gen, "", nil)
		syncTickets = append(syncTickets, tk)
	}
	resp, _ := h.sync(groupID, ids[0], gen, "", assign)
	if resp == nil || resp.ErrorCode != 0 || string(resp.MemberAssignment) != "a0" {
		t.Fatalf("leader sync: %+v", resp)
	}
	for i, tk := range syncTickets {
		if r := h.syncResult(tk); r.ErrorCode != 0 || string(r.MemberAssignment) != fmt.Sprintf("a%d", i+1) {
			t.Fatalf("follower %d sync: %+v", i+1, r)
		}
	}
	if s := h.state(groupID); s != Stable {
		t.Fatalf("state %v, want Stable", s)
	}
	return ids, gen
}

// persistentView is what Kafka persists of the coordinator's state: equal
// views before and after a replay mean nothing acknowledged was lost.
type memberView struct {
	ID, Instance, ClientID, ClientHost string
	Session, Rebalance                 time.Duration
	Subscription, Assignment           string
}

type groupView struct {
	ProtocolType, Protocol, Leader string
	Generation                     int32
	State                          State
	StateTime                      int64
	Members                        []memberView
	Offsets                        map[string]map[int32]offset
}

func persistentView(c *Coordinator) map[string]groupView {
	out := map[string]groupView{}
	for id, g := range c.groups {
		if g.protocolType == "" && g.generation == 0 && len(g.members) == 0 && !g.hasOffsets() {
			// Nothing Kafka persists: for example a group that has only
			// handed out MEMBER_ID_REQUIRED ids.
			continue
		}
		v := groupView{ProtocolType: g.protocolType, Protocol: g.protocol, Leader: g.leader, Generation: g.generation, State: g.state, Offsets: g.offsets}
		if g.protocolType != "" {
			v.StateTime = g.stateTime
		}
		for _, mid := range g.order {
			m := g.members[mid]
			mv := memberView{ID: m.id, ClientID: m.clientID, ClientHost: m.clientHost, Session: m.sessionTimeout, Rebalance: m.rebalanceTimeout,
				Subscription: string(m.metadataFor(g.protocol)), Assignment: string(m.assignment)}
			if m.instanceID != nil {
				mv.Instance = *m.instanceID
			}
			v.Members = append(v.Members, mv)
		}
		out[id] = v
	}
	return out
}

// failover moves the coordinator to a "new node": the partition is unloaded
// (answering every waiting request) and a fresh coordinator loads the log.
func (h *harness) failover() {
	h.t.Helper()
	h.absorb(h.c.Unload(0))
	if len(h.waiting) != 0 {
		h.t.Fatalf("unload left tickets waiting: %v", h.waiting)
	}
	h.done = map[Ticket]Completion{} // the new coordinator numbers tickets afresh
	h.c = New(h.cfg)
	if err := h.c.Load(h.now, 0, h.log); err != nil {
		h.t.Fatal(err)
	}
}

// checkReplay loads the harness's log into a fresh coordinator and checks
// that it rebuilds the same persistent state.
func (h *harness) checkReplay() {
	h.t.Helper()
	fresh := New(Config{NumPartitions: 1})
	if err := fresh.Load(h.now, 0, h.log); err != nil {
		h.t.Fatal(err)
	}
	got, want := persistentView(fresh), persistentView(h.c)
	if !reflect.DeepEqual(got, want) {
		h.t.Fatalf("replayed state differs:\n got %+v\nwant %+v", got, want)
	}
}

func mustEqualBytes(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if !bytes.Equal(got, []byte(want)) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

// dumpGroups renders the coordinator's groups for a failure message.
func dumpGroups(h *harness) string {
	s := ""
	for _, id := range h.c.sortedGroupIDs() {
		g := h.c.groups[id]
		s += fmt.Sprintf("group %s state %v gen %d leader %s deadline %v pendingSync %v syncDeadline %v pending %v\n", id, g.state, g.generation, g.leader, g.rebalanceDeadline, g.pendingSync, g.syncDeadline, g.pending)
		for _, mid := range g.order {
			m := g.members[mid]
			d, ok := m.sessionDeadline()
			s += fmt.Sprintf("  member %s join %d sync %d lastSeen %v session %v new %v deadline %v %v\n", mid, m.joinTicket, m.syncTicket, m.lastSeen, m.sessionTimeout, m.newDeadline, d, ok)
		}
	}
	return s
}
