package tiering

// The segment uploader: copies a partition's closed, committed segments
// into the bucket, one object each, and commits them to the manifest (the
// protocol of doc.go, "Commit protocol and fencing"). It also deletes the
// orphans that failed or deposed uploads leave behind.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/segments"
)

// Source is what the uploader needs from one partition's replica (the
// leader's broker/replica.Partition implements it). Its methods may be
// called from the uploader's goroutine while the partition appends.
type Source interface {
	// ClosedSegments returns the closed, fsynced segments whose base is
	// at or after from, in offset order, each pinned; the uploader
	// releases every one (see segments.Log.ClosedSegments).
	ClosedSegments(from segments.Offset) ([]segments.ClosedSegment, error)
	// HighWatermark is the partition's high watermark: offsets below it
	// are committed (replicated to the ISR). Nothing at or above it is
	// uploaded, since a new leader could truncate it.
	HighWatermark() segments.Offset
	// LeaderEpoch is the epoch this replica leads at; uploads and
	// manifest commits are made at it.
	LeaderEpoch() segments.LeaderEpoch
	// SetUploadedTo records that every offset below o is committed in the
	// remote tier, so local retention may delete segments below it (see
	// segments.Log.SetUploadedTo).
	SetUploadedTo(o segments.Offset) error
	// ProducerSnapshot returns the producer-state snapshot valid at end (a
	// segment's end offset), or nil, nil if there is none. The uploader
	// only reads the returned bytes.
	ProducerSnapshot(end segments.Offset) ([]byte, error)
	// LocalLogStartOffset is the first offset of the local log. Local
	// retention deletes a segment only once its upload is committed, so
	// a segment object below it proves that a manifest was committed
	// (see ErrManifestLost).
	LocalLogStartOffset() segments.Offset
}

// Defaults of UploaderOptions.
const (
	// DefaultPutTimeout bounds one segment object's upload: a 1 GiB
	// segment at a slow 2 MiB/s takes 512 s, so 10 minutes leaves room.
	DefaultPutTimeout = 10 * time.Minute
	// DefaultCommitTimeout bounds one manifest commit (a re-read and a
	// write of at most MaxManifestBytes, 64 MiB: 32 s at 2 MiB/s).
	DefaultCommitTimeout = 2 * time.Minute
	// maxCommitConflicts is how often one segment's commit is rebuilt on
	// a reloaded manifest after ErrConflict before UploadOnce gives up
	// (the next call starts over). Conflicts need a concurrent committer
	// at the same epoch, which the protocol makes rare.
	maxCommitConflicts = 3
	// deleteBatch is how many keys CleanOrphans deletes per call (S3's
	// DeleteObjects limit).
	deleteBatch = 1000
)

// UploaderOptions tunes an Uploader. The zero value means every default.
type UploaderOptions struct {
	// PutTimeout bounds the upload of one segment object (default
	// DefaultPutTimeout). Orphan cleanup's grace period must exceed
	// PutTimeout + CommitTimeout.
	PutTimeout time.Duration
	// CommitTimeout bounds one manifest commit, its re-read included
	// (default DefaultCommitTimeout).
	CommitTimeout time.Duration
	// Now is the clock for upload times, lag and orphan ages (default
	// time.Now).
	Now func() time.Time
	// ChunkBytes is the piece size of each segment's chunk checksums
	// (Segment.ChunkBytes; default DefaultChunkBytes). The broker passes
	// its chunk cache's chunk size, so that every downloaded chunk is
	// verified on its own.
	ChunkBytes int64
	// MinGeneration is the oldest manifest generation this Uploader may
	// build on: the newest one this partition's tiering loaded or
	// committed before (the caller keeps it across restarts; 0 if none).
	// See ErrManifestLost.
	MinGeneration uint64
}

