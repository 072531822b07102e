package rpc

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/controller"
	"github.com/stratalog/strata/controller/metadata"
	"github.com/stratalog/strata/topicconfig"
)

// Handler tests: a one-voter quorum over raft's in-memory transport, its
// Driver running, and the handlers called directly.

const waitLimit = 10 * time.Second // a failing test's bound, not an expectation

type rig struct {
	t    *testing.T
	node *controller.Node
	d    *controller.Driver
	s    *Server
}

func newRig(t *testing.T, run bool) *rig {
	t.Helper()
	_, trans := raft.NewInmemTransport("node-1")
	log := slog.New(slog.DiscardHandler)
	node, err := controller.OpenNode(controller.NodeConfig{
		NodeID: 1, Dir: filepath.Join(t.TempDir(), "raft"), Voter: true,
		Voters: []controller.Voter{{ID: 1, Addr: "node-1"}}, Transport: trans, Logger: log,
		Tuning: controller.Tuning{HeartbeatTimeout: 100 * time.Millisecond, CommitTimeout: 5 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := controller.DefaultMachineConfig()
	cfg.Seed = 1
	// Far beyond waitLimit: a broker fenced within a test was fenced by
	// what the test did, not by its session running out.
	cfg.SessionTimeout = 10 * time.Minute
	d, err := controller.NewDriver(controller.DriverConfig{Node: node, Machine: cfg, Logger: log,
		Bootstrap: func(context.Context) ([]metadata.Record, error) {
			return []metadata.Record{&metadata.Bootstrap{ClusterID: "rpc-cluster"}}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if run {
		go func() { defer close(done); d.Run(ctx) }()
	} else {
		close(done)
	}
	t.Cleanup(func() { cancel(); <-done; node.Close() })
	r := &rig{t: t, node: node, d: d, s: New(d, cfg.TopicDefaults, log)}
	if run {
		deadline := time.Now().Add(waitLimit)
		for !d.Active() {
			if time.Now().After(deadline) {
				t.Fatal("the driver did not become active")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return r
}

func (r *rig) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	r.t.Cleanup(cancel)
	return ctx
}

// fakeConn is a connection the test closes.
type fakeConn struct {
	mu     sync.Mutex
	closed bool
	fns    []func()
}

func (c *fakeConn) OnClose(fn func()) {
	c.mu.Lock()
	if !c.closed {
		c.fns = append(c.fns, fn)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	fn()
}

func (c *fakeConn) close() {
	c.mu.Lock()
	c.closed = true
	fns := c.fns
	c.fns = nil
	c.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// register registers broker id on c and heartbeats it unfenced.
func (r *rig) register(c conn, id int32) int64 {
	r.t.Helper()
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.SetVersion(4)
	req.BrokerID, req.ClusterID = id, "rpc-cluster"
	req.IncarnationID = [16]byte{0: 0x11, 15: byte(id)}
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port = "PLAINTEXT", "127.0.0.1", uint16(9090+id)
	req.Listeners = append(req.Listeners, l)
	resp := r.s.brokerRegistration(r.ctx(), c, req).(*kmsg.BrokerRegistrationResponse)
	if resp.ErrorCode != 0 || resp.BrokerEpoch <= 0 {
		r.t.Fatalf("register %d: %v, epoch %d", id, kerr.ErrorForCode(resp.ErrorCode), resp.BrokerEpoch)
	}
	hb := r.heartbeat(c, id, resp.BrokerEpoch, false)
	if hb.ErrorCode != 0 || hb.IsFenced || !hb.IsCaughtUp {
		r.t.Fatalf("heartbeat %d: %v fenced %v caught up %v", id, kerr.ErrorForCode(hb.ErrorCode), hb.IsFenced, hb.IsCaughtUp)
	}
	return resp.BrokerEpoch
}

func (r *rig) heartbeat(c conn, id int32, epoch int64, shutdown bool) *kmsg.BrokerHeartbeatResponse {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.SetVersion(2)
	req.BrokerID, req.BrokerEpoch, req.CurrentMetadataOffset, req.WantShutdown = id, epoch, r.node.Image().Offset(), shutdown
	return r.s.brokerHeartbeat(r.ctx(), c, req).(*kmsg.BrokerHeartbeatResponse)
}

func (r *rig) createTopics(version int16, topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsResponse {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(version)
	req.Topics = topics
	return r.s.createTopics(r.ctx(), nil, req).(*kmsg.CreateTopicsResponse)
}

func newTopicReq(name string, partitions int32, configs ...string) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, -1
	for i := 0; i+1 < len(configs); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = configs[i], &configs[i+1]
		rt.Configs = append(rt.Configs, c)
	}
	return rt
}

func code(c int16) string {
	if c == 0 {
		return "OK"
	}
	return kerr.ErrorForCode(c).Error()
}

// TestBrokerLifecycle: registration and heartbeats through the handlers;
// an unknown broker's heartbeat is STALE_BROKER_EPOCH; a broker whose
// last controller connection closes is fenced at once, and its
// partitions lose their leader; a broker that registered again on a new
// connection is not fenced when its old connection closes.
func TestBrokerLifecycle(t *testing.T) {
	t.Parallel()
	r := newRig(t, true)
	c1, c2a, c2b := &fakeConn{}, &fakeConn{}, &fakeConn{}
	r.register(c1, 1)
	r.register(c2a, 2)
	if hb := r.heartbeat(&fakeConn{}, 7, 3, false); hb.ErrorCode != kerr.StaleBrokerEpoch.Code {
		t.Errorf("heartbeat of unregistered broker 7: %s, want STALE_BROKER_EPOCH", code(hb.ErrorCode))
	}
	resp := r.createTopics(7, newTopicReq("t", 4))
	if resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %s", code(resp.Topics[0].ErrorCode))
	}

	// Broker 2 (the same process) registers again on a second connection,
	// as after a request timeout: the first one's close does not fence it.
	e2 := r.register(c2b, 2)
	c2a.close()
	if b := r.node.Image().Broker(2); b.Fenced || b.Epoch != e2 {
		t.Errorf("broker 2 after its old connection closed: fenced %v epoch %d (want unfenced at %d)", b.Fenced, b.Epoch, e2)
	}

	c1.close()
	deadline := time.Now().Add(waitLimit)
	for !r.node.Image().Broker(1).Fenced {
		if time.Now().After(deadline) {
			t.Fatal("broker 1 not fenced after its connection closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i, p := range r.node.Image().Topic("t").Partitions {
		if p.Leader == 1 {
			t.Errorf("partition %d still led by broker 1 after its connection closed", i)
		}
	}
}

// TestCreateTopicsAnswers: the answer's fields by version, and the
// request-form errors the handler finds itself.
func TestCreateTopicsAnswers(t *testing.T) {
	t.Parallel()
	r := newRig(t, true)
	r.register(&fakeConn{}, 1)
	r.register(&fakeConn{}, 2)

	resp := r.createTopics(7, newTopicReq("a", 3, "retention.ms", "1000"))
	st := resp.Topics[0]
	if st.ErrorCode != 0 || st.NumPartitions != 3 || st.ReplicationFactor != 1 || st.TopicID == [16]byte{} {
		t.Fatalf("create a: %s partitions %d rf %d id %x", code(st.ErrorCode), st.NumPartitions, st.ReplicationFactor, st.TopicID)
	}
	if got := r.node.Image().Topic("a"); got == nil || metadata.UUID(st.TopicID) != got.ID || got.Configs["retention.ms"] != "1000" {
		t.Errorf("image after create: %+v", got)
	}
	var sawOverride bool
	for _, c := range st.Configs {
		if c.Name == "retention.ms" {
			sawOverride = *c.Value == "1000" && c.Source == int8(kmsg.ConfigSourceDynamicTopicConfig)
		}
	}
	if !sawOverride || len(st.Configs) != len(topicconfig.Describe(topicconfig.Default(), nil, topicconfig.Default())) {
		t.Errorf("v7 configs: %d entries, override listed as dynamic: %v", len(st.Configs), sawOverride)
	}

	nullCfg := newTopicReq("nullcfg", 1)
	nc := kmsg.NewCreateTopicsRequestTopicConfig()
	nc.Name = "retention.ms"
	nullCfg.Configs = append(nullCfg.Configs, nc)
	gap := newTopicReq("gap", -1)
	gap.ReplicationFactor = -1
	for _, p := range []int32{0, 2} {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = p, []int32{1}
		gap.ReplicaAssignment = append(gap.ReplicaAssignment, a)
	}
	resp = r.createTopics(4, newTopicReq("dup", 1), newTopicReq("dup", 2), nullCfg, gap, newTopicReq("a", 1),
		newTopicReq("bad/name", 1), newTopicReq("many", 1, "retention.ms", "1", "retention.ms", "2"))
	want := []int16{kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, kerr.InvalidConfig.Code, kerr.InvalidReplicaAssignment.Code,
		kerr.TopicAlreadyExists.Code, kerr.InvalidTopicException.Code, kerr.InvalidRequest.Code}
	for i, st := range resp.Topics {
		if st.ErrorCode != want[i] || st.ErrorMessage == nil {
			t.Errorf("topic %d (%s): %s, message %v; want %s with a message", i, st.Topic, code(st.ErrorCode), st.ErrorMessage != nil, code(want[i]))
		}
	}
	if resp = r.createTopics(0, newTopicReq("a", 1)); resp.Topics[0].ErrorMessage != nil {
		t.Errorf("v0 answer carries an error message")
	}
}

// TestNotController: a node whose Driver is not active answers
// NOT_CONTROLLER to every request.
func TestNotController(t *testing.T) {
	t.Parallel()
	r := newRig(t, false)
	if resp := r.createTopics(7, newTopicReq("a", 1)); resp.Topics[0].ErrorCode != kerr.NotController.Code {
		t.Errorf("CreateTopics: %s", code(resp.Topics[0].ErrorCode))
	}
	if hb := r.heartbeat(&fakeConn{}, 1, 1, false); hb.ErrorCode != kerr.NotController.Code {
		t.Errorf("BrokerHeartbeat: %s", code(hb.ErrorCode))
	}
	req := kmsg.NewPtrElectLeadersRequest()
	req.SetVersion(2)
	if resp := r.s.electLeaders(r.ctx(), nil, req).(*kmsg.ElectLeadersResponse); resp.ErrorCode != kerr.NotController.Code {
		t.Errorf("ElectLeaders: %s", code(resp.ErrorCode))
	}
}

// TestTopicAdmin: DeleteTopics by name and by id, CreatePartitions,
// AlterConfigs (replace) and IncrementalAlterConfigs, broker resources,
// unclean elections.
func TestTopicAdmin(t *testing.T) {
	t.Parallel()
	r := newRig(t, true)
	r.register(&fakeConn{}, 1)
	resp := r.createTopics(7, newTopicReq("a", 1, "retention.ms", "1000"), newTopicReq("b", 1))
	idB := resp.Topics[1].TopicID

	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.SetVersion(3)
	for _, n := range []int32{3, 0} {
		t := kmsg.NewCreatePartitionsRequestTopic()
		t.Topic, t.Count = "a", n
		if n == 0 {
			t.Topic = "nope"
		}
		cp.Topics = append(cp.Topics, t)
	}
	cpr := r.s.createPartitions(r.ctx(), nil, cp).(*kmsg.CreatePartitionsResponse)
	if cpr.Topics[0].ErrorCode != 0 || cpr.Topics[1].ErrorCode != kerr.UnknownTopicOrPartition.Code || len(r.node.Image().Topic("a").Partitions) != 3 {
		t.Errorf("create partitions: %s, %s; a has %d partitions", code(cpr.Topics[0].ErrorCode), code(cpr.Topics[1].ErrorCode), len(r.node.Image().Topic("a").Partitions))
	}

	ac := kmsg.NewPtrAlterConfigsRequest()
	ac.SetVersion(2)
	for _, name := range []string{"a", "1"} {
		res := kmsg.NewAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, name
		if name == "1" {
			res.ResourceType = kmsg.ConfigResourceTypeBroker
		}
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		v := "compact"
		c.Name, c.Value = "cleanup.policy", &v
		res.Configs = append(res.Configs, c)
		ac.Resources = append(ac.Resources, res)
	}
	acr := r.s.alterConfigs(r.ctx(), nil, ac).(*kmsg.AlterConfigsResponse)
	if acr.Resources[0].ErrorCode != 0 || acr.Resources[1].ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("alter configs: %s, broker %s", code(acr.Resources[0].ErrorCode), code(acr.Resources[1].ErrorCode))
	}
	if got := r.node.Image().Topic("a").Configs; got["cleanup.policy"] != "compact" || got["retention.ms"] != "" {
		t.Errorf("after AlterConfigs (a replace): %v", got)
	}

	iac := kmsg.NewPtrIncrementalAlterConfigsRequest()
	iac.SetVersion(1)
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "a"
	for _, op := range []struct {
		op kmsg.IncrementalAlterConfigOp
		k  string
		v  *string
	}{{kmsg.IncrementalAlterConfigOpAppend, "cleanup.policy", ptr("delete")}, {kmsg.IncrementalAlterConfigOpSet, "retention.ms", ptr("5000")}} {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = op.k, op.op, op.v
		res.Configs = append(res.Configs, c)
	}
	iac.Resources = append(iac.Resources, res)
	iacr := r.s.incrementalAlterConfigs(r.ctx(), nil, iac).(*kmsg.IncrementalAlterConfigsResponse)
	if got := r.node.Image().Topic("a").Configs; iacr.Resources[0].ErrorCode != 0 || got["cleanup.policy"] != "compact,delete" || got["retention.ms"] != "5000" {
		t.Errorf("incremental alter: %s, configs %v", code(iacr.Resources[0].ErrorCode), got)
	}

	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.SetVersion(6)
	byID := kmsg.NewDeleteTopicsRequestTopic()
	byID.TopicID = idB
	byName := kmsg.NewDeleteTopicsRequestTopic()
	byName.Topic = ptr("a")
	dt.Topics = append(dt.Topics, byID, byName)
	dtr := r.s.deleteTopics(r.ctx(), nil, dt).(*kmsg.DeleteTopicsResponse)
	if dtr.Topics[0].ErrorCode != 0 || dtr.Topics[0].Topic == nil || *dtr.Topics[0].Topic != "b" || dtr.Topics[1].ErrorCode != 0 || len(r.node.Image().Topics()) != 0 {
		t.Errorf("delete topics: %+v; %d topics left", dtr.Topics, len(r.node.Image().Topics()))
	}

	el := kmsg.NewPtrElectLeadersRequest()
	el.SetVersion(2)
	el.ElectionType = 1
	if resp := r.s.electLeaders(r.ctx(), nil, el).(*kmsg.ElectLeadersResponse); resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("unclean election: %s, want INVALID_REQUEST", code(resp.ErrorCode))
	}
}

func ptr(s string) *string { return &s }

// TestErrorForRoundTrip: every controller sentinel's code decodes back to
// an error that wraps the sentinel, keeps the message and maps to the
// same code; a code without a sentinel keeps its code.
func TestErrorForRoundTrip(t *testing.T) {
	for _, sc := range sentinelCodes {
		msg := "because " + sc.err.Error()
		err := ErrorFor(sc.code.Code, &msg)
		if errorCode(err) != sc.code.Code || err.Error() != msg {
			t.Errorf("%v: decoded %v, code %d", sc.err, err, errorCode(err))
		}
		if sc.code != kerr.NotController && !errors.Is(err, sc.err) {
			t.Errorf("%v: decoded error does not wrap it", sc.err)
		}
	}
	if err := ErrorFor(kerr.RequestTimedOut.Code, nil); errorCode(err) != kerr.RequestTimedOut.Code {
		t.Errorf("REQUEST_TIMED_OUT: %v", err)
	}
	if ErrorFor(0, nil) != nil {
		t.Error("code 0 is an error")
	}
}
