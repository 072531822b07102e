package objectstoretest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratalog/strata/objectstore"
)

// LargeObjectBytes is the size of the streamed object in the large-object
// test: big enough to need many chunks (and, on S3, multipart), small
// enough to keep the suite fast.
const LargeObjectBytes = 32 << 20 // 32 MiB

// ManyKeys is how many keys the pagination test lists: more than one S3
// page (1000) and several of the mem store's.
const ManyKeys = 1100

// Run runs the suite. newStore must return an empty store, private to the
// subtest (the suite closes it at the end); subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) objectstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s objectstore.Store)
	}{
		{"PutGetStat", testPutGetStat},
		{"Missing", testMissing},
		{"ZeroLength", testZeroLength},
		{"RangedGet", testRangedGet},
		{"Overwrite", testOverwrite},
		{"SizeMismatch", testSizeMismatch},
		{"ReaderError", testReaderError},
		{"LargeUnknownSize", testLargeUnknownSize},
		{"Keys", testKeys},
		{"ListOrderAndPrefix", testListOrderAndPrefix},
		{"ListMany", testListMany},
		{"DeleteBatch", testDeleteBatch},
		{"PutIfAbsent", testPutIfAbsent},
		{"PutIfAbsentRace", testPutIfAbsentRace},
		{"PutIfMatch", testPutIfMatch},
		{"PutIfMatchRace", testPutIfMatchRace},
		{"Cancellation", testCancellation},
		{"ReaderSnapshot", testReaderSnapshot},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

func put(t *testing.T, s objectstore.Store, key, content string) objectstore.ObjectInfo {
	t.Helper()
	info, err := s.Put(t.Context(), key, strings.NewReader(content), int64(len(content)))
	if err != nil {
		t.Fatalf("Put %q: %v", key, err)
	}
	if info.Key != key || info.Size != int64(len(content)) || info.ETag == "" {
		t.Fatalf("Put %q returned %+v, want size %d and an ETag", key, info, len(content))
	}
	return info
}

// get reads a range of key whole.
func get(t *testing.T, s objectstore.Store, key string, offset, length int64) (string, objectstore.ObjectInfo, error) {
	t.Helper()
	rc, info, err := s.Get(t.Context(), key, offset, length)
	if err != nil {
		return "", info, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), info, err
}

func mustGet(t *testing.T, s objectstore.Store, key string) string {
	t.Helper()
	got, _, err := get(t, s, key, 0, objectstore.ToEnd)
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	return got
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

func wantAbsent(t *testing.T, s objectstore.Store, key string) {
	t.Helper()
	_, err := s.Stat(t.Context(), key)
	wantErr(t, "Stat "+key, err, objectstore.ErrNotExist)
}

func testPutGetStat(t *testing.T, s objectstore.Store) {
	before := time.Now().Add(-time.Minute)
	info := put(t, s, "topic/0/segment.log", "hello, object")
	if info.ModTime.Before(before) || info.ModTime.After(time.Now().Add(time.Minute)) {
		t.Fatalf("ModTime %v not about now", info.ModTime)
	}
	st, err := s.Stat(t.Context(), "topic/0/segment.log")
	if err != nil {
		t.Fatal(err)
	}
	if st.Key != info.Key || st.Size != info.Size || st.ETag != info.ETag || !st.ModTime.Equal(info.ModTime) {
		t.Fatalf("Stat %+v, Put returned %+v", st, info)
	}
	got, ginfo, err := get(t, s, "topic/0/segment.log", 0, objectstore.ToEnd)
	if err != nil || got != "hello, object" {
		t.Fatalf("Get: %q, %v", got, err)
	}
	if ginfo.Size != info.Size || ginfo.ETag != info.ETag {
		t.Fatalf("Get info %+v, want %+v", ginfo, info)
	}
}

func testMissing(t *testing.T, s objectstore.Store) {
	ctx := t.Context()
	_, err := s.Stat(ctx, "no/such/key")
	wantErr(t, "Stat", err, objectstore.ErrNotExist)
	_, _, err = s.Get(ctx, "no/such/key", 0, objectstore.ToEnd)
	wantErr(t, "Get", err, objectstore.ErrNotExist)
	_, _, err = s.Get(ctx, "no/such/key", 10, 5)
	wantErr(t, "ranged Get", err, objectstore.ErrNotExist)
	if err := s.Delete(ctx, "no/such/key"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	// A key that is only a prefix of other keys is not an object.
	put(t, s, "dir/child", "x")
	_, err = s.Stat(ctx, "dir")
	wantErr(t, "Stat of a prefix", err, objectstore.ErrNotExist)
	_, _, err = s.Get(ctx, "dir", 0, objectstore.ToEnd)
	wantErr(t, "Get of a prefix", err, objectstore.ErrNotExist)
	if err := s.Delete(ctx, "dir"); err != nil {
		t.Fatalf("Delete of a prefix: %v", err)
	}
	if mustGet(t, s, "dir/child") != "x" {
		t.Fatal("deleting a prefix touched the object under it")
	}
}

func testZeroLength(t *testing.T, s objectstore.Store) {
	ctx := t.Context()
	for _, size := range []int64{0, objectstore.SizeUnknown} {
		key := fmt.Sprintf("empty/%d", size+1)
		info, err := s.Put(ctx, key, strings.NewReader(""), size)
		if err != nil || info.Size != 0 || info.ETag == "" {
			t.Fatalf("Put empty (size %d): %+v, %v", size, info, err)
		}
		for _, length := range []int64{objectstore.ToEnd, 0, 10} {
			got, ginfo, err := get(t, s, key, 0, length)
			if err != nil || got != "" || ginfo.Size != 0 {
				t.Fatalf("Get(0, %d) of an empty object: %q, %+v, %v", length, got, ginfo, err)
			}
		}
		_, _, err = s.Get(ctx, key, 1, objectstore.ToEnd)
		wantErr(t, "Get(1, …) of an empty object", err, objectstore.ErrInvalidRange)
		st, err := s.Stat(ctx, key)
		if err != nil || st.Size != 0 {
			t.Fatalf("Stat: %+v, %v", st, err)
		}
	}
}

func testRangedGet(t *testing.T, s objectstore.Store) {
	content := make([]byte, 1000)
	for i := range content {
		content[i] = byte(i * 7)
	}
	if _, err := s.Put(t.Context(), "r", bytes.NewReader(content), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		offset, length int64
		from, to       int // expected content[from:to]
		err            error
	}{
		{offset: 0, length: objectstore.ToEnd, from: 0, to: 1000},
		{offset: 0, length: 1000, from: 0, to: 1000},
		{offset: 0, length: 5000, from: 0, to: 1000}, // cut at the end
		{offset: 1, length: 10, from: 1, to: 11},
		{offset: 500, length: 0, from: 500, to: 500},
		{offset: 990, length: objectstore.ToEnd, from: 990, to: 1000},
		{offset: 990, length: 100, from: 990, to: 1000},
		{offset: 999, length: 1, from: 999, to: 1000},
		{offset: 1000, length: 1, err: objectstore.ErrInvalidRange},
		{offset: 1000, length: objectstore.ToEnd, err: objectstore.ErrInvalidRange},
		{offset: 5000, length: 1, err: objectstore.ErrInvalidRange},
		{offset: -1, length: 1, err: objectstore.ErrInvalidRange},
		{offset: 0, length: -2, err: objectstore.ErrInvalidRange},
	} {
		got, info, err := get(t, s, "r", tc.offset, tc.length)
		what := fmt.Sprintf("Get(%d, %d)", tc.offset, tc.length)
		if tc.err != nil {
			wantErr(t, what, err, tc.err)
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got != string(content[tc.from:tc.to]) {
			t.Fatalf("%s: got %d bytes, want content[%d:%d]", what, len(got), tc.from, tc.to)
		}
		if info.Size != 1000 {
			t.Fatalf("%s: info.Size %d, want the whole object's 1000", what, info.Size)
		}
	}
}

func testOverwrite(t *testing.T, s objectstore.Store) {
	a := put(t, s, "k", "version one")
	b := put(t, s, "k", "version two, longer")
	if a.ETag == b.ETag {
		t.Fatalf("ETag %q unchanged after the content changed", a.ETag)
	}
	c := put(t, s, "k", "version 3, longer!!") // same size as version two
	if c.ETag == b.ETag {
		t.Fatalf("ETag %q unchanged after a same-size overwrite", c.ETag)
	}
	if got := mustGet(t, s, "k"); got != "version 3, longer!!" {
		t.Fatalf("got %q", got)
	}
	if st, _ := s.Stat(t.Context(), "k"); st.ETag != c.ETag {
		t.Fatalf("Stat ETag %q, Put returned %q", st.ETag, c.ETag)
	}
}

func testSizeMismatch(t *testing.T, s objectstore.Store) {
	ctx := t.Context()
	_, err := s.Put(ctx, "short", strings.NewReader("12345"), 10)
	if err == nil {
		t.Fatal("Put of 5 bytes declared as 10 succeeded")
	}
	wantAbsent(t, s, "short")
	_, err = s.Put(ctx, "long", strings.NewReader(strings.Repeat("x", 20)), 10)
	if err == nil {
		t.Fatal("Put of 20 bytes declared as 10 succeeded")
	}
	wantAbsent(t, s, "long")
	put(t, s, "kept", "old")
	if _, err := s.Put(ctx, "kept", strings.NewReader("new"), 30); err == nil {
		t.Fatal("Put with a wrong size succeeded")
	}
	if got := mustGet(t, s, "kept"); got != "old" {
		t.Fatalf("a failed overwrite changed the object to %q", got)
	}
	if _, err := s.Put(ctx, "neg", strings.NewReader(""), -2); err == nil {
		t.Fatal("Put with size -2 succeeded")
	}
}

// failingReader yields n bytes, then err.
type failingReader struct {
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	k := min(len(p), f.n)
	for i := range p[:k] {
		p[i] = 'z'
	}
	f.n -= k
	return k, nil
}

func testReaderError(t *testing.T, s objectstore.Store) {
	boom := errors.New("reader broke")
	put(t, s, "k", "original")
	for _, size := range []int64{objectstore.SizeUnknown, 1 << 20} {
		_, err := s.Put(t.Context(), "k", &failingReader{n: 100 << 10, err: boom}, size)
		wantErr(t, "Put from a failing reader", err, boom)
		if got := mustGet(t, s, "k"); got != "original" {
			t.Fatalf("a failed Put changed the object to %q", got)
		}
		_, err = s.Put(t.Context(), "new", &failingReader{n: 10, err: boom}, size)
		wantErr(t, "Put from a failing reader", err, boom)
		wantAbsent(t, s, "new")
	}
}

// patternReader yields n pseudo-random bytes from seed, in odd-sized reads.
type patternReader struct {
	rng *rand.ChaCha8
	n   int64
}

func newPattern(seed byte, n int64) *patternReader {
	var s [32]byte
	s[0] = seed
	return &patternReader{rng: rand.NewChaCha8(s), n: n}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.n == 0 {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n, 100_003)]
	_, _ = p.rng.Read(b)
	p.n -= int64(len(b))
	return len(b), nil
}

func testLargeUnknownSize(t *testing.T, s objectstore.Store) {
	const n = LargeObjectBytes
	want := sha256.New()
	_, _ = io.Copy(want, newPattern(1, n))
	info, err := s.Put(t.Context(), "large/object", newPattern(1, n), objectstore.SizeUnknown)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != n {
		t.Fatalf("Put size %d, want %d", info.Size, n)
	}
	rc, ginfo, err := s.Get(t.Context(), "large/object", 0, objectstore.ToEnd)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	m, err := io.Copy(got, rc)
	rc.Close()
	if err != nil || m != n || ginfo.Size != n {
		t.Fatalf("Get: %d bytes, size %d, %v", m, ginfo.Size, err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("large object read back differs")
	}
	// A range across chunk boundaries in the middle.
	const off, length = 9<<20 + 12345, 3<<20 + 7
	full, _ := io.ReadAll(io.LimitReader(newPattern(1, n), off+length))
	part, _, err := get(t, s, "large/object", off, length)
	if err != nil || part != string(full[off:]) {
		t.Fatalf("ranged Get of the large object: %d bytes, %v", len(part), err)
	}
}

func testKeys(t *testing.T, s objectstore.Store) {
	ctx := t.Context()
	// Exactly MaxKeyBytes: four 240-byte segments and their "/", then 60.
	long := strings.Repeat(strings.Repeat("y", 240)+"/", 4) + strings.Repeat("z", 60)
	for _, key := range []string{
		"a", "with space", "ünïcødé/ключ", "dots.in.name", "a-b_c~d", "x/..y/y..", ".hidden/.x",
		"00000000000000000042-7-3f2a.log", long,
	} {
		put(t, s, key, "v:"+key[:min(len(key), 20)])
		if got := mustGet(t, s, key); got != "v:"+key[:min(len(key), 20)] {
			t.Fatalf("key %q: got %q", key, got)
		}
	}
	for _, key := range []string{
		"", "/abs", "a//b", "a/", "..", "a/../b", "./a", "a/.", "nul\x00", "tab\tx", "back\\slash",
		strings.Repeat("x", objectstore.MaxKeyBytes+1), "bad\xffutf8",
	} {
		what := fmt.Sprintf("key %q", key)
		_, err := s.Put(ctx, key, strings.NewReader("x"), 1)
		wantErr(t, "Put "+what, err, objectstore.ErrInvalidKey)
		_, err = s.PutIfAbsent(ctx, key, strings.NewReader("x"), 1)
		if s.Capabilities().PutIfAbsent {
			wantErr(t, "PutIfAbsent "+what, err, objectstore.ErrInvalidKey)
		}
		_, _, err = s.Get(ctx, key, 0, objectstore.ToEnd)
		wantErr(t, "Get "+what, err, objectstore.ErrInvalidKey)
		_, err = s.Stat(ctx, key)
		wantErr(t, "Stat "+what, err, objectstore.ErrInvalidKey)
		wantErr(t, "Delete "+what, s.Delete(ctx, "a", key), objectstore.ErrInvalidKey)
	}
	if err := objectstore.ValidateKey("ok/key"); err != nil {
		t.Fatal(err)
	}
	for _, err := range s.List(ctx, "/abs") {
		wantErr(t, "List with an invalid prefix", err, objectstore.ErrInvalidKey)
	}
}

// list collects a listing.
func list(t *testing.T, s objectstore.Store, prefix string) []objectstore.ObjectInfo {
	t.Helper()
	var out []objectstore.ObjectInfo
	for info, err := range s.List(t.Context(), prefix) {
		if err != nil {
			t.Fatalf("List %q: %v", prefix, err)
		}
		out = append(out, info)
	}
	return out
}

func keysOf(infos []objectstore.ObjectInfo) []string {
	keys := make([]string, len(infos))
	for i, in := range infos {
		keys[i] = in.Key
	}
	return keys
}

func testListOrderAndPrefix(t *testing.T, s objectstore.Store) {
	// Chosen so that directory-walk order differs from byte order:
	// '-' (0x2d) and '.' (0x2e) sort before '/' (0x2f), '0' after.
	keys := []string{"x-1", "x.y/z", "x/1", "x/2/3", "x/2/4", "x0", "x/22", "y", "xx/a/b/c"}
	infos := map[string]objectstore.ObjectInfo{}
	for _, k := range keys {
		infos[k] = put(t, s, k, "content of "+k)
	}
	sorted := slices.Sorted(slices.Values(keys))
	for _, tc := range []struct{ prefix string }{
		{""}, {"x"}, {"x/"}, {"x/2"}, {"x/2/"}, {"x."}, {"xx/a/"}, {"y"}, {"z"}, {"x/2/3"}, {"x/2/3/"},
	} {
		var want []string
		for _, k := range sorted {
			if strings.HasPrefix(k, tc.prefix) {
				want = append(want, k)
			}
		}
		got := list(t, s, tc.prefix)
		if !slices.Equal(keysOf(got), want) {
			t.Fatalf("List %q = %q, want %q", tc.prefix, keysOf(got), want)
		}
		for _, in := range got {
			p := infos[in.Key]
			if in.Size != p.Size || in.ETag != p.ETag {
				t.Fatalf("List entry %+v, Put returned %+v", in, p)
			}
		}
	}
}

func testListMany(t *testing.T, s objectstore.Store) {
	prefixes := []string{"p/a/", "p/b/", "q/"}
	var want []string
	for i := range ManyKeys {
		want = append(want, fmt.Sprintf("%s%06d", prefixes[i%len(prefixes)], i))
	}
	// Put concurrently: the suite must stay fast on stores with fsync.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	work := make(chan string)
	for range 8 {
		wg.Go(func() {
			for k := range work {
				if _, err := s.Put(t.Context(), k, strings.NewReader(k), int64(len(k))); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for _, k := range want {
		work <- k
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	slices.Sort(want)
	if got := keysOf(list(t, s, "")); !slices.Equal(got, want) {
		t.Fatalf("List \"\" gave %d keys, want %d (first difference matters)", len(got), len(want))
	}
	for _, p := range append(prefixes, "p/") {
		var wp []string
		for _, k := range want {
			if strings.HasPrefix(k, p) {
				wp = append(wp, k)
			}
		}
		if got := keysOf(list(t, s, p)); !slices.Equal(got, wp) {
			t.Fatalf("List %q gave %d keys, want %d", p, len(got), len(wp))
		}
	}
	// Stopping early.
	n := 0
	for _, err := range s.List(t.Context(), "") {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 10 {
			break
		}
	}
	if n != 10 {
		t.Fatalf("early break after %d entries", n)
	}
}

func testDeleteBatch(t *testing.T, s objectstore.Store) {
	ctx := t.Context()
	for i := range 5 {
		put(t, s, fmt.Sprintf("d/%d", i), "x")
	}
	put(t, s, "d/sub/deep/x", "x")
	if err := s.Delete(ctx, "d/0", "d/missing", "d/2", "d/4", "other/missing", "d/sub/deep/x"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := keysOf(list(t, s, "d/")); !slices.Equal(got, []string{"d/1", "d/3"}) {
		t.Fatalf("after Delete: %q", got)
	}
	// An invalid key fails the batch before anything is deleted.
	wantErr(t, "Delete with an invalid key", s.Delete(ctx, "d/1", "bad//key"), objectstore.ErrInvalidKey)
	if got := keysOf(list(t, s, "d/")); !slices.Equal(got, []string{"d/1", "d/3"}) {
		t.Fatalf("after a refused Delete: %q", got)
	}
	if err := s.Delete(ctx); err != nil {
		t.Fatalf("empty Delete: %v", err)
	}
	// A deleted prefix can become an object itself (empty directories go).
	put(t, s, "d/sub", "now a leaf")
	if err := s.Delete(ctx, "d/1", "d/3", "d/1"); err != nil {
		t.Fatal(err)
	}
	if got := keysOf(list(t, s, "d/")); !slices.Equal(got, []string{"d/sub"}) {
		t.Fatalf("after the last Delete: %q", got)
	}
}

func testPutIfAbsent(t *testing.T, s objectstore.Store) {
	ctx := t.Context()
	if !s.Capabilities().PutIfAbsent {
		_, err := s.PutIfAbsent(ctx, "c", strings.NewReader("x"), 1)
		wantErr(t, "PutIfAbsent without the capability", err, objectstore.ErrUnsupported)
		return
	}
	info, err := s.PutIfAbsent(ctx, "c", strings.NewReader("first"), 5)
	if err != nil || info.Size != 5 || info.ETag == "" {
		t.Fatalf("PutIfAbsent of a new key: %+v, %v", info, err)
	}
	_, err = s.PutIfAbsent(ctx, "c", strings.NewReader("second"), objectstore.SizeUnknown)
	wantErr(t, "PutIfAbsent of an existing key", err, objectstore.ErrPreconditionFailed)
	if got := mustGet(t, s, "c"); got != "first" {
		t.Fatalf("content %q after a refused PutIfAbsent", got)
	}
	if err := s.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutIfAbsent(ctx, "c", strings.NewReader("third"), 5); err != nil {
		t.Fatalf("PutIfAbsent after Delete: %v", err)
	}
	if _, err := s.PutIfAbsent(ctx, "new/deep/key", strings.NewReader(""), 0); err != nil {
		t.Fatalf("PutIfAbsent of a deep key: %v", err)
	}
}

// racers is how many goroutines race for one conditional put, in each of
// raceRounds rounds. Races are probabilistic: the file store with its
// commit lock removed (a window of a few syscalls) lost about one round in
// twenty on two cores, so 20 rounds catch that about two runs in three. An
// atomic implementation never fails.
const (
	racers     = 16
	raceRounds = 20
)

func testPutIfAbsentRace(t *testing.T, s objectstore.Store) {
	if !s.Capabilities().PutIfAbsent {
		t.Skip("no PutIfAbsent")
	}
	for round := range raceRounds {
		key := fmt.Sprintf("race/%d", round)
		winners := race(t, func(i int) error {
			body := fmt.Sprintf("writer %d", i)
			_, err := s.PutIfAbsent(t.Context(), key, strings.NewReader(body), int64(len(body)))
			return err
		})
		if len(winners) != 1 {
			t.Fatalf("round %d: %d PutIfAbsent calls succeeded, want exactly 1", round, len(winners))
		}
		if got, want := mustGet(t, s, key), fmt.Sprintf("writer %d", winners[0]); got != want {
			t.Fatalf("round %d: content %q, the winner wrote %q", round, got, want)
		}
	}
}

// race runs fn(0..racers-1) at once and returns who succeeded; every
// failure must be ErrPreconditionFailed.
func race(t *testing.T, fn func(i int) error) []int {
	t.Helper()
	var (
		mu      sync.Mutex
		winners []int
		others  []error
		wg      sync.WaitGroup
		start   = make(chan struct{})
	)
	for i := range racers {
		wg.Go(func() {
			<-start
			err := fn(i)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				winners = append(winners, i)
			} else if !errors.Is(err, objectstore.ErrPreconditionFailed) {
				others = append(others, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(others) > 0 {
		t.Fatalf("racing conditional puts failed otherwise: %v", others[0])
	}
	return winners
}

func testPutIfMatch(t *testing.T, s objectstore.Store) {
	ctx := t.Context()
	if !s.Capabilities().PutIfMatch {
		_, err := s.PutIfMatch(ctx, "m", "etag", strings.NewReader("x"), 1)
		wantErr(t, "PutIfMatch without the capability", err, objectstore.ErrUnsupported)
		return
	}
	_, err := s.PutIfMatch(ctx, "m", "some-etag", strings.NewReader("x"), 1)
	wantErr(t, "PutIfMatch of a missing key", err, objectstore.ErrPreconditionFailed)
	wantErr(t, "PutIfMatch of a missing key", err, objectstore.ErrNotExist)
	wantAbsent(t, s, "m")

	v1 := put(t, s, "m", "manifest v1")
	v2, err := s.PutIfMatch(ctx, "m", v1.ETag, strings.NewReader("manifest v2"), objectstore.SizeUnknown)
	if err != nil {
		t.Fatalf("PutIfMatch with the current ETag: %v", err)
	}
	if v2.ETag == v1.ETag || v2.Size != int64(len("manifest v2")) {
		t.Fatalf("PutIfMatch returned %+v after %+v", v2, v1)
	}
	_, err = s.PutIfMatch(ctx, "m", v1.ETag, strings.NewReader("zombie write"), 12)
	wantErr(t, "PutIfMatch with a stale ETag", err, objectstore.ErrPreconditionFailed)
	if errors.Is(err, objectstore.ErrNotExist) {
		t.Fatalf("a stale ETag on an existing key matched ErrNotExist: %v", err)
	}
	if got := mustGet(t, s, "m"); got != "manifest v2" {
		t.Fatalf("content %q after a refused PutIfMatch", got)
	}
	_, err = s.PutIfMatch(ctx, "m", "", strings.NewReader("x"), 1)
	wantErr(t, "PutIfMatch with an empty ETag", err, objectstore.ErrPreconditionFailed)
	// A failed body does not commit even with the right ETag.
	_, err = s.PutIfMatch(ctx, "m", v2.ETag, strings.NewReader("short"), 100)
	if err == nil {
		t.Fatal("PutIfMatch with a wrong size succeeded")
	}
	if got := mustGet(t, s, "m"); got != "manifest v2" {
		t.Fatalf("content %q after a failed PutIfMatch", got)
	}
	if err := s.Delete(ctx, "m"); err != nil {
		t.Fatal(err)
	}
	_, err = s.PutIfMatch(ctx, "m", v2.ETag, strings.NewReader("x"), 1)
	wantErr(t, "PutIfMatch after Delete", err, objectstore.ErrNotExist)
}

func testPutIfMatchRace(t *testing.T, s objectstore.Store) {
	if !s.Capabilities().PutIfMatch {
		t.Skip("no PutIfMatch")
	}
	cur := put(t, s, "cas", "generation 0")
	for round := range raceRounds {
		etag := cur.ETag
		infos := make([]objectstore.ObjectInfo, racers)
		winners := race(t, func(i int) error {
			body := fmt.Sprintf("generation %d by %d", round+1, i)
			info, err := s.PutIfMatch(t.Context(), "cas", etag, strings.NewReader(body), int64(len(body)))
			infos[i] = info
			return err
		})
		if len(winners) != 1 {
			t.Fatalf("round %d: %d PutIfMatch calls succeeded, want exactly 1", round, len(winners))
		}
		w := winners[0]
		if got, want := mustGet(t, s, "cas"), fmt.Sprintf("generation %d by %d", round+1, w); got != want {
			t.Fatalf("round %d: content %q, the winner wrote %q", round, got, want)
		}
		cur = infos[w]
	}
}

// cancelingReader yields n bytes, then cancels and keeps yielding.
type cancelingReader struct {
	n      int
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	k := min(len(p), 4096)
	c.n -= k
	return k, nil
}

func testCancellation(t *testing.T, s objectstore.Store) {
	put(t, s, "exists", strings.Repeat("e", 100_000))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Put(ctx, "k", strings.NewReader("x"), 1)
	wantErr(t, "Put with a cancelled context", err, context.Canceled)
	wantAbsent(t, s, "k")
	if s.Capabilities().PutIfAbsent {
		_, err = s.PutIfAbsent(ctx, "k", strings.NewReader("x"), 1)
		wantErr(t, "PutIfAbsent with a cancelled context", err, context.Canceled)
	}
	if s.Capabilities().PutIfMatch {
		info, _ := s.Stat(t.Context(), "exists")
		_, err = s.PutIfMatch(ctx, "exists", info.ETag, strings.NewReader("x"), 1)
		wantErr(t, "PutIfMatch with a cancelled context", err, context.Canceled)
	}
	_, _, err = s.Get(ctx, "exists", 0, objectstore.ToEnd)
	wantErr(t, "Get with a cancelled context", err, context.Canceled)
	_, err = s.Stat(ctx, "exists")
	wantErr(t, "Stat with a cancelled context", err, context.Canceled)
	wantErr(t, "Delete with a cancelled context", s.Delete(ctx, "exists"), context.Canceled)
	if mustGet(t, s, "exists") == "" {
		t.Fatal("a cancelled Delete deleted")
	}
	sawErr := false
	for _, err := range s.List(ctx, "") {
		if err != nil {
			wantErr(t, "List with a cancelled context", err, context.Canceled)
			sawErr = true
		}
	}
	if !sawErr {
		t.Fatal("List with a cancelled context reported no error")
	}

	// Cancelled while the body streams: nothing is stored.
	for _, size := range []int64{objectstore.SizeUnknown, 10 << 20} {
		ctx, cancel := context.WithCancel(t.Context())
		_, err = s.Put(ctx, "streamed", &cancelingReader{n: 1 << 20, cancel: cancel}, size)
		wantErr(t, "Put cancelled mid-body", err, context.Canceled)
		wantAbsent(t, s, "streamed")
	}

	// Cancelled while a Get's reader is being read.
	ctx, cancel = context.WithCancel(t.Context())
	rc, _, err := s.Get(ctx, "exists", 0, objectstore.ToEnd)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	cancel()
	_, err = io.ReadAll(rc)
	wantErr(t, "reading a Get after cancellation", err, context.Canceled)

	// A deadline works the same way.
	ctx, cancel = context.WithTimeout(t.Context(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err = s.Stat(ctx, "exists")
	wantErr(t, "Stat past its deadline", err, context.DeadlineExceeded)
}

func testReaderSnapshot(t *testing.T, s objectstore.Store) {
	old := strings.Repeat("o", 300_000)
	put(t, s, "snap", old)
	rc, info, err := s.Get(t.Context(), "snap", 0, objectstore.ToEnd)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	head := make([]byte, 10)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}
	put(t, s, "snap", strings.Repeat("n", 300_000))
	if err := s.Delete(t.Context(), "nothing"); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if string(head)+string(rest) != old {
		t.Fatal("a Get's reader mixed two versions of the object")
	}
	if info.Size != int64(len(old)) {
		t.Fatalf("info.Size %d", info.Size)
	}
}