func (o UploaderOptions) withDefaults() UploaderOptions {
	if o.PutTimeout <= 0 {
		o.PutTimeout = DefaultPutTimeout
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = DefaultCommitTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ChunkBytes <= 0 || o.ChunkBytes > MaxChunkBytes {
		o.ChunkBytes = DefaultChunkBytes
	}
	return o
}

// ErrManifestLost: the stored manifest is missing, or older than one this
// partition's tiering already loaded or committed (UploaderOptions.
// MinGeneration, then whatever the Uploader itself saw): it was deleted,
// or restored from an older copy. Building on it would start the remote
// history over or forget committed segments, and cleaning orphans against
// it would delete them, so the Uploader refuses every call with this error
// until a manifest at least as new is back. The message names both
// generations and the key to restore.
var ErrManifestLost = errors.New("tiering: manifest lost")

// UploadStats describes one UploadOnce call and how far uploads are behind
// after it.
type UploadStats struct {
	// Segments and Bytes count the segment objects this call uploaded and
	// committed, and their object bytes.
	Segments int
	Bytes    int64
	// LagSegments and LagBytes count the closed local segments that the
	// manifest does not cover after this call, and their log bytes: those
	// waiting for the high watermark, and any left by an error.
	LagSegments int
	LagBytes    int64
	// LagAge is how long the oldest of them has been closed (measured
	// from its .log file's modification time, its last write); 0 with
	// none.
	LagAge time.Duration
	// WaitingForHW is the high watermark the next upload waits for: the
	// end of the first closed segment not wholly below the high
	// watermark, which this call left for later; 0 if none waits. A
	// caller retrying before the high watermark reaches it would only
	// find the same.
	WaitingForHW segments.Offset
}

// Uploader tiers the closed segments of one partition. It starts no
// goroutine and is safe for one caller at a time: the broker's upload loop
// calls UploadOnce (and now and then CleanOrphans) for as long as this
// replica leads the partition, and stops at ErrFenced.
//
// Between calls it caches the manifest it last loaded or committed and
// its ETag; before each segment it Stats the manifest and reloads it if
// another writer changed it, so a deposed leader learns it is fenced
// before uploading, not after.
type Uploader struct {
	store     objectstore.Store
	manifests *ManifestStore
	tp        TopicPartition
	src       Source
	opts      UploaderOptions

	manifest *Manifest // nil: load before use
	etag     string
	floor    uint64          // the newest generation loaded or committed (ErrManifestLost)
	probed   bool            // the bucket was checked for evidence of a lost manifest (accept)
	markedTo segments.Offset // the last SetUploadedTo this uploader made
	fenced   error           // once set, every call returns it

	// pending is the manifest entry (complete: checksums and upload time
	// set) of a segment object this Uploader put whose commit has not
	// landed (it failed, or its outcome is unknown); nil if none. The
	// next attempt at the same local segment, at the same epoch, commits
	// this object instead of putting the segment again under a fresh key,
	// which would cost a PUT and leave an orphan per retry while the
	// manifest cannot be committed. Reuse is safe: the object lies at or
	// beyond the manifest's end until it is committed, where CleanOrphans
	// never deletes (see isOrphan), and it is Stat-ed before each reuse.
	pending *Segment
}

// NewUploader returns an Uploader for tp, reading segments from src,
// writing objects to store and committing through manifests (which must
// be over the same store). It fails if tp is invalid.
func NewUploader(store objectstore.Store, manifests *ManifestStore, tp TopicPartition, src Source, opts UploaderOptions) (*Uploader, error) {
	if err := tp.Validate(); err != nil {
		return nil, fmt.Errorf("tiering: uploader: %w", err)
	}
	if store == nil || manifests == nil || src == nil {
		return nil, fmt.Errorf("tiering: uploader for %v: nil store, manifest store or source", tp)
	}
	opts = opts.withDefaults()
	return &Uploader{store: store, manifests: manifests, tp: tp, src: src, opts: opts, floor: opts.MinGeneration}, nil
}

// UploadOnce uploads, in offset order, every closed segment that the
// manifest does not yet cover and that lies wholly below the high
// watermark: for each, one object (log, index, time index, leader epoch
// checkpoint, producer snapshot) under a fresh key, then a manifest commit
// listing it, then Source.SetUploadedTo its end. A segment that the
// manifest already covers (a crash between commit and SetUploadedTo, or
// another leader's upload) is only marked uploaded. It stops at the first
// error, leaving later segments for the next call.
//
// Errors: one matching ErrFenced means a newer leader committed; this
// Uploader then refuses every later call with it and the caller stops. A
// closed segment that overlaps the manifest's end (starts below it, ends
// above it) is an error naming both ranges. Anything else (a store or
// local I/O failure) is worth retrying with backoff; the stats are valid
// with any error.
func (u *Uploader) UploadOnce(ctx context.Context) (UploadStats, error) {
	var st UploadStats
	if u.fenced != nil {
		return st, u.fenced
	}
	epoch := u.src.LeaderEpoch()
	hw := u.src.HighWatermark()
	// From 0, not from the manifest's end: segments below it are marked
	// uploaded, and one straddling it must be seen to be reported.
	segs, err := u.src.ClosedSegments(0)
	if err != nil {
		return st, fmt.Errorf("tiering: uploading %v: listing closed segments: %w", u.tp, err)
	}
	defer func() {
		for i := range segs {
			segs[i].Release()
		}
	}()
	err = u.uploadSegments(ctx, segs, epoch, hw, &st)
	u.lag(segs, &st)
	return st, err
}

// Manifest makes sure the cached manifest is current (a Stat of the
// stored one, reloading if another writer changed it) and returns it.
// Callers must not modify it.
func (u *Uploader) Manifest(ctx context.Context) (*Manifest, error) {
	if u.fenced != nil {
		return nil, u.fenced
	}
	if err := u.refresh(ctx); err != nil {
		return nil, err
	}
	return u.manifest, nil
}

// Cached returns the manifest this uploader last loaded or committed,
// without asking the store: nil after an error that left it unknown.
func (u *Uploader) Cached() *Manifest { return u.manifest }

// Use makes m, with its ETag, the cached manifest, as if this uploader
// had loaded it: for a caller that just loaded it through the same
// ManifestStore, so that the first call only Stats it. A manifest the
// Uploader would refuse on loading is refused with ErrManifestLost and
// not cached (see checkFloor).
func (u *Uploader) Use(ctx context.Context, m *Manifest, etag string) error {
	return u.accept(ctx, m, etag)
}

// accept makes m (ETag etag), just loaded, the cached manifest and raises
// the floor to its generation, unless checkFloor refuses it.
func (u *Uploader) accept(ctx context.Context, m *Manifest, etag string) error {
	if err := u.checkFloor(ctx, m); err != nil {
		return err
	}
	u.manifest, u.etag = m, etag
	u.floor = m.Generation
	return nil
}

// checkFloor returns ErrManifestLost if m, just loaded, is older than the
// floor, or if it is missing (generation 0) while the bucket holds a
// segment object of the partition below the local log start: the local
// log deletes a segment only after its upload was committed, so such an
// object proves a manifest existed — the evidence that survives a lost
// tier checkpoint or a data directory written before there was one. The
// bucket is listed for that at most once per Uploader, and only while
// nothing was ever committed or loaded (floor 0) and the local log
// starts above 0.
func (u *Uploader) checkFloor(ctx context.Context, m *Manifest) error {
	if err := CheckManifestFloor(m, u.floor); err != nil || m.Generation > 0 || u.floor > 0 || u.probed {
		return err
	}
	local := u.src.LocalLogStartOffset()
	if local <= 0 {
		return nil
	}
	key, err := segmentBelow(ctx, u.store, u.tp, local)
	if err != nil {
		return fmt.Errorf("tiering: %v: the manifest is missing; checking the bucket for segments below the local log start %d: %w", u.tp, local, err)
	}
	u.probed = true
	if key == "" {
		return nil // a partition that never committed
	}
	u.floor = 1
	return fmt.Errorf("%w: %v: manifest %q is missing, but the bucket holds %q, below the local log start %d, which only a committed upload leaves; "+
		"nothing is uploaded, trimmed or deleted for this partition until the manifest is restored",
		ErrManifestLost, u.tp, ManifestKey(u.tp), key, local)
}

// segmentBelow returns the key of a segment object of tp whose base
// offset is below offset, "" if there is none.
func segmentBelow(ctx context.Context, store objectstore.Store, tp TopicPartition, offset segments.Offset) (string, error) {
	for info, err := range store.List(ctx, SegmentsPrefix(tp)) {
		if err != nil {
			return "", err
		}
		if ref, perr := ParseSegmentKey(info.Key); perr == nil && ref.TopicPartition == tp && ref.BaseOffset < offset {
			return info.Key, nil
		}
	}
	return "", nil
}

// CheckManifestFloor returns an error matching ErrManifestLost if m, a
// partition's stored manifest as loaded (generation 0: there is none), is
// older than floor, the newest generation of that partition known to have
// been loaded or committed before; nil otherwise. The message names the
// manifest's key and both generations.
func CheckManifestFloor(m *Manifest, floor uint64) error {
	if m.Generation >= floor {
		return nil
	}
	state := fmt.Sprintf("is at generation %d", m.Generation)
	if m.Generation == 0 {
		state = "is missing"
	}
	return fmt.Errorf("%w: %v: manifest %q %s, but generation %d was loaded or committed before (deleted, or restored from an older copy?); "+
		"nothing is uploaded, trimmed or deleted for this partition until a manifest at least that new is restored",
		ErrManifestLost, m.TopicPartition(), ManifestKey(m.TopicPartition()), state, floor)
}

// Fenced returns the ErrFenced error that stopped this uploader, nil if
// it was not fenced.
func (u *Uploader) Fenced() error { return u.fenced }

func (u *Uploader) uploadSegments(ctx context.Context, segs []segments.ClosedSegment, epoch segments.LeaderEpoch, hw segments.Offset, st *UploadStats) error {
	for i := range segs {
		cs := &segs[i]
		if cs.Next > hw {
			st.WaitingForHW = cs.Next
			return nil // not committed yet; later segments are not either
		}
		if err := u.refresh(ctx); err != nil {
			return err
		}
		end := u.manifest.EndOffset()
		switch {
		case cs.Next <= end || cs.LogBytes == 0:
			// Already tiered, or nothing to tier (an emptied segment at
			// or after end, all before it being tiered).
			if err := u.markUploaded(cs.Next); err != nil {
				return err
			}
			continue
		case cs.Base < end:
			return u.overlapError(cs)
		}
		n, err := u.upload(ctx, cs, epoch)
		if err != nil {
			return err
		}
		if n > 0 {
			st.Segments++
			st.Bytes += n
		}
		if err := u.markUploaded(cs.Next); err != nil {
			return err
		}
	}
	return nil
}

// lag fills st's lag fields from the closed segments the manifest does
// not cover.
func (u *Uploader) lag(segs []segments.ClosedSegment, st *UploadStats) {
	tiered := u.markedTo
	if u.manifest != nil {
		tiered = max(tiered, u.manifest.EndOffset())
	}
	l := MeasureLag(segs, tiered, u.opts.Now())
	st.LagSegments, st.LagBytes, st.LagAge = l.Segments, l.Bytes, l.Age
}

// Lag is how far uploads are behind: the closed local segments (with
// data) that end beyond what the remote tier holds, their log bytes, and
// how long the oldest has waited since its last write.
type Lag struct {
	Segments int
	Bytes    int64
	Age      time.Duration
}

// MeasureLag measures the Lag of segs (closed segments, as ClosedSegments
// returns them) against tieredTo, the offset below which the remote tier
// holds everything.
func MeasureLag(segs []segments.ClosedSegment, tieredTo segments.Offset, now time.Time) Lag {
	var l Lag
	for i := range segs {
		cs := &segs[i]
		if cs.Next <= tieredTo || cs.LogBytes == 0 {
			continue
		}
		l.Segments++
		l.Bytes += cs.LogBytes
		if fi, err := cs.Log.Stat(); err == nil {
			l.Age = max(l.Age, now.Sub(fi.ModTime()))
		}
	}
	return l
}

func (u *Uploader) overlapError(cs *segments.ClosedSegment) error {
	return fmt.Errorf("tiering: uploading %v: local segment [%d, %d) overlaps the manifest, which ends at %d (last segment %s, generation %d)",
		u.tp, cs.Base, cs.Next, u.manifest.EndOffset(), describeLast(u.manifest), u.manifest.Generation)
}

func describeLast(m *Manifest) string {
	if n := len(m.Segments); n > 0 {
		s := &m.Segments[n-1]
		return fmt.Sprintf("[%d, %d)", s.BaseOffset, s.EndOffset)
	}
	return "none, log start " + strconv.FormatInt(int64(m.LogStartOffset), 10)
}

// markUploaded calls SetUploadedTo(o) unless this uploader already
// reported o or beyond.
func (u *Uploader) markUploaded(o segments.Offset) error {
	if o <= u.markedTo {
		return nil
	}
	if err := u.src.SetUploadedTo(o); err != nil {
		return fmt.Errorf("tiering: uploading %v: marking offsets below %d uploaded: %w", u.tp, o, err)
	}
	u.markedTo = o
	return nil
}

// refresh makes u.manifest current: it loads it if none is cached, and
// otherwise Stats the manifest and reloads if its ETag changed.
func (u *Uploader) refresh(ctx context.Context) error {
	if u.manifest != nil {
		info, err := u.store.Stat(ctx, ManifestKey(u.tp))
		switch {
		case err == nil && info.ETag == u.etag:
			return nil
		case errors.Is(err, objectstore.ErrNotExist) && u.etag == "":
			return nil
		case err != nil && !errors.Is(err, objectstore.ErrNotExist):
			return fmt.Errorf("tiering: uploading %v: checking manifest %q: %w", u.tp, ManifestKey(u.tp), err)
		}
	}
	return u.reload(ctx)
}

func (u *Uploader) reload(ctx context.Context) error {
	u.manifest = nil
	m, etag, err := u.manifests.Load(ctx, u.tp)
	if err != nil {
		return fmt.Errorf("tiering: uploading %v: %w", u.tp, err)
	}
	return u.accept(ctx, m, etag)
}

// upload puts cs's object (or reuses the one put by an earlier attempt
// whose commit did not land: Uploader.pending) and commits it to the
// manifest. It returns the object's size, or 0 if a concurrent commit
// turned out to cover cs already (the object is then an orphan).
func (u *Uploader) upload(ctx context.Context, cs *segments.ClosedSegment, epoch segments.LeaderEpoch) (int64, error) {
	// Fail before uploading if a newer leader committed.
	if _, err := u.manifest.Next(epoch); err != nil {
		return 0, u.fail(fmt.Errorf("tiering: uploading %v segment at base offset %d: %w", u.tp, cs.Base, err))
	}
	seg, err := u.reusePending(ctx, cs, epoch)
	if err != nil {
		return 0, err
	}
	if seg == nil {
		if seg, err = u.putSegment(ctx, cs, epoch); err != nil {
			return 0, err
		}
	}
	committed, err := u.commit(ctx, cs, *seg, epoch)
	if err != nil {
		// u.pending stays: the retry commits the same object.
		return 0, u.fail(fmt.Errorf("tiering: uploading %v segment [%d, %d) as %q: %w", u.tp, cs.Base, cs.Next, SegmentKey(u.tp, seg.BaseOffset, seg.LeaderEpoch, seg.UID), err))
	}
	u.pending = nil
	if !committed {
		return 0, nil
	}
	return seg.ObjectBytes, nil
}

// putSegment uploads cs under a fresh key and records it as pending.
func (u *Uploader) putSegment(ctx context.Context, cs *segments.ClosedSegment, epoch segments.LeaderEpoch) (*Segment, error) {
	uid := NewUID()
	key := SegmentKey(u.tp, cs.Base, epoch, uid)
	wrap := func(err error) error {
		return fmt.Errorf("tiering: uploading %v segment [%d, %d) as %q: %w", u.tp, cs.Base, cs.Next, key, err)
	}
	seg, trailer, err := u.describe(cs, epoch, uid)
	if err != nil {
		return nil, wrap(err)
	}
	sums, err := u.put(ctx, key, cs, trailer, seg.ObjectBytes)
	if err != nil {
		return nil, wrap(err)
	}
	seg.CRC32C = sums.whole
	seg.ChunkBytes, seg.ChunkCRC32C = u.opts.ChunkBytes, sums.chunks
	seg.UploadTimeMs = u.opts.Now().UnixMilli()
	u.pending = &seg
	return &seg, nil
}

// reusePending returns the pending object of cs at epoch if it is still
// in the store with its size (one Stat), nil if there is none to reuse.
// The pending entry is cs's at epoch when its offsets, log size and
// leader epoch are cs's.
func (u *Uploader) reusePending(ctx context.Context, cs *segments.ClosedSegment, epoch segments.LeaderEpoch) (*Segment, error) {
	seg := u.pending
	if seg == nil || seg.BaseOffset != cs.Base || seg.EndOffset != cs.Next || seg.Parts.Log != cs.LogBytes || seg.LeaderEpoch != epoch {
		u.pending = nil
		return nil, nil
	}
	key := SegmentKey(u.tp, seg.BaseOffset, seg.LeaderEpoch, seg.UID)
	info, err := u.store.Stat(ctx, key)
	switch {
	case err == nil && info.Size == seg.ObjectBytes:
		return seg, nil
	case err == nil || errors.Is(err, objectstore.ErrNotExist):
		u.pending = nil // gone or changed under us: upload afresh
		return nil, nil
	default:
		return nil, fmt.Errorf("tiering: uploading %v segment [%d, %d): checking the object %q put by the last attempt: %w", u.tp, cs.Base, cs.Next, key, err)
	}
}

// fail records err as final if it matches ErrFenced, and returns it.
func (u *Uploader) fail(err error) error {
	if errors.Is(err, ErrFenced) {
		u.fenced = err
	}
	return err
}

// describe builds cs's manifest entry (without CRC and upload time) and
// the object's trailer parts: the leader epoch checkpoint text and the
// producer snapshot.
func (u *Uploader) describe(cs *segments.ClosedSegment, epoch segments.LeaderEpoch, uid UID) (Segment, [2][]byte, error) {
	var trailer [2][]byte
	if len(cs.Epochs) == 0 {
		return Segment{}, trailer, errors.New("the log has no leader epoch for the segment")
	}
	epochs := make([]EpochEntry, len(cs.Epochs))
	for i, e := range cs.Epochs {
		// The first entry is the epoch current at Base; it may have
		// started before.
		epochs[i] = EpochEntry{Epoch: e.Epoch, StartOffset: max(e.StartOffset, cs.Base)}
	}
	snap, err := u.src.ProducerSnapshot(cs.Next)
	if err != nil {
		return Segment{}, trailer, fmt.Errorf("producer snapshot at %d: %w", cs.Next, err)
	}
	trailer = [2][]byte{formatEpochs(epochs), snap}
	var hdr [segments.BatchHeaderSize]byte
	if _, err := cs.Log.ReadAt(hdr[:], 0); err != nil {
		return Segment{}, trailer, fmt.Errorf("reading the first batch header of %s: %w", cs.Log.Name(), err)
	}
	first, err := segments.ParseBatchHeader(hdr[:])
	if err != nil {
		return Segment{}, trailer, fmt.Errorf("first batch of %s: %w", cs.Log.Name(), err)
	}
	firstTs, maxTs := max(first.BaseTimestamp, -1), max(cs.MaxTimestamp, -1)
	if maxTs < 0 {
		firstTs = -1
	}
	firstTs = min(firstTs, maxTs)
	parts := PartBytes{
		Log:       cs.LogBytes,
		Index:     cs.IndexBytes,
		TimeIndex: cs.TimeIndexBytes,
		Epochs:    int64(len(trailer[0])),
		Snapshot:  int64(len(trailer[1])),
	}
	seg := Segment{
		BaseOffset:     cs.Base,
		EndOffset:      cs.Next,
		LeaderEpoch:    epoch,
		UID:            uid,
		ObjectBytes:    parts.Log + parts.Index + parts.TimeIndex + parts.Epochs + parts.Snapshot,
		Parts:          parts,
		FirstTimestamp: firstTs,
		MaxTimestamp:   maxTs,
		Epochs:         epochs,
	}
	// Checked before the upload, not first at With: a segment the
	// manifest would refuse is not worth sending.
	if err := validateSegment("segment", &seg); err != nil {
		return Segment{}, trailer, err
	}
	return seg, trailer, nil
}

// formatEpochs renders entries as a leader-epoch-checkpoint file (Kafka's
// checkpoint text: version 0, the count, one "<epoch> <start offset>"
// line each).
func formatEpochs(es []EpochEntry) []byte {
	b := fmt.Appendf(nil, "0\n%d\n", len(es))
	for _, e := range es {
		b = fmt.Appendf(b, "%d %d\n", e.Epoch, e.StartOffset)
	}
	return b
}

var crc32cTable = crc32.MakeTable(crc32.Castagnoli)

// objectSums are the checksums of an uploaded object: the whole object's
// CRC-32C and one per chunk.
type objectSums struct {
	whole  uint32
	chunks CRCs
}

// chunkSummer is an io.Writer computing the CRC-32C of every size-byte
// piece of what is written through it (the last piece may be shorter).
type chunkSummer struct {
	size int64
	n    int64  // bytes of the current piece so far
	cur  uint32 // its CRC so far
	sums CRCs
}

func (c *chunkSummer) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		k := min(int64(len(p)), c.size-c.n)
		c.cur = crc32.Update(c.cur, crc32cTable, p[:k])
		c.n += k
		p = p[k:]
		if c.n == c.size {
			c.sums = append(c.sums, c.cur)
			c.cur, c.n = 0, 0
		}
	}
	return total, nil
}

