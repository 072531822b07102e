package tiering

// The remote reader: Fetch-style reads and ListOffsets-by-timestamp over
// the segment objects a manifest lists, served through the chunk cache.
//
// A read finds the segment (Manifest.Find), the position of the batch
// holding the offset (the segment's offset index, kept in memory in a
// bounded LRU, then batch headers read through the chunk cache), and
// returns whole batches as FileChunks of cache files, pinned until the
// ReadResult is released. Everything read from the bucket is validated:
// an index or a batch header that does not parse, does not increase, or
// runs past the log part is a *segments.CorruptError naming the object
// key, the position in the log part and the offset, never a panic or an
// endless loop (every step of a scan advances by at least a batch
// header).
//
// No unverified byte is served. A segment checksummed in chunks of the
// cache's size (manifest version 2) has every chunk verified by the cache
// as it is downloaded (Object.ChunkCRC32C). For an older segment (or one
// checksummed at another chunk size) the batches of every range served
// are verified here before it is returned — framing and each batch's own
// CRC-32C, streamed through a small buffer — and a chunk holding a bad
// batch is quarantined in the cache (ChunkCache.Quarantine). Index parts
// are fetched with their own ranged GETs and validated structurally; every
// position they give is checked against a batch header (itself verified
// as above when served) before it is used.

import (
	"bufio"
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"sync"

	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/segments"
)

// Defaults of ReaderOptions.
const (
	DefaultIndexCacheBytes = 64 << 20 // 64 MiB of offset and time indexes
	// DefaultMaxCachedIndexBytes: Kafka's segment.index.bytes default is
	// 10 MiB, so a default-configured index is always held in memory;
	// larger ones are binary-searched through the chunk cache.
	DefaultMaxCachedIndexBytes = 16 << 20
	// maxTimestampBatchBytes bounds a batch read into memory to search
	// its records by timestamp (Kafka's max.message.bytes is an int32;
	// 256 MiB is far beyond any sane setting).
	maxTimestampBatchBytes = 256 << 20
)

// Index entry sizes (see segments/index.go).
const (
	offsetEntryBytes = 8  // relative offset uint32, position uint32
	timeEntryBytes   = 12 // timestamp int64, relative offset uint32
)

// ReaderOptions configure a RemoteReader. Zero fields take the defaults.
type ReaderOptions struct {
	// IndexCacheBytes bounds the in-memory LRU of index parts.
	IndexCacheBytes int64
	// MaxCachedIndexBytes is the largest index part held in memory;
	// larger ones are searched in place through the chunk cache.
	MaxCachedIndexBytes int64
}

// RemoteReader reads tiered segments through a ChunkCache. Safe for
// concurrent use.
type RemoteReader struct {
	store objectstore.Store
	cache *ChunkCache
	opts  ReaderOptions

	mu struct {
		sync.Mutex
		idx   map[indexID]*list.Element // of *indexEntry
		lru   list.List
		bytes int64
	}
}

type indexID struct {
	key  string
	part Part
}

type indexEntry struct {
	id indexID
	b  []byte
}

// NewRemoteReader returns a reader of store's segment objects through
// cache (which must cache the same store).
func NewRemoteReader(store objectstore.Store, cache *ChunkCache, opts ReaderOptions) *RemoteReader {
	if opts.IndexCacheBytes <= 0 {
		opts.IndexCacheBytes = DefaultIndexCacheBytes
	}
	if opts.MaxCachedIndexBytes <= 0 {
		opts.MaxCachedIndexBytes = DefaultMaxCachedIndexBytes
	}
	opts.MaxCachedIndexBytes = min(opts.MaxCachedIndexBytes, opts.IndexCacheBytes)
	r := &RemoteReader{store: store, cache: cache, opts: opts}
	r.mu.idx = make(map[indexID]*list.Element)
	return r
}

