package replica

// The partition's role, as the metadata image gives it: led by this
// replica at a leader epoch, or not led here (another broker leads it, or
// none does). A partition opens as the leader at its log's latest epoch,
// which a standalone partition (tests, tools) keeps; the broker sets the
// image's role at once and at every change.

import (
	"errors"
	"fmt"

	"github.com/stratalog/strata/segments"
)

// ErrNotLeader: the partition is not led by this replica (its Append
// refuses writes; the broker answers NOT_LEADER_OR_FOLLOWER).
var ErrNotLeader = errors.New("replica: this broker does not lead the partition")

// BecomeLeader makes this replica the leader at epoch: appends are
// accepted and carry epoch, which the log's epoch cache records from the
// log end. An epoch below the log's latest (metadata that knows less than
// the data: a log written before the metadata log's epochs) keeps the
// latest, so epochs in the log only grow; the returned epoch is the one
// in force.
func (p *Partition) BecomeLeader(epoch segments.LeaderEpoch) (segments.LeaderEpoch, error) {
	// Every metadata change calls this for every hosted partition: when
	// nothing changes, leave the append lock alone.
	if cur := segments.LeaderEpoch(p.epoch.Load()); !p.notLeader.Load() && epoch <= cur {
		return cur, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return 0, segments.ErrClosed
	}
	cur := segments.LeaderEpoch(p.epoch.Load())
	changed := false
	if epoch > cur {
		if err := p.log.AssignEpoch(epoch, p.log.EndOffset()); err != nil {
			return cur, fmt.Errorf("replica: %s-%d: assign leader epoch %d: %w", p.topic, p.index, epoch, err)
		}
		p.epoch.Store(int32(epoch))
		cur, changed = epoch, true
	}
	if p.notLeader.Swap(false) || changed {
		p.logger.Info("leading the partition", "leader_epoch", int32(cur), "log_end_offset", int64(p.log.EndOffset()))
	}
	return cur, nil
}

// StopLeading makes appends fail with ErrNotLeader until BecomeLeader.
// Appends already made stay (and complete as their fsync does).
func (p *Partition) StopLeading() {
	if p.notLeader.Load() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.notLeader.Swap(true) {
		p.logger.Info("no longer leading the partition", "leader_epoch", p.epoch.Load())
	}
}

// IsLeader reports whether this replica leads the partition.
func (p *Partition) IsLeader() bool { return !p.notLeader.Load() }
