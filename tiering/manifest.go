package tiering

// The partition manifest: the list of a partition's committed segment
// objects, as a value. Everything here is pure (no I/O, no clock); the
// commit protocol is in manifest_store.go.

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/stratalog/strata/segments"
)

// ManifestVersion is the manifest format this code writes. It reads
// versions minManifestVersion to ManifestVersion; a manifest with another
// version is refused, never guessed at. Version 2 added per-chunk
// checksums (Segment.ChunkBytes, ChunkCRC32C); a version 1 manifest is read
// as it is (its segments verified batch by batch when read back) and
// becomes version 2 on its next commit (Next), keeping its segments.
const ManifestVersion = 2

// minManifestVersion is the oldest manifest format this code reads.
const minManifestVersion = 1

// Bounds on a manifest. The whole manifest is rewritten on every commit,
// so it must stay small enough to PUT often; a hostile or corrupt object
// must not make a decoder allocate without limit.
const (
	// MaxManifestBytes bounds an encoded manifest; a larger object is
	// refused before it is read or decoded.
	MaxManifestBytes = 64 << 20 // 64 MiB
	// MaxSegments bounds the segments of one manifest. A segment entry
	// encodes to about 400 bytes (one epoch entry, realistic numbers)
	// plus its chunk checksums, 4 bytes per chunk in base64 (5.33
	// characters): nothing for the smallest segments, 683 characters for
	// a 1 GiB segment in 8 MiB chunks. So 64 MiB holds about 167,000
	// small segments, and 150,000 leaves room for a few epoch entries
	// more (17 years of hourly segments); with 1 GiB segments it holds
	// about 60,000 (60 TiB of one partition's history) before
	// MaxManifestBytes is reached.
	MaxSegments = 150_000
	// MaxEpochEntries bounds the leader epochs of one segment (one per
	// leader change while the segment was active).
	MaxEpochEntries = 10_000
	// MaxChunkBytes bounds Segment.ChunkBytes: the chunk cache's own
	// limit on its chunk size (2 GiB).
	MaxChunkBytes = 1 << 31
	// MaxPartBytes bounds each part of a segment object. Kafka's
	// segment.bytes and segment.index.bytes are int32, and a segment may
	// exceed segment.bytes by one batch (≤ max.message.bytes, also int32),
	// so 2^34 (16 GiB) is generous; five parts then sum to less than
	// 2^37, far from overflowing int64.
	MaxPartBytes = 1 << 34
)

// ErrInvalidManifest: a manifest that breaks the format or an invariant.
// From Decode it means a corrupt or foreign object; from Validate or the
// builders (With, Next) a caller's mistake. The wrapping message names
// the field and its value.
var ErrInvalidManifest = errors.New("tiering: invalid manifest")

// Manifest lists the committed segment objects of one partition. It is a
// value: the methods never modify the receiver, and builders (Next, With,
// WithoutBefore, Expire) return a new Manifest that shares the unchanged
// segments with the old one, so neither may be modified in place. To
// change a stored manifest, call Next (new generation, the caller's epoch)
// and apply With, WithoutBefore or Expire to its result, then Commit.
//
// Invariants (Validate, and every decoded manifest):
//   - Version is one this code reads (minManifestVersion to
//     ManifestVersion); the partition is valid (see
//     TopicPartition.Validate).
//   - Generation 0 is the empty manifest of a partition that never
//     committed: no segments, LeaderEpoch -1, LogStartOffset 0. Every
//     stored manifest has Generation ≥ 1 and LeaderEpoch ≥ 0.
//   - Segments are sorted by base offset with strictly increasing,
//     non-overlapping [BaseOffset, EndOffset) ranges. Gaps between them
//     are allowed: EndOffset is one past the segment's last batch, and a
//     compacted segment can end well before the next one's base offset
//     (Kafka keeps cleaned segments' base offsets), while local retention
//     or a late start of tiering leaves a gap before the first segment.
//   - Record leader epochs never decrease along offsets, within a segment
//     and from one segment to the next; a segment's uploader epoch is at
//     least the epochs of its records and at most the manifest's.
//   - LogStartOffset ≥ 0 and below the first segment's EndOffset: a
//     segment entirely below the log start is removed, not kept.
//   - Sizes are consistent: every part is within [0, MaxPartBytes], the
//     log part is not empty, and the parts sum to ObjectBytes. Chunk
//     checksums, where present (version 2 on), have one value per
//     ChunkBytes piece of the object, ChunkBytes in [1, MaxChunkBytes].
//   - At most MaxSegments segments, at most MaxEpochEntries epochs each,
//     and at most MaxManifestBytes encoded.
type Manifest struct {
	Version   int     `json:"version"`
	Topic     string  `json:"topic"`
	TopicID   TopicID `json:"topicId"`
	Partition int32   `json:"partition"`
	// LeaderEpoch is the epoch of the leader that committed this
	// manifest; commits are fenced by it (see ManifestStore.Commit).
	LeaderEpoch segments.LeaderEpoch `json:"leaderEpoch"`
	// Generation counts commits: each commit stores its predecessor's
	// Generation + 1. It makes every committed manifest's content unique,
	// which the store's content-derived ETags and the lost-reply check
	// rely on.
	Generation uint64 `json:"generation"`
	// LogStartOffset is the first offset of the remote tier that
	// consumers may read; retention and DeleteRecords raise it. With no
	// segments it is where the next segment may start from.
	LogStartOffset segments.Offset `json:"logStartOffset"`
	// Segments in offset order.
	Segments []Segment `json:"segments"`
}

