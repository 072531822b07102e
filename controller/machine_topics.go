package controller

// The Machine's topic decisions: CreateTopics, DeleteTopics,
// CreatePartitions, AlterTopicConfigs, with the validation of names,
// assignments, configs and limits (placement itself is placement.go).

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/controller/metadata"
	"github.com/stratalog/strata/topicconfig"
)

// NewTopic is one topic of a CreateTopics request.
type NewTopic struct {
	Name              string
	NumPartitions     int32 // -1: NumPartitions of the config
	ReplicationFactor int16 // -1: DefaultReplicationFactor of the config
	// Assignment, if given, is each partition's replicas (partition i at
	// index i; the RPC layer refuses request entries out of order or with
	// gaps, INVALID_REPLICA_ASSIGNMENT). NumPartitions and
	// ReplicationFactor must then be -1.
	Assignment   [][]metadata.BrokerID
	Configs      map[string]string // overrides by Kafka name
	ValidateOnly bool
}

// CreateTopicResult answers one NewTopic.
type CreateTopicResult struct {
	Name              string
	ID                metadata.UUID // zero for ValidateOnly or an error
	NumPartitions     int32
	ReplicationFactor int16
	Config            topicconfig.Config // the effective config
	Err               error
}

// CreateTopics creates topics, each on its own: a topic that fails
// validation does not fail the others. Checks, per topic, in Kafka's order:
// a name given twice in the call (ErrInvalidRequest for each), the name
// (ErrInvalidTopic), an existing or colliding name (ErrTopicExists,
// ErrInvalidTopic), an assignment with counts (ErrInvalidRequest), the
// partition count (ErrInvalidPartitions), the replication factor
// (ErrInvalidReplicationFactor), the assignment
// (ErrInvalidReplicaAssignment), the configs (ErrInvalidConfig,
// ErrPolicyViolation), and the limits (ErrPolicyViolation). A placed
// partition's replicas are all in its ISR and replicas[0] leads; an
// assigned one's ISR is its live replicas (unfenced, not shutting down),
// led by the first. The returned error is ErrBusy or nil.
func (m *Machine) CreateTopics(now time.Time, topics []NewTopic) ([]metadata.Record, []CreateTopicResult, error) {
	d, err := m.begin(now)
	if err != nil {
		return nil, nil, err
	}
	c := m.newCreation(d)
	results := make([]CreateTopicResult, len(topics))
	errs := onceEach(topics, func(t NewTopic) string { return t.Name }, func(i int, t NewTopic) error {
		return c.createTopic(t, &results[i])
	})
	for i := range results {
		results[i].Name, results[i].Err = topics[i].Name, errs[i]
	}
	return m.finish(d), results, nil
}

// onceEach calls fn for each request whose topic no other request of the
// call names, and refuses the others with ErrInvalidRequest (Kafka's rule
// for a topic given twice); it returns each request's error.
func onceEach[R any](reqs []R, topic func(R) string, fn func(i int, req R) error) []error {
	count := map[string]int{}
	for _, r := range reqs {
		count[topic(r)]++
	}
	errs := make([]error, len(reqs))
	for i, r := range reqs {
		if name := topic(r); count[name] > 1 {
			errs[i] = refuse(ErrInvalidRequest, "topic %.100q is given more than once in the request", name)
		} else {
			errs[i] = fn(i, r)
		}
	}
	return errs
}

// topicResults is onceEach for requests answered by a TopicResult.
func topicResults[R any](reqs []R, topic func(R) string, fn func(R) error) []TopicResult {
	errs := onceEach(reqs, topic, func(_ int, r R) error { return fn(r) })
	results := make([]TopicResult, len(reqs))
	for i, r := range reqs {
		results[i] = TopicResult{Topic: topic(r), Err: errs[i]}
	}
	return results
}

