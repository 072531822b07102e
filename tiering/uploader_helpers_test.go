package tiering

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/segments"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testSource is a Source over a real segments.Log: a fixed leader epoch,
// a high watermark the test sets, and producer snapshots the test
// provides by segment end.
type testSource struct {
	log   *segments.Log
	epoch segments.LeaderEpoch

	mu        sync.Mutex
	hw        segments.Offset
	snapshots map[segments.Offset][]byte
	failMark  int // SetUploadedTo fails this many more times
}

var _ Source = (*testSource)(nil)

func (s *testSource) ClosedSegments(from segments.Offset) ([]segments.ClosedSegment, error) {
	return s.log.ClosedSegments(from)
}

func (s *testSource) HighWatermark() segments.Offset {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hw
}

func (s *testSource) setHW(o segments.Offset) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hw = o
}

func (s *testSource) LeaderEpoch() segments.LeaderEpoch { return s.epoch }

func (s *testSource) SetUploadedTo(o segments.Offset) error {
	s.mu.Lock()
	fail := s.failMark > 0
	if fail {
		s.failMark--
	}
	s.mu.Unlock()
	if fail {
		return fmt.Errorf("test: SetUploadedTo(%d) fails", o)
	}
	return s.log.SetUploadedTo(o)
}

func (s *testSource) LocalLogStartOffset() segments.Offset { return s.log.StartOffset() }

func (s *testSource) ProducerSnapshot(end segments.Offset) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshots[end], nil
}

// newTestPartition is the common setup of the uploader tests: testLog(t,
// 20, 1), its closed segments, and a source over it at epoch 1 whose high
// watermark is the end of closed segment hwSegment.
func newTestPartition(t *testing.T, hwSegment int) (*segments.Log, []segments.ClosedSegment, *testSource) {
	t.Helper()
	l := testLog(t, 20, 1)
	closed := closedSegments(t, l)
	return l, closed, &testSource{log: l, epoch: 1, hw: closed[hwSegment].Next}
}

// testLog opens a log in a temp dir with 2 KiB segments and appends
// batches batches of 5 records (about 600 bytes each) at epoch, then
// syncs, so that several segments close.
func testLog(t *testing.T, batches int, epoch segments.LeaderEpoch) *segments.Log {
	t.Helper()
	l, err := segments.Open(t.TempDir(), segments.Config{
		SegmentBytes:       2048,
		IndexIntervalBytes: 256,
		RetentionAge:       -1,
		RetentionBytes:     -1,
		MaxMessageBytes:    1 << 20,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("segments.Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	produce(t, l, batches, epoch)
	return l
}

var t0 = time.UnixMilli(1_700_000_000_000)

// produce appends n batches at epoch and syncs.
func produce(t *testing.T, l *segments.Log, n int, epoch segments.LeaderEpoch) {
	t.Helper()
	for i := range n {
		ts := t0.UnixMilli() + int64(i)*1000
		b := makeTestBatch(5, 100, ts)
		hs, err := segments.ValidateBatches(b, 1<<20, false)
		if err != nil {
			t.Fatalf("ValidateBatches: %v", err)
		}
		if _, err := l.Append(b, hs, epoch, time.UnixMilli(ts)); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if _, err := l.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// makeTestBatch encodes an uncompressed magic-v2 batch of records with
// valueSize-byte values, timestamps baseTs, baseTs+1, ….
func makeTestBatch(records, valueSize int, baseTs int64) []byte {
	var recs []byte
	for i := range records {
		r := kmsg.Record{
			TimestampDelta64: int64(i),
			OffsetDelta:      int32(i),
			Key:              fmt.Appendf(nil, "key-%d", i),
			Value:            bytes.Repeat([]byte{byte('a' + i%26)}, valueSize),
		}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(records - 1),
		FirstTimestamp:       baseTs,
		MaxTimestamp:         baseTs + int64(records-1),
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(records),
		Records:              recs,
	}
	rb.Length = int32(segments.BatchHeaderSize - 12 + len(recs))
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32cTable))
	return b
}

// closedSegments lists the log's closed segments (released at once: the
// test only uses their bounds, sizes and file names).
func closedSegments(t *testing.T, l *segments.Log) []segments.ClosedSegment {
	t.Helper()
	cs, err := l.ClosedSegments(0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cs {
		cs[i].Release()
	}
	return cs
}

// testChunkBytes is the chunk-checksum piece size of the test uploaders:
// small, so that a test segment (about 2 KiB) has several.
const testChunkBytes = 512

func newTestUploader(t *testing.T, store objectstore.Store, src Source, now func() time.Time) *Uploader {
	t.Helper()
	return newTestUploaderOpts(t, store, src, UploaderOptions{Now: now})
}

// newTestUploaderOpts is newTestUploader with more options; zero timeouts
// and chunk size take the tests' values.
func newTestUploaderOpts(t *testing.T, store objectstore.Store, src Source, opts UploaderOptions) *Uploader {
	t.Helper()
	if opts.PutTimeout == 0 {
		opts.PutTimeout, opts.CommitTimeout = time.Minute, time.Minute
	}
	if opts.ChunkBytes == 0 {
		opts.ChunkBytes = testChunkBytes
	}
	u, err := NewUploader(store, NewManifestStore(store), testTP, src, opts)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func loadManifest(t *testing.T, store objectstore.Store) *Manifest {
	t.Helper()
	m, _, err := NewManifestStore(store).Load(t.Context(), testTP)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return m
}

// segmentObjects lists the keys under testTP's segments prefix.
func segmentObjects(t *testing.T, store objectstore.Store) []string {
	t.Helper()
	var keys []string
	for info, err := range store.List(t.Context(), SegmentsPrefix(testTP)) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, info.Key)
	}
	return keys
}

func manifestKeys(m *Manifest) []string {
	var keys []string
	for i := range m.Segments {
		keys = append(keys, m.SegmentKey(&m.Segments[i]))
	}
	slices.Sort(keys)
	return keys
}

func getRange(t *testing.T, store objectstore.Store, key string, off, n int64) []byte {
	t.Helper()
	rc, _, err := store.Get(context.WithoutCancel(t.Context()), key, off, n)
	if err != nil {
		t.Fatalf("Get %q [%d, +%d): %v", key, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return b
}

func readFilePrefix(t *testing.T, path string, n int64) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) < n {
		t.Fatalf("%s has %d bytes, want at least %d", path, len(b), n)
	}
	return b[:n]
}

// laterClock returns a clock d ahead of the real one, for orphan ages.
func laterClock(d time.Duration) func() time.Time {
	return func() time.Time { return time.Now().Add(d) }
}
