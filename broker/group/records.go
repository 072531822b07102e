package group

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record versions written, as Kafka 3.x writes them: offset commit keys are
// version 1 (0 is the same layout), group metadata keys version 2; offset
// values version 3 (leader epoch) unless the commit carried an explicit
// retention (OffsetCommit v2–v4), which needs version 1's expire timestamp;
// group metadata values version 3 (static members). Every older version is
// read.
const (
	offsetKeyVersion   = 1
	groupKeyVersion    = 2
	offsetValueVersion = 3
	groupValueVersion  = 3
)

var (
	// ErrCorruptRecord: a __consumer_offsets record that does not decode.
	ErrCorruptRecord = errors.New("group: corrupt __consumer_offsets record")
	// ErrUnknownRecord: a well-formed key of a version this coordinator does
	// not know (for example a KIP-848 consumer group record). Nothing is
	// applied; a driver may log it and go on.
	ErrUnknownRecord = errors.New("group: unknown __consumer_offsets record type")
)

func (c *Coordinator) offsetRecord(groupID, topic string, partition int32, o *offset) Record {
	key := kmsg.NewOffsetCommitKey()
	key.Version = offsetKeyVersion
	key.Group, key.Topic, key.Partition = groupID, topic, partition
	rec := Record{Partition: c.partition(groupID), Key: key.AppendTo(nil)}
	if o == nil {
		return rec
	}
	val := kmsg.NewOffsetCommitValue()
	val.Version = offsetValueVersion
	if o.expireTime >= 0 {
		val.Version = 1
		val.ExpireTimestamp = o.expireTime
	}
	val.Offset = o.offset
	val.LeaderEpoch = o.leaderEpoch
	val.Metadata = o.metadata
	val.CommitTimestamp = o.commitTime
	rec.Value = val.AppendTo(nil)
	return rec
}

func (c *Coordinator) groupKey(groupID string) []byte {
	key := kmsg.NewGroupMetadataKey()
	key.Version = groupKeyVersion
	key.Group = groupID
	return key.AppendTo(nil)
}

// groupRecord encodes g's persistent state: what Kafka's storeGroup writes.
func (c *Coordinator) groupRecord(g *group) Record {
	val := kmsg.NewGroupMetadataValue()
	val.Version = groupValueVersion
	val.ProtocolType = g.protocolType
	val.Generation = g.generation
	if g.protocol != "" {
		p := g.protocol
		val.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		val.Leader = &l
	}
	val.CurrentStateTimestamp = g.stateTime
	for _, id := range g.order {
		m := g.members[id]
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		vm.InstanceID = m.instanceID
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		vm.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		vm.Subscription = m.metadataFor(g.protocol)
		vm.Assignment = m.assignment
		if vm.Assignment == nil {
			vm.Assignment = []byte{}
		}
		if vm.Subscription == nil {
			vm.Subscription = []byte{}
		}
		val.Members = append(val.Members, vm)
	}
	return Record{Partition: c.partition(g.id), Key: c.groupKey(g.id), Value: val.AppendTo(nil)}
}

func (c *Coordinator) groupTombstone(groupID string) Record {
	return Record{Partition: c.partition(groupID), Key: c.groupKey(groupID)}
}

// Apply replays one __consumer_offsets record (value nil: a tombstone) into
// the coordinator's state, as Kafka does when it loads a partition. now
// starts the session clock of members loaded from group metadata. Records
// of one partition must be applied in offset order. A record that does not
// decode returns an error wrapping ErrCorruptRecord or ErrUnknownRecord and
// changes nothing; Apply never panics on any input.
//
// Apply is for replay, before Load starts serving the partition: applied to
// a group that is being served, a group metadata record replaces the live
// membership and the requests waiting on it are never answered.
func (c *Coordinator) Apply(now time.Time, key, value []byte) error {
	if len(key) < 2 {
		return fmt.Errorf("%w: key of %d bytes", ErrCorruptRecord, len(key))
	}
	switch version := int16(key[0])<<8 | int16(key[1]); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("%w: offset commit key: %v", ErrCorruptRecord, err)
		}
		return c.applyOffset(k, value)
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("%w: group metadata key: %v", ErrCorruptRecord, err)
		}
		return c.applyGroup(now, k.Group, value)
	default:
		return fmt.Errorf("%w: key version %d", ErrUnknownRecord, version)
	}
}

func (c *Coordinator) applyOffset(k kmsg.OffsetCommitKey, value []byte) error {
	g := c.groups[k.Group]
	if value == nil {
		if g == nil {
			return nil
		}
		deleteOffset(g, k.Topic, k.Partition)
		if g.state == Empty && len(g.members) == 0 && !g.hasOffsets() && g.protocolType == "" && g.generation == 0 {
			delete(c.groups, g.id) // a simple group lives only through its offsets
		}
		return nil
	}
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(value); err != nil {
		return fmt.Errorf("%w: offset commit value for %q %s/%d: %v", ErrCorruptRecord, k.Group, k.Topic, k.Partition, err)
	}
	if v.Version < 0 || v.Version > 4 {
		return fmt.Errorf("%w: offset commit value version %d", ErrUnknownRecord, v.Version)
	}
	o := offset{offset: v.Offset, leaderEpoch: -1, metadata: v.Metadata, commitTime: v.CommitTimestamp, expireTime: -1}
	if v.Version >= 3 {
		o.leaderEpoch = v.LeaderEpoch
	}
	if v.Version == 1 {
		o.expireTime = v.ExpireTimestamp
	}
	if g == nil {
		// Offsets without group metadata: a simple group.
		g = newGroup(k.Group, time.UnixMilli(v.CommitTimestamp))
		g.stateTime = -1
		c.groups[k.Group] = g
	}
	setOffset(g, k.Topic, k.Partition, o)
	return nil
}

