package controller

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stratalog/strata/controller/metadata"
)

// TestMachineRandomized drives a Machine with random sequences of broker
// starts, restarts, crashes (reported or silent), heartbeats with random
// catch-up, controlled shutdowns, clock jumps past the session timeout,
// controller failovers, and admin requests. Every batch is applied with
// Image.Apply (a refusal fails the test), and the invariants are checked
// after every step.
func TestMachineRandomized(t *testing.T) {
	steps := 5000
	if testing.Short() {
		steps = 1000
	}
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			s := newSim(t, seed)
			for s.step = 0; s.step < steps; s.step++ {
				s.randomStep()
				s.check()
			}
			t.Logf("%d steps: offset %d, %d topics, %d brokers, %d failovers, counts %v",
				steps, s.r.im.Offset(), s.r.im.NumTopics(), len(s.r.im.Brokers()), s.failovers, s.counts)
		})
	}
}

// simBroker is a broker process as the test models it.
type simBroker struct {
	id          metadata.BrokerID
	alive       bool // the process runs
	incarnation int  // of the current process
	registered  bool // the current incarnation is registered
	applied     int64
	stopping    bool // SIGTERM received: heartbeats ask to shut down
	// lastHeard is when the active Machine last heard from the broker's
	// registration (a register or heartbeat it accepted, or its own start).
	lastHeard time.Time
}

type epochKey struct {
	part  partKey
	epoch metadata.LeaderEpoch
}

type sim struct {
	t    *testing.T
	rnd  *rand.Rand
	r    *rig
	step int

	brokers   []*simBroker
	leaderAt  map[epochKey]metadata.BrokerID
	lastEpoch map[partKey]metadata.LeaderEpoch
	blocks    []ProducerIDBlock
	failovers int
	counts    map[string]int
}

const simBrokers = 6

func newSim(t *testing.T, seed uint64) *sim {
	s := &sim{
		t:         t,
		rnd:       rand.New(rand.NewPCG(seed, 0x5eed)),
		leaderAt:  map[epochKey]metadata.BrokerID{},
		lastEpoch: map[partKey]metadata.LeaderEpoch{},
		counts:    map[string]int{},
	}
	s.r = newRig(t, func(c *MachineConfig) {
		c.Seed = seed
		c.LeaderImbalanceCheckInterval = 10 * time.Second
		c.MaxBrokerPartitions = 200
	})
	for id := metadata.BrokerID(1); id <= simBrokers; id++ {
		s.brokers = append(s.brokers, &simBroker{id: id})
	}
	return s
}

func (s *sim) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("step %d at offset %d: %s", s.step, s.r.im.Offset(), fmt.Sprintf(format, args...))
}

func (s *sim) pick() *simBroker { return s.brokers[s.rnd.IntN(len(s.brokers))] }

func (s *sim) randomStep() {
	s.r.now = s.r.now.Add(time.Duration(s.rnd.IntN(300)) * time.Millisecond)
	switch k := s.rnd.IntN(100); {
	case k < 12:
		s.count("register")
		s.register(s.pick())
	case k < 50:
		s.count("heartbeat")
		s.heartbeat(s.pick())
	case k < 54:
		s.count("crash")
		s.crash(s.pick())
	case k < 57:
		s.count("sigterm")
		if b := s.pick(); b.alive {
			b.stopping = true
		}
	case k < 66:
		s.count("tick")
		s.tick()
	case k < 74:
		s.count("create topics")
		s.createTopics()
	case k < 77:
		s.count("delete topics")
		s.deleteTopics()
	case k < 81:
		s.count("create partitions")
		s.createPartitions()
	case k < 85:
		s.count("alter configs")
		s.alterConfigs()
	case k < 91:
		s.count("producer ids")
		s.producerIDs()
	case k < 94:
		s.count("elect")
		s.elect()
	case k < 95:
		s.count("failover")
		s.failover()
	case k < 98:
		s.count("isr expand")
		s.expandISR()
	default:
		s.count("retry registration")
		s.retryRegistration(s.pick())
	}
}

func (s *sim) count(what string) { s.counts[what]++ }

