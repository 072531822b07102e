package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratalog/strata/broker/txn"
	"github.com/stratalog/strata/internal/fsutil"
	"github.com/stratalog/strata/segments"
)

// ErrStorage reports that the partition's storage failed (an fsync
// returned an error, or a failed write could not be cut off again). The
// partition is then offline: every further Append returns an error
// wrapping ErrStorage, because after a failed fsync the kernel may have
// dropped dirty pages and what is on disk is unknown. Kafka halts the
// broker (or takes the log directory offline); Strata takes only the
// partition offline, keeps serving reads up to the last durable high
// watermark, logs the failure at error level, and reloads the log in the
// background until that succeeds (recovery.go). The broker maps it to
// KAFKA_STORAGE_ERROR, which clients retry.
var ErrStorage = errors.New("replica: storage error, partition offline")

const (
	// producerExpiry is Kafka's producer.id.expiration.ms default (1 day):
	// a producer with no batch newer than this is forgotten, which bounds
	// the memory a partition spends on producer state.
	producerExpiry = 24 * time.Hour
	// A producer snapshot is written in the background every
	// clamp(segment.bytes, 16 MiB, 256 MiB) appended bytes: roughly once
	// per segment roll, so a crash replays at most about one segment (and
	// at most 256 MiB) of batch headers, while small test segments do not
	// cause an fsync per roll.
	minSnapshotBytes = 16 << 20
	maxSnapshotBytes = 256 << 20
)

// Options configures Open.
type Options struct {
	Dir       string // partition directory, <data-dir>/<topic>-<partition>
	Topic     string
	Partition int32
	Log       segments.Config
	// Committer is the shared group-commit driver. If nil, the partition
	// starts a private one and closes it on Close.
	Committer *Committer
	Logger    *slog.Logger
}

// AppendResult is the outcome of a successful Append.
type AppendResult struct {
	// BaseOffset is the offset of the first batch of the request (for a
	// duplicate, the offset it was originally written at).
	BaseOffset segments.Offset
	// LogAppendTime is the broker timestamp for LogAppendTime topics,
	// else -1.
	LogAppendTime  int64
	LogStartOffset segments.Offset
	// Duplicate: every batch repeated one already in the log; nothing was
	// written.
	Duplicate bool
	// Durable receives exactly one value once the batches (or, for a
	// duplicate, the originals) are fsynced: nil, or the error that makes
	// them not durable. Buffered: nobody needs to read it (acks=0).
	Durable <-chan error
}

// Partition is one topic-partition hosted (and led) by this broker.
//
// Concurrency: every method is safe for concurrent use. Locks:
// mu (append lock: orders appends, guards the producer state and config)
// and syncMu (held by the committer while it syncs this partition, and by
// Close) each come before cmu (high watermark, waiters, Changed channel);
// mu and syncMu are never held together; Committer.mu is taken with none
// of them held. segments.Log's locks are innermost. No lock is held while
// waiting for another partition.
type Partition struct {
	topic  string
	index  int32
	dir    string
	log    storage
	logger *slog.Logger
	// epoch is the leader epoch appends carry (the log's latest; written
	// under mu), notLeader whether this replica does not lead now (role.go).
	epoch     atomic.Int32
	notLeader atomic.Bool
	committer *Committer
	ownCommit bool // committer was started by Open; Close closes it

	mu struct {
		sync.Mutex
		cfg          segments.Config
		producers    *txn.ProducerState
		closed       bool
		sinceSnap    int64 // bytes appended since the last producer snapshot
		snapshotting bool  // a background snapshot write is running
	}
	snapWG        sync.WaitGroup // background snapshot writers
	snapshotBytes int64          // minimum bytes between snapshots (tests lower it)

	syncMu    sync.Mutex
	logClosed bool // guarded by syncMu

	hw atomic.Int64 // high watermark; written under cmu
	// remoteStart is the remote tier's first offset, -1 if it holds
	// nothing (tier.go).
	remoteStart atomic.Int64
	cmu         struct {
		sync.Mutex
		changed chan struct{} // closed when hw next advances
		waiters []waiter
		closed  bool

		// Offline state (recovery.go). failed: the log refuses writes
		// until recovery reloads it (wraps ErrStorage). rollFailed: the
		// last roll failed (wraps segments.ErrRollFailed); the log is
		// intact.
		failed       error
		rollFailed   error
		offlineSince time.Time // zero while online
		attempts     int       // recovery attempts in this offline period
		gen          uint64    // bumped by every reload: older failures are stale
		recovering   bool      // the recovery goroutine runs
		stopRecovery bool      // shutdown began: start no recovery goroutine
	}
	rollFailing    atomic.Bool   // cmu.rollFailed != nil, read without cmu on the append path
	offlinePeriods atomic.Uint64 // times the partition went offline
	recoverStop    chan struct{} // closed at shutdown: ends the recovery goroutine
	recoverWG      sync.WaitGroup

	// syncing: a Committer sync loop is running for this partition;
	// syncAgain: appends arrived since that loop's fsync began. Both are
	// guarded by Committer.mu.
	syncing, syncAgain bool
}

