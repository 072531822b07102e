package broker

// Fetch, API key 1, versions 4–16 (magic v2 record batches only).
//
// Sessions (v7+, KIP-227) follow Kafka's FetchManager; see
// fetch_sessions.go. Topics are named by id from v13 (unknown id →
// UNKNOWN_TOPIC_ID), by name before (unknown → UNKNOWN_TOPIC_OR_PARTITION,
// as for a partition index out of range).
//
// Per partition, in order (Kafka's ReplicaManager.readFromLog):
//   - CurrentLeaderEpoch (v9+), when given, is checked against the
//     partition's: older → FENCED_LEADER_EPOCH, newer → UNKNOWN_LEADER_EPOCH.
//   - A fetch from a replica (ReplicaID, or ReplicaState.ID from v15, ≥ 0)
//     is refused per partition the way Kafka refuses a broker that is not
//     in the partition's replica set: UNKNOWN_LEADER_EPOCH if the request
//     carries a current leader epoch, else NOT_LEADER_OR_FOLLOWER. This
//     broker is a single node; followers come with replication.
//   - LastFetchedEpoch (v12+), when given, is checked as in Kafka: an epoch
//     with no known end offset → OFFSET_OUT_OF_RANGE; a log that diverges
//     (the largest epoch ≤ LastFetchedEpoch is older, or ends before the
//     fetch offset) → DivergingEpoch in the response and no records.
//     Consumers (franz-go, Java) send -1 and skip this.
//   - fetch offset below the local log start of a tiered partition whose
//     manifest is not loaded → KAFKA_STORAGE_ERROR (its log start is
//     unknown; tiering_read.go); below the log start offset or above the
//     log end offset → OFFSET_OUT_OF_RANGE. An offset between the high watermark and the
//     log end offset (data not yet fsynced) reads nothing, without error,
//     as in Kafka.
//   - records come from Partition.Read, bounded by the high watermark, by
//     the partition's PartitionMaxBytes and by what is left of the
//     request's MaxBytes (capped at Kafka's fetch.max.bytes default, 55 MiB).
//     Kafka's rule: the first batch of the first partition that has data
//     is returned even if it is larger than either limit; no other
//     partition gets that exemption.
//   - HighWatermark and LastStableOffset (no transactions yet: the same)
//     and LogStartOffset; AbortedTransactions is empty for read_committed
//     and null for read_uncommitted, as Kafka sends it; PreferredReadReplica
//     -1. A partition in error carries -1 for the three offsets.
//
// Long-poll: if fewer than MinBytes bytes were read, no partition is in
// error or diverging, and MaxWaitMillis > 0, the handler returns a deferred
// reply at once (the connection keeps reading requests) and a goroutine
// waits for any fetched partition's high watermark to move (Changed), for
// MaxWaitMillis, or for the request's context to end; each wake-up re-reads
// every partition, and the goroutine answers as soon as MinBytes is
// available or the wait is over.
//
// The response is framed for zero-copy (fetchframe.go): RecordBatches stay
// nil and the segment file chunks go to newFramedFetch; every ReadResult is
// released once the response is written or abandoned.

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/replica"
	"github.com/stratalog/strata/segments"
	"github.com/stratalog/strata/wire"
)

// fetchMaxBytesLimit caps a request's MaxBytes: Kafka's broker default
// fetch.max.bytes, 55 MiB (57 671 680 bytes).
const fetchMaxBytesLimit = 55 << 20

// fetchCall is one Fetch request being served: the decoded parameters and
// the session context. It is owned by one goroutine at a time (the
// handler, then the long-poll goroutine).
type fetchCall struct {
	b             *Broker
	r             *wire.Request
	version       int16
	replicaID     int32
	maxBytes      int64
	minBytes      int64
	readCommitted bool
	fc            fetchContext
}

// fetchRead is what one partition read produced.
type fetchRead struct {
	p              *replica.Partition // nil when errCode != 0 or unresolved
	name           string             // topic name, when known
	errCode        int16
	highWatermark  segments.Offset
	logStartOffset segments.Offset
	diverging      *kmsg.FetchResponseTopicPartitionDivergingEpoch
	res            segments.ReadResult
	remote         *remoteRead // a read from the remote tier in flight (tiering_read.go)
}

