package segments

// Open's work: listing the directory, reading checkpoints, loading trusted
// segments from their indexes and recovering the others (see doc.go,
// "Durability and recovery").

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/stratalog/strata/internal/fsutil"
)

// load does Open's work; on error every opened file is closed.
func (l *Log) load() (err error) {
	cfg := l.mu.cfg
	if err := redoCleanerSwap(l.dir, l.logger); err != nil {
		return err
	}
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var bases []Offset
	present := map[string]bool{}
	for _, e := range ents {
		name := e.Name()
		present[name] = true
		if strings.HasSuffix(name, tmpSuffix) {
			_ = os.Remove(filepath.Join(l.dir, name)) // an interrupted checkpoint write
			continue
		}
		if b, ok := parseSegmentName(name, logSuffix); ok {
			bases = append(bases, b)
		}
	}
	slices.Sort(bases)
	// Index files without a log belong to a segment deleted half-way.
	for name := range present {
		for _, sfx := range []string{indexSuffix, timeIndexSuffix} {
			if b, ok := parseSegmentName(name, sfx); ok && !present[filepath.Base(segmentPath(l.dir, b, logSuffix))] {
				_ = os.Remove(filepath.Join(l.dir, name))
			}
		}
	}

	clean := present[cleanShutdownFile]
	readOffset := func(name string) (Offset, bool) {
		b, err := os.ReadFile(filepath.Join(l.dir, name))
		l.ckptOnDisk[name] = b
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				l.logger.Warn("cannot read checkpoint", "file", name, "err", err)
			}
			return 0, false
		}
		o, err := parseOffsetCheckpoint(b)
		if err != nil {
			l.logger.Warn("ignoring unparsable checkpoint", "file", name, "err", err)
			return 0, false
		}
		return o, true
	}
	ckptStart, _ := readOffset(logStartFile)
	recoveryPoint, haveRP := readOffset(recoveryPointFile)
	if b, err := os.ReadFile(filepath.Join(l.dir, leaderEpochFile)); err == nil {
		l.ckptOnDisk[leaderEpochFile] = b
		if l.mu.epochs, err = parseEpochCheckpoint(b); err != nil {
			l.logger.Warn("ignoring unparsable leader epoch checkpoint; rebuilding from recovered batches", "err", err)
			l.mu.epochs = nil
		}
	}
	if !clean && !haveRP && len(bases) > 0 {
		l.logger.Warn("no recovery point checkpoint: scanning every segment")
	}
	if clean {
		recoveryPoint = math.MaxInt64
	}

	var segs []*segment
	defer func() {
		if err != nil {
			for _, s := range segs {
				s.release()
			}
		}
	}()
	var recovered []*segment // segments whose data must be fsynced before use
	onBatch := func(h BatchHeader) {
		l.mu.epochs, _ = assignNewerEpoch(l.mu.epochs, h.PartitionLeaderEpoch, h.BaseOffset)
	}
	for i := 0; i < len(bases); i++ {
		base := bases[i]
		last := i == len(bases)-1
		s, err := openSegmentFiles(l.dir, base, false, cfg.IndexIntervalBytes)
		if err != nil {
			return err
		}
		segs = append(segs, s)
		st, err := s.log.Stat()
		if err != nil {
			return err
		}
		size := st.Size()
		trusted := !last && bases[i+1] <= recoveryPoint || last && clean
		if trusted {
			ok, err := l.loadTrusted(s, size, last, nextBaseOf(bases, i))
			if err != nil {
				return err
			}
			if ok {
				continue
			}
			if !last {
				// Indexes unusable: rebuild them, checking every CRC.
				res, err := scanSegment(s, size, true, onBatch)
				if err != nil {
					return err
				}
				// A compacted segment may end before the next one starts
				// (its last batches were cleaned away); it never overlaps.
				if res.bad != nil || res.next > bases[i+1] {
					reason := fmt.Sprintf("segment ends at offset %d, after the next segment's start %d", res.next, bases[i+1])
					pos := res.validSize
					if res.bad != nil {
						reason, pos = res.bad.reason, res.bad.pos
					}
					return &CorruptError{Path: s.log.Name(), Position: pos, Offset: res.next, Reason: reason}
				}
				s.closed, s.next = true, bases[i+1]
				recovered = append(recovered, s)
				continue
			}
			l.logger.Warn("active segment of a cleanly closed log is inconsistent; recovering it", "segment", s.log.Name())
		}
		// Recovery: scan with CRCs, truncate at the first bad batch.
		res, err := scanSegment(s, size, true, onBatch)
		if err != nil {
			return err
		}
		s.closed = !last
		recovered = append(recovered, s)
		if res.bad == nil && (last || res.next == bases[i+1]) {
			continue
		}
		if res.bad == nil { // a gap or overlap before the next segment
			res.bad = &scanError{pos: res.validSize, offset: res.next, reason: fmt.Sprintf("segment ends at offset %d, the next segment starts at %d", res.next, bases[i+1])}
		}
		l.logger.Warn("truncating torn or corrupt log tail",
			"segment", s.log.Name(), "offset", res.next, "position", res.bad.pos,
			"reason", res.bad.reason, "bytes_removed", size-res.bad.pos)
		if err := s.log.Truncate(res.validSize); err != nil {
			return err
		}
		if !last {
			// Nothing after a torn write was acknowledged (Sync fsyncs
			// segments in order before advancing the recovery point), so
			// the later segments go too.
			for _, b := range bases[i+1:] {
				l.logger.Warn("deleting segment after a torn write", "segment", segmentPath(l.dir, b, logSuffix))
				for _, sfx := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
					if err := os.Remove(segmentPath(l.dir, b, sfx)); err != nil && !errors.Is(err, os.ErrNotExist) {
						return err
					}
				}
			}
			bases = bases[:i+1]
			s.closed = false
		}
	}

	// Establish start and end.
	var end Offset
	if len(segs) > 0 {
		end = segs[len(segs)-1].next
	}
	start := ckptStart
	if len(segs) > 0 {
		start = max(start, segs[0].base)
	}
	if start > end || len(segs) == 0 {
		// Offsets never go backwards: if every segment is below the
		// checkpointed log start (or none exists), start a fresh segment
		// there.
		for _, s := range segs {
			if err := s.removeFiles(); err != nil {
				return err
			}
			s.release()
		}
		segs, recovered = nil, nil
		s, err := openSegmentFiles(l.dir, start, true, cfg.IndexIntervalBytes)
		if err != nil {
			return err
		}
		s.idx.mem, s.tix.mem = []byte{}, []byte{}
		segs = append(segs, s)
		end = start
	}
	// Whole segments below the log start are deleted, as retention would.
	for len(segs) > 1 && segs[1].base <= start {
		if err := segs[0].removeFiles(); err != nil {
			return err
		}
		segs[0].release()
		recovered = slices.DeleteFunc(recovered, func(x *segment) bool { return x == segs[0] })
		segs = segs[1:]
	}
	active := segs[len(segs)-1]
	active.closed = false
	if active.idx.mem == nil {
		return fmt.Errorf("segments: internal error: active segment %s without index memory", active.log.Name())
	}
	if active.size > 0 && active.rollStart.IsZero() {
		active.rollStart = time.Now()
	}

	// Make recovered data durable before anything counts it as durable,
	// and write the rebuilt indexes of closed segments.
	for _, s := range recovered {
		if err := l.persistRecovered(s); err != nil {
			return err
		}
	}
	for _, s := range segs {
		if s.closed {
			s.finalized = true
			s.syncedSize = s.size
			s.idx.mem, s.tix.mem = nil, nil
		}
	}
	active.syncedSize = active.size
	// Index files of an active segment whose entries were rebuilt are
	// stale: empty them; the entries are written at roll or Close.
	for _, e := range []*entryFile{&active.idx, &active.tix} {
		if e.flushed == 0 {
			if err := e.f.Truncate(0); err != nil {
				return err
			}
		}
	}

	l.mu.segs = segs
	l.mu.start, l.mu.end, l.mu.durable = start, end, end
	l.mu.epochs, _ = truncateEpochsFromEnd(l.mu.epochs, end)
	l.mu.epochs, _ = truncateEpochsFromStart(l.mu.epochs, start)
	l.mu.ckptRP = active.base
	if b, err := os.ReadFile(filepath.Join(l.dir, cleanerCheckpointFile)); err == nil {
		if to, horizon, err := parseCleanerCheckpoint(b); err != nil {
			l.logger.Warn("ignoring unparsable cleaner checkpoint: the next pass cleans everything", "err", err)
		} else {
			l.mu.cleanedTo, l.mu.horizonMs = min(to, end), horizon
		}
	}
	if clean {
		if err := os.Remove(filepath.Join(l.dir, cleanShutdownFile)); err != nil {
			return err
		}
	}
	if err := fsutil.SyncDir(l.dir); err != nil {
		return err
	}
	if err := l.writeCheckpoints(); err != nil {
		return err
	}
	l.logger.Debug("log opened", "start", start, "end", end, "segments", len(segs), "clean", clean)
	return nil
}

