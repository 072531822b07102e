package tiering

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/segments"
)

// isOrphan is decided from the committed manifest alone: only what the
// manifest says it replaced (an unlisted copy inside a listed segment) or
// trimmed (below its log start) goes; everything else is kept.
func TestIsOrphan(t *testing.T) {
	// Segments [100, 200) epoch 2 and [300, 400) epoch 3 (a gap between),
	// log start 150, end 400.
	m := buildManifest(t, 3, testSegment(100, 200, 2), testSegment(300, 400, 3))
	m.LogStartOffset = 150
	now := time.Unix(1_700_000_000, 0)
	cutoff := now.Add(-time.Hour)
	old, young := cutoff.Add(-time.Second), cutoff
	ref := func(base segments.Offset, epoch segments.LeaderEpoch) SegmentRef {
		return SegmentRef{TopicPartition: testTP, BaseOffset: base, LeaderEpoch: epoch, UID: NewUID()}
	}
	for _, c := range []struct {
		name string
		ref  SegmentRef
		mod  time.Time
		want bool
	}{
		{"below the log start (a trimmed segment's failed delete)", ref(0, 1), old, true},
		{"below the log start but young", ref(0, 1), young, false},
		{"copy of a listed segment (retry, lost put reply)", ref(100, 2), old, true},
		{"inside a listed segment", ref(150, 2), old, true},
		{"deposed leader's upload inside a listed segment", ref(300, 1), old, true},
		{"inside a listed segment but young (upload in progress)", ref(300, 3), young, false},
		{"newer epoch than the segment covering it", ref(300, 4), old, false},
		{"in the gap between segments", ref(200, 2), old, false},
		{"in the gap, just before the next segment", ref(299, 3), old, false},
		{"at the end (an upload not committed yet)", ref(400, 3), old, false},
		{"far beyond the end", ref(10_000, 3), old, false},
	} {
		if got := isOrphan(m, c.ref, c.mod, cutoff); got != c.want {
			t.Errorf("%s: isOrphan(base %d, epoch %d) = %v, want %v", c.name, c.ref.BaseOffset, c.ref.LeaderEpoch, got, c.want)
		}
	}
	// A gap before the first segment (tiering started late, or a manifest
	// started over): kept.
	late := buildManifest(t, 1, testSegment(5000, 6000, 1))
	if isOrphan(late, ref(0, 1), old, cutoff) || isOrphan(late, ref(4999, 1), old, cutoff) {
		t.Error("an object before the first segment of a manifest with log start 0 is an orphan")
	}
}

// The manifest disappears after it was committed: the Uploader refuses to
// start a new history over it or to clean against it; every object stays;
// once the manifest is restored, uploads go on.
func TestUploadManifestLost(t *testing.T) {
	ctx := t.Context()
	store := objectstore.NewMem()
	l, closed, src := newTestPartition(t, 1)
	up := newTestUploader(t, store, src, laterClock(time.Hour))
	if st, err := up.UploadOnce(ctx); err != nil || st.Segments != 2 {
		t.Fatalf("UploadOnce: %+v, %v; want 2 segments", st, err)
	}
	saved := getRange(t, store, ManifestKey(testTP), 0, objectstore.ToEnd)
	before := segmentObjects(t, store)
	if err := store.Delete(ctx, ManifestKey(testTP)); err != nil {
		t.Fatal(err)
	}
	src.setHW(l.EndOffset())

	checkLost := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrManifestLost) || !strings.Contains(err.Error(), ManifestKey(testTP)) || !strings.Contains(err.Error(), "is missing") {
			t.Fatalf("%s with the manifest gone: %v; want ErrManifestLost naming the key", what, err)
		}
	}
	st, err := up.UploadOnce(ctx)
	checkLost("UploadOnce", err)
	if st.Segments != 0 {
		t.Fatalf("UploadOnce uploaded %d segments over a lost manifest", st.Segments)
	}
	_, err = up.CleanOrphans(ctx, 0)
	checkLost("CleanOrphans", err)
	_, err = up.Trim(ctx, func(m *Manifest) (*Manifest, []Segment) { return m.WithoutBefore(1) })
	checkLost("Trim", err)
	_, err = up.Manifest(ctx)
	checkLost("Manifest", err)
	if got := segmentObjects(t, store); !slices.Equal(got, before) {
		t.Fatalf("objects after the failures: %q, want %q", got, before)
	}
	if _, err := store.Stat(ctx, ManifestKey(testTP)); !errors.Is(err, objectstore.ErrNotExist) {
		t.Fatalf("a manifest was written over the lost one: %v", err)
	}

	// After a restart, the floor comes from the caller (the partition's
	// checkpoint): the same refusal, also for a manifest handed to Use.
	restarted := newTestUploaderOpts(t, store, src, UploaderOptions{MinGeneration: 2})
	_, err = restarted.UploadOnce(ctx)
	checkLost("UploadOnce after a restart", err)
	checkLost("Use", restarted.Use(ctx, NewManifest(testTP), ""))

	// Restored: the upload continues from it.
	if _, err := store.Put(ctx, ManifestKey(testTP), bytes.NewReader(saved), int64(len(saved))); err != nil {
		t.Fatal(err)
	}
	if st, err := up.UploadOnce(ctx); err != nil || st.Segments != len(closed)-2 {
		t.Fatalf("UploadOnce after the restore: %+v, %v; want the other %d segments", st, err, len(closed)-2)
	}
	if m := loadManifest(t, store); len(m.Segments) != len(closed) || m.Segments[0].BaseOffset != closed[0].Base {
		t.Fatalf("manifest after the restore has %d segments from %d, want %d from %d", len(m.Segments), m.Segments[0].BaseOffset, len(closed), closed[0].Base)
	}
}

