package objectstore

// netStore is the Store of the network backends: key prefixes, validation,
// buffered multipart puts, ranged gets, paged lists and batched deletes,
// all through a policy (retry.go) and a backend that speaks one SDK (s3.go
// with aws-sdk-go-v2, minio.go with minio-go).
//
// Puts. The body is read into part buffers: an object that fits in one
// part (Options.PartSize) is sent with one PutObject, a larger one by
// multipart upload, PartConcurrency parts at a time, each from its own
// buffer, so a put holds at most (PartConcurrency+1)·PartSize bytes
// whatever the object's size, and every request body can be replayed on
// a retry although the caller's reader cannot. A failed multipart upload
// is aborted (best effort; a bucket lifecycle rule that aborts incomplete
// uploads catches what an abort could not). Conditional puts carry
// If-None-Match: * or If-Match on the request that commits: the PutObject,
// or the CompleteMultipartUpload, which S3 and MinIO both check atomically.
// After a put, a HeadObject reads the stored object's modification time
// (S3 does not return it), so a put costs one more class-B request.
//
// Keys are stored under Location.Prefix; List strips it again. With a
// prefix, a key is limited to MaxKeyBytes minus the prefix's length.
//
// Parts upload on goroutines that the put waits for; nothing else here
// starts a goroutine (the SDKs' HTTP transports run their own).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// backend is one SDK's view of a bucket. Keys are full keys (with the
// store's prefix). ETags are unquoted. Errors are the SDK's own; describe
// decodes them.
type backend interface {
	describe(err error) remoteFailure
	putObject(ctx context.Context, key string, body []byte, c putCond) (etag string, err error)
	createMultipart(ctx context.Context, key string) (uploadID string, err error)
	uploadPart(ctx context.Context, key, uploadID string, number int, body []byte) (etag string, err error)
	completeMultipart(ctx context.Context, key, uploadID string, parts []completedPart, c putCond) (etag string, err error)
	abortMultipart(ctx context.Context, key, uploadID string) error
	head(ctx context.Context, key string) (ObjectInfo, error)
	// get opens the object with an optional HTTP Range header value; the
	// info's Size is the whole object's.
	get(ctx context.Context, key, rng string) (io.ReadCloser, ObjectInfo, error)
	// list returns up to one page of objects with the prefix whose keys
	// sort after startAfter ("" for the start), in key order, and whether
	// more may follow.
	list(ctx context.Context, prefix, startAfter string) ([]ObjectInfo, bool, error)
	// deleteBatch deletes up to 1000 keys; the per-key failures come back
	// in the slice, a failure of the whole request as the error.
	deleteBatch(ctx context.Context, keys []string) ([]keyFailure, error)
	close()
}

// putCond is a conditional put's condition; the zero value is none.
type putCond struct {
	ifNoneMatch bool   // If-None-Match: *
	ifMatch     string // If-Match: "<etag>"
}

func (c putCond) conditional() bool { return c.ifNoneMatch || c.ifMatch != "" }

type completedPart struct {
	number int
	etag   string
}

type keyFailure struct {
	key string // full key
	err error
}

type netStore struct {
	scheme string // "s3" or "minio", for messages
	loc    Location
	b      backend
	p      *policy
	caps   Capabilities
	openFlag
	parts sync.Pool // *[]byte of cap Options.PartSize
}

var _ Store = (*netStore)(nil)

func newNetStore(loc Location, opts Options, b backend, caps Capabilities) *netStore {
	return &netStore{scheme: loc.Scheme, loc: loc, b: b, p: newPolicy(opts, b.describe), caps: caps}
}

// String names the store by its location; it never holds credentials.
func (s *netStore) String() string { return s.scheme + " object store " + s.loc.String() }

// GoString is String, so that %#v shows no internals either.
func (s *netStore) GoString() string { return s.String() }

func (s *netStore) Capabilities() Capabilities { return s.caps }

