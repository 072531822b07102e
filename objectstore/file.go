package objectstore

// The file:// backend: one object per regular file under a root directory.
//
// Layout: key "a/b/c" is the file <root>/a/b/c; directories are created as
// puts need them and removed, when empty, by Delete. Puts stream into a
// temporary file under <root>/.strata-tmp/ (same filesystem, so the final
// rename is atomic), fsync it, rename it into place and fsync the
// directory: a crash leaves the old object or the new one, never a mix, and
// a Put that returned nil survives a power cut. Temporary files older than
// staleTmpAge are removed when a store opens the root.
//
// ETags: the first 16 bytes of the SHA-256 of the content, hex, computed
// while the body streams in and stored in the extended attribute
// user.strata.etag together with the file's size and mtime. When the
// attribute is missing (a filesystem without user xattrs, a file copied in
// by hand) or its size/mtime no longer match the file, the ETag is
// recomputed by reading the file. An ETag therefore changes whenever the
// content changes, and equal contents share an ETag, as on S3.
//
// Conditional puts. Every commit (the rename), conditional or not, and
// every delete takes a per-key lock shared by all stores on the same root
// in this process, so PutIfMatch's compare-and-rename is atomic within the
// process. PutIfAbsent commits with renameat2(RENAME_NOREPLACE), or
// link(2) where the filesystem lacks it, both of which fail atomically if
// the key exists: create-only is atomic across processes too. PutIfMatch
// is not atomic against other processes writing the same root
// (Capabilities.PutIfMatchProcessLocal).
//
// Limits of a filesystem: keys "a" and "a/b" cannot both exist (one would
// have to be a file and a directory); the second put fails with an error
// naming the conflict. Each path segment is limited to 255 bytes
// (NAME_MAX). The reserved top-level name .strata-tmp cannot be a key's
// first segment. List holds one directory's names in memory at a time per
// level of depth, never the whole listing.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stratalog/strata/internal/fsutil"
)

const (
	// tmpDirName is the directory under the root that holds puts in
	// progress; no key may start with it.
	tmpDirName = ".strata-tmp"
	// staleTmpAge: a temporary file this old belongs to a crashed put
	// (no put runs an hour) and is removed when a store opens.
	staleTmpAge = time.Hour
	// etagXattr holds "v1 <size> <mtime ns> <etag>".
	etagXattr = "user.strata.etag"
	// maxSegmentBytes is NAME_MAX on Linux filesystems.
	maxSegmentBytes = 255
	// lockStripes: per-key locks are striped over this many mutexes; 64
	// keeps unrelated keys from contending much at trivial memory cost.
	lockStripes = 64
)

type fileStore struct {
	root  string // absolute, clean
	tmp   string // root/.strata-tmp
	locks *fileLocks
	openFlag
}

var _ Store = (*fileStore)(nil)

// fileLocks are the commit locks of one root directory, shared by every
// fileStore on that root in this process.
type fileLocks struct{ stripes [lockStripes]sync.Mutex }

// rootLocks maps an absolute root to its *fileLocks.
var rootLocks sync.Map

func (l *fileLocks) forKey(key string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return &l.stripes[h.Sum32()%lockStripes]
}

// NewFile opens (creating if needed) the directory dir as a store. dir must
// be absolute.
func NewFile(dir string) (Store, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("file object store: directory %q is not absolute", dir)
	}
	root := filepath.Clean(dir)
	s := &fileStore{root: root, tmp: filepath.Join(root, tmpDirName)}
	if err := os.MkdirAll(s.tmp, 0o755); err != nil {
		return nil, fmt.Errorf("file object store: %w", err)
	}
	l, _ := rootLocks.LoadOrStore(root, &fileLocks{})
	s.locks = l.(*fileLocks)
	s.removeStaleTmp()
	return s, nil
}

// removeStaleTmp deletes temporary files left by crashed puts. Young ones
// may belong to a put running in another process and are kept.
func (s *fileStore) removeStaleTmp() {
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleTmpAge {
			_ = os.Remove(filepath.Join(s.tmp, e.Name()))
		}
	}
}

func (s *fileStore) Capabilities() Capabilities {
	return Capabilities{PutIfAbsent: true, PutIfMatch: true, PutIfMatchProcessLocal: true}
}

