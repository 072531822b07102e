package segments

// Log compaction (cleanup.policy=compact): one cleaning pass over a Log.
// See doc.go, "Compaction", for the rules and the crash-safe swap.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stratalog/strata/internal/fsutil"
)

const (
	// cleanerCheckpointFile holds the cleaner's progress: the first dirty
	// offset (everything below it has been cleaned) and the earliest
	// delete horizon among the cleaned batches still holding tombstones
	// (0 if none), so a restart neither recleans nor forgets tombstones.
	cleanerCheckpointFile = "cleaner-offset-checkpoint"
	// cleanerSwapFile, while present, says a cleaned segment is complete
	// and must replace the segments it lists (see commitCleaned).
	cleanerSwapFile = "cleaner-swap"
	// cleanedSuffix marks a cleaned segment file being written.
	cleanedSuffix = ".cleaned"

	cleanerIOBufferBytes = 1 << 20
)

// ErrCleanAborted: the segments being cleaned changed meanwhile (retention,
// DeleteRecords, truncation or Close); the pass stops, the segments swapped
// in so far stay, and the next pass starts over.
var ErrCleanAborted = errors.New("segments: cleaning aborted: the log changed")

// CleanCheck says whether a log is due for a cleaning pass, and why.
type CleanCheck struct {
	Due        bool
	Reason     string  // "dirty ratio", "max.compaction.lag.ms" or "delete horizon"
	DirtyRatio float64 // dirty bytes / cleanable bytes
	DirtyBytes int64
}

// CleanOptions are the broker-wide cleaner settings of one pass.
type CleanOptions struct {
	// DedupeBufferBytes bounds the key map (log.cleaner.dedupe.buffer.size);
	// each distinct key costs 24 bytes, at most 90% of the slots are used.
	DedupeBufferBytes int64
	// KeepProducerBatch (may be nil) reports whether the batch ending at
	// lastOffset is the newest of an idempotent producer: if compaction
	// empties it, its header stays so the producer's sequence state
	// survives a replay of the log (Kafka does the same).
	KeepProducerBatch func(producerID int64, lastOffset Offset) bool
	Now               time.Time
}

// CleanStats describes one pass.
type CleanStats struct {
	FirstDirty, CleanedTo Offset // the dirty section mapped: [FirstDirty, CleanedTo)
	SegmentsRead          int
	SegmentsWritten       int
	BytesRead             int64
	BytesWritten          int64
	RecordsRead           int64
	RecordsRemoved        int64
}

// cleanableCountLocked returns how many leading segments a pass may clean:
// closed segments below the checkpointed recovery point (finalized, so
// recovery never scans them: a cleaned segment may end before the next
// one starts), and, with min.compaction.lag.ms, only those whose newest
// record is old enough.
func (l *Log) cleanableCountLocked(now time.Time, firstDirty Offset) int {
	segs, cfg := l.mu.segs, l.mu.cfg
	limit := min(segs[len(segs)-1].base, l.mu.ckptRP)
	n := 0
	for n < len(segs)-1 && segs[n].next <= limit && segs[n].finalized {
		n++
	}
	if cfg.MinCompactionLag > 0 {
		cutoff := now.UnixMilli() - cfg.MinCompactionLag.Milliseconds()
		for i := range n {
			if segs[i].next > firstDirty && segs[i].ix.maxTs > cutoff {
				return i
			}
		}
	}
	return n
}

func (l *Log) firstDirtyLocked() Offset { return max(l.mu.cleanedTo, l.mu.segs[0].base) }

// CheckClean reports whether a compacted log needs a pass: when the dirty
// part of its cleanable section is at least min.cleanable.dirty.ratio of
// it, when its oldest dirty record is older than max.compaction.lag.ms, or
// when tombstones' delete horizon has passed.
func (l *Log) CheckClean(now time.Time) CleanCheck {
	l.mu.RLock()
	defer l.mu.RUnlock()
	cfg := l.mu.cfg
	if l.mu.closed || l.mu.failed != nil || !cfg.Compact {
		return CleanCheck{}
	}
	firstDirty := l.firstDirtyLocked()
	n := l.cleanableCountLocked(now, firstDirty)
	var clean, dirty int64
	firstDirtySeg := -1
	for i, s := range l.mu.segs[:n] {
		if s.next > firstDirty { // partly dirty counts as dirty
			dirty += s.size
			if firstDirtySeg < 0 {
				firstDirtySeg = i
			}
		} else {
			clean += s.size
		}
	}
	c := CleanCheck{DirtyBytes: dirty}
	if dirty > 0 {
		c.DirtyRatio = float64(dirty) / float64(clean+dirty)
	}
	nowMs := now.UnixMilli()
	switch {
	case dirty > 0 && c.DirtyRatio >= cfg.MinCleanableRatio:
		c.Due, c.Reason = true, "dirty ratio"
	case dirty > 0 && cfg.MaxCompactionLag > 0 && firstBatchTimestamp(l.mu.segs[firstDirtySeg]) < nowMs-cfg.MaxCompactionLag.Milliseconds():
		c.Due, c.Reason = true, "max.compaction.lag.ms"
	case n > 0 && l.mu.horizonMs > 0 && nowMs >= l.mu.horizonMs:
		c.Due, c.Reason = true, "delete horizon"
	}
	return c
}