// Segment describes one committed segment object: the segment's .log bytes
// followed by its .index, .timeindex, leader-epoch checkpoint (text) and
// producer snapshot (possibly empty), in that order, at the byte ranges
// that Parts gives (see PartRange). The object's key is derived from
// BaseOffset, LeaderEpoch and UID (Manifest.SegmentKey), never stored.
type Segment struct {
	BaseOffset segments.Offset `json:"baseOffset"`
	// EndOffset is one past the last offset of the segment's last batch.
	EndOffset segments.Offset `json:"endOffset"`
	// LeaderEpoch is the epoch of the leader that uploaded the object.
	LeaderEpoch segments.LeaderEpoch `json:"leaderEpoch"`
	UID         UID                  `json:"uid"`
	// ObjectBytes is the object's whole size; Parts splits it.
	ObjectBytes int64     `json:"objectBytes"`
	Parts       PartBytes `json:"parts"`
	// FirstTimestamp is the first batch's base timestamp and MaxTimestamp
	// the largest record timestamp, Kafka milliseconds; -1 means none.
	FirstTimestamp int64 `json:"firstTimestamp"`
	MaxTimestamp   int64 `json:"maxTimestamp"`
	// Epochs are the leader epochs of the segment's records: the first
	// starts at BaseOffset, each holds until the next one's StartOffset.
	Epochs []EpochEntry `json:"epochs"`
	// CRC32C is the Castagnoli CRC-32 of the whole object.
	CRC32C uint32 `json:"crc32c"`
	// ChunkBytes and ChunkCRC32C checksum the object piece by piece for
	// the chunk cache: piece i is bytes [i*ChunkBytes, min((i+1)*ChunkBytes,
	// ObjectBytes)) and ChunkCRC32C[i] is its Castagnoli CRC-32, so a cache
	// chunk of that size is verified on its own as it is downloaded, before
	// anything is served from it. Both are absent (0, nil) in segments
	// uploaded before manifest version 2; readers then verify the batches
	// they serve instead (see RemoteReader.Read).
	ChunkBytes  int64 `json:"chunkBytes,omitempty"`
	ChunkCRC32C CRCs  `json:"chunkCrc32c,omitempty"`
	// UploadTimeMs is when the upload finished, Unix milliseconds.
	UploadTimeMs int64 `json:"uploadTimeMs"`
}

// CRCs is a list of CRC-32 values. In JSON it is one string, the values'
// big-endian bytes in standard base64 (5.33 characters a value, against
// up to 11 as JSON numbers), since a manifest lists one per chunk of every
// segment and is rewritten whole on every commit.
type CRCs []uint32

// MarshalText implements encoding.TextMarshaler.
func (c CRCs) MarshalText() ([]byte, error) {
	raw := make([]byte, 4*len(c))
	for i, v := range c {
		binary.BigEndian.PutUint32(raw[4*i:], v)
	}
	out := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
	base64.StdEncoding.Encode(out, raw)
	return out, nil
}

