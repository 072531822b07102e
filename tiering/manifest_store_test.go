package tiering

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/segments"
)

// hookStore runs a hook (once) just before the next put of any kind
// reaches the store: the moment between Commit's re-read and its write,
// where a racing writer gets in.
type hookStore struct {
	objectstore.Store
	mu   sync.Mutex
	hook func()
}

func (h *hookStore) setHook(fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hook = fn
}

func (h *hookStore) runHook() {
	h.mu.Lock()
	fn := h.hook
	h.hook = nil
	h.mu.Unlock()
	if fn != nil {
		fn()
	}
}

func (h *hookStore) Put(ctx context.Context, key string, r io.Reader, size int64) (objectstore.ObjectInfo, error) {
	h.runHook()
	return h.Store.Put(ctx, key, r, size)
}

func (h *hookStore) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (objectstore.ObjectInfo, error) {
	h.runHook()
	return h.Store.PutIfAbsent(ctx, key, r, size)
}

func (h *hookStore) PutIfMatch(ctx context.Context, key, etag string, r io.Reader, size int64) (objectstore.ObjectInfo, error) {
	h.runHook()
	return h.Store.PutIfMatch(ctx, key, etag, r, size)
}

// leader is one broker's view of the partition: its epoch, the manifest
// it last loaded or committed and that manifest's ETag.
type leader struct {
	t     *testing.T
	ms    *ManifestStore
	epoch segments.LeaderEpoch
	m     *Manifest
	etag  string
}

func newLeader(t *testing.T, store objectstore.Store, epoch segments.LeaderEpoch) *leader {
	l := &leader{t: t, ms: NewManifestStore(store), epoch: epoch}
	l.load()
	return l
}

func (l *leader) load() {
	l.t.Helper()
	m, etag, err := l.ms.Load(context.Background(), testTP)
	if err != nil {
		l.t.Fatalf("epoch %d: Load: %v", l.epoch, err)
	}
	l.m, l.etag = m, etag
}

// next builds the successor of the leader's manifest with segments
// appended at its end, each 10 offsets long.
func (l *leader) next(nsegs int) *Manifest {
	l.t.Helper()
	n, err := l.m.Next(l.epoch)
	if err != nil {
		l.t.Fatalf("epoch %d: Next: %v", l.epoch, err)
	}
	for range nsegs {
		end := n.EndOffset()
		if n, err = n.With(testSegment(end, end+10, l.epoch)); err != nil {
			l.t.Fatalf("epoch %d: With: %v", l.epoch, err)
		}
	}
	return n
}

// commit commits next on the leader's ETag; on success the leader moves
// to next.
func (l *leader) commit(next *Manifest) error {
	etag, err := l.ms.Commit(context.Background(), testTP, l.etag, next)
	if err == nil {
		l.m, l.etag = next, etag
	}
	return err
}

func (l *leader) mustCommit(next *Manifest) {
	l.t.Helper()
	if err := l.commit(next); err != nil {
		l.t.Fatalf("epoch %d: Commit generation %d: %v", l.epoch, next.Generation, err)
	}
}

// stored returns the manifest in the store and its ETag.
func stored(t *testing.T, store objectstore.Store) (*Manifest, string) {
	t.Helper()
	m, etag, err := NewManifestStore(store).Load(context.Background(), testTP)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return m, etag
}

// sameManifest fails the test unless got and want encode identically.
func sameManifest(t *testing.T, what string, got, want *Manifest) {
	t.Helper()
	g, err1 := got.Encode()
	w, err2 := want.Encode()
	if err1 != nil || err2 != nil || !bytes.Equal(g, w) {
		t.Fatalf("%s:\n got  %s (%v)\n want %s (%v)", what, g, err1, w, err2)
	}
}

