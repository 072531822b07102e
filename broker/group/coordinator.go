package group

import (
	"crypto/rand"
	"encoding/hex"
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config holds the coordinator's knobs. Names follow Kafka's broker configs.
// The zero value of a field means "use Kafka's default" (see each field).
type Config struct {
	// NumPartitions is offsets.topic.num.partitions: how many partitions
	// __consumer_offsets has. Default 50.
	NumPartitions int32
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: how long
	// the first rebalance of an empty group waits for more members, and by
	// how much each new member extends that wait (bounded by the rebalance
	// timeout). Default 3 s. A negative value means no delay.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout are group.min.session.timeout.ms
	// (default 6 s) and group.max.session.timeout.ms (default 30 min).
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// MaxGroupSize is group.max.size. Default math.MaxInt32 (no limit).
	MaxGroupSize int
	// OffsetsRetention is offsets.retention.minutes. Default 7 days
	// (7 × 24 × 60 min).
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is offsets.retention.check.interval.ms:
	// how often Tick looks for expired offsets. Default 10 min.
	OffsetsRetentionCheckInterval time.Duration
	// MaxMetadataBytes is offset.metadata.max.bytes: the longest metadata
	// string an OffsetCommit may store. Default 4096.
	MaxMetadataBytes int
	// NewUUID returns the unique suffix of a new member id
	// (clientID + "-" + NewUUID()). Default: a random version 4 UUID.
	// Tests inject a counter to make member ids predictable.
	NewUUID func() string
}

// Kafka's defaults.
const (
	DefaultNumPartitions                 = 50
	DefaultInitialRebalanceDelay         = 3 * time.Second
	DefaultMinSessionTimeout             = 6 * time.Second
	DefaultMaxSessionTimeout             = 30 * time.Minute
	DefaultMaxGroupSize                  = 1<<31 - 1
	DefaultOffsetsRetention              = 7 * 24 * time.Hour // 10080 minutes
	DefaultOffsetsRetentionCheckInterval = 10 * time.Minute
	DefaultMaxMetadataBytes              = 4096
)

func (c Config) withDefaults() Config {
	if c.NumPartitions <= 0 {
		c.NumPartitions = DefaultNumPartitions
	}
	switch {
	case c.InitialRebalanceDelay == 0:
		c.InitialRebalanceDelay = DefaultInitialRebalanceDelay
	case c.InitialRebalanceDelay < 0:
		c.InitialRebalanceDelay = 0
	}
	if c.MinSessionTimeout <= 0 {
		c.MinSessionTimeout = DefaultMinSessionTimeout
	}
	if c.MaxSessionTimeout <= 0 {
		c.MaxSessionTimeout = DefaultMaxSessionTimeout
	}
	if c.MaxGroupSize <= 0 {
		c.MaxGroupSize = DefaultMaxGroupSize
	}
	if c.OffsetsRetention <= 0 {
		c.OffsetsRetention = DefaultOffsetsRetention
	}
	if c.OffsetsRetentionCheckInterval <= 0 {
		c.OffsetsRetentionCheckInterval = DefaultOffsetsRetentionCheckInterval
	}
	if c.MaxMetadataBytes <= 0 {
		c.MaxMetadataBytes = DefaultMaxMetadataBytes
	}
	if c.NewUUID == nil {
		c.NewUUID = randomUUID
	}
	return c
}

func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// Ticket identifies a JoinGroup or SyncGroup request whose response is
// deferred. The zero Ticket means "answered immediately".
type Ticket uint64

// Record is one record to append to __consumer_offsets: Key and Value are
// encoded exactly as Kafka encodes them; a nil Value is a tombstone.
type Record struct {
	Partition int32 // the __consumer_offsets partition, PartitionFor(group)
	Key       []byte
	Value     []byte
}

// Completion is the response to a deferred request. Exactly one of Join and
// Sync is set.
type Completion struct {
	Ticket Ticket
	Join   *kmsg.JoinGroupResponse
	Sync   *kmsg.SyncGroupResponse
}

// Result is what a mutating input produced besides its immediate response.
// The driver appends Records (in order) first and only then sends the
// immediate response and every Completion: a response must never promise
// state that a crash could lose.
type Result struct {
	Records     []Record
	Completions []Completion
}

func (r *Result) complete(c Completion) { r.Completions = append(r.Completions, c) }

// Client describes the connection a JoinGroup came from; it is stored with
// the member and shown by DescribeGroups.
type Client struct {
	ID   string // the request header's client id
	Host string // the peer address as Kafka shows it, e.g. "/10.0.0.7"
}

// State is a classic group's state.
type State int8

// The classic group states, as Kafka names them.
const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "Unknown"
}

