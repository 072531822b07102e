package rpc

// The topic admin requests brokers forward: CreateTopics (key 19, v0–7),
// DeleteTopics (key 20, v0–6), CreatePartitions (key 37, v0–3) and
// ElectLeaders (key 43, v0–2). Checks and their order are the Machine's
// (controller/machine_topics.go); here requests are translated, with the
// checks that concern only the request's form:
//   - CreateTopics: a null config value is INVALID_CONFIG, a config key
//     given twice INVALID_REQUEST; a manual assignment must name
//     partitions 0..n-1 (any order), else INVALID_REPLICA_ASSIGNMENT.
//     v5+ answers carry the effective configs (with sources), partition
//     count and replication factor, also for validate_only; v7+ the id.
//     Error messages from v1.
//   - DeleteTopics: v0–5 name topics, v6 names each by name or id. Error
//     messages from v5, ids in the answer from v6.
//   - ElectLeaders: PREFERRED elections only; UNCLEAN (v1+ type 1) is
//     INVALID_REQUEST until replication brings ISR-based elections. A null
//     topic list means every partition.
// The request timeouts are not used: an answer comes once the change is
// committed, or NOT_CONTROLLER / REQUEST_TIMED_OUT if that is not known.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/controller"
	"github.com/stratalog/strata/controller/metadata"
	"github.com/stratalog/strata/topicconfig"
)

