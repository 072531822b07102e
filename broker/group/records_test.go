package group

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRecordEncoding decodes emitted records with kmsg's key and value
// types, independently of the coordinator's own replay, and checks the
// fields Kafka's tools read.
func TestRecordEncoding(t *testing.T) {
	h := newHarness(t, Config{})
	inst := "static-1"
	_, tk := h.joinNew("g", joinOpt{instance: inst, client: "cl"})
	h.tickUntilDone(rebalance, tk)
	jr := h.joinResult(tk)
	h.sync("g", jr.MemberID, jr.Generation, inst, map[string]string{jr.MemberID: "assigned"})
	h.commit("g", jr.MemberID, jr.Generation, "topic", 7, 1234)
	if len(h.log) != 2 {
		t.Fatalf("%d records", len(h.log))
	}

	gm := h.log[0]
	if binary.BigEndian.Uint16(gm.Key) != 2 {
		t.Fatalf("group metadata key version %d", binary.BigEndian.Uint16(gm.Key))
	}
	var gk kmsg.GroupMetadataKey
	if err := gk.ReadFrom(gm.Key); err != nil || gk.Group != "g" {
		t.Fatalf("group key %+v %v", gk, err)
	}
	var gv kmsg.GroupMetadataValue
	if err := gv.ReadFrom(gm.Value); err != nil {
		t.Fatal(err)
	}
	if gv.Version != 3 || gv.ProtocolType != "consumer" || gv.Generation != jr.Generation || *gv.Protocol != "range" ||
		*gv.Leader != jr.MemberID || gv.CurrentStateTimestamp != h.now.UnixMilli() || len(gv.Members) != 1 {
		t.Fatalf("group value %+v", gv)
	}
	m := gv.Members[0]
	if m.MemberID != jr.MemberID || *m.InstanceID != inst || m.ClientID != "cl" || m.ClientHost != "/127.0.0.1" ||
		m.SessionTimeoutMillis != 10000 || m.RebalanceTimeoutMillis != 60000 || string(m.Assignment) != "assigned" {
		t.Fatalf("member %+v", m)
	}
	var sub kmsg.ConsumerMemberMetadata
	if err := sub.ReadFrom(m.Subscription); err != nil || sub.Topics[0] != "t" {
		t.Fatalf("subscription %+v %v", sub, err)
	}

	oc := h.log[1]
	if binary.BigEndian.Uint16(oc.Key) != 1 {
		t.Fatalf("offset key version %d", binary.BigEndian.Uint16(oc.Key))
	}
	var ok kmsg.OffsetCommitKey
	if err := ok.ReadFrom(oc.Key); err != nil || ok.Group != "g" || ok.Topic != "topic" || ok.Partition != 7 {
		t.Fatalf("offset key %+v %v", ok, err)
	}
	var ov kmsg.OffsetCommitValue
	if err := ov.ReadFrom(oc.Value); err != nil {
		t.Fatal(err)
	}
	if ov.Version != 3 || ov.Offset != 1234 || ov.LeaderEpoch != 3 || ov.Metadata != "md" || ov.CommitTimestamp != h.now.UnixMilli() {
		t.Fatalf("offset value %+v", ov)
	}
	// A v1 key reads the same as v0 (Kafka writes 1; both are offset keys).
	key0 := append([]byte{0, 0}, oc.Key[2:]...)
	fresh := New(Config{NumPartitions: 1})
	if err := fresh.Apply(h.now, key0, oc.Value); err != nil || fresh.groups["g"].offsets["topic"][7].offset != 1234 {
		t.Fatalf("v0 key: %v", err)
	}
	// The record's partition is the group's coordinator partition.
	if gm.Partition != 0 || oc.Partition != 0 {
		t.Fatal("partition")
	}
	c50 := New(Config{})
	if r := c50.offsetRecord("my-group", "t", 0, nil); r.Partition != 12 {
		t.Fatalf("my-group on 50 partitions: %d", r.Partition)
	}
}

func TestApplyOlderValueVersions(t *testing.T) {
	c := New(Config{NumPartitions: 1})
	key := (&kmsg.OffsetCommitKey{Version: 1, Group: "g", Topic: "t", Partition: 0}).AppendTo(nil)
	for v := int16(0); v <= 4; v++ {
		val := kmsg.NewOffsetCommitValue()
		val.Version, val.Offset, val.LeaderEpoch, val.Metadata, val.CommitTimestamp, val.ExpireTimestamp = v, 10+int64(v), 4, "m", 1000, 5000
		if err := c.Apply(t0, key, val.AppendTo(nil)); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		o := c.groups["g"].offsets["t"][0]
		wantEpoch, wantExpire := int32(-1), int64(-1)
		if v >= 3 {
			wantEpoch = 4
		}
		if v == 1 {
			wantExpire = 5000
		}
		if o.offset != 10+int64(v) || o.leaderEpoch != wantEpoch || o.expireTime != wantExpire || o.metadata != "m" {
			t.Fatalf("v%d: %+v", v, o)
		}
	}
	gkey := (&kmsg.GroupMetadataKey{Version: 2, Group: "g"}).AppendTo(nil)
	for v := int16(0); v <= 4; v++ {
		val := kmsg.NewGroupMetadataValue()
		p, l := "range", "m1"
		val.Version, val.ProtocolType, val.Generation, val.Protocol, val.Leader = v, "consumer", 5, &p, &l
		mem := kmsg.NewGroupMetadataValueMember()
		mem.MemberID, mem.SessionTimeoutMillis, mem.RebalanceTimeoutMillis, mem.Assignment = "m1", 10000, 20000, []byte("x")
		val.Members = []kmsg.GroupMetadataValueMember{mem}
		if err := c.Apply(t0, gkey, val.AppendTo(nil)); err != nil {
			t.Fatalf("group v%d: %v", v, err)
		}
		g := c.groups["g"]
		if g.state != Stable || g.generation != 5 || g.leader != "m1" || string(g.members["m1"].assignment) != "x" || !g.hasOffsets() {
			t.Fatalf("group v%d: %+v", v, g)
		}
	}
	// Tombstones: the group's metadata, then its offset.
	if err := c.Apply(t0, gkey, nil); err != nil || c.groups["g"] == nil || len(c.groups["g"].members) != 0 {
		t.Fatal("group tombstone must keep offsets and drop members")
	}
	if err := c.Apply(t0, key, nil); err != nil || c.groups["g"] != nil {
		t.Fatal("offset tombstone of the last offset of a group without metadata drops it")
	}
	// Errors.
	if err := c.Apply(t0, []byte{0}, nil); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("short key: %v", err)
	}
	if err := c.Apply(t0, []byte{0, 9, 0, 1, 'g'}, nil); !errors.Is(err, ErrUnknownRecord) {
		t.Fatalf("unknown key version: %v", err)
	}
	if err := c.Apply(t0, key, []byte{0, 3, 1}); !errors.Is(err, ErrCorruptRecord) || c.groups["g"] != nil {
		t.Fatalf("truncated value: %v", err)
	}
}

