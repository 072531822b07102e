package broker

// CreateTopics (key 19), versions 0–7.
//
// Per topic, in Kafka's order of checks:
//   - a name given more than once in the request: INVALID_REQUEST for each;
//   - an invalid name: INVALID_TOPIC_EXCEPTION;
//   - num_partitions: -1 takes num.partitions; 0 or < -1 INVALID_PARTITIONS;
//   - replication_factor: -1 takes default.replication.factor; 0 or < -1,
//     or more than the one broker, INVALID_REPLICATION_FACTOR (with message);
//   - manual assignments (num_partitions and replication_factor must then be
//     -1, else INVALID_REQUEST): partitions 0..n-1 in any order, each with
//     exactly this broker as its replica, else INVALID_REPLICA_ASSIGNMENT;
//   - an existing name: TOPIC_ALREADY_EXISTS; one colliding under '.'/'_'
//     equivalence: INVALID_TOPIC_EXCEPTION (checked right after the name);
//   - configs through topicconfig.Parse: INVALID_CONFIG naming key and value
//     (a null value or a key given twice is INVALID_CONFIG / INVALID_REQUEST;
//     segment.bytes below 1 MiB, Kafka 4.0's minimum, too);
//   - max.broker.partitions and the file-handle budget (handles.go):
//     POLICY_VIOLATION naming the limit and the counts, before anything is
//     created (as Kafka 4.0 answers a request beyond its partition limit).
//
// A topic whose partitions fail to open half-way is not created, and the
// directories made for it are removed (topics.go, leftovers.go).
//
// validate_only (v1+) checks everything and creates nothing. v5+ responses
// carry the effective configs, partition count and replication factor (also
// for validate_only, as Kafka does), v7+ the topic id. The timeout is
// ignored: creation completes before the response.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/topicconfig"
	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleCreateTopics(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.CreateTopicsRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)

	count := map[string]int{}
	for _, rt := range req.Topics {
		count[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		var t *topic
		err := error(newAdminError(kerr.InvalidRequest, "Found multiple entries for topic '%s' in the request.", rt.Topic))
		if count[rt.Topic] == 1 {
			t, err = b.createTopicFromRequest(&rt, req.ValidateOnly)
		}
		if err != nil {
			st.ErrorCode, st.ErrorMessage = adminErrorCode(err)
			if st.ErrorCode == kerr.UnknownServerError.Code {
				b.log.Error("create topic", "topic", rt.Topic, "err", err)
			}
		} else {
			st.TopicID = t.id
			st.NumPartitions = int32(len(t.partitions))
			st.ReplicationFactor = 1
			st.Configs = b.createTopicsConfigs(t)
		}
		if req.Version < 1 {
			st.ErrorMessage = nil
		}
		resp.Topics = append(resp.Topics, st)
	}
	return wire.Completed(resp), nil
}

// createTopicFromRequest validates one requested topic and creates it
// (unless validateOnly).
func (b *Broker) createTopicFromRequest(rt *kmsg.CreateTopicsRequestTopic, validateOnly bool) (*topic, error) {
	if err := validateTopicName(rt.Topic); err != nil {
		return nil, err
	}
	// Kafka reports an existing topic before any other problem.
	if err := b.topics.checkNewName(rt.Topic); err != nil {
		return nil, err
	}
	partitions := rt.NumPartitions
	rf := rt.ReplicationFactor
	if len(rt.ReplicaAssignment) > 0 {
		if partitions != -1 || rf != -1 {
			return nil, newAdminError(kerr.InvalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.")
		}
		n, err := b.checkAssignment(rt.ReplicaAssignment)
		if err != nil {
			return nil, err
		}
		partitions, rf = n, 1
	}
	switch {
	case partitions == -1:
		partitions = b.defaultNumPartitions()
	case partitions <= 0:
		return nil, newAdminError(kerr.InvalidPartitions, "Number of partitions was set to an invalid non-positive value.")
	}
	if rf == -1 {
		rf = b.cfg.DefaultReplicationFactor
		if rf == 0 {
			rf = 1
		}
	}
	if rf <= 0 {
		return nil, newAdminError(kerr.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value.")
	}
	if rf > 1 {
		return nil, newAdminError(kerr.InvalidReplicationFactor, "Unable to replicate the partition %d time(s): The target replication factor of %d cannot be reached because only 1 broker(s) are registered.", rf, rf)
	}
	overrides := make(map[string]string, len(rt.Configs))
	for _, c := range rt.Configs {
		if c.Value == nil {
			return nil, &topicconfig.Error{Key: c.Name, Value: "null", Reason: "null value not supported for topic configs"}
		}
		if _, dup := overrides[c.Name]; dup {
			return nil, newAdminError(kerr.InvalidRequest, "Duplicate config key %s in the request.", c.Name)
		}
		overrides[c.Name] = *c.Value
	}
	return b.topics.createTopic(rt.Topic, partitions, overrides, validateOnly)
}

// checkAssignment validates a manual replica assignment for a one-broker
// cluster and returns the partition count.
func (b *Broker) checkAssignment(as []kmsg.CreateTopicsRequestTopicReplicaAssignment) (int32, error) {
	seen := make([]bool, len(as))
	for _, a := range as {
		if a.Partition < 0 || int(a.Partition) >= len(as) || seen[a.Partition] {
			return 0, newAdminError(kerr.InvalidReplicaAssignment, "Partitions should be consecutive integers starting from 0, got partition %d among %d assignments.", a.Partition, len(as))
		}
		seen[a.Partition] = true
		if len(a.Replicas) == 0 {
			return 0, newAdminError(kerr.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list for partition %d.", a.Partition)
		}
		for i, id := range a.Replicas {
			if id != b.cfg.NodeID {
				return 0, newAdminError(kerr.InvalidReplicaAssignment, "The manual partition assignment includes broker %d, but no such broker is registered.", id)
			}
			if slices.Contains(a.Replicas[:i], id) {
				return 0, newAdminError(kerr.InvalidReplicaAssignment, "The manual partition assignment includes the broker %d more than once.", id)
			}
		}
	}
	return int32(len(as)), nil
}

// createTopicsConfigs lists a topic's effective configs for v5+ responses.
func (b *Broker) createTopicsConfigs(t *topic) []kmsg.CreateTopicsResponseTopicConfig {
	entries := b.topicConfigEntries(t, false)
	out := make([]kmsg.CreateTopicsResponseTopicConfig, 0, len(entries))
	for _, e := range entries {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name = e.Name
		c.Value = e.Value
		c.ReadOnly = e.ReadOnly
		c.Source = int8(e.Source)
		c.IsSensitive = e.IsSensitive
		out = append(out, c)
	}
	return out
}
