package broker

// The topic registry: the topics of the metadata image (the controller
// quorum's log, as this node has applied it) with the partitions this
// broker hosts, opened; plus the retention loop.
//
// The image is the single source of truth for what exists. A mutation
// (CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs) is decided
// and committed by the active controller (Admin); the registry then
// applies the image that holds it (apply): it opens the partitions of new
// topics and partitions assigned to this broker, applies changed configs
// to the live partitions, and closes and deletes the partitions of
// deleted topics. A mutation returns once its effect is applied here, so
// a client that creates a topic and produces to it at once finds it.
//
// Partition directories <data-dir>/<topic>-<partition> are made only for
// partitions of the image. At start, a directory the image does not list
// is left alone with a warning (never delete on absence of evidence: the
// metadata log may have been lost); a partition deleted while the broker
// runs is deleted with its directory. A directory that cannot be removed
// (no file handle to list it with, say) is retried in the background with
// backoff (leftovers.go).
//
// Before a create reaches the controller it checks max.broker.partitions
// and the file-handle budget (handles.go).
//
// Concurrency: *topic values are immutable once published. A change
// builds a new *topic and swaps it into the maps, so a handler holding an
// older *topic reads a consistent snapshot; its partitions are the same
// objects. apply runs under adminMu, which is held across its disk I/O;
// mu guards only the maps and is never held across I/O. Lock order:
// adminMu → mu → replica.Partition locks.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/stratalog/strata/broker/replica"
	"github.com/stratalog/strata/controller/metadata"
	"github.com/stratalog/strata/internal/fsutil"
	"github.com/stratalog/strata/segments"
	"github.com/stratalog/strata/topicconfig"
	"github.com/stratalog/strata/wire"
)

const (
	topicsFile        = "topics.json"
	topicsFileVersion = 1

	// maxPartitionsPerTopic bounds what one CreateTopics or CreatePartitions
	// may ask for: each partition holds open files and a directory, and a
	// hostile request for 2^31 partitions must not exhaust the machine.
	maxPartitionsPerTopic = 10000
)

// adminError is an admin-operation failure with its Kafka error code and a
// message for the client (the ErrorMessage fields of admin responses).
type adminError struct {
	code *kerr.Error
	msg  string
}

func (e *adminError) Error() string { return e.msg }

func newAdminError(code *kerr.Error, format string, args ...any) error {
	return &adminError{code: code, msg: fmt.Sprintf(format, args...)}
}

// errRegistryClosed: the broker is shutting down. NOT_CONTROLLER is
// retriable: clients refresh metadata and retry elsewhere or later.
var errRegistryClosed = &adminError{code: kerr.NotController, msg: "the broker is shutting down"}

// adminErrorCode maps an admin-path error to a Kafka code and a message
// (nil message for success). Other errors (*topicconfig.Error, the
// partition layer's) go through errorCode, the broker's one domain → Kafka
// translation.
func adminErrorCode(err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	msg := wire.ErrorMessage(err.Error())
	var ae *adminError
	if errors.As(err, &ae) {
		return ae.code.Code, msg
	}
	return errorCode(err), msg
}

// topic is one topic of the image. Immutable once published in the
// registry (see the file comment); do not modify its fields or slices.
type topic struct {
	name      string
	id        [16]byte
	overrides map[string]string  // per-topic config overrides (the image's)
	config    topicconfig.Config // effective: broker defaults + overrides
	// partitions are this broker's replicas, by partition index; nil for
	// a partition it does not host.
	partitions []*replica.Partition
	meta       *metadata.Topic // the image's topic: replicas, ISR, leaders, epochs (read-only)
}

// partition returns partition p, or nil if t is nil or p is out of range.
func (t *topic) partition(p int32) *replica.Partition {
	if t == nil || p < 0 || int(p) >= len(t.partitions) {
		return nil
	}
	return t.partitions[p]
}

// has reports whether t has a partition i (hosted here or not).
func (t *topic) has(i int32) bool { return t != nil && i >= 0 && int(i) < len(t.partitions) }

