package controller

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratalog/strata/controller/metadata"
)

// rig drives a Machine the way the driver will: every batch is applied to
// the image (a refusal fails the test) and handed back with Applied.
type rig struct {
	t   testing.TB
	cfg MachineConfig
	m   *Machine
	im  *metadata.Image
	now time.Time
	ids byte // topic ids handed out
}

var rigStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func rigConfig() MachineConfig {
	cfg := DefaultMachineConfig()
	cfg.Seed = 1
	return cfg
}

// newRig bootstraps an image and starts a Machine on it; tweak, if not
// nil, adjusts the config.
func newRig(t testing.TB, tweak func(*MachineConfig)) *rig {
	t.Helper()
	r := &rig{t: t, cfg: rigConfig(), now: rigStart}
	r.cfg.NewTopicID = func() metadata.UUID {
		r.ids++
		return metadata.UUID{0: 0xaa, 15: r.ids}
	}
	if tweak != nil {
		tweak(&r.cfg)
	}
	im, err := metadata.Empty().Apply(1, []metadata.Record{&metadata.Bootstrap{ClusterID: "rig-cluster"}})
	if err != nil {
		t.Fatal(err)
	}
	r.im = im
	r.restart()
	return r
}

// restart replaces the Machine, as a controller failover does.
func (r *rig) restart() {
	r.t.Helper()
	m, err := NewMachine(r.cfg, r.im, r.now)
	if err != nil {
		r.t.Fatal(err)
	}
	r.m = m
}

// apply commits recs (if any) at the next offset.
func (r *rig) apply(recs []metadata.Record) {
	r.t.Helper()
	if len(recs) == 0 {
		if r.m.Pending() {
			r.t.Fatal("no records, yet the machine waits for a batch")
		}
		return
	}
	if !r.m.Pending() {
		r.t.Fatal("records returned, yet the machine is not waiting for them")
	}
	im, err := r.im.Apply(r.im.Offset()+1, recs)
	if err != nil {
		r.t.Fatalf("the machine wrote a batch the image refuses: %v\n%s", err, describe(recs))
	}
	r.im = im
	r.m.Applied(im)
}

func describe(recs []metadata.Record) string {
	data, err := metadata.EncodeBatch(recs)
	if err != nil {
		return err.Error()
	}
	return string(data)
}

func incarnation(id metadata.BrokerID, n int) metadata.UUID {
	return metadata.UUID{0: 0x11, 1: byte(id), 2: byte(n), 15: 1}
}

func endpoints(id metadata.BrokerID) []metadata.Endpoint {
	return []metadata.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9090 + int32(id%1000)}}
}

// register registers incarnation n of broker id and returns its epoch.
func (r *rig) register(id metadata.BrokerID, n int, rack string) int64 {
	r.t.Helper()
	recs, res, err := r.m.RegisterBroker(r.now, BrokerRegistration{ID: id, Incarnation: incarnation(id, n), ClusterID: "rig-cluster", Listeners: endpoints(id), Rack: rack})
	if err != nil {
		r.t.Fatalf("register broker %d: %v", id, err)
	}
	if res.Epoch != EpochOfBatch || len(recs) == 0 {
		r.t.Fatalf("register broker %d: epoch %d, %d records", id, res.Epoch, len(recs))
	}
	r.apply(recs)
	return r.im.Broker(id).Epoch
}

// beat heartbeats broker id as caught up with the image.
func (r *rig) beat(id metadata.BrokerID, mod func(*BrokerHeartbeat)) HeartbeatResult {
	r.t.Helper()
	req := BrokerHeartbeat{ID: id, Epoch: r.im.Broker(id).Epoch, MetadataOffset: r.im.Offset()}
	if mod != nil {
		mod(&req)
	}
	recs, res, err := r.m.Heartbeat(r.now, req)
	if err != nil {
		r.t.Fatalf("heartbeat of broker %d: %v", id, err)
	}
	r.apply(recs)
	return res
}

// live registers broker id (incarnation 1) and unfences it.
func (r *rig) live(id metadata.BrokerID, rack string) {
	r.t.Helper()
	r.register(id, 1, rack)
	if res := r.beat(id, nil); res.Fenced {
		r.t.Fatalf("broker %d still fenced after a caught-up heartbeat", id)
	}
}

