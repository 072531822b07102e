package objectstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"
)

// memStore keeps objects in a map: the mem:// backend, for unit tests. It is
// the one backend that holds whole objects in memory. Conditional puts are
// atomic (one mutex), so every capability is true.
type memStore struct {
	mu struct {
		sync.RWMutex
		objects map[string]*memObject
		closed  bool
	}
}

// memObject is immutable once stored; a Put replaces the pointer.
type memObject struct {
	data []byte
	info ObjectInfo
}

var _ Store = (*memStore)(nil)

// NewMem returns an empty in-memory store.
func NewMem() Store {
	s := &memStore{}
	s.mu.objects = make(map[string]*memObject)
	return s
}

func (s *memStore) Capabilities() Capabilities {
	return Capabilities{PutIfAbsent: true, PutIfMatch: true}
}

func (s *memStore) Put(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error) {
	return s.put(ctx, "put", key, r, size, func(*memObject) error { return nil })
}

func (s *memStore) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error) {
	return s.put(ctx, "put if absent", key, r, size, func(cur *memObject) error {
		if cur != nil {
			return ErrPreconditionFailed
		}
		return nil
	})
}

func (s *memStore) PutIfMatch(ctx context.Context, key, etag string, r io.Reader, size int64) (ObjectInfo, error) {
	return s.put(ctx, "put if match", key, r, size, func(cur *memObject) error {
		if cur == nil {
			return fmt.Errorf("%w (%w)", ErrPreconditionFailed, ErrNotExist)
		}
		if cur.info.ETag != etag {
			return ErrPreconditionFailed
		}
		return nil
	})
}

// put reads the whole body, then, under the lock, asks check about the
// current object and stores the new one if check returns nil.
func (s *memStore) put(ctx context.Context, op, key string, r io.Reader, size int64, check func(cur *memObject) error) (ObjectInfo, error) {
	fail := func(err error) (ObjectInfo, error) {
		return ObjectInfo{}, fmt.Errorf("%s %q: %w", op, key, err)
	}
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	if err := checkSize(size); err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	var buf bytes.Buffer
	if size > 0 {
		// size is the caller's claim: trust it only so far.
		buf.Grow(int(min(size, 64<<20)))
	}
	h := sha256.New()
	if _, err := copyBody(ctx, io.MultiWriter(&buf, h), r, size); err != nil {
		return fail(err)
	}
	obj := &memObject{data: buf.Bytes(), info: ObjectInfo{
		Key:     key,
		Size:    int64(buf.Len()),
		ETag:    hex.EncodeToString(h.Sum(nil)[:16]),
		ModTime: time.Now(),
	}}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return fail(ErrClosed)
	}
	// Checked again under the lock: a cancelled put must not commit.
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := check(s.mu.objects[key]); err != nil {
		return fail(err)
	}
	s.mu.objects[key] = obj
	return obj.info, nil
}

func (s *memStore) lookup(ctx context.Context, op, key string) (*memObject, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s %q: %w", op, key, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mu.closed {
		return nil, fmt.Errorf("%s %q: %w", op, key, ErrClosed)
	}
	obj := s.mu.objects[key]
	if obj == nil {
		return nil, fmt.Errorf("%s %q: %w", op, key, ErrNotExist)
	}
	return obj, nil
}

func (s *memStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, ObjectInfo, error) {
	obj, err := s.lookup(ctx, "get", key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	n, err := checkRange(offset, length, obj.info.Size)
	if err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("get %q: %w", key, err)
	}
	// obj.data is never modified, so the reader needs no copy.
	r := ctxReader{ctx: ctx, r: bytes.NewReader(obj.data[offset : offset+n])}
	return io.NopCloser(r), obj.info, nil
}

func (s *memStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	obj, err := s.lookup(ctx, "stat", key)
	if err != nil {
		return ObjectInfo{}, err
	}
	return obj.info, nil
}

// memListPage is how many entries List copies per lock acquisition, so a
// long listing does not hold the lock while the caller works.
const memListPage = 256

func (s *memStore) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		if err := validatePrefix(prefix); err != nil {
			yield(ObjectInfo{}, err)
			return
		}
		after, first := "", true
		for {
			if err := ctx.Err(); err != nil {
				yield(ObjectInfo{}, fmt.Errorf("list %q: %w", prefix, err))
				return
			}
			page, err := s.listPage(prefix, after, first)
			if err != nil {
				yield(ObjectInfo{}, fmt.Errorf("list %q: %w", prefix, err))
				return
			}
			for _, info := range page {
				if !yield(info, nil) {
					return
				}
			}
			if len(page) < memListPage {
				return
			}
			after, first = page[len(page)-1].Key, false
		}
	}
}

// listPage returns up to memListPage objects with the prefix and keys above
// after (from the start when first), in key order. Sorting every call is
// fine for a test backend.
func (s *memStore) listPage(prefix, after string, first bool) ([]ObjectInfo, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mu.closed {
		return nil, ErrClosed
	}
	var keys []string
	for k := range s.mu.objects {
		if strings.HasPrefix(k, prefix) && (first || k > after) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) > memListPage {
		keys = keys[:memListPage]
	}
	page := make([]ObjectInfo, len(keys))
	for i, k := range keys {
		page[i] = s.mu.objects[k].info
	}
	return page, nil
}

func (s *memStore) Delete(ctx context.Context, keys ...string) error {
	for _, k := range keys {
		if err := ValidateKey(k); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return fmt.Errorf("delete: %w", ErrClosed)
	}
	for _, k := range keys {
		delete(s.mu.objects, k)
	}
	return nil
}

func (s *memStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.closed = true
	s.mu.objects = nil
	return nil
}

// copyBuffers hands out the chunk buffers that Put bodies are copied
// through, so a put allocates nothing per chunk.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyChunkBytes); return &b }}

// copyChunkBytes is the unit in which put bodies are read: large enough to
// keep syscalls few, small enough to multiply by the upload concurrency.
const copyChunkBytes = 256 << 10 // 256 KiB

// copyBody copies r to w in bounded chunks, checking ctx between chunks.
// With size >= 0 it insists on exactly size bytes (ErrSizeMismatch
// otherwise, reading at most one byte past size to find out).
func copyBody(ctx context.Context, w io.Writer, r io.Reader, size int64) (int64, error) {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	src := io.Reader(ctxReader{ctx: ctx, r: r})
	if size >= 0 {
		src = io.LimitReader(src, size+1)
	}
	// onlyWriter hides w's ReadFrom, so every byte goes through src's
	// context check (an *os.File would otherwise copy_file_range).
	n, err := io.CopyBuffer(onlyWriter{w}, src, *bp)
	if err != nil {
		return n, err
	}
	if size >= 0 && n != size {
		if n > size {
			return n, fmt.Errorf("%w: reader has more than %d bytes", ErrSizeMismatch, size)
		}
		return n, fmt.Errorf("%w: reader ended after %d of %d bytes", ErrSizeMismatch, n, size)
	}
	return n, nil
}

type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }
