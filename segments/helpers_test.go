package segments

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testBatch describes a batch for makeBatch.
type testBatch struct {
	records   int
	valueSize int
	baseTs    int64
	tsStep    int64 // timestamp delta between records
	codec     int8
	xerial    bool // snappy with xerial framing (Java client)
	producer  int64
	seq       int32
}

// encodeRecords builds the record section with kmsg.Record.
func encodeRecords(tb testing.TB, n, valueSize int, tsStep int64) []byte {
	tb.Helper()
	var out []byte
	for i := range n {
		r := kmsg.Record{
			TimestampDelta64: int64(i) * tsStep,
			OffsetDelta:      int32(i),
			Key:              fmt.Appendf(nil, "key-%d", i),
			Value:            bytes.Repeat([]byte{byte('a' + i%26)}, valueSize),
		}
		if i%3 == 1 {
			r.Headers = []kmsg.Header{{Key: "h", Value: []byte("v")}}
		}
		if i%5 == 4 {
			r.Key = nil
		}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1) // the length varint of 0 is one byte
		out = r.AppendTo(out)
	}
	return out
}

func compress(tb testing.TB, codec int8, xerial bool, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	switch codec {
	case CompressionNone:
		return b
	case CompressionGzip:
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case CompressionSnappy:
		if !xerial {
			return snappy.Encode(nil, b)
		}
		buf.Write(xerialMagic)
		buf.Write([]byte{0, 0, 0, 1, 0, 0, 0, 1})
		for len(b) > 0 {
			chunk := b[:min(len(b), 32<<10)]
			b = b[len(chunk):]
			enc := snappy.Encode(nil, chunk)
			binary.Write(&buf, binary.BigEndian, uint32(len(enc)))
			buf.Write(enc)
		}
	case CompressionLZ4:
		w := lz4.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case CompressionZstd:
		enc, _ := zstd.NewWriter(nil)
		return enc.EncodeAll(b, nil)
	}
	return buf.Bytes()
}

// makeBatch encodes a batch with kmsg.RecordBatch (CRC computed here).
func makeBatch(tb testing.TB, o testBatch) []byte {
	tb.Helper()
	if o.records == 0 {
		o.records = 1
	}
	if o.baseTs == 0 {
		o.baseTs = 1_700_000_000_000
	}
	recs := compress(tb, o.codec, o.xerial, encodeRecords(tb, o.records, o.valueSize, o.tsStep))
	pid, seq := int64(-1), int32(-1)
	if o.producer != 0 {
		pid, seq = o.producer, o.seq
	}
	return finishBatch(kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           int16(o.codec),
		LastOffsetDelta:      int32(o.records - 1),
		FirstTimestamp:       o.baseTs,
		MaxTimestamp:         o.baseTs + int64(o.records-1)*max(o.tsStep, 0),
		ProducerID:           pid,
		ProducerEpoch:        -1,
		FirstSequence:        seq,
		NumRecords:           int32(o.records),
		Records:              recs,
	})
}

// finishBatch sets Length and CRC and encodes.
func finishBatch(rb kmsg.RecordBatch) []byte {
	rb.Length = int32(minBatchLength + len(rb.Records))
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// fixCRC recomputes the CRC after a test edits a batch.
func fixCRC(b []byte) { binary.BigEndian.PutUint32(b[offCRC:], batchCRC(b)) }

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func testConfig() Config {
	return Config{
		SegmentBytes:       1 << 20,
		IndexIntervalBytes: 256,
		SegmentIndexBytes:  1 << 20,
		RetentionAge:       -1,
		RetentionBytes:     -1,
		MaxMessageBytes:    1 << 20,
	}
}

func openTest(tb testing.TB, dir string, cfg Config) *Log {
	tb.Helper()
	l, err := Open(dir, cfg, testLogger(tb))
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return l
}

var t0 = time.UnixMilli(1_700_000_000_000)

// appendBatch validates and appends one batch; returns the info and the bytes as written.
func appendBatch(tb testing.TB, l *Log, o testBatch, now time.Time) (AppendInfo, []byte) {
	tb.Helper()
	b := makeBatch(tb, o)
	hs, err := ValidateBatches(b, 1<<20, false)
	if err != nil {
		tb.Fatalf("ValidateBatches: %v", err)
	}
	info, err := l.Append(b, hs, 3, now)
	if err != nil {
		tb.Fatalf("Append: %v", err)
	}
	return info, b
}

// readAll reads a ReadResult's bytes and releases it.
func readAll(tb testing.TB, r ReadResult) []byte {
	tb.Helper()
	defer r.Release()
	var out []byte
	for _, c := range r.Chunks {
		b := make([]byte, c.Size)
		if _, err := c.File.ReadAt(b, c.Position); err != nil && err != io.EOF {
			tb.Fatalf("ReadAt: %v", err)
		}
		out = append(out, b...)
	}
	return out
}

// crash closes a log's files without Sync, checkpoints or marker, like a
// process kill (the page cache survives, as it would).
func crash(l *Log) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	segs := l.mu.segs
	l.mu.segs, l.mu.closed = nil, true
	l.closeDirLocked()
	l.mu.Unlock()
	for _, s := range segs {
		s.release()
	}
}

func segFiles(tb testing.TB, dir, suffix string) []string {
	tb.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func fileSize(tb testing.TB, p string) int64 {
	tb.Helper()
	st, err := os.Stat(p)
	if err != nil {
		tb.Fatal(err)
	}
	return st.Size()
}