func (b *Broker) handleFetch(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.FetchRequest)
	if !ok {
		return nil, fmt.Errorf("fetch: unexpected body %T", r.Body)
	}
	c := &fetchCall{
		b:             b,
		r:             r,
		version:       req.Version,
		replicaID:     req.ReplicaID,
		maxBytes:      min(max(int64(req.MaxBytes), 0), fetchMaxBytesLimit),
		minBytes:      int64(req.MinBytes),
		readCommitted: req.IsolationLevel == 1,
	}
	if req.Version >= 15 {
		c.replicaID = req.ReplicaState.ID
	}
	topicIDs := req.Version >= 13

	var parts []fetchRequestPart
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			k := sessionKey{partition: rp.Partition}
			if topicIDs {
				k.topicID = rt.TopicID
			} else {
				k.topic = rt.Topic
			}
			parts = append(parts, fetchRequestPart{
				key:                k,
				fetchOffset:        segments.Offset(rp.FetchOffset),
				maxBytes:           rp.PartitionMaxBytes,
				currentLeaderEpoch: fetchEpochField(req.Version, 9, rp.CurrentLeaderEpoch),
				lastFetchedEpoch:   fetchEpochField(req.Version, 12, rp.LastFetchedEpoch),
			})
		}
	}
	parts = dedupeFetchParts(parts)
	sessionID, epoch := int32(0), int32(-1) // v4–v6: no sessions
	var forgotten []sessionKey
	if req.Version >= 7 {
		sessionID, epoch = req.SessionID, req.SessionEpoch
		for _, ft := range req.ForgottenTopics {
			for _, p := range ft.Partitions {
				k := sessionKey{partition: p}
				if topicIDs {
					k.topicID = ft.TopicID
				} else {
					k.topic = ft.Topic
				}
				forgotten = append(forgotten, k)
			}
		}
	}
	c.fc = b.sessions.newContext(time.Now(), topicIDs, sessionID, epoch, parts, forgotten)
	if c.fc.kind == fetchSessionError {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = c.fc.errCode
		return &wire.Reply{Framed: newFramedFetch(c.version, resp, nil, nil)}, nil
	}

	// Take the change notifications before reading, so that data arriving
	// between the read and the wait is not missed.
	var changed []<-chan struct{}
	mayWait := req.MaxWaitMillis > 0 && c.minBytes > 0
	if mayWait {
		changed = c.changedChans()
	}
	reads, total, final := c.readAll()
	if hasRemoteReads(reads) {
		// Never block the connection on the object store: wait for the
		// remote reads in the deferred reply's goroutine.
		done := make(chan struct{})
		rep := &wire.Reply{Done: done}
		go func() {
			c.awaitRemote(reads)
			rep.Framed = c.respond(reads)
			close(done)
		}()
		return rep, nil
	}
	if !mayWait || final || total >= c.minBytes || len(changed) == 0 {
		return &wire.Reply{Framed: c.respond(reads)}, nil
	}
	releaseReads(reads)

	done := make(chan struct{})
	rep := &wire.Reply{Done: done}
	go func() {
		rep.Framed = c.longPoll(changed, time.Duration(req.MaxWaitMillis)*time.Millisecond)
		close(done)
	}()
	return rep, nil
}

// fetchEpochField returns a request's epoch field if the version has it,
// else -1 ("not given"); negative values also mean "not given".
func fetchEpochField(version, since int16, v int32) segments.LeaderEpoch {
	if version < since || v < 0 {
		return -1
	}
	return segments.LeaderEpoch(v)
}

// longPoll waits until MinBytes can be answered or maxWait has passed (or
// the request's context ends), re-reading after each change, and returns
// the framed response.
func (c *fetchCall) longPoll(changed []<-chan struct{}, maxWait time.Duration) *framedResponse {
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	for {
		expired := !waitAnyChange(c.r.Ctx.Done(), timer.C, changed)
		changed = c.changedChans()
		reads, total, final := c.readAll()
		if hasRemoteReads(reads) {
			c.awaitRemote(reads)
			return c.respond(reads)
		}
		if expired || final || total >= c.minBytes {
			return c.respond(reads)
		}
		releaseReads(reads)
	}
}

// maxSelectCases bounds the cases of one reflect.Select (its hard limit is
// 65 536); larger waits are split across helper goroutines.
const maxSelectCases = 1024

// waitAnyChange blocks until one of changed is closed (true) or stop or
// timeout fires (false).
func waitAnyChange(stop <-chan struct{}, timeout <-chan time.Time, changed []<-chan struct{}) bool {
	if len(changed) > maxSelectCases-2 {
		// Merge the channels in groups through helper goroutines, which
		// exit when this wait ends.
		merged := make(chan struct{}, 1)
		quit := make(chan struct{})
		defer close(quit)
		const groupSize = maxSelectCases - 2 // leaves room for stop and timeout
		for i := 0; i < len(changed); i += groupSize {
			group := changed[i:min(i+groupSize, len(changed))]
			go func() {
				if waitAnyChange(quit, nil, group) {
					select {
					case merged <- struct{}{}:
					default:
					}
				}
			}()
		}
		changed = []<-chan struct{}{merged}
	}
	cases := make([]reflect.SelectCase, 0, len(changed)+2)
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(stop)})
	if timeout != nil {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timeout)})
	}
	nfixed := len(cases)
	for _, ch := range changed {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen >= nfixed
}