// fullKey validates key and returns it under the store's prefix.
func (s *netStore) fullKey(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	if len(s.loc.Prefix)+len(key) > MaxKeyBytes {
		return "", fmt.Errorf("%w %q: %d bytes, more than the %d left by the store's prefix %q",
			ErrInvalidKey, truncateForError(key), len(key), MaxKeyBytes-len(s.loc.Prefix), s.loc.Prefix)
	}
	return s.loc.Prefix + key, nil
}

// mapErr translates a failed request's error into the sentinels: missing
// objects, failed preconditions and bad ranges.
func (s *netStore) mapErr(err error) error {
	f := s.b.describe(err)
	switch {
	case f.code == "NoSuchKey" || (f.status == 404 && (f.code == "" || f.code == "NotFound")):
		return fmt.Errorf("%w (%w)", ErrNotExist, err)
	case f.status == 412 || f.code == "PreconditionFailed" || f.code == "ConditionalRequestConflict":
		return fmt.Errorf("%w (%w)", ErrPreconditionFailed, err)
	case f.status == 416 || f.code == "InvalidRange":
		return fmt.Errorf("%w (%w)", ErrInvalidRange, err)
	}
	return err
}

func (s *netStore) Put(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error) {
	return s.put(ctx, "put", key, r, size, putCond{})
}

func (s *netStore) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error) {
	if !s.caps.PutIfAbsent {
		if _, err := s.fullKey(key); err != nil {
			return ObjectInfo{}, err
		}
		return ObjectInfo{}, fmt.Errorf("put if absent %q: %w", key, ErrUnsupported)
	}
	return s.put(ctx, "put if absent", key, r, size, putCond{ifNoneMatch: true})
}

func (s *netStore) PutIfMatch(ctx context.Context, key, etag string, r io.Reader, size int64) (ObjectInfo, error) {
	if !s.caps.PutIfMatch {
		if _, err := s.fullKey(key); err != nil {
			return ObjectInfo{}, err
		}
		return ObjectInfo{}, fmt.Errorf("put if match %q: %w", key, ErrUnsupported)
	}
	if etag == "" {
		// No object has an empty ETag; S3 would read an empty If-Match
		// as no condition at all.
		if _, err := s.fullKey(key); err != nil {
			return ObjectInfo{}, err
		}
		_, err := s.Stat(ctx, key)
		switch {
		case errors.Is(err, ErrNotExist):
			return ObjectInfo{}, fmt.Errorf("put if match %q: %w (%w)", key, ErrPreconditionFailed, ErrNotExist)
		case err != nil && ctx.Err() != nil:
			return ObjectInfo{}, fmt.Errorf("put if match %q: %w", key, err)
		}
		return ObjectInfo{}, fmt.Errorf("put if match %q: %w: empty ETag", key, ErrPreconditionFailed)
	}
	return s.put(ctx, "put if match", key, r, size, putCond{ifMatch: etag})
}

// putError translates the failure of a put's committing request.
func (s *netStore) putError(c putCond, err error) error {
	err = s.mapErr(err)
	if c.ifMatch != "" && errors.Is(err, ErrNotExist) {
		return fmt.Errorf("%w (%w)", ErrPreconditionFailed, err)
	}
	return err
}

