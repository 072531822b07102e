package segments

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stratalog/strata/internal/fsutil"
	"github.com/stratalog/strata/internal/logutil"
)

// Defaults applied to zero or negative Config fields (Kafka's defaults).
const (
	DefaultSegmentBytes       = 1 << 30  // segment.bytes, 1 GiB
	DefaultIndexIntervalBytes = 4096     // index.interval.bytes
	DefaultSegmentIndexBytes  = 10 << 20 // segment.index.bytes, 10 MiB
)

// normalized fills defaults and clamps values the file format cannot hold
// (positions are uint32 in the index and Kafka caps segment.bytes at
// MaxInt32).
func (c Config) normalized() Config {
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	c.SegmentBytes = min(c.SegmentBytes, math.MaxInt32)
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if c.SegmentIndexBytes <= 0 {
		c.SegmentIndexBytes = DefaultSegmentIndexBytes
	}
	c.SegmentIndexBytes = max(c.SegmentIndexBytes, 4*timeEntrySize)
	return c
}

// AppendInfo describes what Append wrote.
type AppendInfo struct {
	FirstOffset, LastOffset Offset
	LogAppendTime           int64 // append time in ms with LogAppendTime, else -1
	MaxTimestamp            int64 // largest batch timestamp written
}

// Log is one partition's log: a directory of segments plus checkpoints.
// See doc.go for the locking rules. All methods are safe for concurrent
// use; Append calls are serialised internally (the caller also orders them).
type Log struct {
	dir    string
	logger *slog.Logger

	appendMu sync.Mutex // serialises writers: Append, Truncate, Close, Delete
	syncMu   sync.Mutex // serialises Sync, and excludes it from Truncate and Close
	// structMu serialises changes to the closed segments: the cleaner's
	// swaps, retention, DeleteRecords, Truncate, Close and Delete.
	structMu sync.Mutex
	cleanMu  sync.Mutex // serialises cleaning passes (Clean)
	ckptMu   sync.Mutex // serialises checkpoint file writes; guards ckptOnDisk
	// ckptOnDisk holds each checkpoint file's content as last read or
	// written, so unchanged files are not rewritten (each write costs
	// two fsyncs).
	ckptOnDisk map[string][]byte

	mu struct {
		sync.RWMutex
		cfg      Config
		segs     []*segment // ascending base offsets; the last is active
		start    Offset     // log start offset
		end      Offset     // log end offset: next offset to assign
		durable  Offset     // end offset covered by the last Sync
		epochs   []EpochEntry
		dirDirty bool // files were created or removed since the directory was fsynced
		// dirF is a handle on the directory, opened by a roll (or restart)
		// before it creates files and closed by the Sync that fsyncs the
		// directory: making a roll durable never needs a new file handle,
		// so it cannot fail for want of one. Without dirF, the directory
		// only has removals to make durable, which no acknowledged data
		// depends on.
		dirF   *os.File
		ckptRP Offset // recovery point last written to its checkpoint
		// cleanedTo is the cleaner's first dirty offset: everything below
		// it has been compacted. horizonMs is the earliest delete horizon
		// of cleaned batches holding tombstones, 0 if none.
		cleanedTo Offset
		horizonMs int64
		// uploadedTo: offsets below it are in the remote tier (tier.go).
		uploadedTo Offset
		closed     bool
		failed     error // a write or fsync failed: the log refuses writes until Recover
	}
	// fileWarns rate-limits the warnings about failed rolls, appends and
	// directory opens (fileWarnInterval).
	fileWarns *logutil.Limiter
}

// fileWarnInterval rate-limits the warnings a log gives about failed rolls
// and directory opens: with file handles exhausted, every produce request
// would otherwise log one.
const fileWarnInterval = 10 * time.Second

// Dir returns the partition directory.
func (l *Log) Dir() string { return l.dir }

