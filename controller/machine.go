package controller

// The Machine: the active controller's decision logic as a deterministic
// state machine. See the Machine type for its contract with the driver.
// This file: configuration, the broker lifecycle (registration,
// heartbeats, fencing, controlled shutdown), producer ids, elections, and
// the decision a batch is built in; machine_topics.go: the topic admin
// requests; placement.go: where new replicas go.

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/stratalog/strata/controller/metadata"
	"github.com/stratalog/strata/topicconfig"
)

// MachineConfig configures a Machine. Start from DefaultMachineConfig:
// NewMachine refuses invalid values rather than filling in defaults, so a
// false AutoLeaderRebalance or a zero Seed means what it says.
type MachineConfig struct {
	SessionTimeout               time.Duration // broker.session.timeout.ms (9 s): a broker not heard from for this long is fenced
	NumPartitions                int32         // num.partitions (1): CreateTopics with -1 partitions
	DefaultReplicationFactor     int16         // default.replication.factor (1): CreateTopics with replication factor -1
	AutoLeaderRebalance          bool          // auto.leader.rebalance.enable (true): move leadership back to preferred replicas
	LeaderImbalanceCheckInterval time.Duration // leader.imbalance.check.interval.seconds (300 s): how often Tick checks leaders
	ProducerIDBlockSize          int64         // producer ids per AllocateProducerIDs (1000, Kafka's fixed block)
	MaxBrokerPartitions          int           // max.broker.partitions (10000; 0 no limit): replicas one broker may hold
	// TopicDefaults is the base topic overrides are parsed onto for
	// validation: the cluster's broker-level topic defaults
	// (topicconfig.Default()).
	TopicDefaults topicconfig.Config
	// TopicConfigPolicy, if set, is asked after topicconfig.Parse accepts
	// a topic's new overrides (cur is the topic's current effective config,
	// nil for a new topic): the place for the broker's own rules, such as
	// refusing remote.storage.enable without an object store or turning
	// tiering off for a tiered topic. A *topicconfig.Error it returns is
	// answered as ErrInvalidConfig, anything else as ErrPolicyViolation.
	TopicConfigPolicy func(topic string, cur *topicconfig.Config, next topicconfig.Config, overrides map[string]string) error
	// NewTopicID returns a new topic id (metadata.RandomUUID by default).
	// The Machine skips the zero id and ids in use.
	NewTopicID func() metadata.UUID
	// Seed seeds placement's random source (a random seed by default), so
	// tests can reproduce a placement.
	Seed uint64
	// InProcess: the controller is reachable only from its own process (a
	// one-voter quorum with no controller port), so a broker that
	// registers a new incarnation is this process's broker after a
	// restart, and its previous incarnation is certainly gone: it is
	// replaced at once instead of after its session.
	InProcess bool
}

// DefaultMachineConfig returns Kafka's defaults, with a random Seed and a
// random NewTopicID.
func DefaultMachineConfig() MachineConfig {
	return MachineConfig{
		SessionTimeout:               9 * time.Second, // 9000 ms
		NumPartitions:                1,
		DefaultReplicationFactor:     1,
		AutoLeaderRebalance:          true,
		LeaderImbalanceCheckInterval: 300 * time.Second, // 5 min
		ProducerIDBlockSize:          1000,
		MaxBrokerPartitions:          10000,
		TopicDefaults:                topicconfig.Default(),
		NewTopicID:                   metadata.RandomUUID,
		Seed:                         rand.Uint64(),
	}
}

func (c MachineConfig) validate() error {
	switch {
	case c.SessionTimeout <= 0:
		return fmt.Errorf("broker.session.timeout.ms %v: must be positive", c.SessionTimeout)
	case c.NumPartitions < 1 || c.NumPartitions > MaxPartitionsPerTopic:
		return fmt.Errorf("num.partitions %d: must be between 1 and %d", c.NumPartitions, MaxPartitionsPerTopic)
	case c.DefaultReplicationFactor < 1:
		return fmt.Errorf("default.replication.factor %d: must be at least 1", c.DefaultReplicationFactor)
	case c.LeaderImbalanceCheckInterval <= 0:
		return fmt.Errorf("leader.imbalance.check.interval.seconds %v: must be positive", c.LeaderImbalanceCheckInterval)
	case c.ProducerIDBlockSize < 1 || c.ProducerIDBlockSize > metadata.MaxProducerIDBlock:
		return fmt.Errorf("producer id block size %d: must be between 1 and %d", c.ProducerIDBlockSize, metadata.MaxProducerIDBlock)
	case c.MaxBrokerPartitions < 0:
		return fmt.Errorf("max.broker.partitions %d: must be 0 (no limit) or positive", c.MaxBrokerPartitions)
	case c.NewTopicID == nil:
		return errors.New("no NewTopicID")
	}
	return nil
}