// create creates topic name and returns it.
func (r *rig) create(nt NewTopic) *metadata.Topic {
	r.t.Helper()
	recs, res, err := r.m.CreateTopics(r.now, []NewTopic{nt})
	if err != nil || res[0].Err != nil {
		r.t.Fatalf("create %q: %v %v", nt.Name, err, res[0].Err)
	}
	r.apply(recs)
	return r.im.Topic(nt.Name)
}

func (r *rig) part(topic string, i int32) *metadata.Partition {
	r.t.Helper()
	p := r.im.Topic(topic).Partition(i)
	if p == nil {
		r.t.Fatalf("no partition %s-%d", topic, i)
	}
	return p
}

func wantPart(t testing.TB, what string, p *metadata.Partition, leader metadata.BrokerID, isr ...metadata.BrokerID) {
	t.Helper()
	if p.Leader != leader || !slices.Equal(p.ISR, isr) {
		t.Fatalf("%s: leader %d, ISR %v; want leader %d, ISR %v", what, p.Leader, p.ISR, leader, isr)
	}
}

func TestMachineRegisterBroker(t *testing.T) {
	r := newRig(t, nil)
	recs, res, err := r.m.RegisterBroker(r.now, BrokerRegistration{ID: 1, Incarnation: incarnation(1, 1), Listeners: endpoints(1), Rack: "a"})
	if err != nil || res.Epoch != EpochOfBatch || len(recs) != 1 {
		t.Fatalf("register: %v, epoch %d, records %v", err, res.Epoch, recs)
	}
	r.apply(recs)
	b := r.im.Broker(1)
	if b == nil || !b.Fenced || b.Epoch != r.im.Offset() || b.Rack != "a" {
		t.Fatalf("after registering: %+v at offset %d", b, r.im.Offset())
	}
	// A retry of the same incarnation: the same epoch, nothing written.
	recs, res, err = r.m.RegisterBroker(r.now, BrokerRegistration{ID: 1, Incarnation: incarnation(1, 1), Listeners: endpoints(1)})
	if err != nil || len(recs) != 0 || res.Epoch != b.Epoch {
		t.Fatalf("retried registration: %v, %d records, epoch %d (want %d)", err, len(recs), res.Epoch, b.Epoch)
	}

	for _, tc := range []struct {
		name string
		reg  BrokerRegistration
		want error
	}{
		{"negative id", BrokerRegistration{ID: -1, Incarnation: incarnation(9, 1), Listeners: endpoints(9)}, ErrInvalidRegistration},
		{"no incarnation", BrokerRegistration{ID: 9, Listeners: endpoints(9)}, ErrInvalidRegistration},
		{"no listeners", BrokerRegistration{ID: 9, Incarnation: incarnation(9, 1)}, ErrInvalidRegistration},
		{"listener twice", BrokerRegistration{ID: 9, Incarnation: incarnation(9, 1), Listeners: append(endpoints(9), endpoints(8)...)}, ErrInvalidRegistration},
		{"bad port", BrokerRegistration{ID: 9, Incarnation: incarnation(9, 1), Listeners: []metadata.Endpoint{{Name: "P", Host: "h", Port: 70000}}}, ErrInvalidRegistration},
		{"other cluster", BrokerRegistration{ID: 9, Incarnation: incarnation(9, 1), ClusterID: "other", Listeners: endpoints(9)}, ErrInconsistentClusterID},
	} {
		recs, _, err := r.m.RegisterBroker(r.now, tc.reg)
		if !errors.Is(err, tc.want) || len(recs) != 0 {
			t.Errorf("%s: %v with %d records, want %v", tc.name, err, len(recs), tc.want)
		}
	}
}