type protocol struct {
	name     string
	metadata []byte
}

type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []protocol
	assignment       []byte

	joinTicket  Ticket // nonzero while a JoinGroup waits
	joinVersion int16
	syncTicket  Ticket // nonzero while a SyncGroup waits
	syncVersion int16
	lastSeen    time.Time // last heartbeat, join or sync: the session clock

	// A member that has not yet been through a rebalance and waits in
	// JoinGroup is dropped at newDeadline (Kafka's NewMemberJoinTimeoutMs,
	// 5 min): its client may be gone. Zero once it has joined.
	newDeadline time.Time
}

// newMemberJoinTimeout is Kafka's NewMemberJoinTimeoutMs: 5 × 60 × 1000 ms.
const newMemberJoinTimeout = 5 * time.Minute

// sessionDeadline is when m expires, if it can: Kafka's hasSatisfiedHeartbeat
// keeps members waiting in JoinGroup or SyncGroup alive (the rebalance and
// pending-sync timeouts bound those), except new members.
func (m *member) sessionDeadline() (time.Time, bool) {
	switch {
	case m.awaitingJoin():
		return m.newDeadline, !m.newDeadline.IsZero()
	case m.syncTicket != 0:
		return time.Time{}, false
	default:
		return m.lastSeen.Add(m.sessionTimeout), true
	}
}

func (m *member) awaitingJoin() bool { return m.joinTicket != 0 }

func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

// offset is one committed offset.
type offset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTime  int64 // unix ms
	expireTime  int64 // unix ms, or -1: v1 values only (OffsetCommit v2–v4 retention)
}

type group struct {
	id           string
	state        State
	stateTime    int64 // unix ms of the last state change (currentStateTimestamp), -1 unknown
	protocolType string
	protocol     string // selected protocol name, "" while none
	generation   int32
	leader       string

	members map[string]*member
	order   []string             // member ids in join order: leader election, responses
	static  map[string]string    // instance id → member id
	pending map[string]time.Time // MEMBER_ID_REQUIRED member ids → expiry

	// The rebalance in progress (state PreparingRebalance).
	rebalanceDeadline time.Time
	initialDelay      bool          // the first rebalance of an empty group
	initialRemaining  time.Duration // how far the initial delay may still extend
	newMemberAdded    bool

	// After a rebalance completes, every member must SyncGroup within the
	// rebalance timeout (Kafka's DelayedSync); those that do not are removed
	// at syncDeadline.
	pendingSync  map[string]bool
	syncDeadline time.Time

	offsets map[string]map[int32]offset // topic → partition → committed
}

func newGroup(id string, now time.Time) *group {
	return &group{
		id:          id,
		stateTime:   now.UnixMilli(),
		members:     map[string]*member{},
		static:      map[string]string{},
		pending:     map[string]time.Time{},
		pendingSync: map[string]bool{},
		offsets:     map[string]map[int32]offset{},
	}
}

func (g *group) transition(s State, now time.Time) {
	g.state = s
	g.stateTime = now.UnixMilli()
}

func (g *group) hasOffsets() bool { return len(g.offsets) > 0 }

// Coordinator is the classic group coordinator's state machine for the
// __consumer_offsets partitions this node leads. It is not safe for
// concurrent use: the driver serialises every call.
type Coordinator struct {
	cfg        Config
	groups     map[string]*group
	owned      map[int32]bool
	nextTicket Ticket
	nextExpiry time.Time // next offsets-retention check; zero: at the first Tick
}

// New returns a coordinator that owns no partition yet; Load each partition
// this node leads before serving its groups.
func New(cfg Config) *Coordinator {
	return &Coordinator{
		cfg:    cfg.withDefaults(),
		groups: map[string]*group{},
		owned:  map[int32]bool{},
	}
}

func (c *Coordinator) ticket() Ticket {
	c.nextTicket++
	return c.nextTicket
}

// partition is the __consumer_offsets partition of a group.
func (c *Coordinator) partition(groupID string) int32 {
	return PartitionFor(groupID, c.cfg.NumPartitions)
}

