package broker

// Tiered storage in the broker: the tierManager wires the tiering package
// (uploader, manifests, chunk cache, remote reader, cluster metadata) to
// the topic registry and the request handlers.
//
// Each partition of a tiered topic (topicconfig.Config.Tiered) this node
// leads has one goroutine (tieredPartition.run) that is the only writer of its
// manifest: it uploads closed segments as they roll, applies remote
// retention on the retention interval, removes orphan objects, and serves
// DeleteRecords' remote trims, all at the partition's leader epoch. It
// publishes the manifest it last committed or loaded, which remote reads
// use, and the remote log start, which makes the partition's log start
// offset cover offsets only the bucket holds.
//
// Reads below the local log start go to the bucket through one chunk cache
// (tiering_read.go). The bucket describes the cluster: every topic
// change rewrites cluster/metadata.json in the background (metadataLoop),
// and a broker that starts on an empty data directory against a bucket
// with metadata adopts its cluster id and topics and restarts each
// partition's local log where its manifest ends (bootstrapFromBucket).
//
// Failures. Whatever fails — the store unreachable or full, a corrupt or
// missing manifest — a partition loop retries with exponential backoff
// from the task interval up to maxTierBackoff, and nothing shortens that
// wait (tierSchedule). Lasting failures are logged through one rate
// limiter (logutil.Limiter, tierLogEvery per partition and step) and
// shown in the status. A partition whose manifest was never loaded in
// this run (missing with local evidence that it tiered, corrupt, or the
// store down at start) does not know its remote log start: reads and
// ListOffsets below its local log start answer KAFKA_STORAGE_ERROR, which
// clients retry, instead of OFFSET_OUT_OF_RANGE, which would make
// consumers with auto.offset.reset=earliest skip the tiered history
// (tiering_read.go). The tier checkpoint in the partition directory
// (replica.TierCheckpoint) records the newest manifest generation seen, so
// that a manifest deleted or rolled back is refused
// (tiering.ErrManifestLost) rather than started over and cleaned against.
//
// Concurrency: tierManager.mu guards the partition map only; each
// tieredPartition's mutable state belongs to its goroutine, except the
// published manifest and status (atomics and statusMu). Nothing here holds
// a registry or partition lock across object-store I/O.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratalog/strata/broker/replica"
	"github.com/stratalog/strata/internal/backoff"
	"github.com/stratalog/strata/internal/logutil"
	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/segments"
	"github.com/stratalog/strata/tiering"
	"github.com/stratalog/strata/topicconfig"
)

// TieringConfig configures tiered storage. A zero ObjectStore disables it.
type TieringConfig struct {
	// ObjectStore is the store's URL (file://, s3://, minio://, mem://);
	// "" disables tiering. internal/config defaults it to
	// file://<data-dir>/objects.
	ObjectStore string
	// CacheDir holds the remote-read chunk cache (default
	// <data-dir>/remote-cache); CacheBytes bounds it (remote-cache-size,
	// 1 GiB).
	CacheDir   string
	CacheBytes int64
	// TaskInterval is how often each partition's tiering loop looks for
	// work and retries after a failure (remote.log.manager.task.interval.ms,
	// 30 s). A segment roll starts its upload at once.
	TaskInterval time.Duration
	// FetchMaxWait bounds how long a Fetch waits for remote reads before
	// answering without their records (remote.fetch.max.wait.ms, 500 ms).
	FetchMaxWait time.Duration
	// ReadTimeout bounds one remote read in the background, downloads
	// included (remote.log.reader.timeout.ms, 30 s).
	ReadTimeout time.Duration
	// OrphanGrace is how old an object no manifest lists must be before
	// orphan cleanup deletes it (remote.log.orphan.grace.ms, 15 min; it
	// must exceed an upload plus its commit).
	OrphanGrace time.Duration
	// Store, when set, is used instead of opening ObjectStore (tests).
	// The broker closes it at shutdown either way.
	Store objectstore.Store
}

// Defaults of TieringConfig.
const (
	defaultRemoteCacheBytes   = 1 << 30
	defaultTierTaskInterval   = 30 * time.Second
	defaultRemoteFetchMaxWait = 500 * time.Millisecond
	defaultRemoteReadTimeout  = 30 * time.Second
	defaultOrphanGrace        = 15 * time.Minute
	// orphanCleanInterval: how often a partition lists its segment
	// objects for orphans (one LIST per partition).
	orphanCleanInterval = time.Hour
	// bootstrapTimeout bounds reading the bucket at start (cluster
	// metadata, the manifests of empty partitions).
	bootstrapTimeout = 2 * time.Minute
	// maxTierBackoff caps the delay between retries of a failing
	// partition loop.
	maxTierBackoff = time.Minute
	// tierLogEvery is the most often one lasting tiering failure (per
	// partition and step, or per remote-read condition) is logged: the
	// first occurrence at once, then one line per interval with the count
	// of lines suppressed. The status endpoint shows the latest error.
	tierLogEvery = time.Minute
)