// firstBatchTimestamp is the max timestamp of a segment's first batch (a
// pread of its header), or MaxInt64 if unknown.
func firstBatchTimestamp(s *segment) int64 {
	var b [BatchHeaderSize]byte
	if s.size < BatchHeaderSize {
		return math.MaxInt64
	}
	if _, err := s.log.ReadAt(b[:], 0); err != nil {
		return math.MaxInt64
	}
	return parseHeaderUnchecked(b[:]).MaxTimestamp
}

// Clean runs one compaction pass: it maps the latest offset of every key in
// the dirty section (as much of it as the key map holds), then rewrites
// every cleanable segment from the log start keeping, per key, only the
// record the map names or any later one, dropping keyless records and
// tombstones past their delete horizon, and merging small neighbouring
// segments up to segment.bytes. Offsets are preserved; the active segment
// and anything not yet fsynced are never touched. Each rewritten group of
// segments replaces the old ones crash-safely. Safe to call concurrently
// with every other method; passes of one Log are serialised. ctx aborts
// the pass between batches.
func (l *Log) Clean(ctx context.Context, opts CleanOptions) (CleanStats, error) {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return CleanStats{}, ErrClosed
	}
	cfg := l.mu.cfg
	if !cfg.Compact {
		l.mu.RUnlock()
		return CleanStats{}, nil
	}
	firstDirty := l.firstDirtyLocked()
	n := l.cleanableCountLocked(now, firstDirty)
	views := make([]segView, n)
	for i, s := range l.mu.segs[:n] {
		views[i] = s.viewLocked()
	}
	l.mu.RUnlock()
	defer releaseViews(views)
	stats := CleanStats{FirstDirty: firstDirty, CleanedTo: firstDirty}
	if n == 0 {
		return stats, nil
	}

	f := &batchFilter{
		nowMs:             now.UnixMilli(),
		deleteRetentionMs: max(cfg.DeleteRetention.Milliseconds(), 0),
		keepProducerBatch: opts.KeepProducerBatch,
		decompressLimit:   decompressLimit(cfg.MaxMessageBytes),
	}
	mapEnd, err := l.buildKeyMap(ctx, views, firstDirty, opts.DedupeBufferBytes, f)
	if err != nil {
		return stats, err
	}
	stats.CleanedTo = mapEnd

	// Rewrite every segment holding mapped (or older) data, in groups
	// that fit one segment.
	end := 0
	for end < n && views[end].s.base < mapEnd {
		end++
	}
	if mapEnd == firstDirty {
		end = n // no dirty data: a delete-horizon pass over the clean section
	}
	horizon := int64(0)
	for i := 0; i < end; {
		j := groupEnd(views, i, end, cfg)
		h, err := l.cleanGroup(ctx, views[i:j], f, &stats)
		if err != nil {
			return stats, err
		}
		if h > 0 && (horizon == 0 || h < horizon) {
			horizon = h
		}
		i = j
	}

	l.mu.Lock()
	l.mu.cleanedTo = max(l.mu.cleanedTo, mapEnd)
	l.mu.horizonMs = horizon
	cleanedTo := l.mu.cleanedTo
	l.mu.Unlock()
	if err := fsutil.WriteFileAtomic(filepath.Join(l.dir, cleanerCheckpointFile), formatCleanerCheckpoint(cleanedTo, horizon)); err != nil {
		// Only costs a repeated pass after a restart.
		l.logger.Warn("cannot write the cleaner checkpoint", "err", err)
	}
	return stats, nil
}

