package txn

import (
	"fmt"
	"math"
	"time"

	"github.com/stratalog/strata/segments"
)

// ProducerID identifies an idempotent producer. Ids below 0 (the wire uses
// NoProducerID) mark a batch written without idempotence; such batches skip
// every check here.
type ProducerID int64

// ProducerEpoch is a producer's epoch; a higher epoch fences lower ones.
type ProducerEpoch int16

// Sequence is a per-producer, per-partition record sequence number. It
// wraps from math.MaxInt32 to 0.
type Sequence int32

const (
	// NoProducerID marks a non-idempotent batch.
	NoProducerID ProducerID = -1
	// noEpoch marks an entry that has no epoch yet.
	noEpoch ProducerEpoch = -1
	// noSequence is the last sequence of an entry with no batches.
	noSequence Sequence = -1

	// BatchesToRetain is how many of a producer's most recent batches are
	// remembered for duplicate detection. Kafka keeps 5 because a producer
	// has at most max.in.flight.requests.per.connection = 5 batches
	// outstanding per partition.
	BatchesToRetain = 5
)

// Batch describes one record batch for the producer-state checks. For Check
// only the producer fields and LastOffsetDelta matter; Update also needs
// the offsets the log assigned and the batch's timestamp.
type Batch struct {
	ProducerID      ProducerID
	ProducerEpoch   ProducerEpoch
	BaseSequence    Sequence
	LastOffsetDelta int32
	FirstOffset     segments.Offset
	LastOffset      segments.Offset
	// Timestamp is the batch's max timestamp (the log-append time for
	// LogAppendTime topics); it drives producer expiry, as in Kafka.
	Timestamp int64
	// AppendedAt is the broker's clock (ms) when the batch was appended, 0
	// when unknown (replay). Expiry uses the later of it and Timestamp, so
	// a producer writing old CreateTime timestamps is not expired while it
	// is active.
	AppendedAt int64
	// Control marks a transaction marker. Markers carry no sequence: on
	// replay they only move the producer's epoch.
	Control bool
}

// FromHeader converts a parsed batch header (offsets as stored or assigned).
func FromHeader(h segments.BatchHeader) Batch {
	return Batch{
		ProducerID:      ProducerID(h.ProducerID),
		ProducerEpoch:   ProducerEpoch(h.ProducerEpoch),
		BaseSequence:    Sequence(h.BaseSequence),
		LastOffsetDelta: h.LastOffsetDelta,
		FirstOffset:     h.BaseOffset,
		LastOffset:      h.LastOffset(),
		Timestamp:       h.MaxTimestamp,
		Control:         h.IsControl(),
	}
}

// Idempotent reports whether the batch carries a producer id.
func (b Batch) Idempotent() bool { return b.ProducerID >= 0 }

// LastSequence is the sequence of the batch's last record, wrapping at
// math.MaxInt32 like Kafka's DefaultRecordBatch.incrementSequence.
func (b Batch) LastSequence() Sequence { return incrementSequence(b.BaseSequence, b.LastOffsetDelta) }

func incrementSequence(s Sequence, delta int32) Sequence {
	if int64(s)+int64(delta) > math.MaxInt32 {
		return Sequence(int64(s) + int64(delta) - math.MaxInt32 - 1)
	}
	return s + Sequence(delta)
}

// inSequence reports whether next directly follows last.
func inSequence(last, next Sequence) bool {
	return int64(next) == int64(last)+1 || (next == 0 && last == math.MaxInt32)
}

// BatchMeta is what is remembered about one of a producer's recent batches.
type BatchMeta struct {
	FirstSeq, LastSeq       Sequence
	FirstOffset, LastOffset segments.Offset
	Timestamp               int64
}

// producerEntry is the state of one producer on one partition.
type producerEntry struct {
	epoch ProducerEpoch
	// batches holds up to BatchesToRetain entries, oldest first.
	batches []BatchMeta
	// lastTimestamp is the newest batch timestamp (for expiry).
	lastTimestamp int64
}

func (e *producerEntry) lastSeq() Sequence {
	if len(e.batches) == 0 {
		return noSequence
	}
	return e.batches[len(e.batches)-1].LastSeq
}

func (e *producerEntry) findDuplicate(b Batch) (BatchMeta, bool) {
	if b.ProducerEpoch != e.epoch {
		return BatchMeta{}, false
	}
	first, last := b.BaseSequence, b.LastSequence()
	for _, m := range e.batches {
		if m.FirstSeq == first && m.LastSeq == last {
			return m, true
		}
	}
	return BatchMeta{}, false
}

