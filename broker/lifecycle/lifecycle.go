package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/controller"
	"github.com/stratalog/strata/controller/metadata"
	"github.com/stratalog/strata/internal/backoff"
)

// Config configures a Manager.
type Config struct {
	NodeID    metadata.BrokerID
	ClusterID string // the cluster this broker belongs to; "" accepts the controller's
	Listeners []metadata.Endpoint
	Rack      string // broker.rack; "" for none
	// Node is this process's member of the metadata quorum (a voter or a
	// non-voting follower): it tells the active controller's address and
	// the offset this broker has applied.
	Node *controller.Node
	// HeartbeatInterval is broker.heartbeat.interval.ms (2 s, as Kafka);
	// it must be well inside the controller's session timeout (9 s).
	HeartbeatInterval time.Duration
	// RequestTimeout bounds one request to the controller (default 15 s,
	// beyond the controller's 10 s commit bound).
	RequestTimeout time.Duration
	// ClientOpts are extra options for the client to the controller (TLS,
	// SASL).
	ClientOpts []kgo.Opt
	Logger     *slog.Logger
}

// DefaultHeartbeatInterval is Kafka's broker.heartbeat.interval.ms.
const DefaultHeartbeatInterval = 2 * time.Second

const defaultRequestTimeout = 15 * time.Second

// State is what the controller last said of this broker.
type State struct {
	Epoch    int64 // 0 while not registered
	Fenced   bool  // fenced: leads nothing, takes no new replicas
	CaughtUp bool  // it had applied its registration at the last heartbeat
	// InControlledShutdown: leadership is moving away; ShutdownReady: the
	// controller let it go (Shutdown returns).
	InControlledShutdown, ShutdownReady bool
}

// Manager runs a broker's registration and heartbeats.
type Manager struct {
	cfg         Config
	log         *slog.Logger
	incarnation metadata.UUID
	stop        context.CancelFunc
	done        chan struct{}
	wake        chan struct{} // buffered(1): heartbeat now

	mu struct {
		sync.Mutex
		state        State
		changed      chan struct{} // closed (and replaced) when state changes
		wantShutdown bool
	}
}

// Start begins registering; the Manager works until Close.
func Start(cfg Config) (*Manager, error) {
	if cfg.Node == nil || len(cfg.Listeners) == 0 {
		return nil, errors.New("lifecycle: a node and at least one listener are needed")
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = defaultRequestTimeout
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, incarnation: metadata.RandomUUID(), done: make(chan struct{}), wake: make(chan struct{}, 1)}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.log = m.log.With("node_id", cfg.NodeID)
	m.mu.changed = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go m.run(ctx)
	return m, nil
}

// State returns the current state.
func (m *Manager) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.state
}

// Changed returns a channel closed at the next state change.
func (m *Manager) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.changed
}

// WaitUnfenced waits until the broker is registered and unfenced.
func (m *Manager) WaitUnfenced(ctx context.Context) error {
	return m.wait(ctx, func(s State) bool { return s.Epoch > 0 && !s.Fenced })
}

// Shutdown asks for a controlled shutdown and waits until the controller
// lets the broker go (its leaderships moved and every other broker knows)
// or ctx ends. Heartbeats go on until Close.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.mu.wantShutdown = true
	m.mu.Unlock()
	m.poke()
	return m.wait(ctx, func(s State) bool { return s.ShutdownReady })
}

// Close stops heartbeating and closes the client; the controller then
// fences the broker as gone (if it was not already).
func (m *Manager) Close() {
	m.stop()
	<-m.done
}

func (m *Manager) wait(ctx context.Context, ok func(State) bool) error {
	for {
		ch := m.Changed()
		if s := m.State(); ok(s) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-m.done:
			return errors.New("lifecycle: closed")
		}
	}
}

func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) setState(s State) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s == m.mu.state {
		return
	}
	prev := m.mu.state
	m.mu.state = s
	close(m.mu.changed)
	m.mu.changed = make(chan struct{})
	if prev.Fenced != s.Fenced || prev.Epoch != s.Epoch || prev.InControlledShutdown != s.InControlledShutdown {
		m.log.Info("broker state", "epoch", s.Epoch, "fenced", s.Fenced, "caught_up", s.CaughtUp,
			"controlled_shutdown", s.InControlledShutdown, "may_stop", s.ShutdownReady)
	}
}

// controllerClient is a client to one controller address.
type controllerClient struct {
	addr string
	cl   *kgo.Client
}

func (c *controllerClient) close() {
	if c != nil && c.cl != nil {
		c.cl.Close()
	}
}

// run is the Manager's goroutine.
func (m *Manager) run(ctx context.Context) {
	defer close(m.done)
	var cc *controllerClient
	defer func() { cc.close() }()
	retry := backoff.Backoff{Min: 100 * time.Millisecond, Max: m.cfg.HeartbeatInterval}
	for {
		wait, err := m.step(ctx, &cc)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			wait = retry.Next()
			m.log.Debug("controller request failed; retrying", "err", err, "backoff", wait)
		} else {
			retry.Reset()
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-m.wake:
		case <-m.applied(m.State()):
		case <-timer.C:
		}
		timer.Stop()
	}
}

