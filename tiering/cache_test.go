package tiering

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stratalog/strata/objectstore"
)

const cacheTestKey = "topics/orders/0123456789abcdeffedcba9876543210/3/segments/x.seg"

// rrPutObject stores n patterned bytes under cacheTestKey.
func rrPutObject(t *testing.T, s objectstore.Store, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	if _, err := s.Put(context.Background(), cacheTestKey, bytes.NewReader(b), int64(n)); err != nil {
		t.Fatal(err)
	}
	return b
}

func rrCountingMem(t *testing.T) *rrCountingStore {
	mem := objectstore.NewMem()
	t.Cleanup(func() { mem.Close() })
	return &rrCountingStore{Store: mem}
}

func rrChunkBytes(t *testing.T, h *Chunk) []byte {
	t.Helper()
	b := make([]byte, h.Size())
	if _, err := h.File().ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCacheAcquireContentAndHits(t *testing.T) {
	s := rrCountingMem(t)
	obj := rrPutObject(t, s, 1000)
	c := newRRCache(t, s, CacheOptions{ChunkBytes: 256, MaxBytes: 4096})
	ctx := context.Background()
	for round := range 2 {
		for i := int64(0); i < 4; i++ {
			h, err := c.Acquire(ctx, Object{Key: cacheTestKey, Size: int64(len(obj))}, i)
			if err != nil {
				t.Fatal(err)
			}
			want := obj[i*256 : min(int64(len(obj)), (i+1)*256)]
			if got := rrChunkBytes(t, h); !bytes.Equal(got, want) || h.Offset() != i*256 {
				t.Fatalf("round %d chunk %d: offset %d, %d bytes, not the object's bytes [%d, +%d)", round, i, h.Offset(), len(got), i*256, len(want))
			}
			h.Release()
			h.Release() // idempotent
		}
	}
	st := c.Stats()
	if st.Hits != 4 || st.Misses != 4 || st.Downloads != 4 || s.gets.Load() != 4 || st.DownloadedBytes != 1000 || st.SizeBytes != 1000 {
		t.Fatalf("stats %+v, %d gets; want 4 hits, 4 misses, 4 downloads and gets, 1000 bytes", st, s.gets.Load())
	}
	if _, err := c.Acquire(ctx, Object{Key: cacheTestKey, Size: int64(len(obj))}, 4); err == nil {
		t.Fatal("chunk 4 of a 1000-byte object with 256-byte chunks: no error")
	}
	if n := len(rrCacheFiles(t, c.opts.Dir, chunkSuffix)); n != 4 {
		t.Fatalf("%d chunk files, want 4", n)
	}
}

func TestCacheLRUBoundAndPinning(t *testing.T) {
	s := rrCountingMem(t)
	obj := rrPutObject(t, s, 100*10)
	c := newRRCache(t, s, CacheOptions{ChunkBytes: 100, MaxBytes: 300, ReadAheadChunks: -1})
	ctx := context.Background()
	size := int64(len(obj))

	pinned, err := c.Acquire(ctx, Object{Key: cacheTestKey, Size: size}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i < 10; i++ {
		h, err := c.Acquire(ctx, Object{Key: cacheTestKey, Size: size}, i)
		if err != nil {
			t.Fatal(err)
		}
		h.Release()
		st := c.Stats()
		if st.SizeBytes > 300 {
			t.Fatalf("after chunk %d: cache holds %d bytes, bound 300", i, st.SizeBytes)
		}
		if n := len(rrCacheFiles(t, c.opts.Dir, "")); n > 3 {
			t.Fatalf("after chunk %d: %d files in the cache directory, bound is 3 chunks", i, n)
		}
	}
	// The pinned chunk survived all that and is still served from disk.
	if got := rrChunkBytes(t, pinned); !bytes.Equal(got, obj[:100]) {
		t.Fatal("pinned chunk's content changed")
	}
	gets := s.gets.Load()
	pinned.Release()
	h, err := c.Acquire(ctx, Object{Key: cacheTestKey, Size: size}, 0)
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	if s.gets.Load() != gets {
		t.Fatal("chunk 0 was downloaded again: it was evicted while pinned")
	}
	// Least recently used goes first: 0 was just used, so fetching one
	// more chunk evicts chunk 8, not 0 or 9.
	if h, err = c.Acquire(ctx, Object{Key: cacheTestKey, Size: size}, 1); err != nil {
		t.Fatal(err)
	}
	h.Release()
	gets = s.gets.Load()
	for _, i := range []int64{0, 9, 1} {
		if h, err = c.Acquire(ctx, Object{Key: cacheTestKey, Size: size}, i); err != nil {
			t.Fatal(err)
		}
		h.Release()
	}
	if s.gets.Load() != gets {
		t.Fatalf("recently used chunks were evicted: %d extra gets", s.gets.Load()-gets)
	}

	// Everything pinned: a new chunk still comes, the bound is exceeded
	// while the pins last, and the cache shrinks back once released.
	var hs []*Chunk
	for i := int64(2); i < 6; i++ {
		h, err := c.Acquire(ctx, Object{Key: cacheTestKey, Size: size}, i)
		if err != nil {
			t.Fatalf("chunk %d with every other chunk pinned: %v", i, err)
		}
		hs = append(hs, h)
	}
	if st := c.Stats(); st.SizeBytes != 400 || st.PinnedChunks != 4 {
		t.Fatalf("four pinned chunks: stats %+v", st)
	}
	for _, h := range hs {
		h.Release()
	}
	if st := c.Stats(); st.SizeBytes > 300 || st.PinnedChunks != 0 {
		t.Fatalf("after release: stats %+v, want at most 300 bytes and no pins", st)
	}
	if n := len(rrCacheFiles(t, c.opts.Dir, "")); n != 3 {
		t.Fatalf("after release: %d files, want 3", n)
	}
}

func TestCacheConcurrentReadersOneDownload(t *testing.T) {
	s := rrCountingMem(t)
	obj := rrPutObject(t, s, 500)
	c := newRRCache(t, s, CacheOptions{ChunkBytes: 256, MaxBytes: 1024})
	gate := make(chan struct{})
	s.setGate(gate)
	const readers = 8
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Go(func() {
			h, err := c.Acquire(context.Background(), Object{Key: cacheTestKey, Size: 500}, 1)
			if err != nil {
				errs <- err
				return
			}
			defer h.Release()
			if got := rrChunkBytes(t, h); !bytes.Equal(got, obj[256:]) {
				errs <- errors.New("wrong chunk content")
			}
		})
	}
	// Every reader is waiting (each counts a miss before it waits).
	rrWaitFor(t, "all readers to wait for the chunk", func() bool { return c.Stats().Misses == readers })
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if g, st := s.gets.Load(), c.Stats(); g != 1 || st.Downloads != 1 {
		t.Fatalf("%d readers of one chunk caused %d gets, %d downloads; want 1", readers, g, st.Downloads)
	}
}

func TestCacheFailingStoreLeavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault objectstore.Fault
	}{
		{"error", objectstore.Fault{Ops: objectstore.OpGet, Kind: objectstore.FaultError}},
		{"short read", objectstore.Fault{Ops: objectstore.OpGet, Kind: objectstore.FaultPartial, N: 100}},
		{"lost reply", objectstore.Fault{Ops: objectstore.OpGet, Kind: objectstore.FaultErrorAfter}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := objectstore.NewMem()
			defer mem.Close()
			obj := rrPutObject(t, mem, 1000)
			f := objectstore.NewFaulty(mem, 1)
			f.Add(tc.fault)
			c := newRRCache(t, f, CacheOptions{ChunkBytes: 512, MaxBytes: 2048})
			_, err := c.Acquire(context.Background(), Object{Key: cacheTestKey, Size: int64(len(obj))}, 0)
			if !errors.Is(err, objectstore.ErrInjected) {
				t.Fatalf("Acquire through a failing store: %v, want ErrInjected", err)
			}
			if files := rrCacheFiles(t, c.opts.Dir, ""); len(files) != 0 {
				t.Fatalf("failed download left %v", files)
			}
			if st := c.Stats(); st.SizeBytes != 0 || st.Chunks != 0 || st.Failures != 1 {
				t.Fatalf("after a failed download: stats %+v", st)
			}
			// The failure is not cached: the next try downloads.
			f.Clear()
			h, err := c.Acquire(context.Background(), Object{Key: cacheTestKey, Size: int64(len(obj))}, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Release()
			if !bytes.Equal(rrChunkBytes(t, h), obj[:512]) {
				t.Fatal("wrong content after retry")
			}
		})
	}
}