// finish returns the sums, the last piece's included.
func (c *chunkSummer) finish() CRCs {
	if c.n > 0 {
		c.sums = append(c.sums, c.cur)
		c.cur, c.n = 0, 0
	}
	return c.sums
}

// put streams the object — cs's three files, then the trailer — to key,
// computing its checksums on the way (whole, and per u.opts.ChunkBytes
// piece): the store reads the body in bounded chunks and nothing here
// buffers a whole part.
func (u *Uploader) put(ctx context.Context, key string, cs *segments.ClosedSegment, trailer [2][]byte, size int64) (objectSums, error) {
	h := crc32.New(crc32cTable)
	pieces := &chunkSummer{size: u.opts.ChunkBytes, sums: make(CRCs, 0, numChunks(size, u.opts.ChunkBytes))}
	body := io.TeeReader(io.MultiReader(
		io.NewSectionReader(cs.Log, 0, cs.LogBytes),
		io.NewSectionReader(cs.Index, 0, cs.IndexBytes),
		io.NewSectionReader(cs.TimeIndex, 0, cs.TimeIndexBytes),
		bytes.NewReader(trailer[0]),
		bytes.NewReader(trailer[1]),
	), io.MultiWriter(h, pieces))
	ctx, cancel := context.WithTimeout(ctx, u.opts.PutTimeout)
	defer cancel()
	var info objectstore.ObjectInfo
	var err error
	if u.store.Capabilities().PutIfAbsent {
		info, err = u.store.PutIfAbsent(ctx, key, body, size)
	} else {
		// The uid makes the key unique; no other writer uses it.
		info, err = u.store.Put(ctx, key, body, size)
	}
	if err != nil {
		return objectSums{}, err
	}
	if info.Size != size {
		return objectSums{}, fmt.Errorf("the store reports %d bytes stored, %d were sent", info.Size, size)
	}
	sums := objectSums{whole: h.Sum32(), chunks: pieces.finish()}
	if n := numChunks(size, u.opts.ChunkBytes); int64(len(sums.chunks)) != n {
		return objectSums{}, fmt.Errorf("%d chunk checksums for %d bytes sent, want %d (the store read less than it reported)", len(sums.chunks), size, n)
	}
	return sums, nil
}