// Read returns whole batches from the segment holding from (or, when from
// falls in a gap, the next segment that has batches at or after it): the
// batch containing from and those after it, at most maxBytes in total and
// never beyond the segment's log part; with minOneBatch the first batch is
// returned whatever its size. An empty result with a nil error means no
// batch fits (maxBytes too small without minOneBatch) or none is left
// before the manifest's end. Offsets below m.LogStartOffset or at or
// beyond m.EndOffset() fail with segments.ErrOffsetOutOfRange.
//
// The result's FileChunks point into cache files (one per chunk the range
// spans), verified (see the file comment); they stay valid until Release,
// which the caller must call. Errors: ctx's error, store errors
// (objectstore sentinels matchable), *segments.CorruptError for bad
// bucket data — a chunk or batch that fails its checksum included, whose
// Reason names the segment's offsets and the offset read, and whose Path
// is the object key.
func (r *RemoteReader) Read(ctx context.Context, m *Manifest, from segments.Offset, maxBytes int32, minOneBatch bool) (segments.ReadResult, error) {
	if from < m.LogStartOffset || from >= m.EndOffset() {
		return segments.ReadResult{}, fmt.Errorf("%w: offset %d outside the remote tier [%d, %d) of %v",
			segments.ErrOffsetOutOfRange, from, m.LogStartOffset, m.EndOffset(), m.TopicPartition())
	}
	// Each turn moves to a later segment, so this ends.
	for {
		seg, ok := m.Find(from)
		if !ok {
			return segments.ReadResult{}, nil
		}
		sr := r.newSegReader(ctx, m, &seg)
		res, exhausted, err := sr.read(max(from, seg.BaseOffset), maxBytes, minOneBatch)
		sr.close()
		r.forgetIfCorrupt(sr.key, err)
		if err != nil || !exhausted {
			return res, err
		}
		// A compacted segment's tail: no batch reaches from.
		from = seg.EndOffset
	}
}

// OffsetForTimestamp returns the first offset at or after m.LogStartOffset
// whose record timestamp is at least ts, and that timestamp: Kafka's
// ListOffsets by timestamp. The first segment whose MaxTimestamp is at
// least ts (FindByTimestamp) is searched from its time index entry, its
// batches scanned for one with MaxTimestamp ≥ ts and that batch's records
// walked (decompressing if needed) for the exact record. found is false if
// no record qualifies. The special timestamps (-1 latest, -2 earliest, -3
// max timestamp) are the caller's to resolve.
func (r *RemoteReader) OffsetForTimestamp(ctx context.Context, m *Manifest, ts int64) (off segments.Offset, timestamp int64, found bool, err error) {
	first, ok := m.FindByTimestamp(ts)
	if !ok {
		return -1, -1, false, nil
	}
	i := sort.Search(len(m.Segments), func(i int) bool { return m.Segments[i].BaseOffset >= first.BaseOffset })
	for ; i < len(m.Segments); i++ {
		seg := m.Segments[i]
		if seg.MaxTimestamp < ts || seg.EndOffset <= m.LogStartOffset {
			continue
		}
		sr := r.newSegReader(ctx, m, &seg)
		off, timestamp, found, err = sr.searchTimestamp(ts, max(m.LogStartOffset, seg.BaseOffset))
		sr.close()
		r.forgetIfCorrupt(sr.key, err)
		if err != nil || found {
			return off, timestamp, found, err
		}
	}
	return -1, -1, false, nil
}

// segReader reads one segment object. It keeps the last chunk it read
// headers from pinned, so a scan does not go back to the cache per batch.
type segReader struct {
	r      *RemoteReader
	ctx    context.Context
	seg    *Segment
	key    string
	obj    Object // key, size and chunk checksums, for the cache
	logLen int64
	target segments.Offset // the offset being read, for errors
	cur    *Chunk
	buf    [segments.BatchHeaderSize]byte
}

func (r *RemoteReader) newSegReader(ctx context.Context, m *Manifest, seg *Segment) *segReader {
	_, logLen := seg.PartRange(PartLog)
	key := m.SegmentKey(seg)
	obj := Object{Key: key, Size: seg.ObjectBytes, ChunkCRC32C: seg.ChunkSums(r.cache.ChunkBytes())}
	return &segReader{r: r, ctx: ctx, seg: seg, key: key, obj: obj, logLen: logLen}
}

func (s *segReader) close() {
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
}

