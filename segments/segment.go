package segments

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// File name suffixes of a segment; the stem is the 20-digit base offset.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
)

func segmentPath(dir string, base Offset, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", int64(base), suffix))
}

// parseSegmentName returns the base offset of a "<20 digits>.<suffix>" name.
func parseSegmentName(name, suffix string) (Offset, bool) {
	stem, ok := strings.CutSuffix(name, suffix)
	if !ok || len(stem) != 20 {
		return 0, false
	}
	v, err := strconv.ParseInt(stem, 10, 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return Offset(v), true
}

// segment is one .log file and its two indexes.
//
// The files are reference counted: the Log holds one reference while the
// segment is in its list, and every ReadResult (and internal scan) holds
// one more. A segment removed by retention has its files unlinked at once
// but closed only when the last reference is released, so a sendfile in
// flight keeps working.
//
// Fields below refs are guarded by Log.mu.
type segment struct {
	base  Offset
	log   *os.File
	idx   entryFile
	tix   entryFile
	refs  atomic.Int32
	close sync.Once

	indexMissing bool // an index file did not exist at open (set once, before sharing)

	size       int64  // bytes of whole, published batches
	next       Offset // offset after the last batch (base if empty)
	syncedSize int64  // bytes covered by the last fsync of log
	closed     bool   // no longer the active segment: no more appends
	finalized  bool   // closed, and indexes written and fsynced
	rollStart  time.Time
	ix         indexer
}

// indexer maintains the sparse indexes while batches are appended (or
// re-read during recovery). Guarded by Log.mu with its segment.
type indexer struct {
	interval    int64  // index.interval.bytes
	bytesSince  int64  // bytes appended since the last offset index entry
	maxTs       int64  // largest batch maxTimestamp, -1 if none
	maxTsOff    Offset // last offset of the first batch carrying maxTs (Kafka's "shallow" offset)
	lastTixTs   int64  // timestamp of the last time index entry
	hasTixEntry bool
}

func newIndexer(interval int32) indexer {
	return indexer{interval: int64(interval), maxTs: -1, maxTsOff: -1}
}

// add records batch h at position pos of segment s.
func (s *segment) indexBatch(h BatchHeader, pos int64) {
	ix := &s.ix
	if h.MaxTimestamp > ix.maxTs {
		ix.maxTs, ix.maxTsOff = h.MaxTimestamp, h.LastOffset()
	}
	if ix.bytesSince > ix.interval {
		s.idx.appendEntry(putOffsetEntry(make([]byte, 0, offsetEntrySize), uint32(h.LastOffset()-s.base), uint32(pos)))
		s.maybeTimeEntry()
		ix.bytesSince = 0
	}
	ix.bytesSince += h.Size()
}

// maybeTimeEntry appends (maxTs, maxTsOff) to the time index if it is newer
// than the last entry. Called at index points and when the segment closes,
// so the last entry of a closed segment is its largest timestamp.
func (s *segment) maybeTimeEntry() {
	ix := &s.ix
	if ix.maxTs < 0 || (ix.hasTixEntry && ix.maxTs <= ix.lastTixTs) {
		return
	}
	s.tix.appendEntry(putTimeEntry(make([]byte, 0, timeEntrySize), ix.maxTs, uint32(ix.maxTsOff-s.base)))
	ix.lastTixTs, ix.hasTixEntry = ix.maxTs, true
}

func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference; the last one closes the files.
func (s *segment) release() {
	switch n := s.refs.Add(-1); {
	case n == 0:
		s.close.Do(func() {
			_ = s.log.Close()
			_ = s.idx.f.Close()
			_ = s.tix.f.Close()
		})
	case n < 0:
		panic("segments: segment released more often than acquired")
	}
}

// openSegmentFiles opens (creating if asked) the three files of a segment:
// three file handles for as long as the segment is listed or referenced.
// If create is set and one of them cannot be opened (too many open files,
// no space), the files it created are removed again, so a failed roll
// leaves nothing behind; the error names the file.
func openSegmentFiles(dir string, base Offset, create bool, interval int32) (s *segment, err error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE | os.O_TRUNC
		defer func() {
			if err != nil {
				// Nothing was written to them: the segment's base is at or
				// beyond the log end, so no data lives under these names.
				for _, sfx := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
					_ = os.Remove(segmentPath(dir, base, sfx))
				}
			}
		}()
	}
	s = &segment{base: base, next: base, ix: newIndexer(interval)}
	if s.log, err = os.OpenFile(segmentPath(dir, base, logSuffix), flags, 0o644); err != nil {
		return nil, err
	}
	// Index files may be missing (then they are created, and rebuilt).
	openIndex := func(path string) (*os.File, error) {
		if create {
			return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			s.indexMissing = true
			f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		}
		return f, err
	}
	idxPath, tixPath := segmentPath(dir, base, indexSuffix), segmentPath(dir, base, timeIndexSuffix)
	idxF, err := openIndex(idxPath)
	if err != nil {
		s.log.Close()
		return nil, err
	}
	tixF, err := openIndex(tixPath)
	if err != nil {
		s.log.Close()
		idxF.Close()
		return nil, err
	}
	s.idx = entryFile{f: idxF, path: idxPath, entrySize: offsetEntrySize}
	s.tix = entryFile{f: tixF, path: tixPath, entrySize: timeEntrySize}
	s.refs.Store(1)
	return s, nil
}

