package replica

import (
	"log/slog"
	"sync"
	"sync/atomic"
)

// maxSyncWorkers bounds how many partitions are fsynced at once. fsync is
// I/O-bound, so several in parallel overlap device flushes; the bound keeps
// a broker with thousands of busy partitions from running thousands of
// fsyncs (and goroutines blocked in them) at the same time.
const maxSyncWorkers = 16

// Committer is the group commit shared by all partitions. Each partition
// with unsynced appends gets a sync loop (at most one at a time): it fsyncs
// the partition's log, advances the high watermark and completes the
// Durable waiters covered; if more appends arrived during that fsync it
// goes round again, else it ends. So every append made while an fsync is
// in flight is covered by the next one — under load, one fsync serves many
// requests — and no partition waits for another partition's fsync (a slow
// flush of one file does not hold back the others, unlike commit rounds
// with a barrier). At most maxSyncWorkers fsyncs run at once.
//
// Safe for concurrent use. After Close, enqueued partitions are synced
// synchronously by the caller.
type Committer struct {
	logger *slog.Logger
	mu     struct {
		sync.Mutex
		closed bool
	}
	slots   chan struct{}  // maxSyncWorkers tokens: one per running fsync
	running sync.WaitGroup // sync loops in progress

	syncs atomic.Uint64
}

// NewCommitter returns a Committer. It starts no goroutine until there is
// something to sync.
func NewCommitter(logger *slog.Logger) *Committer {
	if logger == nil {
		logger = slog.Default()
	}
	return &Committer{logger: logger, slots: make(chan struct{}, maxSyncWorkers)}
}

// CommitterStats are cumulative counters for metrics and tests.
type CommitterStats struct {
	Syncs uint64 // Log.Sync calls made
}

// Stats returns the counters so far.
func (c *Committer) Stats() CommitterStats {
	return CommitterStats{Syncs: c.syncs.Load()}
}

// enqueue asks for p's appends so far to be synced.
func (c *Committer) enqueue(p *Partition) {
	c.mu.Lock()
	switch {
	case p.syncing:
		p.syncAgain = true // the running loop goes round once more
		c.mu.Unlock()
	case c.mu.closed:
		c.mu.Unlock()
		p.commit(c)
	default:
		p.syncing = true
		c.running.Add(1)
		c.mu.Unlock()
		go c.syncLoop(p)
	}
}

// syncLoop fsyncs p until no append is left uncovered.
func (c *Committer) syncLoop(p *Partition) {
	defer c.running.Done()
	for {
		c.slots <- struct{}{}
		p.commit(c)
		<-c.slots
		c.mu.Lock()
		if !p.syncAgain {
			p.syncing = false
			c.mu.Unlock()
			return
		}
		p.syncAgain = false
		c.mu.Unlock()
	}
}

// Close waits for the running sync loops; later enqueues sync in the
// caller. Idempotent.
func (c *Committer) Close() {
	c.mu.Lock()
	c.mu.closed = true
	c.mu.Unlock()
	c.running.Wait()
}