// changedChans returns the change notifications of every fetched
// partition that resolves, without duplicates.
func (c *fetchCall) changedChans() []<-chan struct{} {
	seen := make(map[*replica.Partition]bool)
	var chans []<-chan struct{}
	for _, part := range c.fc.parts {
		p, _, code := c.resolve(part)
		if code != 0 || seen[p] {
			continue
		}
		seen[p] = true
		chans = append(chans, p.Changed())
	}
	return chans
}

// resolve finds a fetched partition and applies the checks that need no
// read: existence, leader epoch fencing, replica fetches.
func (c *fetchCall) resolve(part fetchRequestPart) (*replica.Partition, string, int16) {
	var t *topic
	if c.fc.topicIDs {
		if t = c.b.topics.getByID(part.key.topicID); t == nil {
			return nil, "", kerr.UnknownTopicID.Code
		}
	} else if t = c.b.topics.get(part.key.topic); t == nil {
		return nil, part.key.topic, kerr.UnknownTopicOrPartition.Code
	}
	p, code := t.led(part.key.partition)
	if code != 0 {
		return nil, t.name, code
	}
	if code := checkLeaderEpoch(part.currentLeaderEpoch, p.LeaderEpoch()); code != 0 {
		return nil, t.name, code
	}
	if c.replicaID >= 0 {
		if part.currentLeaderEpoch >= 0 {
			return nil, t.name, kerr.UnknownLeaderEpoch.Code
		}
		return nil, t.name, kerr.NotLeaderForPartition.Code
	}
	return p, t.name, 0
}

// checkLeaderEpoch is KIP-320's fencing of a request's current leader
// epoch (-1: not given) against the partition's.
func checkLeaderEpoch(requested, current segments.LeaderEpoch) int16 {
	switch {
	case requested < 0:
		return 0
	case requested < current:
		return kerr.FencedLeaderEpoch.Code
	case requested > current:
		return kerr.UnknownLeaderEpoch.Code
	default:
		return 0
	}
}

// readAll reads every partition of the fetch, in order, within the byte
// limits. final reports a partition in error or diverging: Kafka answers
// such a fetch at once.
func (c *fetchCall) readAll() (reads []fetchRead, total int64, final bool) {
	reads = make([]fetchRead, len(c.fc.parts))
	remaining := c.maxBytes
	minOneBatch := true // until some partition returns data
	for i, part := range c.fc.parts {
		rd := &reads[i]
		p, name, code := c.resolve(part)
		rd.name = name
		if code != 0 {
			rd.errCode, rd.highWatermark, rd.logStartOffset = code, -1, -1
			final = true
			continue
		}
		rd.p = p
		c.readPartition(rd, part, remaining, minOneBatch)
		if rd.errCode != 0 || rd.diverging != nil {
			final = true
			continue
		}
		n := rd.res.Bytes
		if rd.remote != nil {
			// Unknown until it completes: count it as filling its limit.
			n = max(min(int64(max(part.maxBytes, 0)), remaining), 1)
		}
		if n > 0 {
			minOneBatch = false
			total += n
			remaining = max(remaining-n, 0)
		}
	}
	return reads, total, final
}

// hasRemoteReads reports whether some partition reads from the remote tier.
func hasRemoteReads(reads []fetchRead) bool {
	for i := range reads {
		if reads[i].remote != nil {
			return true
		}
	}
	return false
}

// awaitRemote waits for the remote reads, together at most
// remote.fetch.max.wait.ms (or until the request's context ends), and
// puts their results in place: records, an error code, or — not done in
// time — nothing for that partition in this response.
func (c *fetchCall) awaitRemote(reads []fetchRead) {
	ctx, cancel := context.WithTimeout(c.r.Ctx, c.b.tier.cfg.FetchMaxWait)
	defer cancel()
	for i := range reads {
		rd := &reads[i]
		if rd.remote == nil {
			continue
		}
		res, ok, err := rd.remote.wait(ctx.Done())
		rd.remote = nil
		switch {
		case !ok:
		case err != nil:
			// Logged, rate-limited, where the read failed (tiering_read.go).
			rd.errCode = errorCode(err)
			rd.highWatermark, rd.logStartOffset = -1, -1
		default:
			rd.res = res
		}
	}
}