func TestCacheObjectShorterThanManifest(t *testing.T) {
	s := rrCountingMem(t)
	rrPutObject(t, s, 1000)
	c := newRRCache(t, s, CacheOptions{ChunkBytes: 512, MaxBytes: 2048})
	// The caller believes the object is 1200 bytes: chunk 1 comes back short.
	if _, err := c.Acquire(context.Background(), Object{Key: cacheTestKey, Size: 1200}, 1); err == nil {
		t.Fatal("short object: no error")
	}
	if files := rrCacheFiles(t, c.opts.Dir, ""); len(files) != 0 {
		t.Fatalf("short download left %v", files)
	}
}

func TestCacheWaiterHonoursContext(t *testing.T) {
	s := rrCountingMem(t)
	rrPutObject(t, s, 1000)
	c := newRRCache(t, s, CacheOptions{ChunkBytes: 512, MaxBytes: 2048})
	s.setGate(make(chan struct{})) // never opens
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Acquire(ctx, Object{Key: cacheTestKey, Size: 1000}, 0)
		done <- err
	}()
	rrWaitFor(t, "the download to start", func() bool { return s.gets.Load() == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Acquire after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Acquire did not return after its context was cancelled (hang guard)")
	}
	// The abandoned download is cancelled and forgotten.
	rrWaitFor(t, "the abandoned download to end", func() bool { return c.Stats().Failures == 1 })
	if st := c.Stats(); st.SizeBytes != 0 || st.Chunks != 0 {
		t.Fatalf("after an abandoned download: stats %+v", st)
	}
	if files := rrCacheFiles(t, c.opts.Dir, ""); len(files) != 0 {
		t.Fatalf("abandoned download left %v", files)
	}
}

