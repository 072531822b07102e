package segments

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// DeleteRecordsBefore moves the log start offset to o (checkpointed before
// any file is removed) and deletes the whole segments below it; the active
// segment is never deleted. It returns the new log start offset (unchanged
// if o is not above it). o above the end offset gives ErrOffsetOutOfRange;
// checking o against the high watermark is the caller's job.
func (l *Log) DeleteRecordsBefore(o Offset) (Offset, error) {
	l.structMu.Lock()
	defer l.structMu.Unlock()
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	if o > l.mu.end || o < 0 {
		l.mu.Unlock()
		return 0, ErrOffsetOutOfRange
	}
	if o <= l.mu.start {
		start := l.mu.start
		l.mu.Unlock()
		return start, nil
	}
	l.mu.start = o
	n := 0
	for n < len(l.mu.segs)-1 && l.mu.segs[n+1].base <= o {
		n++
	}
	removed := l.removeHeadLocked(n)
	l.mu.Unlock()
	err := l.writeCheckpoints()
	l.dropSegments(removed)
	if err != nil {
		return o, fmt.Errorf("checkpoint log start %d: %w", o, err)
	}
	return o, nil
}

// removeHeadLocked takes the first n segments out of the list and moves the
// log start and the epoch cache past them.
func (l *Log) removeHeadLocked(n int) []*segment {
	if n == 0 {
		return nil
	}
	removed := slices.Clone(l.mu.segs[:n])
	l.mu.segs = slices.Clone(l.mu.segs[n:])
	l.mu.start = max(l.mu.start, l.mu.segs[0].base)
	l.mu.epochs, _ = truncateEpochsFromStart(l.mu.epochs, l.mu.start)
	return removed
}

// dropSegments unlinks removed segments' files and drops the log's
// references; readers holding references keep the open files.
func (l *Log) dropSegments(segs []*segment) {
	for _, s := range segs {
		if err := s.removeFiles(); err != nil {
			l.logger.Error("cannot remove segment files", "segment", s.log.Name(), "err", err)
		}
		l.logger.Info("deleted segment", "base", s.base, "bytes", s.size)
		s.release()
	}
}

// retentionPlanLocked decides how many leading segments retention deletes:
// those wholly below the log start, then (Kafka's order) a prefix whose
// largest timestamp is older than retention.ms, then a prefix whose removal
// keeps the log at or above retention.bytes; with remote storage, then the
// same by local.retention.ms/bytes, and every rule only among segments
// already uploaded (SetUploadedTo). The
// active segment is never deleted. Segments without timestamps are aged by
// their file's mtime.
func (l *Log) retentionPlanLocked(now time.Time) int {
	cfg := l.mu.cfg
	segs := l.mu.segs
	n := 0
	for n < len(segs)-1 && segs[n+1].base <= l.mu.start {
		n++
	}
	if cfg.RemoteStorage {
		// Nothing goes that the remote tier does not hold: total
		// retention of the remote copies is the tiering layer's.
		uploaded := func(i int) bool { return segs[i].next <= l.mu.uploadedTo }
		n = agePrefix(segs, n, cfg.RetentionAge, now, uploaded)
		n = sizePrefix(segs, n, cfg.RetentionBytes, uploaded)
		n = agePrefix(segs, n, cfg.LocalRetentionAge, now, uploaded)
		return sizePrefix(segs, n, cfg.LocalRetentionBytes, uploaded)
	}
	everyone := func(int) bool { return true }
	n = agePrefix(segs, n, cfg.RetentionAge, now, everyone)
	return sizePrefix(segs, n, cfg.RetentionBytes, everyone)
}

// agePrefix extends a plan of n leading segments over the following ones
// that may go (ok) and whose newest record is older than keep (< 0: no
// limit). The active segment never goes.
func agePrefix(segs []*segment, n int, keep time.Duration, now time.Time, ok func(i int) bool) int {
	if keep < 0 {
		return n
	}
	nowMs, keepMs := now.UnixMilli(), keep.Milliseconds()
	for n < len(segs)-1 && ok(n) {
		ts := segs[n].ix.maxTs
		if ts < 0 {
			st, err := segs[n].log.Stat()
			if err != nil {
				break
			}
			ts = st.ModTime().UnixMilli()
		}
		if nowMs-ts <= keepMs {
			break
		}
		n++
	}
	return n
}

// sizePrefix extends a plan of n leading segments over the following ones
// that may go (ok) while what remains stays at or above limit bytes (< 0:
// no limit).
func sizePrefix(segs []*segment, n int, limit int64, ok func(i int) bool) int {
	if limit < 0 {
		return n
	}
	var total int64
	for _, s := range segs[n:] {
		total += s.size
	}
	for n < len(segs)-1 && ok(n) && total-segs[n].size >= limit {
		total -= segs[n].size
		n++
	}
	return n
}

// ApplyRetention deletes whole closed segments that retention.ms,
// retention.bytes or the log start offset no longer keep (never the active
// segment), moving the log start to the first remaining segment. It
// returns how many segments it deleted.
func (l *Log) ApplyRetention(now time.Time) (deletedSegments int, err error) {
	l.structMu.Lock()
	defer l.structMu.Unlock()
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	removed := l.removeHeadLocked(l.retentionPlanLocked(now))
	l.mu.Unlock()
	if len(removed) == 0 {
		return 0, nil
	}
	err = l.writeCheckpoints()
	l.dropSegments(removed)
	return len(removed), err
}