// corrupt returns a *segments.CorruptError for bad data at log position
// pos (-1: not in the log part). When the object has no chunk checksums,
// the chunk holding pos came into the cache unverified and may be what is
// damaged: it is quarantined (ChunkCache.Quarantine), so that it is
// downloaded again after the backoff — a repaired object then reads —
// rather than failing from the cache until evicted. (A checksummed chunk
// that fails is quarantined by the cache itself.)
func (s *segReader) corrupt(pos int64, off segments.Offset, format string, args ...any) error {
	reason := fmt.Sprintf(format, args...)
	if s.obj.ChunkCRC32C == nil && pos >= 0 && pos < s.logLen {
		s.quarantine(pos, 1, off, reason)
	}
	return s.corruptErr(pos, off, reason)
}

// quarantine quarantines the chunks holding object bytes [pos, pos+size)
// (at least the one holding pos) with the bare error (key, position,
// reason): what the cache answers for them while quarantined, to which
// cacheErr adds the context of each later read.
func (s *segReader) quarantine(pos, size int64, off segments.Offset, reason string) {
	bare := &segments.CorruptError{Path: s.key, Position: pos, Offset: off, Reason: reason}
	cb := s.r.cache.ChunkBytes()
	for i := pos / cb; i <= (pos+max(size, 1)-1)/cb; i++ {
		s.r.cache.Quarantine(s.key, i, bare)
	}
}

// corruptErr is the *segments.CorruptError of corrupt, without the
// quarantine: reason, prefixed with the offset read and the segment's
// offsets.
func (s *segReader) corruptErr(pos int64, off segments.Offset, reason string) error {
	return &segments.CorruptError{Path: s.key, Position: pos, Offset: off,
		Reason: fmt.Sprintf("reading offset %d of segment [%d, %d): %s", s.target, s.seg.BaseOffset, s.seg.EndOffset, reason)}
}

// cacheErr puts the segment's offsets and the offset being read into a
// corruption error from the cache (which knows only the key, the byte
// range and the reason; the chunk is quarantined already); other errors
// pass unchanged.
func (s *segReader) cacheErr(err error) error {
	var ce *segments.CorruptError
	if errors.As(err, &ce) {
		return s.corruptErr(ce.Position, ce.Offset, ce.Reason)
	}
	return err
}

// readAt reads len(p) bytes of the object at off, from the pinned chunk if
// it holds them.
func (s *segReader) readAt(p []byte, off int64) error {
	cb := s.r.cache.ChunkBytes()
	if s.cur == nil || off < s.cur.Offset() || off >= s.cur.Offset()+s.cur.Size() {
		s.close()
		h, err := s.r.cache.Acquire(s.ctx, s.obj, off/cb)
		if err != nil {
			return s.cacheErr(err)
		}
		s.cur = h
	}
	if end := s.cur.Offset() + s.cur.Size(); off+int64(len(p)) > end {
		// Spans chunks: rare (a header or index entry across a boundary).
		return s.cacheErr(s.r.cache.ReadAt(s.ctx, s.obj, p, off))
	}
	if _, err := s.cur.File().ReadAt(p, off-s.cur.Offset()); err != nil {
		return fmt.Errorf("tiering: reading cached chunk of %q: %w", s.key, err)
	}
	return nil
}

// header reads and checks the batch header at log position pos: it must
// parse, lie with its whole batch inside the log part and carry offsets
// within the segment. io.EOF at the log part's end.
func (s *segReader) header(pos int64) (segments.BatchHeader, error) {
	if pos == s.logLen {
		return segments.BatchHeader{}, io.EOF
	}
	if s.logLen-pos < segments.BatchHeaderSize {
		return segments.BatchHeader{}, s.corrupt(pos, -1, "%d bytes left in the log part, less than a batch header", s.logLen-pos)
	}
	if err := s.readAt(s.buf[:], pos); err != nil {
		return segments.BatchHeader{}, err
	}
	h, err := segments.ParseBatchHeader(s.buf[:])
	if err != nil {
		return h, s.corrupt(pos, -1, "%v", err)
	}
	switch {
	case pos+h.Size() > s.logLen:
		return h, s.corrupt(pos, h.BaseOffset, "batch of %d bytes runs past the log part's end %d", h.Size(), s.logLen)
	case h.LastOffsetDelta < 0:
		return h, s.corrupt(pos, h.BaseOffset, "lastOffsetDelta %d is negative", h.LastOffsetDelta)
	case h.BaseOffset < s.seg.BaseOffset || h.LastOffset() >= s.seg.EndOffset || h.LastOffset() < h.BaseOffset:
		return h, s.corrupt(pos, h.BaseOffset, "batch offsets [%d, %d] outside the segment", h.BaseOffset, h.LastOffset())
	}
	return h, nil
}

