package lifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratalog/strata/controller"
	"github.com/stratalog/strata/controller/metadata"
	"github.com/stratalog/strata/controller/quorum"
)

// Three controller+broker nodes in this process over real TCP on
// 127.0.0.1: each runs its quorum member (Raft and the controller
// listener) and a Manager registering its broker with the active
// controller through franz-go.

const waitLimit = 20 * time.Second // a failing test's bound, not an expectation

type node struct {
	id  metadata.BrokerID
	dir string
	q   *quorum.Quorum
	m   *Manager
}

type cluster struct {
	t      *testing.T
	voters []controller.Voter
	lns    map[metadata.BrokerID]net.Listener
	mu     sync.Mutex
	nodes  map[metadata.BrokerID]*node
	log    *slog.Logger
}

func newCluster(t *testing.T, n int) *cluster {
	c := &cluster{t: t, lns: map[metadata.BrokerID]net.Listener{}, nodes: map[metadata.BrokerID]*node{},
		log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	for i := 1; i <= n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		id := metadata.BrokerID(i)
		c.lns[id] = ln
		c.voters = append(c.voters, controller.Voter{ID: id, Addr: ln.Addr().String()})
	}
	for i := 1; i <= n; i++ {
		c.start(metadata.BrokerID(i))
	}
	t.Cleanup(func() {
		for id := range c.nodes {
			c.stop(id, false)
		}
	})
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// start starts node id's quorum member and its broker's Manager.
func (c *cluster) start(id metadata.BrokerID) *node {
	c.t.Helper()
	n := &node{id: id, dir: filepath.Join(c.t.TempDir(), fmt.Sprint(id))}
	ln := c.lns[id]
	if ln == nil { // a restart: the same address again
		var err error
		if ln, err = net.Listen("tcp", c.voters[id-1].Addr); err != nil {
			c.t.Fatal(err)
		}
	}
	delete(c.lns, id)
	mcfg := controller.DefaultMachineConfig()
	mcfg.SessionTimeout = 10 * time.Minute // far beyond waitLimit: fencing here is never the session's
	q, err := quorum.Start(quorum.Config{
		NodeID: id, Dir: n.dir, Voters: c.voters, Controller: true, Listener: ln,
		Tuning:  controller.Tuning{HeartbeatTimeout: 200 * time.Millisecond, CommitTimeout: 10 * time.Millisecond},
		Machine: mcfg, Logger: c.log.With("node", id),
		Bootstrap: func(context.Context) ([]metadata.Record, error) {
			return []metadata.Record{&metadata.Bootstrap{ClusterID: "lifecycle-test"}}, nil
		},
	})
	if err != nil {
		c.t.Fatalf("start node %d: %v", id, err)
	}
	n.q = q
	n.m, err = Start(Config{NodeID: id, ClusterID: "lifecycle-test", Node: q.Node, HeartbeatInterval: 100 * time.Millisecond,
		Listeners: []metadata.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 19090 + int32(id)}}, Logger: c.log.With("broker", id)})
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	return n
}

