package broker

// Partition directories that could not be removed at once.
//
// A CreateTopics or CreatePartitions that fails removes the partition
// directories it made, and DeleteTopics removes its partitions'
// (topics.go, discardPartitions). Removing a directory needs a file handle
// to list it, so when handles are exhausted — often the reason a create
// failed — the removal fails too. Such directories are retried here, by
// one goroutine with backoff (1 s doubling to 30 s), until they are gone
// or the registry closes; whatever is left then is removed at the next
// start as an orphan (openTopicRegistry), so no removal here needs to be
// made durable. A directory whose name a live partition uses again (a
// later create of the same topic) is dropped from the list, never removed.

import (
	"os"
	"strings"
	"sync"
	"time"

	"github.com/stratalog/strata/internal/backoff"
	"github.com/stratalog/strata/internal/fsutil"
)

const (
	leftoverBackoffMin = time.Second
	leftoverBackoffMax = 30 * time.Second
)

// leftovers is the registry's list of directories to remove.
type leftovers struct {
	mu struct {
		sync.Mutex
		dirs    []string
		running bool // the remover goroutine runs
		stopped bool // stopLeftovers was called: start no remover
	}
	stop chan struct{} // closed by stopLeftovers
	wg   sync.WaitGroup
}

// removeLater queues dir (whose removal failed with err) for the
// background remover, starting it if needed.
func (r *topicRegistry) removeLater(dir string, err error) {
	l := &r.leftovers
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.stopped {
		r.log.Error("cannot remove a partition directory; it is removed at the next start", "dir", dir, "err", err, "hint", fsutil.Hint(err))
		return
	}
	r.log.Error("cannot remove a partition directory; retrying in the background", "dir", dir, "err", err, "hint", fsutil.Hint(err))
	l.mu.dirs = append(l.mu.dirs, dir)
	if l.mu.running {
		return
	}
	l.mu.running = true
	l.wg.Add(1)
	go r.removeLeftovers()
}

// removeLeftovers retries the queued removals with backoff until none is
// left or the registry closes.
func (r *topicRegistry) removeLeftovers() {
	l := &r.leftovers
	defer l.wg.Done()
	b := backoff.Backoff{Min: leftoverBackoffMin, Max: leftoverBackoffMax}
	for backoff.Sleep(l.stop, b.Next()) {
		if r.removeLeftoversOnce() {
			return
		}
	}
}

// removeLeftoversOnce makes one pass over the list under adminMu (so that
// no create reuses a name meanwhile) and reports whether the list is empty
// (then the goroutine ends).
func (r *topicRegistry) removeLeftoversOnce() (done bool) {
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	l := &r.leftovers
	l.mu.Lock()
	dirs := l.mu.dirs
	l.mu.dirs = nil
	l.mu.Unlock()

	var left []string
	var lastErr error
	for _, dir := range dirs {
		if r.dirInUse(dir) {
			continue
		}
		if err := r.removeAll(dir); err != nil {
			left = append(left, dir)
			lastErr = err
			continue
		}
		r.log.Info("removed a leftover partition directory", "dir", dir)
	}
	if len(left) > 0 {
		r.log.Warn("leftover partition directories still cannot be removed; retrying", "dirs", strings.Join(left, ", "),
			"err", lastErr, "hint", fsutil.Hint(lastErr))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.dirs = append(left, l.mu.dirs...)
	if len(l.mu.dirs) == 0 {
		l.mu.running = false
		return true
	}
	return false
}

// dirInUse reports whether a published, open partition lives in dir.
func (r *topicRegistry) dirInUse(dir string) bool {
	name, part, ok := parsePartitionDir(strings.TrimPrefix(dir, r.dir+string(os.PathSeparator)))
	if !ok {
		return false
	}
	return r.get(name).partition(part) != nil
}

// stopLeftovers ends the background remover and keeps it from starting
// again. Idempotent.
func (r *topicRegistry) stopLeftovers() {
	l := &r.leftovers
	l.mu.Lock()
	if l.mu.stopped {
		l.mu.Unlock()
		return
	}
	l.mu.stopped = true
	close(l.stop)
	l.mu.Unlock()
	l.wg.Wait()
}

// pendingLeftovers lists the directories still queued (tests).
func (r *topicRegistry) pendingLeftovers() []string {
	l := &r.leftovers
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.mu.dirs...)
}
