package tiering

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratalog/strata/segments"
)

// testClock is a clock the test moves by hand; safe for the cache's
// goroutines.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Unix(1_700_000_000, 0)} }

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// A chunk whose bytes do not match the manifest's checksum is never
// handed out or cached; it is quarantined with a doubling backoff (no
// download per Acquire), and read again once the object is repaired.
func TestCacheRefusesCorruptChunk(t *testing.T) {
	s := rrCountingMem(t)
	good := rrPutObject(t, s, 1000)
	obj := Object{Key: cacheTestKey, Size: 1000, ChunkCRC32C: chunkSums(good, 256)}
	clk := newTestClock()
	c := newRRCache(t, s, CacheOptions{ChunkBytes: 256, MaxBytes: 4096, ReadAheadChunks: -1, Now: clk.now})
	ctx := context.Background()

	bad := bytes.Clone(good)
	for i := 300; i < 304; i++ {
		bad[i] ^= 0xff // four bytes of chunk 1
	}
	if _, err := s.Put(ctx, cacheTestKey, bytes.NewReader(bad), int64(len(bad))); err != nil {
		t.Fatal(err)
	}

	h, err := c.Acquire(ctx, obj, 0)
	if err != nil {
		t.Fatalf("chunk 0 (intact): %v", err)
	}
	if !h.Verified() || !bytes.Equal(rrChunkBytes(t, h), good[:256]) {
		t.Fatal("chunk 0: not verified, or not the object's bytes")
	}
	h.Release()

	checkCorrupt := func(what string) {
		t.Helper()
		h, err := c.Acquire(ctx, obj, 1)
		var ce *segments.CorruptError
		if h != nil || !errors.As(err, &ce) || ce.Path != cacheTestKey || ce.Position != 256 || !strings.Contains(ce.Reason, "[256, 512)") {
			t.Fatalf("%s: Acquire of the corrupt chunk = %v, %v; want a CorruptError naming the key and bytes [256, 512)", what, h, err)
		}
	}
	gets := func() int64 { return s.gets.Load() }
	checkCorrupt("first read")
	if n := len(rrCacheFiles(t, c.opts.Dir, chunkSuffix)) + len(rrCacheFiles(t, c.opts.Dir, tempSuffix)); n != 1 {
		t.Fatalf("%d cache files, want only chunk 0's", n)
	}
	if st := c.Stats(); st.Corrupt != 1 || st.Quarantined != 1 || st.Chunks != 1 {
		t.Fatalf("stats %+v; want 1 corrupt, 1 quarantined, only chunk 0 cached", st)
	}

	// Quarantined: a retry fails at once without a download, and
	// read-ahead skips it.
	n := gets()
	for range 5 {
		checkCorrupt("retry within the quarantine")
	}
	if c.Prefetch(obj, 1) {
		t.Fatal("Prefetch started a download of a quarantined chunk")
	}
	if gets() != n {
		t.Fatalf("%d downloads during the quarantine", gets()-n)
	}
	// After 1 s it is read again, still corrupt: the quarantine doubles.
	clk.advance(DefaultCorruptRetryMin)
	checkCorrupt("after the first quarantine")
	if gets() != n+1 {
		t.Fatalf("%d downloads after the first quarantine ended, want 1", gets()-n)
	}
	clk.advance(3 * DefaultCorruptRetryMin / 2)
	checkCorrupt("within the doubled quarantine")
	if gets() != n+1 {
		t.Fatal("downloaded within the doubled quarantine")
	}
	// The object is repaired; once the quarantine ends the chunk is read,
	// verified and cached.
	if _, err := s.Put(ctx, cacheTestKey, bytes.NewReader(good), int64(len(good))); err != nil {
		t.Fatal(err)
	}
	clk.advance(DefaultCorruptRetryMin)
	h, err = c.Acquire(ctx, obj, 1)
	if err != nil {
		t.Fatalf("after the repair: %v", err)
	}
	if !h.Verified() || !bytes.Equal(rrChunkBytes(t, h), good[256:512]) {
		t.Fatal("after the repair: chunk 1 not verified or not the object's bytes")
	}
	h.Release()
	if st := c.Stats(); st.Quarantined != 0 {
		t.Fatalf("stats %+v after the repair; want nothing quarantined", st)
	}
}

