package replica

import (
	"log/slog"
	"sync"
	"sync/atomic"
)

// maxSyncWorkers bounds how many partitions one commit round fsyncs at
// once. fsync is I/O-bound, so a few in parallel overlap device flushes
// without flooding a small machine with goroutines.
const maxSyncWorkers = 4

// Committer is the group commit shared by all partitions: one goroutine
// collects the partitions that have unsynced appends, fsyncs them (up to
// maxSyncWorkers in parallel), then advances each one's high watermark and
// completes its Durable waiters. Every append that was enqueued before a
// round starts is covered by that round, so one fsync per partition per
// round serves every request that arrived meanwhile: under load, rounds
// are back to back and each carries many requests.
//
// Safe for concurrent use. After Close, enqueued partitions are synced
// synchronously by the caller.
type Committer struct {
	logger *slog.Logger
	mu     struct {
		sync.Mutex
		pending []*Partition
		spare   []*Partition // recycled pending slice
		closed  bool
	}
	wake chan struct{} // capacity 1: "pending is non-empty or closed"
	done chan struct{} // closed when the goroutine exits

	rounds atomic.Uint64
	syncs  atomic.Uint64
}

// NewCommitter starts the commit goroutine.
func NewCommitter(logger *slog.Logger) *Committer {
	if logger == nil {
		logger = slog.Default()
	}
	c := &Committer{logger: logger, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.run()
	return c
}

// CommitterStats are cumulative counters for metrics and tests.
type CommitterStats struct {
	Rounds uint64 // commit rounds run
	Syncs  uint64 // Log.Sync calls made (one per partition per round)
}

// Stats returns the counters so far.
func (c *Committer) Stats() CommitterStats {
	return CommitterStats{Rounds: c.rounds.Load(), Syncs: c.syncs.Load()}
}

// enqueue asks for p to be synced in the next round.
func (c *Committer) enqueue(p *Partition) {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		p.commit(c)
		return
	}
	if !p.queued {
		p.queued = true
		c.mu.pending = append(c.mu.pending, p)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Committer) run() {
	defer close(c.done)
	for {
		c.mu.Lock()
		for len(c.mu.pending) == 0 && !c.mu.closed {
			c.mu.Unlock()
			<-c.wake
			c.mu.Lock()
		}
		batch := c.mu.pending
		c.mu.pending = c.mu.spare[:0]
		for _, p := range batch {
			p.queued = false
		}
		closed := c.mu.closed
		c.mu.Unlock()

		if len(batch) == 0 && closed {
			return
		}
		c.round(batch)
		clear(batch)
		c.mu.Lock()
		c.mu.spare = batch[:0]
		c.mu.Unlock()
	}
}

// round syncs every partition of batch and completes their waiters.
func (c *Committer) round(batch []*Partition) {
	c.rounds.Add(1)
	if len(batch) == 1 {
		batch[0].commit(c)
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(batch), maxSyncWorkers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(batch)); i = next.Add(1) - 1 {
				batch[i].commit(c)
			}
		}()
	}
	wg.Wait()
}

// Close finishes the pending rounds and stops the goroutine. Idempotent.
func (c *Committer) Close() {
	c.mu.Lock()
	c.mu.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	<-c.done
}