func nextBaseOf(bases []Offset, i int) Offset {
	if i+1 < len(bases) {
		return bases[i+1]
	}
	return -1
}

// loadTrusted loads a segment that needs no CRC scan (below the recovery
// point, or the active segment after a clean shutdown) from its index
// files, checking them for sanity. ok=false means they cannot be trusted
// and the caller rebuilds them.
func (l *Log) loadTrusted(s *segment, size int64, active bool, nextBase Offset) (ok bool, err error) {
	idxB, err := readWhole(s.idx.f)
	if err != nil {
		return false, err
	}
	tixB, err := readWhole(s.tix.f)
	if err != nil {
		return false, err
	}
	maxRel := int64(math.MaxUint32) + 1
	if !active {
		maxRel = int64(nextBase - s.base)
	}
	nIdx, err1 := CheckOffsetIndex(idxB, size, maxRel)
	nTix, err2 := CheckTimeIndex(tixB, maxRel)
	if s.indexMissing || err1 != nil || err2 != nil || (size > 0 && !active && nTix == 0) || nextBase >= 0 && nextBase <= s.base {
		l.logger.Warn("rebuilding segment indexes", "segment", s.log.Name(), "missing", s.indexMissing, "offset_index", err1, "time_index", err2, "time_entries", nTix)
		return false, nil
	}
	s.idx.n, s.idx.flushed = nIdx, nIdx
	s.tix.n, s.tix.flushed = nTix, nTix
	s.size = size
	tv := s.tix.view()
	if ts, off, ok := tv.lastTime(s.base); ok {
		s.ix.maxTs, s.ix.maxTsOff = ts, off
		s.ix.lastTixTs, s.ix.hasTixEntry = ts, true
	}
	if !active {
		s.next = nextBase
		s.closed = true
		return true, nil
	}
	// Active segment: keep the entries in memory, and walk the batches
	// after the last index entry to find the end (and the state the
	// indexer needs to continue).
	s.idx.mem, s.tix.mem = idxB, tixB
	pos, entryOff := s.idx.view().lookupPosition(s.base, size)
	next := s.base
	sc, done := newReadScanner(s.log, size)
	defer done()
	lastIndexed := pos
	for {
		h, err := sc.header(pos)
		if err == io.EOF && (pos > lastIndexed || size == 0) {
			break
		}
		// The batch at the last index entry must be the one it names (or
		// the segment's first batch); later ones must follow in order.
		if err != nil || h.BaseOffset < next ||
			pos == lastIndexed && (nIdx > 0 && h.LastOffset() != entryOff || nIdx == 0 && h.BaseOffset != s.base) {
			l.logger.Warn("active segment tail does not parse", "segment", s.log.Name(), "position", pos, "err", err)
			return false, nil
		}
		if h.MaxTimestamp > s.ix.maxTs {
			s.ix.maxTs, s.ix.maxTsOff = h.MaxTimestamp, h.LastOffset()
		}
		pos += h.Size()
		next = h.NextOffset()
	}
	s.next = next
	s.ix.bytesSince = size - lastIndexed
	if size > 0 {
		if h, err := sc.header(0); err == nil && h.MaxTimestamp > 0 {
			s.rollStart = time.UnixMilli(min(h.MaxTimestamp, time.Now().UnixMilli()))
		}
	}
	return true, nil
}

// persistRecovered fsyncs a recovered segment's log and, for a closed one,
// writes and fsyncs its rebuilt indexes.
func (l *Log) persistRecovered(s *segment) error {
	if err := fdatasync(s.log); err != nil {
		return fmt.Errorf("fsync %s: %w", s.log.Name(), err)
	}
	if !s.closed {
		return nil
	}
	s.maybeTimeEntry()
	for _, e := range []*entryFile{&s.idx, &s.tix} {
		if err := e.f.Truncate(0); err != nil {
			return err
		}
		e.flushed = 0
		b, at := e.pending()
		if err := flushEntries(e.f, b, at); err != nil {
			return err
		}
		if err := e.f.Sync(); err != nil {
			return err
		}
		e.flushed = e.n
	}
	return nil
}

func truncateIndexFiles(s *segment) error {
	for _, e := range []*entryFile{&s.idx, &s.tix} {
		if err := e.f.Truncate(0); err != nil {
			return err
		}
		e.flushed = 0
	}
	return nil
}