// TestMachineReRegister: a new incarnation of a live broker is refused
// while its session is valid; once the session expires (or the broker is
// fenced), the new incarnation replaces it, fenced, and its leaderships go
// in the same batch.
func TestMachineReRegister(t *testing.T) {
	r := newRig(t, nil)
	r.live(1, "")
	r.live(2, "")
	r.create(NewTopic{Name: "solo", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{1}}})
	r.create(NewTopic{Name: "pair", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{1, 2}}})
	reg := BrokerRegistration{ID: 1, Incarnation: incarnation(1, 2), Listeners: endpoints(1)}
	r.now = r.now.Add(r.cfg.SessionTimeout - time.Millisecond)
	if _, _, err := r.m.RegisterBroker(r.now, reg); !errors.Is(err, ErrDuplicateBrokerRegistration) {
		t.Fatalf("a new incarnation within the session: %v", err)
	}
	r.beat(2, nil)
	r.now = r.now.Add(time.Millisecond)
	recs, _, err := r.m.RegisterBroker(r.now, reg)
	if err != nil {
		t.Fatalf("a new incarnation after the session: %v", err)
	}
	r.apply(recs)
	if b := r.im.Broker(1); !b.Fenced || b.Incarnation != incarnation(1, 2) {
		t.Fatalf("the new incarnation: %+v", b)
	}
	wantPart(t, "pair after broker 1 re-registered", r.part("pair", 0), 2, 2)
	wantPart(t, "broker 1's single-replica partition", r.part("solo", 0), metadata.NoLeader, 1)
	// Caught up, the new incarnation is unfenced and leads its partition again.
	if res := r.beat(1, nil); res.Fenced || !res.CaughtUp {
		t.Fatalf("heartbeat of the new incarnation: %+v", res)
	}
	wantPart(t, "broker 1's single-replica partition once back", r.part("solo", 0), 1, 1)
	wantPart(t, "pair once broker 1 is back (not in the ISR: no AlterPartition yet)", r.part("pair", 0), 2, 2)
}

// TestMachineReRegisterInProcess: with InProcess, a new incarnation
// replaces a live one at once (the previous process is gone), fenced, its
// single-replica leaderships given up in the same batch.
func TestMachineReRegisterInProcess(t *testing.T) {
	r := newRig(t, func(c *MachineConfig) { c.InProcess = true })
	r.live(1, "")
	r.create(NewTopic{Name: "solo", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{1}}})
	recs, _, err := r.m.RegisterBroker(r.now, BrokerRegistration{ID: 1, Incarnation: incarnation(1, 2), Listeners: endpoints(1)})
	if err != nil {
		t.Fatalf("a new incarnation within the session: %v", err)
	}
	r.apply(recs)
	if b := r.im.Broker(1); !b.Fenced || b.Incarnation != incarnation(1, 2) {
		t.Fatalf("the new incarnation: %+v", b)
	}
	wantPart(t, "the replaced incarnation's partition", r.part("solo", 0), metadata.NoLeader, 1)
}

func TestMachineHeartbeat(t *testing.T) {
	r := newRig(t, nil)
	epoch := r.register(1, 1, "")
	for _, tc := range []struct {
		name string
		req  BrokerHeartbeat
		want HeartbeatResult
		err  error
	}{
		{"not caught up", BrokerHeartbeat{ID: 1, Epoch: epoch, MetadataOffset: epoch - 1}, HeartbeatResult{Fenced: true}, nil},
		{"wants to stay fenced", BrokerHeartbeat{ID: 1, Epoch: epoch, MetadataOffset: epoch, WantFence: true}, HeartbeatResult{CaughtUp: true, Fenced: true}, nil},
		{"fenced and stopping", BrokerHeartbeat{ID: 1, Epoch: epoch, WantShutdown: true}, HeartbeatResult{Fenced: true, ShouldShutdown: true}, nil},
		{"stale epoch", BrokerHeartbeat{ID: 1, Epoch: epoch - 1, MetadataOffset: epoch}, HeartbeatResult{}, ErrStaleBrokerEpoch},
		{"unknown broker", BrokerHeartbeat{ID: 7, Epoch: epoch, MetadataOffset: epoch}, HeartbeatResult{}, ErrUnknownBroker},
		{"caught up", BrokerHeartbeat{ID: 1, Epoch: epoch, MetadataOffset: epoch}, HeartbeatResult{CaughtUp: true}, nil},
		{"unfenced, nothing asked", BrokerHeartbeat{ID: 1, Epoch: epoch, MetadataOffset: epoch + 1}, HeartbeatResult{CaughtUp: true}, nil},
		{"asks to be fenced", BrokerHeartbeat{ID: 1, Epoch: epoch, MetadataOffset: epoch + 1, WantFence: true}, HeartbeatResult{CaughtUp: true, Fenced: true}, nil},
	} {
		recs, res, err := r.m.Heartbeat(r.now, tc.req)
		if !errors.Is(err, tc.err) || res != tc.want {
			t.Fatalf("%s: %+v, %v; want %+v, %v", tc.name, res, err, tc.want, tc.err)
		}
		r.apply(recs)
		if b := r.im.Broker(1); b.Fenced != tc.want.Fenced && tc.err == nil {
			t.Fatalf("%s: the image has broker 1 fenced=%v", tc.name, b.Fenced)
		}
	}
}

