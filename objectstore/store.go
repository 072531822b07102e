package objectstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Store is a flat namespace of immutable-per-version objects addressed by
// key, as in S3. Every method may be called concurrently from many
// goroutines. Every method takes a context; a cancelled or expired context
// makes the call fail with an error that matches ctx.Err() (errors.Is).
// Writes are all or nothing: a key holds the old object or the whole new
// one, never part of one. A failed write has normally changed nothing, but
// an error can hide a success (a reply lost on the network, a directory
// fsync failing after the rename); callers that must know, Stat the key or
// use the conditional puts.
//
// Errors callers branch on are the sentinels below (match them with
// errors.Is); everything else is an operating error wrapped with the
// operation and key.
type Store interface {
	// Put stores the size bytes read from r under key, replacing any
	// object there. size may be SizeUnknown, in which case r is read to
	// io.EOF; otherwise r must yield exactly size bytes (a reader that
	// ends early or has more fails the Put, storing nothing). The object
	// becomes visible, whole, only when Put returns nil; on file stores it
	// is durable then. Put reads r in bounded chunks: how a large object
	// reaches the backend (multipart on S3) is the backend's concern. The
	// returned ObjectInfo describes the stored object.
	Put(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error)

	// PutIfAbsent is Put that only creates: if key already exists it
	// fails with ErrPreconditionFailed and changes nothing. Of any number
	// of concurrent PutIfAbsent calls for one key, at most one succeeds.
	// Fails with ErrUnsupported when Capabilities().PutIfAbsent is false.
	PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error)

	// PutIfMatch is Put that only replaces the object whose ETag is etag:
	// if the current ETag differs it fails with ErrPreconditionFailed; if
	// key does not exist the error matches both ErrPreconditionFailed and
	// ErrNotExist. Of concurrent PutIfMatch calls with the same etag, at
	// most one succeeds. Fails with ErrUnsupported when
	// Capabilities().PutIfMatch is false.
	PutIfMatch(ctx context.Context, key, etag string, r io.Reader, size int64) (ObjectInfo, error)

	// Get opens the byte range [offset, offset+length) of the object at
	// key; length ToEnd (-1) reads to the end, and a range that runs past
	// the end is cut at the end. offset must be below the object's size,
	// except that offset 0 is always allowed (a zero-length object reads
	// as empty); otherwise Get fails with ErrInvalidRange, as does a
	// negative offset or a length below -1. A missing key is ErrNotExist.
	// The returned ObjectInfo describes the whole object (Size is its full
	// size, not the range's). The caller must Close the reader; reads
	// fail once ctx is done. The reader sees one version of the object
	// even if it is replaced meanwhile.
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, ObjectInfo, error)

	// Stat describes the object at key, or fails with ErrNotExist.
	Stat(ctx context.Context, key string) (ObjectInfo, error)

	// List yields every object whose key starts with prefix (which need
	// not end at a "/"; "" lists everything), in ascending byte order of
	// key, one ObjectInfo at a time: memory stays bounded however many
	// objects match (backends page through them). On failure it yields
	// one non-nil error, with a zero ObjectInfo, and stops. Breaking out
	// of the loop early is fine. Objects put or deleted during the
	// listing may or may not be seen.
	List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error]

	// Delete removes the objects at keys. Deleting a missing key is not
	// an error. Every key is validated before anything is deleted; after
	// that, a failure may leave some keys deleted and others not, and the
	// error names the keys that failed. Backends batch as they can (S3:
	// 1000 keys per request).
	Delete(ctx context.Context, keys ...string) error

	// Capabilities says which conditional puts this store performs
	// atomically. It is constant for the life of the store.
	Capabilities() Capabilities

	// Close releases the store's resources. Readers returned by Get must
	// be closed first. Calls after Close fail.
	Close() error
}

// SizeUnknown passed to Put as size means "read r to io.EOF".
const SizeUnknown int64 = -1

// ToEnd passed to Get as length means "to the end of the object".
const ToEnd int64 = -1

// MaxKeyBytes bounds a key's length in bytes, S3's limit.
const MaxKeyBytes = 1024

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key  string
	Size int64 // bytes
	// ETag identifies the object's content: it changes whenever the
	// content does (two objects with the same bytes may share one). It is
	// opaque: compare it only for equality, and pass it to PutIfMatch.
	ETag    string
	ModTime time.Time // when the current version was stored
}