func TestManifestStoreLoadMissing(t *testing.T) {
	m, etag, err := NewManifestStore(objectstore.NewMem()).Load(context.Background(), testTP)
	if err != nil || etag != "" {
		t.Fatalf("Load of a partition that never committed = %v, %q, %v", m, etag, err)
	}
	sameManifest(t, "empty manifest", m, NewManifest(testTP))
	if _, _, err := NewManifestStore(objectstore.NewMem()).Load(context.Background(), TopicPartition{Topic: "a/b", TopicID: testID}); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("Load of an invalid partition = %v, want ErrInvalidKey", err)
	}
}

func TestManifestStoreCommitSequence(t *testing.T) {
	store := objectstore.NewMem()
	l := newLeader(t, store, 0)
	for gen := uint64(1); gen <= 3; gen++ {
		next := l.next(2)
		l.mustCommit(next)
		got, etag := stored(t, store)
		sameManifest(t, "stored manifest", got, next)
		info, err := store.Stat(context.Background(), ManifestKey(testTP))
		if err != nil || info.ETag != etag || etag != l.etag {
			t.Fatalf("generation %d: Commit returned ETag %q, Load %q, Stat %q (%v)", gen, l.etag, etag, info.ETag, err)
		}
		if got.Generation != gen || len(got.Segments) != int(2*gen) {
			t.Fatalf("generation %d: stored generation %d with %d segments", gen, got.Generation, len(got.Segments))
		}
	}
	// A new leader continues from the stored manifest.
	l2 := newLeader(t, store, 1)
	l2.mustCommit(l2.next(1))
	got, _ := stored(t, store)
	if got.Generation != 4 || got.LeaderEpoch != 1 || len(got.Segments) != 7 || got.Segments[6].LeaderEpoch != 1 {
		t.Fatalf("after the new leader's commit: %+v", got)
	}
}

// A zombie (epoch 4) that committed before the new leader (epoch 5) took
// over can never commit again, whether its ETag is stale or current.
func TestManifestStoreZombieFenced(t *testing.T) {
	store := objectstore.NewMem()
	zombie := newLeader(t, store, 4)
	zombie.mustCommit(zombie.next(1))

	// The new leader's first act is a commit at its epoch.
	successor := newLeader(t, store, 5)
	successor.mustCommit(successor.next(0))
	want, _ := stored(t, store)

	// The zombie, holding its own last ETag, tries to go on.
	err := zombie.commit(zombie.next(1))
	if !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "leader epoch 4") || !strings.Contains(err.Error(), "leader epoch 5") {
		t.Fatalf("zombie commit with a stale ETag = %v; want ErrFenced naming epochs 4 and 5", err)
	}
	// It reloads (now holding the current ETag): Next refuses, and a
	// hand-built successor is refused by Commit.
	zombie.load()
	if _, err := zombie.m.Next(4); !errors.Is(err, ErrFenced) {
		t.Fatalf("Next(4) on an epoch-5 manifest = %v, want ErrFenced", err)
	}
	forged := zombie.m.clone()
	forged.Generation++
	forged.LeaderEpoch = 4
	if forged, err = forged.With(testSegment(10, 20, 4)); err != nil {
		t.Fatal(err)
	}
	if err := zombie.commit(forged); !errors.Is(err, ErrFenced) {
		t.Fatalf("zombie commit with the current ETag = %v, want ErrFenced", err)
	}
	got, _ := stored(t, store)
	sameManifest(t, "after the zombie's attempts", got, want)

	// The successor carries on undisturbed.
	successor.mustCommit(successor.next(1))
}