// TestMachineFencing: fencing moves leadership down the ISR in replica
// order, shrinks the ISR but never empties it, and bumps the leader epoch
// once per change; unfencing brings back only the last ISR member.
func TestMachineFencing(t *testing.T) {
	r := newRig(t, nil)
	for id := metadata.BrokerID(1); id <= 3; id++ {
		r.live(id, "")
	}
	r.create(NewTopic{Name: "t", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{1, 2, 3}}})
	wantPart(t, "created", r.part("t", 0), 1, 1, 2, 3)
	gone := func(id metadata.BrokerID) {
		recs, err := r.m.BrokerGone(r.now, id, r.im.Broker(id).Epoch)
		if err != nil {
			t.Fatalf("broker %d gone: %v", id, err)
		}
		r.apply(recs)
	}
	gone(1)
	wantPart(t, "broker 1 gone", r.part("t", 0), 2, 2, 3)
	if e := r.part("t", 0).LeaderEpoch; e != 1 {
		t.Errorf("leader epoch %d after one change, want 1", e)
	}
	gone(2)
	wantPart(t, "broker 2 gone", r.part("t", 0), 3, 3)
	gone(3)
	wantPart(t, "broker 3 gone", r.part("t", 0), metadata.NoLeader, 3)
	if e := r.part("t", 0).LeaderEpoch; e != 3 {
		t.Errorf("leader epoch %d after three changes, want 3", e)
	}
	// Gone twice: nothing more to do. A stale epoch is refused.
	if recs, err := r.m.BrokerGone(r.now, 3, r.im.Broker(3).Epoch); err != nil || len(recs) != 0 {
		t.Errorf("a fenced broker gone again: %v, %d records", err, len(recs))
	}
	if _, err := r.m.BrokerGone(r.now, 3, 1); !errors.Is(err, ErrStaleBrokerEpoch) {
		t.Errorf("gone with a stale epoch: %v", err)
	}
	// Broker 1 returns: it is not in the ISR, so the partition waits (no
	// unclean election). Broker 3 returns: it leads again.
	r.register(1, 2, "")
	r.beat(1, nil)
	wantPart(t, "broker 1 back", r.part("t", 0), metadata.NoLeader, 3)
	r.register(3, 2, "")
	r.beat(3, nil)
	wantPart(t, "broker 3 back", r.part("t", 0), 3, 3)
}

// TestMachineTick: sessions expire after SessionTimeout without a
// heartbeat; a new Machine gives every broker a full session.
func TestMachineTick(t *testing.T) {
	r := newRig(t, func(c *MachineConfig) { c.AutoLeaderRebalance = false })
	for id := metadata.BrokerID(1); id <= 3; id++ {
		r.live(id, "")
	}
	r.create(NewTopic{Name: "t", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{1, 2}, {2, 3}}})
	r.create(NewTopic{Name: "u", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{3}}})
	start := r.now
	r.now = start.Add(4 * time.Second)
	r.beat(2, nil)
	if got, want := r.m.NextTick(), start.Add(r.cfg.SessionTimeout); !got.Equal(want) {
		t.Fatalf("next tick %v, want %v", got, want)
	}
	r.now = start.Add(r.cfg.SessionTimeout - time.Nanosecond)
	if recs, res, err := r.m.Tick(r.now); err != nil || len(recs) != 0 || len(res.Fenced) != 0 {
		t.Fatalf("tick before any session expired: %v, %v, %d records", err, res, len(recs))
	}
	r.now = start.Add(r.cfg.SessionTimeout)
	recs, res, err := r.m.Tick(r.now)
	if err != nil || !slices.Equal(res.Fenced, []metadata.BrokerID{1, 3}) {
		t.Fatalf("tick: %v, fenced %v", err, res.Fenced)
	}
	r.apply(recs)
	wantPart(t, "t-0", r.part("t", 0), 2, 2)
	wantPart(t, "t-1", r.part("t", 1), 2, 2)
	wantPart(t, "u-0", r.part("u", 0), metadata.NoLeader, 3)

	// Failover: the new Machine starts every session afresh.
	r.now = r.now.Add(time.Hour)
	r.restart()
	r.now = r.now.Add(r.cfg.SessionTimeout - time.Nanosecond)
	if recs, res, _ := r.m.Tick(r.now); len(recs) != 0 {
		t.Fatalf("a new machine fenced %v before a full session", res.Fenced)
	}
	r.now = r.now.Add(time.Nanosecond)
	recs, res, _ = r.m.Tick(r.now)
	if !slices.Equal(res.Fenced, []metadata.BrokerID{2}) {
		t.Fatalf("after a full session the new machine fenced %v, want [2]", res.Fenced)
	}
	r.apply(recs)
	wantPart(t, "t-0 with every broker fenced", r.part("t", 0), metadata.NoLeader, 2)
}