// MaxStringBytes is the longest string a group keeps (group id, instance
// id, protocol type and names): __consumer_offsets records and the
// non-flexible versions of the group APIs carry strings with an int16
// length. Flexible requests can carry longer ones; they are refused, never
// stored, or the group's record (and every later ListGroups or
// DescribeGroups answer at an old version) would be undecodable.
const MaxStringBytes = math.MaxInt16

// coordinatorError is the error for a group this coordinator does not serve,
// or 0 if it serves it. As in Kafka, the empty group id is valid only for
// the offset and admin APIs (OffsetCommit, OffsetFetch, DescribeGroups,
// DeleteGroups), which callers say with emptyOK. A group id longer than
// MaxStringBytes is INVALID_GROUP_ID.
func (c *Coordinator) coordinatorError(groupID string, emptyOK bool) int16 {
	if groupID == "" && !emptyOK || len(groupID) > MaxStringBytes {
		return kerr.InvalidGroupID.Code
	}
	if !c.owned[c.partition(groupID)] {
		return kerr.NotCoordinator.Code
	}
	return 0
}

// sortedGroupIDs returns group ids in a fixed order so that every walk over
// groups (Tick, ListGroups) is deterministic.
func (c *Coordinator) sortedGroupIDs() []string {
	ids := make([]string, 0, len(c.groups))
	for id := range c.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Tick advances time: it expires member sessions, new members stuck in
// their first JoinGroup and MEMBER_ID_REQUIRED placeholders, removes
// members that did not SyncGroup in time, completes rebalances whose
// (initial) timeout passed, and every OffsetsRetentionCheckInterval expires
// old offsets and deletes empty groups left without offsets. Calling Tick
// early or often is harmless. Tick and NextDeadline walk every group and
// member: O(groups + members).
func (c *Coordinator) Tick(now time.Time) Result {
	var res Result
	for _, id := range c.sortedGroupIDs() {
		g := c.groups[id]
		c.expirePending(g, now)
		c.expireSessions(g, now, &res)
		c.expirePendingSync(g, now, &res)
		c.maybeCompleteJoin(g, now, &res)
	}
	if c.nextExpiry.IsZero() || !now.Before(c.nextExpiry) {
		c.expireOffsets(now, &res)
		c.nextExpiry = now.Add(c.cfg.OffsetsRetentionCheckInterval)
	}
	return res
}

// NextDeadline is the earliest time at which Tick has work to do, so that a
// driver can sleep until then or until the next request, whichever comes
// first. There is always one: at the latest, the next offsets-retention
// check. Before the first Tick it is the zero time (tick at once).
func (c *Coordinator) NextDeadline() time.Time {
	deadline := c.nextExpiry
	consider := func(t time.Time) {
		if t.Before(deadline) {
			deadline = t
		}
	}
	for _, g := range c.groups {
		if g.state == PreparingRebalance {
			consider(g.rebalanceDeadline)
		}
		for _, t := range g.pending {
			consider(t)
		}
		if len(g.pendingSync) > 0 {
			consider(g.syncDeadline)
		}
		for _, m := range g.members {
			if d, ok := m.sessionDeadline(); ok {
				consider(d)
			}
		}
	}
	return deadline
}

func (c *Coordinator) expirePending(g *group, now time.Time) {
	for id, t := range g.pending {
		if !now.Before(t) {
			delete(g.pending, id)
		}
	}
}

func (c *Coordinator) expireSessions(g *group, now time.Time, res *Result) {
	for _, id := range slices.Clone(g.order) {
		m := g.members[id]
		if m == nil {
			continue // removed by an earlier expiry's rebalance
		}
		if d, ok := m.sessionDeadline(); ok && !now.Before(d) {
			c.removeMember(g, m, now, kerr.UnknownMemberID.Code, res)
		}
	}
}

// expirePendingSync removes the members that did not SyncGroup within the
// rebalance timeout after their JoinGroup response, and rebalances.
func (c *Coordinator) expirePendingSync(g *group, now time.Time, res *Result) {
	if len(g.pendingSync) == 0 || now.Before(g.syncDeadline) {
		return
	}
	if g.state != CompletingRebalance && g.state != Stable {
		clear(g.pendingSync)
		return
	}
	for _, id := range slices.Clone(g.order) {
		if g.pendingSync[id] {
			c.dropMember(g, g.members[id], kerr.UnknownMemberID.Code, res)
		}
	}
	c.prepareRebalance(now, g, res)
	c.maybeCompleteJoin(g, now, res)
}