// The window between Commit's re-read and its write: a successor that
// commits there is caught by the conditional put.
func TestManifestStoreRaceClosedByConditionalPut(t *testing.T) {
	for _, tc := range []struct {
		name          string
		zombieFirst   bool // the zombie committed once before the race
		racerEpoch    segments.LeaderEpoch
		want          error
		wantOperation objectstore.Op
	}{
		{"first commit, successor wins", false, 5, ErrFenced, objectstore.OpPutIfAbsent},
		{"later commit, successor wins", true, 5, ErrFenced, objectstore.OpPutIfMatch},
		{"later commit, same epoch", true, 4, ErrConflict, objectstore.OpPutIfMatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := objectstore.NewMem()
			hs := &hookStore{Store: mem}
			zombie := newLeader(t, hs, 4)
			if tc.zombieFirst {
				zombie.mustCommit(zombie.next(1))
			}
			next := zombie.next(1)
			var racerManifest *Manifest
			hs.setHook(func() {
				racer := newLeader(t, mem, tc.racerEpoch)
				racerManifest = racer.next(2)
				racer.mustCommit(racerManifest)
			})
			err := zombie.commit(next)
			if !errors.Is(err, tc.want) {
				t.Fatalf("commit racing a commit at epoch %d = %v, want %v", tc.racerEpoch, err, tc.want)
			}
			if racerManifest == nil {
				t.Fatal("the racing commit never ran: Commit did not write")
			}
			got, _ := stored(t, mem)
			sameManifest(t, "stored manifest after the race", got, racerManifest)
		})
	}
}

func TestManifestStoreConflicts(t *testing.T) {
	store := objectstore.NewMem()
	l := newLeader(t, store, 2)
	l.mustCommit(l.next(1))
	// Two updates built on the same manifest: the first wins, the second
	// conflicts and succeeds after a reload.
	other := newLeader(t, store, 2)
	l.mustCommit(l.next(1))
	if err := other.commit(other.next(1)); !errors.Is(err, ErrConflict) {
		t.Fatalf("commit on a stale ETag = %v, want ErrConflict", err)
	}
	other.load()
	other.mustCommit(other.next(1))

	// A successor that skips a generation, or repeats one.
	l.load()
	skip := l.next(0)
	skip.Generation++
	if err := l.commit(skip); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "next generation 5 does not follow the stored generation 3") {
		t.Fatalf("generation skip = %v, want ErrConflict", err)
	}
	same := l.m.clone()
	same.Segments = same.Segments[:1]
	if err := l.commit(same); !errors.Is(err, ErrConflict) {
		t.Fatalf("re-committing the stored generation with other content = %v, want ErrConflict", err)
	}

	// Caller mistakes.
	ctx := context.Background()
	ms := NewManifestStore(store)
	otherTP := testTP
	otherTP.Partition++
	if _, err := ms.Commit(ctx, otherTP, l.etag, l.next(0)); !errors.Is(err, ErrInvalidManifest) {
		t.Errorf("commit under another partition = %v", err)
	}
	if _, err := ms.Commit(ctx, testTP, "", NewManifest(testTP)); !errors.Is(err, ErrInvalidManifest) {
		t.Errorf("commit of generation 0 = %v", err)
	}
	broken := l.next(1)
	broken.Segments[len(broken.Segments)-1].UID = UID{}
	if _, err := ms.Commit(ctx, testTP, l.etag, broken); !errors.Is(err, ErrInvalidManifest) {
		t.Errorf("commit of an invalid manifest = %v", err)
	}
	got, _ := stored(t, store)
	if got.Generation != 3 {
		t.Fatalf("refused commits changed the store: generation %d", got.Generation)
	}
}

// Put succeeded, reply lost: Commit reads back, recognises its write and
// reports success, for the first commit (PutIfAbsent) and later ones
// (PutIfMatch), with and without conditional puts.
func TestManifestStoreLostReplyResolved(t *testing.T) {
	for _, conditional := range []bool{true, false} {
		f := objectstore.NewFaulty(objectstore.NewMem(), 1)
		f.DisableConditional(!conditional)
		l := newLeader(t, f, 0)
		for gen := 1; gen <= 3; gen++ {
			f.Add(objectstore.Fault{Ops: objectstore.OpAllPuts, Kind: objectstore.FaultErrorAfter, Times: 1})
			next := l.next(1)
			l.mustCommit(next)
			got, etag := stored(t, f.Inner())
			sameManifest(t, "stored", got, next)
			if etag != l.etag {
				t.Fatalf("conditional=%v generation %d: Commit returned ETag %q, stored %q", conditional, gen, l.etag, etag)
			}
		}
		if n := f.Injected(); n != 3 {
			t.Fatalf("conditional=%v: %d faults injected, want 3 (the test did not test)", conditional, n)
		}
	}
}

