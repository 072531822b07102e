package tiering

// The manifest commit protocol: loading a partition's manifest and
// replacing it, fenced by leader epoch and, where the store can, by
// conditional writes. See doc.go for the argument.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/stratalog/strata/objectstore"
)

// Sentinel errors of the commit protocol.
var (
	// ErrFenced: the stored manifest was committed at a newer leader
	// epoch than the caller's, so the caller is a deposed leader (a
	// zombie) and must stop acting for the partition. Retrying cannot
	// succeed.
	ErrFenced = errors.New("tiering: fenced by a newer leader epoch")
	// ErrConflict: the stored manifest changed since the caller loaded it
	// (another commit at the same or an older epoch got in first, or the
	// caller's next manifest was not built on the stored one). The caller
	// reloads, rebuilds its change on the fresh manifest and commits
	// again.
	ErrConflict = errors.New("tiering: manifest changed since it was loaded")
)

// ManifestStore loads and commits partition manifests in an object store.
// It keeps no state of its own: any number of ManifestStores (in any
// number of processes) may share a bucket, and its methods may be called
// concurrently.
type ManifestStore struct {
	store objectstore.Store
}

// NewManifestStore returns a ManifestStore over store.
func NewManifestStore(store objectstore.Store) *ManifestStore {
	return &ManifestStore{store: store}
}

// CommitsAtomic reports whether every commit is a compare-and-swap
// against every writer of the bucket, in this process or another: the
// store performs both conditional puts atomically and not merely within
// this process. When false, a commit is read, check, write: the epoch
// check still refuses a deposed leader that reads after its successor
// committed, but two writers racing between the read and the write can
// both succeed, the later overwriting the earlier. Fencing then rests on
// there being one writer per partition at a time (today: one node). The
// file store is in this position across processes (its PutIfMatch is
// atomic only within one), S3-compatible stores without conditional
// writes in every case.
func (s *ManifestStore) CommitsAtomic() bool {
	c := s.store.Capabilities()
	return c.PutIfAbsent && c.PutIfMatch && !c.PutIfMatchProcessLocal
}

// Load returns tp's current manifest and its ETag, to pass to Commit. A
// partition that never committed has the empty manifest (NewManifest,
// Generation 0) and ETag "". A stored manifest that fails to decode, or
// that names another partition, is an error matching ErrInvalidManifest;
// it is never replaced by an empty one.
func (s *ManifestStore) Load(ctx context.Context, tp TopicPartition) (*Manifest, string, error) {
	if err := tp.Validate(); err != nil {
		return nil, "", err
	}
	m, etag, _, err := s.load(ctx, tp)
	return m, etag, err
}

// load is Load returning the stored bytes too; tp is valid.
func (s *ManifestStore) load(ctx context.Context, tp TopicPartition) (*Manifest, string, []byte, error) {
	key := ManifestKey(tp)
	raw, info, err := readObject(ctx, s.store, key, MaxManifestBytes, ErrInvalidManifest)
	if errors.Is(err, objectstore.ErrNotExist) {
		return NewManifest(tp), "", nil, nil
	}
	if err != nil {
		return nil, "", nil, fmt.Errorf("tiering: loading manifest of %v: %w", tp, err)
	}
	m, err := DecodeManifest(raw)
	if err != nil {
		return nil, "", nil, fmt.Errorf("tiering: manifest %q: %w", key, err)
	}
	if m.TopicPartition() != tp {
		return nil, "", nil, fmt.Errorf("tiering: manifest %q: %w: it describes %v", key, ErrInvalidManifest, m.TopicPartition())
	}
	if m.Generation == 0 {
		// Commit never stores generation 0, so this object was not
		// written by it.
		return nil, "", nil, fmt.Errorf("tiering: manifest %q: %w: stored with generation 0", key, ErrInvalidManifest)
	}
	return m, info.ETag, raw, nil
}

// Commit replaces tp's manifest, loaded with ETag prevETag ("" for none),
// with next, and returns the new ETag. next must be a successor of the
// loaded manifest: built with Next (Generation + 1, the caller's leader
// epoch) and then changed with With, WithoutBefore or Expire.
//
// Commit re-reads the stored manifest first and refuses with:
//   - ErrFenced if the stored manifest has a newer leader epoch than
//     next, whatever ETag the caller holds (a deposed leader is refused
//     even if nothing was committed since it loaded);
//   - ErrConflict if the stored manifest is not the one the caller loaded
//     (its ETag differs from prevETag) or next.Generation does not follow
//     it.
//
// Then it writes: PutIfAbsent for the first commit and PutIfMatch on the
// ETag just read for later ones where the store has them, so a commit
// that races another (a successor leader's included) fails with
// ErrFenced or ErrConflict instead of overwriting it; a plain Put where
// it has not (see CommitsAtomic).
//
// Lost replies: if the write fails ambiguously (an error that may hide a
// success), Commit reads the manifest back, and if the stored bytes are
// exactly next's encoding — which no other commit can produce, since
// generation and segment uids make each commit's content unique — it
// reports success. Likewise, calling Commit again with the same prevETag
// and next after an error succeeds, without writing twice, if the first
// call's write did land. Any other error leaves the outcome unknown: the
// caller retries the same Commit, or reloads.
func (s *ManifestStore) Commit(ctx context.Context, tp TopicPartition, prevETag string, next *Manifest) (string, error) {
	if err := tp.Validate(); err != nil {
		return "", err
	}
	if got := next.TopicPartition(); got != tp {
		return "", fmt.Errorf("%w: committing a manifest of %v as %v", ErrInvalidManifest, got, tp)
	}
	if next.Generation == 0 {
		return "", fmt.Errorf("%w: generation 0 is the empty manifest and is never stored (build on Next)", ErrInvalidManifest)
	}
	data, err := next.Encode()
	if err != nil {
		return "", err
	}
	cur, curETag, raw, err := s.load(ctx, tp)
	if err != nil {
		return "", err
	}
	if curETag != "" && bytes.Equal(raw, data) {
		return curETag, nil // this commit already landed: a retry after a lost reply
	}
	if err := checkSuccessor(tp, cur, curETag, prevETag, next); err != nil {
		return "", err
	}
	info, err := s.put(ctx, ManifestKey(tp), curETag, data)
	if err == nil {
		return info.ETag, nil
	}
	return s.resolve(ctx, tp, next, data, err)
}