// register starts (or restarts) the broker's process with a new
// incarnation, which registers.
func (s *sim) register(b *simBroker) {
	if !b.alive || s.rnd.IntN(3) == 0 || !b.registered {
		if b.alive && b.registered && s.rnd.IntN(2) == 0 {
			s.crash(b) // a restart: the old process is gone first, reported or not
		}
		b.alive, b.incarnation, b.registered, b.stopping = true, b.incarnation+1, false, false
	}
	if b.registered {
		return
	}
	r := s.r
	prev := r.im.Broker(b.id)
	recs, res, err := r.m.RegisterBroker(r.now, BrokerRegistration{ID: b.id, Incarnation: incarnation(b.id, b.incarnation), ClusterID: "rig-cluster", Listeners: endpoints(b.id), Rack: fmt.Sprint("rack", b.id%3)})
	valid := prev != nil && !prev.Fenced && r.now.Sub(b.lastHeard) < r.cfg.SessionTimeout
	switch {
	case errors.Is(err, ErrDuplicateBrokerRegistration):
		s.count("~duplicate refused")
		if !valid {
			s.fatalf("broker %d: duplicate registration refused, but the old session ended (fenced %v, heard %v ago)", b.id, prev.Fenced, r.now.Sub(b.lastHeard))
		}
		return // it retries later
	case err != nil:
		s.fatalf("register broker %d: %v", b.id, err)
	case valid:
		s.fatalf("broker %d: a new incarnation registered while the old session was valid", b.id)
	case res.Epoch != EpochOfBatch:
		s.fatalf("register broker %d: epoch %d", b.id, res.Epoch)
	}
	r.apply(recs)
	nb := r.im.Broker(b.id)
	if nb.Epoch != r.im.Offset() || !nb.Fenced || nb.Incarnation != incarnation(b.id, b.incarnation) {
		s.fatalf("broker %d after registering: %+v", b.id, nb)
	}
	b.registered, b.lastHeard = true, r.now
	b.applied = max(0, nb.Epoch-1-int64(s.rnd.IntN(3)))
}

// retryRegistration re-sends a registered incarnation's registration (its
// answer was lost): the same epoch, nothing written.
func (s *sim) retryRegistration(b *simBroker) {
	if !b.alive || !b.registered {
		return
	}
	r := s.r
	cur := r.im.Broker(b.id)
	recs, res, err := r.m.RegisterBroker(r.now, BrokerRegistration{ID: b.id, Incarnation: incarnation(b.id, b.incarnation), Listeners: endpoints(b.id)})
	if err != nil || len(recs) != 0 || res.Epoch != cur.Epoch {
		s.fatalf("retried registration of broker %d: %v, %d records, epoch %d (want %d)", b.id, err, len(recs), res.Epoch, cur.Epoch)
	}
	b.lastHeard = r.now
}

// crash kills the process; its controller connection reset is reported
// most of the time (kill -9), not always (a silent network failure).
func (s *sim) crash(b *simBroker) {
	if !b.alive {
		return
	}
	b.alive, b.stopping = false, false
	if !b.registered || s.rnd.IntN(4) == 0 {
		b.registered = false
		return
	}
	b.registered = false
	r := s.r
	cur := r.im.Broker(b.id)
	recs, err := r.m.BrokerGone(r.now, b.id, cur.Epoch)
	if err != nil {
		s.fatalf("broker %d gone: %v", b.id, err)
	}
	r.apply(recs)
	if !r.im.Broker(b.id).Fenced {
		s.fatalf("broker %d not fenced after it was reported gone", b.id)
	}
}

