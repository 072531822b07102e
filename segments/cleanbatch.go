package segments

// The cleaner's batch rewriting: decide per record what compaction keeps,
// and rebuild a batch from the kept records (Kafka's MemoryRecords.filterTo
// for magic v2).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/klauspost/compress/snappy"
	"github.com/twmb/franz-go/pkg/kgo"
)

// attrDeleteHorizon (attribute bit 6, KIP-534) says baseTimestamp holds the
// delete horizon: the time after which the batch's tombstones may go.
// Record timestamps stay baseTimestamp + timestampDelta, so setting it
// rewrites every record's delta.
const attrDeleteHorizon = 0x40

// record is one record of a decoded batch. raw is the whole record with
// its length prefix, in the decoded record section.
type record struct {
	raw         []byte
	tsDelta     int64
	offsetDelta int32
	key         []byte // nil for a null key
	nullValue   bool
	restAt      int // index in raw where offsetDelta starts (after tsDelta)
	attrAt      int // index in raw of the attributes byte
}

// forEachRecord walks count records of an uncompressed record section. The
// records were validated when produced; a stored batch that does not parse
// is corrupt, and the error says where.
func forEachRecord(recs []byte, count int32, fn func(r record) error) error {
	p := 0
	for i := int32(0); i < count; i++ {
		l, n := binary.Varint(recs[p:])
		if n <= 0 || l < 1 || l > int64(len(recs)-p-n) {
			return fmt.Errorf("record %d at section position %d: bad length", i, p)
		}
		start, body := p, recs[p+n:p+n+int(l)]
		p += n + int(l)
		// Fields are parsed within the record's own bytes.
		q := 1 // attributes
		field := func(what string) (int64, error) {
			v, m := binary.Varint(body[q:])
			if m <= 0 {
				return 0, fmt.Errorf("record %d: bad %s", i, what)
			}
			q += m
			return v, nil
		}
		r := record{attrAt: n, raw: recs[start:p]}
		var err error
		if r.tsDelta, err = field("timestamp delta"); err != nil {
			return err
		}
		r.restAt = n + q
		od, err := field("offset delta")
		if err != nil {
			return err
		}
		r.offsetDelta = int32(od)
		kl, err := field("key length")
		if err != nil {
			return err
		}
		if kl < -1 || kl > int64(len(body)-q) {
			return fmt.Errorf("record %d: key length %d", i, kl)
		}
		if kl >= 0 {
			r.key = body[q : q+int(kl) : q+int(kl)]
			q += int(kl)
		}
		vl, err := field("value length")
		if err != nil {
			return err
		}
		if vl < -1 || vl > int64(len(body)-q) {
			return fmt.Errorf("record %d: value length %d", i, vl)
		}
		r.nullValue = vl < 0
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// batchFilter rewrites batches for one cleaning pass. Not safe for
// concurrent use; its buffers are reused from batch to batch.
type batchFilter struct {
	keys              *offsetMap
	nowMs             int64
	deleteRetentionMs int64
	// keepProducerBatch says whether an emptied batch must stay as a bare
	// header because it is the last one of an idempotent producer.
	keepProducerBatch func(producerID int64, lastOffset Offset) bool
	decompressLimit   int64

	compressors map[int8]kgo.Compressor
	recs        []byte // decompressed record section
	kept        []byte // kept records, re-encoded where needed
	out         bytes.Buffer
	zbuf        bytes.Buffer
}

// filterResult describes what filter did to one batch.
type filterResult struct {
	out             []byte // bytes to write; nil drops the batch
	unchanged       bool   // out is the input batch itself
	recordsRead     int
	recordsRemoved  int
	deleteHorizonMs int64 // horizon of the written batch if it keeps tombstones, else 0
}

// filter applies compaction to batch b (whole batch bytes, header h) and
// returns the batch to write. out aliases the filter's buffers or b: use it
// before the next call.
func (f *batchFilter) filter(b []byte, h BatchHeader) (filterResult, error) {
	if h.IsControl() {
		return filterResult{out: b, unchanged: true}, nil // transaction markers stay (see doc.go)
	}
	recs, err := f.records(b, h)
	if err != nil {
		return filterResult{}, err
	}
	horizonSet := h.Attributes&attrDeleteHorizon != 0
	tombstonesExpired := horizonSet && f.nowMs >= h.BaseTimestamp
	base := h.BaseOffset
	res := filterResult{}
	var keptRecs []record
	keptTombstones := false
	err = forEachRecord(recs, h.RecordCount, func(r record) error {
		res.recordsRead++
		off := base + Offset(r.offsetDelta)
		switch {
		case r.key == nil:
			// Compacted topics take no keyless records; older data may
			// have some, and Kafka's cleaner drops them too.
		case f.keys.get(r.key) > off:
			// A later record has the key.
		case r.nullValue && tombstonesExpired:
		default:
			keptRecs = append(keptRecs, r)
			keptTombstones = keptTombstones || r.nullValue
			return nil
		}
		res.recordsRemoved++
		return nil
	})
	if err != nil {
		return filterResult{}, err
	}
	if res.recordsRead != int(h.RecordCount) {
		return filterResult{}, fmt.Errorf("batch at offset %d holds %d records, header says %d", base, res.recordsRead, h.RecordCount)
	}
	baseTs := h.BaseTimestamp
	attrs := h.Attributes
	if keptTombstones {
		if !horizonSet {
			baseTs = satAdd(f.nowMs, f.deleteRetentionMs)
			attrs |= attrDeleteHorizon
		}
		res.deleteHorizonMs = baseTs
	}
	if res.recordsRemoved == 0 && attrs == h.Attributes {
		res.out, res.unchanged = b, true
		return res, nil
	}
	if len(keptRecs) == 0 && !(h.ProducerID >= 0 && f.keepProducerBatch != nil && f.keepProducerBatch(h.ProducerID, h.LastOffset())) {
		return res, nil // dropped whole
	}

	// Re-encode the kept records, shifting timestamp deltas if the base
	// timestamp became the delete horizon.
	f.kept = f.kept[:0]
	maxTs := int64(math.MinInt64)
	for _, r := range keptRecs {
		ts := satAdd(h.BaseTimestamp, r.tsDelta)
		maxTs = max(maxTs, ts)
		if baseTs == h.BaseTimestamp {
			f.kept = append(f.kept, r.raw...)
			continue
		}
		body := r.raw[r.attrAt:]
		var tmp [binary.MaxVarintLen64]byte
		delta := binary.AppendVarint(tmp[:0], ts-baseTs)
		rest := r.raw[r.restAt:]
		f.kept = binary.AppendVarint(f.kept, int64(1+len(delta)+len(rest)))
		f.kept = append(f.kept, body[0])
		f.kept = append(f.kept, delta...)
		f.kept = append(f.kept, rest...)
	}
	if len(keptRecs) == 0 || h.TimestampType() == LogAppendTime {
		maxTs = h.MaxTimestamp
	}
	payload := f.kept
	if len(keptRecs) == 0 {
		// A bare producer header: no record section to compress (an
		// empty section is not a valid compressed stream), so no codec,
		// as Kafka writes them.
		attrs &^= attrCompressionMask
	} else if codec := h.Compression(); codec != CompressionNone {
		if payload, err = f.compress(codec, f.kept); err != nil {
			return filterResult{}, fmt.Errorf("batch at offset %d: %w", base, err)
		}
	}
	f.out.Reset()
	var hdr [BatchHeaderSize]byte
	be := binary.BigEndian
	be.PutUint64(hdr[offBaseOffset:], uint64(h.BaseOffset))
	be.PutUint32(hdr[offLength:], uint32(BatchHeaderSize-batchLengthOverhead+len(payload)))
	be.PutUint32(hdr[offLeaderEpoch:], uint32(h.PartitionLeaderEpoch))
	hdr[offMagic] = 2
	be.PutUint16(hdr[offAttributes:], uint16(attrs))
	be.PutUint32(hdr[offLastOffsetDelta:], uint32(h.LastOffsetDelta))
	be.PutUint64(hdr[offBaseTimestamp:], uint64(baseTs))
	be.PutUint64(hdr[offMaxTimestamp:], uint64(maxTs))
	be.PutUint64(hdr[offProducerID:], uint64(h.ProducerID))
	be.PutUint16(hdr[offProducerEpoch:], uint16(h.ProducerEpoch))
	be.PutUint32(hdr[offBaseSequence:], uint32(h.BaseSequence))
	be.PutUint32(hdr[offRecordCount:], uint32(len(keptRecs)))
	f.out.Write(hdr[:])
	f.out.Write(payload)
	out := f.out.Bytes()
	be.PutUint32(out[offCRC:], batchCRC(out))
	res.out = out
	return res, nil
}

// records returns the decompressed record section of batch b.
func (f *batchFilter) records(b []byte, h BatchHeader) ([]byte, error) {
	src := b[BatchHeaderSize:]
	codec := h.Compression()
	if codec == CompressionNone || h.RecordCount == 0 && len(src) == 0 {
		return src, nil
	}
	out, err := decompressAll(codec, src, f.decompressLimit, f.recs[:0])
	if err != nil {
		return nil, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
	}
	f.recs = out
	return out, nil
}

// decompressAll decompresses a record section into dst (appending), at
// most limit bytes.
func decompressAll(codec int8, src []byte, limit int64, dst []byte) ([]byte, error) {
	if codec == CompressionSnappy && !bytes.HasPrefix(src, xerialMagic) {
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return nil, fmt.Errorf("snappy: %w", err)
		}
		if int64(n) > limit {
			return nil, fmt.Errorf("%w: snappy block claims %d bytes", errTooLarge, n)
		}
		if cap(dst) < n {
			dst = make([]byte, n)
		}
		return snappy.Decode(dst[:n], src)
	}
	st := streamPool.Get().(*streamState)
	defer func() {
		st.reset()
		streamPool.Put(st)
	}()
	dec, err := st.decoder(codec, src, limit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", codecName(codec), err)
	}
	buf := bytes.NewBuffer(dst[:0])
	n, err := io.Copy(buf, io.LimitReader(dec, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", codecName(codec), err)
	}
	if n > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", errTooLarge, limit)
	}
	return buf.Bytes(), nil
}

// compress compresses a record section with codec, as the producer did.
func (f *batchFilter) compress(codec int8, src []byte) ([]byte, error) {
	c, ok := f.compressors[codec]
	if !ok {
		var cc kgo.CompressionCodec
		switch codec {
		case CompressionGzip:
			cc = kgo.GzipCompression()
		case CompressionSnappy:
			cc = kgo.SnappyCompression()
		case CompressionLZ4:
			cc = kgo.Lz4Compression()
		case CompressionZstd:
			cc = kgo.ZstdCompression()
		default:
			return nil, fmt.Errorf("unknown compression codec %d", codec)
		}
		var err error
		if c, err = kgo.DefaultCompressor(cc); err != nil {
			return nil, err
		}
		if f.compressors == nil {
			f.compressors = map[int8]kgo.Compressor{}
		}
		f.compressors[codec] = c
	}
	f.zbuf.Reset()
	out, used := c.Compress(&f.zbuf, src)
	if used == kgo.CodecError || out == nil {
		return nil, errors.New(codecName(codec) + ": compression failed")
	}
	return out, nil
}