// groupEnd returns j such that views[i:j] (at least one segment) fits in
// one segment: segment.bytes, the relative-offset range of the index, and
// segment.index.bytes for both indexes.
func groupEnd(views []segView, i, end int, cfg Config) int {
	j := i + 1
	size, idxN, tixN := views[i].size, views[i].idx.n, views[i].tix.n
	for j < end {
		v := views[j]
		if size+v.size > cfg.SegmentBytes ||
			int64(v.next-views[i].s.base) > math.MaxUint32 ||
			int64(idxN+v.idx.n+1)*offsetEntrySize > int64(cfg.SegmentIndexBytes) ||
			int64(tixN+v.tix.n+1)*timeEntrySize > int64(cfg.SegmentIndexBytes) {
			break
		}
		size, idxN, tixN = size+v.size, idxN+v.idx.n, tixN+v.tix.n
		j++
	}
	return j
}

// batchReader reads the whole batches of a segment view in order.
type batchReader struct {
	v   segView
	sc  *scanner
	pos int64
	buf []byte
}

// next returns the next batch with NextOffset > from, or io.EOF.
func (r *batchReader) next(from Offset) ([]byte, BatchHeader, error) {
	for {
		h, err := r.sc.header(r.pos)
		if err != nil {
			if err != io.EOF {
				err = corruptAt(r.v, err)
			}
			return nil, h, err
		}
		pos := r.pos
		r.pos += h.Size()
		if h.NextOffset() <= from {
			continue
		}
		if int64(cap(r.buf)) < h.Size() {
			r.buf = make([]byte, h.Size())
		}
		b := r.buf[:h.Size()]
		if _, err := r.v.s.log.ReadAt(b, pos); err != nil {
			return nil, h, fmt.Errorf("read batch at %s:%d: %w", r.v.s.log.Name(), pos, err)
		}
		return b, h, nil
	}
}

func newBatchReader(v segView) *batchReader {
	return &batchReader{v: v, sc: &scanner{f: v.s.log, limit: v.size, buf: make([]byte, max(min(v.size, 256<<10), BatchHeaderSize))}}
}