// commit adds seg to the manifest and commits it. It reports false, with
// no error, if a reloaded manifest already covers cs (another commit
// tiered it).
func (u *Uploader) commit(ctx context.Context, cs *segments.ClosedSegment, seg Segment, epoch segments.LeaderEpoch) (bool, error) {
	return u.commitEdit(ctx, epoch, func(next *Manifest) (*Manifest, error) {
		switch end := next.EndOffset(); {
		case cs.Next <= end:
			return nil, nil
		case cs.Base < end:
			return nil, u.overlapError(cs)
		}
		return next.With(seg)
	})
}

// commitEdit commits edit's manifest, built on Next(epoch) of the current
// one; edit returns nil, nil when there is nothing to commit (then
// commitEdit reports false). After ErrConflict it reloads the manifest and
// edits again, up to maxCommitConflicts times. Every commit of this
// Uploader (segments added, trims) goes through here, within one
// CommitTimeout.
func (u *Uploader) commitEdit(ctx context.Context, epoch segments.LeaderEpoch, edit func(next *Manifest) (*Manifest, error)) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, u.opts.CommitTimeout)
	defer cancel()
	for conflicts := 0; ; conflicts++ {
		next, err := u.manifest.Next(epoch)
		if err != nil {
			return false, err
		}
		if next, err = edit(next); next == nil || err != nil {
			return false, err
		}
		etag, err := u.manifests.Commit(ctx, u.tp, u.etag, next)
		if err == nil {
			u.manifest, u.etag, u.floor = next, etag, next.Generation
			return true, nil
		}
		if !errors.Is(err, ErrConflict) || conflicts >= maxCommitConflicts {
			// Fenced, or the outcome is unknown: the next call reloads
			// and finds out whether the commit landed.
			u.manifest = nil
			return false, err
		}
		if err := u.reload(ctx); err != nil {
			return false, err
		}
	}
}