// TestMachineTickFencesTogether: two ISR members expiring in one Tick are
// handled in id order, as two fencings: the later one stays as the last
// member.
func TestMachineTickFencesTogether(t *testing.T) {
	r := newRig(t, nil)
	r.live(1, "")
	r.live(2, "")
	r.create(NewTopic{Name: "t", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{1, 2}}})
	r.now = r.now.Add(r.cfg.SessionTimeout)
	recs, res, _ := r.m.Tick(r.now)
	if len(res.Fenced) != 2 {
		t.Fatalf("fenced %v", res.Fenced)
	}
	r.apply(recs)
	wantPart(t, "both fenced", r.part("t", 0), metadata.NoLeader, 2)
}

// TestMachineControlledShutdown follows a SIGTERM: leadership moves away
// at once (single-replica partitions go leaderless), the broker leaves the
// ISRs, is no placement target, and may stop once every active broker has
// seen the moves.
func TestMachineControlledShutdown(t *testing.T) {
	r := newRig(t, nil)
	for id := metadata.BrokerID(1); id <= 3; id++ {
		r.live(id, "")
	}
	r.create(NewTopic{Name: "t", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{1, 2}, {2, 1}}})
	r.create(NewTopic{Name: "u", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{1}, {3}}})
	res := r.beat(1, func(h *BrokerHeartbeat) { h.WantShutdown = true })
	if !res.InControlledShutdown || res.ShouldShutdown || res.Fenced {
		t.Fatalf("first heartbeat of the shutdown: %+v", res)
	}
	shutdownAt := r.im.Offset()
	if b := r.im.Broker(1); !b.ShuttingDown || b.Fenced {
		t.Fatalf("broker 1: %+v", b)
	}
	wantPart(t, "t-0", r.part("t", 0), 2, 2)
	wantPart(t, "t-1", r.part("t", 1), 2, 2)
	wantPart(t, "u-0", r.part("u", 0), metadata.NoLeader, 1)
	wantPart(t, "u-1", r.part("u", 1), 3, 3)

	// No placement on a broker shutting down.
	_, cres, _ := r.m.CreateTopics(r.now, []NewTopic{{Name: "three", NumPartitions: 1, ReplicationFactor: 3}, {Name: "two", NumPartitions: 4, ReplicationFactor: 2, ValidateOnly: true}})
	if !errors.Is(cres[0].Err, ErrInvalidReplicationFactor) || !strings.Contains(cres[0].Err.Error(), "2 broker(s)") || cres[1].Err != nil {
		t.Fatalf("creating topics during the shutdown: %v; %v", cres[0].Err, cres[1].Err)
	}

	// Broker 2 has not yet applied the shutdown batch: wait.
	r.beat(2, func(h *BrokerHeartbeat) { h.MetadataOffset = shutdownAt - 1 })
	r.beat(3, nil)
	if res := r.beat(1, func(h *BrokerHeartbeat) { h.WantShutdown = true }); res.ShouldShutdown || !res.InControlledShutdown {
		t.Fatalf("shutdown granted before broker 2 caught up: %+v", res)
	}
	r.beat(2, nil)
	res = r.beat(1, func(h *BrokerHeartbeat) { h.WantShutdown = true })
	if !res.ShouldShutdown || !res.Fenced {
		t.Fatalf("shutdown not granted: %+v", res)
	}
	if b := r.im.Broker(1); !b.Fenced || b.ShuttingDown {
		t.Fatalf("broker 1 after the shutdown: %+v", b)
	}
	// It restarts: its single-replica partition comes back to it.
	r.register(1, 2, "")
	r.beat(1, nil)
	wantPart(t, "u-0 after the restart", r.part("u", 0), 1, 1)

	// A broker that leads nothing stops at once.
	r.live(4, "")
	res = r.beat(4, func(h *BrokerHeartbeat) { h.WantShutdown = true })
	if !res.ShouldShutdown || !res.Fenced || !r.im.Broker(4).Fenced {
		t.Fatalf("shutdown of a broker leading nothing: %+v", res)
	}
}

