package broker

// CreatePartitions (key 37), versions 0–3.
//
// Grows a topic to `count` partitions; the count may only increase (equal or
// lower is INVALID_PARTITIONS with a message), up to Strata's per-topic
// limit. A manual assignment, if given, must list exactly count − current
// new partitions, each with this broker as its only replica (else
// INVALID_REPLICA_ASSIGNMENT). An unknown topic is UNKNOWN_TOPIC_OR_PARTITION,
// a topic named twice INVALID_REQUEST for each mention. New partitions
// beyond max.broker.partitions or the file-handle budget are
// POLICY_VIOLATION (handles.go), checked before anything is created.
// validate_only changes nothing. New partitions are opened and topics.json
// is updated before the response; if one fails to open, the others are
// deleted and their directories removed (topics.go); the timeout is ignored.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleCreatePartitions(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.CreatePartitionsRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	count := map[string]int{}
	for _, rt := range req.Topics {
		count[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var err error
		switch {
		case count[rt.Topic] > 1:
			err = newAdminError(kerr.InvalidRequest, "Duplicate topic in request: %s", rt.Topic)
		default:
			err = b.checkNewPartitionsAssignment(&rt)
		}
		if err == nil {
			err = b.topics.addPartitions(rt.Topic, rt.Count, req.ValidateOnly)
		}
		st.ErrorCode, st.ErrorMessage = adminErrorCode(err)
		if st.ErrorCode == kerr.UnknownServerError.Code {
			b.log.Error("create partitions", "topic", rt.Topic, "err", err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return wire.Completed(resp), nil
}

// checkNewPartitionsAssignment validates a manual assignment, if any.
func (b *Broker) checkNewPartitionsAssignment(rt *kmsg.CreatePartitionsRequestTopic) error {
	if rt.Assignment == nil {
		return nil
	}
	t := b.topics.get(rt.Topic)
	if t == nil {
		return newAdminError(kerr.UnknownTopicOrPartition, "This server does not host topic '%s'.", rt.Topic)
	}
	if add := int(rt.Count) - len(t.partitions); add > 0 && len(rt.Assignment) != add {
		return newAdminError(kerr.InvalidReplicaAssignment, "Attempted to add %d additional partition(s), but only %d assignment(s) were specified.", add, len(rt.Assignment))
	}
	for _, a := range rt.Assignment {
		if len(a.Replicas) != 1 || a.Replicas[0] != b.cfg.NodeID {
			return newAdminError(kerr.InvalidReplicaAssignment, "Each new partition must be assigned to broker %d alone (the only broker, replication factor 1), got %d replicas starting with %v.",
				b.cfg.NodeID, len(a.Replicas), a.Replicas[:min(len(a.Replicas), 5)])
		}
	}
	return nil
}