// storage is the part of *segments.Log a Partition uses: the seam where
// tests inject a log whose fsync blocks or fails.
type storage interface {
	Append(payload []byte, headers []segments.BatchHeader, epoch segments.LeaderEpoch, now time.Time) (segments.AppendInfo, error)
	Sync() (segments.Offset, error)
	StartOffset() segments.Offset
	EndOffset() segments.Offset
	SizeBytes() int64
	Read(from, upTo segments.Offset, maxBytes int32, minOneBatch bool) (segments.ReadResult, error)
	OffsetForTimestamp(ts int64) (segments.Offset, int64, bool, error)
	MaxTimestamp() (int64, segments.Offset)
	ScanBatches(from segments.Offset, fn func(h segments.BatchHeader) error) error
	AssignEpoch(e segments.LeaderEpoch, startOffset segments.Offset) error
	LatestEpoch() segments.LeaderEpoch
	EndOffsetForEpoch(e segments.LeaderEpoch) (segments.LeaderEpoch, segments.Offset)
	DeleteRecordsBefore(o segments.Offset) (segments.Offset, error)
	ApplyRetention(now time.Time) (int, error)
	CheckClean(now time.Time) segments.CleanCheck
	Clean(ctx context.Context, opts segments.CleanOptions) (segments.CleanStats, error)
	SetConfig(cfg segments.Config)
	Close() error
	Delete() error
	// Offline partitions (recovery.go).
	Roll() error
	Recover() error
	OpenFiles() int
	// Tiered storage (tier.go).
	ClosedSegments(from segments.Offset) ([]segments.ClosedSegment, error)
	SetUploadedTo(o segments.Offset) error
	UploadedTo() segments.Offset
	UploadPending() bool
	StartAt(o segments.Offset) error
}

var _ storage = (*segments.Log)(nil)

type waiter struct {
	end segments.Offset // durable once hw >= end
	ch  chan error
}

// Open opens the partition in o.Dir: opens (and recovers) the segment log,
// assigns leader epoch 0 if the log has none, fsyncs whatever recovery
// kept (so the high watermark starts at the log end), and rebuilds the
// producer state from the newest valid snapshot plus the log after it.
func Open(o Options) (*Partition, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("topic", o.Topic, "partition", o.Partition)
	l, err := segments.Open(o.Dir, o.Log, logger)
	if err != nil {
		return nil, fmt.Errorf("replica: open %s-%d: %w", o.Topic, o.Partition, err)
	}
	p, err := open(o, l, logger)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("replica: open %s-%d: %w", o.Topic, o.Partition, err)
	}
	return p, nil
}

