package tiering

import (
	"slices"
	"testing"

	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/segments"
)

// Trim commits the trimmed manifest, then deletes exactly the removed
// segments' objects; a cut that changes nothing commits nothing; and
// DeleteTopicData removes every object of the topic incarnation.
func TestTrimAndDeleteTopicData(t *testing.T) {
	ctx := t.Context()
	store := objectstore.NewMem()
	l := testLog(t, 20, 2)
	closed := closedSegments(t, l)
	src := &testSource{log: l, epoch: 2, hw: l.EndOffset()}
	up := newTestUploader(t, store, src, nil)
	if _, err := up.UploadOnce(ctx); err != nil {
		t.Fatal(err)
	}
	before := loadManifest(t, store)
	if len(before.Segments) != len(closed) || len(closed) < 3 {
		t.Fatalf("uploaded %d segments of %d closed", len(before.Segments), len(closed))
	}

	cutAt := closed[2].Base
	removed, err := up.Trim(ctx, func(m *Manifest) (*Manifest, []Segment) { return m.WithoutBefore(cutAt) })
	if err != nil || len(removed) != 2 {
		t.Fatalf("Trim before %d: %d removed, %v; want the first 2 segments", cutAt, len(removed), err)
	}
	after := loadManifest(t, store)
	if after.LogStartOffset != cutAt || len(after.Segments) != len(closed)-2 || after.Generation != before.Generation+1 {
		t.Fatalf("manifest after the trim: log start %d, %d segments, generation %d", after.LogStartOffset, len(after.Segments), after.Generation)
	}
	if got, want := segmentObjects(t, store), manifestKeys(after); !slices.Equal(got, want) {
		t.Fatalf("objects after the trim %v, want exactly the manifest's %v", got, want)
	}
	if up.Cached() != nil && up.Cached().Generation != after.Generation {
		t.Fatalf("the uploader's cached manifest is generation %d, the stored one %d", up.Cached().Generation, after.Generation)
	}

	removed, err = up.Trim(ctx, func(m *Manifest) (*Manifest, []Segment) { return m.WithoutBefore(segments.Offset(1)) })
	if err != nil || removed != nil || loadManifest(t, store).Generation != after.Generation {
		t.Fatalf("a trim that changes nothing: removed %v, %v, or it committed", removed, err)
	}

	n, err := DeleteTopicData(ctx, store, testTP.Topic, testTP.TopicID)
	if err != nil || n != len(after.Segments)+1 {
		t.Fatalf("DeleteTopicData: %d objects, %v; want %d segments and the manifest", n, err, len(after.Segments))
	}
	for info, err := range store.List(ctx, "") {
		t.Fatalf("left in the bucket: %v %v", info.Key, err)
	}
}