// UnmarshalText implements encoding.TextUnmarshaler; it accepts only what
// MarshalText produces (strict, padded base64 of a multiple of 4 bytes).
func (c *CRCs) UnmarshalText(b []byte) error {
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	n, err := base64.StdEncoding.Strict().Decode(raw, b)
	if err != nil {
		return fmt.Errorf("%w: CRC list: %v", ErrInvalidManifest, err)
	}
	if n%4 != 0 {
		return fmt.Errorf("%w: CRC list of %d bytes is not a whole number of 4-byte values", ErrInvalidManifest, n)
	}
	out := make(CRCs, n/4)
	for i := range out {
		out[i] = binary.BigEndian.Uint32(raw[4*i:])
	}
	*c = out
	return nil
}

// PartBytes are the byte sizes of a segment object's parts.
type PartBytes struct {
	Log       int64 `json:"log"`
	Index     int64 `json:"index"`
	TimeIndex int64 `json:"timeIndex"`
	Epochs    int64 `json:"epochs"`
	Snapshot  int64 `json:"snapshot"`
}

// EpochEntry is one line of a leader epoch checkpoint: epoch started at
// StartOffset.
type EpochEntry struct {
	Epoch       segments.LeaderEpoch `json:"epoch"`
	StartOffset segments.Offset      `json:"startOffset"`
}

// Part names a part of a segment object.
type Part int

const (
	PartLog       Part = iota // the .log file: record batches
	PartIndex                 // the .index file
	PartTimeIndex             // the .timeindex file
	PartEpochs                // the leader-epoch-checkpoint text for the segment
	PartSnapshot              // the producer snapshot (may be empty)
	numParts
)

var partNames = [numParts]string{"log", "index", "timeIndex", "epochs", "snapshot"}

func (p Part) String() string {
	if p < 0 || p >= numParts {
		return fmt.Sprintf("Part(%d)", int(p))
	}
	return partNames[p]
}

// sizes returns the parts' sizes in object order.
func (b PartBytes) sizes() [numParts]int64 {
	return [numParts]int64{b.Log, b.Index, b.TimeIndex, b.Epochs, b.Snapshot}
}

// PartRange returns the byte range of part p within the object, for a
// ranged Get. It panics on an unknown part.
func (s *Segment) PartRange(p Part) (offset, length int64) {
	if p < 0 || p >= numParts {
		panic(fmt.Sprintf("tiering: unknown segment part %d", int(p)))
	}
	sz := s.Parts.sizes()
	for i := range p {
		offset += sz[i]
	}
	return offset, sz[p]
}

// ChunkSums returns the segment's chunk checksums (ChunkCRC32C) if it was
// checksummed in pieces of exactly chunkBytes, nil otherwise (an older
// segment, another chunk size): what a chunk cache of that chunk size
// verifies downloads against (Object.ChunkCRC32C).
func (s *Segment) ChunkSums(chunkBytes int64) CRCs {
	if s.ChunkBytes != chunkBytes {
		return nil
	}
	return s.ChunkCRC32C
}

// numChunks is how many pieces of chunkBytes an object of size bytes has.
func numChunks(size, chunkBytes int64) int64 {
	return (size + chunkBytes - 1) / chunkBytes
}

// LastEpoch is the leader epoch of the segment's last records.
func (s *Segment) LastEpoch() segments.LeaderEpoch {
	if len(s.Epochs) == 0 {
		return -1
	}
	return s.Epochs[len(s.Epochs)-1].Epoch
}

// NewManifest returns the empty manifest of tp (Generation 0), which is
// what a partition that never committed has. tp should be valid; Validate
// reports it if not.
func NewManifest(tp TopicPartition) *Manifest {
	return &Manifest{
		Version:     ManifestVersion,
		Topic:       tp.Topic,
		TopicID:     tp.TopicID,
		Partition:   tp.Partition,
		LeaderEpoch: -1,
	}
}

// TopicPartition returns the partition m belongs to.
func (m *Manifest) TopicPartition() TopicPartition {
	return TopicPartition{Topic: m.Topic, TopicID: m.TopicID, Partition: m.Partition}
}

// SegmentKey returns the object key of s, a segment of m. It panics if m's
// partition is invalid or s has a negative base offset or epoch, which a
// manifest that passed Validate never has.
func (m *Manifest) SegmentKey(s *Segment) string {
	return SegmentKey(m.TopicPartition(), s.BaseOffset, s.LeaderEpoch, s.UID)
}