// led returns partition i for a request that needs its leader, or the
// error code: UNKNOWN_TOPIC_OR_PARTITION if t is nil or has no partition
// i, NOT_LEADER_OR_FOLLOWER if this broker does not host or lead it (the
// client finds the leader through Metadata).
func (t *topic) led(i int32) (*replica.Partition, int16) {
	if !t.has(i) {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	if p := t.partitions[i]; p != nil && p.IsLeader() {
		return p, 0
	}
	return nil, kerr.NotLeaderForPartition.Code
}

// topicRegistry owns the set of topics and their partitions.
type topicRegistry struct {
	b   *Broker
	dir string
	log *slog.Logger

	// adminMu serialises every mutation and the writes of topics.json.
	adminMu sync.Mutex

	mu struct {
		sync.RWMutex
		byName map[string]*topic
		byID   map[[16]byte]*topic
		closed bool
	}

	stopRetention chan struct{}
	retentionDone chan struct{}

	// image is the metadata image this broker follows, admin the active
	// controller's topic operations (cluster.go).
	image     imageSource
	admin     Admin
	node      metadata.BrokerID
	stopApply chan struct{}
	applyDone chan struct{}
	// openErrs holds, per topic, why the last apply could not open some
	// of its partitions here (guarded by adminMu).
	openErrs map[[16]byte]error
	// applied is the offset of the last image applied, and a channel
	// closed (and replaced) at each apply.
	applied struct {
		sync.Mutex
		offset  int64
		changed chan struct{}
	}

	// handles is the file-handle budget (handles.go); countOpenFiles
	// counts the descriptors open now (tests replace it).
	handles        handleBudget
	countOpenFiles func() (int, error)
	// removeAll removes a directory tree (os.RemoveAll; tests inject
	// failures), and openFault, if set, fails the opening of a partition
	// after its directory was made (tests of failed creates).
	removeAll func(string) error
	openFault func(topic string, partition int32) error
	leftovers leftovers // directories of failed creates still to remove (leftovers.go)
}

// persistedTopics is the JSON shape of topics.json.
type persistedTopics struct {
	Version int              `json:"version"`
	Topics  []persistedTopic `json:"topics"`
}

type persistedTopic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// retentionInterval is log.retention.check.interval.ms (default 5 min).
func (b *Broker) retentionInterval() time.Duration {
	if b.cfg.RetentionCheckInterval <= 0 {
		return 5 * time.Minute // Kafka's default, 300000 ms
	}
	return b.cfg.RetentionCheckInterval
}

// parsePartitionDir splits "<topic>-<partition>" at the last dash.
func parsePartitionDir(dir string) (string, int32, bool) {
	i := strings.LastIndexByte(dir, '-')
	if i <= 0 {
		return "", 0, false
	}
	p, err := strconv.ParseInt(dir[i+1:], 10, 32)
	if err != nil || p < 0 || strconv.FormatInt(p, 10) != dir[i+1:] {
		return "", 0, false
	}
	if validateTopicName(dir[:i]) != nil {
		return "", 0, false
	}
	return dir[:i], int32(p), true
}

func (r *topicRegistry) partitionDir(name string, p int32) string {
	return filepath.Join(r.dir, name+"-"+strconv.FormatInt(int64(p), 10))
}

func (r *topicRegistry) openPartition(name string, p int32, cfg topicconfig.Config) (*replica.Partition, error) {
	dir := r.partitionDir(name, p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if r.openFault != nil {
		if err := r.openFault(name, p); err != nil {
			return nil, fmt.Errorf("open partition %s-%d: %w", name, p, err)
		}
	}
	part, err := replica.Open(replica.Options{
		Dir:       dir,
		Topic:     name,
		Partition: p,
		Log:       cfg.LogConfig(),
		Committer: r.b.committer,
		Logger:    r.log, // replica.Open adds topic and partition
	})
	if err != nil {
		if hint := fsutil.Hint(err); hint != "" {
			return nil, fmt.Errorf("open partition %s-%d: %w (%s)", name, p, err, hint)
		}
		return nil, fmt.Errorf("open partition %s-%d: %w", name, p, err)
	}
	return part, nil
}

// openNewPartitions opens partitions [from, to) of a topic that has never
// had them, first removing any stale directory an interrupted operation
// left (see the file comment). On error, every directory of the range is
// removed again (discardPartitions). Caller holds adminMu.
func (r *topicRegistry) openNewPartitions(name string, from, to int32, cfg topicconfig.Config) ([]*replica.Partition, error) {
	parts := make([]*replica.Partition, to-from)
	errs := inParallel(len(parts), func(k int) error {
		i := from + int32(k)
		dir := r.partitionDir(name, i)
		if _, err := os.Stat(dir); err == nil {
			r.log.Warn("removing stale partition directory before creating the partition", "dir", dir)
			if err := r.removeAll(dir); err != nil {
				return err
			}
		}
		var err error
		parts[k], err = r.openPartition(name, i, cfg)
		return err
	})
	if err := errors.Join(errs...); err != nil {
		r.log.Warn("creating partitions failed; removing the directories made for them", "topic", name,
			"from", from, "to", to, "err", err, "hint", fsutil.Hint(err))
		r.discardPartitions(name, from, parts)
		return nil, err
	}
	return parts, nil
}

// discardPartitions deletes partitions from, from+1, … of topic name,
// either never published (a failed create) or no longer (a deleted
// topic): parts[k] (nil if it was never opened) is deleted, and the
// directory of partition from+k removed either way. A directory that
// cannot be removed now is retried in the background (leftovers.go).
// Caller holds adminMu.
func (r *topicRegistry) discardPartitions(name string, from int32, parts []*replica.Partition) {
	for k, p := range parts {
		dir := r.partitionDir(name, from+int32(k))
		if p != nil {
			err := p.Delete()
			if err == nil {
				continue // Delete removed the directory
			}
			r.log.Error("deleting partition", "topic", name, "partition", p.Index(), "err", err, "hint", fsutil.Hint(err))
		}
		if err := r.removeAll(dir); err != nil {
			r.removeLater(dir, err)
		}
	}
}

// get returns the topic named name, or nil if unknown.
func (r *topicRegistry) get(name string) *topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.mu.byName[name]
}

// getByID returns the topic with the given id, or nil if unknown.
func (r *topicRegistry) getByID(id [16]byte) *topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.mu.byID[id]
}