// Limits on what one batch may hold (metadata.MaxBatchBytes bounds its
// encoding).
const (
	// MaxPartitionsPerTopic bounds CreateTopics and CreatePartitions
	// (Strata's limit before the cluster, kept): INVALID_PARTITIONS beyond.
	MaxPartitionsPerTopic = 10000
	// maxCreateBatchBytes is the estimated encoding one CreateTopics or
	// CreatePartitions call may produce, half of metadata.MaxBatchBytes;
	// topics past it are refused with ErrPolicyViolation (as Kafka refuses
	// an "excessively large batch").
	maxCreateBatchBytes = metadata.MaxBatchBytes / 2
	// maxElectionsPerBatch bounds the leadership moves of one
	// ElectPreferredLeaders call (ErrPolicyViolation beyond, as Kafka's
	// 10000 records per operation) and, at a tenth, of one periodic
	// rebalance (Kafka's 1000 per imbalance check; Tick reports More).
	maxElectionsPerBatch = 10000
	maxRebalancePerTick  = 1000
)

// partitionBytes estimates the encoding of a new partition with rf
// replicas: the JSON field names and epochs (about 70 bytes), and the
// replica and ISR lists (up to 11 characters and a comma per id).
func partitionBytes(rf int) int { return 70 + 2*12*rf }

// EpochOfBatch is RegisterResult.Epoch when the returned batch registers a
// new incarnation: the broker's epoch is then the offset at which that
// batch commits, known only afterwards (Image.Broker(id).Epoch of the
// image given to Applied).
const EpochOfBatch int64 = -1

// Machine decides what the active controller writes. It takes requests (a
// broker registers, heartbeats or goes away; the clock ticks; admin
// requests) and returns the batch of metadata records to write, with a
// typed result or a sentinel error (errors.go).
//
// Contract with the driver:
//   - No I/O, no goroutines, no clock: every method takes now. Time only
//     measures broker sessions and the rebalance interval; a now earlier
//     than one already seen delays expiry, never hastens it.
//   - Not safe for concurrent use. Decisions are serialized: after a
//     method returns a non-empty batch, the driver writes it through Raft
//     and, once it is applied, calls Applied with the image after it;
//     until then every deciding method returns ErrBusy (a driver bug). The
//     Machine decides against the last applied image, so a batch is valid
//     exactly on the image it was decided on (Image.Apply never refuses
//     it), and results that name the future (a producer-id block, a topic
//     id) stay true once the batch commits.
//   - Results describe the state once the batch commits; the driver
//     answers the request only then (and, for RegisterBroker, reads the
//     new epoch from the image). A method that returns no records changed
//     nothing durable: its answer may go at once.
//   - If the batch's fate is unknown (leadership lost, a refusal, a
//     timeout), the Machine is done: a new active controller, or this one
//     again, builds a new Machine from the committed image, which gives
//     every broker a full session, as in Kafka. Liveness (each broker's
//     last heartbeat and metadata offset) lives only here, never in the log.
//   - Applied must also be called for batches the Machine did not decide
//     (a Bootstrap the node writes), so the Machine's image is the last
//     one committed.
//
// Cost: there is no index by broker. Each broker a decision fences,
// unfences or moves away, each election pass, a heartbeat during a
// controlled shutdown (leadsAny) and a create call's first
// max.broker.partitions check scan every partition (O(P) each), so a Tick
// that fences k brokers costs O(k·P). Decisions are rare (heartbeats that
// change nothing do not scan) and this keeps them simple; an index by
// broker, kept beside the image, is the step if P grows large.
type Machine struct {
	cfg     MachineConfig
	im      *metadata.Image
	rng     *rand.Rand
	pending bool
	// latest is the latest now seen: the session start of a broker the
	// Machine learns of from a batch it did not decide.
	latest time.Time
	live   map[metadata.BrokerID]*liveness
	// shutdownOffset is, for each broker in controlled shutdown, the offset
	// of the batch that began it (which moved its leaderships away): it
	// may stop once every active broker has applied that batch.
	shutdownOffset map[metadata.BrokerID]int64
	nextRebalance  time.Time
}