// TestReplayEquivalence runs a busy history and checks after each step
// that replaying every record emitted so far rebuilds the same persistent
// state (for groups at rest: Stable or Empty).
func TestReplayEquivalence(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := stableGroup(t, h, "g1", 3)
	h.checkReplay()
	for i, id := range ids {
		h.commit("g1", id, gen, "t", int32(i), int64(100*i))
	}
	h.commit("simple", "", -1, "x", 0, 5)
	h.commit("simple", "", -1, "x", 0, 6) // overwritten offset
	h.checkReplay()
	// A rebalance with a member fewer.
	h.leave("g1", kmsg.LeaveGroupRequestMember{MemberID: ids[2]})
	_, a := h.join("g1", ids[0], joinOpt{})
	h.join("g1", ids[1], joinOpt{})
	gen = h.joinResult(a).Generation
	_, f := h.sync("g1", ids[1], gen, "", nil)
	h.sync("g1", ids[0], gen, "", map[string]string{ids[0]: "x", ids[1]: "y"})
	h.syncResult(f)
	h.checkReplay()
	// Static members and a restart.
	_, s1 := h.joinNew("g2", joinOpt{instance: "s1"})
	h.tickUntilDone(rebalance, s1)
	r := h.joinResult(s1)
	h.sync("g2", r.MemberID, r.Generation, "s1", map[string]string{r.MemberID: "z"})
	h.join("g2", "", joinOpt{instance: "s1"})
	h.checkReplay()
	// Deletions.
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = "simple"
	req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "x", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	_, res := h.c.OffsetDelete(req)
	h.absorb(res)
	h.checkReplay()
	// Offsets whose group metadata says Empty with a generation.
	h.leave("g1", kmsg.LeaveGroupRequestMember{MemberID: ids[0]}, kmsg.LeaveGroupRequestMember{MemberID: ids[1]})
	h.checkReplay()
	h.advance(time.Second)
	// A member rejoins after a replay: loaded members have their session
	// clock started at load time.
	fresh := New(Config{NumPartitions: 1})
	if err := fresh.Load(h.now, 0, h.log); err != nil {
		t.Fatal(err)
	}
	g2 := fresh.groups["g2"]
	if g2 == nil || g2.state != Stable || len(g2.members) != 1 {
		t.Fatalf("g2 after replay: %+v", g2)
	}
	if d := fresh.NextDeadline(); d.After(h.now) {
		t.Fatal("a fresh coordinator should want a Tick at once")
	}
}

func FuzzApply(f *testing.F) {
	ok := (&kmsg.OffsetCommitKey{Version: 1, Group: "g", Topic: "t", Partition: 1}).AppendTo(nil)
	ov := (&kmsg.OffsetCommitValue{Version: 3, Offset: 5, Metadata: "m"}).AppendTo(nil)
	gk := (&kmsg.GroupMetadataKey{Version: 2, Group: "g"}).AppendTo(nil)
	p := "range"
	gv := (&kmsg.GroupMetadataValue{Version: 3, ProtocolType: "consumer", Protocol: &p, Members: []kmsg.GroupMetadataValueMember{{MemberID: "m"}}}).AppendTo(nil)
	f.Add(ok, ov, false)
	f.Add(ok, []byte(nil), true)
	f.Add(gk, gv, false)
	f.Add(gk, []byte(nil), true)
	f.Add([]byte{0, 4, 0, 0}, []byte{0, 4, 0, 0, 0}, false)
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool) {
		if tombstone {
			value = nil
		} else if value == nil {
			value = []byte{}
		}
		// A coordinator with a group and an offset, then the fuzzed record.
		c := New(Config{NumPartitions: 1})
		if err := c.Load(t0, 0, []Record{{Key: gk, Value: gv}, {Key: ok, Value: ov}}); err != nil {
			t.Fatal(err)
		}
		_ = c.Apply(t0, key, value)
		// Whatever was applied, the machine keeps working.
		c.Tick(t0.Add(time.Hour))
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{"g"}
		c.DescribeGroups(req)
		c.OffsetFetch(&kmsg.OffsetFetchRequest{Version: 8, Groups: []kmsg.OffsetFetchRequestGroup{{Group: "g"}}})
		c.ListGroups(kmsg.NewPtrListGroupsRequest())
	})
}
