package broker

// The group coordinator's driver: the thin layer of locks, goroutines and
// I/O around the deterministic state machine in broker/group.
//
//   - One group.Coordinator behind groupDriver.mu; every call into it holds
//     the lock, and nothing else does I/O under it except Partition.Append
//     (which only writes to the page cache; the fsync is waited for
//     outside the lock) and, rarely, reloading a partition after a failed
//     append.
//   - Records of each call are encoded (group_records.go) and appended to
//     __consumer_offsets through replica.Partition.Append, under the lock
//     so that they reach the log in the order the coordinator decided; the
//     immediate response and every Completion are released only once the
//     records are durable (package group's contract: a response never
//     promises state that a crash could lose).
//   - A JoinGroup or SyncGroup that must wait gets a Ticket; the driver maps
//     it to a buffered channel. The handler returns a deferred reply whose
//     goroutine waits on that channel or on the request's context: on
//     cancel the waiter is removed, so the coordinator's later Completion
//     is simply dropped.
//   - A timer goroutine sleeps until Coordinator.NextDeadline (or a wake-up
//     after any call) and Ticks. It stops at Shutdown, before partitions
//     close.
//   - At startup a loader goroutine reads every __consumer_offsets
//     partition from log start to high watermark and Loads it; until it
//     finishes, group APIs answer COORDINATOR_LOAD_IN_PROGRESS.
//
// A failed append or fsync follows the contract: Unload the partition
// (waiting requests get NOT_COORDINATOR), answer the affected requests with
// NOT_COORDINATOR, and Load the partition again from what is durable.
//
// __consumer_offsets is a compacted topic (cleanup.policy=compact, segment.bytes
// from offsets.topic.segment.bytes, both reapplied at every start): the log
// cleaner keeps the latest record per key, so the topic holds about one
// commit per group, topic and partition plus the group metadata, and drops
// the tombstones of deleted groups and expired offsets after
// delete.retention.ms.

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/group"
	"github.com/stratalog/strata/broker/replica"
	"github.com/stratalog/strata/topicconfig"
	"github.com/stratalog/strata/wire"
)

// offsetsTopic is Kafka's internal topic for committed offsets and group
// metadata.
const offsetsTopic = "__consumer_offsets"

// offsetsTopicConfigs are the overrides __consumer_offsets has: compaction,
// and Kafka's offsets.topic.segment.bytes (100 MiB = 100 × 2^20) unless
// configured otherwise.
func offsetsTopicConfigs(segmentBytes int32) map[string]string {
	if segmentBytes <= 0 {
		segmentBytes = 100 << 20
	}
	return map[string]string{
		"cleanup.policy": "compact",
		"segment.bytes":  strconv.Itoa(int(segmentBytes)),
	}
}

// GroupConfig holds the group coordinator's knobs (Kafka's names). Zero
// values mean Kafka's defaults (see group.Config).
type GroupConfig struct {
	OffsetsTopicNumPartitions int32         // offsets.topic.num.partitions (50)
	InitialRebalanceDelay     time.Duration // group.initial.rebalance.delay.ms (3 s); negative: none
	MinSessionTimeout         time.Duration // group.min.session.timeout.ms (6 s)
	MaxSessionTimeout         time.Duration // group.max.session.timeout.ms (30 min)
	MaxSize                   int           // group.max.size (1000 in internal/config)
	OffsetsRetention          time.Duration // offsets.retention.minutes (7 days)
	OffsetsTopicSegmentBytes  int32         // offsets.topic.segment.bytes (100 MiB)
}

type groupDriver struct {
	b   *Broker
	cfg group.Config

	mu struct {
		sync.Mutex
		c       *group.Coordinator
		loaded  bool
		parts   []*replica.Partition // __consumer_offsets partitions, by index
		waiters map[group.Ticket]chan group.Completion
	}

	wake     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup // timer and loader goroutines
}