// liveness is what the Machine knows of a broker's process.
type liveness struct {
	lastSeen       time.Time
	metadataOffset int64 // last reported in a heartbeat; -1 none yet
}

// NewMachine returns the Machine of a controller that became active at
// now, with im its committed image. Every registered broker's session
// starts at now; a broker already in controlled shutdown waits for every
// active broker to reach im's offset.
func NewMachine(cfg MachineConfig, im *metadata.Image, now time.Time) (*Machine, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("controller: machine config: %w", err)
	}
	if im == nil {
		return nil, errors.New("controller: machine: no image")
	}
	m := &Machine{
		cfg:            cfg,
		rng:            rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		latest:         now,
		live:           map[metadata.BrokerID]*liveness{},
		shutdownOffset: map[metadata.BrokerID]int64{},
		nextRebalance:  now.Add(cfg.LeaderImbalanceCheckInterval),
	}
	m.Applied(im)
	return m, nil
}

// Image is the last applied image, the one decisions are made against.
func (m *Machine) Image() *metadata.Image { return m.im }

// Pending reports whether a returned batch awaits Applied.
func (m *Machine) Pending() bool { return m.pending }

// Applied tells the Machine that im is the committed image: after the
// batch it returned last, or after a batch it did not decide. An image
// older than the last one is a driver bug and panics.
func (m *Machine) Applied(im *metadata.Image) {
	if m.im != nil && im.Offset() < m.im.Offset() {
		panic(fmt.Sprintf("controller: machine: image at offset %d applied after %d", im.Offset(), m.im.Offset()))
	}
	m.im = im
	m.pending = false
	for _, b := range im.Brokers() {
		if m.live[b.ID] == nil {
			m.live[b.ID] = &liveness{lastSeen: m.latest, metadataOffset: -1}
		}
		if b.ShuttingDown && !b.Fenced {
			if _, ok := m.shutdownOffset[b.ID]; !ok {
				m.shutdownOffset[b.ID] = im.Offset()
			}
		} else {
			delete(m.shutdownOffset, b.ID)
		}
	}
	for id := range m.live {
		if im.Broker(id) == nil {
			delete(m.live, id)
			delete(m.shutdownOffset, id)
		}
	}
}

// NextTick is the earliest time at which Tick may have something to do: a
// session that expires or the periodic leader check. The driver may tick
// more often.
func (m *Machine) NextTick() time.Time {
	next := m.nextRebalance
	for _, b := range m.im.Brokers() {
		if l := m.live[b.ID]; !b.Fenced && l != nil {
			if t := l.lastSeen.Add(m.cfg.SessionTimeout); t.Before(next) {
				next = t
			}
		}
	}
	return next
}

// begin starts a decision at now.
func (m *Machine) begin(now time.Time) (*decision, error) {
	if m.pending {
		return nil, ErrBusy
	}
	if now.After(m.latest) {
		m.latest = now
	}
	return newDecision(m.im), nil
}

// finish returns d's records and marks them in flight.
func (m *Machine) finish(d *decision) []metadata.Record {
	recs := d.records()
	if len(recs) > 0 {
		m.pending = true
	}
	return recs
}

// sessionValid reports whether b is unfenced and heard from within the
// session timeout.
func (m *Machine) sessionValid(b *metadata.Broker, now time.Time) bool {
	l := m.live[b.ID]
	return !b.Fenced && l != nil && now.Sub(l.lastSeen) < m.cfg.SessionTimeout
}

// ---- brokers ----

// BrokerRegistration is a BrokerRegistration request.
type BrokerRegistration struct {
	ID          metadata.BrokerID
	Incarnation metadata.UUID // new at every process start
	ClusterID   string        // checked against the image's when not ""
	Listeners   []metadata.Endpoint
	Rack        string
}

// RegisterResult answers a registration.
type RegisterResult struct {
	// Epoch is the broker's epoch, or EpochOfBatch when the returned batch
	// registers a new incarnation. A retried registration of the current
	// incarnation gets its epoch back and no batch.
	Epoch int64
}