// Truncate removes every batch holding an offset >= to, so the end offset
// becomes <= to (a batch straddling `to` goes whole: batches are never
// split). If to is at or below the first segment's base or below the log
// start, the log restarts empty at to. Readers holding a ReadResult over
// the truncated range must not be in flight (the follower path that
// truncates does not serve them).
func (l *Log) Truncate(to Offset) error {
	if to < 0 {
		return fmt.Errorf("segments: truncate to negative offset %d", to)
	}
	defer l.lockRewrite()()
	l.mu.Lock()
	removed, changed, err := l.truncateLocked(to)
	l.mu.Unlock()
	for _, s := range removed {
		s.release()
	}
	if err != nil || !changed {
		return err
	}
	return l.writeCheckpoints()
}

// lockRewrite takes the locks that exclude appends, syncs and structural
// changes (in lock order) for a rewrite of the log's tail, and returns
// their release.
func (l *Log) lockRewrite() (unlock func()) {
	l.appendMu.Lock()
	l.syncMu.Lock()
	l.structMu.Lock()
	return func() {
		l.structMu.Unlock()
		l.syncMu.Unlock()
		l.appendMu.Unlock()
	}
}

func (l *Log) truncateLocked(to Offset) (removed []*segment, changed bool, err error) {
	if err := l.checkWritableLocked(); err != nil {
		return nil, false, err
	}
	if to >= l.mu.end {
		return nil, false, nil
	}
	segs := l.mu.segs
	if to <= segs[0].base || to < l.mu.start {
		if removed, err = l.restartLocked(to); err != nil {
			return nil, false, err
		}
	} else {
		k := len(segs) - 1
		for segs[k].base >= to {
			k--
		}
		s := segs[k]
		v := segView{s: s, size: s.size, next: s.next, idx: s.idx.view()}
		sc, done := newReadScanner(s.log, s.size)
		_, pos, err := seekBatch(sc, v, to)
		done()
		if err == io.EOF {
			pos, err = s.size, nil
		}
		if err != nil {
			return nil, false, corruptAt(v, err)
		}
		removed = slices.Clone(segs[k+1:])
		for _, r := range removed {
			if err := r.removeFiles(); err != nil {
				return nil, false, err
			}
		}
		l.mu.segs = slices.Clone(segs[:k+1])
		if err := l.truncateSegmentLocked(s, pos); err != nil {
			l.mu.failed = err
			return removed, true, err
		}
		l.mu.end = s.next
	}
	l.mu.durable = min(l.mu.durable, l.mu.end)
	l.mu.cleanedTo = min(l.mu.cleanedTo, l.mu.end)
	l.mu.uploadedTo = min(l.mu.uploadedTo, l.mu.end)
	l.mu.epochs, _ = truncateEpochsFromEnd(l.mu.epochs, l.mu.end)
	l.logger.Info("truncated log", "to", to, "end", l.mu.end)
	return removed, true, nil
}

// restartLocked replaces every segment with one empty segment at o: the
// log restarts empty, with start and end at o.
func (l *Log) restartLocked(o Offset) ([]*segment, error) {
	// The directory handle the next Sync needs is taken first, so that a
	// lack of file handles fails here, before anything is removed.
	if err := l.holdDirLocked(); err != nil {
		return nil, err
	}
	segs := l.mu.segs
	for _, s := range segs {
		if err := s.removeFiles(); err != nil {
			return nil, err
		}
	}
	s, err := openSegmentFiles(l.dir, o, true, l.mu.cfg.IndexIntervalBytes)
	if err != nil {
		// The old files are gone: nothing consistent to serve until
		// Recover (or a restart) reloads the directory.
		l.mu.failed = err
		return nil, err
	}
	s.idx.mem, s.tix.mem = []byte{}, []byte{}
	l.mu.segs = []*segment{s}
	l.mu.start, l.mu.end = o, o
	l.mu.dirDirty = true
	return segs, nil
}

// StartAt makes the log restart empty at o, which must be at or beyond
// the end offset: what a replica does when its local log is behind the
// remote tier (a new or wiped data directory), so that its next append
// continues the history the bucket holds. Every local segment is removed;
// the leader epoch cache is emptied (the caller assigns the epoch to
// continue at).
func (l *Log) StartAt(o Offset) error {
	defer l.lockRewrite()()
	l.mu.Lock()
	if err := l.checkWritableLocked(); err != nil {
		l.mu.Unlock()
		return err
	}
	if o < l.mu.end {
		end := l.mu.end
		l.mu.Unlock()
		return fmt.Errorf("segments: start at %d below the end offset %d", o, end)
	}
	if o == l.mu.end && l.mu.start == o {
		l.mu.Unlock()
		return nil
	}
	removed, err := l.restartLocked(o)
	if err == nil {
		l.mu.durable, l.mu.cleanedTo, l.mu.uploadedTo = o, o, o
		l.mu.epochs = nil
		l.logger.Info("log restarted empty", "start", o)
	}
	l.mu.Unlock()
	for _, s := range removed {
		s.release()
	}
	if err != nil {
		return err
	}
	return l.writeCheckpoints()
}

// truncateSegmentLocked cuts s to size bytes, makes it the active segment
// and rebuilds its in-memory indexes.
func (l *Log) truncateSegmentLocked(s *segment, size int64) error {
	if err := s.log.Truncate(size); err != nil {
		return err
	}
	if err := fdatasync(s.log); err != nil {
		return err
	}
	if _, err := scanSegment(s, size, false, nil); err != nil {
		return err
	}
	s.closed, s.finalized = false, false
	s.syncedSize = size
	if s.size > 0 && s.rollStart.IsZero() {
		s.rollStart = time.Now()
	}
	return truncateIndexFiles(s)
}