func (s *netStore) put(ctx context.Context, op, key string, r io.Reader, size int64, c putCond) (ObjectInfo, error) {
	full, err := s.fullKey(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	fail := func(err error) (ObjectInfo, error) {
		return ObjectInfo{}, fmt.Errorf("%s %q: %w", op, key, err)
	}
	if err := checkSize(size); err != nil {
		return fail(err)
	}
	if err := s.usable(ctx); err != nil {
		return fail(err)
	}
	partSize := s.p.opts.PartSize
	if size > partSize*maxParts {
		partSize = (size + maxParts - 1) / maxParts
		if partSize > 5<<30 {
			return fail(fmt.Errorf("%d bytes: larger than S3's largest object", size))
		}
	}
	src := io.Reader(ctxReader{ctx: ctx, r: r})
	// A body of unknown size starts small and grows (readPart doubles),
	// so that small puts do not take a whole part's memory.
	initial := min(copyChunkBytes, partSize)
	if size >= 0 {
		// One byte more than size, to notice a reader that has more.
		src = io.LimitReader(src, size+1)
		initial = min(size+1, partSize)
	}
	first, eof, err := readPart(src, partSize, make([]byte, 0, initial))
	if err != nil {
		return fail(readError(err))
	}
	var second []byte
	if !eof {
		// The first part is full: one more byte decides between one
		// request and a multipart upload.
		second, eof, err = readPart(src, partSize, s.partBuf(partSize))
		if err != nil {
			return fail(readError(err))
		}
		if len(second) == 0 && eof {
			s.putPartBuf(second)
			second = nil
		}
	}
	var (
		etag  string
		total int64
	)
	if second == nil {
		total = int64(len(first))
		if err := checkTotal(size, total); err != nil {
			return fail(err)
		}
		kind := idempotent
		if c.conditional() {
			kind = conditionalCommit
		}
		err = s.p.do(ctx, kind, func(ctx context.Context) error {
			var err error
			etag, err = s.b.putObject(ctx, full, first, c)
			return err
		})
		if err != nil {
			return fail(s.putError(c, err))
		}
	} else {
		if etag, total, err = s.multipart(ctx, full, src, size, partSize, first, second, eof, c); err != nil {
			return fail(err)
		}
	}
	return s.describePut(ctx, key, full, etag, total), nil
}

// readError explains a failure to read a put's body.
func readError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("reading the body: %w", err)
}

// checkTotal compares the bytes read with the declared size.
func checkTotal(size, total int64) error {
	switch {
	case size < 0 || total == size:
		return nil
	case total > size:
		return fmt.Errorf("%w: reader has more than %d bytes", ErrSizeMismatch, size)
	}
	return fmt.Errorf("%w: reader ended after %d of %d bytes", ErrSizeMismatch, total, size)
}

// readPart appends to buf (len 0) from src until it holds limit bytes or
// src ends (eof). It grows buf as needed, in steps of at least
// copyChunkBytes.
func readPart(src io.Reader, limit int64, buf []byte) ([]byte, bool, error) {
	for int64(len(buf)) < limit {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(limit, int64(max(2*cap(buf), copyChunkBytes))))
			copy(nb, buf)
			buf = nb
		}
		room := buf[len(buf):min(int64(cap(buf)), limit)]
		n, err := src.Read(room)
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, true, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
	return buf, false, nil
}

// partBuf returns an empty buffer with room for a part.
func (s *netStore) partBuf(partSize int64) []byte {
	if partSize == s.p.opts.PartSize {
		if bp, ok := s.parts.Get().(*[]byte); ok {
			return (*bp)[:0]
		}
	}
	return make([]byte, 0, partSize)
}

func (s *netStore) putPartBuf(b []byte) {
	if int64(cap(b)) == s.p.opts.PartSize {
		b = b[:0]
		s.parts.Put(&b)
	}
}

