package tiering

// The remote read path's on-disk chunk cache: fixed-size byte ranges
// ("chunks") of segment objects, downloaded with ranged GETs into files of
// a cache directory and handed to readers as open files, so a Fetch of
// tiered data is served with sendfile like a local one.
//
// Design:
//   - A chunk is identified by object key + chunk index; chunk i covers
//     [i*ChunkBytes, min((i+1)*ChunkBytes, object size)). Objects are
//     immutable (their keys carry a unique id), so a cached chunk never
//     goes stale and never needs revalidation.
//   - One download per chunk, shared by every caller that wants it while
//     it runs (singleflight): the download runs in its own goroutine and
//     callers wait for it with their own context. When every waiter has
//     given up, the download is cancelled and forgotten; a later caller
//     starts afresh.
//   - A download is a ranged Get copied into a temporary file (no fsync:
//     this is a cache), checked for the expected length and, when the
//     manifest recorded the chunk's CRC-32C (Object.ChunkCRC32C), for that
//     checksum, then renamed to its final name. A failed, short, corrupt
//     or cancelled download removes its temporary file: nothing is left
//     behind and nothing is cached, so no unverified byte of a checksummed
//     object is ever handed out.
//   - A chunk that fails verification (or that a caller found corrupt,
//     Quarantine) is quarantined: Acquire fails at once with the same
//     error until a backoff passes (DefaultCorruptRetryMin, doubling up to
//     DefaultCorruptRetryMax while the chunk stays corrupt), so a consumer
//     retrying a damaged range does not download it again and again, and
//     a repaired object is read again once the backoff ends.
//   - The cache is bounded by MaxBytes, counting finished chunks and the
//     full expected size of downloads in flight. Unpinned chunks are
//     evicted least recently used first. A pinned chunk (one a reader
//     holds, or one being downloaded) is never evicted. When the pinned
//     chunks alone fill the bound, a demand download still proceeds and
//     the cache exceeds MaxBytes temporarily: failing a Fetch because
//     other Fetches are in flight would turn load into errors, and the
//     excess is itself bounded by the readers' concurrency (a Read pins at
//     most ⌈maxBytes/ChunkBytes⌉+1 chunks). The cache shrinks back under
//     the bound as pins are released. Read-ahead never exceeds the bound:
//     it is skipped instead.
//   - At startup the cache directory is emptied of everything the cache
//     writes (files ending in ".chunk" or ".tmp"): re-indexing would need
//     the object key of every file, and a cold cache only costs GETs.
//     Other files are left alone (and not counted).
//
// Locking: ChunkCache.mu guards the chunk table, the LRU list and the
// size. No I/O happens under it except unlinking and closing evicted
// files.

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratalog/strata/internal/backoff"
	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/segments"
)

// Defaults of CacheOptions.
const (
	DefaultChunkBytes      = 8 << 20 // 8 MiB: a few dozen GETs per 1 GiB segment
	DefaultCacheMaxBytes   = 1 << 30 // 1 GiB
	DefaultReadAheadChunks = 4
	// DefaultDownloadTimeout bounds one chunk download (and so a
	// read-ahead nobody waits for): 8 MiB in 2 minutes is ~70 KB/s, far
	// below any healthy store.
	DefaultDownloadTimeout = 2 * time.Minute
	// DefaultCorruptRetryMin and DefaultCorruptRetryMax bound how long a
	// corrupt chunk stays quarantined: 1 s after its first failure,
	// doubling on each failure after that up to 5 minutes. A transient
	// corruption (a flipped bit in transit) costs a consumer a second; a
	// damaged object costs one download per 5 minutes, not one per fetch.
	DefaultCorruptRetryMin = time.Second
	DefaultCorruptRetryMax = 5 * time.Minute
	// maxQuarantined bounds the quarantine table; when full, the entry
	// that ends first goes (its chunk may then be downloaded once more).
	maxQuarantined = 1024
)