// A manifest restored from an older copy (a lower generation than one
// already committed) is refused too: building on it would forget the
// segments committed since.
func TestUploadManifestRolledBack(t *testing.T) {
	ctx := t.Context()
	store := objectstore.NewMem()
	_, closed, src := newTestPartition(t, 0)
	up := newTestUploader(t, store, src, nil)
	if _, err := up.UploadOnce(ctx); err != nil {
		t.Fatal(err)
	}
	gen1 := getRange(t, store, ManifestKey(testTP), 0, objectstore.ToEnd)
	src.setHW(closed[1].Next)
	if _, err := up.UploadOnce(ctx); err != nil {
		t.Fatal(err)
	}
	before := segmentObjects(t, store)
	if _, err := store.Put(ctx, ManifestKey(testTP), bytes.NewReader(gen1), int64(len(gen1))); err != nil {
		t.Fatal(err)
	}
	checkLostRefused(t, up, store, before, "is at generation 1")
}

// checkLostRefused checks that up refuses UploadOnce (uploading nothing)
// and CleanOrphans with ErrManifestLost, the upload's error saying want,
// and that the bucket still holds the segment objects before.
func checkLostRefused(t *testing.T, up *Uploader, store objectstore.Store, before []string, want string) {
	t.Helper()
	st, err := up.UploadOnce(t.Context())
	if !errors.Is(err, ErrManifestLost) || !strings.Contains(err.Error(), want) || st.Segments != 0 {
		t.Fatalf("UploadOnce: %+v, %v; want ErrManifestLost saying %q and nothing uploaded", st, err, want)
	}
	if _, err := up.CleanOrphans(t.Context(), 0); !errors.Is(err, ErrManifestLost) {
		t.Fatalf("CleanOrphans: %v; want ErrManifestLost", err)
	}
	if got := segmentObjects(t, store); !slices.Equal(got, before) {
		t.Fatalf("objects %q, want %q", got, before)
	}
}

// An upload whose commit failed lies beyond the committed manifest's end:
// cleanup keeps it (and says so, so the caller looks again soon), and
// once the retry commits it nothing is left to clean.
func TestCleanOrphansKeepsUncommittedUpload(t *testing.T) {
	ctx := t.Context()
	store := objectstore.NewFaulty(objectstore.NewMem(), 1)
	_, closed, src := newTestPartition(t, 0)
	up := newTestUploader(t, store, src, laterClock(time.Hour))
	if _, err := up.UploadOnce(ctx); err != nil {
		t.Fatal(err)
	}
	store.Add(objectstore.Fault{Ops: objectstore.OpAllPuts, Key: ManifestKey(testTP), Times: 1})
	src.setHW(closed[1].Next)
	if _, err := up.UploadOnce(ctx); err == nil {
		t.Fatal("UploadOnce with the manifest put failing: no error")
	}
	if n := len(segmentObjects(t, store)); n != 2 {
		t.Fatalf("%d objects, want the committed one and the uncommitted one", n)
	}
	st, err := up.CleanOrphans(ctx, 0)
	if err != nil || st.Deleted != 0 || st.Kept != 1 {
		t.Fatalf("CleanOrphans: %+v, %v; want the uncommitted upload kept", st, err)
	}
	if _, err := up.UploadOnce(ctx); err != nil {
		t.Fatal(err)
	}
	st, err = up.CleanOrphans(ctx, 0)
	if err != nil || st != (OrphanStats{}) {
		t.Fatalf("CleanOrphans after the retry: %+v, %v; want nothing to clean", st, err)
	}
	if keys := segmentObjects(t, store); !slices.Equal(keys, manifestKeys(loadManifest(t, store))) {
		t.Fatalf("bucket holds %q, manifest lists %q", keys, manifestKeys(loadManifest(t, store)))
	}
}

// Without any local record of a generation (a data directory from before
// the tier checkpoint, or one that lost it), a missing manifest is still
// recognised as lost when the bucket holds segments below the local log
// start: local retention deletes only what a commit covered. A partition
// whose local log starts at 0, or whose objects all lie above its start,
// is new.
func TestUploadManifestLostByBucketEvidence(t *testing.T) {
	ctx := t.Context()
	store := objectstore.NewMem()
	l, closed, src := newTestPartition(t, 1)
	if _, err := newTestUploader(t, store, src, nil).UploadOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.DeleteRecordsBefore(closed[1].Base); err != nil { // local retention of segment 0
		t.Fatal(err)
	}
	if err := store.Delete(ctx, ManifestKey(testTP)); err != nil {
		t.Fatal(err)
	}
	before := segmentObjects(t, store)
	up := newTestUploader(t, store, src, laterClock(time.Hour)) // MinGeneration 0: no local record
	checkLostRefused(t, up, store, before, "below the local log start")

	// A new partition that starts above 0 (tiering enabled after local
	// deletions) with no objects below its start uploads normally.
	fresh := objectstore.NewMem()
	st, err := newTestUploader(t, fresh, src, nil).UploadOnce(ctx)
	if err != nil || st.Segments != 1 {
		t.Fatalf("UploadOnce of a partition that never tiered, starting at %d: %+v, %v; want 1 segment", closed[1].Base, st, err)
	}
}
