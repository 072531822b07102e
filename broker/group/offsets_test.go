package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSimpleGroupCommits(t *testing.T) {
	h := newHarness(t, Config{})
	if code := h.commit("simple", "", -1, "t", 0, 42); code != 0 {
		t.Fatalf("simple commit: %d", code)
	}
	if s := h.state("simple"); s != Empty {
		t.Fatalf("simple group state %v", s)
	}
	if code := h.commit("simple", "", -1, "t", 1, 43); code != 0 {
		t.Fatalf("second simple commit: %d", code)
	}
	// A generation for a group that does not exist is refused.
	if code := h.commit("nogroup", "m", 3, "t", 0, 1); code != kerr.IllegalGeneration.Code {
		t.Fatalf("commit with generation to unknown group: %d", code)
	}
	if _, ok := h.c.groups["nogroup"]; ok {
		t.Fatal("a refused commit created a group")
	}
	// v0 (no generation, no member id) commits like a simple consumer.
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group = 0, "v0group"
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 9, LeaderEpoch: 5}}}}
	resp, res := h.c.OffsetCommit(h.now, req)
	h.absorb(res)
	if resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("v0 commit: %d", resp.Topics[0].Partitions[0].ErrorCode)
	}
	if o := h.c.groups["v0group"].offsets["t"][0]; o.leaderEpoch != -1 || o.metadata != "" {
		t.Fatalf("v0 commit stored %+v (leader epoch is v6+)", o)
	}
	// Metadata beyond offset.metadata.max.bytes.
	big := string(make([]byte, DefaultMaxMetadataBytes+1))
	req.Version = 9
	req.Generation = -1
	req.Topics[0].Partitions[0].Metadata = &big
	if resp, _ := h.c.OffsetCommit(h.now, req); resp.Topics[0].Partitions[0].ErrorCode != kerr.OffsetMetadataTooLarge.Code {
		t.Fatalf("big metadata: %d", resp.Topics[0].Partitions[0].ErrorCode)
	}
	h.checkReplay()
}

func TestCommitMembershipRules(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := stableGroup(t, h, "g", 2)
	for _, tc := range []struct {
		name   string
		member string
		gen    int32
		want   int16
	}{
		{"member", ids[1], gen, 0},
		{"stale generation", ids[1], gen - 1, kerr.IllegalGeneration.Code},
		{"unknown member", "ghost", gen, kerr.UnknownMemberID.Code},
		{"simple commit to a live group", "", -1, kerr.UnknownMemberID.Code},
	} {
		if code := h.commit("g", tc.member, tc.gen, "t", 0, 1); code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.want)
		}
	}
	// In CompletingRebalance a member with the new generation is told to
	// wait for its assignment.
	_, a := h.join("g", ids[0], joinOpt{})
	h.join("g", ids[1], joinOpt{})
	gen2 := h.joinResult(a).Generation
	if code := h.commit("g", ids[1], gen2, "t", 0, 2); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("commit while completing: %d", code)
	}
	// A commit counts as a heartbeat.
	h.sync("g", ids[0], gen2, "", map[string]string{})
	h.sync("g", ids[1], gen2, "", nil)
	for range 4 {
		h.advance(session / 2)
		h.commit("g", ids[0], gen2, "t", 0, 3)
		h.commit("g", ids[1], gen2, "t", 1, 3)
		h.tick()
	}
	if h.state("g") != Stable {
		t.Fatal("committing members expired")
	}
}

func fetchV(h *harness, version int16, groupID string, topics map[string][]int32) *kmsg.OffsetFetchResponse {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = version
	if version >= 8 {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = groupID
		if topics != nil {
			rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{}
		}
		for tp, ps := range topics {
			rg.Topics = append(rg.Topics, kmsg.OffsetFetchRequestGroupTopic{Topic: tp, Partitions: ps})
		}
		req.Groups = []kmsg.OffsetFetchRequestGroup{rg}
	} else {
		req.Group = groupID
		if topics != nil {
			req.Topics = []kmsg.OffsetFetchRequestTopic{}
		}
		for tp, ps := range topics {
			req.Topics = append(req.Topics, kmsg.OffsetFetchRequestTopic{Topic: tp, Partitions: ps})
		}
	}
	return h.c.OffsetFetch(req)
}