// path validates key and returns its file's path.
func (s *fileStore) path(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(key, "/")
	if first == tmpDirName {
		return "", fmt.Errorf("%w %q: %s is reserved by the file store", ErrInvalidKey, key, tmpDirName)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if len(seg) > maxSegmentBytes {
			return "", fmt.Errorf("%w %q: a path segment of %d bytes, more than the file store's %d",
				ErrInvalidKey, truncateForError(key), len(seg), maxSegmentBytes)
		}
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

type putMode int

const (
	putAlways putMode = iota
	putIfAbsent
	putIfMatch
)

func (s *fileStore) Put(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error) {
	return s.put(ctx, "put", key, r, size, putAlways, "")
}

func (s *fileStore) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error) {
	return s.put(ctx, "put if absent", key, r, size, putIfAbsent, "")
}

func (s *fileStore) PutIfMatch(ctx context.Context, key, etag string, r io.Reader, size int64) (ObjectInfo, error) {
	return s.put(ctx, "put if match", key, r, size, putIfMatch, etag)
}

func (s *fileStore) put(ctx context.Context, op, key string, r io.Reader, size int64, mode putMode, etag string) (ObjectInfo, error) {
	path, err := s.path(key)
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
	tmp, info, err := s.writeTmp(ctx, r, size)
	if err != nil {
		return fail(err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = os.Remove(tmp)
		}
	}()
	info.Key = key

	mu := s.locks.forKey(key)
	mu.Lock()
	created, err := s.commitLocked(ctx, key, path, tmp, mode, etag)
	mu.Unlock()
	if err != nil {
		return fail(err)
	}
	committed = true
	// Durability of the rename and of any directories it needed.
	if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
		return fail(err)
	}
	for _, d := range created {
		if err := fsutil.SyncDir(filepath.Dir(d)); err != nil {
			return fail(err)
		}
	}
	return info, nil
}

// writeTmp streams r into a new temporary file, fsyncs it and records its
// ETag. It returns the file's path and the object's info (without Key).
func (s *fileStore) writeTmp(ctx context.Context, r io.Reader, size int64) (string, ObjectInfo, error) {
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return "", ObjectInfo{}, err
	}
	tmp := f.Name()
	info, err := func() (ObjectInfo, error) {
		h := sha256.New()
		n, err := copyBody(ctx, io.MultiWriter(f, h), r, size)
		if err != nil {
			return ObjectInfo{}, err
		}
		if err := f.Sync(); err != nil {
			return ObjectInfo{}, err
		}
		fi, err := f.Stat()
		if err != nil {
			return ObjectInfo{}, err
		}
		info := ObjectInfo{Size: n, ETag: hex.EncodeToString(h.Sum(nil)[:16]), ModTime: fi.ModTime()}
		setETagXattr(f, info)
		return info, nil
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", ObjectInfo{}, err
	}
	return tmp, info, nil
}

// commitLocked moves tmp to path according to mode; the key's lock is
// held. It returns the directories it created.
func (s *fileStore) commitLocked(ctx context.Context, key, path, tmp string, mode putMode, etag string) ([]string, error) {
	// The last moment a cancellation can stop the put.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if mode == putIfMatch {
		cur, err := s.statPath(key, path)
		if errors.Is(err, ErrNotExist) {
			return nil, fmt.Errorf("%w (%w)", ErrPreconditionFailed, ErrNotExist)
		}
		if err != nil {
			return nil, err
		}
		if cur.ETag != etag {
			return nil, fmt.Errorf("%w: ETag is %s, not %s", ErrPreconditionFailed, cur.ETag, etag)
		}
	}
	var created []string
	// A concurrent Delete may remove a directory we just created (it
	// prunes empty ones), so retry a few times on ENOENT.
	for attempt := 0; ; attempt++ {
		c, err := s.mkdirs(filepath.Dir(path))
		created = append(created, c...)
		if err != nil {
			return created, s.conflictError(key, err)
		}
		switch mode {
		case putIfAbsent:
			err = renameNoReplace(tmp, path)
			if errors.Is(err, fs.ErrExist) {
				if fi, serr := os.Lstat(path); serr == nil && fi.IsDir() {
					return created, s.conflictError(key, syscall.EISDIR)
				}
				return created, ErrPreconditionFailed
			}
		default:
			err = os.Rename(tmp, path)
		}
		if err == nil {
			return created, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 3 {
			return created, s.conflictError(key, err)
		}
	}
}

// conflictError explains a failure caused by a key being both a file and a
// directory.
func (s *fileStore) conflictError(key string, err error) error {
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("key %q conflicts with another key that is its prefix or has it as a directory "+
			"(the file store cannot hold both \"a\" and \"a/b\"): %w", key, err)
	}
	return err
}