// multipart uploads the object whose first two parts have been read
// (eof: src has ended) and returns its ETag and size.
func (s *netStore) multipart(ctx context.Context, key string, src io.Reader, size, partSize int64,
	first, second []byte, eof bool, c putCond,
) (string, int64, error) {
	var uploadID string
	err := s.p.do(ctx, idempotent, func(ctx context.Context) error {
		var err error
		uploadID, err = s.b.createMultipart(ctx, key)
		return err
	})
	if err != nil {
		s.putPartBuf(second)
		return "", 0, fmt.Errorf("starting a multipart upload: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			s.abort(ctx, key, uploadID)
		}
	}()

	uctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg    sync.WaitGroup
		slots = make(chan struct{}, s.p.opts.PartConcurrency)
		mu    sync.Mutex
		parts []completedPart
		total int64
	)
	// submit uploads part number from buf on its own goroutine once a
	// slot is free. It reports false when the upload has failed. The
	// buffer goes back to the pool only after a first attempt succeeded:
	// after a failed one the HTTP transport may still be reading it.
	submit := func(number int, buf []byte) bool {
		select {
		case slots <- struct{}{}:
		case <-uctx.Done():
			s.putPartBuf(buf)
			return false
		}
		wg.Go(func() {
			defer func() { <-slots }()
			var (
				etag     string
				attempts int
			)
			err := s.p.do(uctx, idempotent, func(ctx context.Context) error {
				attempts++
				var err error
				etag, err = s.b.uploadPart(ctx, key, uploadID, number, buf)
				return err
			})
			if err != nil {
				cancel(fmt.Errorf("uploading part %d: %w", number, err))
				return
			}
			if attempts == 1 {
				s.putPartBuf(buf)
			}
			mu.Lock()
			parts = append(parts, completedPart{number: number, etag: etag})
			mu.Unlock()
		})
		return true
	}

	var readErr error
	total = int64(len(first)) + int64(len(second))
	ok := submit(1, first) && submit(2, second)
	for number := 3; ok && !eof; number++ {
		var buf []byte
		buf, eof, readErr = readPart(src, partSize, s.partBuf(partSize))
		if readErr != nil {
			readErr = readError(readErr)
			break
		}
		if len(buf) == 0 {
			s.putPartBuf(buf)
			break
		}
		if number > maxParts {
			s.putPartBuf(buf)
			readErr = fmt.Errorf("object larger than %d parts of %d bytes", maxParts, partSize)
			break
		}
		total += int64(len(buf))
		ok = submit(number, buf)
	}
	if readErr != nil {
		cancel(readErr) // stop the parts in flight: the upload is abandoned
	}
	wg.Wait()
	if readErr != nil {
		return "", 0, readErr
	}
	if cause := context.Cause(uctx); cause != nil {
		if ctx.Err() != nil && !errors.Is(cause, ctx.Err()) {
			return "", 0, fmt.Errorf("%w (%w)", ctx.Err(), cause)
		}
		return "", 0, cause
	}
	if err := checkTotal(size, total); err != nil {
		return "", 0, err
	}
	slices.SortFunc(parts, func(a, b completedPart) int { return a.number - b.number })
	kind := idempotent
	if c.conditional() {
		kind = conditionalCommit
	}
	var etag string
	err = s.p.do(ctx, kind, func(ctx context.Context) error {
		var err error
		etag, err = s.b.completeMultipart(ctx, key, uploadID, parts, c)
		return err
	})
	if err != nil {
		return "", 0, s.putError(c, err)
	}
	committed = true
	return etag, total, nil
}

// abort abandons a multipart upload, best effort, also when ctx is done.
func (s *netStore) abort(ctx context.Context, key, uploadID string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.p.opts.OpTimeout)
	defer cancel()
	_ = s.p.do(actx, idempotent, func(ctx context.Context) error { return s.b.abortMultipart(ctx, key, uploadID) })
}

// describePut returns the ObjectInfo of a put that stored etag: the
// object's own description when a HeadObject finds that version, else
// (overwritten meanwhile, or the head failed) what the put knows.
func (s *netStore) describePut(ctx context.Context, key, full, etag string, size int64) ObjectInfo {
	info := ObjectInfo{Key: key, Size: size, ETag: etag, ModTime: time.Now()}
	var st ObjectInfo
	err := s.p.do(ctx, idempotent, func(ctx context.Context) error {
		var err error
		st, err = s.b.head(ctx, full)
		return err
	})
	if err == nil && st.ETag == etag && st.Size == size {
		info.ModTime = st.ModTime
	}
	return info
}

func (s *netStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	full, err := s.fullKey(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := s.usable(ctx); err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %q: %w", key, err)
	}
	var info ObjectInfo
	err = s.p.do(ctx, idempotent, func(ctx context.Context) error {
		var err error
		info, err = s.b.head(ctx, full)
		return err
	})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %q: %w", key, s.mapErr(err))
	}
	info.Key = key
	return info, nil
}

