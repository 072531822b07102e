package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/stratalog/strata/controller/metadata"
)

// Quorum tests over raft's in-memory transport: real bolt stores and file
// snapshots in t.TempDir, timeouts scaled down about fivefold.

// testTuning: elections in about 100–300 ms (the election and lease
// timeouts follow the heartbeat timeout in the defaults' ratios).
func testTuning() Tuning {
	return Tuning{
		HeartbeatTimeout:  100 * time.Millisecond,
		CommitTimeout:     5 * time.Millisecond,
		SnapshotInterval:  time.Hour, // tests that want snapshots ask
		SnapshotThreshold: 1 << 20,
	}
}

// TestTuningDefaults: a zero field takes its default, and the election
// and lease timeouts keep the defaults' ratios to a heartbeat timeout set
// alone.
func TestTuningDefaults(t *testing.T) {
	if got := (Tuning{}).withDefaults(); got != DefaultTuning() {
		t.Errorf("zero tuning: %+v, want %+v", got, DefaultTuning())
	}
	got := testTuning().withDefaults()
	if got.ElectionTimeout != 100*time.Millisecond || got.LeaderLeaseTimeout != 50*time.Millisecond ||
		got.TrailingLogs != DefaultTuning().TrailingLogs || got.CommitTimeout != 5*time.Millisecond {
		t.Errorf("test tuning: %+v", got)
	}
}

const waitLimit = 10 * time.Second // a failing test's bound, not an expectation

// testLogger sends warnings and errors to t.Log until the test ends (raft
// goroutines may outlive a node by a moment).
func testLogger(t testing.TB) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testLogWriter struct {
	t  testing.TB
	mu sync.Mutex
	// done: the test has ended, t.Log would panic.
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// cluster is a group of nodes over in-memory transports.
type cluster struct {
	t       *testing.T
	tuning  Tuning
	log     *slog.Logger
	voters  []Voter
	members map[metadata.BrokerID]*member
	base    string // the members' directories are under it
}

type member struct {
	id    metadata.BrokerID
	dir   string
	addr  raft.ServerAddress
	voter bool
	trans *raft.InmemTransport
	node  *Node // nil while stopped
	cut   bool  // partitioned from the others (partition)
}

func newCluster(t *testing.T, voters int, tun Tuning) *cluster {
	t.Helper()
	// The directory first: its removal is then registered before the
	// nodes' close, so it runs after it (cleanups run last-in first-out).
	c := &cluster{t: t, tuning: tun, log: testLogger(t), members: map[metadata.BrokerID]*member{}, base: t.TempDir()}
	for i := 1; i <= voters; i++ {
		c.voters = append(c.voters, Voter{ID: metadata.BrokerID(i), Addr: fmt.Sprintf("node-%d", i)})
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			if m.node != nil {
				_ = m.node.close(false)
			}
		}
	})
	for _, v := range c.voters {
		c.start(v.ID, true)
	}
	return c
}

// start opens node id on its directory (new or kept), connected to every
// running member.
func (c *cluster) start(id metadata.BrokerID, voter bool) *Node {
	c.t.Helper()
	m := c.members[id]
	if m == nil {
		m = &member{id: id, dir: filepath.Join(c.base, fmt.Sprint(id)), addr: raft.ServerAddress(fmt.Sprintf("node-%d", id)), voter: voter}
		c.members[id] = m
	}
	_, m.trans = raft.NewInmemTransportWithTimeout(m.addr, 200*time.Millisecond)
	for _, o := range c.members {
		if o != m && o.node != nil {
			m.trans.Connect(o.addr, o.trans)
			o.trans.Connect(m.addr, m.trans)
		}
	}
	// Members started later connect to this one in their turn.
	n, err := OpenNode(NodeConfig{NodeID: id, Dir: m.dir, Voters: c.voters, Voter: voter, Transport: m.trans, Logger: c.log, Tuning: c.tuning})
	if err != nil {
		c.t.Fatalf("open node %d: %v", id, err)
	}
	m.node = n
	return n
}