// Open opens or creates the log in dir; see the package documentation for
// recovery. A corrupt closed segment below the recovery point fails Open
// with a *CorruptError. logger should carry the topic and partition
// (replica.Open adds them); Open adds the directory.
func Open(dir string, cfg Config, logger *slog.Logger) (*Log, error) {
	if logger == nil {
		logger = slog.Default()
	}
	l := &Log{dir: dir, logger: logger.With("dir", dir), ckptOnDisk: map[string][]byte{}}
	l.fileWarns = logutil.NewLimiter(l.logger, fileWarnInterval, nil)
	l.mu.cfg = cfg.normalized()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := l.load(); err != nil {
		return nil, err
	}
	return l, nil
}

// fdatasync flushes a file's data and the metadata needed to read it
// (its size), without forcing an mtime journal write.
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = unix.Fdatasync(int(fd))
			if serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}

// writeCheckpoints writes the recovery point, log start and leader epoch
// checkpoints from the current state. Writers are serialised so the file
// always ends up with the latest state.
func (l *Log) writeCheckpoints() error {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	l.mu.RLock()
	rp, start, epochs := l.recoveryPointLocked(), l.mu.start, slices.Clone(l.mu.epochs)
	l.mu.RUnlock()
	var errs []error
	for _, f := range []struct {
		name string
		data []byte
	}{
		{recoveryPointFile, formatOffsetCheckpoint(rp)},
		{logStartFile, formatOffsetCheckpoint(start)},
		{leaderEpochFile, formatEpochCheckpoint(epochs)},
	} {
		if old, ok := l.ckptOnDisk[f.name]; ok && bytes.Equal(old, f.data) {
			continue
		}
		if err := fsutil.WriteFileAtomic(filepath.Join(l.dir, f.name), f.data); err != nil {
			delete(l.ckptOnDisk, f.name)
			errs = append(errs, err)
			continue
		}
		l.ckptOnDisk[f.name] = f.data
	}
	err := errors.Join(errs...)
	if err == nil {
		l.mu.Lock()
		l.mu.ckptRP = rp
		l.mu.Unlock()
	}
	return err
}

// recoveryPointLocked is the base offset of the first segment that is not
// closed, fsynced and finalized: recovery scans from there.
func (l *Log) recoveryPointLocked() Offset {
	for _, s := range l.mu.segs {
		if !s.finalized || s.syncedSize < s.size {
			return s.base
		}
	}
	return l.mu.end
}

func (l *Log) checkWritableLocked() error {
	if l.mu.closed {
		return ErrClosed
	}
	if l.mu.failed != nil {
		return fmt.Errorf("segments: log %s failed earlier: %w", l.dir, l.mu.failed)
	}
	return nil
}