// RegisterBroker registers a broker incarnation. A new incarnation starts
// fenced (it is unfenced by a heartbeat once it has caught up with the
// log); any leadership and ISR membership of the id's previous
// incarnation is given up in the same batch, as when a broker is fenced.
// The registration counts as the first heartbeat of the new session.
//
// Errors: ErrInvalidRegistration, ErrInconsistentClusterID,
// ErrDuplicateBrokerRegistration (the previous incarnation's session is
// still valid: it is unfenced and was heard from within the session
// timeout, as Kafka refuses it; not with InProcess), ErrBusy.
func (m *Machine) RegisterBroker(now time.Time, req BrokerRegistration) ([]metadata.Record, RegisterResult, error) {
	d, err := m.begin(now)
	if err != nil {
		return nil, RegisterResult{}, err
	}
	if err := checkRegistration(req); err != nil {
		return nil, RegisterResult{}, err
	}
	if req.ClusterID != "" && req.ClusterID != m.im.ClusterID() {
		return nil, RegisterResult{}, refuse(ErrInconsistentClusterID, "broker %d belongs to cluster %.100q; this is cluster %.100q", req.ID, req.ClusterID, m.im.ClusterID())
	}
	prev := m.im.Broker(req.ID)
	if prev != nil && prev.Incarnation == req.Incarnation {
		// A retry (its answer was lost): same process, same epoch.
		m.live[req.ID].lastSeen = now
		return nil, RegisterResult{Epoch: prev.Epoch}, nil
	}
	if prev != nil && !m.cfg.InProcess && m.sessionValid(prev, now) {
		return nil, RegisterResult{}, refuse(ErrDuplicateBrokerRegistration,
			"broker %d is registered by incarnation %s, whose session is still valid (heard from %v ago, session timeout %v)",
			req.ID, prev.Incarnation, now.Sub(m.live[req.ID].lastSeen), m.cfg.SessionTimeout)
	}
	d.add(&metadata.RegisterBroker{ID: req.ID, Incarnation: req.Incarnation, Listeners: slices.Clone(req.Listeners), Rack: req.Rack})
	if prev != nil {
		d.brokers[req.ID] = brokerState{registered: true, fenced: true}
		d.leave(req.ID)
	}
	m.live[req.ID] = &liveness{lastSeen: now, metadataOffset: -1}
	return m.finish(d), RegisterResult{Epoch: EpochOfBatch}, nil
}

func checkRegistration(req BrokerRegistration) error {
	switch {
	case req.ID < 0:
		return refuse(ErrInvalidRegistration, "broker id %d is negative", req.ID)
	case req.Incarnation.IsZero():
		return refuse(ErrInvalidRegistration, "broker %d registered without an incarnation id", req.ID)
	case len(req.Listeners) == 0:
		return refuse(ErrInvalidRegistration, "broker %d registered without listeners", req.ID)
	}
	for i, l := range req.Listeners {
		if l.Name == "" || l.Host == "" || l.Port <= 0 || l.Port > math.MaxUint16 {
			return refuse(ErrInvalidRegistration, "broker %d: listener %.100q at %.100q port %d", req.ID, l.Name, l.Host, l.Port)
		}
		if slices.ContainsFunc(req.Listeners[:i], func(o metadata.Endpoint) bool { return o.Name == l.Name }) {
			return refuse(ErrInvalidRegistration, "broker %d: listener %.100q given twice", req.ID, l.Name)
		}
	}
	return nil
}

// BrokerHeartbeat is a BrokerHeartbeat request.
type BrokerHeartbeat struct {
	ID    metadata.BrokerID
	Epoch int64
	// MetadataOffset is the offset of the last batch the broker has
	// applied.
	MetadataOffset int64
	WantFence      bool // the broker asks to be fenced
	WantShutdown   bool // the broker is stopping (SIGTERM): controlled shutdown
}

// HeartbeatResult answers a heartbeat: the broker's state once the
// returned batch (if any) commits.
type HeartbeatResult struct {
	CaughtUp             bool // MetadataOffset reached the broker's registration
	Fenced               bool
	InControlledShutdown bool
	ShouldShutdown       bool // the broker may exit now
}