// stop closes node id: gracefully (a leader hands over first) or, with
// crash, cut off from its peers at once and stopped without a handover.
func (c *cluster) stop(id metadata.BrokerID, crash bool) {
	c.t.Helper()
	m := c.members[id]
	if crash {
		for _, o := range c.members {
			if o != m {
				o.trans.Disconnect(m.addr)
			}
		}
	}
	if err := m.node.close(!crash); err != nil {
		c.t.Fatalf("close node %d: %v", id, err)
	}
	for _, o := range c.members {
		if o != m {
			o.trans.Disconnect(m.addr)
		}
	}
	m.node = nil
}

// partition cuts id off from every other member, or joins it back.
func (c *cluster) partition(id metadata.BrokerID, cut bool) {
	m := c.members[id]
	m.cut = cut
	for _, o := range c.members {
		if o == m || o.node == nil {
			continue
		}
		if cut {
			o.trans.Disconnect(m.addr)
			m.trans.Disconnect(o.addr)
		} else {
			o.trans.Connect(m.addr, m.trans)
			m.trans.Connect(o.addr, o.trans)
		}
	}
}

func (c *cluster) node(id metadata.BrokerID) *Node { return c.members[id].node }

func (c *cluster) running() []*Node {
	var out []*Node
	for _, m := range c.members {
		if m.node != nil {
			out = append(out, m.node)
		}
	}
	return out
}

// leader waits until exactly one running node leads and every running
// voter that is not cut off names it.
func (c *cluster) leader() *Node {
	c.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		var leaders []*Node
		for _, m := range c.members {
			if m.node != nil && !m.cut && m.node.IsLeader() {
				leaders = append(leaders, m.node)
			}
		}
		if len(leaders) == 1 {
			agreed := true
			for _, m := range c.members {
				if m.node == nil || !m.voter || m.cut {
					continue
				}
				if id, _, ok := m.node.Leader(); !ok || id != leaders[0].ID() {
					agreed = false
				}
			}
			if agreed {
				return leaders[0]
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatalf("no single leader after %v", waitLimit)
	return nil
}

// propose proposes batch at the leader, following the leadership if it
// moves before the batch enters the log.
func (c *cluster) propose(batch ...metadata.Record) (int64, *metadata.Image) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for {
		off, im, err := c.leader().Propose(ctx, batch)
		if errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrLeadershipLost) {
			continue
		}
		if err != nil {
			c.t.Fatalf("propose %s: %v", batch[0].Type(), err)
		}
		return off, im
	}
}

// converged waits until every running node has applied offset, then
// checks that their images are equal, and returns one.
func (c *cluster) converged(offset int64) *metadata.Image {
	c.t.Helper()
	var first *metadata.Image
	for _, n := range c.running() {
		waitApplied(c.t, n, offset)
		if first == nil {
			first = n.Image()
		} else if !metadata.Equal(first, n.Image()) {
			c.t.Fatalf("node %d's image (offset %d) differs from another's (offset %d)", n.ID(), n.Image().Offset(), first.Offset())
		}
	}
	return first
}

func waitApplied(t *testing.T, n *Node, offset int64) {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		ch := n.Changed()
		if n.AppliedOffset() >= offset {
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("node %d applied %d, not %d, after %v", n.ID(), n.AppliedOffset(), offset, waitLimit)
		}
	}
}

func testUUID(n int) metadata.UUID {
	var u metadata.UUID
	u[0], u[14], u[15] = 0xab, byte(n>>8), byte(n)
	return u
}

func bootstrap() metadata.Record { return &metadata.Bootstrap{ClusterID: "test-cluster"} }

func registerBroker(id metadata.BrokerID) metadata.Record {
	return &metadata.RegisterBroker{ID: id, Incarnation: testUUID(int(id)),
		Listeners: []metadata.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9090 + int32(id)}}}
}

func createTopic(n int) metadata.Record {
	return &metadata.CreateTopic{Name: fmt.Sprintf("topic-%d", n), ID: testUUID(1000 + n),
		Partitions: []metadata.Partition{{Replicas: []metadata.BrokerID{1}, ISR: []metadata.BrokerID{1}, Leader: metadata.NoLeader}}}
}