// Append assigns offsets to already-validated batches (patching baseOffset
// and partitionLeaderEpoch in place; with LogAppendTime also the timestamp
// type bit and maxTimestamp, recomputing the CRC), writes them to the
// active segment with one pwrite (rolling first if segment.bytes,
// segment.ms, the index size or the relative-offset range says so) and
// updates the sparse indexes. headers are updated to match the bytes
// written. The data is visible to Read at once but not durable until Sync.
// If epoch is newer than the cached latest epoch it is recorded starting at
// the first offset.
//
// payload must be exactly the batches described by headers (as returned by
// ValidateBatches); it is not retained.
func (l *Log) Append(payload []byte, headers []BatchHeader, epoch LeaderEpoch, now time.Time) (AppendInfo, error) {
	var total, deltas int64
	for _, h := range headers {
		total += h.Size()
		deltas += int64(h.LastOffsetDelta) + 1
	}
	if len(headers) == 0 || total != int64(len(payload)) {
		return AppendInfo{}, fmt.Errorf("%w: %d headers describe %d bytes, payload has %d", ErrInvalidRecord, len(headers), total, len(payload))
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()

	l.mu.Lock()
	if err := checkTimestamps(headers, l.mu.cfg, now); err != nil {
		l.mu.Unlock()
		return AppendInfo{}, err
	}
	if err := l.checkWritableLocked(); err != nil {
		l.mu.Unlock()
		return AppendInfo{}, err
	}
	cfg := l.mu.cfg
	seg := l.mu.segs[len(l.mu.segs)-1]
	if l.shouldRollLocked(seg, total, deltas, now) {
		var err error
		if seg, err = l.rollLocked(); err != nil {
			l.mu.Unlock()
			return AppendInfo{}, err
		}
	}
	first := l.mu.end
	startPos := seg.size
	epochChanged := false
	l.mu.epochs, epochChanged = assignNewerEpoch(l.mu.epochs, epoch, first)
	l.mu.Unlock()

	// Only this goroutine touches payload and the bytes past seg.size.
	info := AppendInfo{FirstOffset: first, LogAppendTime: -1, MaxTimestamp: -1}
	appendMs := now.UnixMilli()
	if cfg.TimestampType == LogAppendTime {
		info.LogAppendTime = appendMs
	}
	off, p := first, int64(0)
	for i := range headers {
		h := headers[i]
		headers[i] = patchBatch(payload[p:p+h.Size()], h, off, epoch, cfg.TimestampType, appendMs)
		info.MaxTimestamp = max(info.MaxTimestamp, headers[i].MaxTimestamp)
		off = headers[i].NextOffset()
		p += h.Size()
	}
	info.LastOffset = off - 1

	if _, err := seg.log.WriteAt(payload, startPos); err != nil {
		// Cut off whatever part was written; if even that fails the file
		// no longer matches our state and the log stops taking writes
		// (until Recover). Otherwise nothing was written: ErrNotWritten.
		if terr := seg.log.Truncate(startPos); terr != nil {
			err = fmt.Errorf("append to %s: %w (cutting it off again: %v)", seg.log.Name(), err, terr)
			l.mu.Lock()
			l.mu.failed = err
			l.mu.Unlock()
			return AppendInfo{}, err
		}
		l.warnFiles("append failed and was cut off again: nothing was written; the producer retries",
			"segment", seg.log.Name(), "err", err, "hint", fsutil.Hint(err))
		return AppendInfo{}, fmt.Errorf("%w: append to %s: %w", ErrNotWritten, seg.log.Name(), err)
	}

	l.mu.Lock()
	if seg.size == 0 {
		seg.rollStart = now
	}
	pos := startPos
	for _, h := range headers {
		seg.indexBatch(h, pos)
		pos += h.Size()
	}
	seg.size = pos
	seg.next = off
	l.mu.end = off
	l.mu.Unlock()

	if epochChanged {
		if err := l.writeCheckpoints(); err != nil {
			l.logger.Error("cannot write leader epoch checkpoint", "err", err)
		}
	}
	return info, nil
}

// shouldRollLocked reports whether an append of n bytes spanning deltas
// offsets must go to a new segment.
func (l *Log) shouldRollLocked(s *segment, n, deltas int64, now time.Time) bool {
	if s.size == 0 {
		return false // an empty segment takes anything
	}
	cfg := l.mu.cfg
	switch {
	case s.size+n > cfg.SegmentBytes:
		return true
	case cfg.SegmentRollAge > 0 && now.Sub(s.rollStart) >= cfg.SegmentRollAge:
		return true
	case int64(s.idx.n+1)*offsetEntrySize > int64(cfg.SegmentIndexBytes),
		int64(s.tix.n+1)*timeEntrySize > int64(cfg.SegmentIndexBytes):
		return true
	case int64(l.mu.end-s.base)+deltas > math.MaxUint32:
		return true
	}
	return false
}

// rollLocked closes the active segment and starts a new one at the end
// offset. The old segment's indexes are written and fsynced by the next
// Sync (it stays "dirty" until then). It needs four file handles: the new
// segment's three files, kept open, and a directory handle kept until that
// Sync. If any cannot be had, the log is left as it was and the error
// wraps ErrRollFailed and the cause.
func (l *Log) rollLocked() (*segment, error) {
	old := l.mu.segs[len(l.mu.segs)-1]
	base := l.mu.end
	heldDir := l.mu.dirF != nil
	if err := l.holdDirLocked(); err != nil {
		return nil, l.rollError(base, err)
	}
	s, err := openSegmentFiles(l.dir, base, true, l.mu.cfg.IndexIntervalBytes)
	if err != nil {
		if !heldDir {
			l.closeDirLocked() // leave the log as it was
		}
		return nil, l.rollError(base, err)
	}
	s.idx.mem, s.tix.mem = []byte{}, []byte{}
	old.maybeTimeEntry()
	old.closed = true
	l.mu.segs = append(l.mu.segs, s)
	l.mu.dirDirty = true
	l.logger.Debug("rolled segment", "base", s.base)
	return s, nil
}

// rollError builds the error of a roll at base that failed with cause, and
// logs it (rate-limited: see warnFiles).
func (l *Log) rollError(base Offset, cause error) error {
	err := fmt.Errorf("%w at offset %d: %w", ErrRollFailed, base, cause)
	l.warnFiles("cannot roll to a new segment; appends fail with a retriable error until a roll succeeds",
		"offset", int64(base), "err", cause, "hint", fsutil.Hint(cause))
	return err
}

// warnFiles logs a warning about files unless one was logged less than
// fileWarnInterval ago; the next one reports how many were suppressed.
// Needs no lock (the Limiter is safe for concurrent use).
func (l *Log) warnFiles(msg string, args ...any) {
	l.fileWarns.Log(slog.LevelWarn, "files", msg, args...)
}

// Roll starts a new segment now if the active one holds data. It retries a
// roll that failed (ErrRollFailed) without waiting for the next Append;
// the new segment is durable after the next Sync. Errors: ErrClosed, the
// log's earlier failure, or ErrRollFailed (the log is unchanged).
func (l *Log) Roll() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkWritableLocked(); err != nil {
		return err
	}
	if l.mu.segs[len(l.mu.segs)-1].size == 0 {
		return nil
	}
	_, err := l.rollLocked()
	return err
}

