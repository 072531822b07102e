package broker

import (
	"sync"

	"github.com/stratalog/strata/broker/replica"
)

// topic is one topic hosted by this broker.
type topic struct {
	name       string
	id         [16]byte
	overrides  map[string]string
	config     TopicConfig
	partitions []*replica.Partition
}

// topicRegistry owns the set of topics and their partitions.
type topicRegistry struct {
	b  *Broker
	mu struct {
		sync.RWMutex
		byName map[string]*topic
		byID   map[[16]byte]*topic
	}
}

func openTopicRegistry(b *Broker) (*topicRegistry, error) {
	r := &topicRegistry{b: b}
	r.mu.byName = map[string]*topic{}
	r.mu.byID = map[[16]byte]*topic{}
	return r, nil
}

func (r *topicRegistry) close() error { return nil }

func (r *topicRegistry) get(name string) *topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.mu.byName[name]
}

func (r *topicRegistry) getByID(id [16]byte) *topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.mu.byID[id]
}

func (r *topicRegistry) create(name string, partitions int32, overrides map[string]*string) (*topic, error) {
	return nil, nil
}
