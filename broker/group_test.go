package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/group"
	"github.com/stratalog/strata/segments"
	"github.com/stratalog/strata/topicconfig"
	"github.com/stratalog/strata/wire/wiretest"
)

// groupServe starts a broker on dir with a small __consumer_offsets and no
// initial rebalance delay, waits until the coordinator has loaded, and
// returns it with its address and a stop function (also run at cleanup).
func groupServe(t *testing.T, dir string) (*Broker, string, func()) {
	t.Helper()
	b, err := New(Config{
		NodeID:                      1,
		Listen:                      "127.0.0.1:0",
		DataDir:                     dir,
		SocketRequestMaxBytes:       100 << 20,
		ConnectionsMaxIdle:          10 * time.Minute,
		MaxInFlightPerConnection:    100,
		NumPartitions:               1,
		DefaultReplicationFactor:    1,
		MaxIncrementalFetchSessions: 1000,
		RetentionCheckInterval:      time.Hour,
		TopicDefaults:               topicconfig.Default(),
		Group:                       GroupConfig{OffsetsTopicNumPartitions: 5, InitialRebalanceDelay: -1},
		Logger:                      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.cfg.Advertise = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- b.Serve(ln) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		if err := b.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(stop)
	waitFor(t, "the group coordinator to load", func() bool { return !b.groups.loadInProgress() })
	return b, ln.Addr().String(), stop
}

// rawCall sends req at version on c and decodes the response.
func rawCall[R kmsg.Response](t *testing.T, c net.Conn, req kmsg.Request, version int16, corr int32) R {
	t.Helper()
	req.SetVersion(version)
	wiretest.Send(t, c, req, corr)
	resp := req.ResponseKind()
	resp.SetVersion(version)
	wiretest.ReadResponse(t, c, corr, resp)
	return resp.(R)
}

func TestFindCoordinatorVersions(t *testing.T) {
	b, addr, _ := groupServe(t, t.TempDir())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	host, port := b.advertisedHostPort()
	for v := int16(0); v <= 6; v++ {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey, req.CoordinatorKeys = "g", []string{"g", "h"}
		resp := rawCall[*kmsg.FindCoordinatorResponse](t, c, req, v, int32(v))
		if v < 4 {
			if resp.ErrorCode != 0 || resp.NodeID != 1 || resp.Host != host || resp.Port != port {
				t.Fatalf("v%d: %+v", v, resp)
			}
		} else {
			if len(resp.Coordinators) != 2 || resp.Coordinators[1].Key != "h" {
				t.Fatalf("v%d: %+v", v, resp.Coordinators)
			}
			for _, co := range resp.Coordinators {
				if co.ErrorCode != 0 || co.NodeID != 1 || co.Host != host || co.Port != port {
					t.Fatalf("v%d: %+v", v, co)
				}
			}
		}
		if v >= 1 {
			req.CoordinatorType = 1 // transactions: not supported
			resp := rawCall[*kmsg.FindCoordinatorResponse](t, c, req, v, 100+int32(v))
			code := resp.ErrorCode
			if v >= 4 {
				code = resp.Coordinators[0].ErrorCode
			}
			if code != kerr.TransactionalIDAuthorizationFailed.Code {
				t.Fatalf("v%d transaction key: %d", v, code)
			}
		}
	}
}

// TestGroupFlowThroughConn drives one member through JoinGroup (with the
// MEMBER_ID_REQUIRED round), SyncGroup, Heartbeat, OffsetCommit and
// OffsetFetch over a real connection, then restarts the broker and finds
// the committed offset loaded back from __consumer_offsets.
func TestGroupFlowThroughConn(t *testing.T) {
	dir := t.TempDir()
	b, addr, stop := groupServe(t, dir)
	if _, err := b.topics.create("t", 2, nil); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	md := kmsg.NewPtrMetadataRequest()
	md.Topics = admMetadataTopics(offsetsTopic)
	mresp := rawCall[*kmsg.MetadataResponse](t, c, md, 12, 1)
	if len(mresp.Topics) != 1 || !mresp.Topics[0].IsInternal || len(mresp.Topics[0].Partitions) != 5 {
		t.Fatalf("metadata of %s: %+v", offsetsTopic, mresp.Topics)
	}

	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "g", 10000, 10000
	join.ProtocolType = "consumer"
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"t"}
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	jresp := rawCall[*kmsg.JoinGroupResponse](t, c, join, 9, 2)
	if jresp.ErrorCode != kerr.MemberIDRequired.Code || jresp.MemberID == "" {
		t.Fatalf("first join: %+v", jresp)
	}
	join.MemberID = jresp.MemberID
	jresp = rawCall[*kmsg.JoinGroupResponse](t, c, join, 9, 3)
	if jresp.ErrorCode != 0 || jresp.Generation != 1 || jresp.LeaderID != join.MemberID || len(jresp.Members) != 1 {
		t.Fatalf("join: %+v", jresp)
	}
	if p := jresp.Protocol; p == nil || *p != "range" {
		t.Fatalf("protocol %v", p)
	}

	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "g", join.MemberID, 1
	sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: join.MemberID, MemberAssignment: []byte("assignment")}}
	sresp := rawCall[*kmsg.SyncGroupResponse](t, c, sync, 5, 4)
	if sresp.ErrorCode != 0 || string(sresp.MemberAssignment) != "assignment" {
		t.Fatalf("sync: %+v", sresp)
	}

	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g", join.MemberID, 1
	if h := rawCall[*kmsg.HeartbeatResponse](t, c, hb, 4, 5); h.ErrorCode != 0 {
		t.Fatalf("heartbeat: %d", h.ErrorCode)
	}

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.MemberID, commit.Generation = "g", join.MemberID, 1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{
		{Partition: 0, Offset: 42, LeaderEpoch: 0, Metadata: kmsg.StringPtr("m")},
		{Partition: 1, Offset: 7, LeaderEpoch: -1},
	}}}
	commit.Topics = append(commit.Topics, kmsg.OffsetCommitRequestTopic{Topic: "nope", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}})
	commit.Topics[0].Partitions = append(commit.Topics[0].Partitions, kmsg.OffsetCommitRequestTopicPartition{Partition: 9, Offset: 1})
	cresp := rawCall[*kmsg.OffsetCommitResponse](t, c, commit, 9, 6)
	if len(cresp.Topics) != 2 || len(cresp.Topics[0].Partitions) != 3 {
		t.Fatalf("commit: %+v", cresp)
	}
	for i, want := range []int16{0, 0, kerr.UnknownTopicOrPartition.Code} {
		if p := cresp.Topics[0].Partitions[i]; p.ErrorCode != want {
			t.Fatalf("commit partition %d: %+v, want error %d", p.Partition, p, want)
		}
	}
	if p := cresp.Topics[1].Partitions[0]; cresp.Topics[1].Topic != "nope" || p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("commit to an unknown topic: %+v", cresp.Topics[1])
	}

	fetch := func(c net.Conn, corr int32) {
		t.Helper()
		f := kmsg.NewPtrOffsetFetchRequest()
		f.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0, 1, 2}}}}}
		fr := rawCall[*kmsg.OffsetFetchResponse](t, c, f, 8, corr)
		ps := fr.Groups[0].Topics[0].Partitions
		if fr.Groups[0].ErrorCode != 0 || len(ps) != 3 || ps[0].Offset != 42 || *ps[0].Metadata != "m" || ps[1].Offset != 7 ||
			ps[2].Offset != -1 || ps[2].Metadata == nil || *ps[2].Metadata != "" {
			t.Fatalf("fetch v8: %+v", fr.Groups)
		}
		old := kmsg.NewPtrOffsetFetchRequest()
		old.Group = "g"
		old.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
		or := rawCall[*kmsg.OffsetFetchResponse](t, c, old, 1, corr+1)
		if or.Topics[0].Partitions[0].Offset != 42 {
			t.Fatalf("fetch v1: %+v", or.Topics)
		}
	}
	fetch(c, 7)

	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"g"}
	dresp := rawCall[*kmsg.DescribeGroupsResponse](t, c, dg, 5, 9)
	if g := dresp.Groups[0]; g.ErrorCode != 0 || g.State != "Stable" || len(g.Members) != 1 || g.Members[0].ClientHost != "/127.0.0.1" {
		t.Fatalf("describe: %+v", dresp.Groups)
	}
	lg := rawCall[*kmsg.ListGroupsResponse](t, c, kmsg.NewPtrListGroupsRequest(), 5, 10)
	if len(lg.Groups) != 1 || lg.Groups[0].Group != "g" || lg.Groups[0].GroupState != "Stable" {
		t.Fatalf("list: %+v", lg.Groups)
	}

	// The internal topic cannot be deleted or grown.
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TopicNames = []string{offsetsTopic}
	if d := rawCall[*kmsg.DeleteTopicsResponse](t, c, del, 5, 11); d.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("delete %s: %+v", offsetsTopic, d.Topics)
	}
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: offsetsTopic, Count: 10}}
	if r := rawCall[*kmsg.CreatePartitionsResponse](t, c, cp, 3, 12); r.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("create partitions of %s: %+v", offsetsTopic, r.Topics)
	}

	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = "g"
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: join.MemberID}}
	if l := rawCall[*kmsg.LeaveGroupResponse](t, c, leave, 5, 13); l.ErrorCode != 0 || l.Members[0].ErrorCode != 0 {
		t.Fatalf("leave: %+v", l)
	}
	c.Close()
	stop()

	// Restart on the same directory: the offsets come back from the log.
	_, addr, _ = groupServe(t, dir)
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fetch(c2, 20)
	dresp = rawCall[*kmsg.DescribeGroupsResponse](t, c2, dg, 5, 22)
	if g := dresp.Groups[0]; g.ErrorCode != 0 || g.State != "Empty" || g.ProtocolType != "consumer" {
		t.Fatalf("describe after restart: %+v", dresp.Groups)
	}
}

