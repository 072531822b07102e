package group

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// roundTrip checks that a response encodes at its version and that the
// bytes decode and re-encode identically, as a client would see them.
func roundTrip(t *testing.T, r kmsg.Response) {
	t.Helper()
	wire := r.AppendTo(nil)
	dec := kmsg.ResponseForKey(r.Key())
	dec.SetVersion(r.GetVersion())
	if err := dec.ReadFrom(wire); err != nil {
		t.Fatalf("%T v%d: %v", r, r.GetVersion(), err)
	}
	if again := dec.AppendTo(nil); !bytes.Equal(again, wire) {
		t.Fatalf("%T v%d: re-encoding differs", r, r.GetVersion())
	}
}

// TestEveryVersion runs one member through a whole life cycle with each
// JoinGroup version and the matching versions of the other APIs.
func TestEveryVersion(t *testing.T) {
	for v := int16(0); v <= 9; v++ {
		h := newHarness(t, Config{InitialRebalanceDelay: -1})
		jr := kmsg.NewPtrJoinGroupRequest()
		jr.Version, jr.Group, jr.SessionTimeoutMillis, jr.RebalanceTimeoutMillis = v, "g", 10000, 20000
		jr.ProtocolType, jr.Protocols = "consumer", rangeProtocols("t")
		if v >= 5 {
			inst := "i"
			jr.InstanceID = &inst // static: no MEMBER_ID_REQUIRED round
		}
		resp, ticket, _ := h.c.JoinGroup(h.now, jr, Client{ID: "c"})
		if v == 4 {
			if resp.ErrorCode != kerr.MemberIDRequired.Code {
				t.Fatalf("v4: %+v", resp)
			}
			roundTrip(t, resp)
			jr.MemberID = resp.MemberID
			resp, ticket, _ = h.c.JoinGroup(h.now, jr, Client{ID: "c"})
		}
		if ticket != 0 || resp.ErrorCode != 0 || resp.Generation != 1 {
			t.Fatalf("v%d join: %+v", v, resp)
		}
		roundTrip(t, resp)
		if v == 0 && h.c.groups["g"].members[resp.MemberID].rebalanceTimeout != session {
			t.Fatal("v0: rebalance timeout should be the session timeout")
		}
		id := resp.MemberID

		sr := kmsg.NewPtrSyncGroupRequest()
		sr.Version, sr.Group, sr.MemberID, sr.Generation, sr.InstanceID = min(v, 5), "g", id, 1, jr.InstanceID
		sr.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: id, MemberAssignment: []byte("a")}}
		sresp, _, _ := h.c.SyncGroup(h.now, sr)
		if sresp.ErrorCode != 0 || string(sresp.MemberAssignment) != "a" {
			t.Fatalf("v%d sync: %+v", v, sresp)
		}
		roundTrip(t, sresp)

		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Version, hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = min(v, 4), "g", id, 1, jr.InstanceID
		hresp := h.c.Heartbeat(h.now, hb)
		if hresp.ErrorCode != 0 {
			t.Fatalf("v%d heartbeat: %d", v, hresp.ErrorCode)
		}
		roundTrip(t, hresp)

		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.Version, oc.Group, oc.MemberID, oc.Generation = min(v, 9), "g", id, 1
		if oc.Version >= 7 {
			oc.InstanceID = jr.InstanceID
		}
		if oc.Version == 0 {
			oc.Generation, oc.MemberID = -1, "" // v0 has neither: only an empty group accepts it
		}
		oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5}}}}
		ocresp, _ := h.c.OffsetCommit(h.now, oc)
		want := int16(0)
		if oc.Version == 0 {
			want = kerr.UnknownMemberID.Code
		}
		if code := ocresp.Topics[0].Partitions[0].ErrorCode; code != want {
			t.Fatalf("v%d commit: %d", v, code)
		}
		roundTrip(t, ocresp)
		roundTrip(t, fetchV(h, min(v, 9), "g", map[string][]int32{"t": {0}}))

		dg := kmsg.NewPtrDescribeGroupsRequest()
		dg.Version, dg.Groups = min(v, 6), []string{"g", "none"}
		roundTrip(t, h.c.DescribeGroups(dg))
		lg := kmsg.NewPtrListGroupsRequest()
		lg.Version = min(v, 5)
		roundTrip(t, h.c.ListGroups(lg))

		lv := kmsg.NewPtrLeaveGroupRequest()
		lv.Version, lv.Group = min(v, 5), "g"
		if lv.Version >= 3 {
			lv.Members = []kmsg.LeaveGroupRequestMember{{MemberID: id, InstanceID: jr.InstanceID}}
		} else {
			lv.MemberID = id
		}
		lresp, _ := h.c.LeaveGroup(h.now, lv)
		if lresp.ErrorCode != 0 || h.state("g") != Empty {
			t.Fatalf("v%d leave: %+v", v, lresp)
		}
		roundTrip(t, lresp)

		od := kmsg.NewPtrOffsetDeleteRequest()
		od.Group, od.Topics = "g", []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
		odresp, _ := h.c.OffsetDelete(od)
		roundTrip(t, odresp)
		dl := kmsg.NewPtrDeleteGroupsRequest()
		dl.Version, dl.Groups = min(v, 3), []string{"g"}
		dresp, _ := h.c.DeleteGroups(dl)
		if dresp.Groups[0].ErrorCode != 0 {
			t.Fatalf("v%d delete: %d", v, dresp.Groups[0].ErrorCode)
		}
		roundTrip(t, dresp)

		// Error responses encode too.
		for _, r := range []kmsg.Response{joinError(jr, "", kerr.UnknownMemberID.Code), syncError(min(v, 5), kerr.RebalanceInProgress.Code)} {
			roundTrip(t, r)
		}
	}
}