// EndOffset is the offset the next segment may start from: the last
// segment's EndOffset, or LogStartOffset when there is none.
func (m *Manifest) EndOffset() segments.Offset {
	if n := len(m.Segments); n > 0 {
		return m.Segments[n-1].EndOffset
	}
	return m.LogStartOffset
}

// LogBytes is the total size of the segments' log parts, what
// retention.bytes counts.
func (m *Manifest) LogBytes() int64 {
	var n int64
	for i := range m.Segments {
		n += m.Segments[i].Parts.Log
	}
	return n
}

// Find returns the segment to read offset from: the segment holding it or,
// if offset falls in a gap between segments (compaction), the first
// segment after it, as Kafka serves the next batch after a missing offset.
// It reports false for offsets below LogStartOffset or at or beyond
// EndOffset. Binary search: O(log n).
func (m *Manifest) Find(offset segments.Offset) (Segment, bool) {
	if offset < m.LogStartOffset {
		return Segment{}, false
	}
	i := sort.Search(len(m.Segments), func(i int) bool { return m.Segments[i].EndOffset > offset })
	if i == len(m.Segments) {
		return Segment{}, false
	}
	return m.Segments[i], true
}

// FindByTimestamp returns the first segment whose MaxTimestamp is at least
// ts (Kafka's ListOffsets rule: the first offset with a timestamp ≥ ts
// lies in it), or false if none. Timestamps need not increase along
// offsets (CreateTime), so this is a linear scan; a manifest's bounded
// size keeps it well under a millisecond.
func (m *Manifest) FindByTimestamp(ts int64) (Segment, bool) {
	for i := range m.Segments {
		if m.Segments[i].MaxTimestamp >= ts {
			return m.Segments[i], true
		}
	}
	return Segment{}, false
}

// clone returns a copy of m whose Segments slice is its own (the
// segments' Epochs stay shared; they are never modified).
func (m *Manifest) clone() *Manifest {
	c := *m
	c.Segments = slices.Clone(m.Segments)
	return &c
}

// Next returns the manifest to build the next commit on: a copy of m with
// Generation + 1 and LeaderEpoch epoch. A leader commits only at its own
// epoch, so an epoch below m's means the caller was deposed: the error
// matches ErrFenced.
func (m *Manifest) Next(epoch segments.LeaderEpoch) (*Manifest, error) {
	if epoch < 0 {
		return nil, fmt.Errorf("%w: next leaderEpoch %d is negative", ErrInvalidManifest, epoch)
	}
	if epoch < m.LeaderEpoch {
		return nil, fmt.Errorf("%w: %v: leader epoch %d is below the manifest's %d (generation %d)",
			ErrFenced, m.TopicPartition(), epoch, m.LeaderEpoch, m.Generation)
	}
	if m.Generation == ^uint64(0) {
		return nil, fmt.Errorf("%w: generation %d cannot grow", ErrInvalidManifest, m.Generation)
	}
	c := m.clone()
	c.Version = ManifestVersion // an older format is rewritten in this one
	c.Generation++
	c.LeaderEpoch = epoch
	return c, nil
}

// With returns a copy of m with seg appended. seg must be valid on its own
// (see Validate), start at or after the last segment's end (or, in an
// empty manifest, end after LogStartOffset), continue its record epochs
// without going back, and have been uploaded at an epoch no newer than
// m.LeaderEpoch: call it on the result of Next. Errors match
// ErrInvalidManifest. seg's Epochs are copied.
func (m *Manifest) With(seg Segment) (*Manifest, error) {
	if err := validateSegment("segment", &seg); err != nil {
		return nil, err
	}
	if seg.LeaderEpoch > m.LeaderEpoch {
		return nil, fmt.Errorf("%w: segment leaderEpoch %d is above the manifest's %d (build on Next)", ErrInvalidManifest, seg.LeaderEpoch, m.LeaderEpoch)
	}
	if n := len(m.Segments); n > 0 {
		last := &m.Segments[n-1]
		if seg.BaseOffset < last.EndOffset {
			return nil, fmt.Errorf("%w: segment baseOffset %d overlaps the last segment [%d, %d)", ErrInvalidManifest, seg.BaseOffset, last.BaseOffset, last.EndOffset)
		}
		if seg.Epochs[0].Epoch < last.LastEpoch() {
			return nil, fmt.Errorf("%w: segment epochs[0].epoch %d is below the last segment's last epoch %d", ErrInvalidManifest, seg.Epochs[0].Epoch, last.LastEpoch())
		}
		if n >= MaxSegments {
			return nil, fmt.Errorf("%w: already %d segments, the most a manifest holds", ErrInvalidManifest, n)
		}
	} else if seg.EndOffset <= m.LogStartOffset {
		return nil, fmt.Errorf("%w: segment endOffset %d is not above logStartOffset %d", ErrInvalidManifest, seg.EndOffset, m.LogStartOffset)
	}
	if m.Generation == 0 {
		return nil, fmt.Errorf("%w: adding a segment to generation 0 (build on Next)", ErrInvalidManifest)
	}
	seg.Epochs = slices.Clone(seg.Epochs)
	c := m.clone()
	c.Segments = append(c.Segments, seg)
	return c, nil
}