// Reply lost and the read-back fails too: Commit reports an error (not a
// fencing or conflict verdict), and the caller's retry of the same commit
// finds it landed, neither failing nor committing twice. A write that
// did not land is simply retried.
func TestManifestStoreLostReplyRetried(t *testing.T) {
	f := objectstore.NewFaulty(objectstore.NewMem(), 1)
	hs := &hookStore{Store: f}
	l := newLeader(t, hs, 3)
	l.mustCommit(l.next(1))

	for _, landed := range []bool{true, false} {
		kind := objectstore.FaultError
		if landed {
			kind = objectstore.FaultErrorAfter
		}
		f.Add(objectstore.Fault{Ops: objectstore.OpPutIfMatch, Kind: kind, Times: 1})
		hs.setHook(func() { f.Add(objectstore.Fault{Ops: objectstore.OpGet, Times: 1}) })
		before, _ := stored(t, f.Inner())
		next := l.next(1)
		err := l.commit(next)
		if err == nil || errors.Is(err, ErrFenced) || errors.Is(err, ErrConflict) || !errors.Is(err, objectstore.ErrInjected) {
			t.Fatalf("landed=%v: Commit = %v; want the injected error, undecided", landed, err)
		}
		got, _ := stored(t, f.Inner())
		if landed {
			sameManifest(t, "the write landed", got, next)
		} else {
			sameManifest(t, "the write did not land", got, before)
		}
		// The caller retries the same commit with the same ETag.
		l.mustCommit(next)
		got, etag := stored(t, f.Inner())
		sameManifest(t, "after the retry", got, next)
		if etag != l.etag || got.Generation != before.Generation+1 {
			t.Fatalf("landed=%v: after the retry: generation %d (from %d), ETag %q vs %q", landed, got.Generation, before.Generation, etag, l.etag)
		}
	}
	if n := f.Injected(); n != 4 {
		t.Fatalf("%d faults injected, want 4", n)
	}
}

// Without conditional puts the epoch check still refuses a zombie that
// reads after its successor committed (read, check, write).
func TestManifestStoreWithoutConditionalPuts(t *testing.T) {
	f := objectstore.NewFaulty(objectstore.NewMem(), 1)
	f.DisableConditional(true)
	if NewManifestStore(f).CommitsAtomic() {
		t.Fatal("CommitsAtomic on a store without conditional puts")
	}
	if !NewManifestStore(objectstore.NewMem()).CommitsAtomic() {
		t.Fatal("CommitsAtomic false on the mem store")
	}
	fs, err := objectstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	if NewManifestStore(fs).CommitsAtomic() {
		t.Fatal("CommitsAtomic on the file store, whose PutIfMatch is process-local")
	}

	zombie := newLeader(t, f, 4)
	zombie.mustCommit(zombie.next(1))
	successor := newLeader(t, f, 5)
	successor.mustCommit(successor.next(1))
	if err := zombie.commit(zombie.next(1)); !errors.Is(err, ErrFenced) {
		t.Fatalf("zombie commit = %v, want ErrFenced", err)
	}
	other := newLeader(t, f, 5)
	successor.mustCommit(successor.next(1))
	if err := other.commit(other.next(1)); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale ETag = %v, want ErrConflict", err)
	}
}