func open(o Options, l storage, logger *slog.Logger) (*Partition, error) {
	if l.LatestEpoch() < 0 {
		if err := l.AssignEpoch(0, l.EndOffset()); err != nil {
			return nil, fmt.Errorf("assign leader epoch 0: %w", err)
		}
	}
	durable, err := l.Sync()
	if err != nil {
		return nil, fmt.Errorf("sync after recovery: %w", err)
	}
	replay := func(from segments.Offset, apply func(txn.Batch) error) error {
		return l.ScanBatches(from, func(h segments.BatchHeader) error {
			return apply(txn.FromHeader(h))
		})
	}
	producers, replayed, err := txn.LoadProducerState(o.Dir, l.StartOffset(), l.EndOffset(), replay, logger)
	if err != nil {
		return nil, err
	}
	p := &Partition{
		topic:         o.Topic,
		index:         o.Partition,
		dir:           o.Dir,
		log:           l,
		logger:        logger,
		committer:     o.Committer,
		snapshotBytes: minSnapshotBytes,
	}
	p.epoch.Store(int32(l.LatestEpoch()))
	p.mu.cfg = o.Log
	p.mu.producers = producers
	p.hw.Store(int64(durable))
	p.remoteStart.Store(noRemoteStart)
	p.cmu.changed = make(chan struct{})
	p.recoverStop = make(chan struct{})
	if replayed > 0 {
		// Spare the next start this replay (the log is synced, so the
		// snapshot's offset is durable too).
		if err := p.writeSnapshot(l.EndOffset(), producers.EncodeSnapshot(l.EndOffset())); err != nil {
			logger.Warn("cannot write producer snapshot after replay", "err", err)
		}
	}
	if p.committer == nil {
		p.committer = NewCommitter(logger)
		p.ownCommit = true
	}
	logger.Debug("partition open", "log_start", int64(l.StartOffset()), "log_end", int64(l.EndOffset()),
		"leader_epoch", p.epoch.Load(), "producers", producers.Len(), "replayed_batches", replayed)
	return p, nil
}

// Topic returns the topic name.
func (p *Partition) Topic() string { return p.topic }

// Index returns the partition number.
func (p *Partition) Index() int32 { return p.index }

// Append validates the payload (concatenated magic-v2 batches; see
// segments.ValidateBatches and max.message.bytes), checks producer
// sequences, assigns offsets and writes, all under the append lock so
// appends are totally ordered; then it asks the Committer for an fsync.
//
// Errors (nothing written): *segments.CorruptError, segments.ErrInvalidRecord,
// segments.ErrRecordTooLarge, segments.ErrInvalidTimestamp,
// txn.ErrOutOfOrderSequence, txn.ErrInvalidProducerEpoch,
// segments.ErrClosed (partition closed), ErrStorage (partition offline
// after a storage failure), segments.ErrNotWritten (a write failed and was
// undone; the partition stays online) and segments.ErrRollFailed (no new
// segment could be created; the partition is offline until a roll
// succeeds, which the next Append tries too). All but the first six are
// retriable.
//
// Control batches (transaction markers) are refused with ErrInvalidRecord.
//
// Several batches in one payload (Kafka itself refuses that from v3 on)
// are checked in order, each against the state left by the previous ones;
// if any fails, none is written. Batches repeating ones already in the
// log are skipped and the rest written; Duplicate is set only when every
// batch was a duplicate.
//
// The payload's baseOffset and partitionLeaderEpoch fields are patched in
// place; the caller must not reuse it concurrently.
func (p *Partition) Append(payload []byte) (AppendResult, error) {
	p.mu.Lock()
	res, err := p.appendLocked(payload)
	p.mu.Unlock()
	if err != nil {
		return AppendResult{}, err
	}
	p.committer.enqueue(p)
	return res, nil
}