// CleanOrphans deletes tp's segment objects that the stored manifest
// proves unreferenced (see isOrphan): copies of committed segments that
// failed or retried uploads and deposed leaders left, and objects of
// segments retention or DeleteRecords removed whose deletes failed.
// Absence from the manifest alone proves nothing: an object beyond the
// manifest's end or in a gap it does not cover is kept, and nothing is
// deleted without a committed manifest (generation ≥ 1) at least as new as
// any this Uploader knew (else ErrManifestLost). grace must exceed the
// longest an upload and its commit can take (PutTimeout + CommitTimeout),
// since an upload in progress — this or another broker's — is an object
// no manifest lists yet; grace 0 is only for tests. Keys under the prefix
// that ParseSegmentKey does not accept are never deleted. It returns how
// many objects it deleted (also with an error, those deleted before it)
// and how many unlisted segment objects it kept.
//
// The manifest is loaded fresh (not the cached one) before listing, and
// ages are measured from before the load: an object committed after the
// load was uploaded at most PutTimeout + CommitTimeout before the
// commit, so within grace of it, and is kept.
func (u *Uploader) CleanOrphans(ctx context.Context, grace time.Duration) (OrphanStats, error) {
	var st OrphanStats
	if u.fenced != nil {
		return st, u.fenced
	}
	cutoff := u.opts.Now().Add(-grace)
	m, etag, err := u.manifests.Load(ctx, u.tp)
	if err != nil {
		return st, fmt.Errorf("tiering: cleaning orphans of %v: %w", u.tp, err)
	}
	// Loaded fresh, it is the current manifest: cached like any load, so
	// that the next call only Stats it.
	if err := u.accept(ctx, m, etag); err != nil {
		return st, err
	}
	if m.Generation == 0 {
		return st, nil // nothing committed: nothing is proven unreferenced
	}
	live := make(map[string]bool, len(m.Segments))
	for i := range m.Segments {
		live[m.SegmentKey(&m.Segments[i])] = true
	}
	var doomed []string
	prefix := SegmentsPrefix(u.tp)
	for info, err := range u.store.List(ctx, prefix) {
		if err != nil {
			return st, fmt.Errorf("tiering: cleaning orphans of %v: listing %q: %w", u.tp, prefix, err)
		}
		ref, perr := ParseSegmentKey(info.Key)
		switch {
		case perr != nil || ref.TopicPartition != u.tp || live[info.Key]:
		case isOrphan(m, ref, info.ModTime, cutoff):
			doomed = append(doomed, info.Key)
		default:
			st.Kept++
		}
	}
	for batch := range slices.Chunk(doomed, deleteBatch) {
		if err := u.store.Delete(ctx, batch...); err != nil {
			return st, fmt.Errorf("tiering: cleaning orphans of %v: deleting %d objects from %q: %w", u.tp, len(batch), batch[0], err)
		}
		st.Deleted += len(batch)
	}
	return st, nil
}