// The quarantine's backoff doubles up to DefaultCorruptRetryMax and no
// further.
func TestCacheQuarantineBackoffBounded(t *testing.T) {
	s := rrCountingMem(t)
	good := rrPutObject(t, s, 300)
	obj := Object{Key: cacheTestKey, Size: 300, ChunkCRC32C: chunkSums(good, 256)}
	obj.ChunkCRC32C[0] ^= 1 // the manifest disagrees with the object for good
	clk := newTestClock()
	c := newRRCache(t, s, CacheOptions{ChunkBytes: 256, MaxBytes: 4096, ReadAheadChunks: -1, Now: clk.now})
	want := DefaultCorruptRetryMin
	for round := range 12 {
		n := s.gets.Load()
		if _, err := c.Acquire(context.Background(), obj, 0); err == nil {
			t.Fatal("a corrupt chunk was handed out")
		}
		if s.gets.Load() != n+1 {
			t.Fatalf("round %d: %d downloads, want 1", round, s.gets.Load()-n)
		}
		c.mu.Lock()
		got := c.mu.bad[chunkID{cacheTestKey, 0}].until.Sub(clk.now())
		c.mu.Unlock()
		if got != want {
			t.Fatalf("round %d: quarantine %v, want %v", round, got, want)
		}
		clk.advance(got)
		want = min(2*want, DefaultCorruptRetryMax)
	}
}

// Quarantine drops a chunk that a caller found corrupt: an unpinned one at
// once, a pinned one when released; Acquire then fails until the backoff
// passes.
func TestCacheQuarantineByCaller(t *testing.T) {
	s := rrCountingMem(t)
	rrPutObject(t, s, 1000)
	obj := Object{Key: cacheTestKey, Size: 1000}
	clk := newTestClock()
	c := newRRCache(t, s, CacheOptions{ChunkBytes: 256, MaxBytes: 4096, ReadAheadChunks: -1, Now: clk.now})
	ctx := context.Background()
	h0, err := c.Acquire(ctx, obj, 0)
	if err != nil {
		t.Fatal(err)
	}
	if h0.Verified() {
		t.Fatal("a chunk of an object without checksums reports Verified")
	}
	h1, _ := c.Acquire(ctx, obj, 1)
	h1.Release()
	bad := &segments.CorruptError{Path: cacheTestKey, Position: 10, Offset: 5, Reason: "test"}
	c.Quarantine(cacheTestKey, 0, bad)
	c.Quarantine(cacheTestKey, 1, bad)
	if n := len(rrCacheFiles(t, c.opts.Dir, chunkSuffix)); n != 1 {
		t.Fatalf("%d chunk files after quarantining a pinned and an unpinned chunk, want the pinned one", n)
	}
	if _, err := c.Acquire(ctx, obj, 1); !errors.As(err, new(*segments.CorruptError)) {
		t.Fatalf("Acquire of a quarantined chunk: %v", err)
	}
	h0.Release()
	if n := len(rrCacheFiles(t, c.opts.Dir, chunkSuffix)); n != 0 {
		t.Fatalf("%d chunk files after the pinned one was released, want 0", n)
	}
	clk.advance(DefaultCorruptRetryMin)
	h, err := c.Acquire(ctx, obj, 1)
	if err != nil {
		t.Fatalf("after the quarantine: %v", err)
	}
	h.Release()
}

// rrBatchAt returns the position of a byte in the middle of the records of
// the middle batch of a log part (not in a header).
func rrValueByte(t *testing.T, logPart []byte) int64 {
	t.Helper()
	var starts []int64
	for pos := int64(0); pos < int64(len(logPart)); {
		h, err := segments.ParseBatchHeader(logPart[pos:])
		if err != nil {
			t.Fatal(err)
		}
		starts = append(starts, pos)
		pos += h.Size()
	}
	mid := starts[len(starts)/2]
	h, _ := segments.ParseBatchHeader(logPart[mid:])
	return mid + segments.BatchHeaderSize + (h.Size()-segments.BatchHeaderSize)/2
}

// corruptObject flips 4 bytes of seg's object at pos in the store and
// returns the intact bytes.
func (f *rrFixture) corruptObject(t *testing.T, seg *Segment, pos int64) []byte {
	t.Helper()
	key := f.m.SegmentKey(seg)
	good := f.objects[key]
	bad := bytes.Clone(good)
	for i := pos; i < pos+4; i++ {
		bad[i] ^= 0xa5
	}
	if _, err := f.store.Put(context.Background(), key, bytes.NewReader(bad), int64(len(bad))); err != nil {
		t.Fatal(err)
	}
	return good
}

