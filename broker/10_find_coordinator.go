package broker

// FindCoordinator (key 10), versions 0–6.
//
// A group is coordinated by the leader of its __consumer_offsets partition
// (group.PartitionFor), so a group key (key type 0; v0 has no key type) is
// answered with that broker's id and address from the metadata image,
// even while its coordinator is still loading: the group APIs then answer
// COORDINATOR_LOAD_IN_PROGRESS and clients retry there. A partition with
// no leader is COORDINATOR_NOT_AVAILABLE, which clients retry. v4+ batches keys (coordinator_keys) and answers
// one entry per key.
//
// Transactions are not supported yet: a transaction key (key type 1) gets
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, the code Kafka gives a client not
// allowed to use that transactional id, which fails the client at once
// (as InitProducerId and transactional Produce do here) instead of
// COORDINATOR_NOT_AVAILABLE, which clients retry forever. Any other key
// type is INVALID_REQUEST.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/group"
	"github.com/stratalog/strata/controller/metadata"
	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleFindCoordinator(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.FindCoordinatorRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	answer := func(key string) (node int32, h string, p int32, code int16, msg *string) {
		switch req.CoordinatorType {
		case 0:
			id, ok := b.groupCoordinator(key)
			if ok {
				if h, p, ok = b.brokerAddr(id); ok {
					return int32(id), h, p, 0, nil
				}
			}
			m := "The group's coordinator partition has no leader right now."
			return -1, "", -1, kerr.CoordinatorNotAvailable.Code, &m
		case 1:
			m := "Strata does not support transactions yet."
			return -1, "", -1, kerr.TransactionalIDAuthorizationFailed.Code, &m
		default:
			m := "Unknown coordinator type."
			return -1, "", -1, kerr.InvalidRequest.Code, &m
		}
	}
	if req.Version < 4 {
		resp.NodeID, resp.Host, resp.Port, resp.ErrorCode, resp.ErrorMessage = answer(req.CoordinatorKey)
		if req.Version == 0 {
			resp.ErrorMessage = nil
		}
		return wire.Completed(resp), nil
	}
	for _, key := range req.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.NodeID, c.Host, c.Port, c.ErrorCode, c.ErrorMessage = answer(key)
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return wire.Completed(resp), nil
}

// groupCoordinator returns the broker leading group's __consumer_offsets
// partition; false if there is none.
func (b *Broker) groupCoordinator(groupID string) (metadata.BrokerID, bool) {
	t := b.topics.get(offsetsTopic)
	if t == nil || t.meta == nil || len(t.meta.Partitions) == 0 {
		return metadata.NoLeader, false
	}
	p := t.meta.Partitions[group.PartitionFor(groupID, int32(len(t.meta.Partitions)))]
	return p.Leader, p.Leader != metadata.NoLeader
}