// Heartbeat refreshes a broker's session and moves it between states, as
// Kafka's BrokerHeartbeatManager does:
//   - fenced: WantShutdown → ShouldShutdown at once; otherwise, once
//     MetadataOffset ≥ its epoch (it has applied its own registration) and
//     it does not WantFence, it is unfenced and takes the leadership of
//     every leaderless partition whose ISR holds it;
//   - unfenced: WantFence → fenced; WantShutdown → if it leads a
//     partition, controlled shutdown begins (it leaves every ISR it is
//     not the last member of, and each partition it leads gets another
//     ISR member as leader, or none), else it is fenced and may stop;
//   - in controlled shutdown: once it leads nothing and every active
//     broker (unfenced, not shutting down) has reported a MetadataOffset at
//     or past the batch that began the shutdown (so the new leaders know),
//     it is fenced and ShouldShutdown.
//
// Errors: ErrUnknownBroker, ErrStaleBrokerEpoch, ErrBusy.
func (m *Machine) Heartbeat(now time.Time, req BrokerHeartbeat) ([]metadata.Record, HeartbeatResult, error) {
	d, err := m.begin(now)
	if err != nil {
		return nil, HeartbeatResult{}, err
	}
	b, err := m.broker(req.ID, req.Epoch)
	if err != nil {
		return nil, HeartbeatResult{}, err
	}
	l := m.live[b.ID]
	l.lastSeen, l.metadataOffset = now, req.MetadataOffset
	res := HeartbeatResult{CaughtUp: req.MetadataOffset >= b.Epoch, Fenced: b.Fenced, InControlledShutdown: b.ShuttingDown && !b.Fenced}
	switch {
	case b.Fenced:
		switch {
		case req.WantShutdown:
			res.ShouldShutdown = true
		case !req.WantFence && res.CaughtUp:
			d.unfence(b)
			res.Fenced = false
		}
	case b.ShuttingDown:
		if m.leadsAny(b.ID) {
			d.leave(b.ID) // a Machine that took over mid-shutdown finishes the moves
			break
		}
		if m.shutdownOffset[b.ID] <= m.lowestActiveOffset() {
			d.fence(b)
			res = HeartbeatResult{CaughtUp: res.CaughtUp, Fenced: true, ShouldShutdown: true}
		}
	case req.WantFence:
		d.fence(b)
		res.Fenced, res.ShouldShutdown = true, req.WantShutdown
	case req.WantShutdown:
		if !m.leadsAny(b.ID) {
			d.fence(b)
			res.Fenced, res.ShouldShutdown = true, true
			break
		}
		d.changeBroker(b, false, true)
		d.leave(b.ID)
		res.InControlledShutdown = true
	}
	return m.finish(d), res, nil
}

// BrokerGone fences a broker at once: its controller connection was reset
// (a crash, kill -9), so it will not heartbeat again; the session timeout
// is for silent failures. A fenced broker is left as it is.
//
// Errors: ErrUnknownBroker, ErrStaleBrokerEpoch (the connection belonged
// to an earlier incarnation: nothing to do), ErrBusy.
func (m *Machine) BrokerGone(now time.Time, id metadata.BrokerID, epoch int64) ([]metadata.Record, error) {
	d, err := m.begin(now)
	if err != nil {
		return nil, err
	}
	b, err := m.broker(id, epoch)
	if err != nil {
		return nil, err
	}
	if !b.Fenced {
		d.fence(b)
	}
	return m.finish(d), nil
}

// TickResult says what a Tick did.
type TickResult struct {
	Fenced []metadata.BrokerID // brokers fenced because their session expired
	// Elected counts partitions whose leadership the periodic check moved
	// (to the preferred replica, or to an eligible ISR member of a
	// leaderless partition); More: it stopped at its per-batch bound, and
	// the next Tick continues at once.
	Elected int
	More    bool
}

// Tick fences every unfenced broker not heard from for the session
// timeout (all in one batch, in id order, each as if fenced alone), and
// every LeaderImbalanceCheckInterval runs the periodic leader check: with
// AutoLeaderRebalance, each partition whose preferred replica
// (replicas[0]) is in the ISR and eligible but does not lead gets it back
// as leader; and any leaderless partition with an eligible ISR member
// gets a leader (a repair: decisions never leave one).
//
// Errors: ErrBusy.
func (m *Machine) Tick(now time.Time) ([]metadata.Record, TickResult, error) {
	d, err := m.begin(now)
	if err != nil {
		return nil, TickResult{}, err
	}
	var res TickResult
	for _, b := range m.im.Brokers() {
		if l := m.live[b.ID]; !b.Fenced && now.Sub(l.lastSeen) >= m.cfg.SessionTimeout {
			d.fence(b)
			res.Fenced = append(res.Fenced, b.ID)
		}
	}
	if !now.Before(m.nextRebalance) {
		res.Elected, res.More = d.periodicElections(m.cfg.AutoLeaderRebalance, maxRebalancePerTick)
		if res.More {
			m.nextRebalance = now
		} else {
			m.nextRebalance = now.Add(m.cfg.LeaderImbalanceCheckInterval)
		}
	}
	return m.finish(d), res, nil
}