// CacheOptions configure a ChunkCache. Zero fields take the defaults.
type CacheOptions struct {
	// Dir is the cache directory; created if missing, emptied of cache
	// files at start. Required.
	Dir string
	// ChunkBytes is the size of a chunk (the last chunk of an object is
	// shorter). Default DefaultChunkBytes.
	ChunkBytes int64
	// MaxBytes bounds the cache's disk use (see the package comment on
	// pinned chunks). Default DefaultCacheMaxBytes. Must be at least
	// ChunkBytes.
	MaxBytes int64
	// ReadAheadChunks is the most background read-ahead downloads in
	// flight at once. Default DefaultReadAheadChunks; negative disables
	// read-ahead.
	ReadAheadChunks int
	// DownloadTimeout bounds a single chunk download. Default
	// DefaultDownloadTimeout.
	DownloadTimeout time.Duration
	// Now is the clock of quarantines (default time.Now).
	Now func() time.Time
}

func (o CacheOptions) withDefaults() (CacheOptions, error) {
	if o.Dir == "" {
		return o, errors.New("tiering: chunk cache needs a directory")
	}
	if o.ChunkBytes == 0 {
		o.ChunkBytes = DefaultChunkBytes
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultCacheMaxBytes
	}
	if o.ReadAheadChunks == 0 {
		o.ReadAheadChunks = DefaultReadAheadChunks
	}
	if o.DownloadTimeout <= 0 {
		o.DownloadTimeout = DefaultDownloadTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.ChunkBytes < 0 || o.ChunkBytes > 1<<31:
		return o, fmt.Errorf("tiering: chunk cache ChunkBytes %d outside (0, 2 GiB]", o.ChunkBytes)
	case o.MaxBytes < o.ChunkBytes:
		return o, fmt.Errorf("tiering: chunk cache MaxBytes %d is below ChunkBytes %d", o.MaxBytes, o.ChunkBytes)
	}
	return o, nil
}

// copyBufferBytes is the write size of a chunk download.
const copyBufferBytes = 1 << 20

// ErrCacheClosed: the chunk cache has been closed.
var ErrCacheClosed = errors.New("tiering: chunk cache closed")

// Cache file suffixes: finished chunks and downloads in progress.
const (
	chunkSuffix = ".chunk"
	tempSuffix  = ".tmp"
)

// ChunkCache caches chunks of objects of one store in a directory. Safe for
// concurrent use.
type ChunkCache struct {
	store objectstore.Store
	opts  CacheOptions

	// ctx is the parent of every download; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // download goroutines

	readAhead chan struct{} // semaphore: read-aheads in flight

	hits, misses, downloads, downloadedBytes, failures, corrupt atomic.Int64

	mu struct {
		sync.Mutex
		chunks map[chunkID]*chunk
		lru    list.List // of *chunk: finished, unpinned; front = most recent
		size   int64     // finished chunks + reserved size of downloads
		seq    uint64    // makes file names unique per download
		bad    map[chunkID]*quarantine
		closed bool
	}
}

type chunkID struct {
	key   string
	index int64
}

// quarantine is a chunk found corrupt: Acquire fails with err until
// until; retry gives the length of each quarantine, doubling with every
// failure.
type quarantine struct {
	err   error
	until time.Time
	retry backoff.Backoff // DefaultCorruptRetryMin doubling to DefaultCorruptRetryMax
}

// Object is what the cache needs to know of a segment object: its key, its
// size (from the manifest) and, when the manifest checksummed it in pieces
// of the cache's chunk size, each chunk's CRC-32C.
type Object struct {
	Key  string
	Size int64
	// ChunkCRC32C[i] is chunk i's CRC-32C (len = the number of chunks):
	// every download of a chunk is verified against it before the chunk
	// is cached or handed out. nil: chunks are downloaded unverified and
	// Chunk.Verified reports false; the caller must verify what it serves.
	ChunkCRC32C CRCs
}

// chunk is one cache entry. Fields other than the immutable ones are
// guarded by ChunkCache.mu.
type chunk struct {
	id     chunkID
	offset int64 // in the object
	size   int64 // expected (and, once ready, actual) length
	path   string

	done chan struct{} // closed when the download ends
	// Set before done is closed, read after.
	file *os.File
	err  error

	sum    uint32 // expected CRC-32C, if verify
	verify bool   // the download checks sum: a chunk handed out matched it

	refs      int                // pins: readers and waiters
	readAhead bool               // download started by read-ahead (no waiter needed)
	cancel    context.CancelFunc // cancels the download
	elem      *list.Element      // in lru when finished and unpinned
	gone      bool               // removed from the table (evicted, failed or abandoned)
}