// Reads of a segment whose object was damaged in the store fail with a
// CorruptError naming the object and the segment's offsets, whether the
// manifest has chunk checksums (verified at download) or not (batches
// verified before serving); no read ever returns other bytes than the
// local log's, the other segments read fine, and once the object is
// repaired (and the quarantine over) the damaged range reads again.
func TestRemoteReadNeverServesCorruptBytes(t *testing.T) {
	for _, sums := range []struct {
		name       string
		chunkBytes int64
	}{{"chunk checksums", 300}, {"no chunk checksums (manifest version 1)", 0}, {"chunk checksums at another chunk size", 512}} {
		t.Run(sums.name, func(t *testing.T) {
			f := newRRFixtureSums(t, rrMixedBatches(), sums.chunkBytes)
			clk := newTestClock()
			c := newRRCache(t, f.store, CacheOptions{ChunkBytes: 300, MaxBytes: 300 * 16, Now: clk.now})
			r := NewRemoteReader(f.store, c, ReaderOptions{})
			seg := f.m.Segments[1]
			key := f.m.SegmentKey(&seg)
			good := f.corruptObject(t, &seg, rrValueByte(t, f.objects[key][:seg.Parts.Log]))

			ctx := context.Background()
			for from := seg.BaseOffset; from < seg.EndOffset; from++ {
				res, err := r.Read(ctx, f.m, from, 1<<20, true)
				if err == nil {
					// A read wholly before the damaged batch is fine;
					// it must equal the local log.
					got := rrResultBytes(t, res)
					want := f.localBytes(t, from, 1<<20, true)
					res.Release()
					if !bytes.Equal(got, want) {
						t.Fatalf("read at %d returned %d bytes that differ from the local log", from, len(got))
					}
					continue
				}
				var ce *segments.CorruptError
				if !errors.As(err, &ce) || ce.Path != key || !strings.Contains(ce.Reason, fmt.Sprintf("segment [%d, %d)", seg.BaseOffset, seg.EndOffset)) {
					t.Fatalf("read at %d: %v; want a CorruptError naming %s and segment [%d, %d)", from, err, key, seg.BaseOffset, seg.EndOffset)
				}
			}
			if _, err := r.Read(ctx, f.m, seg.BaseOffset, 1<<20, true); err == nil {
				t.Fatal("a read of the whole damaged segment succeeded")
			}
			if st := c.Stats(); st.Corrupt == 0 || st.Quarantined == 0 {
				t.Fatalf("cache stats %+v; want the damaged chunk counted and quarantined", st)
			}
			for _, other := range []Segment{f.m.Segments[0], f.m.Segments[2]} {
				res := checkRead(t, f, r, other.BaseOffset, 1<<20, true)
				res.Release()
			}

			// Repaired: after the first quarantine (reads that failed
			// during it did not extend it) the range reads again.
			if _, err := f.store.Put(ctx, key, bytes.NewReader(good), int64(len(good))); err != nil {
				t.Fatal(err)
			}
			clk.advance(DefaultCorruptRetryMin)
			res := checkRead(t, f, r, seg.BaseOffset, 1<<20, true)
			res.Release()
		})
	}
}

// A damaged batch header (framing) is caught too, not only a damaged
// record.
func TestRemoteReadCorruptFramingWithoutChunkSums(t *testing.T) {
	f := newRRFixture(t, rrMixedBatches())
	r, c := newRRReader(t, f.store, CacheOptions{ChunkBytes: 300, MaxBytes: 300 * 16})
	seg := f.m.Segments[1]
	// The last offset delta of the segment's first batch: offsets that
	// no longer follow on.
	f.corruptObject(t, &seg, 23)
	_, err := r.Read(context.Background(), f.m, seg.BaseOffset, 1<<20, true)
	if !errors.As(err, new(*segments.CorruptError)) {
		t.Fatalf("read of a segment with a damaged batch header: %v; want a CorruptError", err)
	}
	if st := c.Stats(); st.Quarantined == 0 {
		t.Fatalf("stats %+v: the damaged chunk is not quarantined", st)
	}
}