func TestManifestStoreCorruptStoredManifest(t *testing.T) {
	ctx := context.Background()
	valid := buildManifest(t, 1, testSegment(0, 10, 1))
	otherTP := testTP
	otherTP.Partition = 9
	foreign := NewManifest(otherTP)
	foreign, _ = foreign.Next(1)
	foreignBytes, _ := foreign.Encode()
	validBytes, _ := valid.Encode()
	gen0Bytes, _ := NewManifest(testTP).Encode()
	for name, content := range map[string][]byte{
		"garbage":           []byte("not a manifest"),
		"empty":             {},
		"truncated":         validBytes[:len(validBytes)/2],
		"another partition": foreignBytes,
		"generation 0":      gen0Bytes,
	} {
		store := objectstore.NewMem()
		key := ManifestKey(testTP)
		if _, err := store.Put(ctx, key, bytes.NewReader(content), int64(len(content))); err != nil {
			t.Fatal(err)
		}
		ms := NewManifestStore(store)
		if _, _, err := ms.Load(ctx, testTP); !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("%s: Load = %v, want ErrInvalidManifest", name, err)
		}
		if _, err := ms.Commit(ctx, testTP, "", valid); !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("%s: Commit over it = %v, want ErrInvalidManifest", name, err)
		}
		rc, _, err := store.Get(ctx, key, 0, objectstore.ToEnd)
		if err != nil {
			t.Fatal(err)
		}
		after, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(after, content) {
			t.Errorf("%s: the corrupt manifest was overwritten", name)
		}
	}
}

// liarStore's Get announces size instead of the object's real size and,
// if endless, yields white space without end.
type liarStore struct {
	objectstore.Store
	size    int64
	endless bool
}

type spaces struct{}

func (spaces) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func (l *liarStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, objectstore.ObjectInfo, error) {
	rc, info, err := l.Store.Get(ctx, key, offset, length)
	if err != nil {
		return rc, info, err
	}
	info.Size = l.size
	if l.endless {
		rc.Close()
		rc = io.NopCloser(spaces{})
	}
	return rc, info, nil
}

// An oversized manifest is refused, whether the store says so up front or
// its reader runs on past the size it announced.
func TestManifestStoreOversizedManifest(t *testing.T) {
	ctx := context.Background()
	valid := buildManifest(t, 1, testSegment(0, 10, 1))
	b, _ := valid.Encode()
	for _, liar := range []*liarStore{{size: MaxManifestBytes + 1}, {size: int64(len(b)), endless: true}} {
		liar.Store = objectstore.NewMem()
		if _, err := liar.Put(ctx, ManifestKey(testTP), bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
		_, _, err := NewManifestStore(liar).Load(ctx, testTP)
		if !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), "more than 67108864") {
			t.Errorf("Load with size %d, endless %v = %v; want ErrInvalidManifest", liar.size, liar.endless, err)
		}
	}
}

// Committers racing at one epoch serialise through the conditional put:
// every segment each of them added is in the final manifest.
func TestManifestStoreConcurrentCommitters(t *testing.T) {
	store := objectstore.NewMem()
	const committers, perCommitter = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, committers)
	for range committers {
		wg.Go(func() {
			ms := NewManifestStore(store)
			ctx := context.Background()
			for added := 0; added < perCommitter; {
				m, etag, err := ms.Load(ctx, testTP)
				if err != nil {
					errs <- err
					return
				}
				next, err := m.Next(1)
				if err == nil {
					end := next.EndOffset()
					next, err = next.With(testSegment(end, end+10, 1))
				}
				if err != nil {
					errs <- err
					return
				}
				_, err = ms.Commit(ctx, testTP, etag, next)
				switch {
				case err == nil:
					added++
				case !errors.Is(err, ErrConflict):
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, _ := stored(t, store)
	if got.Generation != committers*perCommitter || len(got.Segments) != committers*perCommitter || got.EndOffset() != 10*committers*perCommitter {
		t.Fatalf("after %d commits: generation %d, %d segments, end %d", committers*perCommitter, got.Generation, len(got.Segments), got.EndOffset())
	}
}