// WithoutBefore returns a copy of m with LogStartOffset raised to offset
// (DeleteRecords, or any other move of the log start) and the segments
// that end at or before it removed; it returns the removed segments, whose
// objects may be deleted once the new manifest is committed. An offset at
// or below LogStartOffset changes nothing (m itself is returned). offset
// may lie beyond EndOffset: the local log can be ahead of the remote tier.
func (m *Manifest) WithoutBefore(offset segments.Offset) (*Manifest, []Segment) {
	if offset <= m.LogStartOffset {
		return m, nil
	}
	i := sort.Search(len(m.Segments), func(i int) bool { return m.Segments[i].EndOffset > offset })
	c := *m
	c.LogStartOffset = offset
	removed := slices.Clone(m.Segments[:i])
	c.Segments = slices.Clone(m.Segments[i:])
	if len(c.Segments) == 0 {
		c.Segments = nil
	}
	return &c, removed
}

// Retention is remote retention's policy, in Kafka's terms.
type Retention struct {
	// Age is retention.ms: a segment whose newest record is older than
	// now - Age goes. Negative means unlimited.
	Age time.Duration
	// Bytes is retention.bytes: oldest segments go while the partition's
	// size without them is still at least Bytes. Negative means unlimited.
	Bytes int64
	// UntieredBytes is the size of the partition's local log beyond the
	// manifest's EndOffset; Kafka counts the whole log against
	// retention.bytes, so the caller supplies the part the manifest does
	// not know.
	UntieredBytes int64
}

// Expire applies r at time now: it removes the oldest segments that break
// it, only ever a prefix (as Kafka does: retention never leaves a hole),
// raises LogStartOffset past them and returns the new manifest and the
// removed segments. With nothing to remove it returns m itself. A segment
// goes by age when now - MaxTimestamp > Age; one without timestamps
// (MaxTimestamp -1) ages from its upload time.
func (m *Manifest) Expire(r Retention, now time.Time) (*Manifest, []Segment) {
	// The same plan as segments' local retention: first the prefix older
	// than retention.ms, then the prefix whose removal keeps the log at or
	// above retention.bytes.
	n := 0
	if r.Age >= 0 {
		nowMs, keepMs := now.UnixMilli(), r.Age.Milliseconds()
		for n < len(m.Segments) {
			s := &m.Segments[n]
			ts := s.MaxTimestamp
			if ts < 0 {
				ts = s.UploadTimeMs
			}
			if nowMs-ts <= keepMs {
				break
			}
			n++
		}
	}
	if r.Bytes >= 0 {
		// Clamped so a silly caller value cannot overflow the sum.
		diff := min(max(r.UntieredBytes, 0), 1<<62) - r.Bytes
		for i := n; i < len(m.Segments); i++ {
			diff += m.Segments[i].Parts.Log
		}
		for n < len(m.Segments) && diff-m.Segments[n].Parts.Log >= 0 {
			diff -= m.Segments[n].Parts.Log
			n++
		}
	}
	if n == 0 {
		return m, nil
	}
	return m.WithoutBefore(m.Segments[n-1].EndOffset)
}

