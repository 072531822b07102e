package controller

// Node: one member of the controller's Raft group. It wires
// github.com/hashicorp/raft to a bolt log store, a file snapshot store, a
// transport and the FSM (fsm.go), and offers the few operations the
// controller and the brokers need.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/stratalog/strata/controller/metadata"
)

// Voter is one member of the static voter set (controller.quorum.voters).
type Voter struct {
	ID metadata.BrokerID
	// Addr is where the voter's Raft transport is reached: host:port of
	// its controller listener, or an in-memory transport's address in
	// tests.
	Addr string
}

// ParseVoters parses Kafka's controller.quorum.voters format,
// "1@host:port,2@host:port,3@host:port".
func ParseVoters(s string) ([]Voter, error) {
	var out []Voter
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		idText, addr, ok := strings.Cut(item, "@")
		if !ok {
			return nil, fmt.Errorf("controller.quorum.voters %q: %q is not id@host:port", s, item)
		}
		id, err := strconv.ParseInt(idText, 10, 32)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("controller.quorum.voters %q: node id %q", s, idText)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" {
			return nil, fmt.Errorf("controller.quorum.voters %q: address %q is not host:port", s, addr)
		}
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
			return nil, fmt.Errorf("controller.quorum.voters %q: port %q", s, port)
		}
		out = append(out, Voter{ID: metadata.BrokerID(id), Addr: addr})
	}
	if err := checkVoters(out); err != nil {
		return nil, fmt.Errorf("controller.quorum.voters %q: %w", s, err)
	}
	return out, nil
}

func checkVoters(vs []Voter) error {
	if len(vs) == 0 {
		return errors.New("no voters")
	}
	for i, v := range vs {
		if v.ID < 0 || v.Addr == "" {
			return fmt.Errorf("voter %d at %q", v.ID, v.Addr)
		}
		for _, w := range vs[:i] {
			if w.ID == v.ID || w.Addr == v.Addr {
				return fmt.Errorf("voters %d@%s and %d@%s: ids and addresses must be unique", w.ID, w.Addr, v.ID, v.Addr)
			}
		}
	}
	return nil
}

// NodeConfig configures OpenNode.
type NodeConfig struct {
	NodeID metadata.BrokerID
	// Dir holds the node's Raft state: raft.db (bolt: log and votes) and
	// snapshots/. Created if missing. One process at a time: a second
	// OpenNode on it fails.
	Dir string
	// Voters is the static voter set, the same on every node: 1, 3 or 5
	// controllers (an even count tolerates no more failures than the odd
	// count below it).
	Voters []Voter
	// Voter: this node is one of Voters (process role controller).
	// Otherwise it is a non-voting follower (a broker-only node): it
	// receives the log once the leader adds it (AddNonvoter), never votes
	// and never leads.
	Voter bool
	// Transport carries Raft's RPCs: NewNetworkTransport over a Mux in
	// production, raft.NewInmemTransport in tests. OpenNode takes it over:
	// Close closes it, and so does OpenNode when it fails.
	Transport raft.Transport
	// Logger receives the node's lines and raft's (raft's routine info
	// lines at debug). Nil means slog.Default().
	Logger *slog.Logger
	Tuning
}

// Tuning holds the Raft timings and snapshot policy. A zero field takes
// its default (DefaultTuning).
type Tuning struct {
	// HeartbeatTimeout: a follower that hears nothing from the leader for
	// this long (randomized up to twice) starts an election. The leader
	// sends heartbeats ten times as often.
	HeartbeatTimeout time.Duration
	// ElectionTimeout: a candidate that wins no election in this long
	// (randomized up to twice) tries again. At least HeartbeatTimeout.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout: a leader that has not reached a quorum for this
	// long steps down. At most HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout: with nothing new to send, the leader still tells
	// followers the commit index this often (randomized up to twice), which
	// bounds how late a follower applies a committed entry.
	CommitTimeout time.Duration
	// SnapshotThreshold: a snapshot is taken once this many entries were
	// applied since the last one, checked every SnapshotInterval
	// (randomized up to twice).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	// TrailingLogs: entries kept in the log behind a snapshot, so that a
	// follower that lags by fewer catches up from the log rather than by
	// a snapshot install.
	TrailingLogs uint64
	// SnapshotsRetained: snapshot files kept on disk (the newest ones).
	SnapshotsRetained int
}