// applied returns a channel that is closed when the node applies more of
// the log, while that is what unfencing waits for; otherwise nil.
func (m *Manager) applied(s State) <-chan struct{} {
	if s.Epoch > 0 && s.Fenced && !s.CaughtUp {
		return m.cfg.Node.Changed()
	}
	return nil
}

// step sends one registration or heartbeat to the active controller and
// returns how long to wait before the next.
func (m *Manager) step(ctx context.Context, cc **controllerClient) (time.Duration, error) {
	_, addr, ok := m.cfg.Node.Leader()
	if !ok {
		return 0, errors.New("no active controller known")
	}
	if *cc == nil || (*cc).addr != addr {
		(*cc).close()
		opts := append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID(fmt.Sprintf("strata-broker-%d", m.cfg.NodeID)),
			kgo.DialTimeout(5 * time.Second)}, m.cfg.ClientOpts...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			*cc = nil
			return 0, fmt.Errorf("client to controller %s: %w", addr, err)
		}
		*cc = &controllerClient{addr: addr, cl: cl}
	}
	rctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	s := m.State()
	if s.Epoch == 0 {
		return m.register(rctx, *cc)
	}
	return m.heartbeat(rctx, *cc, s)
}

func (m *Manager) request(ctx context.Context, cc *controllerClient, req kmsg.Request) (kmsg.Response, error) {
	seeds := cc.cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, errors.New("no seed broker")
	}
	resp, err := seeds[0].RetriableRequest(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("controller %s: %w", cc.addr, err)
	}
	return resp, nil
}

func (m *Manager) register(ctx context.Context, cc *controllerClient) (time.Duration, error) {
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID, req.ClusterID, req.IncarnationID = int32(m.cfg.NodeID), m.cfg.ClusterID, m.incarnation
	if m.cfg.Rack != "" {
		req.Rack = &m.cfg.Rack
	}
	for _, l := range m.cfg.Listeners {
		rl := kmsg.NewBrokerRegistrationRequestListener()
		rl.Name, rl.Host, rl.Port, rl.SecurityProtocol = l.Name, l.Host, uint16(l.Port), l.SecurityProtocol
		req.Listeners = append(req.Listeners, rl)
	}
	raw, err := m.request(ctx, cc, req)
	if err != nil {
		return 0, err
	}
	resp := raw.(*kmsg.BrokerRegistrationResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		if errors.Is(err, kerr.DuplicateBrokerRegistration) {
			// The previous process's session is still valid: it ends at
			// the session timeout (or at once, once its connection is
			// seen closed).
			m.log.Info("waiting for the previous incarnation's session to end", "controller", cc.addr)
		} else if !errors.Is(err, kerr.NotController) {
			m.log.Warn("broker registration refused", "controller", cc.addr, "err", err)
		}
		return 0, fmt.Errorf("registration: %w", err)
	}
	m.setState(State{Epoch: resp.BrokerEpoch, Fenced: true})
	m.log.Info("broker registered", "epoch", resp.BrokerEpoch, "incarnation", m.incarnation, "controller", cc.addr)
	return 0, nil // heartbeat at once: unfencing waits for it
}

func (m *Manager) heartbeat(ctx context.Context, cc *controllerClient, s State) (time.Duration, error) {
	m.mu.Lock()
	wantShutdown := m.mu.wantShutdown
	m.mu.Unlock()
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch = int32(m.cfg.NodeID), s.Epoch
	req.CurrentMetadataOffset = m.cfg.Node.AppliedOffset()
	req.WantShutdown = wantShutdown
	raw, err := m.request(ctx, cc, req)
	if err != nil {
		return 0, err
	}
	resp := raw.(*kmsg.BrokerHeartbeatResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		if errors.Is(err, kerr.StaleBrokerEpoch) {
			// The controller no longer knows this epoch: register again
			// (the same incarnation gets its current epoch back).
			m.log.Warn("the controller does not know this broker's epoch: registering again", "epoch", s.Epoch, "controller", cc.addr)
			m.setState(State{})
			return 0, nil
		}
		return 0, fmt.Errorf("heartbeat: %w", err)
	}
	next := State{Epoch: s.Epoch, Fenced: resp.IsFenced, CaughtUp: resp.IsCaughtUp, ShutdownReady: resp.ShouldShutdown,
		InControlledShutdown: wantShutdown && !resp.IsFenced && !resp.ShouldShutdown}
	m.setState(next)
	switch {
	case wantShutdown && !next.ShutdownReady:
		return min(m.cfg.HeartbeatInterval, 100*time.Millisecond), nil // the moves are quick: ask again soon
	case next.Fenced && !next.CaughtUp && m.cfg.Node.AppliedOffset() >= s.Epoch:
		return 0, nil // caught up since this heartbeat left: the next one unfences
	}
	return m.cfg.HeartbeatInterval, nil
}