func TestCacheEmptiesDirectoryAtStart(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"stale-0-1.chunk", "stale-1-2.tmp", "keep.txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := newRRCache(t, rrCountingMem(t), CacheOptions{Dir: dir})
	if st := c.Stats(); st.SizeBytes != 0 {
		t.Fatalf("fresh cache size %d", st.SizeBytes)
	}
	files := rrCacheFiles(t, dir, "")
	if len(files) != 1 || filepath.Base(files[0]) != "keep.txt" {
		t.Fatalf("after start the directory holds %v, want only keep.txt", files)
	}
}

func TestCachePrefetch(t *testing.T) {
	s := rrCountingMem(t)
	rrPutObject(t, s, 1000)
	c := newRRCache(t, s, CacheOptions{ChunkBytes: 256, MaxBytes: 512, ReadAheadChunks: 1})
	if !c.Prefetch(Object{Key: cacheTestKey, Size: 1000}, 1) {
		t.Fatal("prefetch of an absent chunk did not start")
	}
	if c.Prefetch(Object{Key: cacheTestKey, Size: 1000}, 1) {
		t.Fatal("prefetch of a chunk in flight started again")
	}
	rrWaitFor(t, "the read-ahead to finish", func() bool { return c.Stats().DownloadedBytes == 256 })
	h, err := c.Acquire(context.Background(), Object{Key: cacheTestKey, Size: 1000}, 1)
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	if st := c.Stats(); st.Hits != 1 || s.gets.Load() != 1 {
		t.Fatalf("acquiring a prefetched chunk: stats %+v, %d gets", st, s.gets.Load())
	}
	// Two pinned chunks fill the bound: read-ahead does not exceed it.
	h0, _ := c.Acquire(context.Background(), Object{Key: cacheTestKey, Size: 1000}, 0)
	h1, _ := c.Acquire(context.Background(), Object{Key: cacheTestKey, Size: 1000}, 1)
	defer h0.Release()
	defer h1.Release()
	if c.Prefetch(Object{Key: cacheTestKey, Size: 1000}, 2) {
		t.Fatal("read-ahead started although it would exceed MaxBytes")
	}
}