func (s *sim) heartbeat(b *simBroker) {
	if !b.alive || !b.registered {
		return
	}
	r := s.r
	before := r.im.Broker(b.id)
	// Catch up by a random amount.
	if off := r.im.Offset(); b.applied < off {
		b.applied += 1 + s.rnd.Int64N(off-b.applied)
	}
	req := BrokerHeartbeat{ID: b.id, Epoch: before.Epoch, MetadataOffset: b.applied, WantShutdown: b.stopping, WantFence: s.rnd.IntN(40) == 0}
	recs, res, err := r.m.Heartbeat(r.now, req)
	if err != nil {
		s.fatalf("heartbeat of broker %d: %v", b.id, err)
	}
	b.lastHeard = r.now
	r.apply(recs)
	after := r.im.Broker(b.id)
	if after.Fenced != res.Fenced || (after.ShuttingDown && !after.Fenced) != res.InControlledShutdown {
		s.fatalf("heartbeat of broker %d answered %+v, the image has %+v", b.id, res, after)
	}
	if before.Fenced && !after.Fenced {
		s.count("~unfenced")
	}
	if before.Fenced && !after.Fenced && (req.MetadataOffset < after.Epoch || req.WantFence) {
		s.fatalf("broker %d unfenced at metadata offset %d before catching up with its epoch %d", b.id, req.MetadataOffset, after.Epoch)
	}
	if res.ShouldShutdown {
		if !req.WantShutdown || !after.Fenced || s.leads(b.id) {
			s.fatalf("broker %d told to shut down while leading or unfenced: %+v", b.id, after)
		}
		s.count("~shutdown granted")
		b.alive, b.registered, b.stopping = false, false, false
	}
}

func (s *sim) leads(id metadata.BrokerID) bool {
	for _, t := range s.r.im.Topics() {
		for _, p := range t.Partitions {
			if p.Leader == id {
				return true
			}
		}
	}
	return false
}

func (s *sim) tick() {
	r := s.r
	if s.rnd.IntN(4) == 0 {
		r.now = r.now.Add(time.Duration(3+s.rnd.IntN(12)) * time.Second)
	}
	recs, res, err := r.m.Tick(r.now)
	if err != nil {
		s.fatalf("tick: %v", err)
	}
	r.apply(recs)
	s.counts["~fenced by tick"] += len(res.Fenced)
	s.counts["~periodic elections"] += res.Elected
	for _, id := range res.Fenced {
		if b := s.brokers[id-1]; r.now.Sub(b.lastHeard) < r.cfg.SessionTimeout {
			s.fatalf("broker %d fenced by a tick, heard from %v ago", id, r.now.Sub(b.lastHeard))
		}
	}
	for _, b := range s.brokers {
		if ib := r.im.Broker(b.id); ib != nil && !ib.Fenced && r.now.Sub(b.lastHeard) >= r.cfg.SessionTimeout {
			s.fatalf("broker %d not fenced after a tick, heard from %v ago", b.id, r.now.Sub(b.lastHeard))
		}
	}
}

var simNames = []string{"a", "b", "c", "d", "e", "f", "g.h", "g_h", "__consumer_offsets", "bad name"}

func (s *sim) createTopics() {
	var reqs []NewTopic
	for range 1 + s.rnd.IntN(3) {
		nt := NewTopic{
			Name:              simNames[s.rnd.IntN(len(simNames))],
			NumPartitions:     int32(s.rnd.IntN(7)) - 1,
			ReplicationFactor: int16(s.rnd.IntN(4)) - 1,
			ValidateOnly:      s.rnd.IntN(8) == 0,
		}
		switch s.rnd.IntN(6) {
		case 0:
			nt.Configs = map[string]string{"retention.ms": fmt.Sprint(s.rnd.IntN(3) - 1)}
		case 1:
			nt.NumPartitions, nt.ReplicationFactor = -1, -1
			rf := 1 + s.rnd.IntN(2)
			for range 1 + s.rnd.IntN(3) {
				var reps []metadata.BrokerID
				for len(reps) < rf {
					reps = append(reps, metadata.BrokerID(1+s.rnd.IntN(simBrokers)))
				}
				nt.Assignment = append(nt.Assignment, reps)
			}
		}
		reqs = append(reqs, nt)
	}
	r := s.r
	recs, res, err := r.m.CreateTopics(r.now, reqs)
	if err != nil {
		s.fatalf("create topics: %v", err)
	}
	r.apply(recs)
	for i, tr := range res {
		tp := r.im.Topic(tr.Name)
		switch {
		case tr.Err != nil:
			if !tr.ID.IsZero() {
				s.fatalf("topic %q refused (%v) but given an id", tr.Name, tr.Err)
			}
		case reqs[i].ValidateOnly:
		case tp == nil || tp.ID != tr.ID || int32(len(tp.Partitions)) != tr.NumPartitions:
			s.fatalf("topic %q created as %+v, the image has %+v", tr.Name, tr, tp)
		}
	}
}

