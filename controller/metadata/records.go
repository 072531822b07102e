package metadata

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
)

// Record is one change to the metadata. A batch of records is one entry of
// the controller's log, applied atomically (Image.Apply). The set of
// record types is closed: every type is listed in recordTypes (codec.go).
type Record interface {
	// Type is the record's name in the log's encoding.
	Type() string
	apply(b *builder) error
}

// Bootstrap starts a cluster's metadata: its id and, for a cluster adopted
// from a single-node data directory, the producer ids already given out.
// It is valid only as the first record of an empty image.
type Bootstrap struct {
	ClusterID      string `json:"clusterId"`
	NextProducerID int64  `json:"nextProducerId,omitempty"`
}

func (*Bootstrap) Type() string { return "bootstrap" }

func (r *Bootstrap) apply(b *builder) error {
	if b.im.clusterID != "" {
		return fmt.Errorf("cluster %q is already bootstrapped", b.im.clusterID)
	}
	if r.ClusterID == "" || r.NextProducerID < 0 {
		return fmt.Errorf("cluster id %q, next producer id %d", r.ClusterID, r.NextProducerID)
	}
	b.im.clusterID = r.ClusterID
	b.im.nextProducerID = r.NextProducerID
	return nil
}

// RegisterBroker registers a broker incarnation. It starts fenced; its
// epoch is the batch's offset. A registration of a known id replaces the
// earlier one (a restarted process): the batch must also move away any
// leadership the earlier incarnation held.
type RegisterBroker struct {
	ID          BrokerID   `json:"id"`
	Incarnation UUID       `json:"incarnation"`
	Listeners   []Endpoint `json:"listeners"`
	Rack        string     `json:"rack,omitempty"`
}

func (*RegisterBroker) Type() string { return "registerBroker" }

func (r *RegisterBroker) apply(b *builder) error {
	if r.ID < 0 || r.Incarnation.IsZero() || len(r.Listeners) == 0 {
		return fmt.Errorf("broker %d, incarnation %s, %d listeners", r.ID, r.Incarnation, len(r.Listeners))
	}
	b.setBroker(&Broker{
		ID: r.ID, Epoch: b.im.offset, Incarnation: r.Incarnation,
		Listeners: slices.Clone(r.Listeners), Rack: r.Rack, Fenced: true,
	})
	b.newlyFenced = append(b.newlyFenced, r.ID)
	return nil
}

// ChangeBroker sets a registered broker's fencing and controlled-shutdown
// state. Epoch must be the broker's current epoch.
type ChangeBroker struct {
	ID           BrokerID `json:"id"`
	Epoch        int64    `json:"epoch"`
	Fenced       bool     `json:"fenced"`
	ShuttingDown bool     `json:"shuttingDown,omitempty"`
}

func (*ChangeBroker) Type() string { return "changeBroker" }

func (r *ChangeBroker) apply(b *builder) error {
	cur, err := b.brokerAt(r.ID, r.Epoch)
	if err != nil {
		return err
	}
	c := *cur
	c.Fenced, c.ShuttingDown = r.Fenced, r.ShuttingDown
	b.setBroker(&c)
	if c.Fenced && !cur.Fenced {
		b.newlyFenced = append(b.newlyFenced, r.ID)
	}
	return nil
}

// UnregisterBroker removes a fenced broker (decommissioned). Partitions
// may still name it as a replica until they are reassigned.
type UnregisterBroker struct {
	ID    BrokerID `json:"id"`
	Epoch int64    `json:"epoch"`
}

func (*UnregisterBroker) Type() string { return "unregisterBroker" }

func (r *UnregisterBroker) apply(b *builder) error {
	cur, err := b.brokerAt(r.ID, r.Epoch)
	if err != nil {
		return err
	}
	if !cur.Fenced {
		return fmt.Errorf("broker %d is not fenced", r.ID)
	}
	b.deleteBroker(r.ID)
	return nil
}