// TestQuorumReplicates: 1, 3 and 5 voters elect a leader; the leader's
// batches apply on every node in order, to equal images; a follower
// refuses to propose and names the leader.
func TestQuorumReplicates(t *testing.T) {
	t.Parallel()
	for _, voters := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("voters=%d", voters), func(t *testing.T) {
			c := newCluster(t, voters, testTuning())
			leader := c.leader()
			changed := leader.Changed()
			off, im := c.propose(bootstrap())
			select {
			case <-changed:
			default:
				t.Fatal("Changed was not closed by a new image")
			}
			if im.ClusterID() != "test-cluster" || im.Offset() != off {
				t.Fatalf("image after bootstrap: cluster %q at offset %d, proposed at %d", im.ClusterID(), im.Offset(), off)
			}
			last := off
			for i := range 10 {
				off, im := c.propose(registerBroker(metadata.BrokerID(i)), createTopic(i))
				if off <= last || im.Offset() != off || im.Topic(fmt.Sprintf("topic-%d", i)) == nil {
					t.Fatalf("batch %d at offset %d (after %d), image at %d", i, off, last, im.Offset())
				}
				last = off
			}
			final := c.converged(last)
			if final.Offset() != last || final.NumTopics() != 10 || len(final.Brokers()) != 10 {
				t.Fatalf("converged image at %d with %d topics and %d brokers", final.Offset(), final.NumTopics(), len(final.Brokers()))
			}
			for _, n := range c.running() {
				if n == leader {
					continue
				}
				_, _, err := n.Propose(context.Background(), []metadata.Record{createTopic(99)})
				var nle *NotLeaderError
				if !errors.As(err, &nle) || !errors.Is(err, ErrNotLeader) || nle.Leader != leader.ID() || nle.Addr != fmt.Sprintf("node-%d", leader.ID()) {
					t.Fatalf("a follower's Propose: %v", err)
				}
				if err := n.Barrier(context.Background()); !errors.Is(err, ErrNotLeader) {
					t.Fatalf("a follower's Barrier: %v", err)
				}
			}
			if err := leader.Barrier(context.Background()); err != nil {
				t.Fatalf("leader's Barrier: %v", err)
			}
			if _, _, err := leader.Propose(context.Background(), nil); err == nil {
				t.Fatal("an empty batch was proposed")
			}
		})
	}
}

// TestQuorumRefusedBatch: a batch the FSM refuses returns ErrRefused, is
// in the log, and changes no node's image.
func TestQuorumRefusedBatch(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, testTuning())
	before, _ := c.propose(bootstrap(), createTopic(1))
	c.converged(before)
	isr := []metadata.BrokerID{}
	unknown := &metadata.ChangePartition{Topic: testUUID(4242), Partition: 0, ISR: &isr}
	off, im, err := c.leader().Propose(context.Background(), []metadata.Record{unknown})
	if !errors.Is(err, metadata.ErrRefused) || im != nil || off <= before {
		t.Fatalf("refused batch: offset %d (after %d), image %v, err %v", off, before, im, err)
	}
	final := c.converged(off)
	if final.Offset() != before {
		t.Fatalf("the image moved to %d on a refused batch at %d", final.Offset(), off)
	}
	next, im := c.propose(createTopic(2))
	if next <= off || im.NumTopics() != 2 {
		t.Fatalf("after the refusal: offset %d, %d topics", next, im.NumTopics())
	}
	c.converged(next)
}

// TestQuorumFailover: the leader dies; the others elect a new one, a
// proposal right after succeeds, nothing committed is lost, and the dead
// node comes back on its directory and catches up. A graceful Close of a
// leader hands the leadership over.
func TestQuorumFailover(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, testTuning())
	last, _ := c.propose(bootstrap())
	for i := range 5 {
		last, _ = c.propose(createTopic(i))
	}
	c.converged(last)
	old := c.leader().ID()
	c.stop(old, true)
	start := time.Now()
	off, im := c.propose(createTopic(100))
	t.Logf("crash of the leader to the next committed batch: %v", time.Since(start))
	if c.leader().ID() == old || im.NumTopics() != 6 || off <= last {
		t.Fatalf("after failover: leader %d, %d topics at offset %d", c.leader().ID(), im.NumTopics(), off)
	}
	c.start(old, true)
	c.converged(off)

	leader := c.leader()
	start = time.Now()
	c.stop(leader.ID(), false)
	off, _ = c.propose(createTopic(101))
	t.Logf("graceful close of the leader to the next committed batch: %v", time.Since(start))
	c.start(leader.ID(), true)
	if im := c.converged(off); im.NumTopics() != 7 {
		t.Fatalf("%d topics after two leader changes", im.NumTopics())
	}
}