// mkdirs creates dir and its missing parents below the root, returning the
// ones it created (outermost first).
func (s *fileStore) mkdirs(dir string) ([]string, error) {
	if dir == s.root {
		return nil, nil
	}
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return nil, &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil, nil
	}
	created, err := s.mkdirs(filepath.Dir(dir))
	if err != nil {
		return created, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			if fi, serr := os.Stat(dir); serr == nil && fi.IsDir() {
				return created, nil // made by a concurrent put
			}
		}
		return created, err
	}
	return append(created, dir), nil
}

// renameNoReplace renames oldpath to newpath unless newpath exists
// (fs.ErrExist then), atomically also against other processes: with
// renameat2(RENAME_NOREPLACE), or with link+unlink where the filesystem
// does not support that flag.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EOPNOTSUPP) {
		return &os.LinkError{Op: "renameat2", Old: oldpath, New: newpath, Err: err}
	}
	return linkNoReplace(oldpath, newpath)
}

// linkNoReplace is renameNoReplace for filesystems without
// RENAME_NOREPLACE: link(2) fails with EEXIST if newpath exists, atomically.
func linkNoReplace(oldpath, newpath string) error {
	if err := os.Link(oldpath, newpath); err != nil {
		return err
	}
	_ = os.Remove(oldpath) // committed already; a leftover is only a stale temp file
	return nil
}

func (s *fileStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	path, err := s.path(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := s.usable(ctx); err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %q: %w", key, err)
	}
	info, err := s.statPath(key, path)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %q: %w", key, err)
	}
	return info, nil
}

// statPath describes the object in the file at path.
func (s *fileStore) statPath(key, path string) (ObjectInfo, error) {
	f, err := openObject(path)
	if err != nil {
		return ObjectInfo{}, err
	}
	defer f.Close()
	return objectInfo(f, key)
}

// openObject opens the object file at path for reading; a missing file or
// a directory is ErrNotExist.
func openObject(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, ErrNotExist
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, ErrNotExist
	}
	return f, nil
}

// objectInfo describes the open object file f, reading its ETag from the
// xattr or, when that is missing or stale, from its content.
func objectInfo(f *os.File, key string) (ObjectInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return ObjectInfo{}, err
	}
	info := ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}
	if etag, ok := getETagXattr(f, info); ok {
		info.ETag = etag
		return info, nil
	}
	h := sha256.New()
	bp := copyBuffers.Get().(*[]byte)
	_, err = io.CopyBuffer(onlyWriter{h}, io.NewSectionReader(f, 0, info.Size), *bp)
	copyBuffers.Put(bp)
	if err != nil {
		return ObjectInfo{}, err
	}
	info.ETag = hex.EncodeToString(h.Sum(nil)[:16])
	setETagXattr(f, info) // best effort: saves the next reader the hashing
	return info, nil
}

func etagXattrValue(info ObjectInfo) string {
	return "v1 " + strconv.FormatInt(info.Size, 10) + " " + strconv.FormatInt(info.ModTime.UnixNano(), 10)
}

// setETagXattr records info's ETag on f; filesystems without user xattrs
// are fine (the ETag is recomputed when read).
func setETagXattr(f *os.File, info ObjectInfo) {
	_ = unix.Fsetxattr(int(f.Fd()), etagXattr, []byte(etagXattrValue(info)+" "+info.ETag), 0)
}

// getETagXattr returns f's recorded ETag if it was recorded for this size
// and mtime.
func getETagXattr(f *os.File, info ObjectInfo) (string, bool) {
	var buf [128]byte
	n, err := unix.Fgetxattr(int(f.Fd()), etagXattr, buf[:])
	if err != nil || n <= 0 {
		return "", false
	}
	v := string(buf[:n])
	prefix := etagXattrValue(info) + " "
	if !strings.HasPrefix(v, prefix) || len(v) == len(prefix) {
		return "", false
	}
	return v[len(prefix):], true
}