// Capabilities says which conditional operations a store performs
// atomically. A false field means the matching method fails with
// ErrUnsupported, never that it runs without the guarantee.
type Capabilities struct {
	// PutIfAbsent: create-only puts are atomic against every writer of
	// the store, in this process or any other.
	PutIfAbsent bool
	// PutIfMatch: compare-and-replace puts are atomic against every other
	// write to the key made through this store's backend.
	PutIfMatch bool
	// PutIfMatchProcessLocal qualifies PutIfMatch: it is atomic only
	// against writers in this process (the file store's lock is in
	// memory). Writers in other processes may interleave with it.
	PutIfMatchProcessLocal bool
}

// Sentinel errors. Backends translate their own "not found", "precondition
// failed" and "invalid range" replies into these, so callers can branch with
// errors.Is whatever the backend.
var (
	// ErrNotExist: no object at the key.
	ErrNotExist = errors.New("object does not exist")
	// ErrPreconditionFailed: a conditional put's condition did not hold.
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrUnsupported: the backend cannot perform this conditional
	// operation atomically (see Capabilities).
	ErrUnsupported = errors.New("operation not supported by this object store")
	// ErrInvalidKey: the key breaks the rules of ValidateKey.
	ErrInvalidKey = errors.New("invalid object key")
	// ErrInvalidRange: Get's offset or length is out of bounds.
	ErrInvalidRange = errors.New("invalid byte range")
	// ErrSizeMismatch: Put's reader did not yield exactly size bytes.
	ErrSizeMismatch = errors.New("object size does not match the declared size")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("object store closed")
)

// ValidateKey checks the rules every backend applies to keys, so that one
// key means the same object on S3 and in a local directory: not empty, at
// most MaxKeyBytes bytes of valid UTF-8, no leading "/", no empty, "." or
// ".." path segment (so no "//" and no trailing "/"), and no control
// characters (NUL included) or backslashes. The error matches ErrInvalidKey
// and quotes the key.
func ValidateKey(key string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidKey, truncateForError(key), why)
	}
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	case len(key) > MaxKeyBytes:
		return bad(fmt.Sprintf("%d bytes, more than %d", len(key), MaxKeyBytes))
	case !utf8.ValidString(key):
		return bad("not valid UTF-8")
	case key[0] == '/':
		return bad("leading \"/\"")
	}
	for _, c := range key {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return bad(fmt.Sprintf("character %U not allowed", c))
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return bad("empty path segment (\"//\" or trailing \"/\")")
		case ".", "..":
			return bad(fmt.Sprintf("%q path segment", seg))
		}
	}
	return nil
}

// validatePrefix checks a List prefix: "" or a string that could begin a
// valid key (a trailing "/" is fine).
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	k := prefix
	if strings.HasSuffix(k, "/") {
		k += "x"
	}
	if err := ValidateKey(k); err != nil {
		return fmt.Errorf("list prefix %q: %w", truncateForError(prefix), err)
	}
	return nil
}

func truncateForError(s string) string {
	const maxShown = 120
	if len(s) <= maxShown {
		return s
	}
	return s[:maxShown] + "…"
}

// checkRange validates Get's arguments against an object of size bytes and
// returns the number of bytes to read.
func checkRange(offset, length, size int64) (int64, error) {
	if offset < 0 || length < ToEnd {
		return 0, fmt.Errorf("%w: offset %d, length %d", ErrInvalidRange, offset, length)
	}
	if offset > 0 && offset >= size {
		return 0, fmt.Errorf("%w: offset %d of a %d-byte object", ErrInvalidRange, offset, size)
	}
	n := size - offset
	if length != ToEnd && length < n {
		n = length
	}
	return n, nil
}

// checkSize validates Put's size argument.
func checkSize(size int64) error {
	if size < SizeUnknown {
		return fmt.Errorf("%w: negative size %d", ErrSizeMismatch, size)
	}
	return nil
}

// ctxReader fails reads once ctx is done, so a long copy or a slow
// consumer of Get notices cancellation between chunks.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// openFlag is the closed state the backends share: Close sets closed, and
// every call starts by asking checkOpen (or usable, which also checks the
// caller's context).
type openFlag struct{ closed atomic.Bool }

func (f *openFlag) checkOpen() error {
	if f.closed.Load() {
		return ErrClosed
	}
	return nil
}

// usable says why a call cannot start: the store is closed, or ctx is done.
func (f *openFlag) usable(ctx context.Context) error {
	if err := f.checkOpen(); err != nil {
		return err
	}
	return ctx.Err()
}
