package segments

// What the tiering layer needs from a Log: closed segments pinned for
// upload, and the upload boundary that lets local retention delete
// segments that are safe in the remote tier.

import (
	"fmt"
	"os"
	"slices"
)

// ClosedSegment is a closed, fsynced segment with its indexes, pinned so
// that retention or compaction cannot close its files while it is read.
// Read the files with ReadAt only (never their shared position), and call
// Release when done.
type ClosedSegment struct {
	Base, Next     Offset // the segment holds offsets [Base, Next)
	LogBytes       int64  // size of Log
	IndexBytes     int64  // valid bytes of Index
	TimeIndexBytes int64  // valid bytes of TimeIndex
	MaxTimestamp   int64  // largest batch timestamp, -1 if none
	Log            *os.File
	Index          *os.File
	TimeIndex      *os.File
	// Epochs are the leader epoch entries in force over [Base, Next): the
	// one current at Base (its start offset may be below Base) and every
	// later one starting before Next.
	Epochs []EpochEntry

	seg *segment
}

// Release unpins the segment. Safe to call more than once.
func (c *ClosedSegment) Release() {
	if c.seg != nil {
		c.seg.release()
		c.seg = nil
	}
}

// ClosedSegments returns, in offset order, every closed segment whose
// base is at or after from and whose data and indexes are fsynced (not
// the active segment). Each is pinned; the caller releases them all.
func (l *Log) ClosedSegments(from Offset) ([]ClosedSegment, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return nil, ErrClosed
	}
	var out []ClosedSegment
	for _, s := range l.mu.segs[:len(l.mu.segs)-1] {
		if s.base < from || !s.finalized {
			continue
		}
		s.acquire()
		out = append(out, ClosedSegment{
			Base: s.base, Next: s.next, LogBytes: s.size,
			IndexBytes: int64(s.idx.n * offsetEntrySize), TimeIndexBytes: int64(s.tix.n * timeEntrySize),
			MaxTimestamp: s.ix.maxTs,
			Log:          s.log, Index: s.idx.f, TimeIndex: s.tix.f,
			Epochs: epochsBetween(l.mu.epochs, s.base, s.next),
			seg:    s,
		})
	}
	return out, nil
}

// epochsBetween returns the entries of es in force over [from, to).
func epochsBetween(es []EpochEntry, from, to Offset) []EpochEntry {
	var out []EpochEntry
	for i, e := range es {
		if e.StartOffset >= to {
			break
		}
		if i+1 < len(es) && es[i+1].StartOffset <= from {
			continue // superseded before from
		}
		out = append(out, e)
	}
	return slices.Clip(out)
}

// SetUploadedTo records that every offset below o is committed in the
// remote tier: with remote storage on (Config.RemoteStorage), local
// retention (local.retention.ms/bytes) may then delete local segments
// that end at or below o. It never moves backwards.
func (l *Log) SetUploadedTo(o Offset) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	if o > l.mu.end {
		return fmt.Errorf("segments: uploaded offset %d beyond the log end %d", o, l.mu.end)
	}
	l.mu.uploadedTo = max(l.mu.uploadedTo, o)
	return nil
}

// UploadedTo is the offset below which everything is in the remote tier.
func (l *Log) UploadedTo() Offset {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.uploadedTo
}

// UploadPending reports whether some closed, fsynced segment ends beyond
// UploadedTo: work for the uploader. It is cheap (no segment is pinned).
func (l *Log) UploadPending() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	segs := l.mu.segs
	for i := len(segs) - 2; i >= 0; i-- {
		if segs[i].finalized {
			return segs[i].next > l.mu.uploadedTo
		}
	}
	return false
}