// DefaultTuning: timings for 127.0.0.1 and for cloud VMs in one region
// (round trips of a few milliseconds). A dead leader is noticed after
// 500–1000 ms (ten missed heartbeats at least) and an election takes a
// round trip or two, which keeps controller failover near one second (the
// target is a p50 of 2 s from kill -9 to the next committed change)
// while a pause well beyond any GC or network hiccup is needed to cause a
// needless election. Metadata batches are small and few (registrations,
// fencing, topic and ISR changes; heartbeats are not logged), so a
// snapshot every 4096 entries, with as many kept behind it, bounds both the
// replay at restart and the bolt file.
func DefaultTuning() Tuning {
	return Tuning{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		SnapshotThreshold:  4096,
		SnapshotInterval:   30 * time.Second,
		TrailingLogs:       4096,
		SnapshotsRetained:  2,
	}
}

func (t Tuning) withDefaults() Tuning {
	d := DefaultTuning()
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&t.HeartbeatTimeout, d.HeartbeatTimeout)
	// The defaults' ratios hold for a heartbeat timeout set alone.
	set(&t.ElectionTimeout, t.HeartbeatTimeout)
	set(&t.LeaderLeaseTimeout, t.HeartbeatTimeout/2)
	set(&t.CommitTimeout, d.CommitTimeout)
	set(&t.SnapshotInterval, d.SnapshotInterval)
	if t.SnapshotThreshold == 0 {
		t.SnapshotThreshold = d.SnapshotThreshold
	}
	if t.TrailingLogs == 0 {
		t.TrailingLogs = d.TrailingLogs
	}
	if t.SnapshotsRetained <= 0 {
		t.SnapshotsRetained = d.SnapshotsRetained
	}
	return t
}

// ErrNotLeader: the operation needs the active controller (the Raft
// leader) and this node is not it. Errors that wrap it are
// *NotLeaderError, which names the leader when one is known
// [NOT_CONTROLLER].
var ErrNotLeader = errors.New("controller: not the active controller")

// ErrLeadershipLost: this node lost the leadership after a proposed batch
// entered its log and before the batch was known to be committed. The
// batch may or may not be committed (a later Image tells). Errors that
// wrap it also wrap a *NotLeaderError [NOT_CONTROLLER].
var ErrLeadershipLost = errors.New("controller: leadership lost before the batch was known to be committed")

// ErrClosed: the node is closed or closing; a batch in flight may or
// may not be committed [NOT_CONTROLLER].
var ErrClosed = errors.New("controller: node closed")

// NotLeaderError is ErrNotLeader with the leader this node knows of.
type NotLeaderError struct {
	Leader metadata.BrokerID // metadata.NoLeader when none is known
	Addr   string            // the leader's Raft address; "" when none is known
}

func (e *NotLeaderError) Error() string {
	if e.Leader == metadata.NoLeader {
		return ErrNotLeader.Error() + " (no leader known)"
	}
	return fmt.Sprintf("%s (the leader is node %d at %s)", ErrNotLeader, e.Leader, e.Addr)
}

func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// Node is one member of the controller's Raft group: a voter or a
// non-voting follower. Every node applies the same committed batches in
// the same order and so holds the same Image at the same offset.
//
// All methods may be called from any goroutine. Image, AppliedOffset,
// Changed, Leader and IsLeader are cheap (no Raft round trip).
type Node struct {
	id     metadata.BrokerID
	voters []Voter
	log    *slog.Logger
	raft   *raft.Raft
	fsm    *fsm
	store  *raftboltdb.BoltStore

	closeOnce sync.Once
	closeErr  error
}

