package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// consumerProtocol is the protocol type of Kafka's consumer groups, whose
// member metadata is kmsg.ConsumerMemberMetadata.
const consumerProtocol = "consumer"

// OffsetCommit handles OffsetCommit v0–v9 (v10 names topics by id, which
// this package does not resolve: such partitions get UNKNOWN_TOPIC_ID).
// Generation −1 with an empty member id commits without membership and
// creates a "simple" group if needed.
func (c *Coordinator) OffsetCommit(now time.Time, req *kmsg.OffsetCommitRequest) (*kmsg.OffsetCommitResponse, Result) {
	var res Result
	resp := kmsg.NewPtrOffsetCommitResponse()
	resp.Version = req.Version
	code := c.validateCommit(now, req)
	g := c.groups[req.Group]
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case code != 0:
				rp.ErrorCode = code
			case req.Version >= 10 || t.Topic == "" && t.TopicID != [16]byte{}:
				rp.ErrorCode = kerr.UnknownTopicID.Code
			case p.Metadata != nil && len(*p.Metadata) > c.cfg.MaxMetadataBytes:
				rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				o := offset{offset: p.Offset, leaderEpoch: -1, commitTime: now.UnixMilli(), expireTime: -1}
				if req.Version >= 6 {
					o.leaderEpoch = p.LeaderEpoch
				}
				if p.Metadata != nil {
					o.metadata = *p.Metadata
				}
				if req.Version >= 2 && req.Version <= 4 && req.RetentionTimeMillis >= 0 {
					o.expireTime = o.commitTime + req.RetentionTimeMillis
				}
				setOffset(g, t.Topic, p.Partition, o)
				res.Records = append(res.Records, c.offsetRecord(g.id, t.Topic, p.Partition, &o))
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, res
}

// validateCommit is Kafka's ClassicGroup.validateOffsetCommit, creating the
// simple group for a generation −1 commit to an unknown group.
func (c *Coordinator) validateCommit(now time.Time, req *kmsg.OffsetCommitRequest) int16 {
	if code := c.coordinatorError(req.Group, true); code != 0 {
		return code
	}
	g := c.groups[req.Group]
	if g == nil {
		if req.Generation >= 0 {
			return kerr.IllegalGeneration.Code
		}
		g = newGroup(req.Group, now)
		c.groups[g.id] = g
	}
	if req.Generation < 0 && g.state == Empty {
		return 0 // offsets only: admin clients and manually assigned consumers
	}
	var m *member
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil {
		if code := g.validateMember(req.MemberID, req.InstanceID); code != 0 {
			return code
		}
		m = g.members[req.MemberID]
		if req.Generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
	} else if g.state != Empty {
		return kerr.UnknownMemberID.Code
	}
	if g.state == CompletingRebalance {
		// The member has its JoinGroup response but not its assignment.
		return kerr.RebalanceInProgress.Code
	}
	if m != nil {
		m.lastSeen = now // a commit is as good as a heartbeat
	}
	return 0
}

type fetchTopic struct {
	name       string
	id         [16]byte
	partitions []int32
}

// OffsetFetch handles OffsetFetch v0–v9 (v8+: several groups; v10 names
// topics by id, answered UNKNOWN_TOPIC_ID). A group or partition with
// nothing committed answers error 0, offset −1, leader epoch −1 and metadata
// "" (not null): librdkafka, sarama and kafkajs depend on it.
func (c *Coordinator) OffsetFetch(req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.Version = req.Version
	if req.Version < 8 {
		var topics []fetchTopic
		if req.Topics != nil {
			topics = make([]fetchTopic, 0, len(req.Topics))
			for _, t := range req.Topics {
				topics = append(topics, fetchTopic{name: t.Topic, partitions: t.Partitions})
			}
		}
		code := c.coordinatorError(req.Group, true)
		if code != 0 && req.Version >= 2 {
			resp.ErrorCode = code
			return resp
		}
		for _, ft := range c.fetch(req.Group, topics, code) {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = ft.name
			for _, p := range ft.partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	for _, rg := range req.Groups {
		out := kmsg.NewOffsetFetchResponseGroup()
		out.Group = rg.Group
		if out.ErrorCode = c.coordinatorError(rg.Group, true); out.ErrorCode != 0 {
			resp.Groups = append(resp.Groups, out)
			continue
		}
		var topics []fetchTopic
		if rg.Topics != nil {
			topics = make([]fetchTopic, 0, len(rg.Topics))
			for _, t := range rg.Topics {
				topics = append(topics, fetchTopic{name: t.Topic, id: t.TopicID, partitions: t.Partitions})
			}
		}
		for _, ft := range c.fetch(rg.Group, topics, 0) {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic, rt.TopicID = ft.name, ft.id
			rt.Partitions = ft.partitions
			out.Topics = append(out.Topics, rt)
		}
		resp.Groups = append(resp.Groups, out)
	}
	return resp
}

type fetchedTopic struct {
	name       string
	id         [16]byte
	partitions []kmsg.OffsetFetchResponseGroupTopicPartition
}

// fetch answers one group's offsets; topics nil means every committed one.
func (c *Coordinator) fetch(groupID string, topics []fetchTopic, code int16) []fetchedTopic {
	g := c.groups[groupID]
	if topics == nil {
		if g == nil || code != 0 {
			return nil
		}
		for _, t := range sortedTopics(g) {
			topics = append(topics, fetchTopic{name: t, partitions: sortedPartitions(g.offsets[t])})
		}
	}
	out := make([]fetchedTopic, 0, len(topics))
	for _, t := range topics {
		ft := fetchedTopic{name: t.name, id: t.id}
		for _, p := range t.partitions {
			rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			rp.Partition = p
			rp.Offset, rp.LeaderEpoch = -1, -1
			empty := ""
			rp.Metadata = &empty
			switch {
			case code != 0:
				rp.ErrorCode = code
			case t.name == "" && t.id != [16]byte{}:
				rp.ErrorCode = kerr.UnknownTopicID.Code
			case g != nil:
				if o, ok := g.offsets[t.name][p]; ok {
					md := o.metadata
					rp.Offset, rp.LeaderEpoch, rp.Metadata = o.offset, o.leaderEpoch, &md
				}
			}
			ft.partitions = append(ft.partitions, rp)
		}
		out = append(out, ft)
	}
	return out
}

// subscribedTopics parses the members' consumer protocol metadata for the
// selected protocol. ok is false when that is not possible (no protocol
// selected yet, or metadata that does not parse): then every topic counts as
// subscribed, as in Kafka.
func (g *group) subscribedTopics() (topics map[string]bool, ok bool) {
	if g.protocolType != consumerProtocol || g.protocol == "" {
		return nil, false
	}
	topics = map[string]bool{}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			return nil, false
		}
		for _, t := range md.Topics {
			topics[t] = true
		}
	}
	return topics, true
}