// OrphanStats describes one CleanOrphans pass.
type OrphanStats struct {
	// Deleted counts the objects deleted.
	Deleted int
	// Kept counts the segment objects the manifest does not list but
	// does not prove unreferenced either (younger than the grace period,
	// at or beyond its end, in a gap, of a newer epoch). Most are uploads
	// whose commit is still to land and become deletable once a commit
	// covers their offsets, so a caller looks again sooner than usual.
	Kept int
}

// isOrphan decides whether the segment object ref, which the committed
// manifest m (generation ≥ 1, not older than any manifest of the
// partition this node knew) does not list, and which was last modified at
// modTime, may be deleted: whether m proves it unreferenced. Pure; the
// rules, and why each is safe:
//
//   - Modified at or after cutoff (younger than the grace period): kept.
//     An upload in progress — this node's or another's — is an object no
//     manifest lists yet, and it is committed within PutTimeout +
//     CommitTimeout, less than the grace, of being written.
//   - Starting below m's log start: deleted. Retention and DeleteRecords
//     raise the log start only past data that is no longer served, and
//     delete the objects they cut after committing; one found here is a
//     delete that failed (or an older copy of one). An object reaching
//     from below the log start into offsets still served would have to
//     hold history the manifest never listed, which only a lost manifest
//     produces — and the Uploader refuses to build on one (ErrManifestLost).
//   - Starting inside the offsets of a listed segment s (s.BaseOffset ≤
//     base < s.EndOffset) and uploaded at an epoch no newer than s's:
//     deleted. s serves those offsets; the object is an earlier attempt
//     of the same upload (a retry, a lost put reply) or a deposed leader's
//     late upload, which the protocol never commits once s is committed.
//   - Anything else is kept, because m does not say it replaced it: an
//     object at or beyond m's end (an upload whose commit has not landed,
//     which its uploader may still commit — Uploader.pending — or history a
//     lost manifest listed), one in a gap before or between listed
//     segments (history the manifest never knew: tiering started late, or
//     started over after a lost manifest), or one uploaded at a newer
//     epoch than the segment covering it (not an outcome of the protocol).
func isOrphan(m *Manifest, ref SegmentRef, modTime, cutoff time.Time) bool {
	if !modTime.Before(cutoff) {
		return false
	}
	if ref.BaseOffset < m.LogStartOffset {
		return true
	}
	i := sort.Search(len(m.Segments), func(i int) bool { return m.Segments[i].EndOffset > ref.BaseOffset })
	if i == len(m.Segments) {
		return false // at or beyond the end
	}
	s := &m.Segments[i]
	return s.BaseOffset <= ref.BaseOffset && ref.LeaderEpoch <= s.LeaderEpoch
}
