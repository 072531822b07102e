package broker

// Adopting a data directory into the metadata quorum. Before the
// controller quorum, a broker kept its topics in <data-dir>/topics.json.
// When this node's controller finds the metadata log empty, the first
// batch it writes (Bootstrap) names the cluster id of meta.properties and
// recreates every topic of topics.json with its id, overrides and
// partition count (and producer ids start past those the node's
// producer-ids file had reserved), each partition on this node alone (replica and ISR,
// no leader yet: the broker takes the leadership once it has registered
// and caught up). Once that batch is committed, topics.json is renamed
// topics.json.adopted and never read again: the log is the only source
// of truth. A data directory restored from an object store's cluster
// metadata goes the same way (bootstrapTopics writes topics.json first).

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/stratalog/strata/broker/txn"
	"github.com/stratalog/strata/controller/metadata"
	"github.com/stratalog/strata/topicconfig"
)

// adoptedTopicsFile is topics.json once adopted, kept for the operator.
const adoptedTopicsFile = topicsFile + ".adopted"

// adoptionRecords returns the bootstrap batch of a new metadata log for
// data directory dir of node: the cluster id and the topics of its
// topics.json (none without one).
func adoptionRecords(dir string, node metadata.BrokerID, clusterID string) ([]metadata.Record, error) {
	// Producer ids go on past every id this node handed out before.
	nextPID, err := txn.ReadLegacyNextProducerID(dir)
	if err != nil {
		return nil, err
	}
	recs := []metadata.Record{&metadata.Bootstrap{ClusterID: clusterID, NextProducerID: nextPID}}
	pt, found, err := readTopicsFile(filepath.Join(dir, topicsFile))
	if err != nil || !found {
		return recs, err
	}
	seen := map[string]bool{}
	for _, p := range pt.Topics {
		ct, err := adoptTopic(p, node)
		if err != nil {
			return nil, fmt.Errorf("%s: topic %q: %w", topicsFile, p.Name, err)
		}
		if seen[ct.Name] {
			return nil, fmt.Errorf("%s: topic %q listed twice", topicsFile, p.Name)
		}
		seen[ct.Name] = true
		recs = append(recs, ct)
	}
	return recs, nil
}

// adoptTopic translates one topics.json entry.
func adoptTopic(p persistedTopic, node metadata.BrokerID) (*metadata.CreateTopic, error) {
	if err := validateTopicName(p.Name); err != nil {
		return nil, err
	}
	id, err := parseTopicID(p.ID)
	if err != nil {
		return nil, err
	}
	if p.Partitions < 1 || p.Partitions > maxPartitionsPerTopic {
		return nil, fmt.Errorf("invalid partition count %d", p.Partitions)
	}
	configs := p.Configs
	if _, err := topicconfig.Parse(topicconfig.Default(), configs); err != nil {
		// A topic created before Kafka 4.0's 1 MiB minimum keeps its
		// small segments, as internal.segment.bytes.
		legacy, ok := topicconfig.MigrateLegacySegmentBytes(configs)
		if !ok {
			return nil, err
		}
		configs = legacy
	}
	ct := &metadata.CreateTopic{Name: p.Name, ID: id, Configs: cloneStrings(configs)}
	for range p.Partitions {
		ct.Partitions = append(ct.Partitions, metadata.Partition{
			Replicas: []metadata.BrokerID{node}, ISR: []metadata.BrokerID{node}, Leader: metadata.NoLeader,
		})
	}
	return ct, nil
}

// retireTopicsFile renames an adopted topics.json once the metadata log
// holds the cluster (whether this start or an earlier one adopted it).
func (b *Broker) retireTopicsFile(im *metadata.Image) error {
	if im.ClusterID() == "" {
		return nil
	}
	from := filepath.Join(b.cfg.DataDir, topicsFile)
	if _, err := os.Stat(from); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.Rename(from, filepath.Join(b.cfg.DataDir, adoptedTopicsFile)); err != nil {
		return fmt.Errorf("retire %s: %w", topicsFile, err)
	}
	b.log.Info("topics.json adopted into the metadata log; kept as "+adoptedTopicsFile, "topics", len(im.Topics()), "offset", im.Offset())
	return nil
}
