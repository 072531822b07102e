package group

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func listGroups(h *harness, version int16, states, types []string) []string {
	req := kmsg.NewPtrListGroupsRequest()
	req.Version, req.StatesFilter, req.TypesFilter = version, states, types
	var out []string
	for _, g := range h.c.ListGroups(req).Groups {
		out = append(out, g.Group+":"+g.GroupState)
	}
	return out
}

func TestListGroupsFilter(t *testing.T) {
	h := newHarness(t, Config{})
	stableGroup(t, h, "stable", 1)
	h.commit("simple", "", -1, "t", 0, 1)
	h.joinNew("preparing", joinOpt{})
	for _, tc := range []struct {
		states, types []string
		want          []string
	}{
		{nil, nil, []string{"preparing:PreparingRebalance", "simple:Empty", "stable:Stable"}},
		{[]string{"Stable"}, nil, []string{"stable:Stable"}},
		{[]string{"empty", "PREPARINGREBALANCE"}, nil, []string{"preparing:PreparingRebalance", "simple:Empty"}},
		{[]string{"Dead"}, nil, nil},
		{nil, []string{"Classic"}, []string{"preparing:PreparingRebalance", "simple:Empty", "stable:Stable"}},
		{nil, []string{"consumer"}, nil},
	} {
		if got := listGroups(h, 5, tc.states, tc.types); !slices.Equal(got, tc.want) {
			t.Errorf("states %v types %v: got %v, want %v", tc.states, tc.types, got, tc.want)
		}
	}
}

func TestDescribeGroups(t *testing.T) {
	h := newHarness(t, Config{})
	ids, _ := stableGroup(t, h, "g", 2)
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 6
	req.Groups = []string{"g", "missing"}
	resp := h.c.DescribeGroups(req)
	g, missing := resp.Groups[0], resp.Groups[1]
	if g.ErrorCode != 0 || g.State != "Stable" || g.ProtocolType != "consumer" || g.Protocol != "range" || len(g.Members) != 2 {
		t.Fatalf("%+v", g)
	}
	if g.Members[0].MemberID != ids[0] || string(g.Members[1].MemberAssignment) != "a1" || g.Members[0].ClientHost != "/127.0.0.1" {
		t.Fatalf("members %+v", g.Members)
	}
	var md kmsg.ConsumerMemberMetadata
	if err := md.ReadFrom(g.Members[0].ProtocolMetadata); err != nil || !slices.Equal(md.Topics, []string{"t"}) {
		t.Fatalf("metadata %v %v", md.Topics, err)
	}
	if missing.ErrorCode != kerr.GroupIDNotFound.Code || missing.State != "Dead" || missing.ErrorMessage == nil {
		t.Fatalf("missing group v6: %+v", missing)
	}
	req.Version = 5
	if r := h.c.DescribeGroups(req).Groups[1]; r.ErrorCode != 0 || r.State != "Dead" {
		t.Fatalf("missing group v5: %+v", r)
	}
	// While rebalancing, no protocol, metadata or assignment is shown.
	h.leave("g", kmsg.LeaveGroupRequestMember{MemberID: ids[1]})
	r := h.c.DescribeGroups(req).Groups[0]
	if r.State != "PreparingRebalance" || r.Protocol != "" || len(r.Members) != 1 || len(r.Members[0].MemberAssignment) != 0 {
		t.Fatalf("rebalancing: %+v", r)
	}
}

func TestDeleteGroups(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := stableGroup(t, h, "live", 1)
	h.commit("live", ids[0], gen, "t", 0, 1)
	h.commit("simple", "", -1, "t", 0, 1)
	h.commit("simple", "", -1, "t", 1, 1)
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Version = 2
	req.Groups = []string{"live", "simple", "missing", ""}
	resp, res := h.c.DeleteGroups(req)
	h.absorb(res)
	// The empty group id is valid here (Kafka allows it for the offset and
	// admin APIs): it is simply not found.
	want := []int16{kerr.NonEmptyGroup.Code, 0, kerr.GroupIDNotFound.Code, kerr.GroupIDNotFound.Code}
	for i, g := range resp.Groups {
		if g.Group != req.Groups[i] || g.ErrorCode != want[i] {
			t.Errorf("%q: %d, want %d", g.Group, g.ErrorCode, want[i])
		}
	}
	if len(res.Records) != 3 {
		t.Fatalf("want two offset tombstones and a group tombstone, got %d records", len(res.Records))
	}
	for _, r := range res.Records {
		if r.Value != nil {
			t.Fatal("not a tombstone")
		}
	}
	if h.c.groups["simple"] != nil || h.state("live") != Stable {
		t.Fatal("wrong groups deleted")
	}
	h.checkReplay()
	// Once the last member left, the group can go.
	h.leave("live", kmsg.LeaveGroupRequestMember{MemberID: ids[0]})
	req.Groups = []string{"live"}
	resp, res = h.c.DeleteGroups(req)
	h.absorb(res)
	if resp.Groups[0].ErrorCode != 0 || h.c.groups["live"] != nil {
		t.Fatalf("empty group: %d", resp.Groups[0].ErrorCode)
	}
	h.checkReplay()
}