// broker returns broker id at epoch.
func (m *Machine) broker(id metadata.BrokerID, epoch int64) (*metadata.Broker, error) {
	b := m.im.Broker(id)
	if b == nil {
		return nil, refuse(ErrUnknownBroker, "broker %d is not registered", id)
	}
	if b.Epoch != epoch {
		return nil, refuse(ErrStaleBrokerEpoch, "broker %d is at epoch %d, not %d", id, b.Epoch, epoch)
	}
	return b, nil
}

// leadsAny reports whether id leads a partition in the image.
func (m *Machine) leadsAny(id metadata.BrokerID) bool {
	for _, t := range m.im.Topics() {
		for _, p := range t.Partitions {
			if p.Leader == id {
				return true
			}
		}
	}
	return false
}

// lowestActiveOffset is the lowest metadata offset reported by an active
// broker (unfenced, not shutting down; -1 for one not yet heard from),
// MaxInt64 with none.
func (m *Machine) lowestActiveOffset() int64 {
	lowest := int64(math.MaxInt64)
	for _, b := range m.im.Brokers() {
		if !b.Fenced && !b.ShuttingDown {
			lowest = min(lowest, m.live[b.ID].metadataOffset)
		}
	}
	return lowest
}

// ---- producer ids ----

// ProducerIDBlock is a range of producer ids given to one broker:
// [First, First+Size).
type ProducerIDBlock struct {
	First, Size int64
}

// AllocateProducerIDs gives broker id the next block of producer ids
// (ProducerIDBlockSize of them). Blocks never overlap: each starts where
// the image's next producer id is, and the record moves it past the block.
//
// Errors: ErrUnknownBroker, ErrStaleBrokerEpoch, ErrProducerIDsExhausted,
// ErrBusy.
func (m *Machine) AllocateProducerIDs(now time.Time, id metadata.BrokerID, epoch int64) ([]metadata.Record, ProducerIDBlock, error) {
	d, err := m.begin(now)
	if err != nil {
		return nil, ProducerIDBlock{}, err
	}
	if _, err := m.broker(id, epoch); err != nil {
		return nil, ProducerIDBlock{}, err
	}
	next, size := m.im.NextProducerID(), m.cfg.ProducerIDBlockSize
	if next > math.MaxInt64-size {
		return nil, ProducerIDBlock{}, refuse(ErrProducerIDsExhausted, "no block of %d producer ids after %d", size, next)
	}
	d.add(&metadata.AllocateProducerIDs{Broker: id, BrokerEpoch: epoch, Size: size})
	return m.finish(d), ProducerIDBlock{First: next, Size: size}, nil
}

// ---- elections ----

// TopicPartitions names partitions of a topic.
type TopicPartitions struct {
	Topic      string
	Partitions []int32
}

// ElectionResult answers one partition of ElectPreferredLeaders: nil
// (elected), ErrElectionNotNeeded, ErrPreferredLeaderNotAvailable or
// ErrUnknownTopic.
type ElectionResult struct {
	Topic     string
	Partition int32
	Err       error
}

