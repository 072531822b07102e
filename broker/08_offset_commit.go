package broker

// OffsetCommit (key 8), versions 0–9.
//
// v10 names topics by id and is not advertised (broker/group does not
// resolve ids). Commits from a member are checked against its generation
// (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS, v7+
// FENCED_INSTANCE_ID); generation −1 with an empty member id commits
// without membership ("simple" groups: admin tools, manually assigned
// consumers). Metadata longer than 4096 bytes is OFFSET_METADATA_TOO_LARGE.
// v2–v4's retention_time_ms is honoured (Kafka's v1 offset value). A
// partition of a topic this broker does not host is
// UNKNOWN_TOPIC_OR_PARTITION and not stored, as Kafka answers. Each
// commit is an offset record in __consumer_offsets, durable (fsynced)
// before the response. While the coordinator loads:
// COORDINATOR_LOAD_IN_PROGRESS for every partition; a failed append:
// NOT_COORDINATOR.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/group"
	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleOffsetCommit(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.OffsetCommitRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	known, unknown := splitUnknownPartitions(b, req)
	if known == nil {
		return wire.Completed(mergeCommitResponse(req, kmsg.NewPtrOffsetCommitResponse(), unknown)), nil
	}
	return deferGroupReply(b, r,
		func(c *group.Coordinator, now time.Time) (kmsg.Response, group.Ticket, group.Result) {
			resp, res := c.OffsetCommit(now, known)
			return mergeCommitResponse(req, resp, unknown), 0, res
		},
		func(code int16) kmsg.Response {
			resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
			for _, t := range req.Topics {
				rt := kmsg.NewOffsetCommitResponseTopic()
				rt.Topic, rt.TopicID = t.Topic, t.TopicID
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetCommitResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p.Partition, code
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp
		},
		nil,
	), nil
}

type topicPartition struct {
	topic     string
	partition int32
}

// splitUnknownPartitions returns req without the partitions of topics (or
// partition indexes) this broker does not host, and those left out. known
// is nil if nothing is left; it is req itself if nothing was removed.
func splitUnknownPartitions(b *Broker, req *kmsg.OffsetCommitRequest) (known *kmsg.OffsetCommitRequest, unknown map[topicPartition]bool) {
	var topics []kmsg.OffsetCommitRequestTopic
	for _, t := range req.Topics {
		tp := b.topics.get(t.Topic)
		kt := t
		kt.Partitions = nil
		for _, p := range t.Partitions {
			if t.Topic != "" && !tp.has(p.Partition) {
				if unknown == nil {
					unknown = map[topicPartition]bool{}
				}
				unknown[topicPartition{t.Topic, p.Partition}] = true
				continue
			}
			kt.Partitions = append(kt.Partitions, p)
		}
		if len(kt.Partitions) > 0 {
			topics = append(topics, kt)
		}
	}
	switch {
	case unknown == nil:
		return req, nil
	case len(topics) == 0:
		return nil, unknown
	}
	k := *req
	k.Topics = topics
	return &k, unknown
}

// mergeCommitResponse answers every partition of req in request order:
// UNKNOWN_TOPIC_OR_PARTITION for the unknown ones, the coordinator's
// answer (resp, to the known ones) for the rest.
func mergeCommitResponse(req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, unknown map[topicPartition]bool) *kmsg.OffsetCommitResponse {
	if len(unknown) == 0 {
		return resp
	}
	answered := map[topicPartition]int16{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			answered[topicPartition{t.Topic, p.Partition}] = p.ErrorCode
		}
	}
	out := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	out.ThrottleMillis = resp.ThrottleMillis
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			tp := topicPartition{t.Topic, p.Partition}
			if unknown[tp] {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				rp.ErrorCode = answered[tp]
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out
}