// OffsetDelete handles OffsetDelete v0: an empty group loses the offsets
// named; a consumer group with members keeps those of topics its members
// subscribe to (GROUP_SUBSCRIBED_TO_TOPIC); any other non-empty group is
// refused as a whole (NON_EMPTY_GROUP).
func (c *Coordinator) OffsetDelete(req *kmsg.OffsetDeleteRequest) (*kmsg.OffsetDeleteResponse, Result) {
	var res Result
	resp := kmsg.NewPtrOffsetDeleteResponse()
	resp.Version = req.Version
	if resp.ErrorCode = c.coordinatorError(req.Group, false); resp.ErrorCode != 0 {
		return resp, res
	}
	g := c.groups[req.Group]
	if g == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp, res
	}
	var subscribed map[string]bool
	known := true
	if g.state != Empty {
		if g.protocolType != consumerProtocol {
			resp.ErrorCode = kerr.NonEmptyGroup.Code
			return resp, res
		}
		subscribed, known = g.subscribedTopics()
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			if g.state != Empty && (!known || subscribed[t.Topic]) {
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else if _, ok := g.offsets[t.Topic][p.Partition]; ok {
				deleteOffset(g, t.Topic, p.Partition)
				res.Records = append(res.Records, c.offsetRecord(g.id, t.Topic, p.Partition, nil))
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	c.maybeForget(g)
	return resp, res
}

// maybeForget drops a group that only ever existed through offsets (a
// simple group) once it has none left: replaying its tombstones forgets it
// too.
func (c *Coordinator) maybeForget(g *group) {
	if g.state == Empty && len(g.members) == 0 && len(g.pending) == 0 && !g.hasOffsets() && g.protocolType == "" && g.generation == 0 {
		delete(c.groups, g.id)
	}
}

// expireOffsets is Kafka's cleanupGroupMetadata (KIP-211): an empty group's
// offsets expire offsets.retention after the group became empty; a stable
// consumer group's offsets of topics nobody subscribes to, and a simple
// group's offsets, that long after their commit; an offset committed with
// an explicit retention (OffsetCommit v2–v4) at its own expiry time. An
// empty group left without offsets is deleted.
func (c *Coordinator) expireOffsets(now time.Time, res *Result) {
	nowMs := now.UnixMilli()
	retentionMs := c.cfg.OffsetsRetention.Milliseconds()
	for _, id := range c.sortedGroupIDs() {
		g := c.groups[id]
		var base func(o offset) int64
		var keep map[string]bool
		switch {
		case g.protocolType == "" && g.state == Empty:
			base = func(o offset) int64 { return o.commitTime }
		case g.state == Empty:
			base = func(o offset) int64 {
				if g.stateTime >= 0 {
					return g.stateTime
				}
				return o.commitTime
			}
		case g.protocolType == consumerProtocol && g.state == Stable:
			subscribed, ok := g.subscribedTopics()
			if !ok {
				continue
			}
			keep = subscribed
			base = func(o offset) int64 { return o.commitTime }
		default:
			continue
		}
		for _, t := range sortedTopics(g) {
			if keep[t] {
				continue
			}
			ps := g.offsets[t]
			for _, p := range sortedPartitions(ps) {
				o := ps[p]
				expired := nowMs-base(o) >= retentionMs
				if o.expireTime >= 0 {
					expired = nowMs >= o.expireTime
				}
				if expired {
					deleteOffset(g, t, p)
					res.Records = append(res.Records, c.offsetRecord(id, t, p, nil))
				}
			}
		}
		if g.state == Empty && len(g.pending) == 0 && !g.hasOffsets() {
			delete(c.groups, id)
			res.Records = append(res.Records, c.groupTombstone(id))
		}
	}
}
