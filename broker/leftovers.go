package broker

// Directories of failed creates that could not be removed at once.
//
// A CreateTopics or CreatePartitions that fails removes the partition
// directories it made (topics.go, discardNew). Removing a directory needs a
// file handle to list it, so when handles are exhausted — often the reason
// the create failed — the removal fails too. Such directories are retried
// here, by one goroutine with backoff (1 s doubling to 30 s), until they
// are gone or the registry closes; whatever is left then is removed at the
// next start as an orphan (openTopicRegistry). A directory whose name a
// live partition uses again (a later create of the same topic) is
// dropped from the list, never removed.

import (
	"errors"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/stratalog/strata/internal/fsutil"
)

const (
	leftoverBackoffMin = time.Second
	leftoverBackoffMax = 30 * time.Second
)

// leftovers is the registry's list of directories to remove. Guarded by mu;
// the goroutine runs while running is set.
type leftovers struct {
	mu      sync.Mutex
	dirs    []string
	running bool
	stopped bool
	stop    chan struct{} // closed by stopLeftovers
	wg      sync.WaitGroup
}

// removeLater queues dir (whose removal failed with err) for the
// background remover, starting it if needed.
func (r *topicRegistry) removeLater(dir string, err error) {
	l := &r.leftovers
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		r.log.Error("cannot remove the directory of a failed create; it is removed at the next start", "dir", dir, "err", err, "hint", fsutil.Hint(err))
		return
	}
	r.log.Error("cannot remove the directory of a failed create; retrying in the background", "dir", dir, "err", err, "hint", fsutil.Hint(err))
	l.dirs = append(l.dirs, dir)
	if l.running {
		return
	}
	l.running = true
	l.wg.Add(1)
	go r.removeLeftovers()
}

// removeLeftovers retries the queued removals with backoff until none is
// left or the registry closes.
func (r *topicRegistry) removeLeftovers() {
	l := &r.leftovers
	defer l.wg.Done()
	wait := time.Duration(0)
	for {
		wait = min(max(2*wait, leftoverBackoffMin), leftoverBackoffMax)
		t := time.NewTimer(wait)
		select {
		case <-l.stop:
			t.Stop()
			return
		case <-t.C:
		}
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
	dirs := l.dirs
	l.dirs = nil
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
		r.log.Info("removed the directory of a failed create", "dir", dir)
	}
	if len(left) > 0 {
		r.log.Warn("directories of failed creates still cannot be removed; retrying", "dirs", strings.Join(left, ", "),
			"err", lastErr, "hint", fsutil.Hint(lastErr))
		if err := fsutil.SyncDir(r.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.log.Debug("fsync of the data directory", "err", err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dirs = append(left, l.dirs...)
	if len(l.dirs) == 0 {
		l.running = false
		return true
	}
	return false
}

// dirInUse reports whether a published partition lives in dir.
func (r *topicRegistry) dirInUse(dir string) bool {
	name, part, ok := parsePartitionDir(strings.TrimPrefix(dir, r.dir+string(os.PathSeparator)))
	if !ok {
		return false
	}
	t := r.get(name)
	return t != nil && int(part) < len(t.partitions)
}

// stopLeftovers ends the background remover and keeps it from starting
// again. Idempotent.
func (r *topicRegistry) stopLeftovers() {
	l := &r.leftovers
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.stopped = true
	close(l.stop)
	l.mu.Unlock()
	l.wg.Wait()
}

// pendingLeftovers lists the directories still queued (tests).
func (r *topicRegistry) pendingLeftovers() []string {
	l := &r.leftovers
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.dirs...)
}