// stop stops node id: its broker's Manager, then its quorum member.
func (c *cluster) stop(id metadata.BrokerID, managerOnly bool) {
	c.mu.Lock()
	n := c.nodes[id]
	c.mu.Unlock()
	if n.m != nil {
		n.m.Close()
		n.m = nil
	}
	if managerOnly {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.q.Close(ctx)
	c.mu.Lock()
	delete(c.nodes, id)
	c.mu.Unlock()
}

func (c *cluster) node(id metadata.BrokerID) *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// waitImage waits until node on's image satisfies cond.
func (c *cluster) waitImage(on metadata.BrokerID, what string, cond func(im *metadata.Image) bool) {
	c.t.Helper()
	n := c.node(on)
	deadline := time.Now().Add(waitLimit)
	for {
		ch := n.q.Node.Changed()
		if cond(n.q.Node.Image()) {
			return
		}
		select {
		case <-ch:
		case <-time.After(time.Until(deadline)):
			c.t.Fatalf("node %d: %s: not after %v", on, what, waitLimit)
		}
	}
}

func unfenced(ids ...metadata.BrokerID) func(im *metadata.Image) bool {
	return func(im *metadata.Image) bool {
		for _, id := range ids {
			if b := im.Broker(id); b == nil || b.Fenced {
				return false
			}
		}
		return true
	}
}

// TestLifecycleOverTCP: three brokers register with the active
// controller and are unfenced once caught up; a broker whose process goes
// away (its connection closes) is fenced at once, not after its session;
// it comes back as a new incarnation; a controlled shutdown lets a broker
// go; after the active controller's node stops, the others elect a new
// one and the remaining brokers carry on with it.
func TestLifecycleOverTCP(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for id := metadata.BrokerID(1); id <= 3; id++ {
		if err := c.node(id).m.WaitUnfenced(ctx); err != nil {
			t.Fatalf("broker %d not unfenced: %v", id, err)
		}
	}
	c.waitImage(1, "all three unfenced", unfenced(1, 2, 3))
	epoch2 := c.node(1).q.Node.Image().Broker(2).Epoch

	// Broker 2's process goes away: fenced well before its 10-minute
	// session ends.
	c.stop(2, true)
	c.waitImage(1, "broker 2 fenced", func(im *metadata.Image) bool { return im.Broker(2).Fenced })

	// It comes back as a new incarnation with a new epoch.
	n2 := c.node(2)
	var err error
	n2.m, err = Start(Config{NodeID: 2, ClusterID: "lifecycle-test", Node: n2.q.Node, HeartbeatInterval: 100 * time.Millisecond,
		Listeners: []metadata.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 19092}}, Logger: c.log})
	if err != nil {
		t.Fatal(err)
	}
	if err := n2.m.WaitUnfenced(ctx); err != nil {
		t.Fatal(err)
	}
	if e := n2.m.State().Epoch; e <= epoch2 {
		t.Errorf("broker 2's new epoch %d, not above %d", e, epoch2)
	}

	// Controlled shutdown of broker 3 (it leads nothing): let go at once.
	if err := c.node(3).m.Shutdown(ctx); err != nil {
		t.Fatalf("controlled shutdown of broker 3: %v", err)
	}
	c.waitImage(1, "broker 3 fenced after its controlled shutdown", func(im *metadata.Image) bool { return im.Broker(3).Fenced })

	// The active controller's node stops; a new one takes over and the
	// remaining brokers stay unfenced with it.
	leader, _, ok := c.node(1).q.Node.Leader()
	if !ok {
		t.Fatal("no leader known")
	}
	c.stop(leader, false)
	var rest []metadata.BrokerID
	for id := metadata.BrokerID(1); id <= 3; id++ {
		if id != leader {
			rest = append(rest, id)
		}
	}
	c.waitImage(rest[0], "a new leader", func(*metadata.Image) bool {
		id, _, ok := c.node(rest[0]).q.Node.Leader()
		return ok && id != leader
	})
	var live []metadata.BrokerID
	for _, id := range rest {
		if id != 3 {
			live = append(live, id)
		}
	}
	// Heartbeats reach the new controller: a broker that was unfenced
	// stays so, and one more registration (broker 3 again) is decided.
	n3 := c.node(3)
	if n3 != nil {
		n3.m.Close()
		n3.m, err = Start(Config{NodeID: 3, ClusterID: "lifecycle-test", Node: n3.q.Node, HeartbeatInterval: 100 * time.Millisecond,
			Listeners: []metadata.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 19093}}, Logger: c.log})
		if err != nil {
			t.Fatal(err)
		}
		live = append(live, 3)
	}
	for _, id := range live {
		if err := c.node(id).m.WaitUnfenced(ctx); err != nil {
			t.Fatalf("broker %d after the failover: %v", id, err)
		}
	}
	c.waitImage(rest[0], "the live brokers unfenced after the failover", unfenced(live...))
}
