package tiering

import (
	"errors"
	"fmt"
	"hash/crc32"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratalog/strata/internal/miniotest"
	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/segments"
)

func TestUploadMem(t *testing.T) {
	checkUpload(t, objectstore.NewMem())
}

// The same upload against a real MinIO server through the s3 backend.
// Without the minio binary this fails, naming the command that installs
// it.
func TestUploadMinIO(t *testing.T) {
	srv := miniotest.Start(t)
	u := "s3://" + srv.NewBucket(t) + "/strata?region=us-east-1&endpoint=" + url.QueryEscape(srv.Endpoint())
	store, err := objectstore.OpenWith(t.Context(), u, objectstore.Options{
		Credentials: objectstore.Credentials{AccessKey: srv.AccessKey(), SecretKey: srv.SecretKey()},
	})
	if err != nil {
		t.Fatalf("OpenWith(%s): %v", u, err)
	}
	t.Cleanup(func() { store.Close() })
	checkUpload(t, store)
}

// checkUpload uploads the closed, committed segments of a real log and
// checks the manifest and the objects against the local files.
func checkUpload(t *testing.T, store objectstore.Store) {
	ctx := t.Context()
	const epoch = 3
	l := testLog(t, 20, epoch)
	closed := closedSegments(t, l)
	if len(closed) < 4 {
		t.Fatalf("the test log closed %d segments, want at least 4", len(closed))
	}
	last := closed[len(closed)-1]
	// The high watermark inside the last closed segment: it must wait.
	src := &testSource{log: l, epoch: epoch, hw: last.Base + 1, snapshots: map[segments.Offset][]byte{
		closed[1].Next: []byte("producer snapshot at " + fmt.Sprint(closed[1].Next)),
	}}
	up := newTestUploader(t, store, src, nil)

	st, err := up.UploadOnce(ctx)
	if err != nil {
		t.Fatalf("UploadOnce: %v", err)
	}
	want := closed[:len(closed)-1]
	if st.Segments != len(want) || st.LagSegments != 1 || st.LagBytes != last.LogBytes {
		t.Fatalf("UploadOnce stats %+v, want %d segments uploaded and the last closed one (%d bytes) lagging", st, len(want), last.LogBytes)
	}
	m := loadManifest(t, store)
	if len(m.Segments) != len(want) {
		t.Fatalf("manifest has %d segments, want %d", len(m.Segments), len(want))
	}
	var total int64
	for i, cs := range want {
		s := m.Segments[i]
		total += s.ObjectBytes
		if s.BaseOffset != cs.Base || s.EndOffset != cs.Next || s.LeaderEpoch != epoch {
			t.Errorf("segment %d: [%d, %d) epoch %d, want [%d, %d) epoch %d", i, s.BaseOffset, s.EndOffset, s.LeaderEpoch, cs.Base, cs.Next, epoch)
		}
		if i > 0 && s.BaseOffset != m.Segments[i-1].EndOffset {
			t.Errorf("segment %d starts at %d, the previous ends at %d", i, s.BaseOffset, m.Segments[i-1].EndOffset)
		}
		if s.Parts.Log != cs.LogBytes || s.Parts.Index != cs.IndexBytes || s.Parts.TimeIndex != cs.TimeIndexBytes {
			t.Errorf("segment %d parts %+v, local sizes log %d index %d time index %d", i, s.Parts, cs.LogBytes, cs.IndexBytes, cs.TimeIndexBytes)
		}
		if s.MaxTimestamp != cs.MaxTimestamp || s.FirstTimestamp > s.MaxTimestamp || s.FirstTimestamp < t0.UnixMilli() {
			t.Errorf("segment %d timestamps first %d max %d, local max %d", i, s.FirstTimestamp, s.MaxTimestamp, cs.MaxTimestamp)
		}
		if !slices.Equal(s.Epochs, []EpochEntry{{Epoch: epoch, StartOffset: cs.Base}}) {
			t.Errorf("segment %d epochs %+v", i, s.Epochs)
		}
		key := m.SegmentKey(&s)
		obj := getRange(t, store, key, 0, objectstore.ToEnd)
		if int64(len(obj)) != s.ObjectBytes || crc32.Checksum(obj, crc32cTable) != s.CRC32C {
			t.Errorf("object %q: %d bytes crc %08x, manifest says %d bytes crc %08x", key, len(obj), crc32.Checksum(obj, crc32cTable), s.ObjectBytes, s.CRC32C)
		}
		if sums := chunkSums(obj, testChunkBytes); len(sums) < 2 || s.ChunkBytes != testChunkBytes || !slices.Equal(s.ChunkCRC32C, sums) {
			t.Errorf("object %q: chunk checksums (%d bytes) %08x, want (%d bytes) %08x", key, s.ChunkBytes, s.ChunkCRC32C, testChunkBytes, sums)
		}
		parts := map[Part][]byte{
			PartLog:       readFilePrefix(t, cs.Log.Name(), cs.LogBytes),
			PartIndex:     readFilePrefix(t, cs.Index.Name(), cs.IndexBytes),
			PartTimeIndex: readFilePrefix(t, cs.TimeIndex.Name(), cs.TimeIndexBytes),
			PartEpochs:    fmt.Appendf(nil, "0\n1\n%d %d\n", epoch, cs.Base),
			PartSnapshot:  src.snapshots[cs.Next],
		}
		for p, local := range parts {
			off, n := s.PartRange(p)
			if n == 0 {
				if len(local) != 0 {
					t.Errorf("object %q: part %v is empty, want %d bytes", key, p, len(local))
				}
				continue
			}
			if got := getRange(t, store, key, off, n); string(got) != string(local) {
				t.Errorf("object %q: part %v (%d bytes at %d) differs from the local one (%d bytes)", key, p, n, off, len(local))
			}
		}
	}
	if st.Bytes != total {
		t.Errorf("stats report %d bytes uploaded, the objects have %d", st.Bytes, total)
	}
	if got, want := l.UploadedTo(), want[len(want)-1].Next; got != want {
		t.Errorf("UploadedTo is %d, want %d", got, want)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Nothing new below the high watermark: nothing uploaded.
	st, err = up.UploadOnce(ctx)
	if err != nil || st.Segments != 0 {
		t.Fatalf("second UploadOnce: %+v, %v; want nothing uploaded", st, err)
	}
	if again := loadManifest(t, store); again.Generation != m.Generation {
		t.Fatalf("second UploadOnce committed generation %d (was %d)", again.Generation, m.Generation)
	}

	// The high watermark moves past the last closed segment.
	src.setHW(l.EndOffset())
	st, err = up.UploadOnce(ctx)
	if err != nil || st.Segments != 1 || st.LagSegments != 0 || st.LagAge != 0 {
		t.Fatalf("UploadOnce after the high watermark moved: %+v, %v; want the last closed segment uploaded, no lag", st, err)
	}
	m = loadManifest(t, store)
	if len(m.Segments) != len(closed) || m.EndOffset() != last.Next || l.UploadedTo() != last.Next {
		t.Fatalf("manifest has %d segments ending at %d, UploadedTo %d; want %d ending at %d", len(m.Segments), m.EndOffset(), l.UploadedTo(), len(closed), last.Next)
	}
	if keys := segmentObjects(t, store); !slices.Equal(keys, manifestKeys(m)) {
		t.Fatalf("bucket holds %q, manifest lists %q", keys, manifestKeys(m))
	}
}

// A newer leader commits; the deposed one is fenced and uploads nothing
// more.
func TestUploadFenced(t *testing.T) {
	ctx := t.Context()
	store := objectstore.NewMem()
	l, closed, old := newTestPartition(t, 1)
	oldUp := newTestUploader(t, store, old, nil)
	if st, err := oldUp.UploadOnce(ctx); err != nil || st.Segments != 2 {
		t.Fatalf("epoch 1 UploadOnce: %+v, %v; want 2 segments", st, err)
	}

	// The new leader: another replica of the same data at epoch 2.
	newSrc := &testSource{log: l, epoch: 2, hw: closed[2].Next}
	if st, err := newTestUploader(t, store, newSrc, nil).UploadOnce(ctx); err != nil || st.Segments != 1 {
		t.Fatalf("epoch 2 UploadOnce: %+v, %v; want 1 segment", st, err)
	}

	old.setHW(l.EndOffset())
	for range 2 {
		st, err := oldUp.UploadOnce(ctx)
		if !errors.Is(err, ErrFenced) || st.Segments != 0 {
			t.Fatalf("deposed UploadOnce: %+v, %v; want ErrFenced and nothing uploaded", st, err)
		}
	}
	m := loadManifest(t, store)
	if m.LeaderEpoch != 2 || len(m.Segments) != 3 || m.Segments[2].LeaderEpoch != 2 {
		t.Fatalf("manifest at epoch %d with %d segments, want epoch 2 with 3", m.LeaderEpoch, len(m.Segments))
	}
	if keys := segmentObjects(t, store); !slices.Equal(keys, manifestKeys(m)) {
		t.Fatalf("the deposed leader left objects: bucket holds %q, manifest lists %q", keys, manifestKeys(m))
	}
}

// A failed commit after the segment upload (a failing manifest put)
// leaves the object unlisted. Nothing proves it unreferenced — no manifest
// is committed — so cleanup keeps it, and the retry commits that same
// object instead of putting the segment again: one object, no orphan.
func TestUploadRetryCommitsThePendingObject(t *testing.T) {
	ctx := t.Context()
	store := objectstore.NewFaulty(objectstore.NewMem(), 1)
	l, closed, src := newTestPartition(t, 0)
	store.Add(objectstore.Fault{Ops: objectstore.OpAllPuts, Key: ManifestKey(testTP), Times: 2})
	up := newTestUploader(t, store, src, laterClock(time.Hour))

	for attempt := range 2 {
		st, err := up.UploadOnce(ctx)
		if err == nil || st.Segments != 0 {
			t.Fatalf("attempt %d with the manifest put failing: %+v, %v; want an error", attempt, st, err)
		}
		for _, want := range []string{testTP.String(), fmt.Sprintf("[%d, %d)", closed[0].Base, closed[0].Next), SegmentsPrefix(testTP)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		}
	}
	if m := loadManifest(t, store); len(m.Segments) != 0 || l.UploadedTo() != 0 {
		t.Fatalf("after the failed commits: manifest has %d segments, UploadedTo %d", len(m.Segments), l.UploadedTo())
	}
	pending := segmentObjects(t, store)
	if len(pending) != 1 {
		t.Fatalf("bucket holds %q after two failed commits, want the one object (put once, reused)", pending)
	}
	foreign := SegmentsPrefix(testTP) + "README.txt"
	if _, err := store.Put(ctx, foreign, strings.NewReader("not a segment"), 13); err != nil {
		t.Fatal(err)
	}
	// No committed manifest: nothing is deleted, whatever the grace.
	for _, grace := range []time.Duration{2 * time.Hour, 0} {
		if st, err := up.CleanOrphans(ctx, grace); err != nil || st.Deleted != 0 {
			t.Fatalf("CleanOrphans(%v) without a committed manifest: %+v, %v; want nothing deleted", grace, st, err)
		}
	}

	st, err := up.UploadOnce(ctx)
	if err != nil || st.Segments != 1 {
		t.Fatalf("retry: %+v, %v; want 1 segment", st, err)
	}
	m := loadManifest(t, store)
	if len(m.Segments) != 1 || m.Segments[0].BaseOffset != closed[0].Base || l.UploadedTo() != closed[0].Next {
		t.Fatalf("after the retry: manifest %+v, UploadedTo %d", m.Segments, l.UploadedTo())
	}
	if got := manifestKeys(m); !slices.Equal(got, pending) {
		t.Fatalf("the retry committed %q, want the object put by the first attempt %q", got, pending)
	}
	if st, err := up.CleanOrphans(ctx, 0); err != nil || st != (OrphanStats{}) {
		t.Fatalf("CleanOrphans after the commit: %+v, %v; want nothing deleted or kept", st, err)
	}
	if keys := segmentObjects(t, store); !slices.Equal(keys, append(slices.Clone(pending), foreign)) {
		t.Fatalf("the bucket holds %q, want %q and the foreign key", keys, pending)
	}
}

// A pending object that vanished (or changed size) is not committed: the
// retry puts the segment again.
func TestUploadPendingObjectGone(t *testing.T) {
	ctx := t.Context()
	store := objectstore.NewFaulty(objectstore.NewMem(), 1)
	_, _, src := newTestPartition(t, 0)
	store.Add(objectstore.Fault{Ops: objectstore.OpAllPuts, Key: ManifestKey(testTP), Times: 1})
	up := newTestUploader(t, store, src, nil)
	if _, err := up.UploadOnce(ctx); err == nil {
		t.Fatal("UploadOnce with the manifest put failing: no error")
	}
	first := segmentObjects(t, store)
	if len(first) != 1 {
		t.Fatalf("bucket holds %q, want one object", first)
	}
	if err := store.Delete(ctx, first...); err != nil {
		t.Fatal(err)
	}
	if st, err := up.UploadOnce(ctx); err != nil || st.Segments != 1 {
		t.Fatalf("retry: %+v, %v; want the segment uploaded again", st, err)
	}
	m := loadManifest(t, store)
	if got := manifestKeys(m); len(got) != 1 || got[0] == first[0] || !slices.Equal(segmentObjects(t, store), got) {
		t.Fatalf("manifest lists %q (first object %q), bucket holds %q", got, first, segmentObjects(t, store))
	}
}

// A lost reply on the segment put (the object landed, the uploader saw an
// error): the retry uploads a new object and commits the segment once;
// the first object is an orphan.
func TestUploadLostSegmentPutReply(t *testing.T) {
	ctx := t.Context()
	store := objectstore.NewFaulty(objectstore.NewMem(), 1)
	_, closed, src := newTestPartition(t, 2)
	store.Add(objectstore.Fault{Ops: objectstore.OpAllPuts, Key: SegmentsPrefix(testTP) + "*", Kind: objectstore.FaultErrorAfter, Times: 1})
	up := newTestUploader(t, store, src, laterClock(time.Hour))

	if st, err := up.UploadOnce(ctx); !errors.Is(err, objectstore.ErrInjected) || st.Segments != 0 {
		t.Fatalf("UploadOnce with the reply lost: %+v, %v; want the injected error", st, err)
	}
	st, err := up.UploadOnce(ctx)
	if err != nil || st.Segments != 3 {
		t.Fatalf("retry: %+v, %v; want 3 segments", st, err)
	}
	m := loadManifest(t, store)
	for i, s := range m.Segments {
		if s.BaseOffset != closed[i].Base {
			t.Fatalf("manifest segment %d starts at %d, want %d (segments %+v)", i, s.BaseOffset, closed[i].Base, m.Segments)
		}
	}
	if len(m.Segments) != 3 {
		t.Fatalf("manifest has %d segments, want 3", len(m.Segments))
	}
	if st, err := up.CleanOrphans(ctx, 0); err != nil || st.Deleted != 1 || st.Kept != 0 {
		t.Fatalf("CleanOrphans: %+v, %v; want the first attempt's object deleted", st, err)
	}
	if keys := segmentObjects(t, store); !slices.Equal(keys, manifestKeys(m)) {
		t.Fatalf("bucket holds %q, manifest lists %q", keys, manifestKeys(m))
	}
}

// A crash between the commit and SetUploadedTo: the next call only marks
// the segment uploaded.
func TestUploadCommittedNotMarked(t *testing.T) {
	ctx := t.Context()
	store := objectstore.NewMem()
	l, closed, src := newTestPartition(t, 0)
	src.failMark = 1
	up := newTestUploader(t, store, src, nil)
	if _, err := up.UploadOnce(ctx); err == nil {
		t.Fatal("UploadOnce with SetUploadedTo failing: no error")
	}
	if l.UploadedTo() != 0 {
		t.Fatalf("UploadedTo %d after the failure", l.UploadedTo())
	}
	// A fresh uploader, as after a restart.
	st, err := newTestUploader(t, store, src, nil).UploadOnce(ctx)
	if err != nil || st.Segments != 0 || l.UploadedTo() != closed[0].Next {
		t.Fatalf("UploadOnce after the restart: %+v, %v, UploadedTo %d; want nothing uploaded, UploadedTo %d", st, err, l.UploadedTo(), closed[0].Next)
	}
	if m := loadManifest(t, store); len(m.Segments) != 1 {
		t.Fatalf("manifest has %d segments, want 1", len(m.Segments))
	}
}

// A local segment straddling the manifest's end is an error naming both
// ranges.
func TestUploadOverlap(t *testing.T) {
	ctx := t.Context()
	store := objectstore.NewMem()
	l := testLog(t, 20, 1)
	closed := closedSegments(t, l)
	ms := NewManifestStore(store)
	mid := closed[0].Base + (closed[0].Next-closed[0].Base)/2
	if _, err := ms.Commit(ctx, testTP, "", buildManifest(t, 1, testSegment(closed[0].Base, mid, 1))); err != nil {
		t.Fatal(err)
	}
	src := &testSource{log: l, epoch: 1, hw: l.EndOffset()}
	_, err := newTestUploader(t, store, src, nil).UploadOnce(ctx)
	if err == nil {
		t.Fatal("UploadOnce over an overlapping manifest: no error")
	}
	for _, want := range []string{fmt.Sprintf("[%d, %d)", closed[0].Base, closed[0].Next), fmt.Sprintf("[%d, %d)", closed[0].Base, mid)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if keys := segmentObjects(t, store); len(keys) != 0 {
		t.Fatalf("objects uploaded: %q", keys)
	}
}
