package controller

// The Driver: the goroutine and I/O around the Machine. It follows the
// Node's leadership, builds a Machine when this node becomes the active
// controller, serializes decisions, proposes their batches and ticks.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/stratalog/strata/controller/metadata"
	"github.com/stratalog/strata/internal/backoff"
)

// DriverConfig configures a Driver.
type DriverConfig struct {
	Node    *Node
	Machine MachineConfig
	// Bootstrap returns the first batch of a new cluster: a
	// metadata.Bootstrap record naming the cluster id, then whatever an
	// upgrade adopts (the topics of a single-node data directory). The
	// active controller calls it when the committed image has no cluster
	// id yet; it may be called again if that batch's fate was unknown, so
	// it must return the same cluster id each time.
	Bootstrap func(ctx context.Context) ([]metadata.Record, error)
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// ProposeTimeout bounds the wait for one batch to commit; 0 means 10 s.
	// A batch not known to be committed by then retires the Machine.
	ProposeTimeout time.Duration
	Logger         *slog.Logger
}

// defaultProposeTimeout is far beyond a healthy commit (a round trip and
// an fsync) and well inside a client's request timeout (30 s).
const defaultProposeTimeout = 10 * time.Second

// maxDriverSleep bounds the Run loop's sleep, so a missed leadership
// notification is noticed within it.
const maxDriverSleep = 250 * time.Millisecond

// Driver runs the active controller's Machine on a Node. Its decision
// methods may be called from any goroutine; they are serialized, and each
// returns once its batch is committed and applied (or refused, or its fate
// unknown). On a node that is not the active controller, or while a new
// one is catching up, they return a *NotLeaderError (NOT_CONTROLLER).
//
// The Machine lives from the moment this node, as leader, has applied
// everything committed before (Barrier) until the leadership is lost or a
// batch's fate is unknown; then the next Machine is built from the
// committed image, which restarts every broker's session.
type Driver struct {
	cfg  DriverConfig
	node *Node
	log  *slog.Logger
	now  func() time.Time
	wake chan struct{} // buffered(1): the Run loop should look again

	mu struct {
		sync.Mutex
		m *Machine // nil while not the active controller
	}
}

// NewDriver returns a Driver; Run makes it work.
func NewDriver(cfg DriverConfig) (*Driver, error) {
	if cfg.Node == nil {
		return nil, errors.New("controller: driver: no node")
	}
	if cfg.Bootstrap == nil {
		return nil, errors.New("controller: driver: no bootstrap")
	}
	if err := cfg.Machine.validate(); err != nil {
		return nil, fmt.Errorf("controller: machine config: %w", err)
	}
	if cfg.ProposeTimeout <= 0 {
		cfg.ProposeTimeout = defaultProposeTimeout
	}
	d := &Driver{cfg: cfg, node: cfg.Node, log: cfg.Logger, now: cfg.Now, wake: make(chan struct{}, 1)}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.now == nil {
		d.now = time.Now
	}
	return d, nil
}

// Run follows the node's leadership until ctx ends: it activates a
// Machine when the node leads (after Barrier, and Bootstrap on an empty
// log), retires it when the node stops leading, and ticks it when due.
// Run is the only reader of Node.LeaderChanges.
func (d *Driver) Run(ctx context.Context) {
	defer d.retire("stopping")
	retry := backoff.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		wait := maxDriverSleep
		switch leader, active := d.node.IsLeader(), d.Active(); {
		case leader && !active:
			if err := d.activate(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				wait = retry.Next()
				d.log.Warn("controller: cannot become active yet; retrying", "err", err, "backoff", wait)
			} else {
				retry.Reset()
				wait = 0
			}
		case !leader && active:
			d.retire("leadership lost")
		case active:
			wait = min(wait, d.tick(ctx))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-d.node.LeaderChanges():
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// Active reports whether this node is the active controller with a
// Machine ready to decide.
func (d *Driver) Active() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mu.m != nil
}

// activate makes this (leading) node the active controller: everything
// committed before is applied (Barrier), an empty cluster is
// bootstrapped, and a Machine starts from the committed image.
func (d *Driver) activate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.ProposeTimeout)
	defer cancel()
	if err := d.node.Barrier(ctx); err != nil {
		return err
	}
	im := d.node.Image()
	if im.ClusterID() == "" {
		recs, err := d.cfg.Bootstrap(ctx)
		if err != nil {
			return fmt.Errorf("controller: bootstrap: %w", err)
		}
		offset, next, err := d.node.Propose(ctx, recs)
		if err != nil {
			return fmt.Errorf("controller: bootstrap: %w", err)
		}
		im = next
		d.log.Info("controller: cluster bootstrapped", "cluster_id", im.ClusterID(), "offset", offset,
			"records", len(recs), "topics", len(im.Topics()))
	}
	m, err := NewMachine(d.cfg.Machine, im, d.now())
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.mu.m = m
	d.mu.Unlock()
	d.log.Info("controller: active", "node_id", d.node.ID(), "offset", im.Offset(), "brokers", len(im.Brokers()), "topics", len(im.Topics()))
	return nil
}

