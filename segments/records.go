package segments

// Record walking: validation of the records inside a batch (count, lengths,
// offset deltas) and timestamp search, over uncompressed bytes in place or
// over a bounded decompression stream.
//
// Record layout (v2), all integers zigzag varints unless noted:
//
//	length, attributes (int8), timestampDelta (varlong), offsetDelta,
//	keyLength (-1 = null), key, valueLength (-1 = null), value,
//	headerCount, headers: [keyLength (>= 0), key, valueLength (-1 = null), value]

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// noTarget disables the timestamp search of a recordWalk.
const noTarget = math.MaxInt64

// Decompression bounds. A batch's records may legitimately expand well
// beyond max.message.bytes (which limits the compressed size), so the
// output limit is a multiple of it, with a floor for small limits and a
// ceiling so a hostile batch costs bounded CPU. Decoding is streamed (gzip,
// lz4, zstd, xerial snappy) so memory stays small whatever the limit; only
// raw snappy blocks are decoded whole, and their size is also bounded by
// snappy's maximum expansion ratio (a 3-byte copy emits at most 64 bytes).
const (
	minDecompressBytes   = 64 << 20
	maxDecompressBytes   = 1 << 30
	decompressRatio      = 4
	snappyMaxExpansion   = 22 // > 64/3
	zstdMaxWindowBytes   = 64 << 20
	pooledSnappyBufBytes = 8 << 20 // larger raw-snappy buffers are not pooled
	streamBufferBytes    = 32 << 10
)

// decompressLimit is the largest decompressed record section accepted for
// a batch under the given max.message.bytes.
func decompressLimit(maxMessageBytes int32) int64 {
	l := int64(maxMessageBytes) * decompressRatio
	return min(max(l, minDecompressBytes), maxDecompressBytes)
}

// errTooLarge marks a decompressed section beyond the limit.
var errTooLarge = errors.New("decompressed records exceed the size limit")

func isTooLarge(err error) bool { return errors.Is(err, errTooLarge) }

// recordWalk checks count records and gathers timestamp facts as it goes.
type recordWalk struct {
	count    int32 // records expected
	target   int64 // timestamp delta searched for, or noTarget
	minDelta int32 // first offset delta the search considers
	// stored: the batch was compacted, so offset deltas only increase
	// (up to lastDelta) instead of equalling the record index.
	stored    bool
	lastDelta int32
	prevDelta int32
	// requireKey rejects records with a null key (compacted topics).
	requireKey bool

	maxDelta   int64 // largest timestampDelta seen
	first      int32 // offset delta of the first record >= minDelta with delta >= target, or -1
	firstDelta int64 // its timestampDelta
}

// recSource is a byte stream of records: in memory or decompressing.
type recSource interface {
	readByte() (byte, error)
	varint() (int64, error)
	skip(n int64) error
	pos() int64
	// end reports nil if the source is exhausted, an error otherwise.
	end() error
}

func (w *recordWalk) walkMem(b []byte) error {
	s := memSource{b: b}
	return walk(w, &s)
}

// walk checks every record of the source. Errors describe the problem;
// the caller wraps them (ErrInvalidRecord or errTooLarge).
func walk[S recSource](w *recordWalk, s S) error {
	w.first = -1
	w.prevDelta = -1
	w.maxDelta = math.MinInt64
	for i := int32(0); i < w.count; i++ {
		l, err := s.varint()
		if err != nil {
			return fmt.Errorf("record %d of %d: length: %w", i, w.count, err)
		}
		if l < 0 || l > math.MaxInt32 {
			return fmt.Errorf("record %d: negative or oversized length %d", i, l)
		}
		if err := w.record(s, i, s.pos()+l); err != nil {
			return fmt.Errorf("record %d of %d: %w", i, w.count, err)
		}
	}
	if err := s.end(); err != nil {
		return fmt.Errorf("after %d records: %w", w.count, err)
	}
	return nil
}

var (
	errShortRecord = errors.New("field runs past the end of the record")
	errTruncated   = errors.New("records end early")
)

