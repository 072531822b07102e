package segments

import (
	"errors"
	"io"
	"sort"
	"sync/atomic"
)

// segView is a snapshot of a segment taken under Log.mu, with a reference
// held, for work done without the lock.
type segView struct {
	s        *segment
	size     int64
	next     Offset
	maxTs    int64
	maxTsOff Offset
	idx, tix indexView
}

func (s *segment) viewLocked() segView {
	s.acquire()
	return segView{s: s, size: s.size, next: s.next, maxTs: s.ix.maxTs, maxTsOff: s.ix.maxTsOff, idx: s.idx.view(), tix: s.tix.view()}
}

// snapshotLocked returns views of every segment (references held).
func (l *Log) snapshotLocked() []segView {
	out := make([]segView, len(l.mu.segs))
	for i, s := range l.mu.segs {
		out[i] = s.viewLocked()
	}
	return out
}

func releaseViews(vs []segView) {
	for _, v := range vs {
		v.s.release()
	}
}

// corruptAt turns a scan problem in stored data into a *CorruptError.
func corruptAt(v segView, err error) error {
	var se *scanError
	if errors.As(err, &se) {
		return &CorruptError{Path: v.s.log.Name(), Position: se.pos, Offset: se.offset, Reason: se.reason}
	}
	return err
}

// seekBatch returns the first batch of v with NextOffset() > target, and its
// position; io.EOF if there is none.
func seekBatch(sc *scanner, v segView, target Offset) (BatchHeader, int64, error) {
	pos := sc.indexedPosition(v.idx.lookupOffset(v.s.base, target))
	for {
		h, err := sc.header(pos)
		if err != nil {
			return h, pos, err
		}
		if h.NextOffset() > target {
			return h, pos, nil
		}
		pos += h.Size()
	}
}

// Read returns whole batches starting with the batch containing from, none
// of them reaching upTo (an exclusive end offset such as the high
// watermark), at most maxBytes in total — except that with minOneBatch the
// first batch is returned whatever its size. The chunk comes from one
// segment; callers loop for more. from == upTo gives an empty result; from
// below StartOffset or above EndOffset gives ErrOffsetOutOfRange.
//
// Read takes no lock while it reads the index and headers (pread only,
// never the file's shared position), and copies no record bytes: the
// result names a byte range of the segment file. The caller must Release
// it; until then the file stays open even if retention deletes it.
func (l *Log) Read(from, upTo Offset, maxBytes int32, minOneBatch bool) (ReadResult, error) {
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return ReadResult{}, ErrClosed
	}
	if from < l.mu.start || from > l.mu.end {
		l.mu.RUnlock()
		return ReadResult{}, ErrOffsetOutOfRange
	}
	l.mu.RUnlock()
	for {
		res, next, err := l.readOnce(from, upTo, maxBytes, minOneBatch)
		if err != nil || res.Bytes > 0 || next <= from {
			return res, err
		}
		// Compaction emptied the rest of that segment: go on from the
		// next one.
		from = next
	}
}

// readOnce is Read within the segment holding from. With an empty result it
// returns that segment's next offset when no batch of it reaches from (the
// tail of a compacted segment), so Read can continue there.
func (l *Log) readOnce(from, upTo Offset, maxBytes int32, minOneBatch bool) (ReadResult, Offset, error) {
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return ReadResult{}, 0, ErrClosed
	}
	upTo = min(upTo, l.mu.end)
	segs := l.mu.segs
	i := sort.Search(len(segs), func(i int) bool { return segs[i].base > from }) - 1
	for i >= 0 && i+1 < len(segs) && from >= segs[i].next {
		i++ // from is at the end of a segment: the next one holds it
	}
	if from >= upTo || i < 0 || from >= segs[i].next {
		l.mu.RUnlock()
		return ReadResult{}, 0, nil
	}
	v := segs[i].viewLocked()
	l.mu.RUnlock()

	res, exhausted, err := readView(v, from, upTo, maxBytes, minOneBatch)
	if err != nil || res.Bytes == 0 {
		v.s.release()
		if exhausted && i+1 < len(segs) && v.next < upTo {
			return ReadResult{}, v.next, err
		}
		return ReadResult{}, 0, err
	}
	// Idempotent even across copies of the ReadResult.
	var released atomic.Bool
	res.release = func() {
		if released.CompareAndSwap(false, true) {
			v.s.release()
		}
	}
	return res, 0, nil
}

// indexedPosition checks that the batch an index entry names really starts
// at its position (a damaged index must not make us parse from the middle
// of a batch) and returns the position, or 0 to scan from the start.
func (sc *scanner) indexedPosition(pos int64, off Offset) int64 {
	if pos == 0 {
		return 0
	}
	if h, err := sc.header(pos); err != nil || h.LastOffset() != off {
		return 0
	}
	return pos
}

