package group

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRandomHistories drives several groups with random interleavings of
// every input and checks the machine's invariants after each step:
// tickets are completed exactly once (the harness), generations never go
// back, membership indexes agree, and whenever every group is at rest the
// records emitted so far replay to the same persistent state.
func TestRandomHistories(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 20
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { randomHistory(t, uint64(seed)) })
	}
}

type simMember struct {
	group, id, instance string
	gen                 int32
	version             int16
	ticket              Ticket // a JoinGroup that waits
}

func randomHistory(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	cfg := Config{}
	if rng.IntN(2) == 0 {
		cfg.InitialRebalanceDelay = -1
	}
	if rng.IntN(4) == 0 {
		cfg.MaxGroupSize = 1 + rng.IntN(3)
	}
	h := newHarness(t, cfg)
	groups := []string{"a", "b", "c"}
	var members []*simMember
	gens := map[string]int32{}
	pick := func() *simMember {
		if len(members) == 0 {
			return nil
		}
		return members[rng.IntN(len(members))]
	}
	protocols := [][]kmsg.JoinGroupRequestProtocol{
		rangeProtocols("t"),
		rangeProtocols("t", "u"),
		{{Name: "cooperative-sticky", Metadata: consumerMeta("t")}, {Name: "range", Metadata: consumerMeta("t")}},
	}
	for step := range 300 {
		switch op := rng.IntN(13); op {
		case 0, 1: // a new member
			m := &simMember{group: groups[rng.IntN(len(groups))], version: int16(rng.IntN(10))}
			if m.version >= 5 && rng.IntN(2) == 0 {
				m.instance = fmt.Sprintf("inst%d", rng.IntN(4))
			}
			o := joinOpt{version: max(m.version, 1), instance: m.instance, protocols: protocols[rng.IntN(len(protocols))]}
			resp, ticket := h.join(m.group, "", o)
			m.ticket = ticket
			if resp != nil && resp.MemberID != "" {
				m.id = resp.MemberID
				if resp.ErrorCode == 0 {
					m.gen = resp.Generation
				}
			}
			members = append(members, m)
		case 2: // a known member rejoins
			if m := pick(); m != nil && m.id != "" {
				o := joinOpt{version: max(m.version, 1), instance: m.instance, protocols: protocols[rng.IntN(len(protocols))]}
				resp, ticket := h.join(m.group, m.id, o)
				m.ticket = ticket
				if resp != nil && resp.ErrorCode == 0 {
					m.gen = resp.Generation
				}
			}
		case 3: // learn ids and generations from completed joins, then sync
			for _, m := range members {
				if c, ok := h.done[m.ticket]; ok && m.ticket != 0 {
					m.ticket = 0
					if c.Join.ErrorCode == 0 {
						m.id, m.gen = c.Join.MemberID, c.Join.Generation
					}
				}
			}
			if m := pick(); m != nil && m.id != "" {
				assign := map[string]string{}
				if g := h.c.groups[m.group]; g != nil {
					for _, id := range g.order {
						assign[id] = "x" + id
					}
				}
				h.sync(m.group, m.id, m.gen, m.instance, assign)
			}
		case 4, 5:
			if m := pick(); m != nil {
				h.heartbeat(m.group, m.id, m.gen, m.instance)
			}
		case 6:
			if m := pick(); m != nil {
				lm := kmsg.LeaveGroupRequestMember{MemberID: m.id}
				if m.instance != "" && rng.IntN(2) == 0 {
					inst := m.instance
					lm.InstanceID = &inst
				}
				h.leave(m.group, lm)
			}
		case 7:
			if m := pick(); m != nil {
				h.commit(m.group, m.id, m.gen, "t", int32(rng.IntN(3)), int64(step))
			} else {
				h.commit(groups[rng.IntN(len(groups))], "", -1, "t", 0, int64(step))
			}
		case 8:
			req := kmsg.NewPtrDeleteGroupsRequest()
			req.Groups = []string{groups[rng.IntN(len(groups))]}
			_, res := h.c.DeleteGroups(req)
			h.absorb(res)
		case 9:
			req := kmsg.NewPtrOffsetDeleteRequest()
			req.Group = groups[rng.IntN(len(groups))]
			req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: []string{"t", "u"}[rng.IntN(2)], Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
			_, res := h.c.OffsetDelete(req)
			h.absorb(res)
		case 10:
			if rng.IntN(10) == 0 {
				h.failover()
				for _, m := range members {
					m.ticket = 0
				}
				// A generation completed but never synced was not
				// persisted: the new coordinator resumes from the last
				// persisted one, as Kafka's does.
				clear(gens)
			}
		default: // time passes
			h.advance(time.Duration(rng.IntN(8000)) * time.Millisecond)
			if rng.IntN(20) == 0 {
				h.advance(DefaultOffsetsRetention)
			}
			h.tick()
			if d := h.c.NextDeadline(); !d.After(h.now) {
				t.Fatalf("after Tick at %v, NextDeadline %v is not in the future: a driver would spin\n%s", h.now, d, dumpGroups(h))
			}
		}
		checkInvariants(t, h, gens)
		if allAtRest(h.c) {
			h.checkReplay()
		}
	}
}

func allAtRest(c *Coordinator) bool {
	for _, g := range c.groups {
		if g.state != Stable && g.state != Empty {
			return false
		}
	}
	return true
}

func checkInvariants(t *testing.T, h *harness, gens map[string]int32) {
	t.Helper()
	for id := range gens {
		if h.c.groups[id] == nil {
			delete(gens, id) // deleted: a new group of that name starts over
		}
	}
	for id, g := range h.c.groups {
		if g.generation < gens[id] {
			t.Fatalf("group %s: generation went back from %d to %d", id, gens[id], g.generation)
		}
		gens[id] = g.generation
		if len(g.order) != len(g.members) {
			t.Fatalf("group %s: order %v vs %d members", id, g.order, len(g.members))
		}
		for _, mid := range g.order {
			m := g.members[mid]
			if m == nil || m.id != mid {
				t.Fatalf("group %s: member %s missing or misnamed", id, mid)
			}
			if m.instanceID != nil && g.static[*m.instanceID] != mid {
				t.Fatalf("group %s: static member %s not indexed", id, mid)
			}
			if (m.joinTicket != 0) != h.waiting[m.joinTicket] && m.joinTicket != 0 {
				t.Fatalf("group %s: member %s holds a ticket nobody waits on", id, mid)
			}
		}
		for inst, mid := range g.static {
			if m := g.members[mid]; m == nil || m.instanceID == nil || *m.instanceID != inst {
				t.Fatalf("group %s: instance %s points to %s", id, inst, mid)
			}
		}
		switch {
		case len(g.members) > 0 && g.members[g.leader] == nil:
			t.Fatalf("group %s: leader %q is not a member", id, g.leader)
		case g.state == Empty && len(g.members) > 0:
			t.Fatalf("group %s: Empty with members", id)
		case g.state == Dead:
			t.Fatalf("group %s: Dead groups are not kept", id)
		}
		if g.state == Stable || g.state == CompletingRebalance {
			if _, ok := g.members[g.leader]; !ok {
				t.Fatalf("group %s: %v without a leader", id, g.state)
			}
		}
	}
}