// startGroupCoordinator ensures __consumer_offsets exists and starts the
// loader and the timer goroutines.
func startGroupCoordinator(b *Broker) (*groupDriver, error) {
	gc := b.cfg.Group
	cfg := group.Config{
		NumPartitions:         gc.OffsetsTopicNumPartitions,
		InitialRebalanceDelay: gc.InitialRebalanceDelay,
		MinSessionTimeout:     gc.MinSessionTimeout,
		MaxSessionTimeout:     gc.MaxSessionTimeout,
		MaxGroupSize:          gc.MaxSize,
		OffsetsRetention:      gc.OffsetsRetention,
	}
	if cfg.NumPartitions <= 0 {
		cfg.NumPartitions = group.DefaultNumPartitions
	}
	want := offsetsTopicConfigs(gc.OffsetsTopicSegmentBytes)
	t := b.topics.get(offsetsTopic)
	if t == nil {
		var err error
		t, err = b.topics.createTopic(offsetsTopic, cfg.NumPartitions, want, false)
		if code, _ := adminErrorCode(err); code == kerr.TopicAlreadyExists.Code {
			t, err = b.topics.get(offsetsTopic), nil // another broker of the cluster created it first
		}
		if err == nil && t == nil {
			err = errors.New("created, then deleted at once")
		}
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", offsetsTopic, err)
		}
	} else if !mapContains(t.overrides, want) {
		// A topic created before compaction existed, or another
		// offsets.topic.segment.bytes: other overrides stay.
		err := b.topics.alterConfig(offsetsTopic, false, func(_ topicconfig.Config, o map[string]string) error {
			maps.Copy(o, want)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("configure %s: %w", offsetsTopic, err)
		}
		t = b.topics.get(offsetsTopic)
	}
	if n := int32(len(t.partitions)); n != cfg.NumPartitions {
		// Kafka keeps the existing count too: changing it would move groups
		// to other partitions and lose their offsets.
		b.log.Warn(offsetsTopic+" exists with a different partition count than offsets.topic.num.partitions; using the existing count",
			"partitions", n, "configured", cfg.NumPartitions)
		cfg.NumPartitions = n
	}
	d := &groupDriver{b: b, cfg: cfg, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	d.mu.c = group.New(cfg)
	d.mu.parts = t.partitions
	d.mu.waiters = map[group.Ticket]chan group.Completion{}
	d.wg.Add(2)
	go d.load()
	go d.timers()
	return d, nil
}

// close stops the goroutines; waiting requests are answered when their
// connections' contexts end. Safe to call more than once.
func (d *groupDriver) close() {
	d.stopOnce.Do(func() { close(d.stop) })
	d.wg.Wait()
}

// load replays every partition into the coordinator, then opens it for
// business.
func (d *groupDriver) load() {
	defer d.wg.Done()
	start := time.Now()
	var records int
	for _, p := range d.mu.parts { // immutable after start
		if p == nil || !p.IsLeader() {
			// Another broker coordinates its groups (FindCoordinator
			// names it); here they get NOT_COORDINATOR. Coordination
			// does not yet move with leadership after the start.
			continue
		}
		recs, err := readGroupRecords(p, d.stop)
		if errors.Is(err, errLoadStopped) {
			return
		}
		if err != nil {
			// The partition stays unloaded: its groups get NOT_COORDINATOR
			// rather than state missing what was acknowledged.
			d.b.log.Error("cannot load "+offsetsTopic+" partition; its groups are unavailable", "partition", p.Index(), "err", err)
			continue
		}
		records += len(recs)
		d.mu.Lock()
		if err := d.mu.c.Load(time.Now(), p.Index(), recs); err != nil {
			d.b.log.Warn("skipped "+offsetsTopic+" records that do not apply", "partition", p.Index(), "err", err)
		}
		d.mu.Unlock()
	}
	d.mu.Lock()
	d.mu.loaded = true
	d.mu.Unlock()
	d.poke()
	d.b.log.Info("group coordinator loaded", "partitions", len(d.mu.parts), "records", records, "took", time.Since(start).Round(time.Millisecond))
}

// timers Ticks the coordinator at its deadlines until close.
func (d *groupDriver) timers() {
	defer d.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		d.mu.Lock()
		next := time.Now().Add(time.Hour)
		var out pendingResult
		if d.mu.loaded {
			out = d.applyLocked(d.mu.c.Tick(time.Now()))
			next = d.mu.c.NextDeadline()
		}
		d.mu.Unlock()
		if !out.empty() {
			out.wait(d)
			d.deliver(out.res.Completions)
		}
		t.Reset(max(time.Until(next), time.Millisecond))
		select {
		case <-t.C:
		case <-d.wake:
		case <-d.stop:
			return
		}
	}
}

// poke wakes the timer goroutine: a call may have moved NextDeadline.
func (d *groupDriver) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// pendingResult is a Result whose records were appended and may not be
// durable yet.
type pendingResult struct {
	res     group.Result
	durable []<-chan error
	parts   []int32 // partition of each durable channel
	failed  map[int32]bool
}