// readPartition fills rd for one resolved partition.
func (c *fetchCall) readPartition(rd *fetchRead, part fetchRequestPart, remaining int64, minOneBatch bool) {
	p := rd.p
	fail := func(code int16) {
		rd.errCode, rd.highWatermark, rd.logStartOffset = code, -1, -1
	}
	// Below the local log start of a tiered partition whose manifest is
	// not loaded, the log start itself is unknown: a retriable error,
	// never OFFSET_OUT_OF_RANGE (tiering_read.go).
	if err := c.b.tier.checkRemoteKnown(p, part.fetchOffset); err != nil {
		fail(errorCode(err))
		return
	}
	start := p.LogStartOffset()
	if part.lastFetchedEpoch >= 0 {
		// Kafka's order: an epoch with no known end offset, then a fetch
		// offset below the log start, are out of range; then divergence.
		epoch, end := p.EndOffsetForEpoch(part.lastFetchedEpoch)
		if end < 0 || epoch < 0 || part.fetchOffset < start {
			fail(kerr.OffsetOutOfRange.Code)
			return
		}
		if epoch < part.lastFetchedEpoch || end < part.fetchOffset {
			rd.highWatermark, rd.logStartOffset = p.HighWatermark(), start
			rd.diverging = &kmsg.FetchResponseTopicPartitionDivergingEpoch{Epoch: int32(epoch), EndOffset: int64(end)}
			return
		}
	}

	leo := p.LogEndOffset()
	if part.fetchOffset < start || part.fetchOffset > leo {
		fail(kerr.OffsetOutOfRange.Code)
		return
	}
	limit := min(int64(max(part.maxBytes, 0)), remaining)
	// Not below the log start (checked above) but below the local one:
	// the remote tier has it.
	if c.b.tier != nil && part.fetchOffset < p.LocalLogStartOffset() {
		if limit > 0 || minOneBatch {
			rd.remote = c.b.tier.startRead(p, part.fetchOffset, int32(limit), minOneBatch)
		}
		rd.highWatermark, rd.logStartOffset = p.HighWatermark(), p.LogStartOffset()
		return
	}
	if part.fetchOffset < p.HighWatermark() && (limit > 0 || minOneBatch) {
		res, err := p.Read(part.fetchOffset, int32(limit), minOneBatch)
		if err != nil {
			code := errorCode(err)
			if code == kerr.UnknownServerError.Code {
				c.b.log.Error("fetch: read failed", "topic", p.Topic(), "partition", p.Index(), "offset", part.fetchOffset, "err", err)
			}
			fail(code)
			return
		}
		rd.res = res
	}
	// Taken after the read: the high watermark only grows, so it covers
	// every returned batch.
	rd.highWatermark, rd.logStartOffset = p.HighWatermark(), p.LogStartOffset()
}

// releaseReads releases every read's segment references.
func releaseReads(reads []fetchRead) {
	for i := range reads {
		reads[i].res.Release()
	}
}

// respond builds the framed response from reads (one per c.fc.parts entry)
// and hands the reads' references to it.
func (c *fetchCall) respond(reads []fetchRead) *framedResponse {
	outcomes := make([]fetchPartOutcome, len(reads))
	for i := range reads {
		rd := &reads[i]
		outcomes[i] = fetchPartOutcome{
			errCode:        rd.errCode,
			highWatermark:  rd.highWatermark,
			logStartOffset: rd.logStartOffset,
			recordBytes:    rd.res.Bytes,
			diverging:      rd.diverging != nil,
		}
	}
	sessionID, include := c.b.sessions.finish(time.Now(), &c.fc, outcomes)

	resp := kmsg.NewPtrFetchResponse()
	resp.Version = c.version
	resp.SessionID = sessionID
	var records [][][]segments.FileChunk
	var last *kmsg.FetchResponseTopic
	for i, part := range c.fc.parts {
		if !include[i] {
			continue
		}
		rd := &reads[i]
		if last == nil || (c.fc.topicIDs && last.TopicID != part.key.topicID) || (!c.fc.topicIDs && last.Topic != part.key.topic) {
			resp.Topics = append(resp.Topics, kmsg.FetchResponseTopic{Topic: rd.name, TopicID: part.key.topicID})
			records = append(records, nil)
			last = &resp.Topics[len(resp.Topics)-1]
			if !c.fc.topicIDs {
				last.Topic = part.key.topic
			}
		}
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition = part.key.partition
		rp.ErrorCode = rd.errCode
		rp.HighWatermark = int64(rd.highWatermark)
		rp.LastStableOffset = int64(rd.highWatermark)
		rp.LogStartOffset = int64(rd.logStartOffset)
		if rd.diverging != nil {
			rp.DivergingEpoch = *rd.diverging
		}
		if c.readCommitted && rd.errCode == 0 {
			rp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		}
		last.Partitions = append(last.Partitions, rp)
		t := len(records) - 1
		records[t] = append(records[t], rd.res.Chunks)
	}
	return newFramedFetch(c.version, resp, records, func() { releaseReads(reads) })
}
