package replica

// What a partition offers the tiering layer (broker/tiering.go and the
// tiering package's Uploader): its closed segments, the upload boundary
// that gates local retention, the remote tier's log start (so that the
// partition's log start offset covers offsets only the bucket holds), a
// restart of the local log where the remote tier ends, and the tier
// checkpoint: local evidence that the partition has history in the
// bucket.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/stratalog/strata/broker/txn"
	"github.com/stratalog/strata/internal/fsutil"
	"github.com/stratalog/strata/segments"
)

// noRemoteStart marks a partition with no remote tier (or none known yet).
const noRemoteStart = -1

// SetRemoteLogStart records the first offset the remote tier serves (its
// manifest's log start, or first segment's base), or -1 when the remote
// tier holds nothing. LogStartOffset is then the lower of it and the local
// log start.
func (p *Partition) SetRemoteLogStart(o segments.Offset) {
	if o < 0 {
		o = noRemoteStart
	}
	p.remoteStart.Store(int64(o))
}

// RemoteLogStart is what SetRemoteLogStart recorded (-1: none).
func (p *Partition) RemoteLogStart() segments.Offset {
	return segments.Offset(p.remoteStart.Load())
}

// LocalLogStartOffset is the first offset of the local log: reads below
// it (and at or above LogStartOffset) go to the remote tier.
func (p *Partition) LocalLogStartOffset() segments.Offset { return p.log.StartOffset() }

// ClosedSegments returns the closed, fsynced local segments from `from`
// on, pinned (see segments.Log.ClosedSegments; release each).
func (p *Partition) ClosedSegments(from segments.Offset) ([]segments.ClosedSegment, error) {
	return p.log.ClosedSegments(from)
}

// SetUploadedTo records that offsets below o are committed remotely, so
// local retention may delete the segments below it.
func (p *Partition) SetUploadedTo(o segments.Offset) error { return p.log.SetUploadedTo(o) }

// UploadedTo is the offset below which the remote tier holds everything.
func (p *Partition) UploadedTo() segments.Offset { return p.log.UploadedTo() }

// UploadPending reports whether a closed segment waits for upload.
func (p *Partition) UploadPending() bool { return p.log.UploadPending() }

// ProducerSnapshot returns the producer-state snapshot file written at
// exactly end, or nil, nil if there is none.
func (p *Partition) ProducerSnapshot(end segments.Offset) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(p.dir, txn.SnapshotName(end)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// StartAt restarts the local log empty at o (at or beyond its end) with
// leader epoch epoch starting there: a replica whose local log is behind
// the remote tier (a new or wiped data directory) continues the history
// the bucket holds. Producer state starts empty. It must not race with
// appends: call it before the partition serves requests.
func (p *Partition) StartAt(o segments.Offset, epoch segments.LeaderEpoch) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return segments.ErrClosed
	}
	if err := p.log.StartAt(o); err != nil {
		return fmt.Errorf("replica: %s-%d: %w", p.topic, p.index, err)
	}
	if err := p.log.AssignEpoch(epoch, o); err != nil {
		return fmt.Errorf("replica: %s-%d: assign leader epoch %d at %d: %w", p.topic, p.index, epoch, o, err)
	}
	p.epoch.Store(int32(epoch))
	p.mu.producers = txn.NewProducerState()
	p.cmu.Lock()
	p.hw.Store(int64(o))
	p.cmu.Unlock()
	p.logger.Info("local log restarted where the remote tier ends", "offset", int64(o), "leader_epoch", int32(epoch))
	return nil
}

// TierCheckpointFile, in the partition directory, records the newest
// manifest generation the tiering of this partition loaded or committed,
// and that manifest's end offset (for operators). It is the local evidence
// that the partition has history in the bucket: a manifest that later goes
// missing, or back to an older copy, is then recognised as lost
// (tiering.ErrManifestLost) instead of being taken for a partition that
// never tiered, whose history would start over and whose objects orphan
// cleanup would delete. Kafka's checkpoint text, like the log's
// checkpoints: "0" (version), "1" (entries), "<generation> <end offset>".
const TierCheckpointFile = "remote-tier-checkpoint"

// TierCheckpoint is what the tier checkpoint holds.
type TierCheckpoint struct {
	Generation uint64          // newest manifest generation loaded or committed
	EndOffset  segments.Offset // that manifest's end offset
}

// TierCheckpoint reads the partition's tier checkpoint: the zero value if
// there is none (the partition never tiered on this disk). A file that
// exists but does not parse gives Generation 1 with the error: the file is
// written only once a committed manifest (generation ≥ 1) was loaded or
// committed, so even unreadable it proves the partition tiered.
func (p *Partition) TierCheckpoint() (TierCheckpoint, error) {
	path := filepath.Join(p.dir, TierCheckpointFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return TierCheckpoint{}, nil
	}
	if err != nil {
		return TierCheckpoint{Generation: 1}, fmt.Errorf("replica: %s-%d: reading %s: %w", p.topic, p.index, path, err)
	}
	c, err := parseTierCheckpoint(b)
	if err != nil {
		return TierCheckpoint{Generation: 1}, fmt.Errorf("replica: %s-%d: %s: %w", p.topic, p.index, path, err)
	}
	return c, nil
}

// SetTierCheckpoint replaces the tier checkpoint durably (written to a
// temporary file, fsynced, renamed, directory fsynced). Callers (the
// partition's tiering loop, its only writer) write it whenever the
// generation grows.
func (p *Partition) SetTierCheckpoint(c TierCheckpoint) error {
	data := segments.FormatCheckpoint([][]int64{{int64(c.Generation), int64(c.EndOffset)}})
	if err := fsutil.WriteFileAtomic(filepath.Join(p.dir, TierCheckpointFile), data); err != nil {
		return fmt.Errorf("replica: %s-%d: tier checkpoint: %w", p.topic, p.index, err)
	}
	return nil
}

// parseTierCheckpoint parses what SetTierCheckpoint writes: one entry,
// "<generation> <end offset>", both non-negative.
func parseTierCheckpoint(b []byte) (TierCheckpoint, error) {
	entries, err := segments.ParseCheckpoint(b, 2)
	if err != nil {
		return TierCheckpoint{}, err
	}
	if len(entries) != 1 {
		return TierCheckpoint{}, fmt.Errorf("%d entries, want 1", len(entries))
	}
	g, err1 := strconv.ParseInt(entries[0][0], 10, 64)
	e, err2 := strconv.ParseInt(entries[0][1], 10, 64)
	if err1 != nil || err2 != nil || g < 0 || e < 0 {
		return TierCheckpoint{}, fmt.Errorf("entry %q is not \"<generation> <end offset>\"", strings.Join(entries[0], " "))
	}
	return TierCheckpoint{Generation: uint64(g), EndOffset: segments.Offset(e)}, nil
}