// seek returns the first batch with NextOffset() > target and its
// position; io.EOF if no batch of the segment reaches target.
func (s *segReader) seek(target segments.Offset) (segments.BatchHeader, int64, error) {
	pos, err := s.indexedPosition(target)
	if err != nil {
		return segments.BatchHeader{}, 0, err
	}
	prevNext := segments.Offset(-1)
	for {
		h, err := s.header(pos)
		if err != nil {
			return h, pos, err
		}
		if h.BaseOffset < prevNext {
			return h, pos, s.corrupt(pos, h.BaseOffset, "batch base offset %d below the previous batch's next offset %d", h.BaseOffset, prevNext)
		}
		if h.NextOffset() > target {
			return h, pos, nil
		}
		prevNext = h.NextOffset()
		pos += h.Size()
	}
}

// indexedPosition returns the position of the batch named by the last
// offset index entry at or below target (0 if none), after checking that
// the batch there really ends at the entry's offset.
func (s *segReader) indexedPosition(target segments.Offset) (int64, error) {
	ix, err := s.r.index(s, PartIndex)
	if err != nil {
		return 0, err
	}
	rel := uint64(target - s.seg.BaseOffset)
	i, err := ix.search(func(e []byte) bool { return uint64(binary.BigEndian.Uint32(e)) <= rel })
	if err != nil || i < 0 {
		return 0, err
	}
	e, err := ix.entry(i)
	if err != nil {
		return 0, err
	}
	off := s.seg.BaseOffset + segments.Offset(binary.BigEndian.Uint32(e))
	pos := int64(binary.BigEndian.Uint32(e[4:]))
	if pos >= s.logLen {
		return 0, s.corrupt(pos, off, "offset index entry %d points past the log part (%d bytes)", i, s.logLen)
	}
	h, err := s.header(pos)
	if err != nil {
		return 0, err
	}
	if h.LastOffset() != off {
		return 0, s.corrupt(pos, h.BaseOffset, "offset index entry %d says a batch ending at %d starts here, found one ending at %d", i, off, h.LastOffset())
	}
	return pos, nil
}

// read is Read within one segment; exhausted reports that no batch of the
// segment reaches target.
func (s *segReader) read(target segments.Offset, maxBytes int32, minOneBatch bool) (segments.ReadResult, bool, error) {
	s.target = target
	first, start, err := s.seek(target)
	if err == io.EOF {
		return segments.ReadResult{}, true, nil
	}
	if err != nil {
		return segments.ReadResult{}, false, err
	}
	limit := start + int64(max(maxBytes, 0))
	end := start
	if first.Size() <= limit-start || minOneBatch {
		end += first.Size()
	}
	if end == start {
		return segments.ReadResult{}, false, nil
	}
	prevNext := first.NextOffset()
	for end < s.logLen {
		h, err := s.header(end)
		if err != nil {
			return segments.ReadResult{}, false, err
		}
		if h.BaseOffset < prevNext {
			return segments.ReadResult{}, false, s.corrupt(end, h.BaseOffset, "batch base offset %d below the previous batch's next offset %d", h.BaseOffset, prevNext)
		}
		if end+h.Size() > limit {
			break
		}
		prevNext = h.NextOffset()
		end += h.Size()
	}
	s.close()
	res, verified, err := s.chunks(start, end)
	if err != nil {
		return segments.ReadResult{}, false, err
	}
	if !verified {
		if err := s.verifyBatches(res, start); err != nil {
			res.Release()
			return segments.ReadResult{}, false, err
		}
	}
	s.readAhead(end)
	return res, false, nil
}