// OpenFiles is the number of file handles the log holds: three per listed
// segment (closed segments keep their files open, as Kafka's do), plus a
// directory handle between a roll and the Sync that makes it durable.
// ReadResults may keep the files of removed segments open a little longer.
func (l *Log) OpenFiles() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := 3 * len(l.mu.segs)
	if l.mu.dirF != nil {
		n++
	}
	return n
}

// syncWork is one segment a Sync must flush.
type syncWork struct {
	s        *segment
	size     int64
	finalize bool
	idx, tix []byte
	idxAt    int64
	tixAt    int64
}

// Sync fsyncs everything appended so far (every dirty segment; a segment
// rolled since the last Sync also gets its indexes written and fsynced),
// then advances the durable end offset, and the recovery-point checkpoint
// when it moves to a newer segment. It returns the durable end offset.
// Safe to call concurrently with Append and Read. After an fsync error the
// log refuses further writes (the page cache may have dropped the data).
func (l *Log) Sync() (Offset, error) {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	return l.syncLocked()
}

// syncLocked is Sync with syncMu held.
func (l *Log) syncLocked() (Offset, error) {
	l.mu.Lock()
	if err := l.checkWritableLocked(); err != nil {
		l.mu.Unlock()
		return 0, err
	}
	end := l.mu.end
	var work []syncWork
	for _, s := range l.mu.segs {
		w := syncWork{s: s, size: s.size, finalize: s.closed && !s.finalized}
		if w.size <= s.syncedSize && !w.finalize {
			continue
		}
		if w.finalize {
			w.idx, w.idxAt = s.idx.pending()
			w.tix, w.tixAt = s.tix.pending()
		}
		s.acquire()
		work = append(work, w)
	}
	dirDirty, dirF := l.mu.dirDirty, l.mu.dirF
	l.mu.dirDirty, l.mu.dirF = false, nil
	l.mu.Unlock()

	var err error
	for _, w := range work {
		if err == nil {
			err = w.s.syncFiles(w)
		}
	}
	dirLeft := false // the directory could not be opened: fsync it next time
	if err == nil && dirDirty {
		if dirF == nil {
			// Only removals to make durable (see mu.dirF): if no handle
			// can be had now, the next Sync tries again.
			if dirF, err = os.Open(l.dir); err != nil {
				l.warnFiles("cannot open the partition directory to fsync removed segments; retrying at the next sync",
					"err", err, "hint", fsutil.Hint(err))
				dirF, err, dirLeft = nil, nil, true
			}
		}
		if dirF != nil {
			if err = dirF.Sync(); err != nil {
				err = fmt.Errorf("fsync %s: %w", l.dir, err)
			}
			_ = dirF.Close()
		}
	} else if dirF != nil {
		_ = dirF.Close()
	}

	l.mu.Lock()
	if dirLeft {
		l.mu.dirDirty = true
	}
	if err != nil {
		l.mu.failed = err
		l.mu.dirDirty = l.mu.dirDirty || dirDirty
	} else {
		for _, w := range work {
			w.s.syncedSize = max(w.s.syncedSize, w.size)
			if w.finalize {
				w.s.finalized = true
				w.s.idx.flushed, w.s.tix.flushed = w.s.idx.n, w.s.tix.n
				// Lookups now read the files.
				w.s.idx.mem, w.s.tix.mem = nil, nil
			}
		}
		l.mu.durable = max(l.mu.durable, end)
	}
	moved := err == nil && l.recoveryPointLocked() != l.mu.ckptRP
	durable := l.mu.durable
	l.mu.Unlock()
	for _, w := range work {
		w.s.release()
	}
	if err != nil {
		l.logger.Error("fsync failed; log no longer accepts writes", "err", err)
		return 0, err
	}
	if moved {
		if err := l.writeCheckpoints(); err != nil {
			// A stale recovery point only means a longer scan.
			l.logger.Warn("cannot write checkpoints", "err", err)
		}
	}
	return durable, nil
}