type fetched struct {
	partition   int32
	offset      int64
	leaderEpoch int32
	metadata    *string
	code        int16
}

// flatten decodes the response from its wire encoding (as a client would)
// and returns its partitions.
func flatten(t *testing.T, resp *kmsg.OffsetFetchResponse) []fetched {
	t.Helper()
	wire := resp.AppendTo(nil)
	var dec kmsg.OffsetFetchResponse
	dec.Version = resp.Version
	if err := dec.ReadFrom(wire); err != nil {
		t.Fatalf("v%d response does not decode: %v", resp.Version, err)
	}
	var out []fetched
	for _, tp := range dec.Topics {
		for _, p := range tp.Partitions {
			out = append(out, fetched{p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode})
		}
	}
	for _, g := range dec.Groups {
		if g.ErrorCode != 0 {
			t.Fatalf("group error %d", g.ErrorCode)
		}
		for _, tp := range g.Topics {
			for _, p := range tp.Partitions {
				out = append(out, fetched{p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode})
			}
		}
	}
	return out
}

func TestOffsetFetchDefaults(t *testing.T) {
	h := newHarness(t, Config{})
	h.commit("g", "", -1, "t", 0, 42)
	for v := int16(0); v <= 9; v++ {
		for _, groupID := range []string{"g", "unknown"} {
			got := flatten(t, fetchV(h, v, groupID, map[string][]int32{"t": {0, 1}}))
			if len(got) != 2 {
				t.Fatalf("v%d %s: %d partitions", v, groupID, len(got))
			}
			missing := got[1]
			if groupID == "unknown" {
				missing = got[0]
			}
			if missing.code != 0 || missing.offset != -1 || missing.metadata == nil || *missing.metadata != "" {
				t.Fatalf("v%d %s: nothing committed answered %+v (metadata %v)", v, groupID, missing, missing.metadata)
			}
			if v >= 5 && missing.leaderEpoch != -1 {
				t.Fatalf("v%d: leader epoch %d, want -1", v, missing.leaderEpoch)
			}
			if groupID == "g" {
				c := got[0]
				if c.offset != 42 || *c.metadata != "md" || (v >= 5 && c.leaderEpoch != 3) {
					t.Fatalf("v%d committed: %+v", v, c)
				}
			}
		}
	}
	// Null topics (v2+): every committed offset.
	h.commit("g", "", -1, "a", 3, 7)
	for _, v := range []int16{2, 7, 8, 9} {
		got := flatten(t, fetchV(h, v, "g", nil))
		if len(got) != 2 || got[0].offset != 7 || got[1].offset != 42 {
			t.Fatalf("v%d all offsets: %+v", v, got)
		}
	}
	// v8+: several groups in one request.
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	for _, g := range []string{"g", "other", ""} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g
		rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}
		req.Groups = append(req.Groups, rg)
	}
	resp := h.c.OffsetFetch(req)
	// The empty group id is a valid (if odd) group for offsets, as in Kafka.
	if len(resp.Groups) != 3 || resp.Groups[0].Topics[0].Partitions[0].Offset != 42 ||
		resp.Groups[1].Topics[0].Partitions[0].Offset != -1 || resp.Groups[2].ErrorCode != 0 || resp.Groups[2].Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("multi-group fetch: %+v", resp.Groups)
	}
}