// TestMachineShutdownAfterFailover: a Machine that takes over while a
// broker is shutting down finishes the shutdown.
func TestMachineShutdownAfterFailover(t *testing.T) {
	r := newRig(t, nil)
	r.live(1, "")
	r.live(2, "")
	r.create(NewTopic{Name: "t", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{1, 2}}})
	r.beat(1, func(h *BrokerHeartbeat) { h.WantShutdown = true })
	r.restart()
	// Broker 2 has not been heard from by the new Machine: wait for it.
	if res := r.beat(1, func(h *BrokerHeartbeat) { h.WantShutdown = true }); res.ShouldShutdown {
		t.Fatalf("shutdown granted before the new machine heard from broker 2: %+v", res)
	}
	r.beat(2, nil)
	if res := r.beat(1, func(h *BrokerHeartbeat) { h.WantShutdown = true }); !res.ShouldShutdown {
		t.Fatalf("shutdown not granted: %+v", res)
	}

	// An image where a broker in controlled shutdown still leads (written
	// by hand here): the Machine moves its leadership before letting it go.
	r.register(1, 2, "")
	r.beat(1, nil)
	wantPart(t, "t-0 with broker 1 back", r.part("t", 0), 2, 2)
	b2 := r.im.Broker(2)
	im, err := r.im.Apply(r.im.Offset()+1, []metadata.Record{&metadata.ChangeBroker{ID: 2, Epoch: b2.Epoch, ShuttingDown: true}})
	if err != nil {
		t.Fatal(err)
	}
	r.im = im
	r.restart()
	if res := r.beat(2, func(h *BrokerHeartbeat) { h.WantShutdown = true }); res.ShouldShutdown || !res.InControlledShutdown {
		t.Fatalf("shutdown granted to a broker still leading: %+v", res)
	}
	wantPart(t, "t-0 after broker 2's leadership moved", r.part("t", 0), metadata.NoLeader, 2)
}

func TestMachineAllocateProducerIDs(t *testing.T) {
	r := newRig(t, nil)
	epoch := r.register(1, 1, "")
	var next int64
	for range 3 {
		recs, blk, err := r.m.AllocateProducerIDs(r.now, 1, epoch)
		if err != nil || blk.First != next || blk.Size != 1000 {
			t.Fatalf("block %+v, %v; want first %d", blk, err, next)
		}
		r.apply(recs)
		next += 1000
	}
	if _, _, err := r.m.AllocateProducerIDs(r.now, 1, epoch-1); !errors.Is(err, ErrStaleBrokerEpoch) {
		t.Errorf("stale epoch: %v", err)
	}
	if _, _, err := r.m.AllocateProducerIDs(r.now, 2, epoch); !errors.Is(err, ErrUnknownBroker) {
		t.Errorf("unknown broker: %v", err)
	}

	// Near the end of the id space.
	im, _ := metadata.Empty().Apply(1, []metadata.Record{&metadata.Bootstrap{ClusterID: "rig-cluster", NextProducerID: math.MaxInt64 - 1500}})
	r = newRig(t, nil)
	r.im = im
	r.restart()
	epoch = r.register(1, 1, "")
	recs, _, err := r.m.AllocateProducerIDs(r.now, 1, epoch)
	if err != nil {
		t.Fatal(err)
	}
	r.apply(recs)
	if _, _, err := r.m.AllocateProducerIDs(r.now, 1, epoch); !errors.Is(err, ErrProducerIDsExhausted) {
		t.Errorf("past the last producer id: %v", err)
	}
}

// preferredRig: partition t-0 with replicas [1, 2] led by 2 after broker 1
// came back, and broker 1 back in the ISR (as AlterPartition will do, issue
// 11; here written by hand).
func preferredRig(t *testing.T, tweak func(*MachineConfig)) *rig {
	r := newRig(t, tweak)
	r.live(1, "")
	r.live(2, "")
	tp := r.create(NewTopic{Name: "t", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{1, 2}, {2, 1}}})
	recs, _ := r.m.BrokerGone(r.now, 1, r.im.Broker(1).Epoch)
	r.apply(recs)
	r.register(1, 2, "")
	r.beat(1, nil)
	wantPart(t, "after broker 1 returned", r.part("t", 0), 2, 2)
	isr := []metadata.BrokerID{2, 1}
	im, err := r.im.Apply(r.im.Offset()+1, []metadata.Record{&metadata.ChangePartition{Topic: tp.ID, Partition: 0, ISR: &isr}})
	if err != nil {
		t.Fatal(err)
	}
	r.im = im
	r.m.Applied(im)
	return r
}