// OpenNode opens (or creates) the node's state in cfg.Dir and starts it.
// A voter with no stored state bootstraps the group with the full voter
// list; every voter does the same and Raft keeps the first configuration
// entry, so voters may start in any order. A non-voter with no stored
// state waits for the leader to add it. A node with stored state recovers
// from its latest snapshot and log; the stored configuration then wins
// over cfg.Voters (a difference is logged).
func OpenNode(cfg NodeConfig) (n *Node, err error) {
	if cfg.Transport == nil {
		return nil, errors.New("controller: open node: no transport")
	}
	trans := cfg.Transport
	defer func() {
		if err != nil {
			if c, ok := trans.(raft.WithClose); ok {
				_ = c.Close()
			}
		}
	}()
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("node", cfg.NodeID)
	if err := checkVoters(cfg.Voters); err != nil {
		return nil, fmt.Errorf("controller: open node %d: %w", cfg.NodeID, err)
	}
	isVoter := slices.ContainsFunc(cfg.Voters, func(v Voter) bool { return v.ID == cfg.NodeID })
	switch {
	case cfg.NodeID < 0:
		return nil, fmt.Errorf("controller: open node: node id %d", cfg.NodeID)
	case cfg.Voter && !isVoter:
		return nil, fmt.Errorf("controller: open node %d: a controller must be one of the voters %s", cfg.NodeID, FormatVoters(cfg.Voters))
	case !cfg.Voter && isVoter:
		return nil, fmt.Errorf("controller: open node %d: it is one of the voters %s but not a controller", cfg.NodeID, FormatVoters(cfg.Voters))
	case cfg.Dir == "":
		return nil, fmt.Errorf("controller: open node %d: no directory", cfg.NodeID)
	}
	if len(cfg.Voters)%2 == 0 {
		log.Warn("controller: an even number of voters tolerates no more failures than one voter less",
			"voters", FormatVoters(cfg.Voters))
	}
	tun := cfg.Tuning.withDefaults()

	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("controller: open node %d: %w", cfg.NodeID, err)
	}
	dbPath := filepath.Join(cfg.Dir, "raft.db")
	// bolt locks the file; without a timeout a second process would wait
	// for the lock forever.
	store, err := raftboltdb.New(raftboltdb.Options{Path: dbPath, BoltOptions: &bbolt.Options{Timeout: time.Second}})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			err = fmt.Errorf("%s is locked by another process: %w", dbPath, err)
		}
		return nil, fmt.Errorf("controller: open node %d: raft log: %w", cfg.NodeID, err)
	}
	defer func() {
		if err != nil {
			_ = store.Close()
		}
	}()
	hlog := newHCLogger(log, "raft")
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, tun.SnapshotsRetained, hlog.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("controller: open node %d: snapshots: %w", cfg.NodeID, err)
	}
	logs, err := raft.NewLogCache(512, store)
	if err != nil {
		return nil, fmt.Errorf("controller: open node %d: %w", cfg.NodeID, err)
	}

	rc := raft.DefaultConfig()
	rc.LocalID = serverID(cfg.NodeID)
	rc.Logger = hlog
	rc.HeartbeatTimeout = tun.HeartbeatTimeout
	rc.ElectionTimeout = tun.ElectionTimeout
	rc.LeaderLeaseTimeout = tun.LeaderLeaseTimeout
	rc.CommitTimeout = tun.CommitTimeout
	rc.SnapshotThreshold = tun.SnapshotThreshold
	rc.SnapshotInterval = tun.SnapshotInterval
	rc.TrailingLogs = tun.TrailingLogs
	rc.NoLegacyTelemetry = true
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("controller: open node %d: tuning: %w", cfg.NodeID, err)
	}

	hasState, err := raft.HasExistingState(logs, store, snaps)
	if err != nil {
		return nil, fmt.Errorf("controller: open node %d: %w", cfg.NodeID, err)
	}
	if !hasState && cfg.Voter {
		var c raft.Configuration
		for _, v := range cfg.Voters {
			c.Servers = append(c.Servers, raft.Server{Suffrage: raft.Voter, ID: serverID(v.ID), Address: raft.ServerAddress(v.Addr)})
		}
		if err := raft.BootstrapCluster(rc, logs, store, snaps, trans, c); err != nil {
			return nil, fmt.Errorf("controller: open node %d: bootstrap: %w", cfg.NodeID, err)
		}
		log.Info("controller: new quorum state bootstrapped", "voters", FormatVoters(cfg.Voters), "dir", cfg.Dir)
	}

	f := newFSM(log)
	r, err := raft.NewRaft(rc, f, logs, store, snaps, trans)
	if err != nil {
		return nil, fmt.Errorf("controller: open node %d: %w", cfg.NodeID, err)
	}
	n = &Node{id: cfg.NodeID, voters: slices.Clone(cfg.Voters), log: log, raft: r, fsm: f, store: store}
	if hasState {
		n.checkStoredVoters()
	}
	log.Info("controller: node started", "voter", cfg.Voter, "dir", cfg.Dir, "recovered", hasState,
		"offset", f.image.Load().Offset(), "heartbeatTimeout", tun.HeartbeatTimeout, "snapshotThreshold", tun.SnapshotThreshold)
	return n, nil
}

// checkStoredVoters logs a stored voter set that differs from the
// configured one (the stored one is used).
func (n *Node) checkStoredVoters() {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	var stored []string
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			stored = append(stored, fmt.Sprintf("%s@%s", s.ID, s.Address))
		}
	}
	slices.Sort(stored)
	configured := strings.Split(FormatVoters(n.voters), ",")
	slices.Sort(configured)
	if !slices.Equal(stored, configured) {
		n.log.Warn("controller: the voters stored in the Raft log differ from controller.quorum.voters; the stored ones are used",
			"stored", strings.Join(stored, ","), "configured", FormatVoters(n.voters))
	}
}