// record parses one record whose bytes end at source position end.
func (w *recordWalk) record(s recSource, i int32, end int64) error {
	if _, err := s.readByte(); err != nil { // attributes, unused
		return err
	}
	tsDelta, err := s.varint()
	if err != nil {
		return fmt.Errorf("timestamp delta: %w", err)
	}
	offDelta, err := varint32(s)
	if err != nil {
		return fmt.Errorf("offset delta: %w", err)
	}
	switch {
	case !w.stored && offDelta != i:
		return fmt.Errorf("offset delta %d, want %d", offDelta, i)
	case w.stored && (offDelta <= w.prevDelta || offDelta > w.lastDelta):
		return fmt.Errorf("offset delta %d after %d (last %d)", offDelta, w.prevDelta, w.lastDelta)
	}
	w.prevDelta = offDelta
	for _, field := range [2]string{"key", "value"} {
		n, err := varint32(s)
		if err != nil {
			return fmt.Errorf("%s length: %w", field, err)
		}
		if n < -1 {
			return fmt.Errorf("%s length %d", field, n)
		}
		if n == -1 && field == "key" && w.requireKey {
			return errors.New("a compacted topic cannot accept a record without a key")
		}
		if err := skipWithin(s, int64(max(n, 0)), end); err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
	}
	hdrs, err := varint32(s)
	if err != nil {
		return fmt.Errorf("header count: %w", err)
	}
	// Each header takes at least two bytes; this bounds the loop.
	if hdrs < 0 || int64(hdrs)*2 > end-s.pos() {
		return fmt.Errorf("header count %d does not fit the record", hdrs)
	}
	for j := int32(0); j < hdrs; j++ {
		kl, err := varint32(s)
		if err != nil || kl < 0 {
			return fmt.Errorf("header %d key length %d: %v", j, kl, err)
		}
		if err := skipWithin(s, int64(kl), end); err != nil {
			return fmt.Errorf("header %d key: %w", j, err)
		}
		vl, err := varint32(s)
		if err != nil || vl < -1 {
			return fmt.Errorf("header %d value length %d: %v", j, vl, err)
		}
		if err := skipWithin(s, int64(max(vl, 0)), end); err != nil {
			return fmt.Errorf("header %d value: %w", j, err)
		}
	}
	if p := s.pos(); p != end {
		return fmt.Errorf("record length disagrees with its fields by %d bytes", end-p)
	}
	if tsDelta > w.maxDelta {
		w.maxDelta = tsDelta
	}
	if w.first < 0 && offDelta >= w.minDelta && tsDelta >= w.target {
		w.first, w.firstDelta = offDelta, tsDelta
	}
	return nil
}

func skipWithin(s recSource, n, end int64) error {
	if n > end-s.pos() {
		return errShortRecord
	}
	return s.skip(n)
}

func varint32(s recSource) (int32, error) {
	v, err := s.varint()
	if err != nil {
		return 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, fmt.Errorf("varint %d overflows int32", v)
	}
	return int32(v), nil
}

// memSource reads records from a byte slice in place.
type memSource struct {
	b []byte
	p int
}

func (m *memSource) readByte() (byte, error) {
	if m.p >= len(m.b) {
		return 0, errTruncated
	}
	c := m.b[m.p]
	m.p++
	return c, nil
}

func (m *memSource) varint() (int64, error) {
	v, n := binary.Varint(m.b[m.p:])
	if n <= 0 {
		if n == 0 {
			return 0, errTruncated
		}
		return 0, errors.New("varint overflows int64")
	}
	m.p += n
	return v, nil
}

func (m *memSource) skip(n int64) error {
	if n > int64(len(m.b)-m.p) {
		return errTruncated
	}
	m.p += int(n)
	return nil
}

func (m *memSource) pos() int64 { return int64(m.p) }

func (m *memSource) end() error {
	if r := len(m.b) - m.p; r != 0 {
		return fmt.Errorf("%d bytes after the last record", r)
	}
	return nil
}

// streamSource reads records from a decompressing reader.
type streamSource struct {
	r *bufio.Reader
	p int64
}

func streamErr(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return errTruncated
	}
	return err
}

func (s *streamSource) readByte() (byte, error) {
	c, err := s.r.ReadByte()
	if err != nil {
		return 0, streamErr(err)
	}
	s.p++
	return c, nil
}

func (s *streamSource) varint() (int64, error) {
	var ux uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= 64 {
			return 0, errors.New("varint overflows int64")
		}
		c, err := s.readByte()
		if err != nil {
			return 0, err
		}
		ux |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	return int64(ux>>1) ^ -int64(ux&1), nil
}

func (s *streamSource) skip(n int64) error {
	for n > 0 {
		step := int(min(n, math.MaxInt32))
		d, err := s.r.Discard(step)
		s.p += int64(d)
		n -= int64(d)
		if err != nil {
			return streamErr(err)
		}
	}
	return nil
}

func (s *streamSource) pos() int64 { return s.p }

func (s *streamSource) end() error {
	// Reading to EOF also makes the codec verify its trailer checksum.
	if _, err := s.r.ReadByte(); err != io.EOF {
		if err != nil {
			return err
		}
		return errors.New("bytes after the last record")
	}
	return nil
}