// readView reads within one segment; exhausted reports that no batch of the
// segment reaches from.
func readView(v segView, from, upTo Offset, maxBytes int32, minOneBatch bool) (res ReadResult, exhausted bool, err error) {
	sc, done := newReadScanner(v.s.log, v.size)
	defer done()
	first, start, err := seekBatch(sc, v, from)
	if err == io.EOF {
		return ReadResult{}, true, nil
	}
	if err == nil && first.LastOffset() >= upTo {
		return ReadResult{}, false, nil
	}
	if err != nil {
		return ReadResult{}, false, corruptAt(v, err)
	}
	end := v.size
	if upTo < v.next {
		// End before the batch holding upTo.
		_, p, err := seekBatch(sc, v, upTo)
		if err != nil && err != io.EOF {
			return ReadResult{}, false, corruptAt(v, err)
		}
		end = max(p, start)
	}
	if limit := start + int64(max(maxBytes, 0)); end > limit {
		// Largest batch boundary <= limit, scanning from the last index
		// entry before it.
		p := max(sc.indexedPosition(v.idx.lookupPosition(v.s.base, limit)), start)
		for p < end {
			h, err := sc.header(p)
			if err != nil {
				return ReadResult{}, false, corruptAt(v, err)
			}
			if p+h.Size() > limit {
				break
			}
			p += h.Size()
		}
		end = p
		if end == start {
			if !minOneBatch {
				return ReadResult{}, false, nil
			}
			end = start + first.Size()
		}
	}
	if end <= start {
		return ReadResult{}, false, nil
	}
	return ReadResult{
		Chunks: []FileChunk{{File: v.s.log, Position: start, Size: end - start}},
		Bytes:  end - start,
	}, false, nil
}

// OffsetForTimestamp returns the first offset (at or after the log start)
// whose record timestamp is >= ts, and that record's timestamp: the first
// segment whose largest timestamp is >= ts is searched through its time
// index, then its batches are scanned for one with maxTimestamp >= ts, and
// that batch's records are walked (decompressing if needed) for the exact
// record — Kafka's ListOffsets semantics. found=false if no record
// qualifies.
func (l *Log) OffsetForTimestamp(ts int64) (off Offset, batchTs int64, found bool, err error) {
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return 0, 0, false, ErrClosed
	}
	start := l.mu.start
	views := l.snapshotLocked()
	l.mu.RUnlock()
	defer releaseViews(views)

	for _, v := range views {
		if v.maxTs < ts || v.next <= start {
			continue
		}
		from := max(v.tix.lookupTime(v.s.base, ts), start)
		off, recTs, ok, err := searchTimestamp(v, from, start, ts)
		if err != nil || ok {
			return off, recTs, ok, err
		}
	}
	return -1, -1, false, nil
}

// searchTimestamp scans v from the batch holding offset from for the first
// record with offset >= start and timestamp >= ts.
func searchTimestamp(v segView, from, start Offset, ts int64) (Offset, int64, bool, error) {
	sc, done := newReadScanner(v.s.log, v.size)
	defer done()
	h, pos, err := seekBatch(sc, v, from)
	for ; err == nil; h, err = sc.header(pos) {
		if h.MaxTimestamp >= ts && h.NextOffset() > start {
			b, err := readBatch(v.s.log, h, pos)
			if err != nil {
				return 0, 0, false, err
			}
			off, recTs, found, err := FindTimestamp(b, h, start, ts)
			if err != nil {
				return 0, 0, false, &CorruptError{Path: v.s.log.Name(), Position: pos, Offset: h.BaseOffset, Reason: err.Error()}
			}
			if found {
				return off, recTs, true, nil
			}
		}
		pos += h.Size()
	}
	if err == io.EOF {
		return 0, 0, false, nil
	}
	return 0, 0, false, corruptAt(v, err)
}

// MaxTimestamp returns the largest timestamp in the log and the offset of
// the (first) record carrying it; (-1, -1) if the log has no timestamps.
func (l *Log) MaxTimestamp() (ts int64, off Offset) {
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return -1, -1
	}
	views := l.snapshotLocked()
	l.mu.RUnlock()
	defer releaseViews(views)

	best := -1
	for i, v := range views {
		if v.maxTs >= 0 && (best < 0 || v.maxTs > views[best].maxTs) {
			best = i
		}
	}
	if best < 0 {
		return -1, -1
	}
	v := views[best]
	// Refine the batch to the exact record (best effort).
	if o, recTs, ok, err := searchTimestamp(v, v.maxTsOff, 0, v.maxTs); err == nil && ok && recTs == v.maxTs {
		return v.maxTs, o
	}
	return v.maxTs, v.maxTsOff
}

// ScanBatches calls fn with the header of every batch from the one holding
// offset from to the end of the log as of the call, in offset order,
// reading headers with pread. It stops at fn's first error and returns it.
// No lock is held while fn runs.
func (l *Log) ScanBatches(from Offset, fn func(h BatchHeader) error) error {
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	views := l.snapshotLocked()
	l.mu.RUnlock()
	defer releaseViews(views)

	for _, v := range views {
		if v.next <= from || v.size == 0 {
			continue
		}
		if err := scanView(v, from, fn); err != nil {
			return err
		}
	}
	return nil
}

func scanView(v segView, from Offset, fn func(BatchHeader) error) error {
	sc := &scanner{f: v.s.log, limit: v.size, buf: make([]byte, max(min(v.size, 256<<10), BatchHeaderSize))}
	h, pos, err := seekBatch(sc, v, from)
	for ; err == nil; h, err = sc.header(pos) {
		if err := fn(h); err != nil {
			return err
		}
		pos += h.Size()
	}
	if err == io.EOF {
		return nil
	}
	return corruptAt(v, err)
}