func (c TieringConfig) withDefaults(dataDir string) TieringConfig {
	if c.CacheDir == "" {
		c.CacheDir = filepath.Join(dataDir, "remote-cache")
	}
	if c.CacheBytes <= 0 {
		c.CacheBytes = defaultRemoteCacheBytes
	}
	if c.TaskInterval <= 0 {
		c.TaskInterval = defaultTierTaskInterval
	}
	if c.FetchMaxWait <= 0 {
		c.FetchMaxWait = defaultRemoteFetchMaxWait
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = defaultRemoteReadTimeout
	}
	if c.OrphanGrace <= 0 {
		c.OrphanGrace = defaultOrphanGrace
	}
	return c
}

// tierManager owns the object store and every tiered partition's loop.
// nil when tiering is off; its methods are nil-safe where handlers call
// them.
type tierManager struct {
	b         *Broker
	cfg       TieringConfig
	log       *slog.Logger
	store     objectstore.Store
	manifests *tiering.ManifestStore
	cache     *tiering.ChunkCache
	reader    *tiering.RemoteReader
	metrics   *tierMetrics
	logs      *logutil.Limiter // every repeated tiering log line goes through it

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup // partition loops, metadata writer, deletions

	metaDirty chan struct{} // buffered 1: cluster metadata needs rewriting
	metaETag  string        // ETag of the stored metadata as read at start; then the metadata loop's

	mu struct {
		sync.Mutex
		parts  map[*replica.Partition]*tieredPartition
		closed bool
	}
}

// openTierManager opens the object store and the chunk cache. It starts
// nothing: start does, once the topic registry is open.
func openTierManager(b *Broker, cfg TieringConfig) (*tierManager, error) {
	cfg = cfg.withDefaults(b.cfg.DataDir)
	store := cfg.Store
	if store == nil {
		ctx, cancel := context.WithTimeout(context.Background(), bootstrapTimeout)
		defer cancel()
		s, err := objectstore.OpenWith(ctx, cfg.ObjectStore, objectstore.Options{})
		if err != nil {
			return nil, fmt.Errorf("object store %s: %w", cfg.ObjectStore, err)
		}
		store = objectstore.Instrumented(s, "tiering")
	}
	cache, err := tiering.NewChunkCache(store, tiering.CacheOptions{Dir: cfg.CacheDir, MaxBytes: cfg.CacheBytes})
	if err != nil {
		store.Close()
		return nil, err
	}
	tm := &tierManager{
		b: b, cfg: cfg, log: b.log, store: store,
		manifests: tiering.NewManifestStore(store),
		cache:     cache,
		reader:    tiering.NewRemoteReader(store, cache, tiering.ReaderOptions{}),
		logs:      logutil.NewLimiter(b.log, tierLogEvery, nil),
		metaDirty: make(chan struct{}, 1),
	}
	tm.ctx, tm.cancel = context.WithCancel(context.Background())
	tm.mu.parts = make(map[*replica.Partition]*tieredPartition)
	if !store.Capabilities().PutIfMatch {
		b.log.Warn("object store has no atomic conditional puts: manifest fencing relies on one writer per partition", "object_store", cfg.ObjectStore)
	}
	return tm, nil
}

// readBucketMetadata returns the bucket's cluster metadata, nil if it has
// none.
func (tm *tierManager) readBucketMetadata() (*tiering.ClusterMetadata, error) {
	ctx, cancel := context.WithTimeout(tm.ctx, bootstrapTimeout)
	defer cancel()
	md, etag, err := tiering.ReadMetadata(ctx, tm.store)
	if errors.Is(err, objectstore.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the cluster metadata from object store %s: %w", tm.cfg.ObjectStore, err)
	}
	tm.metaETag = etag
	return md, nil
}

// bootstrapTopics writes topics.json from the bucket's metadata, for a
// data directory that has none: the topics, ids, partition counts and
// overrides come back, and start then restarts each tiered partition's
// empty log where the bucket's history ends.
func bootstrapTopics(dataDir string, md *tiering.ClusterMetadata) error {
	pt := persistedTopics{Version: topicsFileVersion, Topics: []persistedTopic{}}
	for _, t := range md.Topics {
		pt.Topics = append(pt.Topics, persistedTopic{Name: t.Name, ID: topicIDString(t.ID), Partitions: t.Partitions, Configs: t.Configs})
	}
	return writeTopicsFile(dataDir, pt)
}