// buildKeyMap maps every key of the dirty section [firstDirty, ...) to its
// latest offset, until the map is full. It returns the end of what was
// mapped (a batch boundary); a pass with no dirty data returns firstDirty.
func (l *Log) buildKeyMap(ctx context.Context, views []segView, firstDirty Offset, bufferBytes int64, f *batchFilter) (Offset, error) {
	last := views[len(views)-1].next
	if last <= firstDirty {
		f.keys = newOffsetMap(offsetMapSlotsFor(0, bufferBytes))
		return firstDirty, nil
	}
	f.keys = newOffsetMap(offsetMapSlotsFor(int64(last-firstDirty), bufferBytes))
	mapEnd := firstDirty
	for _, v := range views {
		if v.next <= firstDirty {
			continue
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		r := newBatchReader(v)
		for {
			b, h, err := r.next(firstDirty)
			if err == io.EOF {
				break
			}
			if err != nil {
				return 0, err
			}
			if !h.IsControl() {
				recs, err := f.records(b, h)
				if err != nil {
					return 0, &CorruptError{Path: v.s.log.Name(), Offset: h.BaseOffset, Position: -1, Reason: err.Error()}
				}
				full := false
				err = forEachRecord(recs, h.RecordCount, func(rec record) error {
					if rec.key != nil && !f.keys.put(rec.key, h.BaseOffset+Offset(rec.offsetDelta)) {
						full = true
						return io.EOF
					}
					return nil
				})
				if full {
					if mapEnd == firstDirty {
						return 0, fmt.Errorf("segments: log.cleaner.dedupe.buffer.size (%d bytes) holds fewer keys than the batch at offset %d", bufferBytes, h.BaseOffset)
					}
					return mapEnd, nil
				}
				if err != nil {
					return 0, &CorruptError{Path: v.s.log.Name(), Offset: h.BaseOffset, Position: -1, Reason: err.Error()}
				}
			}
			mapEnd = h.NextOffset()
		}
	}
	return mapEnd, nil
}

// cleanGroup rewrites the segments of g into one cleaned segment named
// after the first, and swaps it in. It returns the earliest delete horizon
// of the batches it kept with tombstones (0 if none).
func (l *Log) cleanGroup(ctx context.Context, g []segView, f *batchFilter, stats *CleanStats) (horizon int64, err error) {
	base := g[0].s.base
	l.mu.RLock()
	cfg := l.mu.cfg
	l.mu.RUnlock()
	paths := [3]string{
		segmentPath(l.dir, base, logSuffix) + cleanedSuffix,
		segmentPath(l.dir, base, indexSuffix) + cleanedSuffix,
		segmentPath(l.dir, base, timeIndexSuffix) + cleanedSuffix,
	}
	var files [3]*os.File
	defer func() {
		for _, fl := range files {
			if fl != nil {
				_ = fl.Close()
			}
		}
		// After a commit the cleaned files have been renamed away; on
		// failure, or for an unchanged group, they are dropped.
		for _, p := range paths {
			_ = os.Remove(p)
		}
	}()
	for i, p := range paths {
		if files[i], err = os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644); err != nil {
			return 0, err
		}
	}
	built := &segment{base: base, next: g[len(g)-1].next, ix: newIndexer(cfg.IndexIntervalBytes)}
	built.idx = entryFile{mem: []byte{}, entrySize: offsetEntrySize}
	built.tix = entryFile{mem: []byte{}, entrySize: timeEntrySize}
	w := bufio.NewWriterSize(files[0], cleanerIOBufferBytes)
	changed := len(g) > 1
	pos := int64(0)
	for _, v := range g {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		stats.SegmentsRead++
		stats.BytesRead += v.size
		r := newBatchReader(v)
		for {
			b, h, err := r.next(-1)
			if err == io.EOF {
				break
			}
			if err != nil {
				return 0, err
			}
			res, err := f.filter(b, h)
			if err != nil {
				return 0, &CorruptError{Path: v.s.log.Name(), Offset: h.BaseOffset, Position: r.pos - h.Size(), Reason: err.Error()}
			}
			stats.RecordsRead += int64(res.recordsRead)
			stats.RecordsRemoved += int64(res.recordsRemoved)
			changed = changed || !res.unchanged
			if res.out == nil {
				continue
			}
			if res.deleteHorizonMs > 0 && (horizon == 0 || res.deleteHorizonMs < horizon) {
				horizon = res.deleteHorizonMs
			}
			built.indexBatch(parseHeaderUnchecked(res.out), pos)
			if _, err := w.Write(res.out); err != nil {
				return 0, err
			}
			pos += int64(len(res.out))
		}
	}
	if !changed {
		return horizon, nil // the segment stays as it is
	}
	built.maybeTimeEntry()
	built.size = pos
	if err := w.Flush(); err != nil {
		return 0, err
	}
	if _, err := files[1].WriteAt(built.idx.mem, 0); err != nil {
		return 0, err
	}
	if _, err := files[2].WriteAt(built.tix.mem, 0); err != nil {
		return 0, err
	}
	for _, fl := range files {
		if err := fdatasync(fl); err != nil {
			return 0, fmt.Errorf("fsync %s: %w", fl.Name(), err)
		}
	}
	if err := l.commitCleaned(g, built, paths); err != nil {
		return 0, err
	}
	stats.SegmentsWritten++
	stats.BytesWritten += pos
	return horizon, nil
}

// commitCleaned replaces the segments of g with the cleaned files at paths
// (log, index, time index), crash-safely:
//
//  1. the cleaned files are complete and fsynced (the caller did that);
//  2. cleanerSwapFile, listing the base offsets of g, is written atomically:
//     from here on, recovery completes the swap (redoCleanerSwap);
//  3. the cleaned files are renamed over the first segment's files, the
//     other segments' files are removed, and the directory is fsynced;
//  4. cleanerSwapFile is removed (and the directory fsynced, so a stale
//     list can never be replayed over segments created later).
//
// A crash before 2 leaves the old segments and stray .cleaned files, which
// Open removes; a crash after 2 is completed by Open. Readers holding the
// old segments keep reading their open files.
func (l *Log) commitCleaned(g []segView, built *segment, paths [3]string) error {
	l.structMu.Lock()
	defer l.structMu.Unlock()
	l.mu.RLock()
	k := -1
	if !l.mu.closed {
		k = slices.Index(l.mu.segs, g[0].s)
		if k < 0 || k+len(g) >= len(l.mu.segs) {
			k = -1
		} else {
			for i, v := range g {
				if l.mu.segs[k+i] != v.s {
					k = -1
					break
				}
			}
		}
	}
	l.mu.RUnlock()
	if k < 0 {
		return ErrCleanAborted
	}
	bases := make([]Offset, len(g))
	for i, v := range g {
		bases[i] = v.s.base
	}
	swap := filepath.Join(l.dir, cleanerSwapFile)
	if err := swapStep(0); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(swap, formatSwapList(bases)); err != nil {
		return err
	}
	if err := swapStep(1); err != nil {
		return err
	}
	if err := completeSwap(l.dir, bases); err != nil {
		// The swap file stays: the next Open completes the swap.
		return fmt.Errorf("segments: swapping in the cleaned segment %d (completed at the next start): %w", g[0].s.base, err)
	}
	if err := os.Remove(swap); err != nil {
		return err
	}
	if err := fsutil.SyncDir(l.dir); err != nil {
		return err
	}
	if err := swapStep(3); err != nil {
		return err
	}

	s, err := openSegmentFiles(l.dir, built.base, false, int32(built.ix.interval))
	if err != nil {
		return err
	}
	s.size, s.next, s.syncedSize = built.size, built.next, built.size
	s.closed, s.finalized = true, true
	s.idx.n, s.idx.flushed = built.idx.n, built.idx.n
	s.tix.n, s.tix.flushed = built.tix.n, built.tix.n
	s.ix = built.ix
	l.mu.Lock()
	l.mu.segs = slices.Concat(l.mu.segs[:k], []*segment{s}, l.mu.segs[k+len(g):])
	l.mu.Unlock()
	for _, v := range g {
		v.s.release() // the log's reference; the pass still holds its own
	}
	l.logger.Debug("swapped in cleaned segment", "base", built.base, "replaced", len(g), "bytes", built.size)
	return nil
}

