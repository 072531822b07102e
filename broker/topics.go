package broker

// The topic registry: which topics exist, their ids, config overrides and
// partitions, persisted in <data-dir>/topics.json, plus the retention loop.
//
// topics.json is the single source of truth for what exists. It is written
// atomically (write topics.json.tmp, fsync, rename, fsync the directory)
// before a change is published to handlers, so a crash leaves either the old
// or the new set. Partition directories <data-dir>/<topic>-<partition> that
// topics.json does not list are leftovers of a create, CreatePartitions or
// delete interrupted by a crash (created before, or removed after, the file
// was written); they never held acknowledged data the registry published,
// so openTopicRegistry removes them (and create removes a stale one before
// reusing its name). A create that fails removes the directories it made
// at once; whatever cannot be removed then (no file handle to list a
// directory with, say) is retried in the background with backoff
// (leftovers.go), not left until the next start.
//
// Before a create does any work it checks max.broker.partitions and the
// file-handle budget (handles.go).
//
// Format (version 1):
//
//	{"version":1,"topics":[{"name":"orders","id":"<base64url, 22 chars>",
//	  "partitions":3,"configs":{"retention.ms":"3600000"}}]}
//
// configs holds only the per-topic overrides, as given (validated); the
// effective config is the broker's TopicDefaults with the overrides applied,
// so a changed broker default reaches every topic that does not override it.
//
// Concurrency: *topic values are immutable once published. A change
// (CreatePartitions, AlterConfigs) builds a new *topic and swaps it into the
// maps, so a handler holding an older *topic reads a consistent snapshot;
// its partitions are the same objects. Mutations are serialised by adminMu,
// which is held across their disk I/O; mu guards only the maps and is never
// held across I/O. Lock order: adminMu → mu → replica.Partition locks.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
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
	msg := errorMessage(err.Error())
	var ae *adminError
	if errors.As(err, &ae) {
		return ae.code.Code, msg
	}
	return errorCode(err), msg
}

// topic is one topic hosted by this broker. Immutable once published in the
// registry (see the file comment); do not modify its fields or slices.
type topic struct {
	name       string
	id         [16]byte
	overrides  map[string]string  // per-topic config overrides, as persisted
	config     topicconfig.Config // effective: broker defaults + overrides
	partitions []*replica.Partition
}

// partition returns partition p, or nil if t is nil or p is out of range.
func (t *topic) partition(p int32) *replica.Partition {
	if t == nil || p < 0 || int(p) >= len(t.partitions) {
		return nil
	}
	return t.partitions[p]
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

// openTopicRegistry loads <data-dir>/topics.json (absent: no topics), opens
// every partition with replica.Open (recovering as needed), removes orphan
// partition directories and starts the retention loop.
func openTopicRegistry(b *Broker) (*topicRegistry, error) {
	limit, err := fileLimit()
	if err != nil {
		b.log.Warn("cannot read the open-file limit; the file-handle budget is not enforced", "err", err)
		limit = math.MaxInt32
	}
	r := &topicRegistry{
		b:              b,
		dir:            b.cfg.DataDir,
		log:            b.log,
		stopRetention:  make(chan struct{}),
		retentionDone:  make(chan struct{}),
		handles:        newHandleBudget(limit, b.cfg.MaxConnections),
		countOpenFiles: countOpenFiles,
		removeAll:      os.RemoveAll,
	}
	r.leftovers.stop = make(chan struct{})
	r.mu.byName = map[string]*topic{}
	r.mu.byID = map[[16]byte]*topic{}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, err
	}

	pt, found, err := readTopicsFile(filepath.Join(r.dir, topicsFile))
	if err != nil {
		return nil, err
	}
	defaults := b.topicDefaults()
	var loaded []*topic
	for _, p := range pt.Topics {
		t, err := r.decodeTopic(p, defaults)
		if err != nil {
			return nil, fmt.Errorf("%s: topic %q: %w", topicsFile, p.Name, err)
		}
		if r.mu.byName[t.name] != nil || r.mu.byID[t.id] != nil {
			return nil, fmt.Errorf("%s: duplicate topic name or id %q", topicsFile, t.name)
		}
		r.mu.byName[t.name] = t
		r.mu.byID[t.id] = t
		loaded = append(loaded, t)
	}
	if err := r.removeOrphans(found); err != nil {
		return nil, err
	}

	// Open the partitions a few at a time: recovery of an unclean shutdown
	// scans segments, which is I/O- and CRC-bound.
	type job struct {
		t *topic
		i int32
	}
	var jobs []job
	for _, t := range loaded {
		for i := range t.partitions {
			jobs = append(jobs, job{t, int32(i)})
		}
	}
	errs := inParallel(len(jobs), func(k int) error {
		j := jobs[k]
		var err error
		j.t.partitions[j.i], err = r.openPartition(j.t.name, j.i, j.t.config)
		return err
	})
	if err := errors.Join(errs...); err != nil {
		for _, t := range loaded {
			for _, p := range t.partitions {
				if p != nil {
					_ = p.Close()
				}
			}
		}
		return nil, err
	}
	r.log.Info("topics loaded", "topics", len(loaded), "partitions", len(jobs))

	go r.retentionLoop(b.retentionInterval())
	return r, nil
}