// syncFiles does the I/O of one syncWork.
func (s *segment) syncFiles(w syncWork) error {
	if w.finalize {
		if err := flushEntries(s.idx.f, w.idx, w.idxAt); err != nil {
			return err
		}
		if err := flushEntries(s.tix.f, w.tix, w.tixAt); err != nil {
			return err
		}
		if err := fdatasync(s.idx.f); err != nil {
			return err
		}
		if err := fdatasync(s.tix.f); err != nil {
			return err
		}
	}
	if err := fdatasync(s.log); err != nil {
		return fmt.Errorf("fsync %s: %w", s.log.Name(), err)
	}
	return nil
}

// StartOffset is the log start offset (after retention and DeleteRecords).
func (l *Log) StartOffset() Offset {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.start
}

// SizeBytes is the size of the log's segment files (record batches only,
// indexes excluded), as retention.bytes counts it.
func (l *Log) SizeBytes() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.mu.segs {
		n += s.size
	}
	return n
}

// EndOffset is the log end offset: the next offset to assign.
func (l *Log) EndOffset() Offset {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.end
}

// DurableOffset is the end offset covered by the last successful Sync.
func (l *Log) DurableOffset() Offset {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.durable
}

// SetConfig replaces the configuration; it applies to the next Append,
// roll and retention pass (index.interval.bytes from the next index entry).
func (l *Log) SetConfig(cfg Config) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.cfg = cfg.normalized()
	if n := len(l.mu.segs); n > 0 {
		l.mu.segs[n-1].ix.interval = int64(l.mu.cfg.IndexIntervalBytes)
	}
}

// AssignEpoch records that leader epoch e starts at startOffset (Kafka's
// leader epoch cache rules; see assignEpoch) and persists the cache.
func (l *Log) AssignEpoch(e LeaderEpoch, startOffset Offset) error {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	var changed bool
	l.mu.epochs, changed = assignEpoch(l.mu.epochs, e, startOffset)
	l.mu.Unlock()
	if !changed {
		return nil
	}
	return l.writeCheckpoints()
}

// LatestEpoch is the newest leader epoch in the cache, -1 if none.
func (l *Log) LatestEpoch() LeaderEpoch {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if n := len(l.mu.epochs); n > 0 {
		return l.mu.epochs[n-1].Epoch
	}
	return -1
}

// EndOffsetForEpoch implements OffsetForLeaderEpoch: the largest epoch <= e
// and the end offset of that epoch (the start of the next one, or the log
// end offset for the latest epoch); (-1, -1) if unknown.
func (l *Log) EndOffsetForEpoch(e LeaderEpoch) (LeaderEpoch, Offset) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return endOffsetForEpoch(l.mu.epochs, e, l.mu.end)
}