// start loads every tiered partition's manifest and publishes its remote
// log start, so that the log start offsets are right from the first
// request; a partition whose local log is empty (a new or wiped data
// directory) restarts it where the bucket's history ends. Then it starts
// the partition loops and the metadata writer. An unreadable manifest, or
// one that is missing or older than the partition's tier checkpoint says
// it was (tiering.ErrManifestLost), stops the start only for an empty
// partition (appending at offset 0 could fork a history the bucket holds);
// for the others it is logged and the loop retries, uploading, trimming
// and deleting nothing until the manifest loads, while reads below the
// local log start answer a retriable error.
func (tm *tierManager) start() error {
	type job struct {
		t *topic
		p *replica.Partition
	}
	var jobs []job
	for _, t := range tm.b.topics.all() {
		if !t.config.Tiered() {
			continue
		}
		for _, p := range t.hosted() {
			jobs = append(jobs, job{t, p})
		}
	}
	ctx, cancel := context.WithTimeout(tm.ctx, bootstrapTimeout)
	defer cancel()
	loaded := make([]loadedManifest, len(jobs))
	errs := inParallel(len(jobs), func(i int) error {
		j := jobs[i]
		empty := j.p.LogEndOffset() == 0
		tp := tierPartitionOf(j.t, j.p.Index())
		m, etag, err := tm.manifests.Load(ctx, tp)
		if err == nil {
			err = tiering.CheckManifestFloor(m, tierFloor(tm.log, j.p))
		}
		switch {
		case err != nil && empty:
			return fmt.Errorf("partition %s-%d: loading its manifest: %w", j.t.name, j.p.Index(), err)
		case errors.Is(err, tiering.ErrManifestLost):
			// Through the loop's key: its first failure is this one.
			tm.logs.Log(slog.LevelError, tierLogKey("loop", j.t.name, j.p.Index()), manifestLostMsg,
				"topic", j.t.name, "partition", j.p.Index(), "manifest", tiering.ManifestKey(tp), "err", err)
			return nil
		case err != nil:
			tm.logs.Log(slog.LevelWarn, tierLogKey("loop", j.t.name, j.p.Index()), "tiering: cannot load the partition's manifest; its remote history is unavailable until it loads",
				"topic", j.t.name, "partition", j.p.Index(), "err", err)
			return nil
		}
		if m.Generation > 0 || j.p.LocalLogStartOffset() == 0 {
			// A missing manifest of a log that starts above 0 goes
			// to the loop instead, whose Uploader checks the bucket
			// for evidence that it was lost (a LIST, which
			// reconcileWith must not make under tm.mu).
			loaded[i] = loadedManifest{m, etag}
		}
		if empty && len(m.Segments) > 0 {
			return j.p.StartAt(m.EndOffset(), max(m.LeaderEpoch, m.Segments[len(m.Segments)-1].LastEpoch()))
		}
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("restoring partitions from object store %s: %w", tm.cfg.ObjectStore, err)
	}
	preloaded := make(map[*replica.Partition]loadedManifest, len(jobs))
	for i, j := range jobs {
		if loaded[i].m != nil {
			preloaded[j.p] = loaded[i]
		}
	}
	tm.reconcileWith(preloaded)
	tm.markMetadataDirty()
	tm.wg.Add(1)
	go tm.metadataLoop()
	return nil
}

// tierPartitionOf names partition p of t in the bucket.
func tierPartitionOf(t *topic, p int32) tiering.TopicPartition {
	return tiering.TopicPartition{Topic: t.name, TopicID: tiering.TopicID(t.id), Partition: p}
}

// reconcile starts a loop for every partition of a tiered topic that has
// none and stops the loops of partitions no longer tiered or no longer
// there. The registry calls it after every change.
func (tm *tierManager) reconcile() {
	if tm != nil {
		tm.reconcileWith(nil)
	}
}

// loadedManifest is a manifest and its ETag as start loaded them.
type loadedManifest struct {
	m    *tiering.Manifest
	etag string
}

// reconcileWith is reconcile handing the manifests already loaded for
// some partitions (start) to their uploaders, and publishing them.
func (tm *tierManager) reconcileWith(loaded map[*replica.Partition]loadedManifest) {
	want := make(map[*replica.Partition]*topic)
	for _, t := range tm.b.topics.all() {
		if t.config.Tiered() {
			for _, p := range t.hosted() {
				want[p] = t
			}
		}
	}
	var stopped []*tieredPartition
	defer func() {
		// A removed partition's loop must not commit after this returns
		// (a deleted topic's data is being removed).
		for _, tp := range stopped {
			<-tp.done
		}
	}()
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if tm.mu.closed {
		return
	}
	for p, tpart := range tm.mu.parts {
		if want[p] == nil {
			tpart.stop()
			stopped = append(stopped, tpart)
			delete(tm.mu.parts, p)
		}
	}
	for p, t := range want {
		if tm.mu.parts[p] != nil {
			continue
		}
		tpart, err := newTieredPartition(tm, t, p)
		if err != nil {
			tm.log.Error("tiering: cannot start the partition's tiering", "topic", t.name, "partition", p.Index(), "err", err)
			continue
		}
		if l, ok := loaded[p]; ok && tpart.up.Use(tm.ctx, l.m, l.etag) == nil {
			tpart.publish(l.m)
		}
		tm.mu.parts[p] = tpart
		tm.wg.Add(1)
		go tpart.run()
	}
}

// partition returns p's tiering state, nil if p is not tiered.
func (tm *tierManager) partition(p *replica.Partition) *tieredPartition {
	if tm == nil {
		return nil
	}
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.mu.parts[p]
}

// markMetadataDirty asks the metadata loop to rewrite the bucket's cluster
// metadata.
func (tm *tierManager) markMetadataDirty() {
	if tm == nil {
		return
	}
	select {
	case tm.metaDirty <- struct{}{}:
	default:
	}
}

// metadataLoop rewrites cluster/metadata.json whenever the topics change,
// retrying failures with backoff until it lands.
func (tm *tierManager) metadataLoop() {
	defer tm.wg.Done()
	for {
		select {
		case <-tm.ctx.Done():
			return
		case <-tm.metaDirty:
		}
		tm.retry("writing cluster metadata to the object store", nil, tm.writeMetadata)
	}
}

// writeMetadata writes the current topics over the metadata last read or
// written (tm.metaETag). A conflict — a write whose reply was lost, or
// another process on the bucket — re-reads the stored ETag and writes
// once more.
func (tm *tierManager) writeMetadata() error {
	ctx, cancel := context.WithTimeout(tm.ctx, tiering.DefaultCommitTimeout)
	defer cancel()
	var topics []tiering.TopicMetadata
	for _, t := range tm.b.topics.all() {
		topics = append(topics, tiering.TopicMetadata{Name: t.name, ID: tiering.TopicID(t.id), Partitions: int32(len(t.partitions)), Configs: t.overrides})
	}
	md := tiering.NewClusterMetadata(tm.b.clusterID, time.Now(), topics)
	etag, err := tiering.WriteMetadata(ctx, tm.store, tm.metaETag, md)
	if errors.Is(err, tiering.ErrConflict) {
		if _, tm.metaETag, err = tiering.ReadMetadata(ctx, tm.store); err == nil || errors.Is(err, objectstore.ErrNotExist) {
			etag, err = tiering.WriteMetadata(ctx, tm.store, tm.metaETag, md)
		}
	}
	if err != nil {
		return err
	}
	tm.metaETag = etag
	return nil
}

// deleteTopicData removes a deleted topic's objects in the background,
// retrying until it succeeds or the broker stops (objects left by a stop
// are not listed by any metadata; they are named in the log).
func (tm *tierManager) deleteTopicData(name string, id [16]byte) {
	if tm == nil {
		return
	}
	tm.markMetadataDirty()
	tm.wg.Add(1)
	go func() {
		defer tm.wg.Done()
		attrs := []any{"topic", name, "id", topicIDString(id)}
		tm.retry("deleting the topic's remote data", attrs, func() error {
			n, err := tiering.DeleteTopicData(tm.ctx, tm.store, name, tiering.TopicID(id))
			if err == nil {
				tm.log.Info("tiering: deleted the topic's remote data", append(attrs, "objects", n)...)
			}
			return err
		})
	}()
}

// retry runs fn until it succeeds or the broker stops, backing off between
// failures and logging them (what, attrs) through the rate limiter.
func (tm *tierManager) retry(what string, attrs []any, fn func() error) {
	retry := newTierBackoff(tm.cfg.TaskInterval)
	key := fmt.Sprint(append([]any{"tiering retry", what}, attrs...)...)
	defer tm.logs.Reset(key)
	for {
		err := fn()
		if err == nil {
			return
		}
		delay := retry.Next()
		tm.logs.Log(slog.LevelWarn, key, "tiering: "+what+" failed; retrying", append(attrs, "err", err, "retry_in", delay.String())...)
		if !backoff.Sleep(tm.ctx.Done(), delay) {
			return
		}
	}
}

// close stops every loop and closes the cache and the store. Called after
// the listener stopped and before the partitions close.
func (tm *tierManager) close() error {
	if tm == nil {
		return nil
	}
	tm.mu.Lock()
	tm.mu.closed = true
	for p, tpart := range tm.mu.parts {
		tpart.stop()
		delete(tm.mu.parts, p)
	}
	tm.mu.Unlock()
	tm.cancel()
	tm.wg.Wait()
	return errors.Join(tm.cache.Close(), tm.store.Close())
}

// newTierBackoff is the backoff of a failing tiering step: from base (the
// task interval) doubling to maxTierBackoff (or base, if larger), each wait
// jittered over the upper half of its step.
func newTierBackoff(base time.Duration) *backoff.Backoff {
	return &backoff.Backoff{Min: base, Max: max(maxTierBackoff, base), Jitter: backoff.RandomJitter}
}

// tierSchedule decides when a partition's tiering loop runs its next
// round and which periodic steps a round runs. It is pure — every method
// takes now — and belongs to the loop's goroutine.
//
// The rule that keeps a lasting failure from becoming a hot loop: after a
// failed round the next one comes after the backoff delay, whatever
// deadline passed meanwhile. A retention or orphan pass that fell due
// while rounds fail waits for the next round like everything else (a round
// stops at its first failing step, so the pass runs once the earlier steps
// succeed); only a good round resets the backoff. After a good round the
// loop waits for the task interval, or less if a periodic pass falls due
// sooner.
type tierSchedule struct {
	interval       time.Duration // remote.log.manager.task.interval.ms
	retentionEvery time.Duration // log.retention.check.interval.ms
	orphanGrace    time.Duration // remote.log.orphan.grace.ms
	nextRetention  time.Time
	nextOrphans    time.Time
	backoff        *backoff.Backoff
}

// newTierSchedule returns the schedule of a loop starting at now:
// retention is due at once, orphan cleanup one grace period later (no
// upload of a previous run can be younger than that then).
func newTierSchedule(now time.Time, interval, retentionEvery, orphanGrace time.Duration) *tierSchedule {
	return &tierSchedule{
		interval: interval, retentionEvery: retentionEvery, orphanGrace: orphanGrace,
		nextRetention: now, nextOrphans: now.Add(orphanGrace),
		backoff: newTierBackoff(interval),
	}
}

func (s *tierSchedule) retentionDue(now time.Time) bool { return !now.Before(s.nextRetention) }
func (s *tierSchedule) retentionDone(now time.Time)     { s.nextRetention = now.Add(s.retentionEvery) }
func (s *tierSchedule) orphansDue(now time.Time) bool   { return !now.Before(s.nextOrphans) }

// orphansDone schedules the next orphan pass: after orphanCleanInterval,
// or one grace period if this pass kept unlisted objects that a commit may
// soon cover (tiering.OrphanStats.Kept), so they do not wait an hour.
func (s *tierSchedule) orphansDone(now time.Time, kept bool) {
	if kept {
		s.nextOrphans = now.Add(min(s.orphanGrace, orphanCleanInterval))
		return
	}
	s.nextOrphans = now.Add(orphanCleanInterval)
}

// wait returns how long the loop waits after a round that ended at now,
// failed or not.
func (s *tierSchedule) wait(now time.Time, failed bool) time.Duration {
	if failed {
		return s.backoff.Next()
	}
	s.backoff.Reset()
	d := s.interval
	for _, next := range []time.Time{s.nextRetention, s.nextOrphans} {
		d = min(d, next.Sub(now))
	}
	// A good round ran every pass that was due, so both deadlines lie
	// ahead; the floor only guards that reasoning.
	return max(d, minTierWait)
}

// minTierWait is the shortest wait between two rounds of a partition loop
// that no event (a segment roll, a trim) cut short.
const minTierWait = time.Millisecond

// tieredPartition is one partition's tiering: its uploader (the manifest's
// only writer on this node) and what it publishes for readers.
type tieredPartition struct {
	tm    *tierManager
	p     *replica.Partition
	topic string
	id    [16]byte
	tp    tiering.TopicPartition
	up    *tiering.Uploader
	log   *slog.Logger

	manifest atomic.Pointer[tiering.Manifest] // last loaded or committed; nil before the first load
	recorded uint64                           // generation in the tier checkpoint (the loop's)
	trims    chan trimRequest                 // DeleteRecords' remote trims
	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	errMu   sync.Mutex
	lastErr string // the loop's last failure, "" after a good round (status)
}

// uploadLag is how far uploads are behind, measured when asked (not when
// the loop last ran), so a backlog shows while it builds.
func (tp *tieredPartition) uploadLag(now time.Time) tiering.Lag {
	from := tp.p.UploadedTo()
	segs, err := tp.p.ClosedSegments(from)
	if err != nil {
		return tiering.Lag{}
	}
	defer func() {
		for i := range segs {
			segs[i].Release()
		}
	}()
	return tiering.MeasureLag(segs, from, now)
}

type trimRequest struct {
	before segments.Offset
	reply  chan error
}

// tierFloor is the manifest generation p's tier checkpoint records (0 if
// none); an unreadable checkpoint is logged and counts as generation 1
// (it exists, so the partition tiered).
func tierFloor(log *slog.Logger, p *replica.Partition) uint64 {
	ck, err := p.TierCheckpoint()
	if err != nil {
		log.Warn("tiering: unreadable tier checkpoint; taking it as proof that the partition has remote history", "topic", p.Topic(), "partition", p.Index(), "err", err)
	}
	return ck.Generation
}

func newTieredPartition(tm *tierManager, t *topic, p *replica.Partition) (*tieredPartition, error) {
	tp := tierPartitionOf(t, p.Index())
	floor := tierFloor(tm.log, p)
	up, err := tiering.NewUploader(tm.store, tm.manifests, tp, p, tiering.UploaderOptions{
		ChunkBytes:    tm.cache.ChunkBytes(),
		MinGeneration: floor,
	})
	if err != nil {
		return nil, err
	}
	return &tieredPartition{
		tm: tm, p: p, topic: t.name, id: t.id, tp: tp, up: up, recorded: floor,
		log:   tm.log.With("topic", t.name, "partition", p.Index()),
		trims: make(chan trimRequest),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}, nil
}

func (tp *tieredPartition) stop() {
	tp.stopOnce.Do(func() { close(tp.quit) })
}

// config returns the topic's current config, false if the topic is gone
// or was re-created.
func (tp *tieredPartition) config() (topicconfig.Config, bool) {
	t := tp.tm.b.topics.getByID(tp.id)
	if t == nil || t.partition(tp.p.Index()) != tp.p {
		return topicconfig.Config{}, false
	}
	return t.config, true
}

// run is the partition's tiering loop: it uploads whenever a closed
// segment waits, applies remote retention every retention interval,
// cleans orphans every orphanCleanInterval (the first time one grace
// period after it starts), and serves trims, until stopped or fenced.
// tierSchedule decides when each round runs.
func (tp *tieredPartition) run() {
	defer tp.tm.wg.Done()
	defer close(tp.done)
	ctx, cancel := context.WithCancel(tp.tm.ctx)
	defer cancel()
	go func() {
		select {
		case <-tp.quit:
			cancel()
		case <-ctx.Done():
		}
	}()

	sched := newTierSchedule(time.Now(), tp.tm.cfg.TaskInterval, tp.tm.b.retentionInterval(), tp.tm.cfg.OrphanGrace)
	for {
		failed, waitHW := tp.round(ctx, sched)
		if tp.up.Fenced() != nil || ctx.Err() != nil {
			tp.drainTrims(ctx)
			return
		}
		if !failed {
			tp.recovered()
		}

		// Wait for work: a roll (the high watermark moves on every
		// append; UploadPending is the cheap check), the schedule's
		// delay (the backoff after a failure), a trim, or the stop. A
		// closed segment left for the high watermark (waitHW) is worth
		// a round only once the high watermark reaches its end.
		timer := time.NewTimer(sched.wait(time.Now(), failed))
	wait:
		for {
			changed := tp.p.Changed()
			if !failed && tp.p.UploadPending() && tp.p.HighWatermark() >= waitHW {
				break
			}
			select {
			case <-ctx.Done():
				timer.Stop()
				tp.drainTrims(ctx)
				return
			case <-timer.C:
				break wait
			case req := <-tp.trims:
				req.reply <- tp.trim(ctx, req.before)
			case <-changed:
			}
		}
		timer.Stop()
	}
}

// round runs the steps that are due, in order, stopping at the first that
// fails: the upload of waiting segments (or, with none, a check of the
// manifest for changes), remote retention, orphan cleanup. It reports
// whether a step failed, and the high watermark a segment left for later
// waits for (0: none).
func (tp *tieredPartition) round(ctx context.Context, sched *tierSchedule) (failed bool, waitHW segments.Offset) {
	// Uploading checks the manifest for changes itself (before each
	// segment); otherwise one Stat per round does.
	if tp.p.UploadPending() {
		var st tiering.UploadStats
		if st, failed = tp.upload(ctx); failed {
			return true, 0
		}
		waitHW = st.WaitingForHW
	} else if err := tp.refresh(ctx); err != nil {
		return tp.failed(ctx, "loading the manifest", err), 0
	}
	if sched.retentionDue(time.Now()) {
		if err := tp.applyRetention(ctx, time.Now()); err != nil {
			return tp.failed(ctx, "remote retention", err), waitHW
		}
		sched.retentionDone(time.Now())
	}
	if sched.orphansDue(time.Now()) {
		st, err := tp.up.CleanOrphans(ctx, tp.tm.cfg.OrphanGrace)
		if st.Deleted > 0 {
			tp.log.Info("tiering: deleted orphan objects", "objects", st.Deleted)
		}
		if err != nil {
			return tp.failed(ctx, "orphan cleanup", err), waitHW
		}
		sched.orphansDone(time.Now(), st.Kept > 0)
	}
	return false, waitHW
}

// drainTrims answers trims that arrive while the loop exits.
func (tp *tieredPartition) drainTrims(ctx context.Context) {
	for {
		select {
		case req := <-tp.trims:
			req.reply <- fmt.Errorf("tiering of %s-%d stopped: %w", tp.topic, tp.p.Index(), errTierStopped)
		default:
			return
		}
	}
}

var errTierStopped = errors.New("partition tiering stopped")

// logKey is the rate limiter's key of this partition's loop failures.
func (tp *tieredPartition) logKey() string { return tierLogKey("loop", tp.topic, tp.p.Index()) }

// tierLogKey is the rate limiter's key of one kind of tiering failure
// (what) of partition p of topic: "loop" for the loop's failures and the
// manifest load's at start, "read", "checkpoint".
func tierLogKey(what, topic string, p int32) string {
	return "tiering " + what + " " + topic + "-" + strconv.Itoa(int(p))
}

// manifestLostMsg is the log message of tiering.ErrManifestLost.
const manifestLostMsg = "tiering: the partition's manifest is lost; its remote history is unavailable and nothing is uploaded, trimmed or deleted until it is restored" +
	" (to start the remote history over instead, stop the broker and delete the partition's " + replica.TierCheckpointFile + ")"

// failed records a failure of step and reports true (the loop backs off),
// logging it through the rate limiter: the first failure at once, then at
// most one line per tierLogEvery with the count of those suppressed.
// Fencing stops the loop; a lost manifest is an error, not a warning.
func (tp *tieredPartition) failed(ctx context.Context, step string, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	tp.setError(step + ": " + err.Error())
	switch {
	case errors.Is(err, tiering.ErrFenced):
		tp.log.Error("tiering: a newer leader committed this partition's manifest; stopping uploads", "leader_epoch", int32(tp.p.LeaderEpoch()), "err", err)
	case errors.Is(err, tiering.ErrManifestLost):
		tp.tm.logs.Log(slog.LevelError, tp.logKey(), manifestLostMsg,
			"topic", tp.topic, "partition", tp.p.Index(), "step", step, "manifest", tiering.ManifestKey(tp.tp), "err", err)
	default:
		lag := tp.uploadLag(time.Now())
		tp.tm.logs.Log(slog.LevelWarn, tp.logKey(), "tiering: uploads failing", "topic", tp.topic, "partition", tp.p.Index(), "step", step, "err", err,
			"lag_bytes", lag.Bytes, "lag_segments", lag.Segments, "lag_seconds", int64(lag.Age.Seconds()))
	}
	return true
}

// recovered clears the failure state after a good round, saying so in the
// log if a failure was logged.
func (tp *tieredPartition) recovered() {
	tp.setError("")
	if n, active := tp.tm.logs.Reset(tp.logKey()); active {
		tp.log.Info("tiering: uploads recovered", "failures_not_logged", n)
	}
}

func (tp *tieredPartition) setError(msg string) {
	tp.errMu.Lock()
	defer tp.errMu.Unlock()
	tp.lastErr = msg
}

func (tp *tieredPartition) lastError() string {
	tp.errMu.Lock()
	defer tp.errMu.Unlock()
	return tp.lastErr
}

// refresh loads the manifest if it changed and publishes it.
func (tp *tieredPartition) refresh(ctx context.Context) error {
	m, err := tp.up.Manifest(ctx)
	if err != nil {
		return err
	}
	tp.publish(m)
	return nil
}

// publish makes m the manifest remote reads use, moves the partition's
// remote log start to it, and records its generation in the tier
// checkpoint when it is newer than the one there.
func (tp *tieredPartition) publish(m *tiering.Manifest) {
	if m == nil {
		return
	}
	tp.manifest.Store(m)
	tp.p.SetRemoteLogStart(remoteLogStart(m))
	if m.Generation > tp.recorded {
		ck := replica.TierCheckpoint{Generation: m.Generation, EndOffset: m.EndOffset()}
		if err := tp.p.SetTierCheckpoint(ck); err != nil {
			tp.tm.logs.Log(slog.LevelWarn, tierLogKey("checkpoint", tp.topic, tp.p.Index()), "tiering: cannot write the tier checkpoint; a lost manifest may then go unnoticed",
				"topic", tp.topic, "partition", tp.p.Index(), "err", err)
			return
		}
		tp.recorded = m.Generation
	}
}

// remoteLogStart is the first offset m serves, -1 if it has no segment.
func remoteLogStart(m *tiering.Manifest) segments.Offset {
	if len(m.Segments) == 0 {
		return -1
	}
	return max(m.LogStartOffset, m.Segments[0].BaseOffset)
}

// upload uploads every closed segment that waits; it returns the stats
// and whether it failed.
func (tp *tieredPartition) upload(ctx context.Context) (tiering.UploadStats, bool) {
	st, err := tp.up.UploadOnce(ctx)
	m := tp.up.Cached()
	tp.publish(m)
	if st.Segments > 0 {
		tp.tm.metrics.uploaded(tp, st)
		attrs := []any{"segments", st.Segments, "bytes", st.Bytes, "leader_epoch", int32(tp.p.LeaderEpoch())}
		if m != nil {
			attrs = append(attrs, "uploaded_to", int64(m.EndOffset()))
		}
		tp.log.Info("uploaded segments", attrs...)
	}
	if err != nil {
		return st, tp.failed(ctx, "upload", err)
	}
	return st, false
}

// applyRetention expires remote segments by retention.ms/retention.bytes
// (counting the untiered local bytes against retention.bytes, as Kafka
// does), then moves the local log start up to the new remote start.
func (tp *tieredPartition) applyRetention(ctx context.Context, now time.Time) error {
	cfg, ok := tp.config()
	if !ok {
		return nil
	}
	m := tp.manifest.Load()
	if m == nil || len(m.Segments) == 0 {
		return nil
	}
	r := tiering.Retention{Age: cfg.RetentionAge, Bytes: cfg.RetentionBytes, UntieredBytes: tp.untieredBytes(m.EndOffset())}
	removed, err := tp.up.Trim(ctx, func(m *tiering.Manifest) (*tiering.Manifest, []tiering.Segment) { return m.Expire(r, now) })
	tp.publish(tp.up.Cached())
	if len(removed) > 0 {
		last := removed[len(removed)-1]
		tp.log.Info("remote retention deleted segments", "segments", len(removed), "from", int64(removed[0].BaseOffset), "to", int64(last.EndOffset),
			"log_start", int64(tp.p.LogStartOffset()), "leader_epoch", int32(tp.p.LeaderEpoch()))
		tp.moveLocalStart(last.EndOffset)
	}
	return err
}

// untieredBytes is the size of the local log from offset end on: the
// part of the partition the manifest does not count.
func (tp *tieredPartition) untieredBytes(end segments.Offset) int64 {
	total := tp.p.SizeBytes()
	segs, err := tp.p.ClosedSegments(0)
	if err != nil {
		return total
	}
	for i := range segs {
		if segs[i].Next <= end {
			total -= segs[i].LogBytes
		}
		segs[i].Release()
	}
	return max(total, 0)
}

// moveLocalStart raises the local log start to o (bounded by the high
// watermark) after the remote tier dropped everything below it.
func (tp *tieredPartition) moveLocalStart(o segments.Offset) {
	if o <= tp.p.LocalLogStartOffset() {
		return
	}
	if _, err := tp.p.DeleteRecordsBefore(min(o, tp.p.HighWatermark())); err != nil && !errors.Is(err, segments.ErrClosed) {
		tp.log.Error("tiering: moving the local log start after remote retention", "offset", int64(o), "err", err)
	}
}

// trim raises the remote log start to before (DeleteRecords).
func (tp *tieredPartition) trim(ctx context.Context, before segments.Offset) error {
	removed, err := tp.up.Trim(ctx, func(m *tiering.Manifest) (*tiering.Manifest, []tiering.Segment) { return m.WithoutBefore(before) })
	tp.publish(tp.up.Cached())
	if len(removed) > 0 {
		tp.log.Info("tiering: deleted records", "before", int64(before), "segments_removed", len(removed))
	}
	if err != nil && len(removed) > 0 {
		// The manifest no longer lists them; only the object deletes
		// failed, which orphan cleanup retries.
		tp.log.Warn("tiering: deleting trimmed objects", "err", err)
		return nil
	}
	return err
}

// deleteRecords moves p's remote log start to before (through p's loop,
// the manifest's only writer), for DeleteRecords. A partition that is not
// tiered has nothing to do. One whose manifest is not loaded and whose
// local log starts above 0 fails with errRemoteUnavailable: the remote
// tier may hold offsets that the trim must cover, and moving only the
// local start would let them reappear once the manifest loads.
func (tm *tierManager) deleteRecords(ctx context.Context, p *replica.Partition, before segments.Offset) error {
	tp := tm.partition(p)
	if tp == nil {
		return nil
	}
	if before > 0 {
		if err := tm.checkRemoteKnown(p, 0); err != nil {
			return err
		}
	}
	if tp.p.RemoteLogStart() < 0 || before <= tp.p.RemoteLogStart() {
		return nil
	}
	req := trimRequest{before: before, reply: make(chan error, 1)}
	select {
	case tp.trims <- req:
	case <-tp.done:
		return fmt.Errorf("tiering of %s-%d stopped: %w", tp.topic, p.Index(), errTierStopped)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// parseTopicConfig is topicconfig.Parse with remote.storage.enable forced
// off when the broker has no object store (topicDefaults already says
// false; this covers overrides kept from a run that had one), so that
// such a topic's local retention does not wait for uploads that never
// come.
func (b *Broker) parseTopicConfig(base topicconfig.Config, overrides map[string]string) (topicconfig.Config, error) {
	c, err := topicconfig.Parse(base, overrides)
	if err == nil && b.tier == nil {
		c.RemoteStorage = false
	}
	return c, err
}

// checkTieringConfig refuses what Kafka refuses about remote storage: an
// explicit remote.storage.enable=true on a broker without an object store
// or together with compaction, and (cur != nil, an AlterConfigs) turning
// tiering off for a topic that has it, or compaction on, which would leave
// its remote data unmanaged.
func (b *Broker) checkTieringConfig(cur *topicconfig.Config, next topicconfig.Config, overrides map[string]string) error {
	v, explicit := overrides["remote.storage.enable"]
	explicitOn := explicit && strings.TrimSpace(v) == "true"
	switch {
	case explicitOn && b.tier == nil:
		return &topicconfig.Error{Key: "remote.storage.enable", Value: v, Reason: "this broker has no object store (--object-store)"}
	case explicitOn && next.Compact():
		return &topicconfig.Error{Key: "remote.storage.enable", Value: v, Reason: "remote storage is not supported for compacted topics (cleanup.policy " + next.CleanupPolicy + ")"}
	case cur != nil && cur.Tiered() && !next.Tiered():
		key := "remote.storage.enable"
		if next.Compact() {
			key = "cleanup.policy"
		}
		return &topicconfig.Error{Key: key, Value: overrides[key], Reason: "the topic has remote storage enabled; disabling it (or compacting the topic) would strand its remote data"}
	}
	return nil
}