// topicRef picks an existing topic, or a name that is not one.
func (s *sim) topic() *metadata.Topic {
	ts := s.r.im.Topics()
	if len(ts) == 0 || s.rnd.IntN(6) == 0 {
		return nil
	}
	return ts[s.rnd.IntN(len(ts))]
}

func (s *sim) deleteTopics() {
	var refs []TopicRef
	for range 1 + s.rnd.IntN(2) {
		t := s.topic()
		switch {
		case t == nil:
			refs = append(refs, TopicRef{Name: "missing"})
		case s.rnd.IntN(2) == 0:
			refs = append(refs, TopicRef{Name: t.Name})
		default:
			refs = append(refs, TopicRef{ID: t.ID})
		}
	}
	recs, _, err := s.r.m.DeleteTopics(s.r.now, refs)
	if err != nil {
		s.fatalf("delete topics: %v", err)
	}
	s.r.apply(recs)
}

func (s *sim) createPartitions() {
	t := s.topic()
	name, count := "missing", int32(3)
	if t != nil {
		name, count = t.Name, int32(len(t.Partitions)+s.rnd.IntN(4))
	}
	recs, _, err := s.r.m.CreatePartitions(s.r.now, []NewPartitions{{Topic: name, Count: count, ValidateOnly: s.rnd.IntN(8) == 0}})
	if err != nil {
		s.fatalf("create partitions: %v", err)
	}
	s.r.apply(recs)
}

func (s *sim) alterConfigs() {
	t := s.topic()
	name := "missing"
	if t != nil {
		name = t.Name
	}
	changes := [][]ConfigChange{
		{{Key: "retention.ms", Value: fmt.Sprint(1000 * s.rnd.IntN(5))}},
		{{Key: "retention.ms", Op: ConfigDelete}},
		{{Key: "cleanup.policy", Op: ConfigAppend, Value: "compact"}},
		{{Key: "cleanup.policy", Op: ConfigSubtract, Value: "compact"}},
		{{Key: "retention.ms", Value: "forever"}},
	}
	recs, _, err := s.r.m.AlterTopicConfigs(s.r.now, []TopicConfigChange{{Topic: name, Changes: changes[s.rnd.IntN(len(changes))], Replace: s.rnd.IntN(10) == 0}})
	if err != nil {
		s.fatalf("alter configs: %v", err)
	}
	s.r.apply(recs)
}

func (s *sim) producerIDs() {
	b := s.pick()
	ib := s.r.im.Broker(b.id)
	if ib == nil {
		return
	}
	epoch := ib.Epoch
	stale := s.rnd.IntN(5) == 0
	if stale {
		epoch--
	}
	next := s.r.im.NextProducerID()
	recs, blk, err := s.r.m.AllocateProducerIDs(s.r.now, b.id, epoch)
	switch {
	case stale && !errors.Is(err, ErrStaleBrokerEpoch):
		s.fatalf("producer ids with a stale epoch: %v", err)
	case stale:
		return
	case err != nil:
		s.fatalf("producer ids: %v", err)
	case blk.First != next:
		s.fatalf("producer-id block %+v, next id %d", blk, next)
	}
	s.r.apply(recs)
	if s.r.im.NextProducerID() != blk.First+blk.Size {
		s.fatalf("after block %+v the next producer id is %d", blk, s.r.im.NextProducerID())
	}
	for _, o := range s.blocks {
		if blk.First < o.First+o.Size && o.First < blk.First+blk.Size {
			s.fatalf("producer-id block %+v overlaps %+v", blk, o)
		}
	}
	s.blocks = append(s.blocks, blk)
}

func (s *sim) elect() {
	var parts []TopicPartitions
	if t := s.topic(); t != nil {
		parts = []TopicPartitions{{Topic: t.Name, Partitions: []int32{0, int32(len(t.Partitions))}}}
	}
	recs, res, err := s.r.m.ElectPreferredLeaders(s.r.now, parts)
	if err != nil {
		s.fatalf("elect: %v", err)
	}
	s.r.apply(recs)
	for _, er := range res {
		if er.Err == nil {
			if p := s.r.im.Topic(er.Topic).Partition(er.Partition); p.Leader != p.Replicas[0] {
				s.fatalf("%s-%d elected, but led by %d", er.Topic, er.Partition, p.Leader)
			}
		}
	}
}