func (s *netStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, ObjectInfo, error) {
	full, err := s.fullKey(key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	fail := func(err error) (io.ReadCloser, ObjectInfo, error) {
		return nil, ObjectInfo{}, fmt.Errorf("get %q: %w", key, err)
	}
	if offset < 0 || length < ToEnd {
		return fail(fmt.Errorf("%w: offset %d, length %d", ErrInvalidRange, offset, length))
	}
	if err := s.usable(ctx); err != nil {
		return fail(err)
	}
	if length == 0 {
		// HTTP has no empty range: check the offset against the size.
		info, err := s.Stat(ctx, key)
		if err != nil {
			return nil, ObjectInfo{}, fmt.Errorf("get %q: %w", key, errors.Unwrap(err))
		}
		if _, err := checkRange(offset, 0, info.Size); err != nil {
			return fail(err)
		}
		return io.NopCloser(strings.NewReader("")), info, nil
	}
	rng := ""
	switch {
	case length != ToEnd:
		rng = "bytes=" + strconv.FormatInt(offset, 10) + "-" + strconv.FormatInt(offset+length-1, 10)
	case offset > 0:
		rng = "bytes=" + strconv.FormatInt(offset, 10) + "-"
	}
	for n := 0; ; n++ {
		rc, info, class, err := s.getAttempt(ctx, full, rng)
		if err == nil {
			info.Key = key
			r := io.Reader(rc)
			if rng == "" && length != ToEnd {
				r = io.LimitReader(rc, length)
			}
			return &netReader{r: ctxReader{ctx: ctx, r: r}, rc: rc}, info, nil
		}
		err = s.mapErr(err)
		if errors.Is(err, ErrInvalidRange) && offset == 0 && rng != "" {
			// A range from 0 fails only on an empty object, which
			// offset 0 may read: ask again without one.
			rng, n = "", -1
			continue
		}
		if errors.Is(err, ErrNotExist) || errors.Is(err, ErrInvalidRange) {
			return fail(err)
		}
		if err := s.p.wait(ctx, idempotent, class, n, err); err != nil {
			return fail(err)
		}
	}
}

// getAttempt makes one GetObject request with a slot and a timeout on the
// response headers. On success the returned reader holds the slot and the
// request's context until it is closed.
func (s *netStore) getAttempt(ctx context.Context, key, rng string) (*attemptBody, ObjectInfo, retryClass, error) {
	if err := s.p.acquire(ctx); err != nil {
		return nil, ObjectInfo{}, noRetry, err
	}
	actx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(s.p.opts.OpTimeout, func() { cancel(errAttemptTimeout) })
	body, info, err := s.b.get(actx, key, rng)
	timer.Stop()
	if err != nil {
		class := s.p.classify(ctx, actx, err)
		err = s.p.timedOut(ctx, actx, err)
		cancel(nil)
		s.p.release()
		return nil, ObjectInfo{}, class, err
	}
	if context.Cause(actx) == errAttemptTimeout {
		// The headers came as the timer fired: the body is cut off.
		body.Close()
		cancel(nil)
		s.p.release()
		return nil, ObjectInfo{}, retryAmbiguous, fmt.Errorf("%w after %v", errAttemptTimeout, s.p.opts.OpTimeout)
	}
	return &attemptBody{body: body, cancel: func() { cancel(nil) }, release: s.p.release}, info, noRetry, nil
}

// attemptBody is a response body that gives back its request's slot and
// context when closed.
type attemptBody struct {
	body    io.ReadCloser
	cancel  func()
	release func()
	once    sync.Once
}

func (b *attemptBody) Read(p []byte) (int, error) { return b.body.Read(p) }

func (b *attemptBody) Close() error {
	err := b.body.Close()
	b.once.Do(func() {
		b.cancel()
		b.release()
	})
	return err
}

// netReader is Get's reader: reads fail once the caller's context is done.
type netReader struct {
	r  io.Reader
	rc io.Closer
}

func (r *netReader) Read(p []byte) (int, error) { return r.r.Read(p) }
func (r *netReader) Close() error               { return r.rc.Close() }

func (s *netStore) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		if err := validatePrefix(prefix); err != nil {
			yield(ObjectInfo{}, err)
			return
		}
		fail := func(err error) { yield(ObjectInfo{}, fmt.Errorf("list %q: %w", prefix, err)) }
		if err := s.checkOpen(); err != nil {
			fail(err)
			return
		}
		full := s.loc.Prefix + prefix
		after := ""
		for {
			if err := ctx.Err(); err != nil {
				fail(err)
				return
			}
			var (
				page []ObjectInfo
				more bool
			)
			err := s.p.do(ctx, idempotent, func(ctx context.Context) error {
				var err error
				page, more, err = s.b.list(ctx, full, after)
				return err
			})
			if err != nil {
				fail(err)
				return
			}
			for _, info := range page {
				after = info.Key
				k, ok := strings.CutPrefix(info.Key, s.loc.Prefix)
				if !ok || !strings.HasPrefix(info.Key, full) {
					continue
				}
				info.Key = k
				if !yield(info, nil) {
					return
				}
			}
			if !more || len(page) == 0 {
				return
			}
		}
	}
}