// creation is the state of one CreateTopics or CreatePartitions call.
type creation struct {
	m *Machine
	d *decision
	// eligible are the brokers that can take a replica, by id.
	eligible []placementBroker
	// load is each broker's replica count (for max.broker.partitions),
	// computed on first use; bytes is the batch's estimated size so far.
	load  map[metadata.BrokerID]int
	bytes int
	// names are the names in use, normalized ('.' as '_'), with the
	// original: the image's and those created by this call.
	names map[string]string
	ids   map[metadata.UUID]bool // topic ids created by this call
}

func (m *Machine) newCreation(d *decision) *creation {
	c := &creation{m: m, d: d, names: map[string]string{}, ids: map[metadata.UUID]bool{}}
	for _, t := range m.im.Topics() {
		c.names[topicconfig.NormalizeTopicName(t.Name)] = t.Name
	}
	for _, b := range m.im.Brokers() {
		if d.eligible(b.ID) {
			c.eligible = append(c.eligible, placementBroker{id: b.ID, rack: b.Rack})
		}
	}
	return c
}

func (c *creation) createTopic(t NewTopic, r *CreateTopicResult) error {
	if err := topicconfig.ValidateTopicName(t.Name); err != nil {
		return refuseCause(ErrInvalidTopic, err)
	}
	norm := topicconfig.NormalizeTopicName(t.Name)
	if c.names[norm] == t.Name {
		return refuse(ErrTopicExists, "topic %.100q already exists", t.Name)
	}
	if other, ok := c.names[norm]; ok {
		return refuse(ErrInvalidTopic, "topic %.100q collides with topic %.100q (Kafka treats '.' and '_' alike in metric names)", t.Name, other)
	}
	n, rf := t.NumPartitions, t.ReplicationFactor
	if len(t.Assignment) > 0 {
		if n != -1 || rf != -1 {
			return refuse(ErrInvalidRequest, "topic %.100q: an explicit replica assignment requires partitions and replication factor -1, not %d and %d", t.Name, n, rf)
		}
		n, rf = int32(min(len(t.Assignment), math.MaxInt32)), int16(min(len(t.Assignment[0]), math.MaxInt16))
	}
	if n == -1 {
		n = c.m.cfg.NumPartitions
	}
	if n <= 0 || n > MaxPartitionsPerTopic {
		return refuse(ErrInvalidPartitions, "topic %.100q: %d partitions; the number must be between 1 and %d (or -1 for the default)", t.Name, n, MaxPartitionsPerTopic)
	}
	if rf == -1 {
		rf = c.m.cfg.DefaultReplicationFactor
	}
	var parts []metadata.Partition
	if len(t.Assignment) > 0 {
		// Kafka checks an assignment's brokers are registered, not that
		// they are live; a partition needs one live replica to lead.
		var err error
		if parts, err = c.assigned(t.Assignment, int(rf), 0); err != nil {
			return fmt.Errorf("topic %q: %w", t.Name, err)
		}
	} else if err := c.checkReplicationFactor(int(rf)); err != nil {
		return err
	}
	cfg, err := c.m.checkConfigs(t.Name, nil, t.Configs)
	if err != nil {
		return err
	}
	if err := c.reserve(int(n), int(rf)); err != nil {
		return fmt.Errorf("topic %q: %w", t.Name, err)
	}
	if parts == nil {
		parts = c.placed(nil, int(n), int(rf))
	}
	if err := c.checkBrokerLoad(parts); err != nil {
		return err
	}
	r.NumPartitions, r.ReplicationFactor, r.Config = n, rf, cfg
	if t.ValidateOnly {
		return nil
	}
	id, err := c.topicID()
	if err != nil {
		return err
	}
	c.names[norm] = t.Name
	c.ids[id] = true
	c.addLoad(parts)
	c.d.add(&metadata.CreateTopic{Name: t.Name, ID: id, Configs: maps.Clone(t.Configs), Partitions: parts})
	r.ID = id
	return nil
}