// expandISR adds an eligible replica back to a partition's ISR, as its
// leader's AlterPartition will (issue 11): a batch the Machine did not
// decide, which the driver hands it with Applied.
func (s *sim) expandISR() {
	type cand struct {
		t  *metadata.Topic
		i  int
		id metadata.BrokerID
	}
	var cands []cand
	for _, t := range s.r.im.Topics() {
		for i, p := range t.Partitions {
			if p.Leader == metadata.NoLeader {
				continue
			}
			for _, id := range p.Replicas {
				if b := s.r.im.Broker(id); b != nil && !b.Fenced && !b.ShuttingDown && !p.InSync(id) {
					cands = append(cands, cand{t, i, id})
				}
			}
		}
	}
	if len(cands) == 0 {
		return
	}
	c := cands[s.rnd.IntN(len(cands))]
	isr := append(slices.Clone(c.t.Partitions[c.i].ISR), c.id)
	im, err := s.r.im.Apply(s.r.im.Offset()+1, []metadata.Record{&metadata.ChangePartition{Topic: c.t.ID, Partition: int32(c.i), ISR: &isr}})
	if err != nil {
		s.fatalf("expand the ISR: %v", err)
	}
	s.r.im = im
	s.r.m.Applied(im)
	s.count("~isr expanded")
}

// failover replaces the Machine: every broker's session starts again.
func (s *sim) failover() {
	s.failovers++
	s.r.restart()
	for _, b := range s.brokers {
		b.lastHeard = s.r.now
	}
}

// check asserts the invariants on the image after a step.
func (s *sim) check() {
	im := s.r.im
	eligible := func(id metadata.BrokerID) bool {
		b := im.Broker(id)
		return b != nil && !b.Fenced && !b.ShuttingDown
	}
	for _, t := range im.Topics() {
		for i, p := range t.Partitions {
			k := partKey{t.ID, int32(i)}
			name := fmt.Sprintf("%s-%d", t.Name, i)
			if last, ok := s.lastEpoch[k]; ok && p.LeaderEpoch > last {
				s.count("~leader changes")
				if p.Leader == metadata.NoLeader {
					s.count("~went leaderless")
				}
			}
			if last, ok := s.lastEpoch[k]; ok && p.LeaderEpoch < last {
				s.fatalf("%s: leader epoch went back from %d to %d", name, last, p.LeaderEpoch)
			}
			s.lastEpoch[k] = p.LeaderEpoch
			ek := epochKey{k, p.LeaderEpoch}
			if l, ok := s.leaderAt[ek]; ok && l != p.Leader {
				s.fatalf("%s: two leaders in epoch %d: %d and %d", name, p.LeaderEpoch, l, p.Leader)
			}
			s.leaderAt[ek] = p.Leader
			if len(p.ISR) == 0 {
				s.fatalf("%s: empty ISR", name)
			}
			// A broker that cannot lead stays in an ISR only as its last
			// member (the partition waits for it).
			if len(p.ISR) > 1 && slices.ContainsFunc(p.ISR, func(id metadata.BrokerID) bool { return !eligible(id) }) {
				s.fatalf("%s: ISR %v holds a fenced or stopping broker besides others", name, p.ISR)
			}
			if p.Leader != metadata.NoLeader && !eligible(p.Leader) {
				s.fatalf("%s: led by broker %d, which is fenced, shutting down or gone: %+v", name, p.Leader, im.Broker(p.Leader))
			}
			if p.Leader == metadata.NoLeader && slices.ContainsFunc(p.ISR, eligible) {
				s.fatalf("%s: leaderless with an eligible ISR member (ISR %v)", name, p.ISR)
			}
			if len(p.Replicas) == 1 {
				// A single replica never moves: its ISR is itself, and it
				// leads whenever it can (checked above) or nobody does.
				if !slices.Equal(p.ISR, p.Replicas) || (p.Leader != metadata.NoLeader && p.Leader != p.Replicas[0]) {
					s.fatalf("%s: single replica %v with ISR %v led by %d", name, p.Replicas, p.ISR, p.Leader)
				}
			}
		}
	}
	if s.r.m.Pending() {
		s.fatalf("a batch left pending")
	}
}
