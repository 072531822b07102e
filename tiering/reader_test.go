package tiering

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/segments"
)

func newRRReader(t *testing.T, store objectstore.Store, opts CacheOptions) (*RemoteReader, *ChunkCache) {
	t.Helper()
	c := newRRCache(t, store, opts)
	return NewRemoteReader(store, c, ReaderOptions{}), c
}

// checkRead reads from with the remote reader and compares with the local
// log's answer to the same read.
func checkRead(t *testing.T, f *rrFixture, r *RemoteReader, from segments.Offset, maxBytes int32, minOneBatch bool) segments.ReadResult {
	t.Helper()
	res, err := r.Read(context.Background(), f.m, from, maxBytes, minOneBatch)
	if err != nil {
		t.Fatalf("remote read at %d (maxBytes %d, minOneBatch %v): %v", from, maxBytes, minOneBatch, err)
	}
	got := rrResultBytes(t, res)
	want := f.localBytes(t, from, maxBytes, minOneBatch)
	if !bytes.Equal(got, want) {
		res.Release()
		t.Fatalf("remote read at %d (maxBytes %d, minOneBatch %v): %d bytes differ from the local log's %d bytes", from, maxBytes, minOneBatch, len(got), len(want))
	}
	return res
}

func TestRemoteReadEveryOffset(t *testing.T) {
	f := newRRFixture(t, rrMixedBatches())
	for _, tc := range []struct {
		name string
		opts ReaderOptions
	}{
		{"indexes in memory", ReaderOptions{}},
		{"index LRU evicting", ReaderOptions{IndexCacheBytes: 100}},
		{"indexes searched in place", ReaderOptions{MaxCachedIndexBytes: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Chunks smaller than a segment and not aligned with batches.
			c := newRRCache(t, f.store, CacheOptions{ChunkBytes: 300, MaxBytes: 300 * 8})
			checkEveryOffset(t, f, NewRemoteReader(f.store, c, tc.opts), c)
		})
	}
}

func checkEveryOffset(t *testing.T, f *rrFixture, r *RemoteReader, c *ChunkCache) {
	if len(f.m.Segments) < 3 {
		t.Fatalf("only %d segments", len(f.m.Segments))
	}
	multiChunk := 0
	for from := f.m.LogStartOffset; from < f.m.EndOffset(); from++ {
		for _, mb := range []struct {
			maxBytes int32
			minOne   bool
		}{{1 << 20, false}, {500, false}, {500, true}, {1, false}, {1, true}, {0, true}} {
			res := checkRead(t, f, r, from, mb.maxBytes, mb.minOne)
			if res.Bytes > 0 {
				// The first batch holds from.
				h := firstHeader(t, res)
				if !(h.BaseOffset <= from && from < h.NextOffset()) {
					t.Fatalf("read at %d starts with batch [%d, %d)", from, h.BaseOffset, h.NextOffset())
				}
			}
			if mb.maxBytes == 1 && !mb.minOne && res.Bytes != 0 {
				t.Fatalf("read at %d with maxBytes 1 and no minOneBatch returned %d bytes", from, res.Bytes)
			}
			if mb.minOne && res.Bytes == 0 {
				t.Fatalf("read at %d with minOneBatch returned nothing", from)
			}
			if len(res.Chunks) > 1 {
				multiChunk++
			}
			res.Release()
		}
	}
	if multiChunk == 0 {
		t.Fatal("no read spanned two chunks: the test does not cover chunk boundaries")
	}
	if st := c.Stats(); st.PinnedChunks != 0 || st.SizeBytes > 300*8 {
		t.Fatalf("after all reads released: stats %+v", st)
	}
}

