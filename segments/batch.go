package segments

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Magic v2 record batch layout (all integers big-endian):
//
//	offset size field
//	     0    8 baseOffset            (patched by the broker; outside the CRC)
//	     8    4 batchLength           (bytes after this field: total size - 12)
//	    12    4 partitionLeaderEpoch  (patched by the broker; outside the CRC)
//	    16    1 magic                 (must be 2)
//	    17    4 crc                   (CRC-32C of bytes 21 .. end)
//	    21    2 attributes
//	    23    4 lastOffsetDelta
//	    27    8 baseTimestamp
//	    35    8 maxTimestamp
//	    43    8 producerId
//	    51    2 producerEpoch
//	    53    4 baseSequence
//	    57    4 recordCount
//	    61      records
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57

	// BatchHeaderSize is the size of a magic-v2 batch header; records follow.
	BatchHeaderSize = 61
	// batchLengthOverhead is the part of the header not counted by
	// batchLength (baseOffset + batchLength itself).
	batchLengthOverhead = 12
	// minBatchLength is the smallest legal batchLength: a header with no records.
	minBatchLength = BatchHeaderSize - batchLengthOverhead // 49
)

// Attribute bits of a v2 batch.
const (
	attrCompressionMask = 0x07
	attrLogAppendTime   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20
)

// Compression codecs (attribute bits 0-2).
const (
	CompressionNone   int8 = 0
	CompressionGzip   int8 = 1
	CompressionSnappy int8 = 2
	CompressionLZ4    int8 = 3
	CompressionZstd   int8 = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the parsed 61-byte header of a magic-v2 record batch.
//
// Length is the batchLength field, so a batch occupies Length+12 bytes.
type BatchHeader struct {
	BaseOffset           Offset
	Length               int32
	PartitionLeaderEpoch LeaderEpoch
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// Size is the number of bytes the batch occupies (Length + 12).
func (h BatchHeader) Size() int64 { return int64(h.Length) + batchLengthOverhead }

// LastOffset is the offset of the batch's last record.
func (h BatchHeader) LastOffset() Offset { return h.BaseOffset + Offset(h.LastOffsetDelta) }

// NextOffset is the offset following the batch.
func (h BatchHeader) NextOffset() Offset { return h.LastOffset() + 1 }

// IsTransactional reports attribute bit 4.
func (h BatchHeader) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports attribute bit 5 (transaction markers).
func (h BatchHeader) IsControl() bool { return h.Attributes&attrControl != 0 }

// Compression returns the codec id from attribute bits 0-2.
func (h BatchHeader) Compression() int8 { return int8(h.Attributes & attrCompressionMask) }

// TimestampType reports attribute bit 3.
func (h BatchHeader) TimestampType() TimestampType {
	if h.Attributes&attrLogAppendTime != 0 {
		return LogAppendTime
	}
	return CreateTime
}

// ParseBatchHeader parses the first BatchHeaderSize bytes of b. It checks
// only what the header alone can tell: enough bytes, magic == 2 and a
// batchLength that can hold a header. It does not check the CRC or that b
// holds the whole batch (see ValidateBatches). Errors wrap ErrInvalidRecord.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes, need %d for a batch header", ErrInvalidRecord, len(b), BatchHeaderSize)
	}
	h := parseHeaderUnchecked(b)
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: magic %d, only magic 2 is supported", ErrInvalidRecord, h.Magic)
	}
	if h.Length < minBatchLength {
		return h, fmt.Errorf("%w: batch length %d below the minimum %d", ErrInvalidRecord, h.Length, minBatchLength)
	}
	return h, nil
}