// checkReplicationFactor refuses rf below 1 or above the eligible brokers.
func (c *creation) checkReplicationFactor(rf int) error {
	if rf <= 0 {
		return refuse(ErrInvalidReplicationFactor, "replication factor %d: must be at least 1 (or -1 for the default)", rf)
	}
	if rf > len(c.eligible) {
		return refuse(ErrInvalidReplicationFactor, "replication factor %d is more than the %d broker(s) that can take a replica (registered, unfenced and not shutting down)", rf, len(c.eligible))
	}
	return nil
}

// reserve counts n partitions of rf replicas against the batch's size.
func (c *creation) reserve(n, rf int) error {
	b := n * partitionBytes(rf)
	if c.bytes+b > maxCreateBatchBytes {
		return refuse(ErrPolicyViolation, "%d partitions of %d replicas are too many for one request after the %d bytes already in it (limit %d); split the request", n, rf, c.bytes, maxCreateBatchBytes)
	}
	c.bytes += b
	return nil
}

// placed places n new partitions of rf replicas for topic t (nil for a new
// topic): all replicas in the ISR, replicas[0] the leader.
func (c *creation) placed(t *metadata.Topic, n, rf int) []metadata.Partition {
	p := newPlacer(c.eligible, c.m.rng)
	if t != nil {
		for _, ep := range t.Partitions {
			p.count(ep.Replicas)
		}
	}
	parts := make([]metadata.Partition, n)
	for i := range parts {
		reps := p.place(rf)
		parts[i] = metadata.Partition{Replicas: reps, ISR: slices.Clone(reps), Leader: reps[0]}
	}
	return parts
}

// assigned checks an explicit assignment (partitions numbered from
// first) of replication factor rf and builds its partitions: the ISR is
// the live replicas, the first of them leads.
func (c *creation) assigned(as [][]metadata.BrokerID, rf, first int) ([]metadata.Partition, error) {
	parts := make([]metadata.Partition, len(as))
	for i, reps := range as {
		if len(reps) == 0 {
			return nil, refuse(ErrInvalidReplicaAssignment, "partition %d: an empty replica list", first+i)
		}
		if len(reps) != rf {
			return nil, refuse(ErrInvalidReplicaAssignment, "partition %d has %d replica(s), the others %d", first+i, len(reps), rf)
		}
		// Each id is checked in constant time, and a list longer than the
		// registered brokers fails within them: a hostile list costs little.
		var isr []metadata.BrokerID
		seen := make(map[metadata.BrokerID]bool, len(reps))
		for _, id := range reps {
			if c.m.im.Broker(id) == nil {
				return nil, refuse(ErrInvalidReplicaAssignment, "partition %d: broker %d is not registered", first+i, id)
			}
			if seen[id] {
				return nil, refuse(ErrInvalidReplicaAssignment, "partition %d: broker %d is listed twice", first+i, id)
			}
			seen[id] = true
			if c.d.eligible(id) {
				isr = append(isr, id)
			}
		}
		if len(isr) == 0 {
			return nil, refuse(ErrInvalidReplicaAssignment, "partition %d: every broker of %v is fenced or shutting down", first+i, reps)
		}
		parts[i] = metadata.Partition{Replicas: slices.Clone(reps), ISR: isr, Leader: isr[0]}
	}
	return parts, nil
}

// checkBrokerLoad refuses parts if a broker would hold more than
// MaxBrokerPartitions replicas.
func (c *creation) checkBrokerLoad(parts []metadata.Partition) error {
	limit := c.m.cfg.MaxBrokerPartitions
	if limit == 0 {
		return nil
	}
	if c.load == nil {
		c.load = map[metadata.BrokerID]int{}
		for _, t := range c.m.im.Topics() {
			for _, p := range t.Partitions {
				for _, id := range p.Replicas {
					c.load[id]++
				}
			}
		}
	}
	add := map[metadata.BrokerID]int{}
	for _, p := range parts {
		for _, id := range p.Replicas {
			add[id]++
		}
	}
	for _, id := range slices.Sorted(maps.Keys(add)) {
		if c.load[id]+add[id] > limit {
			return refuse(ErrPolicyViolation, "%d more partition replica(s) would bring broker %d to %d, above max.broker.partitions=%d (it holds %d now)",
				add[id], id, c.load[id]+add[id], limit, c.load[id])
		}
	}
	return nil
}