// CreateTopic creates a topic with its partitions' initial state (leader
// and partition epochs start at 0).
type CreateTopic struct {
	Name       string            `json:"name"`
	ID         UUID              `json:"id"`
	Configs    map[string]string `json:"configs,omitempty"`
	Partitions []Partition       `json:"partitions"`
}

func (*CreateTopic) Type() string { return "createTopic" }

func (r *CreateTopic) apply(b *builder) error {
	if r.Name == "" || r.ID.IsZero() {
		return fmt.Errorf("topic %q with id %s", r.Name, r.ID)
	}
	if _, ok := b.im.byName[r.Name]; ok {
		return fmt.Errorf("topic %q exists", r.Name)
	}
	if b.im.topics[r.ID] != nil {
		return fmt.Errorf("topic id %s is taken", r.ID)
	}
	if len(r.Partitions) == 0 {
		return fmt.Errorf("topic %q has no partitions", r.Name)
	}
	t := &Topic{Name: r.Name, ID: r.ID, Configs: maps.Clone(r.Configs)}
	b.addTopic(t)
	return b.addPartitions(t, r.Partitions)
}

// addPartitions appends new partitions to t (a topic this batch owns).
func (b *builder) addPartitions(t *Topic, ps []Partition) error {
	if len(t.Partitions)+len(ps) > math.MaxInt32 {
		return fmt.Errorf("topic %q: %d partitions", t.Name, len(t.Partitions)+len(ps))
	}
	for _, p := range ps {
		np := clonePartition(&p)
		np.LeaderEpoch, np.PartitionEpoch = 0, 0
		if err := checkReplicaSet(np); err != nil {
			return fmt.Errorf("topic %q partition %d: %w", t.Name, len(t.Partitions), err)
		}
		if np.Leader != NoLeader {
			b.changedLeaders = append(b.changedLeaders, topicPartition{t.ID, int32(len(t.Partitions))})
		}
		t.Partitions = append(t.Partitions, np)
	}
	return nil
}

// AddPartitions adds partitions at the end of a topic (CreatePartitions).
type AddPartitions struct {
	Topic      UUID        `json:"topic"`
	Partitions []Partition `json:"partitions"`
}

func (*AddPartitions) Type() string { return "addPartitions" }

func (r *AddPartitions) apply(b *builder) error {
	if len(r.Partitions) == 0 {
		return fmt.Errorf("no partitions to add")
	}
	t, err := b.topicForChange(r.Topic)
	if err != nil {
		return err
	}
	return b.addPartitions(t, r.Partitions)
}

// DeleteTopic deletes a topic.
type DeleteTopic struct {
	Topic UUID `json:"topic"`
}

func (*DeleteTopic) Type() string { return "deleteTopic" }

func (r *DeleteTopic) apply(b *builder) error {
	t := b.im.topics[r.Topic]
	if t == nil {
		return fmt.Errorf("no topic with id %s", r.Topic)
	}
	b.deleteTopic(t)
	return nil
}

// ChangeTopicConfigs sets and deletes a topic's config overrides (the
// controller has validated the result).
type ChangeTopicConfigs struct {
	Topic  UUID              `json:"topic"`
	Set    map[string]string `json:"set,omitempty"`
	Delete []string          `json:"delete,omitempty"`
}

func (*ChangeTopicConfigs) Type() string { return "changeTopicConfigs" }

func (r *ChangeTopicConfigs) apply(b *builder) error {
	t, err := b.topicForChange(r.Topic)
	if err != nil {
		return err
	}
	cfg := maps.Clone(t.Configs)
	if cfg == nil {
		cfg = map[string]string{}
	}
	for _, k := range r.Delete {
		delete(cfg, k)
	}
	maps.Copy(cfg, r.Set)
	if len(cfg) == 0 {
		cfg = nil
	}
	t.Configs = cfg
	return nil
}

