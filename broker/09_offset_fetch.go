package broker

// OffsetFetch (key 9), versions 0–9.
//
// v0–v7 fetch one group's offsets (null topics, v2+: every committed one);
// v8+ several groups, each with its own error. A group or partition with
// nothing committed answers error 0, offset −1, leader epoch −1 and
// metadata "" (librdkafka, sarama and kafkajs depend on it). v10 names
// topics by id and is not advertised. require_stable (v7+) needs no wait:
// without transactions no offset is ever pending. While the coordinator
// loads: COORDINATOR_LOAD_IN_PROGRESS (per group from v8, top-level from v2,
// per partition before).

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/group"
	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleOffsetFetch(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.OffsetFetchRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	var resp *kmsg.OffsetFetchResponse
	if b.groups.locked(func(c *group.Coordinator, _ time.Time) { resp = c.OffsetFetch(req) }) {
		resp = offsetFetchError(req, kerr.CoordinatorLoadInProgress.Code)
	}
	return wire.Completed(resp), nil
}

func offsetFetchError(req *kmsg.OffsetFetchRequest, code int16) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	switch {
	case req.Version >= 8:
		for _, g := range req.Groups {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, code
			resp.Groups = append(resp.Groups, rg)
		}
	case req.Version >= 2:
		resp.ErrorCode = code
	default:
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.ErrorCode = p, -1, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}
	return resp
}