// Validate checks every invariant listed on Manifest. Errors match
// ErrInvalidManifest and name the offending field and value.
func (m *Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidManifest}, args...)...)
	}
	if m.Version < minManifestVersion || m.Version > ManifestVersion {
		return bad("version %d is not in [%d, %d]", m.Version, minManifestVersion, ManifestVersion)
	}
	if err := m.TopicPartition().Validate(); err != nil {
		return bad("%v", err)
	}
	if m.LeaderEpoch < -1 {
		return bad("leaderEpoch %d is below -1", m.LeaderEpoch)
	}
	if m.LogStartOffset < 0 {
		return bad("logStartOffset %d is negative", m.LogStartOffset)
	}
	if m.Generation == 0 {
		if m.LeaderEpoch != -1 || m.LogStartOffset != 0 || len(m.Segments) != 0 {
			return bad("generation 0 must be empty (leaderEpoch -1, logStartOffset 0, no segments), has leaderEpoch %d, logStartOffset %d, %d segments",
				m.LeaderEpoch, m.LogStartOffset, len(m.Segments))
		}
		return nil
	}
	if m.LeaderEpoch < 0 {
		return bad("leaderEpoch %d at generation %d", m.LeaderEpoch, m.Generation)
	}
	if len(m.Segments) > MaxSegments {
		return bad("%d segments, more than %d", len(m.Segments), MaxSegments)
	}
	if len(m.Segments) > 0 && m.LogStartOffset >= m.Segments[0].EndOffset {
		return bad("logStartOffset %d is not below segments[0].endOffset %d", m.LogStartOffset, m.Segments[0].EndOffset)
	}
	for i := range m.Segments {
		s := &m.Segments[i]
		name := fmt.Sprintf("segments[%d]", i)
		if err := validateSegment(name, s); err != nil {
			return err
		}
		if m.Version < 2 && s.ChunkBytes != 0 {
			return bad("%s.chunkBytes %d in a version %d manifest (chunk checksums came with version 2)", name, s.ChunkBytes, m.Version)
		}
		if s.LeaderEpoch > m.LeaderEpoch {
			return bad("%s.leaderEpoch %d is above the manifest's leaderEpoch %d", name, s.LeaderEpoch, m.LeaderEpoch)
		}
		if i == 0 {
			continue
		}
		prev := &m.Segments[i-1]
		if s.BaseOffset < prev.EndOffset {
			return bad("%s.baseOffset %d is below segments[%d].endOffset %d (overlap or disorder)", name, s.BaseOffset, i-1, prev.EndOffset)
		}
		if s.Epochs[0].Epoch < prev.LastEpoch() {
			return bad("%s.epochs[0].epoch %d is below segments[%d]'s last epoch %d", name, s.Epochs[0].Epoch, i-1, prev.LastEpoch())
		}
	}
	return nil
}