// limitReader fails with errTooLarge once more than n bytes are produced.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var one [1]byte
		for range 8 { // tolerate a few empty reads from the codec
			n, err := l.r.Read(one[:])
			if n > 0 {
				return 0, errTooLarge
			}
			if err != nil {
				return 0, err
			}
		}
		return 0, io.ErrNoProgress
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// streamState is the reusable machinery of one compressed walk: the codec
// readers (created on first use) and buffers. Pooled; between uses every
// reference to the caller's bytes is dropped.
type streamState struct {
	src  bytes.Reader
	lim  limitReader
	bufr *bufio.Reader
	gz   *gzip.Reader
	lz   *lz4.Reader
	zd   *zstd.Decoder
	xr   xerialReader
}

var (
	streamPool = sync.Pool{New: func() any { return &streamState{bufr: bufio.NewReaderSize(nil, streamBufferBytes)} }}
	snappyPool sync.Pool // *[]byte
)

func (st *streamState) reset() {
	st.src.Reset(nil)
	st.lim = limitReader{}
	st.bufr.Reset(nil)
	if st.zd != nil {
		_ = st.zd.Reset(nil)
	}
	if st.lz != nil {
		st.lz.Reset(&st.src)
	}
	st.xr = xerialReader{block: st.xr.block[:0]}
	if cap(st.xr.block) > pooledSnappyBufBytes {
		st.xr.block = nil
	}
}

// decoder returns the decompressing reader for codec over st.src.
func (st *streamState) decoder(codec int8, src []byte, limit int64) (io.Reader, error) {
	st.src.Reset(src)
	switch codec {
	case CompressionGzip:
		if st.gz == nil {
			gz, err := gzip.NewReader(&st.src)
			if err != nil {
				return nil, err
			}
			st.gz = gz
		} else if err := st.gz.Reset(&st.src); err != nil {
			return nil, err
		}
		return st.gz, nil
	case CompressionSnappy:
		if len(src) < xerialHeaderSize {
			return nil, errors.New("truncated xerial header")
		}
		st.xr.src, st.xr.limit = src[xerialHeaderSize:], limit
		return &st.xr, nil
	case CompressionLZ4:
		if st.lz == nil {
			st.lz = lz4.NewReader(&st.src)
		} else {
			st.lz.Reset(&st.src)
		}
		return st.lz, nil
	case CompressionZstd:
		if st.zd == nil {
			// Concurrency 1 makes stream decoding synchronous: no
			// goroutines to leak when the pool drops a decoder.
			zd, err := zstd.NewReader(&st.src,
				zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(zstdMaxWindowBytes),
			)
			if err != nil {
				return nil, err
			}
			st.zd = zd
		} else if err := st.zd.Reset(&st.src); err != nil {
			return nil, err
		}
		return st.zd, nil
	}
	return nil, fmt.Errorf("unknown compression codec %d", codec)
}

func getSnappyBuf(n int) *[]byte {
	if p, ok := snappyPool.Get().(*[]byte); ok && cap(*p) >= n {
		return p
	}
	b := make([]byte, 0, max(n, 64<<10))
	return &b
}

func putSnappyBuf(p *[]byte) {
	if cap(*p) <= pooledSnappyBufBytes {
		snappyPool.Put(p)
	}
}

var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16 // magic, version int32, compatible version int32

// walkCompressed decompresses src (a batch's record section) with codec and
// walks the records, producing at most limit bytes.
func (w *recordWalk) walkCompressed(codec int8, src []byte, limit int64) error {
	if codec == CompressionSnappy && !bytes.HasPrefix(src, xerialMagic) {
		return w.walkRawSnappy(src, limit)
	}
	st := streamPool.Get().(*streamState)
	defer func() {
		st.reset()
		streamPool.Put(st)
	}()
	dec, err := st.decoder(codec, src, limit)
	if err == nil {
		st.lim = limitReader{r: dec, n: limit}
		st.bufr.Reset(&st.lim)
		err = walk(w, &streamSource{r: st.bufr})
	}
	if err != nil && !isTooLarge(err) {
		err = fmt.Errorf("%s: %w", codecName(codec), err)
	}
	return err
}