func (s *fileStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, ObjectInfo, error) {
	path, err := s.path(key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	fail := func(err error) (io.ReadCloser, ObjectInfo, error) {
		return nil, ObjectInfo{}, fmt.Errorf("get %q: %w", key, err)
	}
	if err := s.usable(ctx); err != nil {
		return fail(err)
	}
	f, err := openObject(path)
	if err != nil {
		return fail(err)
	}
	info, err := objectInfo(f, key)
	if err != nil {
		f.Close()
		return fail(err)
	}
	n, err := checkRange(offset, length, info.Size)
	if err != nil {
		f.Close()
		return fail(err)
	}
	return &fileReader{r: ctxReader{ctx: ctx, r: io.NewSectionReader(f, offset, n)}, f: f}, info, nil
}

// fileReader reads a range of an open object file; the open descriptor
// keeps the version it opened readable even if the key is replaced.
type fileReader struct {
	r io.Reader
	f *os.File
}

func (r *fileReader) Read(p []byte) (int, error) { return r.r.Read(p) }
func (r *fileReader) Close() error               { return r.f.Close() }

func (s *fileStore) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		if err := validatePrefix(prefix); err != nil {
			yield(ObjectInfo{}, err)
			return
		}
		if err := s.checkOpen(); err != nil {
			yield(ObjectInfo{}, fmt.Errorf("list %q: %w", prefix, err))
			return
		}
		if _, err := s.walk(ctx, prefix, "", yield); err != nil {
			yield(ObjectInfo{}, fmt.Errorf("list %q: %w", prefix, err))
		}
	}
}

// walk yields the objects with the prefix under the directory rel ("" for
// the root, else a key prefix ending in "/"), in key order. It returns
// false when the consumer stopped.
func (s *fileStore) walk(ctx context.Context, prefix, rel string, yield func(ObjectInfo, error) bool) (bool, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, filepath.FromSlash(rel)))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return true, nil // pruned or replaced meanwhile
		}
		return false, err
	}
	// Key order: a directory "a" sorts as "a/", its keys' common prefix,
	// so that "a-b" (0x2d) comes before "a/x" (0x2f).
	sortName := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(sortName(a), sortName(b)) })
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		name := rel + sortName(e)
		if rel == "" && e.Name() == tmpDirName {
			continue
		}
		switch {
		case e.IsDir():
			if !strings.HasPrefix(name, prefix) && !strings.HasPrefix(prefix, name) {
				continue
			}
			more, err := s.walk(ctx, prefix, name, yield)
			if err != nil || !more {
				return more, err
			}
		case e.Type().IsRegular():
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			info, err := s.statPath(name, filepath.Join(s.root, filepath.FromSlash(name)))
			if errors.Is(err, ErrNotExist) {
				continue // deleted meanwhile
			}
			if err != nil {
				return false, err
			}
			if !yield(info, nil) {
				return false, nil
			}
		}
	}
	return true, nil
}

func (s *fileStore) Delete(ctx context.Context, keys ...string) error {
	paths := make([]string, len(keys))
	for i, k := range keys {
		p, err := s.path(k)
		if err != nil {
			return err
		}
		paths[i] = p
	}
	if err := s.checkOpen(); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	var errs []error
	dirs := make(map[string]bool)
	for i, k := range keys {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("delete: %w", err))
			break
		}
		removed, err := s.deleteOne(k, paths[i])
		if err != nil {
			errs = append(errs, fmt.Errorf("delete %q: %w", k, err))
			continue
		}
		if removed {
			dirs[filepath.Dir(paths[i])] = true
		}
	}
	for d := range dirs {
		s.pruneDirs(d)
	}
	for d := range dirs {
		// The directory may have been pruned; then its parent holds the
		// change. Walk up to the first one that exists.
		for ; d != s.root; d = filepath.Dir(d) {
			if _, err := os.Stat(d); err == nil {
				break
			}
		}
		if err := fsutil.SyncDir(d); err != nil {
			errs = append(errs, fmt.Errorf("delete: %w", err))
		}
	}
	return errors.Join(errs...)
}

// deleteOne removes the object file at path, under the key's lock so that
// it cannot fall between PutIfMatch's check and rename.
func (s *fileStore) deleteOne(key, path string) (bool, error) {
	mu := s.locks.forKey(key)
	mu.Lock()
	defer mu.Unlock()
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return false, nil
		}
		return false, err
	}
	if !fi.Mode().IsRegular() {
		return false, nil // a directory of other keys, not an object
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// pruneDirs removes dir and its parents below the root while they are
// empty. A put that races with it retries (see commitLocked).
func (s *fileStore) pruneDirs(dir string) {
	for ; dir != s.root && strings.HasPrefix(dir, s.root+string(filepath.Separator)); dir = filepath.Dir(dir) {
		if err := os.Remove(dir); err != nil {
			return // not empty (or gone): stop
		}
	}
}

func (s *fileStore) Close() error {
	s.closed.Store(true)
	return nil
}