// TestGroupFlowKgo runs a franz-go consumer group against the broker in
// process: two members share a topic, commit, and a new member of the group
// resumes after the commits.
func TestGroupFlowKgo(t *testing.T) {
	b, addr, _ := groupServe(t, t.TempDir())
	if _, err := b.topics.create("kt", 4, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("kt"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const n = 400
	for i := range n {
		prod.Produce(ctx, &kgo.Record{Value: []byte{byte(i), byte(i >> 8)}, Partition: int32(i % 4)}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Only the coordinator writes the internal topic.
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: offsetsTopic, Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("produce to %s: %v, want INVALID_TOPIC_EXCEPTION", offsetsTopic, err)
	}

	consume := func(want int) int {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("kg"), kgo.ConsumeTopics("kt"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		got := 0
		for got < want {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("after %d records: %v", got, err)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Fatalf("%s/%d: %v", topic, p, err) })
			got += fs.NumRecords()
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
		}
		return got
	}
	if got := consume(n); got != n {
		t.Fatalf("consumed %d, want %d", got, n)
	}
	for i := range 40 {
		prod.Produce(ctx, &kgo.Record{Value: []byte{byte(i)}, Partition: int32(i % 4)}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := consume(40); got != 40 {
		t.Fatalf("second consumer got %d records, want only the 40 after the commits", got)
	}
}

func TestGroupBatchEncoding(t *testing.T) {
	recs := []group.Record{
		{Key: []byte("k1"), Value: []byte("v1")},
		{Key: []byte("k2")}, // tombstone
		{Key: []byte("k3"), Value: []byte{}},
	}
	batch := encodeGroupBatch(recs, time.UnixMilli(1234))
	hs, err := segments.ValidateBatches(batch, 1<<20, false)
	if err != nil || len(hs) != 1 || hs[0].RecordCount != 3 || hs[0].ProducerID != -1 {
		t.Fatalf("validate: %v %+v", err, hs)
	}
	check := func(b []byte) {
		t.Helper()
		var got []group.Record
		next, err := parseGroupBatches(b, kgo.DefaultDecompressor(), func(r group.Record) { got = append(got, r) })
		if err != nil || next != 3 || len(got) != 3 {
			t.Fatalf("parse: %v next %d, %d records", err, next, len(got))
		}
		for i, r := range got {
			if !bytes.Equal(r.Key, recs[i].Key) || !bytes.Equal(r.Value, recs[i].Value) || (r.Value == nil) != (recs[i].Value == nil) {
				t.Fatalf("record %d: %+v, want %+v", i, r, recs[i])
			}
		}
	}
	check(batch)

	// The same records gzip-compressed, as a Kafka broker may have written
	// them: attributes bit 1, records compressed, CRC recomputed.
	var zbuf bytes.Buffer
	zw := gzip.NewWriter(&zbuf)
	zw.Write(batch[segments.BatchHeaderSize:])
	zw.Close()
	z := append(append([]byte{}, batch[:segments.BatchHeaderSize]...), zbuf.Bytes()...)
	binary.BigEndian.PutUint32(z[8:], uint32(len(z)-12))
	binary.BigEndian.PutUint16(z[21:], 1)
	binary.BigEndian.PutUint32(z[17:], crc32.Checksum(z[21:], crc32c))
	check(z)

	// A flipped byte is corruption, not a panic or a wrong record.
	bad := append([]byte{}, batch...)
	bad[len(bad)-1] ^= 0xff
	if _, err := parseGroupBatches(bad, kgo.DefaultDecompressor(), func(group.Record) {}); err == nil {
		t.Fatal("corrupt batch parsed")
	}
}

// TestGroupAppendFailure: when the __consumer_offsets partition of a group
// cannot be appended to, the commit is answered NOT_COORDINATOR and the
// coordinator never serves the state that did not reach the log.
func TestGroupAppendFailure(t *testing.T) {
	b, addr, _ := groupServe(t, t.TempDir())
	if _, err := b.topics.create("t", 1, nil); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	commit := func(offset int64, corr int32) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = "g", -1
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset}}}}
		return rawCall[*kmsg.OffsetCommitResponse](t, c, req, 8, corr).Topics[0].Partitions[0].ErrorCode
	}
	if code := commit(5, 1); code != 0 {
		t.Fatalf("first commit: %d", code)
	}
	if err := b.groups.mu.parts[group.PartitionFor("g", 5)].Close(); err != nil {
		t.Fatal(err)
	}
	if code := commit(6, 2); code != kerr.NotCoordinator.Code {
		t.Fatalf("commit to a closed partition: %d, want NOT_COORDINATOR", code)
	}
	f := kmsg.NewPtrOffsetFetchRequest()
	f.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}}}
	fr := rawCall[*kmsg.OffsetFetchResponse](t, c, f, 8, 3)
	g := fr.Groups[0]
	if g.ErrorCode != kerr.NotCoordinator.Code && (g.ErrorCode != 0 || g.Topics[0].Partitions[0].Offset != 5) {
		t.Fatalf("fetch after the failed commit: %+v (want NOT_COORDINATOR or the durable offset 5)", g)
	}
}