// retire drops the Machine, if any.
func (d *Driver) retire(why string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.retireLocked(why)
}

func (d *Driver) retireLocked(why string) {
	if d.mu.m == nil {
		return
	}
	d.mu.m = nil
	d.log.Info("controller: no longer active", "node_id", d.node.ID(), "reason", why)
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// tick runs the Machine's Tick when due and returns how long until the
// next one.
func (d *Driver) tick(ctx context.Context) time.Duration {
	res, _, _, err := decideFor(ctx, d, "tick", func(m *Machine, now time.Time) ([]metadata.Record, TickResult, error) {
		if now.Before(m.NextTick()) {
			return nil, TickResult{}, nil
		}
		return m.Tick(now)
	})
	if err != nil {
		if !errors.Is(err, ErrNotLeader) {
			d.log.Warn("controller: tick failed", "err", err)
		}
		return maxDriverSleep
	}
	if len(res.Fenced) > 0 {
		d.log.Warn("controller: brokers fenced: session expired", "brokers", res.Fenced, "session_timeout", d.cfg.Machine.SessionTimeout)
	}
	if res.Elected > 0 {
		d.log.Info("controller: periodic leader election", "moved", res.Elected, "more", res.More)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.m == nil {
		return maxDriverSleep
	}
	return max(d.mu.m.NextTick().Sub(d.now()), 0)
}

// decide runs one decision: fn asks the Machine (under the lock, with
// the time) and returns the records to write. With none, it returns the
// current image and offset -1. Otherwise the batch is proposed and,
// once committed, applied to the Machine; it returns the batch's offset
// and the image after it. A proposal that fails retires the Machine: its
// image may no longer be the committed one.
//
// The wait is not bounded by ctx's cancellation (a client that goes away
// must not leave a batch's fate unknown), only by ProposeTimeout.
func (d *Driver) decide(ctx context.Context, what string, fn func(m *Machine, now time.Time) ([]metadata.Record, error)) (int64, *metadata.Image, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.mu.m
	if m == nil {
		return -1, nil, d.node.notLeader()
	}
	recs, err := fn(m, d.now())
	if err != nil {
		return -1, nil, err
	}
	if len(recs) == 0 {
		return -1, m.Image(), nil
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.ProposeTimeout)
	offset, im, err := d.node.Propose(pctx, recs)
	cancel()
	if err != nil {
		if errors.Is(err, metadata.ErrRefused) {
			// The Machine checked the batch against its image: a refusal
			// means they disagree, a bug. Rebuild from the committed one.
			d.log.Error("controller: batch refused by the metadata image", "decision", what, "offset", offset, "err", err)
		}
		d.retireLocked(fmt.Sprintf("%s: %v", what, err))
		return -1, nil, err
	}
	m.Applied(im)
	return offset, im, nil
}

// decideFor is decide for a Machine call that also returns an answer.
func decideFor[R any](ctx context.Context, d *Driver, what string, fn func(m *Machine, now time.Time) ([]metadata.Record, R, error)) (R, int64, *metadata.Image, error) {
	var res R
	offset, im, err := d.decide(ctx, what, func(m *Machine, now time.Time) ([]metadata.Record, error) {
		recs, r, err := fn(m, now)
		res = r
		return recs, err
	})
	return res, offset, im, err
}

// RegisterBroker registers a broker incarnation and returns its epoch.
// Errors: see Machine.RegisterBroker, and *NotLeaderError.
func (d *Driver) RegisterBroker(ctx context.Context, req BrokerRegistration) (int64, error) {
	res, offset, im, err := decideFor(ctx, d, "register broker", func(m *Machine, now time.Time) ([]metadata.Record, RegisterResult, error) {
		return m.RegisterBroker(now, req)
	})
	if err != nil {
		return 0, err
	}
	if res.Epoch != EpochOfBatch {
		return res.Epoch, nil
	}
	b := im.Broker(req.ID)
	if b == nil || b.Epoch != offset {
		return 0, fmt.Errorf("controller: broker %d registered at offset %d but the image has %v", req.ID, offset, b)
	}
	d.log.Info("controller: broker registered", "broker", req.ID, "epoch", b.Epoch, "incarnation", req.Incarnation, "rack", req.Rack)
	return b.Epoch, nil
}

// Heartbeat refreshes a broker's session. Errors: see Machine.Heartbeat.
func (d *Driver) Heartbeat(ctx context.Context, req BrokerHeartbeat) (HeartbeatResult, error) {
	res, offset, _, err := decideFor(ctx, d, "broker heartbeat", func(m *Machine, now time.Time) ([]metadata.Record, HeartbeatResult, error) {
		return m.Heartbeat(now, req)
	})
	if err == nil && offset >= 0 {
		d.log.Info("controller: broker state changed", "broker", req.ID, "epoch", req.Epoch, "offset", offset,
			"fenced", res.Fenced, "controlled_shutdown", res.InControlledShutdown, "may_stop", res.ShouldShutdown)
	}
	return res, err
}

// BrokerGone fences a broker whose process is gone (its controller
// connection was reset). Errors: see Machine.BrokerGone.
func (d *Driver) BrokerGone(ctx context.Context, id metadata.BrokerID, epoch int64) error {
	offset, _, err := d.decide(ctx, "broker gone", func(m *Machine, now time.Time) ([]metadata.Record, error) {
		return m.BrokerGone(now, id, epoch)
	})
	if err == nil && offset >= 0 {
		d.log.Warn("controller: broker fenced: its controller connection closed", "broker", id, "epoch", epoch, "offset", offset)
	}
	return err
}

// AllocateProducerIDs gives a broker the next block of producer ids.
func (d *Driver) AllocateProducerIDs(ctx context.Context, id metadata.BrokerID, epoch int64) (ProducerIDBlock, error) {
	block, _, _, err := decideFor(ctx, d, "allocate producer ids", func(m *Machine, now time.Time) ([]metadata.Record, ProducerIDBlock, error) {
		return m.AllocateProducerIDs(now, id, epoch)
	})
	return block, err
}

// CreateTopics creates topics; per-topic errors are in the results.
func (d *Driver) CreateTopics(ctx context.Context, topics []NewTopic) ([]CreateTopicResult, error) {
	res, _, im, err := decideFor(ctx, d, "create topics", func(m *Machine, now time.Time) ([]metadata.Record, []CreateTopicResult, error) {
		return m.CreateTopics(now, topics)
	})
	for _, r := range res {
		if err == nil && r.Err == nil && !r.ID.IsZero() {
			d.log.Info("controller: topic created", "topic", r.Name, "id", r.ID, "partitions", r.NumPartitions,
				"replication_factor", r.ReplicationFactor, "offset", im.Offset())
		}
	}
	return res, err
}

// DeleteTopics deletes topics; per-topic errors are in the results.
func (d *Driver) DeleteTopics(ctx context.Context, refs []TopicRef) ([]DeleteTopicResult, error) {
	res, _, im, err := decideFor(ctx, d, "delete topics", func(m *Machine, now time.Time) ([]metadata.Record, []DeleteTopicResult, error) {
		return m.DeleteTopics(now, refs)
	})
	for _, r := range res {
		if err == nil && r.Err == nil {
			d.log.Info("controller: topic deleted", "topic", r.Name, "id", r.ID, "offset", im.Offset())
		}
	}
	return res, err
}

// CreatePartitions grows topics; per-topic errors are in the results.
func (d *Driver) CreatePartitions(ctx context.Context, reqs []NewPartitions) ([]TopicResult, error) {
	res, _, _, err := decideFor(ctx, d, "create partitions", func(m *Machine, now time.Time) ([]metadata.Record, []TopicResult, error) {
		return m.CreatePartitions(now, reqs)
	})
	return res, err
}

// AlterTopicConfigs changes topics' overrides; per-topic errors are in
// the results.
func (d *Driver) AlterTopicConfigs(ctx context.Context, reqs []TopicConfigChange) ([]TopicResult, error) {
	res, _, _, err := decideFor(ctx, d, "alter topic configs", func(m *Machine, now time.Time) ([]metadata.Record, []TopicResult, error) {
		return m.AlterTopicConfigs(now, reqs)
	})
	return res, err
}

// ElectPreferredLeaders moves leadership to preferred replicas; nil parts
// means every partition. Errors: see Machine.ElectPreferredLeaders.
func (d *Driver) ElectPreferredLeaders(ctx context.Context, parts []TopicPartitions) ([]ElectionResult, error) {
	res, _, _, err := decideFor(ctx, d, "elect preferred leaders", func(m *Machine, now time.Time) ([]metadata.Record, []ElectionResult, error) {
		return m.ElectPreferredLeaders(now, parts)
	})
	return res, err
}