// parseHeaderUnchecked decodes the header fields; b must hold at least
// BatchHeaderSize bytes.
func parseHeaderUnchecked(b []byte) BatchHeader {
	_ = b[BatchHeaderSize-1]
	be := binary.BigEndian
	return BatchHeader{
		BaseOffset:           Offset(be.Uint64(b[offBaseOffset:])),
		Length:               int32(be.Uint32(b[offLength:])),
		PartitionLeaderEpoch: LeaderEpoch(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		RecordCount:          int32(be.Uint32(b[offRecordCount:])),
	}
}

// batchCRC computes the CRC-32C a batch should carry; b is the whole batch.
func batchCRC(b []byte) uint32 { return crc32.Checksum(b[offAttributes:], castagnoli) }

// ValidateBatches walks a produce payload (concatenated magic-v2 batches)
// and checks, for every batch: that it lies within the payload, its length
// field, magic == 2, the CRC-32C, lastOffsetDelta == recordCount-1, that the
// records actually present match recordCount (uncompressed batches are
// walked in place; compressed ones are decompressed with a bounded output
// and walked) and that each record's offsetDelta is its index, and its size
// against maxMessageBytes (<= 0: no limit). With requireKeys (compacted
// topics) a record without a key is invalid, as in Kafka.
//
// The returned headers are parsed from the payload, except MaxTimestamp,
// which is the largest record timestamp actually present (Kafka rewrites the
// header field to it; Append does the same when they differ). The payload is
// not modified and not retained.
//
// Errors: *CorruptError (payload truncated, bad length or CRC),
// ErrRecordTooLarge (batch or its decompressed records too large),
// ErrInvalidRecord (anything else), each with the batch position.
func ValidateBatches(payload []byte, maxMessageBytes int32, requireKeys bool) ([]BatchHeader, error) {
	if len(payload) == 0 {
		return nil, fmt.Errorf("%w: empty record set", ErrInvalidRecord)
	}
	// Count the batches first so the result is allocated once. This walk
	// only trusts the length fields as far as the payload bounds allow.
	n := 0
	for pos := 0; pos < len(payload); n++ {
		if len(payload)-pos < batchLengthOverhead {
			break
		}
		l := int64(int32(binary.BigEndian.Uint32(payload[pos+offLength:])))
		if l < minBatchLength || int64(pos)+batchLengthOverhead+l > int64(len(payload)) {
			break
		}
		pos += batchLengthOverhead + int(l)
	}
	headers := make([]BatchHeader, 0, n+1)
	for pos := 0; pos < len(payload); {
		h, size, err := validateBatch(payload[pos:], int64(pos), maxMessageBytes, requireKeys)
		if err != nil {
			return nil, err
		}
		headers = append(headers, h)
		pos += size
	}
	return headers, nil
}

// validateBatch validates the batch at the start of b (b may continue with
// further batches) and returns its header and size. pos is b's position in
// the payload, for error messages.
func validateBatch(b []byte, pos int64, maxMessageBytes int32, requireKeys bool) (BatchHeader, int, error) {
	corrupt := func(reason string) error {
		return &CorruptError{Position: pos, Offset: -1, Reason: reason}
	}
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, 0, corrupt(fmt.Sprintf("%d trailing bytes, shorter than a batch header", len(b)))
	}
	h := parseHeaderUnchecked(b)
	if h.Length < minBatchLength {
		return h, 0, corrupt(fmt.Sprintf("batch length %d below the minimum %d", h.Length, minBatchLength))
	}
	size := h.Size()
	if size > int64(len(b)) {
		return h, 0, corrupt(fmt.Sprintf("batch length %d runs past the end of the payload (%d bytes left)", h.Length, len(b)))
	}
	if maxMessageBytes > 0 && size > int64(maxMessageBytes) {
		return h, 0, fmt.Errorf("%w: batch at position %d is %d bytes, max.message.bytes is %d", ErrRecordTooLarge, pos, size, maxMessageBytes)
	}
	if h.Magic != 2 {
		return h, 0, fmt.Errorf("%w: batch at position %d has magic %d, only magic 2 is supported", ErrInvalidRecord, pos, h.Magic)
	}
	batch := b[:size]
	if got := batchCRC(batch); got != h.CRC {
		return h, 0, corrupt(fmt.Sprintf("CRC mismatch: header %#08x, computed %#08x", h.CRC, got))
	}
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: batch at position %d: %s", ErrInvalidRecord, pos, fmt.Sprintf(format, args...))
	}
	if h.RecordCount <= 0 {
		return h, 0, invalid("record count %d, a batch must hold at least one record", h.RecordCount)
	}
	if h.LastOffsetDelta != h.RecordCount-1 {
		return h, 0, invalid("lastOffsetDelta %d does not match record count %d", h.LastOffsetDelta, h.RecordCount)
	}
	if c := h.Compression(); c > CompressionZstd {
		return h, 0, invalid("unknown compression codec %d", c)
	}
	w := recordWalk{count: h.RecordCount, target: noTarget, requireKey: requireKeys && !h.IsControl()}
	var err error
	if h.Compression() == CompressionNone {
		err = w.walkMem(batch[BatchHeaderSize:])
	} else {
		err = w.walkCompressed(h.Compression(), batch[BatchHeaderSize:], decompressLimit(maxMessageBytes))
	}
	if err != nil {
		if isTooLarge(err) {
			return h, 0, fmt.Errorf("%w: batch at position %d: %v", ErrRecordTooLarge, pos, err)
		}
		return h, 0, invalid("%v", err)
	}
	h.MaxTimestamp = satAdd(h.BaseTimestamp, w.maxDelta)
	return h, int(size), nil
}

// patchBatch assigns baseOffset and partitionLeaderEpoch in place (both
// outside the CRC) and makes the timestamp fields say what Kafka would store:
// with LogAppendTime, the timestamp-type bit and maxTimestamp = appendTime;
// with CreateTime, the bit cleared and maxTimestamp = h.MaxTimestamp (the
// largest record timestamp, from validation). The CRC is recomputed only if
// a covered field changed. It returns the header as written.
func patchBatch(b []byte, h BatchHeader, base Offset, epoch LeaderEpoch, tsType TimestampType, appendTime int64) BatchHeader {
	be := binary.BigEndian
	be.PutUint64(b[offBaseOffset:], uint64(base))
	be.PutUint32(b[offLeaderEpoch:], uint32(epoch))
	h.BaseOffset = base
	h.PartitionLeaderEpoch = epoch

	attrs := int16(be.Uint16(b[offAttributes:]))
	maxTs := int64(be.Uint64(b[offMaxTimestamp:]))
	wantAttrs, wantMaxTs := attrs&^attrLogAppendTime, h.MaxTimestamp
	if tsType == LogAppendTime {
		wantAttrs, wantMaxTs = attrs|attrLogAppendTime, appendTime
	}
	if wantAttrs != attrs || wantMaxTs != maxTs {
		be.PutUint16(b[offAttributes:], uint16(wantAttrs))
		be.PutUint64(b[offMaxTimestamp:], uint64(wantMaxTs))
		be.PutUint32(b[offCRC:], batchCRC(b))
	}
	h.Attributes = wantAttrs
	h.MaxTimestamp = wantMaxTs
	h.CRC = be.Uint32(b[offCRC:])
	return h
}