// ChangePartition changes one partition's state; a nil field is left as
// it is. The partition epoch grows by one; the leader epoch grows by one
// if the leader changes.
type ChangePartition struct {
	Topic            UUID        `json:"topic"`
	Partition        int32       `json:"partition"`
	Leader           *BrokerID   `json:"leader,omitempty"`
	ISR              *[]BrokerID `json:"isr,omitempty"`
	Replicas         *[]BrokerID `json:"replicas,omitempty"`
	AddingReplicas   *[]BrokerID `json:"addingReplicas,omitempty"`
	RemovingReplicas *[]BrokerID `json:"removingReplicas,omitempty"`
}

func (*ChangePartition) Type() string { return "changePartition" }

// MarshalJSON writes a present but nil list as [] (set it empty), not as
// null, which would read back as absent (leave it unchanged).
func (r *ChangePartition) MarshalJSON() ([]byte, error) {
	type plain ChangePartition // without this method
	c := plain(*r)
	for _, f := range []**[]BrokerID{&c.ISR, &c.Replicas, &c.AddingReplicas, &c.RemovingReplicas} {
		if *f != nil && **f == nil {
			*f = &[]BrokerID{}
		}
	}
	return json.Marshal(c)
}

func (r *ChangePartition) apply(b *builder) error {
	t, err := b.topicForChange(r.Topic)
	if err != nil {
		return err
	}
	cur := t.Partition(r.Partition)
	if cur == nil {
		return fmt.Errorf("topic %q has no partition %d", t.Name, r.Partition)
	}
	np := clonePartition(cur)
	set := func(dst *[]BrokerID, src *[]BrokerID) {
		if src != nil {
			*dst = slices.Clone(*src)
		}
	}
	set(&np.ISR, r.ISR)
	set(&np.Replicas, r.Replicas)
	set(&np.AddingReplicas, r.AddingReplicas)
	set(&np.RemovingReplicas, r.RemovingReplicas)
	if r.Leader != nil && *r.Leader != cur.Leader {
		if cur.LeaderEpoch == math.MaxInt32 {
			return fmt.Errorf("%s-%d: leader epoch exhausted", t.Name, r.Partition)
		}
		np.Leader = *r.Leader
		np.LeaderEpoch++
		b.changedLeaders = append(b.changedLeaders, topicPartition{t.ID, r.Partition})
	}
	if cur.PartitionEpoch == math.MaxInt32 {
		return fmt.Errorf("%s-%d: partition epoch exhausted", t.Name, r.Partition)
	}
	np.PartitionEpoch++
	if err := checkReplicaSet(np); err != nil {
		return fmt.Errorf("%s-%d: %w", t.Name, r.Partition, err)
	}
	t.Partitions[r.Partition] = np
	return nil
}

// AllocateProducerIDs gives a broker the next block of Size producer ids:
// [NextProducerID, NextProducerID+Size) of the image before the record.
type AllocateProducerIDs struct {
	Broker      BrokerID `json:"broker"`
	BrokerEpoch int64    `json:"brokerEpoch"`
	Size        int64    `json:"size"`
}

func (*AllocateProducerIDs) Type() string { return "allocateProducerIds" }

// MaxProducerIDBlock bounds one block (Kafka's blocks are 1000).
const MaxProducerIDBlock = 1 << 20

func (r *AllocateProducerIDs) apply(b *builder) error {
	if _, err := b.brokerAt(r.Broker, r.BrokerEpoch); err != nil {
		return err
	}
	if r.Size <= 0 || r.Size > MaxProducerIDBlock || b.im.nextProducerID > math.MaxInt64-r.Size {
		return fmt.Errorf("block of %d producer ids after %d", r.Size, b.im.nextProducerID)
	}
	b.im.nextProducerID += r.Size
	return nil
}

func clonePartition(p *Partition) *Partition {
	c := *p
	c.Replicas = slices.Clone(p.Replicas)
	c.ISR = slices.Clone(p.ISR)
	c.AddingReplicas = slices.Clone(p.AddingReplicas)
	c.RemovingReplicas = slices.Clone(p.RemovingReplicas)
	return &c
}