// ElectPreferredLeaders (ElectLeaders with the PREFERRED type) moves each
// partition's leadership to its preferred replica (replicas[0]) when that
// replica is in the ISR and eligible. A nil parts means every partition,
// and then, as Kafka, results leave out the partitions whose preferred
// replica leads already. More than maxElectionsPerBatch moves refuse the
// whole call with ErrPolicyViolation. Unclean elections are issue 11's
// (unclean.leader.election.enable); the RPC layer refuses that type.
func (m *Machine) ElectPreferredLeaders(now time.Time, parts []TopicPartitions) ([]metadata.Record, []ElectionResult, error) {
	d, err := m.begin(now)
	if err != nil {
		return nil, nil, err
	}
	var results []ElectionResult
	all := parts == nil
	if all {
		for _, t := range m.im.Topics() {
			tp := TopicPartitions{Topic: t.Name}
			for i := range t.Partitions {
				tp.Partitions = append(tp.Partitions, int32(i))
			}
			parts = append(parts, tp)
		}
	}
	elected := 0
	for _, tp := range parts {
		t := m.im.Topic(tp.Topic)
		for _, i := range tp.Partitions {
			r := ElectionResult{Topic: tp.Topic, Partition: i}
			if p := t.Partition(i); p == nil {
				r.Err = refuse(ErrUnknownTopic, "no partition %.100q-%d", tp.Topic, i)
			} else {
				r.Err = d.preferred(t, i)
			}
			if r.Err == nil {
				elected++
			}
			if !all || !errors.Is(r.Err, ErrElectionNotNeeded) {
				results = append(results, r)
			}
		}
	}
	if elected > maxElectionsPerBatch {
		return nil, nil, refuse(ErrPolicyViolation, "%d leader elections are too many for one request (limit %d); name fewer partitions", elected, maxElectionsPerBatch)
	}
	return m.finish(d), results, nil
}

// ---- the decision: one batch in the making ----

// partKey names a partition.
type partKey struct {
	topic     metadata.UUID
	partition int32
}

// brokerState is a broker's registration as a decision sees it.
type brokerState struct{ registered, fenced, shuttingDown bool }

// decision accumulates one batch over the image: the brokers it changes
// and working copies of the partitions it changes, so that each step of a
// decision sees the ones before it, and each partition gets one
// ChangePartition (one leader-epoch bump) however many steps touch it.
type decision struct {
	im      *metadata.Image
	head    []metadata.Record // broker and topic records, in decision order
	brokers map[metadata.BrokerID]brokerState
	parts   map[partKey]*metadata.Partition
	order   []partKey // first change first
}

func newDecision(im *metadata.Image) *decision {
	return &decision{im: im, brokers: map[metadata.BrokerID]brokerState{}, parts: map[partKey]*metadata.Partition{}}
}

func (d *decision) add(r metadata.Record) { d.head = append(d.head, r) }

func (d *decision) state(id metadata.BrokerID) brokerState {
	if s, ok := d.brokers[id]; ok {
		return s
	}
	b := d.im.Broker(id)
	if b == nil {
		return brokerState{}
	}
	return brokerState{registered: true, fenced: b.Fenced, shuttingDown: b.ShuttingDown}
}

// eligible reports whether id may lead or take a new replica: registered,
// unfenced, not shutting down.
func (d *decision) eligible(id metadata.BrokerID) bool {
	s := d.state(id)
	return s.registered && !s.fenced && !s.shuttingDown
}

func (d *decision) changeBroker(b *metadata.Broker, fenced, shuttingDown bool) {
	d.add(&metadata.ChangeBroker{ID: b.ID, Epoch: b.Epoch, Fenced: fenced, ShuttingDown: shuttingDown})
	d.brokers[b.ID] = brokerState{registered: true, fenced: fenced, shuttingDown: shuttingDown}
}

// fence fences b and moves its leaderships and ISR memberships away.
func (d *decision) fence(b *metadata.Broker) {
	d.changeBroker(b, true, false)
	d.leave(b.ID)
}

// unfence unfences b and gives it the leadership of every leaderless
// partition whose ISR holds it.
func (d *decision) unfence(b *metadata.Broker) {
	d.changeBroker(b, false, false)
	d.eachPartition(func(t *metadata.Topic, i int32, p *metadata.Partition) {
		if p.Leader == metadata.NoLeader && p.InSync(b.ID) {
			d.elect(d.edit(t, i))
		}
	})
}

// leave takes id, no longer eligible, out of every ISR it is in but as the
// last member (the partition then waits, leaderless, for that broker: no
// unclean election), and out of every leadership, electing another ISR
// member where there is one.
func (d *decision) leave(id metadata.BrokerID) {
	d.eachPartition(func(t *metadata.Topic, i int32, p *metadata.Partition) {
		if !p.InSync(id) && p.Leader != id {
			return
		}
		np := d.edit(t, i)
		if len(np.ISR) > 1 {
			np.ISR = slices.DeleteFunc(np.ISR, func(x metadata.BrokerID) bool { return x == id })
		}
		d.elect(np)
	})
}