// deleteBatchSize is S3's DeleteObjects limit.
const deleteBatchSize = s3PageSize

func (s *netStore) Delete(ctx context.Context, keys ...string) error {
	full := make([]string, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		f, err := s.fullKey(k)
		if err != nil {
			return err
		}
		if !seen[f] {
			seen[f] = true
			full = append(full, f)
		}
	}
	if err := s.usable(ctx); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	var errs []error
	for batch := range slices.Chunk(full, deleteBatchSize) {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("delete: %w", err))
			break
		}
		errs = append(errs, s.deleteBatch(ctx, batch)...)
	}
	return errors.Join(errs...)
}

// deleteBatch deletes one batch, retrying the request, or the keys that
// failed transiently, as the policy allows.
func (s *netStore) deleteBatch(ctx context.Context, batch []string) []error {
	pending := batch
	for n := 0; ; n++ {
		var failed []keyFailure
		err := s.p.do(ctx, idempotent, func(ctx context.Context) error {
			var err error
			failed, err = s.b.deleteBatch(ctx, pending)
			return err
		})
		if err != nil {
			return []error{fmt.Errorf("delete %s: %w", describeKeys(s.userKeys(pending)), err)}
		}
		if len(failed) == 0 {
			return nil
		}
		// Per-key failures: retry those that are transient.
		transient := true
		for _, f := range failed {
			if s.p.classify(ctx, ctx, f.err) == noRetry {
				transient = false
			}
		}
		if !transient || n >= s.p.opts.MaxRetries || ctx.Err() != nil {
			errs := make([]error, len(failed))
			for i, f := range failed {
				errs[i] = fmt.Errorf("delete %q: %w", strings.TrimPrefix(f.key, s.loc.Prefix), f.err)
			}
			return errs
		}
		if err := s.p.sleep(ctx, s.p.jitter(n)); err != nil {
			return []error{fmt.Errorf("delete: %w", err)}
		}
		pending = pending[:0:0]
		for _, f := range failed {
			pending = append(pending, f.key)
		}
	}
}

func (s *netStore) userKeys(full []string) []string {
	out := make([]string, len(full))
	for i, k := range full {
		out[i] = strings.TrimPrefix(k, s.loc.Prefix)
	}
	return out
}

func (s *netStore) Close() error {
	if !s.closed.Swap(true) {
		s.b.close()
	}
	return nil
}

// unquoteETag strips the quotes S3 puts around ETags.
func unquoteETag(etag string) string {
	if len(etag) >= 2 && etag[0] == '"' && etag[len(etag)-1] == '"' {
		return etag[1 : len(etag)-1]
	}
	return etag
}

// parseContentRange reads the whole object's size from a Content-Range
// value, "bytes 0-9/1000".
func parseContentRange(v string) (int64, bool) {
	_, total, ok := strings.Cut(v, "/")
	if !ok || total == "*" {
		return 0, false
	}
	n, err := strconv.ParseInt(total, 10, 64)
	return n, err == nil && n >= 0
}