// validateSegment checks the invariants of one segment on its own; name
// prefixes the field names in errors.
func validateSegment(name string, s *Segment) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s."+format, append([]any{ErrInvalidManifest, name}, args...)...)
	}
	switch {
	case s.BaseOffset < 0:
		return bad("baseOffset %d is negative", s.BaseOffset)
	case s.EndOffset <= s.BaseOffset:
		return bad("endOffset %d is not above baseOffset %d", s.EndOffset, s.BaseOffset)
	case s.LeaderEpoch < 0:
		return bad("leaderEpoch %d is negative", s.LeaderEpoch)
	case s.UID == UID{}:
		return bad("uid is zero")
	case s.FirstTimestamp < -1:
		return bad("firstTimestamp %d is below -1", s.FirstTimestamp)
	case s.MaxTimestamp < s.FirstTimestamp:
		return bad("maxTimestamp %d is below firstTimestamp %d", s.MaxTimestamp, s.FirstTimestamp)
	case s.UploadTimeMs < 0:
		return bad("uploadTimeMs %d is negative", s.UploadTimeMs)
	case s.Parts.Log <= 0:
		return bad("parts.log %d: the log part cannot be empty", s.Parts.Log)
	}
	var sum int64
	for p, n := range s.Parts.sizes() {
		if n < 0 || n > MaxPartBytes {
			return bad("parts.%s %d is outside [0, %d]", Part(p), n, int64(MaxPartBytes))
		}
		sum += n // no overflow: each part is bounded
	}
	if sum != s.ObjectBytes {
		return bad("objectBytes %d is not the sum of the parts, %d", s.ObjectBytes, sum)
	}
	switch {
	case s.ChunkBytes == 0 && len(s.ChunkCRC32C) != 0:
		return bad("chunkCrc32c has %d values without chunkBytes", len(s.ChunkCRC32C))
	case s.ChunkBytes < 0 || s.ChunkBytes > MaxChunkBytes:
		return bad("chunkBytes %d is outside [1, %d]", s.ChunkBytes, int64(MaxChunkBytes))
	case s.ChunkBytes > 0 && int64(len(s.ChunkCRC32C)) != numChunks(s.ObjectBytes, s.ChunkBytes):
		return bad("chunkCrc32c has %d values, a %d-byte object has %d chunks of %d bytes",
			len(s.ChunkCRC32C), s.ObjectBytes, numChunks(s.ObjectBytes, s.ChunkBytes), s.ChunkBytes)
	}
	if len(s.Epochs) == 0 {
		return bad("epochs is empty")
	}
	if len(s.Epochs) > MaxEpochEntries {
		return bad("epochs has %d entries, more than %d", len(s.Epochs), MaxEpochEntries)
	}
	if s.Epochs[0].StartOffset != s.BaseOffset {
		return bad("epochs[0].startOffset %d is not baseOffset %d", s.Epochs[0].StartOffset, s.BaseOffset)
	}
	for j, e := range s.Epochs {
		switch {
		case e.Epoch < 0:
			return bad("epochs[%d].epoch %d is negative", j, e.Epoch)
		case e.StartOffset >= s.EndOffset:
			return bad("epochs[%d].startOffset %d is not below endOffset %d", j, e.StartOffset, s.EndOffset)
		case j > 0 && e.Epoch <= s.Epochs[j-1].Epoch:
			return bad("epochs[%d].epoch %d does not increase (previous %d)", j, e.Epoch, s.Epochs[j-1].Epoch)
		case j > 0 && e.StartOffset <= s.Epochs[j-1].StartOffset:
			return bad("epochs[%d].startOffset %d does not increase (previous %d)", j, e.StartOffset, s.Epochs[j-1].StartOffset)
		}
	}
	if last := s.LastEpoch(); last > s.LeaderEpoch {
		return bad("leaderEpoch %d is below its records' epoch %d", s.LeaderEpoch, last)
	}
	return nil
}

// Encode validates m and returns its JSON encoding (compact; an empty
// segment list is written as []). The encoding is canonical: equal
// manifests encode to equal bytes, which the commit protocol uses to
// recognise its own earlier write.
func (m *Manifest) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	c := *m
	if c.Segments == nil {
		c.Segments = []Segment{}
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("tiering: encoding manifest of %v: %w", m.TopicPartition(), err)
	}
	if len(b) > MaxManifestBytes {
		return nil, fmt.Errorf("%w: encodes to %d bytes, more than %d", ErrInvalidManifest, len(b), MaxManifestBytes)
	}
	return b, nil
}

// DecodeManifest parses and validates an encoded manifest. It is strict:
// more than MaxManifestBytes, unknown fields, trailing data, a version
// this code does not read, or any broken invariant fail with an error
// matching ErrInvalidManifest that names the field. It never panics.
// (encoding/json matches field names case-insensitively and keeps the
// last of duplicated names; what it decodes must still pass Validate, so
// neither leniency can admit a manifest that breaks an invariant.)
func DecodeManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidManifest, len(b), MaxManifestBytes)
	}
	var m Manifest
	if err := decodeStrict(b, &m); err != nil {
		if v, ok := probeVersion(b); ok && (v < minManifestVersion || v > ManifestVersion) {
			return nil, fmt.Errorf("%w: unsupported version %d (this code reads %d to %d)", ErrInvalidManifest, v, minManifestVersion, ManifestVersion)
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	if len(m.Segments) == 0 {
		m.Segments = nil
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// decodeStrict decodes one JSON value from b into v, refusing unknown
// fields and anything after the value but white space.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the JSON object at byte %d", dec.InputOffset())
	}
	return nil
}

// probeVersion reads just the top-level "version" of an object, leniently,
// so a newer format is reported as such rather than as unknown fields.
func probeVersion(b []byte) (int, bool) {
	var p struct {
		Version *int `json:"version"`
	}
	if json.Unmarshal(b, &p) != nil || p.Version == nil {
		return 0, false
	}
	return *p.Version, true
}
