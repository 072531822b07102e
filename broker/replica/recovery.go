package replica

// Offline partitions and their recovery without a restart.
//
// A partition is offline while it cannot take writes. Two causes:
//
//   - failed (cmu.failed, wraps ErrStorage): a write that could not be
//     cut off again, or an fsync error. What is on disk is unknown (Linux
//     may drop dirty pages after reporting an fsync error), so the log
//     refuses writes and unsynced appends are not acknowledged. Recovery
//     reloads the log from disk (segments.Log.Recover: the crash-recovery
//     scan, then a cut at the high watermark, the last fsynced offset) and
//     the producer state with it.
//   - rollFailed (cmu.rollFailed, wraps segments.ErrRollFailed): the log
//     could not create a new segment's files (too many open files, disk
//     full). Nothing was written and the log is intact; every append tries
//     the roll again, and so does recovery (segments.Log.Roll).
//
// Either way one recovery goroutine per offline partition retries with
// backoff (first after recoveryBackoffMin, doubling up to
// recoveryBackoffMax) and logs every attempt, which the backoff limits to
// at most one line per partition every 30 s. It ends when the partition is
// online again (recovered, or a successful append cleared a roll failure)
// or closed. Reads are served up to the high watermark throughout.

import (
	"errors"
	"fmt"
	"time"

	"github.com/stratalog/strata/broker/txn"
	"github.com/stratalog/strata/internal/backoff"
	"github.com/stratalog/strata/internal/fsutil"
	"github.com/stratalog/strata/segments"
)

const (
	// recoveryBackoffMin is the wait before the first recovery attempt:
	// long enough that a burst of failures is one offline period, short
	// enough that a partition is back about a second after its cause.
	recoveryBackoffMin = time.Second
	// recoveryBackoffMax bounds the wait between attempts (1, 2, 4, 8, 16,
	// 30, 30 … s): a partition is back at most 30 s after its cause is
	// gone, and a lasting failure logs two lines a minute.
	recoveryBackoffMax = 30 * time.Second
)

// OfflineState describes why a partition cannot take writes.
type OfflineState struct {
	// Reason wraps ErrStorage (a failed write or fsync; the log is
	// reloaded by recovery) or segments.ErrRollFailed (a new segment could
	// not be created; nothing was written).
	Reason error
	Since  time.Time // when the partition went offline
	// Attempts is the number of recovery attempts made so far.
	Attempts int
}

// Offline reports whether the partition is offline (cannot take writes)
// and why. Safe for concurrent use; cheap enough for every metrics scrape
// and /readyz request.
func (p *Partition) Offline() (OfflineState, bool) {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	reason := p.cmu.failed
	if reason == nil {
		reason = p.cmu.rollFailed
	}
	if reason == nil {
		return OfflineState{}, false
	}
	return OfflineState{Reason: reason, Since: p.cmu.offlineSince, Attempts: p.cmu.attempts}, true
}

// OfflinePeriods is how many times the partition went offline since it was
// opened (a counter for metrics: a short offline period between two scrapes
// still shows).
func (p *Partition) OfflinePeriods() uint64 { return p.offlinePeriods.Load() }

// OpenFiles is the number of file handles the partition's log holds (see
// segments.Log.OpenFiles).
func (p *Partition) OpenFiles() int { return p.log.OpenFiles() }

// markOfflineLocked records the start of an offline period (if the
// partition was online) and starts the recovery goroutine unless one runs
// or the partition is shutting down. Caller holds cmu.
func (p *Partition) markOfflineLocked() {
	if p.cmu.offlineSince.IsZero() {
		p.cmu.offlineSince = time.Now()
		p.cmu.attempts = 0
		p.offlinePeriods.Add(1)
	}
	if p.cmu.recovering || p.cmu.stopRecovery {
		return
	}
	p.cmu.recovering = true
	p.recoverWG.Add(1)
	go p.recoverLoop()
}

// onlineLocked reports whether neither cause holds; if so it ends the
// offline period. Caller holds cmu.
func (p *Partition) onlineLocked() bool {
	if p.cmu.failed != nil || p.cmu.rollFailed != nil {
		return false
	}
	p.cmu.offlineSince = time.Time{}
	return true
}

// rollFailure takes the partition offline for a failed roll (err wraps
// segments.ErrRollFailed) and returns err.
func (p *Partition) rollFailure(err error) error {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	if p.cmu.failed == nil && p.cmu.rollFailed == nil {
		p.logger.Error("partition offline: cannot roll to a new segment; appends fail with KAFKA_STORAGE_ERROR (retriable) until a roll succeeds, retried automatically",
			"err", err, "hint", fsutil.Hint(err), "log_end", int64(p.log.EndOffset()))
	}
	p.cmu.rollFailed = err
	p.rollFailing.Store(true)
	p.markOfflineLocked()
	return err
}

// rollRecovered clears a roll failure after a successful append or roll.
func (p *Partition) rollRecovered() {
	if !p.rollFailing.Load() {
		return
	}
	p.cmu.Lock()
	defer p.cmu.Unlock()
	if p.cmu.rollFailed == nil {
		return
	}
	p.cmu.rollFailed = nil
	p.rollFailing.Store(false)
	since := p.cmu.offlineSince
	if p.onlineLocked() {
		p.logger.Info("partition back online: a new segment was created", "attempts", p.cmu.attempts,
			"offline_for", time.Since(since).Round(time.Millisecond).String())
	}
}