// Close syncs, writes the indexes of the active segment, the checkpoints
// and the clean-shutdown marker, and closes the files (those still
// referenced by ReadResults close on their Release). If a write or fsync
// failed earlier, no marker is written, so the next Open recovers. Closing
// a closed log does nothing.
func (l *Log) Close() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.structMu.Lock()
	defer l.structMu.Unlock()
	l.mu.RLock()
	closed, failed := l.mu.closed, l.mu.failed
	l.mu.RUnlock()
	if closed {
		return nil // already closed (or deleted)
	}
	var errs []error
	if failed == nil {
		if _, err := l.syncLocked(); err != nil {
			errs = append(errs, err)
		}
	}
	l.mu.Lock()
	active := l.mu.segs[len(l.mu.segs)-1]
	active.maybeTimeEntry()
	idx, idxAt := active.idx.pending()
	tix, tixAt := active.tix.pending()
	clean := len(errs) == 0 && l.mu.failed == nil
	l.mu.Unlock()
	if clean {
		errs = append(errs, active.syncFiles(syncWork{finalize: true, idx: idx, idxAt: idxAt, tix: tix, tixAt: tixAt}))
		l.mu.Lock()
		active.idx.flushed, active.tix.flushed = active.idx.n, active.tix.n
		active.finalized, active.syncedSize = true, active.size
		l.mu.Unlock()
		errs = append(errs, l.writeCheckpoints())
		if errors.Join(errs...) == nil {
			errs = append(errs, fsutil.WriteFileAtomic(filepath.Join(l.dir, cleanShutdownFile), nil))
		}
	}
	l.mu.Lock()
	l.mu.closed = true
	segs := l.mu.segs
	l.mu.segs = nil
	l.closeDirLocked()
	l.mu.Unlock()
	for _, s := range segs {
		s.release()
	}
	return errors.Join(errs...)
}

// holdDirLocked opens the directory handle (mu.dirF) with which the next
// Sync fsyncs the directory, unless one is held already. Called before
// files are created or removed, so that a lack of file handles fails
// there, before anything changed.
func (l *Log) holdDirLocked() error {
	if l.mu.dirF != nil {
		return nil
	}
	f, err := os.Open(l.dir)
	if err != nil {
		return err
	}
	l.mu.dirF = f
	return nil
}

// closeDirLocked closes the directory handle (mu.dirF), if any.
func (l *Log) closeDirLocked() {
	if l.mu.dirF != nil {
		_ = l.mu.dirF.Close()
		l.mu.dirF = nil
	}
}

