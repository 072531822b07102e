package objectstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func newFileStore(t *testing.T) (*fileStore, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*fileStore), dir
}

func putString(t *testing.T, s Store, key, content string) ObjectInfo {
	t.Helper()
	info, err := s.Put(t.Context(), key, strings.NewReader(content), int64(len(content)))
	if err != nil {
		t.Fatalf("Put %q: %v", key, err)
	}
	return info
}

func TestFileObjectsArePlainFiles(t *testing.T) {
	s, dir := newFileStore(t)
	putString(t, s, "topic-0/00000000000000000000.log", "records")
	got, err := os.ReadFile(filepath.Join(dir, "topic-0", "00000000000000000000.log"))
	if err != nil || string(got) != "records" {
		t.Fatalf("file content %q, %v", got, err)
	}
	// Reopening the directory finds the object, with the same ETag.
	s2, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Stat(t.Context(), "topic-0/00000000000000000000.log")
	b, err := s2.Stat(t.Context(), "topic-0/00000000000000000000.log")
	if err != nil || a.ETag != b.ETag {
		t.Fatalf("reopened: %+v, %v; before: %+v", b, err, a)
	}
	if _, err := NewFile("relative/dir"); err == nil {
		t.Fatal("NewFile accepted a relative directory")
	}
}

func TestFileNoTempLeftAndDirsPruned(t *testing.T) {
	s, dir := newFileStore(t)
	putString(t, s, "a/b/c", "x")
	if _, err := s.Put(t.Context(), "a/b/d", strings.NewReader("short"), 99); err == nil {
		t.Fatal("size mismatch accepted")
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, tmpDirName)); len(entries) != 0 {
		t.Fatalf("temporary files left: %v", entries)
	}
	if err := s.Delete(t.Context(), "a/b/c"); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != tmpDirName {
		t.Fatalf("root after deleting the only object: %v", entries)
	}
}

func TestFileETagWithoutXattr(t *testing.T) {
	s, dir := newFileStore(t)
	info := putString(t, s, "k", "content")
	path := filepath.Join(dir, "k")
	// A filesystem without user xattrs, or a file copied in by hand: the
	// ETag is recomputed from the content and is the same.
	if err := unix.Removexattr(path, etagXattr); err != nil && !errors.Is(err, unix.ENODATA) {
		t.Fatal(err)
	}
	st, err := s.Stat(t.Context(), "k")
	if err != nil || st.ETag != info.ETag {
		t.Fatalf("recomputed ETag %q, %v; Put gave %q", st.ETag, err, info.ETag)
	}
	// Edited in place behind the store's back (same size, new mtime): the
	// recorded ETag is stale and not used.
	if err := os.WriteFile(path, []byte("CONTENT"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	st, err = s.Stat(t.Context(), "k")
	if err != nil || st.ETag == info.ETag {
		t.Fatalf("ETag %q, %v after the content changed", st.ETag, err)
	}
	// A stale ETag (from before the edit) cannot replace the edited file.
	_, err = s.PutIfMatch(t.Context(), "k", info.ETag, strings.NewReader("x"), 1)
	if !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("PutIfMatch with the pre-edit ETag: %v", err)
	}
}

func TestFileStaleTempRemoved(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, tmpDirName)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	old, young := filepath.Join(tmp, "put-old"), filepath.Join(tmp, "put-young")
	for _, p := range []string{old, young} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * staleTmpAge)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	s, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stale temporary file kept: %v", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Fatalf("young temporary file (a put in another process?) removed: %v", err)
	}
	// Temporary files are never listed, and the name is reserved.
	for info, err := range s.List(t.Context(), "") {
		t.Fatalf("List of an empty store: %+v, %v", info, err)
	}
	if _, err := s.Put(t.Context(), tmpDirName+"/x", strings.NewReader(""), 0); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("Put under the reserved directory: %v", err)
	}
}

func TestFileKeyConflicts(t *testing.T) {
	s, _ := newFileStore(t)
	ctx := t.Context()
	putString(t, s, "a", "leaf")
	_, err := s.Put(ctx, "a/b", strings.NewReader("x"), 1)
	if err == nil || !strings.Contains(err.Error(), "conflicts") {
		t.Fatalf("Put under an object: %v", err)
	}
	putString(t, s, "c/d", "x")
	for _, put := range []func() error{
		func() error { _, err := s.Put(ctx, "c", strings.NewReader("x"), 1); return err },
		func() error { _, err := s.PutIfAbsent(ctx, "c", strings.NewReader("x"), 1); return err },
	} {
		err := put()
		if err == nil || !strings.Contains(err.Error(), "conflicts") || errors.Is(err, ErrPreconditionFailed) {
			t.Fatalf("Put over a directory of keys: %v", err)
		}
	}
	long := strings.Repeat("s", maxSegmentBytes+1)
	if _, err := s.Put(ctx, "x/"+long, strings.NewReader(""), 0); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("Put with a %d-byte segment: %v", len(long), err)
	}
	putString(t, s, "x/"+long[1:], "a 255-byte segment is fine")
}

// Two stores on one root with separate locks stand for two processes:
// create-only must still let exactly one writer win.
func TestFilePutIfAbsentAcrossProcesses(t *testing.T) {
	a, _ := newFileStore(t)
	b := &fileStore{root: a.root, tmp: a.tmp, locks: &fileLocks{}}
	for round := range 5 {
		key := fmt.Sprintf("manifest/%d", round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 16 {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				_, err := s.PutIfAbsent(t.Context(), key, strings.NewReader(fmt.Sprint(i)), SizeUnknown)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case !errors.Is(err, ErrPreconditionFailed):
					t.Errorf("PutIfAbsent: %v", err)
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("round %d: %d winners", round, wins)
		}
	}
}

func TestLinkNoReplace(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	for _, p := range []string{src, dst} {
		if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := linkNoReplace(src, dst); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("link over an existing file: %v", err)
	}
	if err := os.Remove(dst); err != nil {
		t.Fatal(err)
	}
	if err := linkNoReplace(src, dst); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); string(got) != src {
		t.Fatalf("dst holds %q", got)
	}
	if _, err := os.Stat(src); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("src left behind: %v", err)
	}
}

func TestFileClosed(t *testing.T) {
	s, _ := newFileStore(t)
	putString(t, s, "k", "v")
	s.Close()
	if _, err := s.Stat(t.Context(), "k"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Stat after Close: %v", err)
	}
	if _, err := s.Put(t.Context(), "k", strings.NewReader(""), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
}