// recoverLoop retries recovery with backoff until the partition is online
// or closed. It is the only goroutine that calls tryRecover.
func (p *Partition) recoverLoop() {
	defer p.recoverWG.Done()
	b := backoff.Backoff{Min: recoveryBackoffMin, Max: recoveryBackoffMax}
	for wait := b.Next(); ; {
		if !backoff.Sleep(p.recoverStop, wait) {
			p.endRecovery()
			return
		}
		if p.endIfOnline() {
			return
		}
		p.cmu.Lock()
		p.cmu.attempts++
		attempt, since := p.cmu.attempts, p.cmu.offlineSince
		p.cmu.Unlock()

		err := p.tryRecover()
		wait = b.Next()
		switch {
		case err == nil: // logged by rollRecovered or reloadLocked
			if p.endIfOnline() {
				return
			}
			// Offline again meanwhile: keep going.
		case errors.Is(err, segments.ErrClosed):
			p.endRecovery()
			return
		default:
			p.logger.Warn("partition still offline: recovery attempt failed", "attempt", attempt, "err", err,
				"hint", fsutil.Hint(err), "next_attempt_in", wait.String(),
				"offline_for", time.Since(since).Round(time.Second).String())
		}
	}
}

// endIfOnline reports whether the partition is online and, if so, marks the
// recovery goroutine as gone in the same critical section, so that a
// failure right after starts a new one.
func (p *Partition) endIfOnline() bool {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	if !p.onlineLocked() {
		return false
	}
	p.cmu.recovering = false
	return true
}

// endRecovery marks the recovery goroutine as gone (shutdown).
func (p *Partition) endRecovery() {
	p.cmu.Lock()
	p.cmu.recovering = false
	p.cmu.Unlock()
}

// tryRecover makes one recovery attempt: reload a failed log, or retry a
// failed roll. nil means the partition is online (the loop then ends at
// its next check). segments.ErrClosed means the partition closed.
func (p *Partition) tryRecover() error {
	sync, err := p.recoverLocked()
	if sync {
		// Make the roll durable (and finalize the old segment) now rather
		// than at the next append; never with mu held (see Partition).
		p.committer.enqueue(p)
	}
	return err
}

// recoverLocked is tryRecover under the append lock: no append runs while
// the log is reloaded or rolled. It reports whether a Sync is due.
func (p *Partition) recoverLocked() (sync bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return false, segments.ErrClosed
	}
	p.cmu.Lock()
	failed, rollFailed := p.cmu.failed, p.cmu.rollFailed
	p.cmu.Unlock()
	switch {
	case failed != nil:
		return false, p.reloadLocked()
	case rollFailed != nil:
		if err := p.log.Roll(); err != nil {
			if !errors.Is(err, segments.ErrRollFailed) {
				// The log failed meanwhile (or closed): that cause wins.
				return false, p.appendError(err)
			}
			p.cmu.Lock()
			p.cmu.rollFailed = err
			p.cmu.Unlock()
			return false, err
		}
		p.rollRecovered()
		return true, nil
	}
	return false, nil
}

// reloadLocked reloads a failed log and the producer state, then brings
// the partition online. Caller holds mu.
func (p *Partition) reloadLocked() error {
	if err := p.log.Recover(); err != nil {
		return err
	}
	// The log now ends at its last durable offset; make the high
	// watermark say so (it never moves backwards: Recover refuses a log
	// that ends below it).
	durable, err := p.log.Sync()
	if err != nil {
		return fmt.Errorf("sync after recovery: %w", err)
	}
	replay := func(from segments.Offset, apply func(txn.Batch) error) error {
		return p.log.ScanBatches(from, func(h segments.BatchHeader) error {
			return apply(txn.FromHeader(h))
		})
	}
	// Appends after the durable offset were cut, so the producer state is
	// rebuilt from the snapshots and the log, exactly as at Open.
	producers, _, err := txn.LoadProducerState(p.dir, p.log.StartOffset(), p.log.EndOffset(), replay, p.logger)
	if err != nil {
		return fmt.Errorf("reloading producer state: %w", err)
	}
	p.mu.producers = producers
	p.advance(durable)
	p.cmu.Lock()
	defer p.cmu.Unlock()
	p.cmu.failed = nil
	p.cmu.gen++
	since, attempts := p.cmu.offlineSince, p.cmu.attempts
	if p.onlineLocked() {
		p.logger.Info("partition back online: its log was reloaded from disk and cut at the high watermark",
			"high_watermark", int64(durable), "attempts", attempts, "offline_for", time.Since(since).Round(time.Millisecond).String())
	}
	return nil
}

// stopRecovery ends the recovery goroutine, if any, and keeps new ones
// from starting (shutdown). Call without locks held.
func (p *Partition) stopRecovery() {
	p.cmu.Lock()
	p.cmu.stopRecovery = true
	p.cmu.Unlock()
	close(p.recoverStop)
	p.recoverWG.Wait()
}