// elect sets p's leader to choose(p).
func (d *decision) elect(p *metadata.Partition) { p.Leader = d.choose(p) }

// choose returns p's leader if it is in the ISR and eligible, else the
// first eligible ISR member in replica order, else NoLeader.
func (d *decision) choose(p *metadata.Partition) metadata.BrokerID {
	if p.Leader != metadata.NoLeader && p.InSync(p.Leader) && d.eligible(p.Leader) {
		return p.Leader
	}
	for _, id := range p.Replicas {
		if p.InSync(id) && d.eligible(id) {
			return id
		}
	}
	return metadata.NoLeader
}

// preferrable reports whether p's preferred replica (replicas[0]) could
// take over: it does not lead, and it is in the ISR and eligible.
func (d *decision) preferrable(p *metadata.Partition) bool {
	pref := p.Replicas[0]
	return p.Leader != pref && p.InSync(pref) && d.eligible(pref)
}

// preferred moves partition i of t to its preferred replica: nil,
// ErrElectionNotNeeded or ErrPreferredLeaderNotAvailable.
func (d *decision) preferred(t *metadata.Topic, i int32) error {
	p := d.partition(t, i)
	pref := p.Replicas[0]
	switch {
	case p.Leader == pref:
		return refuse(ErrElectionNotNeeded, "broker %d, the preferred replica of %s-%d, leads it already", pref, t.Name, i)
	case !d.preferrable(p):
		return refuse(ErrPreferredLeaderNotAvailable, "broker %d, the preferred replica of %s-%d, is not in the ISR %v or cannot lead", pref, t.Name, i, p.ISR)
	}
	d.edit(t, i).Leader = pref
	return nil
}

// periodicElections moves up to most leaderships: leaderless partitions
// with an eligible ISR member get one, and, if rebalance, preferred
// replicas take their partitions back. It returns the moves and whether
// it stopped at most.
func (d *decision) periodicElections(rebalance bool, most int) (moved int, more bool) {
	d.eachPartition(func(t *metadata.Topic, i int32, p *metadata.Partition) {
		if more {
			return
		}
		switch {
		case p.Leader == metadata.NoLeader:
			leader := d.choose(p)
			if leader == metadata.NoLeader {
				return
			}
			d.edit(t, i).Leader = leader
		case rebalance && d.preferrable(p):
			d.edit(t, i).Leader = p.Replicas[0]
		default:
			return
		}
		if moved++; moved >= most {
			more = true
		}
	})
	return moved, more
}

// eachPartition calls fn with every partition of the image, as this
// decision has it so far, in topic-name and partition order.
func (d *decision) eachPartition(fn func(t *metadata.Topic, i int32, p *metadata.Partition)) {
	for _, t := range d.im.Topics() {
		for i := range t.Partitions {
			fn(t, int32(i), d.partition(t, int32(i)))
		}
	}
}

// partition returns partition i of t as this decision has it (read only).
func (d *decision) partition(t *metadata.Topic, i int32) *metadata.Partition {
	if p := d.parts[partKey{t.ID, i}]; p != nil {
		return p
	}
	return t.Partitions[i]
}

// edit returns this decision's working copy of partition i of t.
func (d *decision) edit(t *metadata.Topic, i int32) *metadata.Partition {
	k := partKey{t.ID, i}
	if p := d.parts[k]; p != nil {
		return p
	}
	cur := t.Partitions[i]
	p := *cur
	p.ISR = slices.Clone(cur.ISR)
	d.parts[k] = &p
	d.order = append(d.order, k)
	return &p
}

// records returns the batch: broker and topic records in decision order,
// then one ChangePartition per partition that differs from the image.
func (d *decision) records() []metadata.Record {
	out := d.head
	for _, k := range d.order {
		np := d.parts[k]
		cur := d.im.TopicByID(k.topic).Partitions[k.partition]
		ch := &metadata.ChangePartition{Topic: k.topic, Partition: k.partition}
		if np.Leader != cur.Leader {
			leader := np.Leader
			ch.Leader = &leader
		}
		if !slices.Equal(np.ISR, cur.ISR) {
			isr := slices.Clone(np.ISR)
			ch.ISR = &isr
		}
		if ch.Leader != nil || ch.ISR != nil {
			out = append(out, ch)
		}
	}
	return out
}