func (p *Partition) appendLocked(payload []byte) (AppendResult, error) {
	if p.mu.closed {
		return AppendResult{}, segments.ErrClosed
	}
	if p.notLeader.Load() {
		return AppendResult{}, fmt.Errorf("%w: %s-%d", ErrNotLeader, p.topic, p.index)
	}
	if err := p.failure(); err != nil {
		return AppendResult{}, err
	}
	headers, err := segments.ValidateBatches(payload, p.mu.cfg.MaxMessageBytes, p.mu.cfg.Compact)
	if err != nil {
		return AppendResult{}, err
	}
	if len(headers) == 0 {
		return AppendResult{}, fmt.Errorf("%w: no record batch", segments.ErrInvalidRecord)
	}
	logAppendTime := p.mu.cfg.TimestampType == segments.LogAppendTime

	app := p.mu.producers.Begin()
	var (
		dup        []bool // per batch; allocated on the first duplicate
		ndup       int
		base       segments.Offset = -1 // offset of the request's first batch
		dupEnd     segments.Offset = -1 // end of the newest original
		dupAppendT int64           = -1
	)
	for i, h := range headers {
		if h.IsControl() {
			// Transaction markers are written by the broker, never by
			// clients (Kafka refuses them too); nothing writes them yet.
			return AppendResult{}, fmt.Errorf("%w: control batch %d of the request: clients may not write transaction markers", segments.ErrInvalidRecord, i)
		}
		orig, isDup, err := app.Check(txn.FromHeader(h))
		if err != nil {
			return AppendResult{}, err
		}
		if !isDup {
			continue
		}
		if dup == nil {
			dup = make([]bool, len(headers))
		}
		dup[i] = true
		ndup++
		dupEnd = max(dupEnd, orig.LastOffset+1)
		if i == 0 {
			base = orig.FirstOffset
			if logAppendTime {
				dupAppendT = orig.Timestamp
			}
		}
	}
	if ndup == len(headers) {
		p.logger.Debug("duplicate batch acknowledged with its original offset",
			"producer_id", headers[0].ProducerID, "base_sequence", headers[0].BaseSequence, "offset", int64(base))
		return AppendResult{
			BaseOffset:     base,
			LogAppendTime:  dupAppendT,
			LogStartOffset: p.log.StartOffset(),
			Duplicate:      true,
			Durable:        p.waitFor(dupEnd),
		}, nil
	}

	write, writeHeaders := payload, headers
	if ndup > 0 {
		write, writeHeaders = withoutDuplicates(payload, headers, dup)
	}
	now := time.Now()
	info, err := p.log.Append(write, writeHeaders, segments.LeaderEpoch(p.epoch.Load()), now)
	if err != nil {
		return AppendResult{}, p.appendError(err)
	}
	p.rollRecovered()
	app.Commit(info.FirstOffset, info.LogAppendTime, now)
	if base == -1 {
		base = info.FirstOffset
	}
	p.maybeSnapshotLocked(int64(len(write)), info.LastOffset+1)
	return AppendResult{
		BaseOffset:     base,
		LogAppendTime:  info.LogAppendTime,
		LogStartOffset: p.log.StartOffset(),
		Durable:        p.waitFor(info.LastOffset + 1),
	}, nil
}

// withoutDuplicates copies the non-duplicate batches into a new payload.
// A batch occupies 12 bytes (baseOffset, batchLength) plus batchLength.
func withoutDuplicates(payload []byte, headers []segments.BatchHeader, dup []bool) ([]byte, []segments.BatchHeader) {
	var out []byte
	var hs []segments.BatchHeader
	pos := 0
	for i, h := range headers {
		n := 12 + int(h.Length)
		if !dup[i] {
			out = append(out, payload[pos:pos+n]...)
			hs = append(hs, h)
		}
		pos += n
	}
	return out, hs
}

// appendError classifies a Log.Append failure: rejections of the input,
// and writes that were undone (ErrNotWritten), are returned as they are; a
// failed roll takes the partition offline until a roll succeeds; anything
// else is an I/O failure that leaves the log in an unknown state, so the
// partition goes offline until its log is reloaded.
func (p *Partition) appendError(err error) error {
	var corrupt *segments.CorruptError
	switch {
	case errors.As(err, &corrupt),
		errors.Is(err, segments.ErrInvalidRecord),
		errors.Is(err, segments.ErrRecordTooLarge),
		errors.Is(err, segments.ErrInvalidTimestamp),
		errors.Is(err, segments.ErrClosed):
		return err
	case errors.Is(err, segments.ErrRollFailed):
		return p.rollFailure(err)
	case errors.Is(err, segments.ErrNotWritten):
		return err
	}
	return p.fail("append", err)
}

// fail takes the partition offline and fails every waiter.
func (p *Partition) fail(op string, err error) error {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	return p.failLocked(op, err)
}