// checkSuccessor applies the fencing and succession rules to the stored
// manifest cur (ETag curETag) and the proposed next.
func checkSuccessor(tp TopicPartition, cur *Manifest, curETag, prevETag string, next *Manifest) error {
	if next.LeaderEpoch < cur.LeaderEpoch {
		return fencedError(tp, cur, next)
	}
	if curETag != prevETag {
		return fmt.Errorf("%w: %v: loaded with ETag %q, stored manifest now has ETag %q (generation %d, leader epoch %d)",
			ErrConflict, tp, prevETag, curETag, cur.Generation, cur.LeaderEpoch)
	}
	if next.Generation != cur.Generation+1 {
		return fmt.Errorf("%w: %v: next generation %d does not follow the stored generation %d",
			ErrConflict, tp, next.Generation, cur.Generation)
	}
	return nil
}

func fencedError(tp TopicPartition, cur, next *Manifest) error {
	return fmt.Errorf("%w: %v: commit at leader epoch %d (generation %d) refused, the stored manifest is at leader epoch %d (generation %d)",
		ErrFenced, tp, next.LeaderEpoch, next.Generation, cur.LeaderEpoch, cur.Generation)
}

// put writes data under key, conditionally on the stored ETag (etag, ""
// for none) as far as the store allows.
func (s *ManifestStore) put(ctx context.Context, key, etag string, data []byte) (objectstore.ObjectInfo, error) {
	caps := s.store.Capabilities()
	size := int64(len(data))
	switch {
	case etag == "" && caps.PutIfAbsent:
		return s.store.PutIfAbsent(ctx, key, bytes.NewReader(data), size)
	case etag != "" && caps.PutIfMatch:
		return s.store.PutIfMatch(ctx, key, etag, bytes.NewReader(data), size)
	default:
		return s.store.Put(ctx, key, bytes.NewReader(data), size)
	}
}

// resolve decides a commit whose write failed with putErr by reading the
// manifest back.
func (s *ManifestStore) resolve(ctx context.Context, tp TopicPartition, next *Manifest, data []byte, putErr error) (string, error) {
	cur, curETag, raw, err := s.load(ctx, tp)
	if err != nil {
		return "", fmt.Errorf("tiering: committing manifest of %v generation %d: outcome unknown: %w (reading it back: %w)",
			tp, next.Generation, putErr, err)
	}
	if curETag != "" && bytes.Equal(raw, data) {
		return curETag, nil // the write landed; only its reply was lost
	}
	if cur.LeaderEpoch > next.LeaderEpoch {
		return "", fencedError(tp, cur, next)
	}
	if errors.Is(putErr, objectstore.ErrPreconditionFailed) {
		return "", fmt.Errorf("%w: %v: a concurrent commit got in first, stored manifest now generation %d at leader epoch %d",
			ErrConflict, tp, cur.Generation, cur.LeaderEpoch)
	}
	return "", fmt.Errorf("tiering: committing manifest of %v generation %d: %w", tp, next.Generation, putErr)
}

// readObject reads the whole object at key, refusing (with an error that
// matches invalid) one larger than limit bytes before reading it. Errors
// from the store are returned as they are, so ErrNotExist can be matched.
func readObject(ctx context.Context, store objectstore.Store, key string, limit int64, invalid error) ([]byte, objectstore.ObjectInfo, error) {
	rc, info, err := store.Get(ctx, key, 0, objectstore.ToEnd)
	if err != nil {
		return nil, objectstore.ObjectInfo{}, err
	}
	defer rc.Close()
	if info.Size > limit {
		return nil, objectstore.ObjectInfo{}, fmt.Errorf("%w: object %q is %d bytes, more than %d", invalid, key, info.Size, limit)
	}
	var buf bytes.Buffer
	buf.Grow(int(max(info.Size, 0)))
	// The limit also guards against a reader that yields more than the
	// size the store announced.
	if _, err := buf.ReadFrom(io.LimitReader(rc, limit+1)); err != nil {
		return nil, objectstore.ObjectInfo{}, fmt.Errorf("reading %q: %w", key, err)
	}
	if int64(buf.Len()) > limit {
		return nil, objectstore.ObjectInfo{}, fmt.Errorf("%w: object %q is more than %d bytes", invalid, key, limit)
	}
	return buf.Bytes(), info, nil
}