func TestMachineElectPreferredLeaders(t *testing.T) {
	r := preferredRig(t, nil)
	recs, res, err := r.m.ElectPreferredLeaders(r.now, []TopicPartitions{{Topic: "t", Partitions: []int32{0, 1, 5}}, {Topic: "nope", Partitions: []int32{0}}})
	if err != nil {
		t.Fatal(err)
	}
	wants := []error{nil, ErrElectionNotNeeded, ErrUnknownTopic, ErrUnknownTopic}
	for i, w := range wants {
		if !errors.Is(res[i].Err, w) || (w == nil) != (res[i].Err == nil) {
			t.Errorf("result %d %+v: want %v", i, res[i], w)
		}
	}
	r.apply(recs)
	wantPart(t, "after the election", r.part("t", 0), 1, 2, 1)

	// All partitions: the ones already led by their preferred replica are
	// left out. Broker 2 fenced: t-1's preferred replica cannot lead.
	recs, _ = r.m.BrokerGone(r.now, 2, r.im.Broker(2).Epoch)
	r.apply(recs)
	_, res, _ = r.m.ElectPreferredLeaders(r.now, nil)
	if len(res) != 1 || res[0].Partition != 1 || !errors.Is(res[0].Err, ErrPreferredLeaderNotAvailable) {
		t.Errorf("electing all: %+v", res)
	}
}

func TestMachineAutoRebalance(t *testing.T) {
	r := preferredRig(t, nil)
	r.now = r.now.Add(r.cfg.LeaderImbalanceCheckInterval) // brokers keep heartbeating
	r.beat(1, nil)
	r.beat(2, nil)
	recs, res, err := r.m.Tick(r.now)
	if err != nil || res.Elected != 1 || res.More {
		t.Fatalf("tick: %v %+v", err, res)
	}
	r.apply(recs)
	wantPart(t, "after the rebalance", r.part("t", 0), 1, 2, 1)
	if next := r.m.NextTick(); !next.Equal(r.now.Add(r.cfg.SessionTimeout)) {
		t.Errorf("next tick %v", next)
	}

	r = preferredRig(t, func(c *MachineConfig) { c.AutoLeaderRebalance = false })
	r.now = r.now.Add(r.cfg.LeaderImbalanceCheckInterval)
	r.beat(1, nil)
	r.beat(2, nil)
	if recs, res, _ := r.m.Tick(r.now); len(recs) != 0 || res.Elected != 0 {
		t.Errorf("rebalance with auto.leader.rebalance.enable=false: %+v", res)
	}
}

// TestMachineRebalanceBound: a rebalance moves at most maxRebalancePerTick
// leaderships per Tick and continues at the next.
func TestMachineRebalanceBound(t *testing.T) {
	r := newRig(t, func(c *MachineConfig) { c.MaxBrokerPartitions = 0 })
	r.live(1, "")
	r.live(2, "")
	n := maxRebalancePerTick + 10
	tp := r.create(NewTopic{Name: "t", NumPartitions: -1, ReplicationFactor: -1, Assignment: slices.Repeat([][]metadata.BrokerID{{1, 2}}, n)})
	var recs []metadata.Record
	for i := range n {
		leader := metadata.BrokerID(2)
		recs = append(recs, &metadata.ChangePartition{Topic: tp.ID, Partition: int32(i), Leader: &leader})
	}
	im, err := r.im.Apply(r.im.Offset()+1, recs)
	if err != nil {
		t.Fatal(err)
	}
	r.im = im
	r.m.Applied(im)
	r.now = r.now.Add(r.cfg.LeaderImbalanceCheckInterval)
	r.beat(1, nil)
	r.beat(2, nil)
	recs, res, _ := r.m.Tick(r.now)
	if res.Elected != maxRebalancePerTick || !res.More {
		t.Fatalf("first tick: %+v", res)
	}
	r.apply(recs)
	if !r.m.NextTick().Equal(r.now) {
		t.Errorf("the rebalance does not continue at once: next tick %v", r.m.NextTick())
	}
	recs, res, _ = r.m.Tick(r.now)
	if res.Elected != 10 || res.More {
		t.Fatalf("second tick: %+v", res)
	}
	r.apply(recs)
}