// check applies Kafka's epoch and sequence rules to a batch that is not a
// duplicate. e may be nil (unknown producer).
func (e *producerEntry) check(b Batch) error {
	if e == nil || e.epoch == noEpoch {
		// Unknown producer: accept any sequence. Since Kafka 2.5 (KIP-360)
		// the broker no longer answers UNKNOWN_PRODUCER_ID here, because a
		// producer's state can legitimately vanish (retention, DeleteRecords,
		// producer expiry). Strata keeps state across restarts (snapshots
		// plus log replay), so this path is taken only for producers that
		// are genuinely new or whose state expired.
		return nil
	}
	if b.ProducerEpoch < e.epoch {
		return fmt.Errorf("%w: producer %d epoch %d is older than current epoch %d",
			ErrInvalidProducerEpoch, b.ProducerID, b.ProducerEpoch, e.epoch)
	}
	if b.ProducerEpoch != e.epoch {
		if b.BaseSequence != 0 {
			return fmt.Errorf("%w: producer %d new epoch %d must start at sequence 0, got %d",
				ErrOutOfOrderSequence, b.ProducerID, b.ProducerEpoch, b.BaseSequence)
		}
		return nil
	}
	if last := e.lastSeq(); !inSequence(last, b.BaseSequence) {
		return fmt.Errorf("%w: producer %d epoch %d: expected sequence %d, got %d",
			ErrOutOfOrderSequence, b.ProducerID, b.ProducerEpoch, incrementSequence(last, 1), b.BaseSequence)
	}
	return nil
}

// add records an appended batch, resetting the batch history on an epoch
// change (Kafka's ProducerStateEntry.addBatch).
func (e *producerEntry) add(b Batch) {
	if b.ProducerEpoch != e.epoch {
		e.epoch = b.ProducerEpoch
		e.batches = e.batches[:0]
	}
	e.lastTimestamp = max(e.lastTimestamp, b.Timestamp, b.AppendedAt)
	if b.Control {
		return
	}
	if len(e.batches) == BatchesToRetain {
		copy(e.batches, e.batches[1:])
		e.batches = e.batches[:BatchesToRetain-1]
	}
	e.batches = append(e.batches, BatchMeta{
		FirstSeq:    b.BaseSequence,
		LastSeq:     b.LastSequence(),
		FirstOffset: b.FirstOffset,
		LastOffset:  b.LastOffset,
		Timestamp:   b.Timestamp,
	})
}

func (e *producerEntry) clone() *producerEntry {
	c := &producerEntry{epoch: e.epoch, lastTimestamp: e.lastTimestamp}
	c.batches = append(make([]BatchMeta, 0, BatchesToRetain), e.batches...)
	return c
}

// ProducerState is the idempotent-producer state of one partition: for
// each producer its epoch and its last BatchesToRetain batches.
//
// Not safe for concurrent use: the owning replica.Partition guards it with
// its append lock, which is also what orders appends, so the state always
// describes exactly the batches in the log (plus nothing else).
type ProducerState struct {
	producers map[ProducerID]*producerEntry
}

// NewProducerState returns an empty state.
func NewProducerState() *ProducerState {
	return &ProducerState{producers: make(map[ProducerID]*producerEntry)}
}

// Len returns the number of producers tracked.
func (s *ProducerState) Len() int { return len(s.producers) }

// Epoch returns the current epoch of id, or -1 if unknown.
func (s *ProducerState) Epoch(id ProducerID) ProducerEpoch {
	if e := s.producers[id]; e != nil {
		return e.epoch
	}
	return noEpoch
}

// Batches returns a copy of the remembered batches of id, oldest first.
func (s *ProducerState) Batches(id ProducerID) []BatchMeta {
	if e := s.producers[id]; e != nil {
		return append([]BatchMeta(nil), e.batches...)
	}
	return nil
}

// Check validates a batch about to be appended. It returns dup=true with
// the original batch's metadata if the batch repeats one of the producer's
// last BatchesToRetain batches (same epoch, same sequence range); the
// caller must then not write it. Otherwise it returns nil (append it) or
// ErrInvalidProducerEpoch (epoch older than the producer's current one) or
// ErrOutOfOrderSequence (a gap, a sequence older than the remembered
// batches, or a new epoch not starting at 0). Batches without a producer id
// always pass. Check does not change the state; call Update after the
// append.
func (s *ProducerState) Check(b Batch) (orig BatchMeta, dup bool, err error) {
	if !b.Idempotent() {
		return BatchMeta{}, false, nil
	}
	if err := validateIdempotent(b); err != nil {
		return BatchMeta{}, false, err
	}
	e := s.producers[b.ProducerID]
	if e != nil {
		if m, ok := e.findDuplicate(b); ok {
			return m, true, nil
		}
	}
	return BatchMeta{}, false, e.check(b)
}