func (c *creation) addLoad(parts []metadata.Partition) {
	if c.load == nil {
		return
	}
	for _, p := range parts {
		for _, id := range p.Replicas {
			c.load[id]++
		}
	}
}

// topicID returns an id no topic has.
func (c *creation) topicID() (metadata.UUID, error) {
	const tries = 16
	for range tries {
		id := c.m.cfg.NewTopicID()
		if !id.IsZero() && c.m.im.TopicByID(id) == nil && !c.ids[id] {
			return id, nil
		}
	}
	return metadata.UUID{}, fmt.Errorf("controller: no unused topic id in %d tries", tries)
}

// checkConfigs validates a topic's overrides (cur is its current
// effective config, nil for a new topic) and returns the effective config.
func (m *Machine) checkConfigs(topic string, cur *topicconfig.Config, overrides map[string]string) (topicconfig.Config, error) {
	cfg, err := topicconfig.Parse(m.cfg.TopicDefaults, overrides)
	if err != nil {
		return cfg, refuseCause(ErrInvalidConfig, err)
	}
	if m.cfg.TopicConfigPolicy != nil {
		if err := m.cfg.TopicConfigPolicy(topic, cur, cfg, overrides); err != nil {
			var ce *topicconfig.Error
			if errors.As(err, &ce) {
				return cfg, refuseCause(ErrInvalidConfig, err)
			}
			return cfg, refuseCause(ErrPolicyViolation, err)
		}
	}
	return cfg, nil
}

// TopicRef names a topic by name or (DeleteTopics v6+) by id: exactly one
// of the two.
type TopicRef struct {
	Name string
	ID   metadata.UUID
}

// DeleteTopicResult answers one TopicRef, naming the topic by both.
type DeleteTopicResult struct {
	Name string
	ID   metadata.UUID
	Err  error
}

// DeleteTopics deletes topics, each on its own: a ref with both or
// neither of name and id (ErrInvalidRequest), an unknown name
// (ErrUnknownTopic) or id (ErrUnknownTopicID), a topic named more than
// once, by name or id (ErrInvalidRequest for each mention, as Kafka). The
// returned error is ErrBusy or nil.
func (m *Machine) DeleteTopics(now time.Time, refs []TopicRef) ([]metadata.Record, []DeleteTopicResult, error) {
	d, err := m.begin(now)
	if err != nil {
		return nil, nil, err
	}
	results := make([]DeleteTopicResult, len(refs))
	mentions := map[metadata.UUID]int{}
	for i, ref := range refs {
		r := &results[i]
		r.Name, r.ID = ref.Name, ref.ID
		switch {
		case ref.Name != "" && !ref.ID.IsZero():
			r.Err = refuse(ErrInvalidRequest, "topic %.100q is named by both name and id %s", ref.Name, ref.ID)
		case ref.Name == "" && ref.ID.IsZero():
			r.Err = refuse(ErrInvalidRequest, "a topic is named by neither name nor id")
		case ref.Name != "":
			if t := m.im.Topic(ref.Name); t != nil {
				r.ID = t.ID
			} else {
				r.Err = refuse(ErrUnknownTopic, "no topic %.100q", ref.Name)
			}
		default:
			if t := m.im.TopicByID(ref.ID); t != nil {
				r.Name = t.Name
			} else {
				r.Err = refuse(ErrUnknownTopicID, "no topic with id %s", ref.ID)
			}
		}
		if r.Err == nil {
			mentions[r.ID]++
		}
	}
	for i := range results {
		r := &results[i]
		switch {
		case r.Err != nil:
		case mentions[r.ID] > 1:
			r.Err = refuse(ErrInvalidRequest, "topic %.100q (id %s) is named more than once in the request", r.Name, r.ID)
		default:
			d.add(&metadata.DeleteTopic{Topic: r.ID})
		}
	}
	return m.finish(d), results, nil
}