func TestOffsetDelete(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := stableGroup(t, h, "g", 2) // members subscribe to topic "t"
	h.commit("g", ids[0], gen, "t", 0, 1)
	h.commit("g", ids[0], gen, "u", 0, 1)
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = "g"
	req.Topics = []kmsg.OffsetDeleteRequestTopic{
		{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
		{Topic: "u", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
	}
	resp, res := h.c.OffsetDelete(req)
	h.absorb(res)
	if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code || resp.Topics[1].Partitions[0].ErrorCode != 0 {
		t.Fatalf("%+v", resp)
	}
	if _, ok := h.c.groups["g"].offsets["u"]; ok || len(res.Records) != 1 || res.Records[0].Value != nil {
		t.Fatal("unsubscribed topic's offset should be deleted with a tombstone")
	}
	h.checkReplay()
	// Once empty, everything may go.
	h.leave("g", kmsg.LeaveGroupRequestMember{MemberID: ids[0]}, kmsg.LeaveGroupRequestMember{MemberID: ids[1]})
	resp, res = h.c.OffsetDelete(req)
	h.absorb(res)
	if resp.Topics[0].Partitions[0].ErrorCode != 0 || h.c.groups["g"].hasOffsets() {
		t.Fatalf("empty group: %+v", resp)
	}
	req.Group = "nope"
	if resp, _ := h.c.OffsetDelete(req); resp.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("unknown group: %d", resp.ErrorCode)
	}
	// A non-consumer group with members is refused as a whole.
	jr := kmsg.NewPtrJoinGroupRequest()
	jr.Version, jr.Group, jr.SessionTimeoutMillis, jr.ProtocolType = 3, "connect", 10000, "connect"
	jr.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "default", Metadata: []byte{1}}}
	_, ticket, _ := h.c.JoinGroup(h.now, jr, Client{})
	h.waiting[ticket] = true
	req.Group = "connect"
	if resp, _ := h.c.OffsetDelete(req); resp.ErrorCode != kerr.NonEmptyGroup.Code {
		t.Fatalf("connect group: %d", resp.ErrorCode)
	}
}

func TestOffsetExpiry(t *testing.T) {
	h := newHarness(t, Config{})
	const retention = DefaultOffsetsRetention
	h.tick() // schedules the first retention check
	// A simple group: offsets expire retention after their commit.
	h.commit("simple", "", -1, "t", 0, 1)
	h.advance(time.Hour)
	h.commit("simple", "", -1, "t", 1, 1)
	// A consumer group: while stable only unsubscribed topics expire; once
	// empty, everything expires retention after it became empty.
	ids, gen := stableGroup(t, h, "g", 1)
	h.commit("g", ids[0], gen, "t", 0, 5)
	h.commit("g", ids[0], gen, "gone", 0, 5)
	// An explicit retention (OffsetCommit v2) wins.
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation, req.RetentionTimeMillis = 2, "explicit", -1, int64(time.Hour/time.Millisecond)
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 3}}}}
	_, res := h.c.OffsetCommit(h.now, req)
	h.absorb(res)
	commitTime := h.now

	keepAlive := func(until time.Time) {
		for h.now.Before(until) {
			h.advance(DefaultOffsetsRetentionCheckInterval)
			h.heartbeat("g", ids[0], gen, "")
			h.tick()
		}
	}
	keepAlive(commitTime.Add(time.Hour + DefaultOffsetsRetentionCheckInterval))
	if _, ok := h.c.groups["explicit"]; ok {
		t.Fatal("offset with explicit retention should have expired after an hour")
	}
	keepAlive(commitTime.Add(retention - 2*time.Hour))
	if _, ok := h.c.groups["simple"].offsets["t"][0]; !ok {
		t.Fatal("simple group's offset expired early")
	}
	keepAlive(commitTime.Add(retention + DefaultOffsetsRetentionCheckInterval))
	if _, ok := h.c.groups["simple"]; ok {
		t.Fatal("simple group should be gone with its offsets")
	}
	g := h.c.groups["g"]
	if _, ok := g.offsets["gone"]; ok {
		t.Fatal("unsubscribed topic's offset should have expired")
	}
	if _, ok := g.offsets["t"]; !ok {
		t.Fatal("subscribed topic's offset of a stable group expired")
	}
	h.checkReplay()
	// Empty: retention counts from when the group became empty.
	h.leave("g", kmsg.LeaveGroupRequestMember{MemberID: ids[0]})
	emptySince := h.now
	for h.now.Before(emptySince.Add(retention - DefaultOffsetsRetentionCheckInterval)) {
		h.advance(DefaultOffsetsRetentionCheckInterval)
		h.tick()
	}
	if h.c.groups["g"] == nil {
		t.Fatal("empty group expired early")
	}
	h.advance(2 * DefaultOffsetsRetentionCheckInterval)
	h.tick()
	if h.c.groups["g"] != nil {
		t.Fatal("empty group should have expired")
	}
	last := h.log[len(h.log)-1]
	if last.Value != nil {
		t.Fatal("a deleted group ends with a group tombstone")
	}
	h.checkReplay()
}