// failIfCurrent is fail for an error from an operation that began at
// generation gen: if the log was reloaded since, the error is stale (the
// reload already dealt with it) and the partition stays online.
func (p *Partition) failIfCurrent(op string, err error, gen uint64) {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	if p.cmu.gen != gen {
		p.logger.Debug("ignoring a storage error from before the log was reloaded", "op", op, "err", err)
		return
	}
	p.failLocked(op, err)
}

func (p *Partition) failLocked(op string, err error) error {
	if p.cmu.failed == nil {
		p.cmu.failed = fmt.Errorf("%w: %s-%d: %s: %v", ErrStorage, p.topic, p.index, op, err)
		p.logger.Error("STORAGE FAILURE: partition taken offline; unsynced appends are not acknowledged; its log is reloaded automatically, with backoff, once the cause is gone",
			"op", op, "err", err, "hint", fsutil.Hint(err), "high_watermark", p.hw.Load(), "log_end", int64(p.log.EndOffset()))
	}
	for _, w := range p.cmu.waiters {
		w.ch <- p.cmu.failed
	}
	p.cmu.waiters = nil
	p.markOfflineLocked()
	return p.cmu.failed
}

// generation is the number of log reloads so far (see failIfCurrent).
func (p *Partition) generation() uint64 {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	return p.cmu.gen
}

func (p *Partition) failure() error {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	return p.cmu.failed
}

// waitFor returns a channel that receives one value once hw >= end.
func (p *Partition) waitFor(end segments.Offset) <-chan error {
	ch := make(chan error, 1)
	p.cmu.Lock()
	defer p.cmu.Unlock()
	switch {
	case end <= segments.Offset(p.hw.Load()):
		ch <- nil
	case p.cmu.failed != nil:
		ch <- p.cmu.failed
	case p.cmu.closed:
		ch <- segments.ErrClosed
	default:
		p.cmu.waiters = append(p.cmu.waiters, waiter{end: end, ch: ch})
	}
	return ch
}

// commit is called by the committer: fsync the log and complete what it
// covers. syncMu keeps it from racing Close.
func (p *Partition) commit(c *Committer) {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	if p.logClosed {
		return
	}
	c.syncs.Add(1)
	gen := p.generation()
	durable, err := p.log.Sync()
	if err != nil {
		p.failIfCurrent("fsync", err, gen)
		return
	}
	p.advance(durable)
}

// advance moves the high watermark to durable (never backwards), wakes
// Changed waiters and completes the Durable waiters it covers.
func (p *Partition) advance(durable segments.Offset) {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	if int64(durable) > p.hw.Load() {
		p.hw.Store(int64(durable))
		close(p.cmu.changed)
		p.cmu.changed = make(chan struct{})
	}
	hw := segments.Offset(p.hw.Load())
	keep := p.cmu.waiters[:0]
	for _, w := range p.cmu.waiters {
		if w.end <= hw {
			w.ch <- nil
		} else {
			keep = append(keep, w)
		}
	}
	clear(p.cmu.waiters[len(keep):])
	p.cmu.waiters = keep
}

// HighWatermark is the durable end offset: consumers never see data that
// is not fsynced (single node, so there is no replication to wait for).
func (p *Partition) HighWatermark() segments.Offset { return segments.Offset(p.hw.Load()) }

// LogStartOffset is the first offset still in the log, local or remote
// (the lower of the local log start and the remote tier's; see tier.go).
func (p *Partition) LogStartOffset() segments.Offset {
	local := p.log.StartOffset()
	if rs := p.RemoteLogStart(); rs >= 0 && rs < local {
		return rs
	}
	return local
}

// LogEndOffset is the next offset to be assigned (may be above the HW).
func (p *Partition) LogEndOffset() segments.Offset { return p.log.EndOffset() }

// SizeBytes is the size of the partition's log on local disk.
func (p *Partition) SizeBytes() int64 { return p.log.SizeBytes() }