func (w *recordWalk) walkRawSnappy(src []byte, limit int64) error {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return fmt.Errorf("snappy: %w", err)
	}
	if int64(n) > limit {
		return fmt.Errorf("%w: snappy block claims %d bytes", errTooLarge, n)
	}
	if int64(n) > int64(len(src))*snappyMaxExpansion+64 {
		return fmt.Errorf("snappy: block claims %d bytes from %d, beyond snappy's expansion ratio", n, len(src))
	}
	buf := getSnappyBuf(n)
	defer putSnappyBuf(buf)
	out, err := snappy.Decode((*buf)[:cap(*buf)], src)
	if err != nil {
		return fmt.Errorf("snappy: %w", err)
	}
	return w.walkMem(out)
}

// xerialReader decodes the xerial snappy framing that the Java client
// uses: after a 16-byte header, blocks of [int32 length][raw snappy block].
type xerialReader struct {
	src   []byte // remaining framed input
	buf   []byte // decoded bytes of the current block not yet read
	block []byte // reusable decode buffer
	limit int64  // total output budget (limitReader enforces it too)
}

func (x *xerialReader) Read(p []byte) (int, error) {
	for len(x.buf) == 0 {
		if len(x.src) == 0 {
			return 0, io.EOF
		}
		if len(x.src) < 4 {
			return 0, errors.New("truncated xerial block length")
		}
		l := int64(binary.BigEndian.Uint32(x.src))
		if l > int64(len(x.src)-4) {
			return 0, fmt.Errorf("xerial block length %d runs past the data", l)
		}
		blk := x.src[4 : 4+l]
		x.src = x.src[4+l:]
		n, err := snappy.DecodedLen(blk)
		if err != nil {
			return 0, err
		}
		if int64(n) > x.limit {
			return 0, errTooLarge
		}
		if int64(n) > l*snappyMaxExpansion+64 {
			return 0, fmt.Errorf("xerial block claims %d bytes from %d", n, l)
		}
		x.limit -= int64(n)
		if cap(x.block) < n {
			x.block = make([]byte, max(n, 64<<10))
		}
		x.buf, err = snappy.Decode(x.block[:cap(x.block)], blk)
		if err != nil {
			return 0, err
		}
	}
	n := copy(p, x.buf)
	x.buf = x.buf[n:]
	return n, nil
}

func codecName(c int8) string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionGzip:
		return "gzip"
	case CompressionSnappy:
		return "snappy"
	case CompressionLZ4:
		return "lz4"
	case CompressionZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec %d", c)
}

// FindTimestamp returns the offset and timestamp of the first record of a
// stored batch b (the whole batch, header h) with offset >= from and
// timestamp >= ts, as ListOffsets by timestamp needs; found is false if no
// record qualifies. The batch's CRC is checked first and its records are
// walked (decompressed, streamed and bounded); compacted batches, whose
// offset deltas have gaps, are fine. Errors describe stored data that
// does not parse.
func FindTimestamp(b []byte, h BatchHeader, from Offset, ts int64) (off Offset, recTs int64, found bool, err error) {
	if int64(len(b)) != h.Size() || len(b) < BatchHeaderSize {
		return 0, 0, false, fmt.Errorf("batch of %d bytes, header says %d", len(b), h.Size())
	}
	if got := batchCRC(b); got != h.CRC {
		return 0, 0, false, fmt.Errorf("CRC mismatch: header %#08x, computed %#08x", h.CRC, got)
	}
	minDelta := int32(min(max(from-h.BaseOffset, 0), math.MaxInt32))
	if h.TimestampType() == LogAppendTime {
		// Every record carries the batch's append time.
		if h.MaxTimestamp >= ts && minDelta <= h.LastOffsetDelta {
			return h.BaseOffset + Offset(minDelta), h.MaxTimestamp, true, nil
		}
		return 0, 0, false, nil
	}
	w := recordWalk{count: h.RecordCount, target: satAdd(ts, satNeg(h.BaseTimestamp)), minDelta: minDelta, stored: true, lastDelta: h.LastOffsetDelta}
	if h.Compression() == CompressionNone {
		err = w.walkMem(b[BatchHeaderSize:])
	} else {
		err = w.walkCompressed(h.Compression(), b[BatchHeaderSize:], maxDecompressBytes)
	}
	if err != nil || w.first < 0 {
		return 0, 0, false, err
	}
	return h.BaseOffset + Offset(w.first), satAdd(h.BaseTimestamp, w.firstDelta), true, nil
}

// satAdd is a+b clamped to the int64 range (timestamps are client data).
func satAdd(a, b int64) int64 {
	s := a + b
	if a > 0 && b > 0 && s < 0 {
		return math.MaxInt64
	}
	if a < 0 && b < 0 && s >= 0 {
		return math.MinInt64
	}
	return s
}

func satNeg(a int64) int64 {
	if a == math.MinInt64 {
		return math.MaxInt64
	}
	return -a
}
