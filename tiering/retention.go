package tiering

// Removing tiered data: remote retention and DeleteRecords trim a
// partition's manifest (the segments go from the manifest first, their
// objects after), and deleting a topic removes every object of its
// incarnation.

import (
	"context"
	"fmt"
	"slices"

	"github.com/stratalog/strata/objectstore"
)

// Trim commits the manifest that cut builds from the current one (at the
// uploader's leader epoch) and then deletes the objects of the segments
// cut removed. cut is Manifest.Expire or Manifest.WithoutBefore bound to
// their arguments; it returns its argument itself when nothing changes,
// and then Trim commits nothing. It returns the removed segments. An
// object whose delete fails is left for CleanOrphans (the manifest no
// longer lists it); the error says so but the trim stands. Errors matching
// ErrFenced make the Uploader refuse every later call, as UploadOnce does.
func (u *Uploader) Trim(ctx context.Context, cut func(m *Manifest) (*Manifest, []Segment)) ([]Segment, error) {
	if u.fenced != nil {
		return nil, u.fenced
	}
	if err := u.refresh(ctx); err != nil {
		return nil, err
	}
	var removed []Segment
	committed, err := u.commitEdit(ctx, u.src.LeaderEpoch(), func(next *Manifest) (*Manifest, error) {
		trimmed, gone := cut(next)
		if trimmed == next {
			return nil, nil
		}
		removed = gone
		return trimmed, nil
	})
	if err != nil {
		return nil, u.fail(fmt.Errorf("tiering: trimming %v: %w", u.tp, err))
	}
	if !committed {
		return nil, nil
	}
	keys := make([]string, len(removed))
	for i := range removed {
		keys[i] = u.manifest.SegmentKey(&removed[i])
	}
	for batch := range slices.Chunk(keys, deleteBatch) {
		if err := u.store.Delete(ctx, batch...); err != nil {
			return removed, fmt.Errorf("tiering: trimmed %v to log start %d; deleting %d objects from %q failed (orphan cleanup retries): %w",
				u.tp, u.manifest.LogStartOffset, len(batch), batch[0], err)
		}
	}
	return removed, nil
}

// DeleteTopicData deletes every object of the topic incarnation (name,
// id): all its partitions' manifests and segment objects. Manifests go
// first, so a reader never finds a manifest whose objects are gone. Keys
// that the layout does not recognise are left alone. It returns how many
// objects it deleted.
func DeleteTopicData(ctx context.Context, store objectstore.Store, name string, id TopicID) (int, error) {
	prefix := TopicPrefix(name) + id.String() + "/"
	var manifests, objects []string
	for info, err := range store.List(ctx, prefix) {
		if err != nil {
			return 0, fmt.Errorf("tiering: deleting topic %s (id %s): listing %q: %w", name, id, prefix, err)
		}
		if tp, err := ParseManifestKey(info.Key); err == nil && tp.TopicID == id {
			manifests = append(manifests, info.Key)
		} else if ref, err := ParseSegmentKey(info.Key); err == nil && ref.TopicID == id {
			objects = append(objects, info.Key)
		}
	}
	deleted := 0
	for _, keys := range [][]string{manifests, objects} {
		for batch := range slices.Chunk(keys, deleteBatch) {
			if err := store.Delete(ctx, batch...); err != nil {
				return deleted, fmt.Errorf("tiering: deleting topic %s (id %s): deleting %d objects from %q: %w", name, id, len(batch), batch[0], err)
			}
			deleted += len(batch)
		}
	}
	return deleted, nil
}