// validateIdempotent rejects batches whose producer fields are malformed.
func validateIdempotent(b Batch) error {
	if b.ProducerEpoch < 0 || b.BaseSequence < 0 || b.LastOffsetDelta < 0 {
		return fmt.Errorf("%w: producer %d with epoch %d, base sequence %d, last offset delta %d",
			segments.ErrInvalidRecord, b.ProducerID, b.ProducerEpoch, b.BaseSequence, b.LastOffsetDelta)
	}
	return nil
}

// Update records a batch that is now in the log (appended, or read back
// during replay). It does not validate: replay must accept whatever the log
// holds. Batches without a producer id are ignored.
func (s *ProducerState) Update(b Batch) {
	if !b.Idempotent() {
		return
	}
	e := s.producers[b.ProducerID]
	if e == nil {
		e = &producerEntry{epoch: noEpoch, lastTimestamp: math.MinInt64}
		s.producers[b.ProducerID] = e
	}
	e.add(b)
}

// ExpireBefore forgets producers whose newest batch timestamp is older than
// cutoff (Kafka's producer.id.expiration.ms), bounding memory. It returns
// how many were removed.
func (s *ProducerState) ExpireBefore(cutoff time.Time) int {
	ms := cutoff.UnixMilli()
	n := 0
	for id, e := range s.producers {
		if e.lastTimestamp < ms {
			delete(s.producers, id)
			n++
		}
	}
	return n
}

// Appender stages the checks of several batches of one append so that
// later batches are checked against the earlier ones, and nothing changes
// if any batch fails (Kafka's ProducerAppendInfo). Use: Check each batch in
// log order; if all pass, append the non-duplicates to the log and Commit
// with the offset the log assigned to the first of them.
type Appender struct {
	s      *ProducerState
	staged map[ProducerID]*producerEntry
	order  []Batch // non-duplicate idempotent batches, in order
	counts []int64 // records of every non-duplicate batch, for offsets
}

// Begin starts staging an append.
func (s *ProducerState) Begin() *Appender { return &Appender{s: s} }

// Check is ProducerState.Check against the state as staged so far. A batch
// that passes and is not a duplicate is staged as to be written.
func (a *Appender) Check(b Batch) (orig BatchMeta, dup bool, err error) {
	if b.Idempotent() {
		if err := validateIdempotent(b); err != nil {
			return BatchMeta{}, false, err
		}
		e := a.entry(b.ProducerID)
		if e != nil {
			if m, ok := e.findDuplicate(b); ok {
				return m, true, nil
			}
		}
		if err := e.check(b); err != nil {
			return BatchMeta{}, false, err
		}
		if a.staged == nil {
			a.staged = make(map[ProducerID]*producerEntry)
		}
		if a.staged[b.ProducerID] == nil {
			if e == nil {
				e = &producerEntry{epoch: noEpoch, lastTimestamp: math.MinInt64}
			} else {
				e = e.clone()
			}
			a.staged[b.ProducerID] = e
		}
		// Offsets are provisional (-1) until Commit; only sequences
		// matter for checking later batches of this append.
		sb := b
		sb.FirstOffset, sb.LastOffset = -1, -1
		a.staged[b.ProducerID].add(sb)
	}
	// Every non-duplicate batch, idempotent or not, is written, so all
	// count for the offsets Commit assigns.
	a.order = append(a.order, b)
	a.counts = append(a.counts, int64(b.LastOffsetDelta)+1)
	return BatchMeta{}, false, nil
}

func (a *Appender) entry(id ProducerID) *producerEntry {
	if e := a.staged[id]; e != nil {
		return e
	}
	return a.s.producers[id]
}

// Commit applies the staged batches to the state. firstOffset is the offset
// the log assigned to the first non-duplicate batch; the others follow
// contiguously (each takes LastOffsetDelta+1 offsets). logAppendTime, if
// not -1, replaces every batch's timestamp (LogAppendTime topics). now is
// the append time, for expiry.
func (a *Appender) Commit(firstOffset segments.Offset, logAppendTime int64, now time.Time) {
	off := firstOffset
	for i, b := range a.order {
		b.FirstOffset = off
		b.LastOffset = off + segments.Offset(a.counts[i]-1)
		off += segments.Offset(a.counts[i])
		if logAppendTime != -1 {
			b.Timestamp = logAppendTime
		}
		b.AppendedAt = now.UnixMilli()
		a.s.Update(b)
	}
	a.order, a.counts, a.staged = nil, nil, nil
}