// removeFiles unlinks the segment's files (they stay open for holders of
// references).
func (s *segment) removeFiles() error {
	var errs []error
	for _, p := range []string{s.log.Name(), s.idx.path, s.tix.path} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// flushEntries writes pending index entries b at file position at. The
// caller serialises flushes of one segment (Log.syncMu or exclusive
// ownership) and takes b under Log.mu (entryFile.pending).
func flushEntries(f *os.File, b []byte, at int64) error {
	if len(b) == 0 {
		return nil
	}
	_, err := f.WriteAt(b, at)
	return err
}

// scanner reads batch headers of a segment file with pread into a buffer.
// It never uses the file's shared position.
type scanner struct {
	f     *os.File
	limit int64 // readable bytes
	buf   []byte
	off   int64 // file position of buf[0]
	n     int   // valid bytes in buf
}

const (
	readScanBufferBytes     = 16 << 10
	recoveryScanBufferBytes = 1 << 20
)

var scanBufPool = sync.Pool{New: func() any { b := make([]byte, readScanBufferBytes); return &b }}

func newReadScanner(f *os.File, limit int64) (*scanner, func()) {
	bp := scanBufPool.Get().(*[]byte)
	return &scanner{f: f, limit: limit, buf: *bp}, func() { scanBufPool.Put(bp) }
}

// scanError describes a structural problem at a position; recovery turns it
// into truncation or a CorruptError.
type scanError struct {
	pos    int64
	offset Offset
	reason string
}

func (e *scanError) Error() string {
	return fmt.Sprintf("position %d (offset %d): %s", e.pos, e.offset, e.reason)
}

func (s *scanner) fill(pos int64) error {
	n := int(min(int64(len(s.buf)), s.limit-pos))
	m, err := s.f.ReadAt(s.buf[:n], pos)
	s.off, s.n = pos, m
	if m < n {
		if err == nil || err == io.EOF {
			err = &scanError{pos: pos + int64(m), offset: -1, reason: "file shorter than expected"}
		}
		return err
	}
	return nil
}

// header returns the header of the batch at pos, checking what the header
// alone can: magic, length, that the batch ends within limit, and that
// lastOffsetDelta is sane. io.EOF when pos == limit.
func (s *scanner) header(pos int64) (BatchHeader, error) {
	if pos >= s.limit {
		return BatchHeader{}, io.EOF
	}
	if s.limit-pos < BatchHeaderSize {
		return BatchHeader{}, &scanError{pos: pos, offset: -1, reason: fmt.Sprintf("%d trailing bytes, shorter than a batch header", s.limit-pos)}
	}
	if pos < s.off || pos+BatchHeaderSize > s.off+int64(s.n) {
		if err := s.fill(pos); err != nil {
			return BatchHeader{}, err
		}
	}
	h := parseHeaderUnchecked(s.buf[pos-s.off:])
	switch {
	case h.Magic != 2:
		return h, &scanError{pos: pos, offset: h.BaseOffset, reason: fmt.Sprintf("magic %d", h.Magic)}
	case h.Length < minBatchLength:
		return h, &scanError{pos: pos, offset: h.BaseOffset, reason: fmt.Sprintf("batch length %d", h.Length)}
	case pos+h.Size() > s.limit:
		return h, &scanError{pos: pos, offset: h.BaseOffset, reason: fmt.Sprintf("batch of %d bytes runs past the end (%d bytes left)", h.Size(), s.limit-pos)}
	case h.LastOffsetDelta < 0 || h.BaseOffset < 0 || h.BaseOffset > math.MaxInt64-Offset(h.LastOffsetDelta)-1:
		return h, &scanError{pos: pos, offset: h.BaseOffset, reason: fmt.Sprintf("offsets %d+%d out of range", h.BaseOffset, h.LastOffsetDelta)}
	}
	return h, nil
}

// checkCRC verifies the CRC of the batch h at pos, reading it in buffer-sized pieces.
func (s *scanner) checkCRC(h BatchHeader, pos int64) error {
	crc := uint32(0)
	for cur, end := pos+offAttributes, pos+h.Size(); cur < end; {
		if cur < s.off || cur >= s.off+int64(s.n) {
			if err := s.fill(cur); err != nil {
				return err
			}
		}
		chunk := s.buf[cur-s.off : min(int64(s.n), end-s.off)]
		crc = crc32.Update(crc, castagnoli, chunk)
		cur += int64(len(chunk))
	}
	if crc != h.CRC {
		return &scanError{pos: pos, offset: h.BaseOffset, reason: fmt.Sprintf("CRC mismatch: stored %#08x, computed %#08x", h.CRC, crc)}
	}
	return nil
}

// readBatch reads the whole batch h at pos into a new slice.
func readBatch(f *os.File, h BatchHeader, pos int64) ([]byte, error) {
	b := make([]byte, h.Size())
	if _, err := f.ReadAt(b, pos); err != nil {
		return nil, fmt.Errorf("read batch at %s:%d: %w", f.Name(), pos, err)
	}
	return b, nil
}

// scanResult is what a full scan of a segment file learns.
type scanResult struct {
	validSize int64      // bytes of valid batches from the start
	next      Offset     // offset after the last valid batch
	bad       *scanError // first invalid batch, nil if the file is clean to its end
}

// scanSegment reads every batch of s from position 0 to limit, checking
// structure, offset order and (if checkCRC) CRCs, and rebuilds the in-memory
// indexes of s from the valid prefix. It stops at the first invalid batch.
// onBatch (may be nil) sees every valid batch. Returned errors are I/O
// errors; invalid data is reported in scanResult.bad.
func scanSegment(s *segment, limit int64, checkCRC bool, onBatch func(BatchHeader)) (scanResult, error) {
	sc := &scanner{f: s.log, limit: limit, buf: make([]byte, min(recoveryScanBufferBytes, max(limit, BatchHeaderSize)))}
	s.idx.mem, s.idx.n, s.idx.flushed = []byte{}, 0, 0
	s.tix.mem, s.tix.n, s.tix.flushed = []byte{}, 0, 0
	s.ix = newIndexer(int32(s.ix.interval))
	res := scanResult{next: s.base}
	pos := int64(0)
	for {
		h, err := sc.header(pos)
		if err == io.EOF {
			break
		}
		var se *scanError
		if err == nil && h.BaseOffset < res.next {
			err = &scanError{pos: pos, offset: h.BaseOffset, reason: fmt.Sprintf("base offset %d below the expected %d", h.BaseOffset, res.next)}
		}
		if err == nil && uint64(h.LastOffset()-s.base) > math.MaxUint32 {
			err = &scanError{pos: pos, offset: h.BaseOffset, reason: "offset too far from the segment base"}
		}
		if err == nil && checkCRC {
			err = sc.checkCRC(h, pos)
		}
		if err != nil {
			if errors.As(err, &se) {
				res.bad = se
				break
			}
			return res, err
		}
		s.indexBatch(h, pos)
		if onBatch != nil {
			onBatch(h)
		}
		pos += h.Size()
		res.next = h.NextOffset()
	}
	res.validSize = pos
	s.size, s.next = pos, res.next
	return res, nil
}