// batchCRCFrom is where a batch's CRC-32C coverage starts: its attributes
// field, after baseOffset (8 bytes), batchLength (4), partitionLeaderEpoch
// (4), magic (1) and the CRC itself (4) — Kafka's record batch format.
const batchCRCFrom = 21

// verifyBufferBytes is the read size of verifyBatches: batches are
// checksummed through it, never held whole.
const verifyBufferBytes = 64 << 10

// verifyBatches checks every batch in the log bytes [start, start +
// res.Bytes) that res holds — bytes from chunks the cache could not
// verify (an object without chunk checksums) — before they are served:
// framing (a header that parses, offsets that follow on within the
// segment, a length within the range) and the CRC-32C each batch carries,
// streamed through a fixed buffer. On a failure it quarantines every chunk
// the bad batch spans, so the next read downloads them again after the
// quarantine, and returns a *segments.CorruptError.
func (s *segReader) verifyBatches(res segments.ReadResult, start int64) error {
	parts := make([]io.Reader, len(res.Chunks))
	for i, fc := range res.Chunks {
		parts[i] = io.NewSectionReader(fc.File, fc.Position, fc.Size)
	}
	rd := bufio.NewReaderSize(io.MultiReader(parts...), verifyBufferBytes)
	buf := make([]byte, verifyBufferBytes)
	var hdr [segments.BatchHeaderSize]byte
	end := start + res.Bytes
	prevNext := segments.Offset(-1)
	for pos := start; pos < end; {
		bad := func(off segments.Offset, size int64, format string, args ...any) error {
			reason := fmt.Sprintf(format, args...)
			s.quarantine(pos, size, off, reason)
			return s.corruptErr(pos, off, reason)
		}
		if end-pos < segments.BatchHeaderSize {
			return bad(-1, end-pos, "%d bytes left in the range read, less than a batch header", end-pos)
		}
		if _, err := io.ReadFull(rd, hdr[:]); err != nil {
			return fmt.Errorf("tiering: verifying cached chunks of %q: %w", s.key, err)
		}
		h, err := segments.ParseBatchHeader(hdr[:])
		switch {
		case err != nil:
			return bad(-1, segments.BatchHeaderSize, "%v", err)
		case pos+h.Size() > end:
			return bad(h.BaseOffset, end-pos, "batch of %d bytes runs past the range read, which ends at %d", h.Size(), end)
		case h.LastOffsetDelta < 0 || h.BaseOffset < max(prevNext, s.seg.BaseOffset) || h.LastOffset() >= s.seg.EndOffset:
			return bad(h.BaseOffset, h.Size(), "batch offsets [%d, %d] do not follow the previous batch's next offset %d within the segment", h.BaseOffset, h.LastOffset(), prevNext)
		}
		crc := crc32.Update(0, crc32cTable, hdr[batchCRCFrom:])
		for left := h.Size() - segments.BatchHeaderSize; left > 0; {
			b := buf[:min(left, int64(len(buf)))]
			if _, err := io.ReadFull(rd, b); err != nil {
				return fmt.Errorf("tiering: verifying cached chunks of %q: %w", s.key, err)
			}
			crc = crc32.Update(crc, crc32cTable, b)
			left -= int64(len(b))
		}
		if crc != h.CRC {
			return bad(h.BaseOffset, h.Size(), "batch CRC-32C %#08x, computed %#08x (the manifest has no chunk checksums for this object)", h.CRC, crc)
		}
		prevNext = h.NextOffset()
		pos += h.Size()
	}
	return nil
}

