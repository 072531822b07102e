package tiering

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/segments"
)

// rrBatch describes a test batch.
type rrBatch struct {
	records   int
	valueSize int
	baseTs    int64
	tsSteps   []int64 // timestamp delta of record i is tsSteps[i%len]*i; nil: 1 ms per record
	codec     int8
	xerial    bool
}

// rrEncodeRecords builds a batch's record section with kmsg.Record.
func rrEncodeRecords(b rrBatch) ([]byte, int64) {
	var out []byte
	var maxDelta int64
	for i := range b.records {
		d := int64(i)
		if len(b.tsSteps) > 0 {
			d = b.tsSteps[i%len(b.tsSteps)] * int64(i)
		}
		maxDelta = max(maxDelta, d)
		r := kmsg.Record{
			TimestampDelta64: d,
			OffsetDelta:      int32(i),
			Key:              fmt.Appendf(nil, "k%d", i),
			Value:            bytes.Repeat([]byte{byte('a' + i%26)}, b.valueSize),
		}
		if i%3 == 1 {
			r.Headers = []kmsg.Header{{Key: "h", Value: []byte("v")}}
		}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1) // a zero length varint is one byte
		out = r.AppendTo(out)
	}
	return out, maxDelta
}

var rrXerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

func rrCompress(t testing.TB, codec int8, xerial bool, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch codec {
	case segments.CompressionNone:
		return b
	case segments.CompressionGzip:
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case segments.CompressionSnappy:
		if !xerial {
			return snappy.Encode(nil, b)
		}
		buf.Write(rrXerialMagic)
		buf.Write([]byte{0, 0, 0, 1, 0, 0, 0, 1})
		for len(b) > 0 {
			part := b[:min(len(b), 100)]
			b = b[len(part):]
			enc := snappy.Encode(nil, part)
			binary.Write(&buf, binary.BigEndian, uint32(len(enc)))
			buf.Write(enc)
		}
	case segments.CompressionLZ4:
		w := lz4.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case segments.CompressionZstd:
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		return enc.EncodeAll(b, nil)
	default:
		t.Fatalf("codec %d", codec)
	}
	return buf.Bytes()
}

// rrMakeBatch encodes a magic-v2 batch with a correct CRC.
func rrMakeBatch(t testing.TB, b rrBatch) []byte {
	t.Helper()
	if b.records == 0 {
		b.records = 1
	}
	recs, maxDelta := rrEncodeRecords(b)
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           int16(b.codec),
		LastOffsetDelta:      int32(b.records - 1),
		FirstTimestamp:       b.baseTs,
		MaxTimestamp:         b.baseTs + maxDelta,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(b.records),
		Records:              rrCompress(t, b.codec, b.xerial, recs),
	}
	rb.Length = int32(segments.BatchHeaderSize - 12 + len(rb.Records))
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// rrFixture is a local log whose closed segments were uploaded to a mem
// store the way the uploader does (log, index, time index, epochs text,
// empty snapshot), with the manifest that lists them.
type rrFixture struct {
	log        *segments.Log
	store      objectstore.Store
	counting   *rrCountingStore
	m          *Manifest
	objects    map[string][]byte
	chunkBytes int64 // > 0: segments carry chunk checksums in pieces of this size
}

// newRRFixture appends batches to a log with small segments, uploads every
// closed segment and returns the rrFixture. Log and store are closed at the
// end of the test.
func newRRFixture(t *testing.T, batches []rrBatch) *rrFixture {
	t.Helper()
	return newRRFixtureSums(t, batches, 0)
}