// TestNodeRestartFromSnapshot: a node restarted on its directory recovers
// the same image from its snapshot and the log behind it (the log's start
// was compacted away, so the snapshot had to be read).
func TestNodeRestartFromSnapshot(t *testing.T) {
	t.Parallel()
	tun := testTuning()
	tun.SnapshotThreshold, tun.SnapshotInterval, tun.TrailingLogs = 4, 20*time.Millisecond, 2
	c := newCluster(t, 1, tun)
	c.propose(bootstrap())
	for i := range 12 {
		c.propose(registerBroker(metadata.BrokerID(i)), createTopic(i))
	}
	n := c.node(1)
	deadline := time.Now().Add(waitLimit)
	for first, _ := n.store.FirstIndex(); first <= 1; first, _ = n.store.FirstIndex() {
		if time.Now().After(deadline) {
			t.Fatal("no snapshot compacted the log")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A refused batch after the snapshot: the restart replays it too.
	if _, _, err := n.Propose(context.Background(), []metadata.Record{bootstrap()}); !errors.Is(err, metadata.ErrRefused) {
		t.Fatalf("a second bootstrap: %v", err)
	}
	last, _ := c.propose(createTopic(50))
	before := n.Image()
	c.stop(1, false)
	n = c.start(1, true)
	waitApplied(t, n, last)
	if !metadata.Equal(before, n.Image()) || n.Image().Offset() != last {
		t.Fatalf("after restart: image at %d, equal %v; before at %d", n.Image().Offset(), metadata.Equal(before, n.Image()), before.Offset())
	}
	snaps, _ := filepath.Glob(filepath.Join(c.members[1].dir, "snapshots", "*", "state.bin"))
	if len(snaps) == 0 {
		t.Fatal("no snapshot on disk")
	}
	// And it goes on.
	off, _ := c.propose(createTopic(51))
	c.converged(off)
}

// TestNonvoterFollows: a non-voter added by the leader follows every
// entry, through a leader change, and never leads.
func TestNonvoterFollows(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, testTuning())
	last, _ := c.propose(bootstrap(), createTopic(1))
	nv := c.start(10, false)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := c.leader().AddNonvoter(ctx, 10, "node-10"); err != nil {
		t.Fatal(err)
	}
	if err := c.leader().AddNonvoter(ctx, 2, "node-2"); err == nil {
		t.Fatal("a voter was added as a non-voter")
	}
	if err := nv.AddNonvoter(ctx, 11, "node-11"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a non-voter's AddNonvoter: %v", err)
	}
	c.converged(last)
	for i := 2; i < 6; i++ {
		last, _ = c.propose(createTopic(i))
	}
	c.converged(last)
	c.stop(c.leader().ID(), true)
	last, _ = c.propose(createTopic(7))
	if im := c.converged(last); im.NumTopics() != 6 {
		t.Fatalf("%d topics", im.NumTopics())
	}
	if id, _, ok := nv.Leader(); !ok || id == 10 {
		t.Fatalf("the non-voter names leader %d (known %v)", id, ok)
	}
	select {
	case v := <-nv.LeaderChanges():
		t.Fatalf("the non-voter's LeaderChanges delivered %v", v)
	default:
	}
	if nv.IsLeader() {
		t.Fatal("the non-voter leads")
	}
	if err := c.leader().RemoveServer(ctx, 10); err != nil {
		t.Fatal(err)
	}
}

// TestFollowerCatchesUpBySnapshot: a follower cut off while the leader
// compacted its log past the follower's position gets a snapshot.
func TestFollowerCatchesUpBySnapshot(t *testing.T) {
	t.Parallel()
	tun := testTuning()
	tun.TrailingLogs = 1
	c := newCluster(t, 3, tun)
	first, _ := c.propose(bootstrap())
	c.converged(first)
	var lagging metadata.BrokerID
	for _, n := range c.running() {
		if !n.IsLeader() {
			lagging = n.ID()
		}
	}
	c.partition(lagging, true)
	last := first
	for i := range 20 {
		last, _ = c.propose(registerBroker(metadata.BrokerID(i)), createTopic(i))
	}
	leader := c.leader()
	if err := leader.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := leader.store.FirstIndex(); fi <= uint64(first)+1 {
		t.Fatalf("the leader's log starts at %d, not past the lagging follower's %d", fi, first)
	}
	c.partition(lagging, false)
	c.converged(last)
	installed, _ := filepath.Glob(filepath.Join(c.members[lagging].dir, "snapshots", "*", "state.bin"))
	if len(installed) == 0 {
		t.Fatal("the follower caught up without a snapshot install")
	}
}

func TestOpenNodeRefuses(t *testing.T) {
	t.Parallel()
	voters := []Voter{{1, "a:1"}, {2, "b:1"}, {3, "c:1"}}
	for _, tc := range []struct {
		name string
		cfg  NodeConfig
		want string
	}{
		{"no voters", NodeConfig{NodeID: 1, Voter: true}, "no voters"},
		{"controller not a voter", NodeConfig{NodeID: 4, Voter: true, Voters: voters}, "must be one of the voters"},
		{"voter not a controller", NodeConfig{NodeID: 2, Voters: voters}, "not a controller"},
		{"duplicate voter", NodeConfig{NodeID: 1, Voter: true, Voters: []Voter{{1, "a:1"}, {1, "b:1"}}}, "unique"},
		{"no dir", NodeConfig{NodeID: 1, Voter: true, Voters: voters}, "no directory"},
		{"bad tuning", NodeConfig{NodeID: 1, Voter: true, Voters: voters, Dir: t.TempDir(),
			Tuning: Tuning{HeartbeatTimeout: time.Second, LeaderLeaseTimeout: 2 * time.Second}}, "LeaderLeaseTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, trans := raft.NewInmemTransport("")
			tc.cfg.Transport, tc.cfg.Logger = trans, testLogger(t)
			if _, err := OpenNode(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	// A directory in use by another node.
	dir := t.TempDir()
	_, trans := raft.NewInmemTransport("")
	n, err := OpenNode(NodeConfig{NodeID: 1, Voter: true, Voters: voters[:1], Dir: dir, Transport: trans, Logger: testLogger(t), Tuning: testTuning()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	_, trans2 := raft.NewInmemTransport("")
	if _, err := OpenNode(NodeConfig{NodeID: 1, Voter: true, Voters: voters[:1], Dir: dir, Transport: trans2, Logger: testLogger(t)}); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("a second node on one directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "raft.db")); err != nil {
		t.Fatal(err)
	}
}

func TestParseVoters(t *testing.T) {
	got, err := ParseVoters("1@10.0.0.1:9093, 2@[::1]:9093,3@host-c:9093")
	if err != nil || len(got) != 3 || got[1] != (Voter{2, "[::1]:9093"}) || got[2] != (Voter{3, "host-c:9093"}) {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "1", "1@", "x@h:1", "-1@h:1", "1@h", "1@:9093", "1@h:0", "1@h:99999", "1@h:1,1@g:1", "1@h:1,2@h:1"} {
		if _, err := ParseVoters(bad); err == nil {
			t.Errorf("ParseVoters(%q) accepted", bad)
		}
	}
}

// TestRaftLogLevels: raft's routine info lines go to debug, the ones an
// operator follows stay at info, and a warning repeated for one peer is
// logged once per window.
func TestRaftLogLevels(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	h := slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelInfo})
	hl := newHCLogger(slog.New(h), "raft")
	hl.Info("entering follower state", "term", 3)
	hl.Info("election won", "term", 4)
	for range 5 {
		hl.Named("repl").Error("failed to heartbeat to", "peer", "node-2", "error", "connection refused")
	}
	hl.With("peer", "node-3").Warn("some warning")
	hl.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn}).Print("from a std logger")
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{
		"level=INFO msg=\"election won\" component=raft term=4",
		"level=ERROR msg=\"failed to heartbeat to\" component=raft.repl peer=node-2",
		"level=WARN msg=\"some warning\" component=raft peer=node-3",
		"level=WARN msg=\"from a std logger\" component=raft",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "entering follower state") || strings.Count(out, "failed to heartbeat to") != 1 {
		t.Errorf("routine or repeated lines got through:\n%s", out)
	}
	if hl.IsInfo() || !hl.IsWarn() || hl.GetLevel() != hclog.Warn {
		t.Errorf("levels: info %v, warn %v, level %v", hl.IsInfo(), hl.IsWarn(), hl.GetLevel())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