// NewChunkCache opens a cache over store in opts.Dir, removing the cache
// files a previous run left there.
func NewChunkCache(store objectstore.Store, opts CacheOptions) (*ChunkCache, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("tiering: chunk cache directory: %w", err)
	}
	ents, err := os.ReadDir(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("tiering: chunk cache directory: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && (strings.HasSuffix(n, chunkSuffix) || strings.HasSuffix(n, tempSuffix)) {
			if err := os.Remove(filepath.Join(opts.Dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("tiering: emptying chunk cache: %w", err)
			}
		}
	}
	c := &ChunkCache{store: store, opts: opts}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if opts.ReadAheadChunks > 0 {
		c.readAhead = make(chan struct{}, opts.ReadAheadChunks)
	}
	c.mu.chunks = make(map[chunkID]*chunk)
	c.mu.bad = make(map[chunkID]*quarantine)
	return c, nil
}

// ChunkBytes is the cache's chunk size.
func (c *ChunkCache) ChunkBytes() int64 { return c.opts.ChunkBytes }

// ReadAheadChunks is how many read-ahead downloads may run at once (0:
// read-ahead is off).
func (c *ChunkCache) ReadAheadChunks() int { return max(c.opts.ReadAheadChunks, 0) }

// CacheStats are the cache's counters, for metrics.
type CacheStats struct {
	Hits            int64 // acquisitions served by a finished chunk
	Misses          int64 // acquisitions that started or joined a download
	Downloads       int64 // chunk downloads started (ranged GETs)
	DownloadedBytes int64 // bytes of completed downloads
	Failures        int64 // downloads that failed (cancellations and corrupt chunks included)
	Corrupt         int64 // chunks quarantined: failed verification, or Quarantine
	SizeBytes       int64 // current size: finished chunks + downloads in flight
	Chunks          int   // chunks in the table (finished or downloading)
	PinnedChunks    int   // chunks held by readers or waiters
	Quarantined     int   // chunks in quarantine now (or whose quarantine ended and that were not read since)
}

// Stats returns the counters and the current size.
func (c *ChunkCache) Stats() CacheStats {
	s := CacheStats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Downloads: c.downloads.Load(),
		DownloadedBytes: c.downloadedBytes.Load(), Failures: c.failures.Load(), Corrupt: c.corrupt.Load(),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.SizeBytes = c.mu.size
	s.Chunks = len(c.mu.chunks)
	s.Quarantined = len(c.mu.bad)
	for _, ch := range c.mu.chunks {
		if ch.refs > 0 {
			s.PinnedChunks++
		}
	}
	return s
}

// Chunk is a pinned, downloaded chunk: its file stays open and on disk
// until Release. The file must be read with ReadAt (or sendfile at an
// explicit offset) only.
type Chunk struct {
	c        *ChunkCache
	ch       *chunk
	released atomic.Bool
}

// File is the chunk's open file; byte i of it is byte Offset()+i of the
// object.
func (h *Chunk) File() *os.File { return h.ch.file }

// Offset is the chunk's first byte in the object.
func (h *Chunk) Offset() int64 { return h.ch.offset }

// Size is the chunk's length.
func (h *Chunk) Size() int64 { return h.ch.size }

// Verified reports whether the chunk's bytes were checked against a
// CRC-32C from the manifest when downloaded. An unverified chunk (an
// Object without chunk checksums) must be verified by the caller before
// its bytes are served.
func (h *Chunk) Verified() bool { return h.ch.verify }

// Release unpins the chunk; it may then be evicted. Safe to call more than
// once.
func (h *Chunk) Release() {
	if h.released.CompareAndSwap(false, true) {
		h.c.unpin(h.ch)
	}
}

// chunkRange returns chunk index's byte range in obj, after checking that
// obj's chunk checksums, if it has any, are one per chunk.
func (c *ChunkCache) chunkRange(obj Object, index int64) (off, n int64, err error) {
	off = index * c.opts.ChunkBytes
	if index < 0 || obj.Size <= 0 || off >= obj.Size || off/c.opts.ChunkBytes != index {
		return 0, 0, fmt.Errorf("tiering: chunk %d of a %d-byte object is out of range", index, obj.Size)
	}
	if obj.ChunkCRC32C != nil && int64(len(obj.ChunkCRC32C)) != numChunks(obj.Size, c.opts.ChunkBytes) {
		return 0, 0, fmt.Errorf("tiering: chunk %d of %q: %d chunk checksums for a %d-byte object in %d-byte chunks", index, obj.Key, len(obj.ChunkCRC32C), obj.Size, c.opts.ChunkBytes)
	}
	return off, min(c.opts.ChunkBytes, obj.Size-off), nil
}