// completeSwap renames the cleaned files of the segment at bases[0] over
// its files, removes the files of the other segments in bases, and fsyncs
// the directory. Every step may already have happened (recovery redoes it).
func completeSwap(dir string, bases []Offset) error {
	for _, sfx := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		final := segmentPath(dir, bases[0], sfx)
		if err := os.Rename(final+cleanedSuffix, final); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if sfx == logSuffix {
			if err := swapStep(2); err != nil {
				return err
			}
		}
	}
	for _, b := range bases[1:] {
		for _, sfx := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			if err := os.Remove(segmentPath(dir, b, sfx)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return fsutil.SyncDir(dir)
}

// redoCleanerSwap runs at Open before the directory is listed: it
// completes an interrupted swap, or removes the files of a cleaning that
// had not reached its swap.
func redoCleanerSwap(dir string, logger *slog.Logger) error {
	swap := filepath.Join(dir, cleanerSwapFile)
	b, err := os.ReadFile(swap)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	default:
		bases, err := parseSwapList(b)
		if err != nil {
			return &CorruptError{Path: swap, Offset: -1, Reason: err.Error()}
		}
		logger.Warn("completing an interrupted swap of a cleaned segment", "base", bases[0], "replaced", len(bases))
		if err := completeSwap(dir, bases); err != nil {
			return err
		}
		if err := os.Remove(swap); err != nil {
			return err
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), cleanedSuffix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// swapStepHook, set only by tests, fails the swap at a step (0: before the
// swap file, 1: after it, 2: after the log file's rename, 3: after the swap
// file's removal) to simulate a crash there.
var swapStepHook func(step int) error

func swapStep(step int) error {
	if swapStepHook != nil {
		return swapStepHook(step)
	}
	return nil
}

func formatSwapList(bases []Offset) []byte {
	entries := make([][]int64, len(bases))
	for i, o := range bases {
		entries[i] = []int64{int64(o)}
	}
	return FormatCheckpoint(entries)
}

func parseSwapList(b []byte) ([]Offset, error) {
	entries, err := ParseCheckpoint(b, 1)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, errors.New("empty swap list")
	}
	out := make([]Offset, len(entries))
	for i, e := range entries {
		v, err := strconv.ParseInt(e[0], 10, 64)
		if err != nil || v < 0 || i > 0 && Offset(v) <= out[i-1] {
			return nil, fmt.Errorf("bad or unordered base offset %q", e[0])
		}
		out[i] = Offset(v)
	}
	return out, nil
}

func formatCleanerCheckpoint(cleanedTo Offset, horizonMs int64) []byte {
	return FormatCheckpoint([][]int64{{int64(cleanedTo)}, {horizonMs}})
}

func parseCleanerCheckpoint(b []byte) (cleanedTo Offset, horizonMs int64, err error) {
	entries, err := ParseCheckpoint(b, 1)
	if err != nil {
		return 0, 0, err
	}
	if len(entries) != 2 {
		return 0, 0, fmt.Errorf("%d entries, want 2", len(entries))
	}
	o, err1 := strconv.ParseInt(entries[0][0], 10, 64)
	h, err2 := strconv.ParseInt(entries[1][0], 10, 64)
	if err1 != nil || err2 != nil || o < 0 || h < 0 {
		return 0, 0, fmt.Errorf("bad entries %q, %q", entries[0][0], entries[1][0])
	}
	return Offset(o), h, nil
}