// all returns every topic, sorted by name.
func (r *topicRegistry) all() []*topic {
	r.mu.RLock()
	ts := make([]*topic, 0, len(r.mu.byName))
	for _, t := range r.mu.byName {
		ts = append(ts, t)
	}
	r.mu.RUnlock()
	slices.SortFunc(ts, func(a, b *topic) int { return strings.Compare(a.name, b.name) })
	return ts
}

// checkNewName refuses a name that exists or collides with an
// existing name once '.' and '_' are treated as equal (Kafka's rule: metric
// names replace '.' with '_'). Final only under adminMu.
func (r *topicRegistry) checkNewName(name string) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.mu.closed {
		return errRegistryClosed
	}
	if r.mu.byName[name] != nil {
		return newAdminError(kerr.TopicAlreadyExists, "Topic '%s' already exists.", name)
	}
	norm := topicconfig.NormalizeTopicName(name)
	for other := range r.mu.byName {
		if topicconfig.NormalizeTopicName(other) == norm {
			return newAdminError(kerr.InvalidTopicException, "Topic '%s' collides with existing topic: %s", name, other)
		}
	}
	return nil
}

// writeTopicsFile replaces <dir>/topics.json with pt, atomically.
func writeTopicsFile(dir string, pt persistedTopics) error {
	data, err := json.MarshalIndent(pt, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, topicsFile), append(data, '\n'))
}

func readTopicsFile(path string) (persistedTopics, bool, error) {
	var pt persistedTopics
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return pt, false, nil
	}
	if err != nil {
		return pt, false, err
	}
	if err := json.Unmarshal(data, &pt); err != nil {
		return pt, true, fmt.Errorf("%s: %w", path, err)
	}
	if pt.Version != topicsFileVersion {
		return pt, true, fmt.Errorf("%s: unsupported version %d (want %d)", path, pt.Version, topicsFileVersion)
	}
	return pt, true, nil
}

