package metadata

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Image is the cluster metadata at one offset of the controller's log.
// Immutable: Apply returns a new Image. The zero value is not valid; use
// Empty.
type Image struct {
	offset         int64
	clusterID      string
	brokers        map[BrokerID]*Broker
	topics         map[UUID]*Topic
	byName         map[string]UUID
	nextProducerID int64
}

// Empty is the image before the first batch.
func Empty() *Image {
	return &Image{brokers: map[BrokerID]*Broker{}, topics: map[UUID]*Topic{}, byName: map[string]UUID{}}
}

// Offset is the offset (Raft index) of the last batch applied, 0 for Empty.
func (im *Image) Offset() int64 { return im.offset }

// ClusterID is the cluster's id, "" until the Bootstrap record.
func (im *Image) ClusterID() string { return im.clusterID }

// NextProducerID is the first producer id not yet given to a broker.
func (im *Image) NextProducerID() int64 { return im.nextProducerID }

// Broker returns broker id, nil if it is not registered.
func (im *Image) Broker(id BrokerID) *Broker { return im.brokers[id] }

// Brokers returns the registered brokers by id.
func (im *Image) Brokers() []*Broker {
	out := slices.Collect(maps.Values(im.brokers))
	slices.SortFunc(out, func(a, b *Broker) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Topic returns the topic named name, nil if there is none.
func (im *Image) Topic(name string) *Topic {
	id, ok := im.byName[name]
	if !ok {
		return nil
	}
	return im.topics[id]
}

// TopicByID returns the topic with id, nil if there is none.
func (im *Image) TopicByID(id UUID) *Topic { return im.topics[id] }

// Topics returns every topic by name.
func (im *Image) Topics() []*Topic {
	out := slices.Collect(maps.Values(im.topics))
	slices.SortFunc(out, func(a, b *Topic) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// NumTopics is the number of topics.
func (im *Image) NumTopics() int { return len(im.topics) }

// ErrRefused wraps every reason Apply refuses a batch.
var ErrRefused = errors.New("metadata batch refused")

// Apply applies batch, the entry at offset of the controller's log, and
// returns the image after it. It is deterministic: every node applying the
// same batches from the same image gets the same image. A batch that is
// malformed or would break an invariant (see the package doc) is refused
// whole with an error wrapping ErrRefused, and im stays as it is; the
// controller writes only batches it checked, so a refusal means a bug or
// a corrupt log, and every node refuses it alike.
func (im *Image) Apply(offset int64, batch []Record) (*Image, error) {
	if offset <= im.offset {
		return im, fmt.Errorf("%w: offset %d is not after the image's %d", ErrRefused, offset, im.offset)
	}
	b := newBuilder(im, offset)
	for i, r := range batch {
		if r == nil {
			return im, fmt.Errorf("%w: offset %d record %d: nil", ErrRefused, offset, i)
		}
		if err := r.apply(b); err != nil {
			return im, fmt.Errorf("%w: offset %d record %d (%s): %w", ErrRefused, offset, i, r.Type(), err)
		}
	}
	if err := b.checkLeaders(); err != nil {
		return im, fmt.Errorf("%w: offset %d: %w", ErrRefused, offset, err)
	}
	return b.im, nil
}

// builder makes the next image copy-on-write: the maps are copied on
// their first change, and each changed broker, topic or partition is a new
// value; everything else is shared with the previous image.
type builder struct {
	im *Image

	brokersCopied, topicsCopied bool
	// copiedTopics are the topics already copied in this batch (their
	// partition slices are this batch's own).
	copiedTopics map[UUID]bool
	// changedLeaders are partitions whose leader this batch set;
	// newlyFenced are brokers this batch fenced or registered. checkLeaders
	// looks at these only.
	changedLeaders []topicPartition
	newlyFenced    []BrokerID
}

type topicPartition struct {
	topic     UUID
	partition int32
}

func newBuilder(prev *Image, offset int64) *builder {
	im := *prev
	im.offset = offset
	return &builder{im: &im, copiedTopics: map[UUID]bool{}}
}

// brokerAt returns broker id if it is registered at epoch (the epoch a
// record names must be the broker's current one).
func (b *builder) brokerAt(id BrokerID, epoch int64) (*Broker, error) {
	br := b.im.brokers[id]
	if br == nil || br.Epoch != epoch {
		return nil, fmt.Errorf("broker %d at epoch %d is not registered", id, epoch)
	}
	return br, nil
}

func (b *builder) setBroker(br *Broker) {
	if !b.brokersCopied {
		b.im.brokers = maps.Clone(b.im.brokers)
		b.brokersCopied = true
	}
	b.im.brokers[br.ID] = br
}

func (b *builder) deleteBroker(id BrokerID) {
	if !b.brokersCopied {
		b.im.brokers = maps.Clone(b.im.brokers)
		b.brokersCopied = true
	}
	delete(b.im.brokers, id)
}

func (b *builder) copyTopicMaps() {
	if !b.topicsCopied {
		b.im.topics = maps.Clone(b.im.topics)
		b.im.byName = maps.Clone(b.im.byName)
		b.topicsCopied = true
	}
}

// topicForChange returns a copy of topic id that this batch may change
// (its Partitions slice is its own; the partitions are still shared).
func (b *builder) topicForChange(id UUID) (*Topic, error) {
	t := b.im.topics[id]
	if t == nil {
		return nil, fmt.Errorf("no topic with id %s", id)
	}
	if b.copiedTopics[id] {
		return t, nil
	}
	c := *t
	c.Partitions = slices.Clone(t.Partitions)
	b.copyTopicMaps()
	b.im.topics[id] = &c
	b.copiedTopics[id] = true
	return &c, nil
}

func (b *builder) addTopic(t *Topic) {
	b.copyTopicMaps()
	b.im.topics[t.ID] = t
	b.im.byName[t.Name] = t.ID
	b.copiedTopics[t.ID] = true
}

func (b *builder) deleteTopic(t *Topic) {
	b.copyTopicMaps()
	delete(b.im.topics, t.ID)
	delete(b.im.byName, t.Name)
}

// checkLeaders: after the batch, every partition whose leader it set, and
// every partition of a broker it fenced, is led by a registered, unfenced
// broker or by nobody. Scanning for fenced brokers costs a pass over all
// partitions, which only batches that fence pay.
func (b *builder) checkLeaders() error {
	ok := func(leader BrokerID) bool {
		if leader == NoLeader {
			return true
		}
		br := b.im.brokers[leader]
		return br != nil && !br.Fenced
	}
	for _, tp := range b.changedLeaders {
		t := b.im.topics[tp.topic]
		if t == nil {
			continue // deleted later in the batch
		}
		if p := t.Partition(tp.partition); p != nil && !ok(p.Leader) {
			return fmt.Errorf("partition %s-%d led by broker %d, which is fenced or not registered", t.Name, tp.partition, p.Leader)
		}
	}
	if len(b.newlyFenced) == 0 {
		return nil
	}
	for _, t := range b.im.topics {
		for i, p := range t.Partitions {
			if slices.Contains(b.newlyFenced, p.Leader) && !ok(p.Leader) {
				return fmt.Errorf("broker %d is fenced but still leads %s-%d", p.Leader, t.Name, i)
			}
		}
	}
	return nil
}
