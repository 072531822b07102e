package controller

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratalog/strata/controller/metadata"
)

// Driver tests: a Driver on every node of an in-memory quorum, a clock the
// test moves.

// fakeClock is a clock the test advances.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(rigStart.UnixNano())
	return c
}
func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

type driverRig struct {
	t         *testing.T
	c         *cluster
	clock     *fakeClock
	bootstrap atomic.Int32 // Bootstrap calls
	mu        sync.Mutex
	drivers   map[metadata.BrokerID]*Driver
	stops     map[metadata.BrokerID]func()
}

func newDriverRig(t *testing.T, voters int) *driverRig {
	r := &driverRig{t: t, c: newCluster(t, voters, testTuning()), clock: newFakeClock(),
		drivers: map[metadata.BrokerID]*Driver{}, stops: map[metadata.BrokerID]func(){}}
	for _, v := range r.c.voters {
		r.startDriver(v.ID)
	}
	t.Cleanup(func() {
		for _, stop := range r.stops {
			stop()
		}
	})
	return r
}

// startDriver runs a Driver on node id (running).
func (r *driverRig) startDriver(id metadata.BrokerID) {
	r.t.Helper()
	cfg := rigConfig()
	var ids atomic.Int32
	cfg.NewTopicID = func() metadata.UUID { return metadata.UUID{0: 0xdd, 14: byte(id), 15: byte(ids.Add(1))} }
	d, err := NewDriver(DriverConfig{
		Node:    r.c.node(id),
		Machine: cfg,
		Bootstrap: func(context.Context) ([]metadata.Record, error) {
			r.bootstrap.Add(1)
			return []metadata.Record{&metadata.Bootstrap{ClusterID: "driver-cluster"}}, nil
		},
		Now:    r.clock.now,
		Logger: r.c.log,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	r.mu.Lock()
	r.drivers[id] = d
	r.stops[id] = func() { cancel(); <-done }
	r.mu.Unlock()
}

func (r *driverRig) stopDriver(id metadata.BrokerID) {
	r.mu.Lock()
	stop := r.stops[id]
	delete(r.stops, id)
	delete(r.drivers, id)
	r.mu.Unlock()
	stop()
}

// active waits for exactly one active Driver, on the Raft leader.
func (r *driverRig) active() *Driver {
	r.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		var act []*Driver
		r.mu.Lock()
		for _, d := range r.drivers {
			if d.Active() {
				act = append(act, d)
			}
		}
		r.mu.Unlock()
		if len(act) == 1 && act[0].node.IsLeader() {
			return act[0]
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.t.Fatalf("no single active driver after %v", waitLimit)
	return nil
}

func (r *driverRig) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	r.t.Cleanup(cancel)
	return ctx
}

// register registers broker id and heartbeats it unfenced.
func (r *driverRig) register(d *Driver, id metadata.BrokerID) int64 {
	r.t.Helper()
	epoch, err := d.RegisterBroker(r.ctx(), BrokerRegistration{ID: id, Incarnation: testUUID(int(id)),
		Listeners: []metadata.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9090 + int32(id)}}})
	if err != nil {
		r.t.Fatalf("register broker %d: %v", id, err)
	}
	res, err := d.Heartbeat(r.ctx(), BrokerHeartbeat{ID: id, Epoch: epoch, MetadataOffset: d.node.Image().Offset()})
	if err != nil || res.Fenced {
		r.t.Fatalf("heartbeat of broker %d at epoch %d: %+v, %v; want unfenced", id, epoch, res, err)
	}
	return epoch
}