// retentionInterval is log.retention.check.interval.ms (default 5 min).
func (b *Broker) retentionInterval() time.Duration {
	if b.cfg.RetentionCheckInterval <= 0 {
		return 5 * time.Minute // Kafka's default, 300000 ms
	}
	return b.cfg.RetentionCheckInterval
}

// decodeTopic validates one persisted entry; partitions are not opened yet.
func (r *topicRegistry) decodeTopic(p persistedTopic, defaults topicconfig.Config) (*topic, error) {
	if err := validateTopicName(p.Name); err != nil {
		return nil, err
	}
	id, err := parseTopicID(p.ID)
	if err != nil {
		return nil, err
	}
	if p.Partitions < 1 || p.Partitions > maxPartitionsPerTopic {
		return nil, fmt.Errorf("invalid partition count %d", p.Partitions)
	}
	overrides := p.Configs
	cfg, err := r.b.parseTopicConfig(defaults, overrides)
	if err != nil {
		// A topic created before Kafka 4.0's 1 MiB minimum keeps its
		// small segments, as internal.segment.bytes.
		legacy, ok := topicconfig.MigrateLegacySegmentBytes(overrides)
		if !ok {
			return nil, err
		}
		if cfg, err = r.b.parseTopicConfig(defaults, legacy); err != nil {
			return nil, err
		}
		r.log.Warn("topic has segment.bytes below the minimum of 1048576 (1 MiB, as Kafka 4.0); it is kept as the test-only internal.segment.bytes: set segment.bytes to 1048576 or more",
			"topic", p.Name, "segment.bytes", overrides["segment.bytes"])
		overrides = legacy
	}
	return &topic{
		name:       p.Name,
		id:         id,
		overrides:  cloneStrings(overrides),
		config:     cfg,
		partitions: make([]*replica.Partition, p.Partitions),
	}, nil
}

// removeOrphans deletes partition directories that topics.json does not list.
// Without a topics.json, partition directories mean the file was lost: that
// is refused rather than guessed at, since removing them would lose data.
func (r *topicRegistry) removeOrphans(haveFile bool) error {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return err
	}
	var orphans []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name, part, ok := parsePartitionDir(e.Name())
		if !ok {
			continue
		}
		if t := r.mu.byName[name]; t != nil && int(part) < len(t.partitions) {
			continue
		}
		orphans = append(orphans, e.Name())
	}
	if len(orphans) == 0 {
		return nil
	}
	if !haveFile {
		return fmt.Errorf("%s is missing but the data directory holds partition directories (%s); refusing to start rather than lose them",
			filepath.Join(r.dir, topicsFile), strings.Join(orphans, ", "))
	}
	for _, o := range orphans {
		r.log.Warn("removing partition directory not listed in "+topicsFile+" (left by an interrupted create or delete)", "dir", o)
		if err := os.RemoveAll(filepath.Join(r.dir, o)); err != nil {
			return err
		}
	}
	return fsutil.SyncDir(r.dir)
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

// create creates a topic with the given partition count and config
// overrides (a nil value is an error, as in Kafka's CreateTopics). Errors
// are *adminError (INVALID_TOPIC_EXCEPTION, TOPIC_ALREADY_EXISTS,
// INVALID_PARTITIONS, …), *topicconfig.Error, or I/O errors; adminErrorCode
// maps them all.
func (r *topicRegistry) create(name string, partitions int32, overrides map[string]*string) (*topic, error) {
	kv := make(map[string]string, len(overrides))
	for k, v := range overrides {
		if v == nil {
			return nil, &topicconfig.Error{Key: k, Value: "null", Reason: "null value not supported for topic configs"}
		}
		kv[k] = *v
	}
	return r.createTopic(name, partitions, kv, false)
}