// quarantinedLocked returns id's quarantine if it has not ended yet, nil
// otherwise.
func (c *ChunkCache) quarantinedLocked(id chunkID) *quarantine {
	if q := c.mu.bad[id]; q != nil && c.opts.Now().Before(q.until) {
		return q
	}
	return nil
}

// Acquire returns chunk index of obj, pinned: downloading it if needed
// (and verifying it, if obj has chunk checksums), or waiting for the
// download in flight. It returns ctx's error promptly when ctx ends first,
// and a download's error (wrapped with the key and range; objectstore
// sentinels stay matchable) when it fails. A chunk that failed
// verification is a *segments.CorruptError naming the key and byte range;
// while it is quarantined, Acquire returns that error again at once,
// without downloading. The caller must Release the chunk.
func (c *ChunkCache) Acquire(ctx context.Context, obj Object, index int64) (*Chunk, error) {
	off, n, err := c.chunkRange(obj, index)
	if err != nil {
		return nil, err
	}
	id := chunkID{obj.Key, index}
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil, ErrCacheClosed
	}
	if q := c.quarantinedLocked(id); q != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w (quarantined: not downloaded again before %s)", q.err, q.until.Format(time.RFC3339))
	}
	ch := c.mu.chunks[id]
	if ch != nil && ch.size != n {
		// The same key with another size: the caller's manifest and a
		// cached chunk disagree, which immutable keys rule out.
		c.mu.Unlock()
		return nil, fmt.Errorf("tiering: chunk %d of %q: cached as %d bytes, wanted %d", index, obj.Key, ch.size, n)
	}
	if ch == nil {
		ch = c.startLocked(id, off, n, obj.ChunkCRC32C, false)
		c.misses.Add(1)
	} else if ch.file != nil {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	c.pinLocked(ch)
	c.mu.Unlock()

	select {
	case <-ch.done:
	case <-ctx.Done():
		c.unpin(ch)
		return nil, fmt.Errorf("tiering: reading chunk %d of %q: %w", index, obj.Key, ctx.Err())
	}
	if ch.err != nil {
		c.unpin(ch)
		return nil, ch.err
	}
	return &Chunk{c: c, ch: ch}, nil
}

// Prefetch starts downloading chunk index of obj in the background if it
// is not cached, downloading or quarantined, fewer than ReadAheadChunks
// read-aheads are in flight, and it fits in MaxBytes without exceeding it.
// It never blocks and reports whether it started a download.
func (c *ChunkCache) Prefetch(obj Object, index int64) bool {
	if c.readAhead == nil {
		return false
	}
	off, n, err := c.chunkRange(obj, index)
	if err != nil {
		return false
	}
	id := chunkID{obj.Key, index}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed || c.mu.chunks[id] != nil || c.quarantinedLocked(id) != nil {
		return false
	}
	c.evictLocked(n)
	if c.mu.size+n > c.opts.MaxBytes {
		return false
	}
	select {
	case c.readAhead <- struct{}{}:
	default:
		return false
	}
	c.startLocked(id, off, n, obj.ChunkCRC32C, true)
	return true
}

// startLocked adds a downloading entry for id, reserving its size, and
// starts the download, which verifies the chunk against sums[id.index]
// when sums is not nil.
func (c *ChunkCache) startLocked(id chunkID, off, n int64, sums CRCs, readAhead bool) *chunk {
	c.evictLocked(n)
	c.mu.seq++
	ch := &chunk{
		id: id, offset: off, size: n, readAhead: readAhead,
		path: filepath.Join(c.opts.Dir, fileName(id, c.mu.seq)),
		done: make(chan struct{}),
	}
	if sums != nil {
		ch.sum, ch.verify = sums[id.index], true
	}
	var ctx context.Context
	ctx, ch.cancel = context.WithTimeout(c.ctx, c.opts.DownloadTimeout)
	c.mu.chunks[id] = ch
	c.mu.size += n
	c.downloads.Add(1)
	c.wg.Add(1)
	go c.download(ctx, ch)
	return ch
}