// chunks pins the chunks holding log bytes [start, end) and returns them
// as a ReadResult, and whether the cache verified every one of them.
func (s *segReader) chunks(start, end int64) (segments.ReadResult, bool, error) {
	cb := s.r.cache.ChunkBytes()
	var held []*Chunk
	release := func() {
		for _, h := range held {
			h.Release()
		}
	}
	var fcs []segments.FileChunk
	first, last := start/cb, (end-1)/cb
	// Start the later chunks' downloads before waiting for the first,
	// so that a read spanning several chunks downloads them together.
	for i := first + 1; i <= last; i++ {
		s.r.cache.Prefetch(s.obj, i)
	}
	verified := true
	for i := first; i <= last; i++ {
		h, err := s.r.cache.Acquire(s.ctx, s.obj, i)
		if err != nil {
			release()
			return segments.ReadResult{}, false, s.cacheErr(err)
		}
		held = append(held, h)
		verified = verified && h.Verified()
		from, to := max(start, h.Offset()), min(end, h.Offset()+h.Size())
		fcs = append(fcs, segments.FileChunk{File: h.File(), Position: from - h.Offset(), Size: to - from})
	}
	return segments.NewReadResult(fcs, release), verified, nil
}

// readAhead starts downloading the chunks after the one holding end-1
// that still hold log bytes, as many as the cache reads ahead: a
// sequential consumer then finds its next reads' chunks downloaded or on
// their way.
func (s *segReader) readAhead(end int64) {
	cb := s.r.cache.ChunkBytes()
	last := (end - 1) / cb
	for i := last + 1; i <= last+int64(s.r.cache.ReadAheadChunks()) && i*cb < s.logLen; i++ {
		s.r.cache.Prefetch(s.obj, i)
	}
}

// searchTimestamp finds the first record with offset ≥ start and
// timestamp ≥ ts in the segment.
func (s *segReader) searchTimestamp(ts int64, start segments.Offset) (segments.Offset, int64, bool, error) {
	s.target = start
	from := start
	tix, err := s.r.index(s, PartTimeIndex)
	if err != nil {
		return 0, 0, false, err
	}
	// The last entry with timestamp < ts: every batch up to the one it
	// names has smaller timestamps.
	i, err := tix.search(func(e []byte) bool { return int64(binary.BigEndian.Uint64(e)) < ts })
	if err != nil {
		return 0, 0, false, err
	}
	if i >= 0 {
		e, err := tix.entry(i)
		if err != nil {
			return 0, 0, false, err
		}
		from = max(from, s.seg.BaseOffset+segments.Offset(binary.BigEndian.Uint32(e[8:])))
	}
	h, pos, err := s.seek(from)
	prevNext := segments.Offset(-1)
	for ; err == nil; h, err = s.header(pos) {
		if h.BaseOffset < prevNext {
			return 0, 0, false, s.corrupt(pos, h.BaseOffset, "batch base offset %d below the previous batch's next offset %d", h.BaseOffset, prevNext)
		}
		if h.MaxTimestamp >= ts && h.NextOffset() > start {
			off, recTs, ok, err := s.searchBatch(h, pos, ts, start)
			if err != nil || ok {
				return off, recTs, ok, err
			}
		}
		prevNext = h.NextOffset()
		pos += h.Size()
	}
	if err == io.EOF {
		return 0, 0, false, nil
	}
	return 0, 0, false, err
}

// searchBatch reads the batch at pos and searches it for the first record
// with offset >= start and timestamp >= ts (segments.FindTimestamp, which
// checks the CRC and bounds decompression).
func (s *segReader) searchBatch(h segments.BatchHeader, pos int64, ts int64, start segments.Offset) (segments.Offset, int64, bool, error) {
	if h.Size() > maxTimestampBatchBytes {
		return 0, 0, false, s.corrupt(pos, h.BaseOffset, "batch of %d bytes is larger than %d", h.Size(), maxTimestampBatchBytes)
	}
	b := make([]byte, h.Size())
	if err := s.readAt(b, pos); err != nil {
		return 0, 0, false, err
	}
	off, recTs, ok, err := segments.FindTimestamp(b, h, start, ts)
	if err != nil {
		return 0, 0, false, s.corrupt(pos, h.BaseOffset, "%v", err)
	}
	return off, recTs, ok, nil
}

// entries is an index part: in memory, or read in place through the chunk
// cache when it is too large to hold.
type entries struct {
	size int // entry size
	n    int
	mem  []byte
	s    *segReader // in place: read through s
	off  int64      // the part's offset in the object
	buf  [timeEntryBytes]byte
}