func (c *Coordinator) applyGroup(now time.Time, id string, value []byte) error {
	g := c.groups[id]
	if value == nil {
		if g == nil {
			return nil
		}
		c.failWaiting(g, nil)
		if !g.hasOffsets() {
			delete(c.groups, id)
			return nil
		}
		// Offsets outlive the metadata (their own tombstones may follow).
		offsets := g.offsets
		g = newGroup(id, now)
		g.stateTime = -1
		g.offsets = offsets
		c.groups[id] = g
		return nil
	}
	var v kmsg.GroupMetadataValue
	if err := v.ReadFrom(value); err != nil {
		return fmt.Errorf("%w: group metadata value for %q: %v", ErrCorruptRecord, id, err)
	}
	if v.Version < 0 || v.Version > 4 {
		return fmt.Errorf("%w: group metadata value version %d", ErrUnknownRecord, v.Version)
	}
	ng := newGroup(id, now)
	ng.protocolType = v.ProtocolType
	ng.generation = v.Generation
	if v.Protocol != nil {
		ng.protocol = *v.Protocol
	}
	if v.Leader != nil {
		ng.leader = *v.Leader
	}
	ng.stateTime = -1
	if v.Version >= 2 {
		ng.stateTime = v.CurrentStateTimestamp
	}
	for _, vm := range v.Members {
		if _, dup := ng.members[vm.MemberID]; dup {
			return fmt.Errorf("%w: group %q lists member %q twice", ErrCorruptRecord, id, vm.MemberID)
		}
		m := &member{
			id:               vm.MemberID,
			clientID:         vm.ClientID,
			clientHost:       vm.ClientHost,
			sessionTimeout:   millis(vm.SessionTimeoutMillis),
			rebalanceTimeout: millis(vm.RebalanceTimeoutMillis),
			protocolType:     v.ProtocolType,
			protocols:        []protocol{{name: ng.protocol, metadata: bytes.Clone(vm.Subscription)}},
			assignment:       bytes.Clone(vm.Assignment),
			lastSeen:         now,
		}
		if v.Version < 1 || m.rebalanceTimeout <= 0 {
			m.rebalanceTimeout = m.sessionTimeout
		}
		if vm.InstanceID != nil {
			inst := *vm.InstanceID
			m.instanceID = &inst
			ng.static[inst] = m.id
		}
		ng.members[m.id] = m
		ng.order = append(ng.order, m.id)
	}
	if len(ng.members) > 0 {
		ng.state = Stable
		if ng.members[ng.leader] == nil {
			ng.leader = ng.order[0]
		}
	} else {
		ng.leader = "" // as the live machine keeps an empty group
	}
	if g != nil {
		c.failWaiting(g, nil)
		ng.offsets = g.offsets
	}
	c.groups[id] = ng
	return nil
}

// failWaiting answers every waiting request of g with NOT_COORDINATOR (into
// res, or nowhere during replay, when nothing waits).
func (c *Coordinator) failWaiting(g *group, res *Result) {
	for _, id := range g.order {
		m := g.members[id]
		if res != nil && m.joinTicket != 0 {
			res.complete(Completion{Ticket: m.joinTicket, Join: joinError(&kmsg.JoinGroupRequest{Version: m.joinVersion}, m.id, kerr.NotCoordinator.Code)})
		}
		if res != nil && m.syncTicket != 0 {
			res.complete(Completion{Ticket: m.syncTicket, Sync: syncError(m.syncVersion, kerr.NotCoordinator.Code)})
		}
		m.joinTicket, m.syncTicket = 0, 0
	}
}

// Load replays a __consumer_offsets partition, oldest record first, and
// then serves the partition's groups. A record that fails to apply is
// skipped; the errors are returned joined (nil if none), so the driver can
// log them. Call it when this node becomes the partition's leader.
func (c *Coordinator) Load(now time.Time, partition int32, records []Record) error {
	var errs []error
	for i, r := range records {
		if err := c.Apply(now, r.Key, r.Value); err != nil {
			errs = append(errs, fmt.Errorf("record %d: %w", i, err))
		}
	}
	c.owned[partition] = true
	return errors.Join(errs...)
}

// Unload forgets the groups of a partition this node no longer leads (or
// whose append failed, so that state must be rebuilt by Load). Waiting
// requests are answered with NOT_COORDINATOR.
func (c *Coordinator) Unload(partition int32) Result {
	var res Result
	delete(c.owned, partition)
	for _, id := range c.sortedGroupIDs() {
		if c.partition(id) == partition {
			c.failWaiting(c.groups[id], &res)
			delete(c.groups, id)
		}
	}
	return res
}

func setOffset(g *group, topic string, partition int32, o offset) {
	ps := g.offsets[topic]
	if ps == nil {
		ps = map[int32]offset{}
		g.offsets[topic] = ps
	}
	ps[partition] = o
}

func deleteOffset(g *group, topic string, partition int32) {
	ps := g.offsets[topic]
	delete(ps, partition)
	if len(ps) == 0 {
		delete(g.offsets, topic)
	}
}

func sortedTopics(g *group) []string {
	ts := make([]string, 0, len(g.offsets))
	for t := range g.offsets {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

func sortedPartitions(ps map[int32]offset) []int32 {
	out := make([]int32, 0, len(ps))
	for p := range ps {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