// retentionLoop applies retention to every partition each interval until
// close. It owns no state: partitions do their own locking.
func (r *topicRegistry) retentionLoop(interval time.Duration) {
	defer close(r.retentionDone)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-r.stopRetention:
			return
		case now := <-tick.C:
			r.applyRetention(now)
		}
	}
}

// applyRetention runs one retention pass over every partition.
func (r *topicRegistry) applyRetention(now time.Time) {
	for _, t := range r.all() {
		for _, p := range t.hosted() {
			select {
			case <-r.stopRetention:
				return
			default:
			}
			// ErrClosed: the topic was deleted meanwhile.
			if err := p.ApplyRetention(now); err != nil && !errors.Is(err, segments.ErrClosed) {
				r.log.Error("retention", "topic", t.name, "partition", p.Index(), "err", err)
			}
		}
	}
}

// close stops the apply and retention loops and closes every partition
// cleanly (each partition syncs and writes its clean-shutdown state).
// Later mutations fail with errRegistryClosed. Safe to call more than
// once.
func (r *topicRegistry) close() error {
	// The leftover remover and the apply loop take adminMu: stop them
	// first.
	r.stopLeftovers()
	r.mu.Lock()
	if r.mu.closed {
		r.mu.Unlock()
		return nil
	}
	r.mu.closed = true
	r.mu.Unlock()
	close(r.stopApply)
	<-r.applyDone
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	close(r.stopRetention)
	<-r.retentionDone
	return r.closePartitions()
}

// closePartitions closes every hosted partition, a few at a time: closing
// fsyncs and writes checkpoints and a producer snapshot per partition.
func (r *topicRegistry) closePartitions() error {
	var parts []*replica.Partition
	for _, t := range r.all() {
		parts = append(parts, t.hosted()...)
	}
	errs := inParallel(len(parts), func(i int) error {
		if err := parts[i].Close(); err != nil {
			return fmt.Errorf("close %s-%d: %w", parts[i].Topic(), parts[i].Index(), err)
		}
		return nil
	})
	return errors.Join(errs...)
}

// partitionIOWorkers bounds how many partitions are opened or closed at
// once: enough to overlap fsyncs and recovery scans, few enough not to
// flood a small machine.
const partitionIOWorkers = 8

// inParallel runs fn(0..n-1) on up to partitionIOWorkers goroutines and
// returns each call's error at its index.
func inParallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	sem := make(chan struct{}, partitionIOWorkers)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errs
}

// validateTopicName applies Kafka's rules (topicconfig.ValidateTopicName);
// errors are INVALID_TOPIC_EXCEPTION.
func validateTopicName(name string) error {
	if err := topicconfig.ValidateTopicName(name); err != nil {
		return newAdminError(kerr.InvalidTopicException, "%v", err)
	}
	return nil
}

// isInternalTopic reports Kafka's internal topics.
func isInternalTopic(name string) bool {
	return name == "__consumer_offsets" || name == "__transaction_state"
}

// topicIDString renders an id as Kafka does (URL-safe base64, no padding).
func topicIDString(id [16]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

func parseTopicID(s string) ([16]byte, error) {
	var id [16]byte
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 16 {
		return id, fmt.Errorf("invalid topic id %q", s)
	}
	copy(id[:], b)
	if id == ([16]byte{}) {
		return id, fmt.Errorf("invalid topic id %q (all zeros)", s)
	}
	return id, nil
}

// topicDefaults is the base every topic's overrides apply to: the broker's
// configured defaults, or Kafka's when none were configured (Config built
// by hand, as in tests).
//
// remote.storage.enable defaults to false on a broker without an object
// store, so that DescribeConfigs tells the truth.
func (b *Broker) topicDefaults() topicconfig.Config {
	d := b.cfg.TopicDefaults
	if d == (topicconfig.Config{}) {
		d = topicconfig.Default()
	}
	if b.tier == nil {
		d.RemoteStorage = false
	}
	return d
}

func cloneStrings(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