// newRRFixtureSums is newRRFixture with chunk checksums of chunkBytes
// pieces recorded for every segment (0: none, as before manifest version
// 2).
func newRRFixtureSums(t *testing.T, batches []rrBatch, chunkBytes int64) *rrFixture {
	t.Helper()
	l, err := segments.Open(t.TempDir(), segments.Config{
		SegmentBytes: 2048, IndexIntervalBytes: 200, RetentionAge: -1, RetentionBytes: -1,
		MaxMessageBytes: 1 << 20, LocalRetentionAge: -1, LocalRetentionBytes: -1,
		TimestampBeforeMax: 1 << 62, TimestampAfterMax: 1 << 62,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	now := time.UnixMilli(1_700_000_000_000)
	for i, b := range batches {
		payload := rrMakeBatch(t, b)
		hs, err := segments.ValidateBatches(payload, 1<<20, false)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if _, err := l.Append(payload, hs, 3, now); err != nil {
			t.Fatalf("append batch %d: %v", i, err)
		}
	}
	if _, err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	mem := objectstore.NewMem()
	t.Cleanup(func() { mem.Close() })
	f := &rrFixture{log: l, counting: &rrCountingStore{Store: mem}, objects: map[string][]byte{}, chunkBytes: chunkBytes}
	f.store = f.counting
	f.m, err = NewManifest(testTP).Next(3)
	if err != nil {
		t.Fatal(err)
	}
	css, err := l.ClosedSegments(0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for i := range css {
			css[i].Release()
		}
	}()
	if len(css) < 3 {
		t.Fatalf("rrFixture needs several closed segments, has %d", len(css))
	}
	for i := range css {
		f.upload(t, &css[i])
	}
	return f
}

func rrReadPrefix(t testing.TB, f *os.File, n int64) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil && !(err == io.EOF && n == 0) {
		t.Fatalf("read %s: %v", f.Name(), err)
	}
	return b
}

func (f *rrFixture) upload(t *testing.T, cs *segments.ClosedSegment) {
	t.Helper()
	logb := rrReadPrefix(t, cs.Log, cs.LogBytes)
	idx := rrReadPrefix(t, cs.Index, cs.IndexBytes)
	tix := rrReadPrefix(t, cs.TimeIndex, cs.TimeIndexBytes)
	epochs := fmt.Appendf(nil, "0\n1\n3 %d\n", cs.Base)
	var hdr segments.BatchHeader
	hdr, err := segments.ParseBatchHeader(logb)
	if err != nil {
		t.Fatal(err)
	}
	parts := PartBytes{Log: int64(len(logb)), Index: int64(len(idx)), TimeIndex: int64(len(tix)), Epochs: int64(len(epochs))}
	obj := bytes.Join([][]byte{logb, idx, tix, epochs}, nil)
	seg := Segment{
		BaseOffset: cs.Base, EndOffset: cs.Next, LeaderEpoch: 3, UID: NewUID(),
		ObjectBytes: int64(len(obj)), Parts: parts,
		FirstTimestamp: min(hdr.BaseTimestamp, cs.MaxTimestamp), MaxTimestamp: cs.MaxTimestamp,
		Epochs: []EpochEntry{{Epoch: 3, StartOffset: cs.Base}},
		CRC32C: crc32.Checksum(obj, crc32.MakeTable(crc32.Castagnoli)), UploadTimeMs: 1_700_000_000_000,
	}
	if f.chunkBytes > 0 {
		seg.ChunkBytes, seg.ChunkCRC32C = f.chunkBytes, chunkSums(obj, f.chunkBytes)
	}
	key := f.m.SegmentKey(&seg)
	if _, err := f.store.Put(context.Background(), key, bytes.NewReader(obj), int64(len(obj))); err != nil {
		t.Fatal(err)
	}
	f.objects[key] = obj
	if f.m, err = f.m.With(seg); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Validate(); err != nil {
		t.Fatal(err)
	}
}

// localBytes returns the bytes the local log returns for the same read.
func (f *rrFixture) localBytes(t *testing.T, from segments.Offset, maxBytes int32, minOneBatch bool) []byte {
	t.Helper()
	res, err := f.log.Read(from, f.m.EndOffset(), maxBytes, minOneBatch)
	if err != nil {
		t.Fatalf("local read at %d: %v", from, err)
	}
	defer res.Release()
	return rrResultBytes(t, res)
}

// rrResultBytes concatenates a ReadResult's chunks.
func rrResultBytes(t testing.TB, res segments.ReadResult) []byte {
	t.Helper()
	var out []byte
	var total int64
	for _, c := range res.Chunks {
		b := make([]byte, c.Size)
		if _, err := c.File.ReadAt(b, c.Position); err != nil {
			t.Fatalf("reading chunk %s [%d, +%d): %v", c.File.Name(), c.Position, c.Size, err)
		}
		out = append(out, b...)
		total += c.Size
	}
	if total != res.Bytes {
		t.Fatalf("result Bytes %d, chunks sum to %d", res.Bytes, total)
	}
	return out
}

// newRRCache opens a cache over store in a temporary directory, closed
// at the end of the test.
func newRRCache(t *testing.T, store objectstore.Store, opts CacheOptions) *ChunkCache {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	c, err := NewChunkCache(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rrCacheFiles lists the files in a cache directory with a given suffix
// ("" for all).
func rrCacheFiles(t testing.TB, dir, suffix string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// rrCountingStore counts ranged Gets per key and can hold them at a gate.
type rrCountingStore struct {
	objectstore.Store
	gets atomic.Int64
	mu   sync.Mutex
	gate chan struct{} // when non-nil, Get waits for it to close (or ctx)
}

func (s *rrCountingStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, objectstore.ObjectInfo, error) {
	s.gets.Add(1)
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, objectstore.ObjectInfo{}, ctx.Err()
		}
	}
	return s.Store.Get(ctx, key, off, n)
}

func (s *rrCountingStore) setGate(g chan struct{}) {
	s.mu.Lock()
	s.gate = g
	s.mu.Unlock()
}

// rrWaitFor polls cond until it holds; the deadline is only a hang guard.
func rrWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// rrMixedBatches is a log's worth of batches of varied sizes and counts.
func rrMixedBatches() []rrBatch {
	var bs []rrBatch
	ts := int64(1_700_000_000_000)
	for i := range 60 {
		b := rrBatch{records: 1 + i%4, valueSize: 10 + (i*37)%150, baseTs: ts}
		bs = append(bs, b)
		ts += int64(b.records) + 5
	}
	return bs
}