func firstHeader(t *testing.T, res segments.ReadResult) segments.BatchHeader {
	t.Helper()
	b := rrResultBytes(t, res)
	h, err := segments.ParseBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestRemoteReadChunksPointIntoCache(t *testing.T) {
	f := newRRFixture(t, rrMixedBatches())
	r, c := newRRReader(t, f.store, CacheOptions{ChunkBytes: 128, MaxBytes: 128 * 4, ReadAheadChunks: -1})
	seg := f.m.Segments[1]
	res, err := r.Read(context.Background(), f.m, seg.BaseOffset, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	// The whole log part of the segment, split at every chunk boundary.
	want := f.objects[f.m.SegmentKey(&seg)][:seg.Parts.Log]
	if got := rrResultBytes(t, res); !bytes.Equal(got, want) {
		t.Fatalf("read of a whole segment: %d bytes, not the log part's %d", len(got), len(want))
	}
	if wantChunks := int((seg.Parts.Log + 127) / 128); len(res.Chunks) != wantChunks {
		t.Fatalf("%d file chunks for a %d-byte log part in 128-byte chunks, want %d", len(res.Chunks), seg.Parts.Log, wantChunks)
	}
	for i, fc := range res.Chunks {
		if fc.Position < 0 || fc.Position+fc.Size > 128 {
			t.Fatalf("file chunk %d [%d, +%d) outside a 128-byte chunk file", i, fc.Position, fc.Size)
		}
	}
	// All pinned: the cache is over its bound while the result lives,
	// and the chunks' files stay readable.
	if st := c.Stats(); st.PinnedChunks != len(res.Chunks) {
		t.Fatalf("stats %+v, want %d pinned chunks", st, len(res.Chunks))
	}
	res.Release()
	res.Release()
	if st := c.Stats(); st.PinnedChunks != 0 || st.SizeBytes > 128*4 {
		t.Fatalf("after release: stats %+v", st)
	}
}

func TestRemoteReadGapGoesToNextSegment(t *testing.T) {
	f := newRRFixture(t, rrMixedBatches())
	// A manifest without segment 1: offsets in it fall in a gap.
	m, err := NewManifest(testTP).Next(3)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range f.m.Segments {
		if i == 1 {
			continue
		}
		if m, err = m.With(s); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := newRRReader(t, f.store, CacheOptions{ChunkBytes: 256, MaxBytes: 4096})
	gap := f.m.Segments[1]
	res, err := r.Read(context.Background(), m, gap.BaseOffset+1, 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	if h := firstHeader(t, res); h.BaseOffset != f.m.Segments[2].BaseOffset {
		t.Fatalf("read in a gap starts at batch %d, want the next segment's first batch %d", h.BaseOffset, f.m.Segments[2].BaseOffset)
	}
}

func TestRemoteReadOutOfRange(t *testing.T) {
	f := newRRFixture(t, rrMixedBatches())
	r, _ := newRRReader(t, f.store, CacheOptions{ChunkBytes: 256, MaxBytes: 4096})
	m, _ := f.m.WithoutBefore(f.m.Segments[0].BaseOffset + 2)
	for _, from := range []segments.Offset{m.LogStartOffset - 1, m.EndOffset(), m.EndOffset() + 100} {
		if _, err := r.Read(context.Background(), m, from, 1000, true); !errors.Is(err, segments.ErrOffsetOutOfRange) {
			t.Fatalf("read at %d of [%d, %d): %v, want ErrOffsetOutOfRange", from, m.LogStartOffset, m.EndOffset(), err)
		}
	}
}

func TestRemoteReadFailingStore(t *testing.T) {
	f := newRRFixture(t, rrMixedBatches())
	faulty := objectstore.NewFaulty(f.store, 1)
	r, c := newRRReader(t, faulty, CacheOptions{ChunkBytes: 256, MaxBytes: 4096})
	faulty.Add(objectstore.Fault{Ops: objectstore.OpGet, Kind: objectstore.FaultError})
	if _, err := r.Read(context.Background(), f.m, f.m.Segments[1].BaseOffset+3, 1000, true); !errors.Is(err, objectstore.ErrInjected) {
		t.Fatalf("read through a failing store: %v, want ErrInjected", err)
	}
	if files := rrCacheFiles(t, c.opts.Dir, ""); len(files) != 0 {
		t.Fatalf("failed read left cache files %v", files)
	}

	// A hanging store: the read returns when its context ends.
	faulty.Clear()
	faulty.Add(objectstore.Fault{Ops: objectstore.OpGet, Latency: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(ctx, f.m, f.m.Segments[2].BaseOffset, 1000, true)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("read from a hanging store: %v, want DeadlineExceeded", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("read from a hanging store did not return after its context ended (hang guard)")
	}
	rrWaitFor(t, "abandoned downloads to end", func() bool { return c.Stats().Chunks == 0 })
	if files := rrCacheFiles(t, c.opts.Dir, ""); len(files) != 0 {
		t.Fatalf("cancelled read left cache files %v", files)
	}
}

// corruptFixture uploads a copy of segment i's object changed by edit
// under a new key and returns a manifest whose segment i names it.
func corruptFixture(t *testing.T, f *rrFixture, i int, edit func(obj []byte, seg *Segment)) (*Manifest, string) {
	t.Helper()
	seg := f.m.Segments[i]
	obj := bytes.Clone(f.objects[f.m.SegmentKey(&seg)])
	edit(obj, &seg)
	seg.UID = NewUID()
	key := f.m.SegmentKey(&seg)
	if _, err := f.store.Put(context.Background(), key, bytes.NewReader(obj), int64(len(obj))); err != nil {
		t.Fatal(err)
	}
	m := *f.m
	m.Segments = append([]Segment(nil), f.m.Segments...)
	m.Segments[i] = seg
	return &m, key
}

func TestRemoteReadCorruptLogPart(t *testing.T) {
	f := newRRFixture(t, rrMixedBatches())
	seg := f.m.Segments[1]
	logb := f.objects[f.m.SegmentKey(&seg)][:seg.Parts.Log]
	first, _ := segments.ParseBatchHeader(logb)
	second := first.Size() // position of the second batch
	if seg.Parts.Index == 0 {
		t.Fatal("fixture segment 1 has no index entries: the index case below would test nothing")
	}
	for _, tc := range []struct {
		name string
		edit func(obj []byte, seg *Segment)
	}{
		{"bad magic", func(obj []byte, _ *Segment) { obj[second+16] = 7 }},
		{"length past the log part", func(obj []byte, _ *Segment) {
			binary.BigEndian.PutUint32(obj[second+8:], 1<<30)
		}},
		{"length below a header", func(obj []byte, _ *Segment) { binary.BigEndian.PutUint32(obj[second+8:], 3) }},
		{"offsets going back", func(obj []byte, _ *Segment) {
			binary.BigEndian.PutUint64(obj[second:], uint64(first.BaseOffset))
		}},
		{"index entry at a wrong position", func(obj []byte, seg *Segment) {
			off, _ := seg.PartRange(PartIndex)
			binary.BigEndian.PutUint32(obj[off+4:], uint32(second+1))
		}},
		{"log part cut mid-batch", func(obj []byte, seg *Segment) {
			// The manifest claims a log part ending inside the last batch.
			seg.Parts.Log -= 10
			seg.Parts.Index += 10 // keeps the sum; the index now starts mid-batch
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, key := corruptFixture(t, f, 1, tc.edit)
			r, _ := newRRReader(t, f.store, CacheOptions{ChunkBytes: 256, MaxBytes: 4096})
			var sawCorrupt bool
			for from := seg.BaseOffset; from < seg.EndOffset; from++ {
				res, err := r.Read(context.Background(), m, from, 1<<20, true)
				res.Release()
				if err == nil {
					continue
				}
				var ce *segments.CorruptError
				if !errors.As(err, &ce) {
					t.Fatalf("read at %d: %v, want a *segments.CorruptError", from, err)
				}
				if ce.Path != key {
					t.Fatalf("corruption error names %q, want the object key %q", ce.Path, key)
				}
				sawCorrupt = true
			}
			if !sawCorrupt {
				t.Fatal("no read of the corrupt segment reported corruption")
			}
		})
	}
}

func TestRemoteReadReadAhead(t *testing.T) {
	f := newRRFixture(t, rrMixedBatches())
	seg := f.m.Segments[1]
	first, err := segments.ParseBatchHeader(f.objects[f.m.SegmentKey(&seg)])
	if err != nil {
		t.Fatal(err)
	}
	// Chunks just larger than the first batch: reading that batch
	// reaches the last quarter of chunk 0.
	cb := first.Size() + first.Size()/8
	if seg.Parts.Log <= cb {
		t.Fatalf("segment's log part (%d bytes) fits in one %d-byte chunk", seg.Parts.Log, cb)
	}
	r, c := newRRReader(t, f.store, CacheOptions{ChunkBytes: cb, MaxBytes: cb * 8, ReadAheadChunks: 1})
	res, err := r.Read(context.Background(), f.m, seg.BaseOffset, int32(first.Size()), false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != first.Size() {
		t.Fatalf("read returned %d bytes, want the first batch's %d", res.Bytes, first.Size())
	}
	res.Release()
	rrWaitFor(t, "the read-ahead of chunk 1", func() bool { return c.Stats().DownloadedBytes > cb })
	hits := c.Stats().Hits
	gets := f.counting.gets.Load()
	h, err := c.Acquire(context.Background(), Object{Key: f.m.SegmentKey(&seg), Size: seg.ObjectBytes}, 1)
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	if c.Stats().Hits != hits+1 || f.counting.gets.Load() != gets {
		t.Fatal("chunk 1 was not read ahead")
	}
}

func TestRemoteReadOffsetForTimestamp(t *testing.T) {
	var bs []rrBatch
	ts := int64(1_700_000_000_000)
	codecs := []struct {
		codec  int8
		xerial bool
	}{{segments.CompressionNone, false}, {segments.CompressionGzip, false}, {segments.CompressionSnappy, false},
		{segments.CompressionSnappy, true}, {segments.CompressionLZ4, false}, {segments.CompressionZstd, false}}
	for i := range 48 {
		cd := codecs[i%len(codecs)]
		// Record timestamps that go back and forth inside a batch.
		b := rrBatch{records: 1 + i%5, valueSize: 30 + i%40, baseTs: ts, tsSteps: []int64{3, 1, 5}, codec: cd.codec, xerial: cd.xerial}
		bs = append(bs, b)
		ts += 20
	}
	f := newRRFixture(t, bs)
	r, _ := newRRReader(t, f.store, CacheOptions{ChunkBytes: 200, MaxBytes: 200 * 16})
	ctx := context.Background()
	found := 0
	for q := int64(1_700_000_000_000) - 5; q < ts+30; q++ {
		wantOff, wantTs, wantOK, err := f.log.OffsetForTimestamp(q)
		if err != nil {
			t.Fatal(err)
		}
		if wantOK && segments.Offset(wantOff) >= f.m.EndOffset() {
			wantOK = false // in the local active segment, not tiered
		}
		off, gotTs, ok, err := r.OffsetForTimestamp(ctx, f.m, q)
		if err != nil {
			t.Fatalf("OffsetForTimestamp(%d): %v", q, err)
		}
		if ok != wantOK || (ok && (off != wantOff || gotTs != wantTs)) {
			t.Fatalf("OffsetForTimestamp(%d) = (%d, %d, %v), the local log says (%d, %d, %v)", q, off, gotTs, ok, wantOff, wantTs, wantOK)
		}
		if ok {
			found++
		}
	}
	if found == 0 {
		t.Fatal("no timestamp was found: the test checks nothing")
	}
	// Below the log start: the first record at or after it.
	m, _ := f.m.WithoutBefore(f.m.Segments[0].BaseOffset + 3)
	off, _, ok, err := r.OffsetForTimestamp(ctx, m, 0)
	if err != nil || !ok || off != m.LogStartOffset {
		t.Fatalf("OffsetForTimestamp(0) with log start %d: (%d, %v, %v)", m.LogStartOffset, off, ok, err)
	}
}