func (s *Server) createTopics(ctx context.Context, _ conn, req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	named := map[string]int{}
	for _, rt := range req.Topics {
		named[rt.Topic]++
	}
	// Topics with a malformed request entry are answered here, unless
	// their name is given twice: the Machine refuses every mention of
	// such a name first, as Kafka does.
	formErr := make([]error, len(req.Topics))
	asked := make([]int, len(req.Topics)) // index in asks, or -1
	var asks []controller.NewTopic
	for i, rt := range req.Topics {
		nt, err := newTopic(rt, req.ValidateOnly)
		if err != nil && named[rt.Topic] == 1 {
			formErr[i], asked[i] = err, -1
			continue
		}
		asked[i] = len(asks)
		asks = append(asks, nt)
	}
	var results []controller.CreateTopicResult
	var callErr error
	if len(asks) > 0 {
		results, callErr = s.d.CreateTopics(ctx, asks)
	}
	for i, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		var err error
		switch j := asked[i]; {
		case j < 0:
			err = formErr[i]
		case callErr != nil:
			err = callErr
		case results[j].Err != nil:
			err = results[j].Err
		default:
			r := &results[j]
			st.TopicID = r.ID
			st.NumPartitions, st.ReplicationFactor = r.NumPartitions, r.ReplicationFactor
			if req.Version >= 5 {
				st.Configs = s.createdConfigs(r.Config, asks[j].Configs)
			}
		}
		st.ErrorCode, st.ErrorMessage = errorOf(err)
		if req.Version < 1 {
			st.ErrorMessage = nil
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// newTopic translates one requested topic.
func newTopic(rt kmsg.CreateTopicsRequestTopic, validateOnly bool) (controller.NewTopic, error) {
	nt := controller.NewTopic{
		Name: rt.Topic, NumPartitions: rt.NumPartitions, ReplicationFactor: rt.ReplicationFactor,
		ValidateOnly: validateOnly, Configs: make(map[string]string, len(rt.Configs)),
	}
	for _, c := range rt.Configs {
		if c.Value == nil {
			return nt, &topicconfig.Error{Key: c.Name, Value: "null", Reason: "null value not supported for topic configs"}
		}
		if _, dup := nt.Configs[c.Name]; dup {
			return nt, refuse(kerr.InvalidRequest, "Duplicate config key %s in the request.", c.Name)
		}
		nt.Configs[c.Name] = *c.Value
	}
	if len(rt.ReplicaAssignment) > 0 {
		nt.Assignment = make([][]metadata.BrokerID, len(rt.ReplicaAssignment))
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(rt.ReplicaAssignment) || nt.Assignment[a.Partition] != nil {
				return nt, refuse(kerr.InvalidReplicaAssignment, "Partitions should be consecutive integers starting from 0, got partition %d among %d assignments.", a.Partition, len(rt.ReplicaAssignment))
			}
			nt.Assignment[a.Partition] = brokerIDs(a.Replicas)
		}
	}
	return nt, nil
}

func brokerIDs(ids []int32) []metadata.BrokerID {
	out := make([]metadata.BrokerID, len(ids))
	for i, id := range ids {
		out[i] = metadata.BrokerID(id)
	}
	return out
}

// createdConfigs lists a new topic's effective configs for v5+ answers.
func (s *Server) createdConfigs(effective topicconfig.Config, overrides map[string]string) []kmsg.CreateTopicsResponseTopicConfig {
	entries := topicconfig.Describe(effective, overrides, s.topicDefaults)
	out := make([]kmsg.CreateTopicsResponseTopicConfig, 0, len(entries))
	for _, e := range entries {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name, c.Value, c.Source = e.Key, &e.Value, int8(e.Source)
		out = append(out, c)
	}
	return out
}

func (s *Server) deleteTopics(ctx context.Context, _ conn, req *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	var refs []controller.TopicRef
	if req.Version >= 6 {
		for _, t := range req.Topics {
			ref := controller.TopicRef{ID: metadata.UUID(t.TopicID)}
			if t.Topic != nil {
				ref.Name = *t.Topic
			}
			refs = append(refs, ref)
		}
	} else {
		for _, n := range req.TopicNames {
			refs = append(refs, controller.TopicRef{Name: n})
		}
	}
	results, callErr := s.d.DeleteTopics(ctx, refs)
	for i, ref := range refs {
		st := kmsg.NewDeleteTopicsResponseTopic()
		name, id, err := ref.Name, ref.ID, callErr
		if callErr == nil {
			name, id, err = results[i].Name, results[i].ID, results[i].Err
		}
		if name != "" || req.Version < 6 {
			st.Topic = &name
		}
		if req.Version >= 6 {
			st.TopicID = id
		}
		st.ErrorCode, st.ErrorMessage = errorOf(err)
		if req.Version < 5 {
			st.ErrorMessage = nil
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (s *Server) createPartitions(ctx context.Context, _ conn, req *kmsg.CreatePartitionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	reqs := make([]controller.NewPartitions, len(req.Topics))
	for i, t := range req.Topics {
		reqs[i] = controller.NewPartitions{Topic: t.Topic, Count: t.Count, ValidateOnly: req.ValidateOnly}
		if t.Assignment != nil {
			reqs[i].Assignment = make([][]metadata.BrokerID, len(t.Assignment))
			for j, a := range t.Assignment {
				reqs[i].Assignment[j] = brokerIDs(a.Replicas)
			}
		}
	}
	results, callErr := s.d.CreatePartitions(ctx, reqs)
	for i, t := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = t.Topic
		err := callErr
		if callErr == nil {
			err = results[i].Err
		}
		st.ErrorCode, st.ErrorMessage = errorOf(err)
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (s *Server) electLeaders(ctx context.Context, _ conn, req *kmsg.ElectLeadersRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	if req.Version >= 1 && req.ElectionType != 0 {
		// Every partition of the request gets the answer too.
		err := refuse(kerr.InvalidRequest, "election type %d: only preferred-leader elections (0) are supported", req.ElectionType)
		resp.ErrorCode, _ = errorOf(err)
		for _, t := range req.Topics {
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewElectLeadersResponseTopicPartition()
				rp.Partition = p
				rp.ErrorCode, rp.ErrorMessage = errorOf(err)
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	var parts []controller.TopicPartitions
	if req.Topics != nil {
		parts = []controller.TopicPartitions{}
		for _, t := range req.Topics {
			parts = append(parts, controller.TopicPartitions{Topic: t.Topic, Partitions: t.Partitions})
		}
	}
	results, err := s.d.ElectPreferredLeaders(ctx, parts)
	if err != nil {
		code, _ := errorOf(err)
		if req.Version >= 1 {
			resp.ErrorCode = code
			return resp
		}
		// v0 has no top-level error: every named partition carries it.
		for _, tp := range parts {
			for _, p := range tp.Partitions {
				results = append(results, controller.ElectionResult{Topic: tp.Topic, Partition: p, Err: err})
			}
		}
	}
	byTopic := map[string]int{}
	for _, r := range results {
		i, ok := byTopic[r.Topic]
		if !ok {
			i = len(resp.Topics)
			byTopic[r.Topic] = i
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = r.Topic
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewElectLeadersResponseTopicPartition()
		rp.Partition = r.Partition
		rp.ErrorCode, rp.ErrorMessage = errorOf(r.Err)
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
	}
	return resp
}