// TestDriverFailover: the leader's Driver bootstraps the cluster once and
// decides; the others answer NOT_CONTROLLER naming it. After the leader
// crashes, another Driver becomes active on the committed image (nothing
// lost, no second bootstrap), decides at once, and the rejoined node
// catches up.
func TestDriverFailover(t *testing.T) {
	t.Parallel()
	r := newDriverRig(t, 3)
	act := r.active()
	for id, d := range r.drivers {
		if d == act {
			continue
		}
		_, err := d.CreateTopics(r.ctx(), []NewTopic{{Name: "x", NumPartitions: 1, ReplicationFactor: 1}})
		var nl *NotLeaderError
		if !errors.As(err, &nl) || nl.Leader != act.node.ID() {
			t.Errorf("CreateTopics at follower %d: %v; want NotLeaderError naming %d", id, err, act.node.ID())
		}
	}
	for id := metadata.BrokerID(1); id <= 3; id++ {
		r.register(act, id)
	}
	res, err := act.CreateTopics(r.ctx(), []NewTopic{{Name: "before", NumPartitions: 6, ReplicationFactor: 1}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("create: %v %+v", err, res)
	}
	leaders := map[metadata.BrokerID]int{}
	for _, p := range act.node.Image().Topic("before").Partitions {
		leaders[p.Leader]++
	}
	if len(leaders) != 3 {
		t.Errorf("6 partitions over 3 brokers led by %v; want every broker leading", leaders)
	}

	old := act.node.ID()
	r.stopDriver(old)
	r.c.stop(old, true)
	next := r.active()
	res, err = next.CreateTopics(r.ctx(), []NewTopic{{Name: "after", NumPartitions: 1, ReplicationFactor: 1}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("create after failover: %v %+v", err, res)
	}
	im := next.node.Image()
	if im.Topic("before") == nil || im.ClusterID() != "driver-cluster" || len(im.Brokers()) != 3 {
		t.Errorf("after failover: topic before %v, cluster %q, %d brokers", im.Topic("before") != nil, im.ClusterID(), len(im.Brokers()))
	}
	if n := r.bootstrap.Load(); n != 1 {
		t.Errorf("Bootstrap called %d times, want 1", n)
	}
	r.c.start(old, true)
	r.startDriver(old)
	r.c.converged(im.Offset())
}

// TestDriverFencesOnSessionExpiry: a broker that stops heartbeating is
// fenced once the session timeout passes on the Driver's clock, and its
// partitions lose their leader (one replica: none to move to); a
// heartbeat of the next incarnation brings leadership back.
func TestDriverFencesOnSessionExpiry(t *testing.T) {
	t.Parallel()
	r := newDriverRig(t, 1)
	d := r.active()
	e1, e2 := r.register(d, 1), r.register(d, 2)
	if _, err := d.CreateTopics(r.ctx(), []NewTopic{{Name: "t", NumPartitions: 4, ReplicationFactor: 1}}); err != nil {
		t.Fatal(err)
	}
	// Broker 1 keeps heartbeating; broker 2 falls silent.
	for range 4 {
		r.clock.advance(3 * time.Second)
		if _, err := d.Heartbeat(r.ctx(), BrokerHeartbeat{ID: 1, Epoch: e1, MetadataOffset: d.node.Image().Offset()}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(waitLimit)
	for !d.node.Image().Broker(2).Fenced {
		if time.Now().After(deadline) {
			t.Fatal("broker 2 not fenced after its session expired")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i, p := range d.node.Image().Topic("t").Partitions {
		if p.Leader == 2 {
			t.Errorf("partition %d still led by fenced broker 2", i)
		}
	}
	// The next incarnation registers, catches up and leads again; the
	// old epoch is stale.
	e3, err := d.RegisterBroker(r.ctx(), BrokerRegistration{ID: 2, Incarnation: testUUID(20),
		Listeners: []metadata.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}}})
	if err != nil || e3 <= e2 {
		t.Fatalf("register broker 2 again: epoch %d (was %d), %v", e3, e2, err)
	}
	if res, err := d.Heartbeat(r.ctx(), BrokerHeartbeat{ID: 2, Epoch: e3, MetadataOffset: d.node.Image().Offset()}); err != nil || res.Fenced {
		t.Fatalf("heartbeat of the new incarnation: %+v, %v", res, err)
	}
	for i, p := range d.node.Image().Topic("t").Partitions {
		if p.Leader == metadata.NoLeader {
			t.Errorf("partition %d has no leader after broker 2 returned", i)
		}
	}
	if err := d.BrokerGone(r.ctx(), 2, e2); !errors.Is(err, ErrStaleBrokerEpoch) {
		t.Errorf("BrokerGone of the old incarnation: %v, want ErrStaleBrokerEpoch", err)
	}
}