// LeaderEpoch is the partition's current leader epoch (constant for a
// single node).
func (p *Partition) LeaderEpoch() segments.LeaderEpoch { return segments.LeaderEpoch(p.epoch.Load()) }

// Read returns whole batches from `from`, bounded by the high watermark
// (see segments.Log.Read; the caller must Release the result). An offset
// between the HW and the log end is valid and reads nothing yet; above the
// log end or below the log start it is segments.ErrOffsetOutOfRange.
func (p *Partition) Read(from segments.Offset, maxBytes int32, minOneBatch bool) (segments.ReadResult, error) {
	hw := p.HighWatermark()
	if from > hw {
		if from <= p.log.EndOffset() {
			return segments.ReadResult{}, nil
		}
		return segments.ReadResult{}, fmt.Errorf("%w: offset %d beyond log end %d", segments.ErrOffsetOutOfRange, from, p.log.EndOffset())
	}
	return p.log.Read(from, hw, maxBytes, minOneBatch)
}

// Changed returns a channel that is closed the next time the high
// watermark advances, or when the partition is closed. Call it before
// checking the condition you wait for, then wait on the channel.
func (p *Partition) Changed() <-chan struct{} {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	return p.cmu.changed
}

// OffsetForTimestamp is segments.Log.OffsetForTimestamp restricted to data
// below the high watermark (as Kafka filters ListOffsets for consumers).
func (p *Partition) OffsetForTimestamp(ts int64) (segments.Offset, int64, bool, error) {
	hw := p.HighWatermark()
	off, bts, found, err := p.log.OffsetForTimestamp(ts)
	if err != nil || !found || off >= hw {
		return -1, -1, false, err
	}
	return off, bts, true, nil
}

// MaxTimestamp is the largest timestamp and its batch's offset, (-1, -1)
// if the log is empty or that batch is not yet below the high watermark.
func (p *Partition) MaxTimestamp() (int64, segments.Offset) {
	hw := p.HighWatermark()
	ts, off := p.log.MaxTimestamp()
	if off < 0 || off >= hw {
		return -1, -1
	}
	return ts, off
}

// EndOffsetForEpoch is Kafka's OffsetForLeaderEpoch (see segments.Log).
func (p *Partition) EndOffsetForEpoch(e segments.LeaderEpoch) (segments.LeaderEpoch, segments.Offset) {
	return p.log.EndOffsetForEpoch(e)
}

// DeleteRecordsTarget resolves a DeleteRecords offset: -1 means the high
// watermark; above the high watermark, or below -1, is
// segments.ErrOffsetOutOfRange.
func (p *Partition) DeleteRecordsTarget(o segments.Offset) (segments.Offset, error) {
	hw := p.HighWatermark()
	if o == -1 {
		o = hw
	}
	if o < 0 || o > hw {
		return -1, fmt.Errorf("%w: delete records before %d, high watermark %d", segments.ErrOffsetOutOfRange, o, hw)
	}
	return o, nil
}

// DeleteRecordsBefore moves the local log start to o (see
// DeleteRecordsTarget) and returns the new log start offset. The remote
// tier's start is the tiering layer's to move, before this.
func (p *Partition) DeleteRecordsBefore(o segments.Offset) (segments.Offset, error) {
	o, err := p.DeleteRecordsTarget(o)
	if err != nil {
		return -1, err
	}
	if o > p.log.StartOffset() {
		if _, err := p.log.DeleteRecordsBefore(o); err != nil {
			return -1, err
		}
	}
	return p.LogStartOffset(), nil
}

// ApplyRetention applies retention.ms/bytes to closed segments and expires
// producers idle for longer than producer.id.expiration.ms (1 day).
func (p *Partition) ApplyRetention(now time.Time) error {
	_, err := p.log.ApplyRetention(now)
	p.mu.Lock()
	if !p.mu.closed {
		if n := p.mu.producers.ExpireBefore(now.Add(-producerExpiry)); n > 0 {
			p.logger.Debug("expired idle producers", "count", n)
		}
	}
	p.mu.Unlock()
	return err
}

// CheckClean reports whether the log cleaner should compact this partition
// now (see segments.Log.CheckClean).
func (p *Partition) CheckClean(now time.Time) segments.CleanCheck { return p.log.CheckClean(now) }