// fileName names a chunk's file: a hash of the key (keys may be long and
// hold "/"), the index and a per-download sequence number, so that an
// abandoned download finishing late never touches its successor's file.
func fileName(id chunkID, seq uint64) string {
	h := sha256.Sum256([]byte(id.key))
	return hex.EncodeToString(h[:16]) + "-" + strconv.FormatInt(id.index, 10) + "-" + strconv.FormatUint(seq, 10) + chunkSuffix
}

// download fetches ch and publishes the result.
func (c *ChunkCache) download(ctx context.Context, ch *chunk) {
	defer c.wg.Done()
	f, err := c.fetch(ctx, ch)
	ch.cancel()
	if ch.readAhead {
		<-c.readAhead
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && (ch.gone || c.mu.closed) {
		// Abandoned by every waiter or closed meanwhile, yet finished.
		err = fmt.Errorf("tiering: chunk %d of %q: download abandoned", ch.id.index, ch.id.key)
		f.Close()
		os.Remove(ch.path)
	}
	if err != nil {
		c.failures.Add(1)
		var corrupt *segments.CorruptError
		if errors.As(err, &corrupt) {
			c.quarantineLocked(ch.id, err)
		}
		ch.err = err
		c.removeLocked(ch)
		close(ch.done)
		return
	}
	c.downloadedBytes.Add(ch.size)
	ch.file = f
	if ch.verify {
		delete(c.mu.bad, ch.id) // repaired (or the corruption was transient)
	}
	close(ch.done)
	if ch.refs == 0 {
		ch.elem = c.mu.lru.PushFront(ch)
		c.evictLocked(0)
	}
}

// fetch downloads ch into a temporary file and renames it into place,
// returning the open file. On any failure nothing is left on disk.
func (c *ChunkCache) fetch(ctx context.Context, ch *chunk) (_ *os.File, err error) {
	wrap := func(err error) error {
		return fmt.Errorf("tiering: downloading chunk %d [%d, %d) of %q: %w", ch.id.index, ch.offset, ch.offset+ch.size, ch.id.key, err)
	}
	rc, _, err := c.store.Get(ctx, ch.id.key, ch.offset, ch.size)
	if err != nil {
		return nil, wrap(err)
	}
	defer rc.Close()
	tmp := strings.TrimSuffix(ch.path, chunkSuffix) + tempSuffix
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, wrap(err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// At most one byte past the expected size, to detect a longer body.
	// Large writes: io.Copy's 32 KiB pieces cost a write(2) each. The
	// checksum is computed on the way, so verifying costs no second read.
	var w io.Writer = f
	var h hash.Hash32
	if ch.verify {
		h = crc32.New(crc32cTable)
		w = io.MultiWriter(f, h)
	}
	n, err := io.CopyBuffer(w, io.LimitReader(rc, ch.size+1), make([]byte, min(ch.size+1, copyBufferBytes)))
	if err != nil {
		return nil, wrap(err)
	}
	if n != ch.size {
		return nil, wrap(fmt.Errorf("%w: got %d bytes, expected %d (object shorter or longer than the manifest says)", io.ErrUnexpectedEOF, n, ch.size))
	}
	if ch.verify {
		if got := h.Sum32(); got != ch.sum {
			return nil, &segments.CorruptError{Path: ch.id.key, Position: ch.offset, Offset: -1,
				Reason: fmt.Sprintf("chunk %d, object bytes [%d, %d): CRC-32C %#08x, the manifest records %#08x", ch.id.index, ch.offset, ch.offset+ch.size, got, ch.sum)}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap(err)
	}
	if err := os.Rename(tmp, ch.path); err != nil {
		return nil, wrap(err)
	}
	return f, nil
}

func (c *ChunkCache) pinLocked(ch *chunk) {
	ch.refs++
	if ch.elem != nil {
		c.mu.lru.Remove(ch.elem)
		ch.elem = nil
	}
}

// unpin drops a pin. A finished chunk without pins joins the LRU list; a
// download nobody waits for any more (and that read-ahead did not start)
// is cancelled and forgotten.
func (c *ChunkCache) unpin(ch *chunk) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch.refs--
	if ch.refs < 0 {
		panic("tiering: chunk unpinned more than pinned")
	}
	if ch.refs > 0 {
		return
	}
	select {
	case <-ch.done:
	default:
		if !ch.readAhead && !ch.gone {
			ch.cancel()
			c.removeLocked(ch)
		}
		return
	}
	if ch.gone {
		// Evicted or the cache closed while pinned: its file goes now.
		c.dropFile(ch)
		return
	}
	if ch.err == nil {
		ch.elem = c.mu.lru.PushFront(ch)
		c.evictLocked(0)
	}
}

// Quarantine drops chunk index of key from the cache (a pinned one goes
// when its last pin is released; a download in flight is abandoned) and
// makes Acquire fail at once with err for it until a backoff passes: for
// a caller that found the bytes of a chunk corrupt after the cache handed
// them out (a chunk of an object without chunk checksums, verified by the
// caller batch by batch).
func (c *ChunkCache) Quarantine(key string, index int64, err error) {
	id := chunkID{key, index}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return
	}
	c.quarantineLocked(id, err)
	if ch := c.mu.chunks[id]; ch != nil {
		finishedUnpinned := ch.file != nil && ch.refs == 0
		c.removeLocked(ch)
		if finishedUnpinned {
			c.dropFile(ch)
		}
	}
}

// quarantineLocked starts (or, for a chunk quarantined before, doubles)
// id's quarantine, and counts it.
func (c *ChunkCache) quarantineLocked(id chunkID, err error) {
	c.corrupt.Add(1)
	now := c.opts.Now()
	q := c.mu.bad[id]
	if q == nil {
		if len(c.mu.bad) >= maxQuarantined {
			c.evictQuarantineLocked()
		}
		q = &quarantine{retry: backoff.Backoff{Min: DefaultCorruptRetryMin, Max: DefaultCorruptRetryMax}}
		c.mu.bad[id] = q
	}
	q.err, q.until = err, now.Add(q.retry.Next())
}

// evictQuarantineLocked drops the quarantine that ends first.
func (c *ChunkCache) evictQuarantineLocked() {
	var first chunkID
	var until time.Time
	for id, q := range c.mu.bad {
		if until.IsZero() || q.until.Before(until) {
			first, until = id, q.until
		}
	}
	delete(c.mu.bad, first)
}

// removeLocked takes ch out of the table and releases its size. Its file,
// if any, is the caller's to drop.
func (c *ChunkCache) removeLocked(ch *chunk) {
	if ch.gone {
		return
	}
	ch.gone = true
	if c.mu.chunks[ch.id] == ch {
		delete(c.mu.chunks, ch.id)
	}
	if ch.elem != nil {
		c.mu.lru.Remove(ch.elem)
		ch.elem = nil
	}
	c.mu.size -= ch.size
}

// evictLocked evicts least recently used unpinned chunks until need more
// bytes fit in MaxBytes, or none is left to evict.
func (c *ChunkCache) evictLocked(need int64) {
	for c.mu.size+need > c.opts.MaxBytes {
		e := c.mu.lru.Back()
		if e == nil {
			return
		}
		ch := e.Value.(*chunk)
		c.removeLocked(ch)
		c.dropFile(ch)
	}
}

// dropFile closes and unlinks an unpinned chunk's file.
func (c *ChunkCache) dropFile(ch *chunk) {
	if ch.file != nil {
		ch.file.Close()
		os.Remove(ch.path)
		ch.file = nil
	}
}

// Close cancels downloads, waits for their goroutines and removes the
// cache files of unpinned chunks; pinned ones go when released. Acquire
// fails with ErrCacheClosed afterwards.
func (c *ChunkCache) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.mu.chunks {
		pinned := ch.refs > 0
		c.removeLocked(ch)
		if !pinned {
			c.dropFile(ch)
		}
	}
	return nil
}

// ReadAt reads len(p) bytes of obj at off, through the cache, pinning
// each chunk only while it copies from it.
func (c *ChunkCache) ReadAt(ctx context.Context, obj Object, p []byte, off int64) error {
	for len(p) > 0 {
		if off < 0 || off >= obj.Size {
			return fmt.Errorf("tiering: read of %q at %d beyond its %d bytes", obj.Key, off, obj.Size)
		}
		h, err := c.Acquire(ctx, obj, off/c.opts.ChunkBytes)
		if err != nil {
			return err
		}
		n, err := h.File().ReadAt(p[:min(int64(len(p)), h.Offset()+h.Size()-off)], off-h.Offset())
		h.Release()
		if err != nil {
			return fmt.Errorf("tiering: reading cached chunk of %q: %w", obj.Key, err)
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}