// createTopic validates and (unless validateOnly) creates a topic. With
// validateOnly, the returned topic is not registered and has no partitions
// opened (len(partitions) is still the count) and a zero id.
func (r *topicRegistry) createTopic(name string, partitions int32, overrides map[string]string, validateOnly bool) (*topic, error) {
	if err := validateTopicName(name); err != nil {
		return nil, err
	}
	if partitions < 1 {
		return nil, newAdminError(kerr.InvalidPartitions, "Number of partitions was set to an invalid non-positive value.")
	}
	if partitions > maxPartitionsPerTopic {
		return nil, newAdminError(kerr.InvalidPartitions, "Number of partitions %d exceeds Strata's limit of %d per topic.", partitions, maxPartitionsPerTopic)
	}
	cfg, err := r.b.parseTopicConfig(r.b.topicDefaults(), overrides)
	if err != nil {
		return nil, err
	}
	if err := r.b.checkTieringConfig(nil, cfg, overrides); err != nil {
		return nil, err
	}

	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	if err := r.checkNewName(name); err != nil {
		return nil, err
	}
	if err := r.checkNewPartitions(int(partitions)); err != nil {
		return nil, err
	}
	t := &topic{name: name, overrides: cloneStrings(overrides), config: cfg, partitions: make([]*replica.Partition, partitions)}
	if validateOnly {
		return t, nil
	}
	t.id = r.newTopicID()
	parts, err := r.openNewPartitions(name, 0, partitions, cfg)
	if err != nil {
		return nil, err
	}
	t.partitions = parts
	if err := r.persistLocked(t.name, t); err != nil {
		r.discardPartitions(name, 0, parts)
		return nil, err
	}
	r.publishLocked(nil, t)
	r.log.Info("topic created", "topic", name, "id", topicIDString(t.id), "partitions", partitions, "configs", overrides)
	return t, nil
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

// newTopicID returns a random topic id (metadata.RandomUUID: version 4,
// never zero, never starting with '-') that is not in use.
func (r *topicRegistry) newTopicID() [16]byte {
	for {
		if id := metadata.RandomUUID(); r.getByID(id) == nil {
			return id
		}
	}
}

// deleteTopic removes a topic: first from topics.json and the maps (so no
// new request finds it), then its partitions' directories.
func (r *topicRegistry) deleteTopic(t *topic) error {
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	cur, err := r.currentLocked(t.name)
	if err == nil && cur.id != t.id {
		err = newAdminError(kerr.UnknownTopicOrPartition, "This server does not host topic '%s'.", t.name)
	}
	if err != nil {
		return err
	}
	if cur.name == offsetsTopic {
		// The group coordinator holds its partitions; see group_driver.go.
		return newAdminError(kerr.InvalidTopicException, "Topic '%s' is internal to the group coordinator and cannot be deleted.", cur.name)
	}
	if err := r.persistLocked(cur.name, nil); err != nil {
		return err
	}
	r.publishLocked(cur, nil)
	r.discardPartitions(cur.name, 0, cur.partitions)
	r.b.tier.deleteTopicData(cur.name, cur.id)
	r.log.Info("topic deleted", "topic", cur.name, "id", topicIDString(cur.id))
	return nil
}

// currentLocked returns the live topic called name for a mutation (adminMu
// held): errRegistryClosed after close, UNKNOWN_TOPIC_OR_PARTITION if there
// is none.
func (r *topicRegistry) currentLocked(name string) (*topic, error) {
	r.mu.RLock()
	cur, closed := r.mu.byName[name], r.mu.closed
	r.mu.RUnlock()
	switch {
	case closed:
		return nil, errRegistryClosed
	case cur == nil:
		return nil, newAdminError(kerr.UnknownTopicOrPartition, "This server does not host topic '%s'.", name)
	}
	return cur, nil
}

// addPartitions grows a topic to count partitions (validating only, if
// validateOnly). Shrinking or keeping the count is INVALID_PARTITIONS.
func (r *topicRegistry) addPartitions(name string, count int32, validateOnly bool) error {
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	cur, err := r.currentLocked(name)
	if err != nil {
		return err
	}
	switch {
	case name == offsetsTopic:
		// More partitions would move groups (PartitionFor) away from
		// their committed offsets.
		return newAdminError(kerr.InvalidTopicException, "Topic '%s' is internal; its partition count cannot change.", name)
	case count < int32(len(cur.partitions)):
		return newAdminError(kerr.InvalidPartitions, "Topic currently has %d partitions, which is higher than the requested %d.", len(cur.partitions), count)
	case count == int32(len(cur.partitions)):
		return newAdminError(kerr.InvalidPartitions, "Topic already has %d partitions.", count)
	case count > maxPartitionsPerTopic:
		return newAdminError(kerr.InvalidPartitions, "Number of partitions %d exceeds Strata's limit of %d per topic.", count, maxPartitionsPerTopic)
	}
	if err := r.checkNewPartitions(int(count) - len(cur.partitions)); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	parts, err := r.openNewPartitions(name, int32(len(cur.partitions)), count, cur.config)
	if err != nil {
		return err
	}
	nt := *cur
	nt.partitions = append(slices.Clip(cur.partitions), parts...)
	if err := r.persistLocked(name, &nt); err != nil {
		r.discardPartitions(name, int32(len(cur.partitions)), parts)
		return err
	}
	r.publishLocked(cur, &nt)
	r.log.Info("partitions created", "topic", name, "from", len(cur.partitions), "to", count)
	return nil
}

// alterConfig computes a topic's new override set with fn (given a copy of
// the current one), validates it and, unless validateOnly, persists it and
// applies it to the live partitions.
func (r *topicRegistry) alterConfig(name string, validateOnly bool, fn func(cur topicconfig.Config, overrides map[string]string) error) error {
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	cur, err := r.currentLocked(name)
	if err != nil {
		return err
	}
	overrides := cloneStrings(cur.overrides)
	if overrides == nil {
		overrides = map[string]string{}
	}
	if err := fn(cur.config, overrides); err != nil {
		return err
	}
	cfg, err := r.b.parseTopicConfig(r.b.topicDefaults(), overrides)
	if err != nil {
		return err
	}
	if err := r.b.checkTieringConfig(&cur.config, cfg, overrides); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	nt := *cur
	nt.overrides, nt.config = overrides, cfg
	if err := r.persistLocked(name, &nt); err != nil {
		return err
	}
	r.publishLocked(cur, &nt)
	lc := cfg.LogConfig()
	for _, p := range nt.partitions {
		p.SetLogConfig(lc)
	}
	r.log.Info("topic config changed", "topic", name, "configs", overrides)
	return nil
}

// publishLocked replaces old with nt in the maps (either may be nil).
// Caller holds adminMu.
func (r *topicRegistry) publishLocked(old, nt *topic) {
	r.mu.Lock()
	if old != nil {
		delete(r.mu.byName, old.name)
		delete(r.mu.byID, old.id)
	}
	if nt != nil {
		r.mu.byName[nt.name] = nt
		r.mu.byID[nt.id] = nt
	}
	r.mu.Unlock()
	// Tiering follows the registry: loops for new tiered partitions,
	// none for removed ones, and the bucket's metadata rewritten.
	r.b.tier.reconcile()
	r.b.tier.markMetadataDirty()
}

// persistLocked writes topics.json with the current topics, topic `name`
// replaced by t (or removed, if t is nil). Caller holds adminMu.
func (r *topicRegistry) persistLocked(name string, t *topic) error {
	r.mu.RLock()
	var pt persistedTopics
	pt.Version = topicsFileVersion
	for n, cur := range r.mu.byName {
		if n != name {
			pt.Topics = append(pt.Topics, encodeTopic(cur))
		}
	}
	r.mu.RUnlock()
	if t != nil {
		pt.Topics = append(pt.Topics, encodeTopic(t))
	}
	slices.SortFunc(pt.Topics, func(a, b persistedTopic) int { return strings.Compare(a.Name, b.Name) })
	if pt.Topics == nil {
		pt.Topics = []persistedTopic{}
	}
	return writeTopicsFile(r.dir, pt)
}

// writeTopicsFile replaces <dir>/topics.json with pt, atomically.
func writeTopicsFile(dir string, pt persistedTopics) error {
	data, err := json.MarshalIndent(pt, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, topicsFile), append(data, '\n'))
}

func encodeTopic(t *topic) persistedTopic {
	return persistedTopic{Name: t.name, ID: topicIDString(t.id), Partitions: int32(len(t.partitions)), Configs: t.overrides}
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
		for _, p := range t.partitions {
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

// close stops the retention loop and closes every partition cleanly (each
// partition syncs and writes its clean-shutdown state). Later mutations fail
// with errRegistryClosed. Safe to call more than once.
func (r *topicRegistry) close() error {
	// The leftover remover takes adminMu: stop it first.
	r.stopLeftovers()
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	r.mu.Lock()
	if r.mu.closed {
		r.mu.Unlock()
		return nil
	}
	r.mu.closed = true
	r.mu.Unlock()
	close(r.stopRetention)
	<-r.retentionDone

	// Closing fsyncs and writes checkpoints and a producer snapshot per
	// partition: a few at a time keeps shutdown short with many partitions.
	var parts []*replica.Partition
	for _, t := range r.all() {
		parts = append(parts, t.partitions...)
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