// ID is this node's id.
func (n *Node) ID() metadata.BrokerID { return n.id }

// Image is the latest applied image. Never nil; metadata.Empty() before
// the first batch.
func (n *Node) Image() *metadata.Image { return n.fsm.image.Load() }

// AppliedOffset is the Raft index of the last entry the FSM applied. It
// may be beyond Image().Offset(): a refused batch or a configuration
// entry moves it without changing the image. Raft's own no-op entries
// (one per new leader) are not seen by the FSM: it passes them with the
// next entry. After a snapshot is restored it is the snapshot image's
// offset until the next entry.
func (n *Node) AppliedOffset() int64 { return n.fsm.applied.Load() }

// Changed returns a channel that is closed the next time the image or
// the applied offset changes, and at Close. Call it before checking the
// condition you wait for, then wait on the channel (and your context).
func (n *Node) Changed() <-chan struct{} { return n.fsm.changed() }

// Leader returns the current leader as this node knows it; ok is false
// when it knows none (an election is under way, or a non-voter not yet
// added). The address is the leader's entry in the voter set.
func (n *Node) Leader() (id metadata.BrokerID, addr string, ok bool) {
	raftAddr, sid := n.raft.LeaderWithID()
	if sid == "" {
		return metadata.NoLeader, "", false
	}
	v, err := strconv.ParseInt(string(sid), 10, 32)
	if err != nil {
		return metadata.NoLeader, "", false
	}
	id = metadata.BrokerID(v)
	for _, voter := range n.voters {
		if voter.ID == id {
			return id, voter.Addr, true
		}
	}
	return id, string(raftAddr), true
}

// IsLeader reports whether this node is the leader (the active
// controller) as far as it knows; a leader cut off from the quorum keeps
// believing so for up to LeaderLeaseTimeout, and Propose then fails.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// LeaderChanges delivers true when this node becomes the leader and false
// when it stops being it. One reader only. A value the reader has not
// taken yet is replaced by the next, so the reader sees the latest state,
// not every transition: two trues in a row mean the leadership was lost
// and won again in between. On true, call Barrier before deciding from the
// Image. A non-voter never gets true. The channel is never closed: stop
// reading at Close.
func (n *Node) LeaderChanges() <-chan bool { return n.raft.LeaderCh() }

// Propose appends batch to the log, waits until it is committed and
// applied by this node's FSM, and returns its offset (the Raft index) and
// the image after it. Only the leader proposes: elsewhere it returns a
// *NotLeaderError (errors.Is ErrNotLeader) naming the leader.
//
// A batch the FSM refuses (a decode error or an invariant Image.Apply
// keeps; the error wraps metadata.ErrRefused) is nevertheless in the log
// at offset: every node refused it alike and no image changed. The
// controller proposes only batches it checked against the image, so a
// refusal means a bug or a race with another batch.
//
// An error wrapping ErrLeadershipLost, ErrClosed or ctx's error after the
// batch entered the log leaves the outcome unknown: the batch may still
// be committed by the next leader. ctx bounds only the wait.
func (n *Node) Propose(ctx context.Context, batch []metadata.Record) (offset int64, im *metadata.Image, err error) {
	if len(batch) == 0 {
		return 0, nil, errors.New("controller: propose: empty batch")
	}
	data, err := metadata.EncodeBatch(batch)
	if err != nil {
		return 0, nil, fmt.Errorf("controller: propose: %w", err)
	}
	if !n.IsLeader() {
		return 0, nil, n.notLeader()
	}
	f := n.raft.Apply(data, timeoutOf(ctx))
	if err := n.wait(ctx, f); err != nil {
		return 0, nil, fmt.Errorf("controller: propose: %w", err)
	}
	offset = int64(f.Index())
	res, ok := f.Response().(applyResult)
	if !ok {
		return offset, nil, fmt.Errorf("controller: propose: unexpected apply response %T", f.Response())
	}
	if res.err != nil {
		return offset, nil, fmt.Errorf("controller: propose: %w", res.err)
	}
	return offset, res.im, nil
}

// Barrier waits until every entry committed before it is applied to this
// node's image; only the leader can. A new leader calls it before deciding
// anything from its Image.
func (n *Node) Barrier(ctx context.Context) error {
	if !n.IsLeader() {
		return n.notLeader()
	}
	if err := n.wait(ctx, n.raft.Barrier(timeoutOf(ctx))); err != nil {
		return fmt.Errorf("controller: barrier: %w", err)
	}
	return nil
}

