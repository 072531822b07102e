package controller

// The FSM adapter: raft hands it committed entries, it turns them into
// metadata.Images. It owns the node's current Image and applied offset;
// Node only reads them.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/stratalog/strata/controller/metadata"
)

// errApplyPanic marks a refusal that came from a panic while applying an
// entry (a bug in package metadata, never expected; tests look for it).
var errApplyPanic = errors.New("panic while applying")

// applyResult is what fsm.Apply returns for an entry, and so what the
// proposing node's ApplyFuture.Response holds: the image after the entry,
// or why the entry was refused (the image is then unchanged).
type applyResult struct {
	im  *metadata.Image
	err error
}

// fsm applies the log to a metadata.Image.
//
// Concurrency: raft calls Apply, Restore, Snapshot and StoreConfiguration
// from its one FSM goroutine; image and applied are atomics that any
// goroutine reads; mu guards the Changed channel. Persist runs beside
// Apply on an Image, which is immutable.
//
// Determinism: the outcome of an entry depends only on its bytes, its
// index and the image before it, so every node refuses or accepts it
// alike. A decode error and a refusal (metadata.ErrRefused) are the same
// kind of outcome: logged, returned as the entry's response, the image
// unchanged. Nothing in an entry can make Apply panic or stop the node: a
// node that crashed on an entry would crash on it again at every restart,
// and so would every other node.
type fsm struct {
	log *slog.Logger

	image atomic.Pointer[metadata.Image]
	// applied is the Raft index of the last entry this FSM saw (a batch,
	// accepted or refused, or a configuration entry), or after a snapshot
	// restore the restored image's offset. Raft's no-op and barrier
	// entries never reach an FSM, so applied passes them only with the
	// next entry that does.
	applied atomic.Int64

	mu struct {
		sync.Mutex
		changed chan struct{}
		closed  bool
	}
}

var (
	_ raft.FSM                = (*fsm)(nil)
	_ raft.ConfigurationStore = (*fsm)(nil)
	_ raft.FSMSnapshot        = (*fsmSnapshot)(nil)
)

func newFSM(log *slog.Logger) *fsm {
	f := &fsm{log: log}
	f.image.Store(metadata.Empty())
	f.mu.changed = make(chan struct{})
	return f
}

// Apply applies one committed command entry: it returns an applyResult.
func (f *fsm) Apply(l *raft.Log) any {
	cur := f.image.Load()
	next, err := applyEntry(cur, l.Index, l.Data)
	if err != nil {
		f.log.Error("controller: metadata log entry refused; the image is unchanged (every node refuses it alike)",
			"offset", l.Index, "term", l.Term, "bytes", len(l.Data), "err", err)
		f.publish(cur, l.Index)
		return applyResult{err: err}
	}
	f.publish(next, l.Index)
	return applyResult{im: next}
}

// applyEntry decodes and applies the entry at index to cur. Every error
// wraps metadata.ErrRefused (and metadata.ErrCorrupt for bytes that are
// not a batch this build reads).
func applyEntry(cur *metadata.Image, index uint64, data []byte) (next *metadata.Image, err error) {
	if index > math.MaxInt64 {
		return nil, fmt.Errorf("%w: raft index %d does not fit an offset", metadata.ErrRefused, index)
	}
	batch, err := metadata.DecodeBatch(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", metadata.ErrRefused, err)
	}
	defer func() {
		if p := recover(); p != nil {
			next, err = nil, fmt.Errorf("%w: %w at offset %d: %v\n%s", metadata.ErrRefused, errApplyPanic, index, p, debug.Stack())
		}
	}()
	return cur.Apply(int64(index), batch)
}

// StoreConfiguration sees each committed configuration entry (servers
// added or removed); the Image does not change but the applied offset
// does.
func (f *fsm) StoreConfiguration(index uint64, _ raft.Configuration) {
	f.publish(f.image.Load(), index)
}

// publish makes im the current image at applied offset index and wakes
// the Changed waiters.
func (f *fsm) publish(im *metadata.Image, index uint64) {
	f.image.Store(im)
	if index <= math.MaxInt64 {
		f.applied.Store(int64(index))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.mu.closed {
		close(f.mu.changed)
		f.mu.changed = make(chan struct{})
	}
}

// changed is Node.Changed.
func (f *fsm) changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.changed
}

// close wakes the Changed waiters for good: later calls get a closed
// channel.
func (f *fsm) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.mu.closed {
		f.mu.closed = true
		close(f.mu.changed)
	}
}

// Snapshot captures the current image: a pointer, since images are
// immutable.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{im: f.image.Load()}, nil
}

// Restore replaces the image with a snapshot's (at start, and when the
// leader sends a snapshot to a follower that fell behind). A snapshot that
// does not read back as a valid image is refused, and the image stays.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	im, err := metadata.ReadImage(bufio.NewReader(rc))
	if err != nil {
		return fmt.Errorf("controller: restore metadata snapshot: %w", err)
	}
	f.log.Info("controller: metadata restored from a snapshot", "offset", im.Offset(),
		"brokers", len(im.Brokers()), "topics", im.NumTopics())
	// Raft does not tell the FSM the snapshot's index; the image's offset
	// is a lower bound of it, and the next entry sets applied exactly.
	f.publish(im, uint64(max(im.Offset(), f.applied.Load())))
	return nil
}

// fsmSnapshot writes one image as a snapshot (metadata.WriteImage).
type fsmSnapshot struct{ im *metadata.Image }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriterSize(sink, 64<<10)
	err := metadata.WriteImage(w, s.im)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("controller: write metadata snapshot at offset %d: %w", s.im.Offset(), err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
