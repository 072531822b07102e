package broker

// The bytes between the group coordinator and __consumer_offsets: encoding
// the coordinator's records (group.Record) into magic-v2 record batches for
// replica.Partition.Append, and reading a partition's batches back into
// group.Records when the coordinator loads it.
//
// Batches written here are uncompressed, non-transactional, with no
// producer (producerId -1, epoch -1, sequence -1) and CreateTime
// timestamps; baseOffset and partitionLeaderEpoch are left 0 for the
// partition to patch. The reader accepts anything a Kafka broker could have
// written to the topic, compressed batches included; control batches are
// skipped.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/group"
	"github.com/stratalog/strata/broker/replica"
	"github.com/stratalog/strata/segments"
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// Byte offsets in a magic-v2 batch (see segments/batch.go).
const (
	batchLengthAt     = 8
	batchCRCAt        = 17
	batchAttributesAt = 21
)

// encodeGroupBatch encodes recs (at least one) as one magic-v2 batch. A nil
// Value is a tombstone (null value on the wire). The result is a fresh
// slice the caller owns (Append patches it in place).
func encodeGroupBatch(recs []group.Record, now time.Time) []byte {
	if len(recs) == 0 {
		panic("broker: encodeGroupBatch with no records")
	}
	ts := now.UnixMilli()
	var body []byte
	for i, gr := range recs {
		r := kmsg.Record{OffsetDelta: int32(i), Key: gr.Key, Value: gr.Value}
		// Length counts the bytes after the length varint: encode once with
		// Length 0 (a one-byte varint) to measure.
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		body = r.AppendTo(body)
	}
	rb := kmsg.RecordBatch{
		Magic:           2,
		LastOffsetDelta: int32(len(recs) - 1),
		FirstTimestamp:  ts,
		MaxTimestamp:    ts,
		ProducerID:      -1,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(len(recs)),
		Records:         body,
	}
	b := rb.AppendTo(make([]byte, 0, segments.BatchHeaderSize+len(body)))
	binary.BigEndian.PutUint32(b[batchLengthAt:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[batchCRCAt:], crc32.Checksum(b[batchAttributesAt:], crc32c))
	return b
}

// groupReadChunkBytes bounds one Read while loading a partition.
const groupReadChunkBytes = 1 << 20

// errLoadStopped: the broker began shutting down while a partition loaded.
var errLoadStopped = errors.New("broker: group coordinator load stopped")

// readGroupRecords reads every record of p from its log start to its high
// watermark, in offset order. stop aborts the read (errLoadStopped).
// Errors are I/O errors and *segments.CorruptError for batches that do not
// parse; records inside a well-formed batch that do not decode are left to
// the coordinator (Load skips and reports them).
func readGroupRecords(p *replica.Partition, stop <-chan struct{}) ([]group.Record, error) {
	var out []group.Record
	dec := kgo.DefaultDecompressor()
	from, hw := p.LogStartOffset(), p.HighWatermark()
	var buf []byte
	for from < hw {
		select {
		case <-stop:
			return nil, errLoadStopped
		default:
		}
		rr, err := p.Read(from, groupReadChunkBytes, true)
		if err != nil {
			return nil, err
		}
		if len(rr.Chunks) == 0 {
			rr.Release()
			break
		}
		next := from
		for _, ch := range rr.Chunks {
			if int64(cap(buf)) < ch.Size {
				buf = make([]byte, ch.Size)
			}
			buf = buf[:ch.Size]
			if _, err := ch.File.ReadAt(buf, ch.Position); err != nil {
				rr.Release()
				return nil, fmt.Errorf("read %s-%d at %d: %w", p.Topic(), p.Index(), ch.Position, err)
			}
			n, err := parseGroupBatches(buf, dec, func(r group.Record) { out = append(out, r) })
			if err != nil {
				rr.Release()
				return nil, fmt.Errorf("%s-%d at offset %d: %w", p.Topic(), p.Index(), next, err)
			}
			if n > next {
				next = n
			}
		}
		rr.Release()
		if next <= from {
			return nil, &segments.CorruptError{Reason: fmt.Sprintf("%s-%d: read at offset %d made no progress", p.Topic(), p.Index(), from)}
		}
		from = next
	}
	return out, nil
}

// parseGroupBatches walks whole batches in b, calling emit for each record
// (copied: b is reused), and returns the offset after the last batch. The
// chunk is first checked by segments.ValidateBatches — framing, CRC, record
// counts, and decompression within segments' size bound — so the records
// decoded here come only from batches known to be whole and bounded.
func parseGroupBatches(b []byte, dec kgo.Decompressor, emit func(group.Record)) (segments.Offset, error) {
	headers, err := segments.ValidateBatches(b, 0, false)
	if err != nil {
		return 0, asCorrupt(err)
	}
	var next segments.Offset
	for _, h := range headers {
		raw := b[:h.Size()]
		b = b[h.Size():]
		next = h.NextOffset()
		if h.IsControl() {
			continue // transaction markers carry no group state
		}
		records := raw[segments.BatchHeaderSize:]
		if c := h.Compression(); c != segments.CompressionNone {
			records, err = dec.Decompress(records, kgo.CompressionCodecType(c))
			if err != nil {
				return 0, &segments.CorruptError{Offset: h.BaseOffset, Reason: fmt.Sprintf("decompress: %v", err)}
			}
		}
		for i := int32(0); i < h.RecordCount; i++ {
			l, w := binary.Varint(records)
			if w <= 0 || l < 0 || int64(w)+l > int64(len(records)) {
				return 0, &segments.CorruptError{Offset: h.BaseOffset, Reason: fmt.Sprintf("record %d truncated", i)}
			}
			var r kmsg.Record
			if err := r.ReadFrom(records[:int64(w)+l]); err != nil {
				return 0, &segments.CorruptError{Offset: h.BaseOffset, Reason: fmt.Sprintf("record %d: %v", i, err)}
			}
			records = records[int64(w)+l:]
			gr := group.Record{Key: append([]byte{}, r.Key...)}
			if r.Value != nil {
				gr.Value = append([]byte{}, r.Value...)
			}
			emit(gr)
		}
	}
	return next, nil
}

// asCorrupt reports a stored batch that fails validation as corruption:
// whatever the reason, bytes in our own log that do not validate are damage.
func asCorrupt(err error) error {
	var c *segments.CorruptError
	if errors.As(err, &c) {
		return err
	}
	return &segments.CorruptError{Offset: -1, Reason: err.Error()}
}