// AddNonvoter adds (or re-addresses) a non-voting follower: a broker-only
// node that receives the log at addr. Leader only. The voters are static
// (controller.quorum.voters) and cannot be added this way.
func (n *Node) AddNonvoter(ctx context.Context, id metadata.BrokerID, addr string) error {
	if slices.ContainsFunc(n.voters, func(v Voter) bool { return v.ID == id }) {
		return fmt.Errorf("controller: add non-voter %d: it is a voter", id)
	}
	if id < 0 || addr == "" {
		return fmt.Errorf("controller: add non-voter %d at %q", id, addr)
	}
	if !n.IsLeader() {
		return n.notLeader()
	}
	if err := n.wait(ctx, n.raft.AddNonvoter(serverID(id), raft.ServerAddress(addr), 0, timeoutOf(ctx))); err != nil {
		return fmt.Errorf("controller: add non-voter %d at %s: %w", id, addr, err)
	}
	return nil
}

// RemoveServer removes a non-voting follower (a broker decommissioned):
// it stops receiving the log (and its Raft stops if it learns of its
// removal) but keeps its last Image until it is closed. Leader only; the
// voters are static and cannot be removed this way.
func (n *Node) RemoveServer(ctx context.Context, id metadata.BrokerID) error {
	if slices.ContainsFunc(n.voters, func(v Voter) bool { return v.ID == id }) {
		return fmt.Errorf("controller: remove server %d: it is a voter", id)
	}
	if !n.IsLeader() {
		return n.notLeader()
	}
	if err := n.wait(ctx, n.raft.RemoveServer(serverID(id), 0, timeoutOf(ctx))); err != nil {
		return fmt.Errorf("controller: remove server %d: %w", id, err)
	}
	return nil
}

// Close stops the node: a leader first hands the leadership to another
// voter (bounded by the election timeout; skipped when there is none) so
// that the quorum need not wait out a heartbeat timeout, then Raft stops,
// the transport and the log store close, and Changed channels are closed.
// Idempotent; later calls return the first one's error.
func (n *Node) Close() error { return n.close(true) }

// close is Close; without transfer it stops as abruptly as Raft allows
// (tests use it for a crash).
func (n *Node) close(transfer bool) error {
	n.closeOnce.Do(func() {
		if transfer && n.IsLeader() && n.otherVoters() {
			if err := n.raft.LeadershipTransfer().Error(); err != nil {
				n.log.Warn("controller: leadership transfer before shutdown failed; the others will elect a leader after the heartbeat timeout", "err", err)
			} else {
				n.log.Info("controller: leadership handed over before shutdown")
			}
		}
		var errs []error
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raft log: %w", err))
		}
		n.fsm.close()
		if err := errors.Join(errs...); err != nil {
			n.closeErr = fmt.Errorf("controller: close node %d: %w", n.id, err)
		}
		n.log.Info("controller: node stopped", "offset", n.AppliedOffset())
	})
	return n.closeErr
}

// otherVoters reports whether the configuration has a voter besides this
// node (a leadership transfer needs one).
func (n *Node) otherVoters() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	return slices.ContainsFunc(f.Configuration().Servers, func(s raft.Server) bool {
		return s.Suffrage == raft.Voter && s.ID != serverID(n.id)
	})
}

func (n *Node) notLeader() *NotLeaderError {
	id, addr, _ := n.Leader()
	return &NotLeaderError{Leader: id, Addr: addr}
}

// wait waits for f or ctx, translating raft's errors into this package's.
// When ctx ends first, f is left to complete on its own.
func (n *Node) wait(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		return fmt.Errorf("gave up waiting (the change may still take effect): %w", ctx.Err())
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return n.notLeader()
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
		return fmt.Errorf("%w: %w", ErrLeadershipLost, n.notLeader())
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
	}
	return err
}

// timeoutOf turns ctx's deadline into raft's enqueue timeout (0: none).
func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Nanosecond)
	}
	return 0
}

func serverID(id metadata.BrokerID) raft.ServerID {
	return raft.ServerID(strconv.Itoa(int(id)))
}

// FormatVoters renders voters as controller.quorum.voters
// (1@host:port,2@host:port), the inverse of ParseVoters.
func FormatVoters(vs []Voter) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%d@%s", v.ID, v.Addr)
	}
	return strings.Join(parts, ",")
}