// TestMachineRepairsLeaderless: a leaderless partition with an eligible
// ISR member (which decisions never leave, but an image from elsewhere
// may hold) gets a leader at the periodic check.
func TestMachineRepairsLeaderless(t *testing.T) {
	r := newRig(t, func(c *MachineConfig) { c.AutoLeaderRebalance = false })
	r.live(1, "")
	tp := r.create(NewTopic{Name: "t", NumPartitions: 1, ReplicationFactor: 1})
	none := metadata.NoLeader
	im, err := r.im.Apply(r.im.Offset()+1, []metadata.Record{&metadata.ChangePartition{Topic: tp.ID, Partition: 0, Leader: &none}})
	if err != nil {
		t.Fatal(err)
	}
	r.im = im
	r.restart()
	r.now = r.now.Add(r.cfg.LeaderImbalanceCheckInterval)
	r.beat(1, nil)
	recs, res, _ := r.m.Tick(r.now)
	if res.Elected != 1 {
		t.Fatalf("tick: %+v", res)
	}
	r.apply(recs)
	wantPart(t, "repaired", r.part("t", 0), 1, 1)
}

// TestMachineBusy: while a batch is in flight every decision is refused.
func TestMachineBusy(t *testing.T) {
	r := newRig(t, nil)
	recs, _, err := r.m.RegisterBroker(r.now, BrokerRegistration{ID: 1, Incarnation: incarnation(1, 1), Listeners: endpoints(1)})
	if err != nil || !r.m.Pending() {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"register": func() error {
			_, _, err := r.m.RegisterBroker(r.now, BrokerRegistration{ID: 2, Incarnation: incarnation(2, 1), Listeners: endpoints(2)})
			return err
		},
		"heartbeat": func() error { _, _, err := r.m.Heartbeat(r.now, BrokerHeartbeat{ID: 1}); return err },
		"gone":      func() error { _, err := r.m.BrokerGone(r.now, 1, 0); return err },
		"tick":      func() error { _, _, err := r.m.Tick(r.now); return err },
		"create":    func() error { _, _, err := r.m.CreateTopics(r.now, nil); return err },
		"delete":    func() error { _, _, err := r.m.DeleteTopics(r.now, nil); return err },
		"partitions": func() error {
			_, _, err := r.m.CreatePartitions(r.now, nil)
			return err
		},
		"configs":     func() error { _, _, err := r.m.AlterTopicConfigs(r.now, nil); return err },
		"producerids": func() error { _, _, err := r.m.AllocateProducerIDs(r.now, 1, 0); return err },
		"elect":       func() error { _, _, err := r.m.ElectPreferredLeaders(r.now, nil); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrBusy) {
			t.Errorf("%s while a batch is in flight: %v", name, err)
		}
	}
	r.apply(recs)
	if err := calls["tick"](); err != nil {
		t.Errorf("tick after Applied: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("an older image applied without a panic")
		}
	}()
	old, _ := metadata.Empty().Apply(1, nil)
	r.m.Applied(old)
}

func TestMachineConfigValidation(t *testing.T) {
	for name, tweak := range map[string]func(*MachineConfig){
		"session timeout": func(c *MachineConfig) { c.SessionTimeout = 0 },
		"partitions":      func(c *MachineConfig) { c.NumPartitions = 0 },
		"rf":              func(c *MachineConfig) { c.DefaultReplicationFactor = 0 },
		"interval":        func(c *MachineConfig) { c.LeaderImbalanceCheckInterval = 0 },
		"block":           func(c *MachineConfig) { c.ProducerIDBlockSize = 0 },
		"max partitions":  func(c *MachineConfig) { c.MaxBrokerPartitions = -1 },
		"topic ids":       func(c *MachineConfig) { c.NewTopicID = nil },
	} {
		cfg := DefaultMachineConfig()
		tweak(&cfg)
		if _, err := NewMachine(cfg, metadata.Empty(), rigStart); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewMachine(DefaultMachineConfig(), nil, rigStart); err == nil {
		t.Error("no image: accepted")
	}
	id := DefaultMachineConfig().NewTopicID() // metadata.RandomUUID
	if id.IsZero() || strings.HasPrefix(id.String(), "-") || id[6]>>4 != 4 {
		t.Errorf("random topic id %s", id)
	}
}