// Recover brings a log that failed (a write that could not be cut off, or
// an fsync error: see Append and Sync) back into service without a
// restart. It reloads the directory as Open does after a crash (a CRC scan
// from the recovery point; a torn tail is cut), then cuts the log at the
// durable offset it had: nothing after that was acknowledged, and after a
// failed fsync the page cache may hold bytes the disk does not. The *Log,
// its config and its uploaded-to mark stay; ReadResults taken before keep
// their files. A log that has not failed is left alone (nil).
//
// Errors leave the log failed, and Recover may be called again: ErrClosed,
// a reload that fails (it needs three file handles per segment while the
// old ones are still open, so it fails with EMFILE until handles are
// freed), or a recovered log that ends below the durable offset (data that
// an fsync confirmed is gone: the disk lost it; an operator must look).
//
// Recover excludes Append, Sync, retention, truncation and the cleaner's
// swaps for its duration; it does not take cleanMu (a pass in progress
// finds its segments replaced and abandons its swap).
func (l *Log) Recover() error {
	defer l.lockRewrite()()
	l.mu.RLock()
	closed, failed, keep, cfg := l.mu.closed, l.mu.failed, l.mu.durable, l.mu.cfg
	l.mu.RUnlock()
	switch {
	case closed:
		return ErrClosed
	case failed == nil:
		return nil
	}
	// Load into a private Log, so that readers keep the old state until
	// the new one is complete.
	fresh := &Log{dir: l.dir, logger: l.logger, ckptOnDisk: map[string][]byte{}}
	fresh.mu.cfg = cfg
	if err := fresh.load(); err != nil {
		return fmt.Errorf("segments: recover %s: %w", l.dir, err)
	}
	discard := func() {
		for _, s := range fresh.mu.segs {
			s.release()
		}
		fresh.closeDirLocked()
	}
	if fresh.mu.end < keep {
		discard()
		return fmt.Errorf("segments: recover %s: the recovered log ends at offset %d, below the durable offset %d: acknowledged data is missing",
			l.dir, fresh.mu.end, keep)
	}
	if fresh.mu.end > keep {
		// fresh is not shared yet: no lock is needed to change it.
		removed, _, err := fresh.truncateLocked(keep)
		for _, s := range removed {
			s.release()
		}
		if err == nil {
			err = fresh.writeCheckpoints()
		}
		if err != nil {
			discard()
			return fmt.Errorf("segments: recover %s: cutting the log at the durable offset %d: %w", l.dir, keep, err)
		}
	}

	l.ckptMu.Lock()
	l.ckptOnDisk = fresh.ckptOnDisk
	l.mu.Lock()
	old := l.mu.segs
	l.closeDirLocked()
	l.mu.segs = fresh.mu.segs
	l.mu.start, l.mu.end, l.mu.durable = fresh.mu.start, fresh.mu.end, fresh.mu.durable
	l.mu.epochs = fresh.mu.epochs
	l.mu.dirDirty, l.mu.dirF = fresh.mu.dirDirty, fresh.mu.dirF
	l.mu.ckptRP = fresh.mu.ckptRP
	l.mu.cleanedTo, l.mu.horizonMs = fresh.mu.cleanedTo, fresh.mu.horizonMs
	l.mu.uploadedTo = min(l.mu.uploadedTo, fresh.mu.end)
	l.mu.failed = nil
	start, end := l.mu.start, l.mu.end
	l.mu.Unlock()
	l.ckptMu.Unlock()
	for _, s := range old {
		s.release()
	}
	l.logger.Info("log recovered after a storage failure", "failure", failed, "start", int64(start), "end", int64(end))
	return nil
}

// Delete closes the log (without a clean-shutdown marker) and removes its
// directory. Files still referenced by ReadResults stay readable until
// released.
func (l *Log) Delete() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.structMu.Lock()
	defer l.structMu.Unlock()
	l.mu.Lock()
	segs := l.mu.segs
	l.mu.segs = nil
	l.mu.closed = true
	l.closeDirLocked()
	l.mu.Unlock()
	for _, s := range segs {
		s.release()
	}
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	return os.RemoveAll(l.dir)
}

// checkTimestamps applies message.timestamp.before.max.ms and
// message.timestamp.after.max.ms to CreateTime batches: the first record's
// timestamp must not lie too far before now, nor the largest too far after.
// (Kafka checks every record; the first and the largest bound them for the
// batches clients build, whose timestamps only grow.)
func checkTimestamps(headers []BatchHeader, cfg Config, now time.Time) error {
	if cfg.TimestampType != CreateTime {
		return nil
	}
	nowMs := now.UnixMilli()
	beforeMs, afterMs := cfg.TimestampBeforeMax.Milliseconds(), cfg.TimestampAfterMax.Milliseconds()
	for _, h := range headers {
		// Subtractions are ordered so that none can overflow for a limit
		// of Long.MAX_VALUE ("unlimited").
		if cfg.TimestampBeforeMax > 0 && h.BaseTimestamp < nowMs && nowMs-h.BaseTimestamp > beforeMs {
			return fmt.Errorf("%w: batch timestamp %d is more than message.timestamp.before.max.ms=%d before the broker time %d", ErrInvalidTimestamp, h.BaseTimestamp, beforeMs, nowMs)
		}
		if cfg.TimestampAfterMax > 0 && h.MaxTimestamp > nowMs && h.MaxTimestamp-nowMs > afterMs {
			return fmt.Errorf("%w: batch timestamp %d is more than message.timestamp.after.max.ms=%d after the broker time %d", ErrInvalidTimestamp, h.MaxTimestamp, afterMs, nowMs)
		}
	}
	return nil
}