// TestJoinWaitAbandoned: a member waiting in JoinGroup whose connection
// closes does not hold up or break the rebalance; its answer is dropped.
func TestJoinWaitAbandoned(t *testing.T) {
	_, addr, _ := groupServe(t, t.TempDir())
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, bc := dial(), dial()
	join := func(memberID string) *kmsg.JoinGroupRequest {
		j := kmsg.NewPtrJoinGroupRequest()
		j.Group, j.MemberID, j.SessionTimeoutMillis, j.RebalanceTimeoutMillis = "g", memberID, 10000, 10000
		j.ProtocolType = "consumer"
		j.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{}}}
		return j
	}
	ja := rawCall[*kmsg.JoinGroupResponse](t, a, join(""), 3, 1)
	if ja.ErrorCode != 0 || ja.Generation != 1 {
		t.Fatalf("first join: %+v", ja)
	}
	s := kmsg.NewPtrSyncGroupRequest()
	s.Group, s.MemberID, s.Generation = "g", ja.MemberID, 1
	if sr := rawCall[*kmsg.SyncGroupResponse](t, a, s, 3, 2); sr.ErrorCode != 0 {
		t.Fatalf("sync: %+v", sr)
	}
	// B joins: the group rebalances and B waits for A to rejoin. B goes away.
	jb := join("")
	jb.SetVersion(3)
	wiretest.Send(t, bc, jb, 1)
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g", ja.MemberID, 1
	waitFor(t, "the rebalance to start", func() bool {
		return rawCall[*kmsg.HeartbeatResponse](t, a, hb, 3, 3).ErrorCode == kerr.RebalanceInProgress.Code
	})
	bc.Close()
	ja = rawCall[*kmsg.JoinGroupResponse](t, a, join(ja.MemberID), 3, 4)
	if ja.ErrorCode != 0 || ja.Generation != 2 || len(ja.Members) != 2 {
		t.Fatalf("rejoin: %+v", ja)
	}
}