func (e *entries) entry(i int) ([]byte, error) {
	if e.mem != nil {
		return e.mem[i*e.size : (i+1)*e.size], nil
	}
	b := e.buf[:e.size]
	if err := e.s.readAt(b, e.off+int64(i*e.size)); err != nil {
		return nil, err
	}
	return b, nil
}

// search returns the largest i with pred(entry i), assuming pred holds for
// a prefix of the entries; -1 if none.
func (e *entries) search(pred func([]byte) bool) (int, error) {
	lo, hi := 0, e.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		b, err := e.entry(mid)
		if err != nil {
			return -1, err
		}
		if pred(b) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1, nil
}

// index returns the offset or time index of s's segment: from the
// in-memory LRU, fetched with one ranged Get (and validated) if small
// enough, otherwise searched in place.
func (r *RemoteReader) index(s *segReader, p Part) (*entries, error) {
	off, n := s.seg.PartRange(p)
	size := offsetEntryBytes
	if p == PartTimeIndex {
		size = timeEntryBytes
	}
	if n%int64(size) != 0 {
		return nil, s.corrupt(-1, -1, "%s part of %d bytes is not a whole number of %d-byte entries", p, n, size)
	}
	e := &entries{size: size, n: int(n / int64(size)), s: s, off: off}
	if n == 0 || n > r.opts.MaxCachedIndexBytes {
		return e, nil
	}
	id := indexID{s.key, p}
	r.mu.Lock()
	if el := r.mu.idx[id]; el != nil {
		r.mu.lru.MoveToFront(el)
		e.mem = el.Value.(*indexEntry).b
		r.mu.Unlock()
		return e, nil
	}
	r.mu.Unlock()

	b, err := r.fetchPart(s, off, n)
	if err != nil {
		return nil, err
	}
	if err := checkIndex(p, b, s.logLen, s.seg.EndOffset-s.seg.BaseOffset); err != nil {
		return nil, s.corrupt(-1, -1, "%s part: %v", p, err)
	}
	e.mem = b
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.idx[id] == nil {
		r.mu.idx[id] = r.mu.lru.PushFront(&indexEntry{id: id, b: b})
		r.mu.bytes += int64(len(b))
		for r.mu.bytes > r.opts.IndexCacheBytes {
			r.removeIndexLocked(r.mu.lru.Back())
		}
	}
	return e, nil
}

// removeIndexLocked drops the index entry el from the in-memory LRU.
func (r *RemoteReader) removeIndexLocked(el *list.Element) {
	ie := el.Value.(*indexEntry)
	r.mu.lru.Remove(el)
	delete(r.mu.idx, ie.id)
	r.mu.bytes -= int64(len(ie.b))
}

// forgetIfCorrupt drops the object's indexes from the in-memory LRU when
// err reports corrupt data: the damage may be in an index, and a repaired
// object must have its indexes read again.
func (r *RemoteReader) forgetIfCorrupt(key string, err error) {
	if !errors.As(err, new(*segments.CorruptError)) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range []Part{PartIndex, PartTimeIndex} {
		if el := r.mu.idx[indexID{key, p}]; el != nil {
			r.removeIndexLocked(el)
		}
	}
}

// fetchPart reads [off, off+n) of the segment object with one ranged Get.
func (r *RemoteReader) fetchPart(s *segReader, off, n int64) ([]byte, error) {
	rc, _, err := r.store.Get(s.ctx, s.key, off, n)
	if err != nil {
		return nil, fmt.Errorf("tiering: reading index of %q: %w", s.key, err)
	}
	defer rc.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("tiering: reading index of %q [%d, %d): %w", s.key, off, off+n, err)
	}
	return b, nil
}

// checkIndex validates an index part: entries strictly increasing (time
// index: timestamps strictly, offsets not decreasing), offsets within the
// segment's span and positions within the log part.
func checkIndex(p Part, b []byte, logLen int64, span segments.Offset) error {
	var err error
	if p == PartIndex {
		_, err = segments.CheckOffsetIndex(b, logLen, int64(span))
	} else {
		_, err = segments.CheckTimeIndex(b, int64(span))
	}
	return err
}