// NewPartitions is one topic of a CreatePartitions request.
type NewPartitions struct {
	Topic string
	Count int32 // the new total
	// Assignment, if not nil, is the new partitions' replicas, in order;
	// each list as long as the topic's replication factor (partition 0's).
	Assignment   [][]metadata.BrokerID
	ValidateOnly bool
}

// CreatePartitions grows topics, each on its own, placing the new
// partitions as CreateTopics does with the topic's replication factor (its
// partition 0's replica count) and its existing partitions counted in the
// balance. Errors per topic: a topic given twice (ErrInvalidRequest), an
// unknown topic (ErrUnknownTopic), a count that is not an increase or above
// MaxPartitionsPerTopic (ErrInvalidPartitions), an assignment of the wrong
// size or shape (ErrInvalidReplicaAssignment), more replicas than
// eligible brokers (ErrInvalidReplicationFactor), the limits
// (ErrPolicyViolation). The returned error is ErrBusy or nil.
func (m *Machine) CreatePartitions(now time.Time, reqs []NewPartitions) ([]metadata.Record, []TopicResult, error) {
	d, err := m.begin(now)
	if err != nil {
		return nil, nil, err
	}
	c := m.newCreation(d)
	results := topicResults(reqs, func(r NewPartitions) string { return r.Topic }, c.addPartitions)
	return m.finish(d), results, nil
}

func (c *creation) addPartitions(req NewPartitions) error {
	t := c.m.im.Topic(req.Topic)
	if t == nil {
		return refuse(ErrUnknownTopic, "no topic %.100q", req.Topic)
	}
	have := int32(len(t.Partitions))
	switch {
	case req.Count == have:
		return refuse(ErrInvalidPartitions, "topic %.100q already has %d partition(s)", req.Topic, have)
	case req.Count < have:
		return refuse(ErrInvalidPartitions, "topic %.100q has %d partition(s); %d would not be an increase", req.Topic, have, req.Count)
	case req.Count > MaxPartitionsPerTopic:
		return refuse(ErrInvalidPartitions, "topic %.100q: %d partitions; at most %d are allowed", req.Topic, req.Count, MaxPartitionsPerTopic)
	}
	add := int(req.Count - have)
	rf := len(t.Partitions[0].Replicas)
	var parts []metadata.Partition
	if req.Assignment != nil {
		if len(req.Assignment) != add {
			return refuse(ErrInvalidReplicaAssignment, "topic %.100q: %d new partition(s) but %d assignment(s)", req.Topic, add, len(req.Assignment))
		}
		var err error
		if parts, err = c.assigned(req.Assignment, rf, int(have)); err != nil {
			return fmt.Errorf("topic %q: %w", req.Topic, err)
		}
	} else if err := c.checkReplicationFactor(rf); err != nil {
		return fmt.Errorf("topic %q: %w", req.Topic, err)
	}
	if err := c.reserve(add, rf); err != nil {
		return fmt.Errorf("topic %q: %w", req.Topic, err)
	}
	if parts == nil {
		parts = c.placed(t, add, rf)
	}
	if err := c.checkBrokerLoad(parts); err != nil {
		return err
	}
	if req.ValidateOnly {
		return nil
	}
	c.addLoad(parts)
	c.d.add(&metadata.AddPartitions{Topic: t.ID, Partitions: parts})
	return nil
}

// ConfigOp is an IncrementalAlterConfigs operation, numbered as Kafka's.
type ConfigOp int8

const (
	ConfigSet      ConfigOp = 0 // set the override
	ConfigDelete   ConfigOp = 1 // drop the override (back to the default)
	ConfigAppend   ConfigOp = 2 // add items to a list value
	ConfigSubtract ConfigOp = 3 // remove items from a list value
)

// ConfigChange is one operation on one key.
type ConfigChange struct {
	Key   string
	Op    ConfigOp
	Value string // unused for ConfigDelete
}

// TopicConfigChange changes one topic's overrides.
type TopicConfigChange struct {
	Topic   string
	Changes []ConfigChange
	// Replace is the legacy AlterConfigs: the overrides become exactly the
	// ConfigSet changes (only those are allowed), every other override is
	// deleted.
	Replace      bool
	ValidateOnly bool
}