func (p *pendingResult) empty() bool {
	return len(p.res.Records) == 0 && len(p.res.Completions) == 0 && len(p.failed) == 0
}

// applyLocked appends res's records, one batch per partition in the order
// the partitions first appear (records of one partition keep their order).
// Caller holds mu. Partitions whose append failed are reloaded at once and
// listed in failed.
func (d *groupDriver) applyLocked(res group.Result) pendingResult {
	out := pendingResult{res: res}
	if len(res.Records) == 0 {
		return out
	}
	var order []int32
	byPart := map[int32][]group.Record{}
	for _, r := range res.Records {
		if _, ok := byPart[r.Partition]; !ok {
			order = append(order, r.Partition)
		}
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	now := time.Now()
	for _, p := range order {
		ar, err := d.mu.parts[p].Append(encodeGroupBatch(byPart[p], now))
		if err != nil {
			d.b.log.Error("appending to "+offsetsTopic+" failed; reloading the partition", "partition", p, "err", err)
			d.reloadLocked(p)
			if out.failed == nil {
				out.failed = map[int32]bool{}
			}
			out.failed[p] = true
			continue
		}
		out.durable = append(out.durable, ar.Durable)
		out.parts = append(out.parts, p)
	}
	return out
}

// wait blocks until every append of p is durable; a partition whose fsync
// failed is reloaded and added to p.failed. Completions affected by a
// failure are turned into NOT_COORDINATOR errors.
func (p *pendingResult) wait(d *groupDriver) {
	for i, ch := range p.durable {
		if err := <-ch; err != nil {
			d.b.log.Error("fsync of "+offsetsTopic+" failed; reloading the partition", "partition", p.parts[i], "err", err)
			d.mu.Lock()
			d.reloadLocked(p.parts[i])
			d.mu.Unlock()
			if p.failed == nil {
				p.failed = map[int32]bool{}
			}
			p.failed[p.parts[i]] = true
		}
	}
	if len(p.failed) == 0 {
		return
	}
	// A completion's group cannot be known from the response alone; any
	// failure in the call voids every completion it produced, which is
	// what a client retrying after NOT_COORDINATOR expects anyway.
	for i, c := range p.res.Completions {
		p.res.Completions[i] = notCoordinatorCompletion(c)
	}
}

func (p *pendingResult) ok() bool { return len(p.failed) == 0 }

func notCoordinatorCompletion(c group.Completion) group.Completion {
	if c.Join != nil {
		j := kmsg.NewPtrJoinGroupResponse()
		j.Version, j.ErrorCode, j.Generation, j.MemberID = c.Join.Version, kerr.NotCoordinator.Code, -1, c.Join.MemberID
		c.Join = j
	}
	if c.Sync != nil {
		s := kmsg.NewPtrSyncGroupResponse()
		s.Version, s.ErrorCode = c.Sync.Version, kerr.NotCoordinator.Code
		c.Sync = s
	}
	return c
}

// reloadLocked is the contract's answer to a failed append: Unload p
// (waiting requests get NOT_COORDINATOR at once) and Load it again from the
// durable log. Caller holds mu.
func (d *groupDriver) reloadLocked(p int32) {
	res := d.mu.c.Unload(p)
	d.deliverLocked(res.Completions)
	recs, err := readGroupRecords(d.mu.parts[p], d.stop)
	if errors.Is(err, errLoadStopped) {
		return // shutting down
	}
	if err != nil {
		d.b.log.Error("cannot reload "+offsetsTopic+" partition; its groups are unavailable", "partition", p, "err", err)
		return
	}
	if err := d.mu.c.Load(time.Now(), p, recs); err != nil {
		d.b.log.Warn("skipped "+offsetsTopic+" records that do not apply", "partition", p, "err", err)
	}
}

// deliver hands completions to their waiting handlers; a completion whose
// waiter is gone (its connection closed) is dropped.
func (d *groupDriver) deliver(cs []group.Completion) {
	if len(cs) == 0 {
		return
	}
	d.mu.Lock()
	d.deliverLocked(cs)
	d.mu.Unlock()
}

func (d *groupDriver) deliverLocked(cs []group.Completion) {
	for _, c := range cs {
		if ch, ok := d.mu.waiters[c.Ticket]; ok {
			delete(d.mu.waiters, c.Ticket)
			ch <- c // buffered: never blocks
		}
	}
}

// begin runs one mutating call f under the lock (unless the coordinator
// is still loading: then loading is true and f is not run), registers a
// waiter for its Ticket and appends its records. The caller then calls
// finish, which may block on the fsync, outside the connection's reader.
func (d *groupDriver) begin(f func(c *group.Coordinator, now time.Time) (group.Ticket, group.Result)) (p *pendingCall, loading bool) {
	d.mu.Lock()
	if !d.mu.loaded {
		d.mu.Unlock()
		return nil, true
	}
	ticket, res := f(d.mu.c, time.Now())
	p = &pendingCall{ticket: ticket}
	if ticket != 0 {
		p.wait = make(chan group.Completion, 1)
		d.mu.waiters[ticket] = p.wait
	}
	p.out = d.applyLocked(res)
	d.mu.Unlock()
	d.poke()
	return p, false
}

// pendingCall is a call between begin and finish.
type pendingCall struct {
	ticket group.Ticket
	wait   chan group.Completion // nil for ticket 0
	out    pendingResult
}

// finish waits until the call's records are durable and delivers its
// completions. ok is false if an append failed: the caller answers
// NOT_COORDINATOR (and its own ticket's waiter is forgotten).
func (d *groupDriver) finish(p *pendingCall) (ok bool) {
	p.out.wait(d)
	d.deliver(p.out.res.Completions)
	if !p.out.ok() && p.ticket != 0 {
		d.forget(p.ticket)
	}
	return p.out.ok()
}

// locked runs f, a call that produces no records or completions (OffsetFetch,
// Heartbeat, DescribeGroups, ListGroups), under the lock; loading reports
// that the coordinator is still loading (f not run).
func (d *groupDriver) locked(f func(c *group.Coordinator, now time.Time)) (loading bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.mu.loaded {
		return true
	}
	f(d.mu.c, time.Now())
	return false
}

// forget drops the waiter of a ticket whose request was abandoned.
func (d *groupDriver) forget(t group.Ticket) {
	d.mu.Lock()
	delete(d.mu.waiters, t)
	d.mu.Unlock()
}

// deferGroupReply runs a mutating group call now, in request order, and
// returns a deferred reply that waits, off the connection's reader, for the
// call's records to be durable and, for a Ticket, for the rebalance. f
// returns the immediate response (nil with a Ticket); fail builds an error
// response of the request's kind; fromCompletion picks the response out of
// a Completion.
func deferGroupReply(b *Broker, r *wire.Request,
	f func(c *group.Coordinator, now time.Time) (kmsg.Response, group.Ticket, group.Result),
	fail func(code int16) kmsg.Response,
	fromCompletion func(group.Completion) kmsg.Response,
) *wire.Reply {
	var resp kmsg.Response
	p, loading := b.groups.begin(func(c *group.Coordinator, now time.Time) (group.Ticket, group.Result) {
		var t group.Ticket
		var res group.Result
		resp, t, res = f(c, now)
		return t, res
	})
	if loading {
		return wire.Completed(fail(kerr.CoordinatorLoadInProgress.Code))
	}
	if p.out.empty() && p.wait == nil {
		return wire.Completed(resp) // nothing to persist, nothing to wait for
	}
	done := make(chan struct{})
	rep := &wire.Reply{Done: done}
	go func() {
		defer close(done)
		switch {
		case !b.groups.finish(p):
			rep.Msg = fail(kerr.NotCoordinator.Code)
			return
		case p.wait == nil:
			rep.Msg = resp
			return
		}
		select {
		case c := <-p.wait:
			rep.Msg = fromCompletion(c)
		case <-r.Ctx.Done():
			b.groups.forget(p.ticket) // a later completion is dropped
		}
	}()
	return rep
}

// groupClient describes r's connection for JoinGroup: its client id and
// host as Kafka shows them ("/<ip>"; empty without a connection, in tests).
func groupClient(r *wire.Request) group.Client {
	var cl group.Client
	if r.Conn != nil {
		cl.Host = r.Conn.Host()
	}
	if r.Header.ClientID != nil {
		cl.ID = *r.Header.ClientID
	}
	return cl
}

// loadInProgress is for tests and logs: whether the coordinator is still
// loading __consumer_offsets.
func (d *groupDriver) loadInProgress() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.mu.loaded
}

// mapContains reports whether m has every key of sub with the same value.
func mapContains(m, sub map[string]string) bool {
	for k, v := range sub {
		if got, ok := m[k]; !ok || got != v {
			return false
		}
	}
	return true
}