// Clean runs one compaction pass (segments.Log.Clean). An idempotent
// producer's newest batch keeps its header even if compaction empties it,
// so a replay of the log after a crash restores the producer's sequence.
func (p *Partition) Clean(ctx context.Context, opts segments.CleanOptions) (segments.CleanStats, error) {
	opts.KeepProducerBatch = func(id int64, last segments.Offset) bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.mu.closed {
			return true
		}
		bs := p.mu.producers.Batches(txn.ProducerID(id))
		return len(bs) > 0 && bs[len(bs)-1].LastOffset == last
	}
	return p.log.Clean(ctx, opts)
}

// SetLogConfig applies a changed topic configuration.
func (p *Partition) SetLogConfig(c segments.Config) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.cfg = c
	p.log.SetConfig(c)
}

// Close shuts the partition down cleanly: no more appends, a final fsync
// (completing its waiters), a producer snapshot at the log end, and
// segments.Log.Close (clean-shutdown marker). Waiters that cannot complete
// get segments.ErrClosed; Changed channels are closed. Idempotent.
func (p *Partition) Close() error { return p.shutdown(false) }

// Delete closes the partition and removes its directory.
func (p *Partition) Delete() error { return p.shutdown(true) }

func (p *Partition) shutdown(remove bool) error {
	p.mu.Lock()
	already := p.mu.closed
	p.mu.closed = true
	// Appends are refused from here on, so the log end is final and the
	// producer state describes exactly the batches below it.
	end := p.log.EndOffset()
	var snapshot []byte
	if !already && !remove {
		snapshot = p.mu.producers.EncodeSnapshot(end)
	}
	p.mu.Unlock()
	if already {
		return nil
	}
	p.stopRecovery()
	p.snapWG.Wait()

	var errs []error
	p.syncMu.Lock()
	if remove {
		errs = append(errs, p.log.Delete())
	} else {
		if durable, err := p.log.Sync(); err != nil {
			errs = append(errs, p.fail("fsync", err))
		} else {
			p.advance(durable)
			if err := p.writeSnapshot(end, snapshot); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, p.log.Close())
	}
	p.logClosed = true
	p.syncMu.Unlock()

	p.cmu.Lock()
	p.cmu.closed = true
	for _, w := range p.cmu.waiters {
		w.ch <- segments.ErrClosed
	}
	p.cmu.waiters = nil
	close(p.cmu.changed) // wake long-polls; later Changed calls get this closed channel
	p.cmu.Unlock()

	if p.ownCommit {
		p.committer.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("replica: close %s-%d: %w", p.topic, p.index, err)
	}
	return nil
}

// maybeSnapshotLocked starts a background producer snapshot at end once
// enough bytes were appended since the last one. Holding mu makes the
// encoded state exactly that of the batches below end.
func (p *Partition) maybeSnapshotLocked(appended int64, end segments.Offset) {
	p.mu.sinceSnap += appended
	if p.mu.snapshotting || p.mu.sinceSnap < min(max(p.mu.cfg.SegmentBytes, p.snapshotBytes), maxSnapshotBytes) {
		return
	}
	p.mu.sinceSnap = 0
	p.mu.snapshotting = true
	data := p.mu.producers.EncodeSnapshot(end)
	p.snapWG.Add(1)
	go func() {
		defer p.snapWG.Done()
		// The snapshot may reach the disk before the batches below end are
		// fsynced; LoadProducerState ignores (and deletes) a snapshot above
		// the recovered log end, so that is harmless.
		if err := p.writeSnapshot(end, data); err != nil {
			p.logger.Warn("cannot write producer snapshot", "offset", int64(end), "err", err)
		}
		p.mu.Lock()
		p.mu.snapshotting = false
		p.mu.Unlock()
	}()
}

func (p *Partition) writeSnapshot(end segments.Offset, data []byte) error {
	if err := txn.WriteSnapshot(p.dir, end, data); err != nil {
		return err
	}
	return txn.PruneSnapshots(p.dir)
}