// TopicResult answers one topic of CreatePartitions or AlterTopicConfigs.
type TopicResult struct {
	Topic string
	Err   error
}

// AlterTopicConfigs changes topics' config overrides, each on its own: the
// changes apply in order to the current overrides (APPEND and SUBTRACT to
// the current value, the default if not overridden, of a list key), and
// the result is validated whole as CreateTopics validates configs.
// Errors per topic: ErrUnknownTopic, ErrInvalidRequest (a topic or a key
// given twice, an unknown operation, a non-SET operation with Replace),
// ErrInvalidConfig, ErrPolicyViolation. No change writes nothing. The
// returned error is ErrBusy or nil.
func (m *Machine) AlterTopicConfigs(now time.Time, reqs []TopicConfigChange) ([]metadata.Record, []TopicResult, error) {
	d, err := m.begin(now)
	if err != nil {
		return nil, nil, err
	}
	results := topicResults(reqs, func(r TopicConfigChange) string { return r.Topic }, func(r TopicConfigChange) error {
		return m.alterConfigs(d, r)
	})
	return m.finish(d), results, nil
}

func (m *Machine) alterConfigs(d *decision, req TopicConfigChange) error {
	t := m.im.Topic(req.Topic)
	if t == nil {
		return refuse(ErrUnknownTopic, "no topic %.100q", req.Topic)
	}
	cur, err := topicconfig.Parse(m.cfg.TopicDefaults, t.Configs)
	if err != nil {
		// Written by an older release or under other defaults: still
		// changeable, and the result is validated below.
		cur = m.cfg.TopicDefaults
	}
	next := maps.Clone(t.Configs)
	if next == nil || req.Replace {
		next = map[string]string{}
	}
	seen := map[string]bool{}
	for _, ch := range req.Changes {
		if seen[ch.Key] {
			return refuse(ErrInvalidRequest, "topic %.100q: config %.100q is given more than once", req.Topic, ch.Key)
		}
		seen[ch.Key] = true
		if req.Replace && ch.Op != ConfigSet {
			return refuse(ErrInvalidRequest, "topic %.100q: replacing configs takes only SET operations", req.Topic)
		}
		def, known := topicconfig.Lookup(ch.Key)
		if !known {
			return refuseCause(ErrInvalidConfig, topicconfig.UnknownKeyError(ch.Key, ch.Value))
		}
		switch ch.Op {
		case ConfigSet:
			next[ch.Key] = ch.Value
		case ConfigDelete:
			delete(next, ch.Key)
		case ConfigAppend, ConfigSubtract:
			if def.Type != kmsg.ConfigTypeList {
				return refuseCause(ErrInvalidConfig, &topicconfig.Error{Key: ch.Key, Value: ch.Value, Reason: "APPEND and SUBTRACT apply only to list configs"})
			}
			value, ok := next[ch.Key]
			if !ok {
				value = def.Value(cur)
			}
			next[ch.Key] = topicconfig.EditList(value, ch.Value, ch.Op == ConfigAppend)
		default:
			return refuse(ErrInvalidRequest, "topic %.100q: unknown config operation %d", req.Topic, ch.Op)
		}
	}
	if _, err := m.checkConfigs(req.Topic, &cur, next); err != nil {
		return err
	}
	set := map[string]string{}
	for k, v := range next {
		if old, ok := t.Configs[k]; !ok || old != v {
			set[k] = v
		}
	}
	var del []string
	for _, k := range slices.Sorted(maps.Keys(t.Configs)) {
		if _, ok := next[k]; !ok {
			del = append(del, k)
		}
	}
	if req.ValidateOnly || (len(set) == 0 && len(del) == 0) {
		return nil
	}
	if len(set) == 0 {
		set = nil
	}
	d.add(&metadata.ChangeTopicConfigs{Topic: t.ID, Set: set, Delete: del})
	return nil
}
