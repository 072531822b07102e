package broker

// The registry follows the metadata image (see topics.go): opening at
// start, applying each new image, and the admin mutations that go through
// the active controller and wait for their image.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/stratalog/strata/broker/replica"
	"github.com/stratalog/strata/controller"
	"github.com/stratalog/strata/controller/metadata"
	"github.com/stratalog/strata/segments"
	"github.com/stratalog/strata/topicconfig"
)

// adminTimeout bounds one admin mutation: the controller's commit (it
// gives up at 10 s) and this broker applying the result.
const adminTimeout = 30 * time.Second

// openTopicRegistry opens the partitions the image assigns to this broker
// (recovering as needed), warns about partition directories the image
// does not list, and starts the retention loop and the apply loop.
func openTopicRegistry(b *Broker, image imageSource, admin Admin) (*topicRegistry, error) {
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
		image:          image,
		admin:          admin,
		node:           metadata.BrokerID(b.cfg.NodeID),
		stopApply:      make(chan struct{}),
		applyDone:      make(chan struct{}),
	}
	r.leftovers.stop = make(chan struct{})
	r.mu.byName = map[string]*topic{}
	r.mu.byID = map[[16]byte]*topic{}
	r.applied.offset = -1
	r.openErrs = map[[16]byte]error{}
	r.applied.changed = make(chan struct{})
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, err
	}
	im := image.Image()
	r.adminMu.Lock()
	err = r.applyLocked(im, true)
	r.adminMu.Unlock()
	if err != nil {
		_ = r.closePartitions()
		return nil, err
	}
	r.warnStrays()
	partitions := 0
	for _, t := range r.all() {
		partitions += len(t.hosted())
	}
	r.log.Info("topics loaded", "topics", len(r.all()), "partitions", partitions, "metadata_offset", im.Offset())
	go r.retentionLoop(b.retentionInterval())
	go r.applyLoop()
	return r, nil
}

// hosted returns the partitions of t this broker hosts.
func (t *topic) hosted() []*replica.Partition {
	out := make([]*replica.Partition, 0, len(t.partitions))
	for _, p := range t.partitions {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// warnStrays logs partition directories the image does not assign to this
// broker. They are left alone: their absence from the image is no proof
// that they hold nothing needed (the metadata log may have been lost).
func (r *topicRegistry) warnStrays() {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		r.log.Warn("cannot list the data directory for stray partitions", "err", err)
		return
	}
	var strays []string
	for _, e := range entries {
		name, part, ok := parsePartitionDir(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		if t := r.get(name); t != nil && t.partition(part) != nil {
			continue
		}
		strays = append(strays, e.Name())
	}
	if len(strays) > 0 {
		r.log.Warn("partition directories not in the metadata image are left untouched (not served, not deleted); remove them once you know they hold nothing you need",
			"dirs", strings.Join(strays, ","))
	}
}

// applyLoop applies each new image until close.
func (r *topicRegistry) applyLoop() {
	defer close(r.applyDone)
	for {
		ch := r.image.Changed()
		im := r.image.Image()
		r.adminMu.Lock()
		err := r.applyLocked(im, false)
		r.adminMu.Unlock()
		if err != nil {
			r.log.Error("applying the metadata image", "offset", im.Offset(), "err", err)
		}
		select {
		case <-r.stopApply:
			return
		case <-ch:
		}
	}
}

// applyLocked makes the registry follow im: new topics and partitions this
// broker hosts are opened, changed configs applied, deleted topics'
// partitions deleted. At start (opening), nothing is deleted and a
// partition that cannot be opened fails the start; later a partition that
// cannot be opened is logged and left out (its topic is served without
// it). Caller holds adminMu.
func (r *topicRegistry) applyLocked(im *metadata.Image, opening bool) error {
	if r.appliedOffset() >= im.Offset() && !opening {
		return nil
	}
	defaults := r.b.topicDefaults()
	seen := map[[16]byte]bool{}
	var errs []error
	for _, mt := range im.Topics() {
		seen[mt.ID] = true
		cur := r.getByID(mt.ID)
		nt, err := r.followTopic(cur, mt, defaults, opening)
		if err != nil {
			errs = append(errs, fmt.Errorf("topic %q: %w", mt.Name, err))
			r.openErrs[mt.ID] = err
		} else {
			delete(r.openErrs, mt.ID)
		}
		switch {
		case nt == nil:
			nt = cur
		case opening:
			r.putLocked(cur, nt) // tiering starts after the registry opens
		default:
			r.publishLocked(cur, nt)
		}
		r.applyRoles(nt, mt)
	}
	if !opening {
		for _, t := range r.all() {
			if !seen[t.id] {
				delete(r.openErrs, t.id)
				r.publishLocked(t, nil)
				r.discardPartitions(t.name, 0, t.partitions)
				r.b.tier.deleteTopicData(t.name, t.id)
				r.log.Info("topic deleted", "topic", t.name, "id", topicIDString(t.id), "metadata_offset", im.Offset())
			}
		}
	}
	if opening && len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, err := range errs {
		r.log.Error("applying the metadata image", "offset", im.Offset(), "err", err)
	}
	r.setApplied(im.Offset())
	return nil
}

// followTopic returns cur brought up to mt (nil when nothing changed):
// its config, and its partitions this broker hosts opened.
func (r *topicRegistry) followTopic(cur *topic, mt *metadata.Topic, defaults topicconfig.Config, opening bool) (*topic, error) {
	if cur != nil && cur.meta == mt && !r.missingHosted(cur) {
		return nil, nil // the image's topic is the same value: nothing changed
	}
	cfg, err := r.b.parseTopicConfig(defaults, mt.Configs)
	if err != nil {
		return nil, err // the controller checked it; a broker with other defaults may not agree
	}
	nt := &topic{name: mt.Name, id: mt.ID, overrides: cloneStrings(mt.Configs), config: cfg, meta: mt}
	if cur != nil {
		nt.partitions = slices.Clone(cur.partitions)
	}
	configChanged := cur == nil || !maps.Equal(cur.overrides, nt.overrides)
	var want []int32 // partitions hosted here, not yet open
	for i, mp := range mt.Partitions {
		if i >= len(nt.partitions) {
			nt.partitions = append(nt.partitions, nil)
		}
		if mp.Has(r.node) && nt.partitions[i] == nil {
			want = append(want, int32(i))
		}
	}
	if cur != nil && !configChanged && len(want) == 0 && len(cur.partitions) == len(mt.Partitions) {
		return nt, nil // leaders or ISR changed: the same partitions, the new image's view
	}
	errs := inParallel(len(want), func(k int) error {
		i := want[k]
		var err error
		if opening {
			nt.partitions[i], err = r.openPartition(mt.Name, i, cfg)
		} else {
			var parts []*replica.Partition
			if parts, err = r.openNewPartitions(mt.Name, i, i+1, cfg); err == nil {
				nt.partitions[i] = parts[0]
			}
		}
		return err
	})
	if cur != nil && configChanged {
		lc := cfg.LogConfig()
		for _, p := range cur.hosted() {
			p.SetLogConfig(lc)
		}
		r.log.Info("topic config changed", "topic", mt.Name, "configs", mt.Configs)
	}
	if cur == nil && !opening {
		r.log.Info("topic created", "topic", mt.Name, "id", topicIDString(mt.ID), "partitions", len(mt.Partitions), "configs", mt.Configs)
	} else if cur != nil && len(mt.Partitions) > len(cur.partitions) {
		r.log.Info("partitions created", "topic", mt.Name, "from", len(cur.partitions), "to", len(mt.Partitions))
	}
	return nt, errors.Join(errs...)
}

// applyRoles gives each partition of t this broker hosts its role in mt:
// the leader at the image's epoch, or not leading. A role that cannot be
// taken (the epoch cannot be recorded) leaves the partition not leading.
func (r *topicRegistry) applyRoles(t *topic, mt *metadata.Topic) {
	for i, p := range t.partitions {
		if p == nil || i >= len(mt.Partitions) {
			continue
		}
		mp := mt.Partitions[i]
		if mp.Leader != r.node {
			p.StopLeading()
			continue
		}
		epoch, err := p.BecomeLeader(segments.LeaderEpoch(mp.LeaderEpoch))
		if err != nil {
			r.log.Error("cannot take the partition's leadership", "topic", t.name, "partition", i, "leader_epoch", mp.LeaderEpoch, "err", err)
			p.StopLeading()
			continue
		}
		if epoch != segments.LeaderEpoch(mp.LeaderEpoch) {
			r.log.Debug("the log holds a newer leader epoch than the metadata; leading at the log's", "topic", t.name, "partition", i,
				"metadata_leader_epoch", mp.LeaderEpoch, "leader_epoch", int32(epoch))
		}
	}
}

// missingHosted reports whether t has a partition this broker hosts that
// is not open (it failed to open at an earlier apply and is retried).
func (r *topicRegistry) missingHosted(t *topic) bool {
	for i, p := range t.partitions {
		if p == nil && i < len(t.meta.Partitions) && t.meta.Partitions[i].Has(r.node) {
			return true
		}
	}
	return false
}

// publishLocked replaces old with nt in the maps (either may be nil).
// Caller holds adminMu.
func (r *topicRegistry) publishLocked(old, nt *topic) {
	r.putLocked(old, nt)
	// Tiering follows the registry: loops for new tiered partitions,
	// none for removed ones.
	r.b.tier.reconcile()
	r.b.tier.markMetadataDirty()
}

// putLocked replaces old with nt in the maps.
func (r *topicRegistry) putLocked(old, nt *topic) {
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
}

func (r *topicRegistry) appliedOffset() int64 {
	r.applied.Lock()
	defer r.applied.Unlock()
	return r.applied.offset
}

func (r *topicRegistry) setApplied(offset int64) {
	r.applied.Lock()
	defer r.applied.Unlock()
	r.applied.offset = offset
	close(r.applied.changed)
	r.applied.changed = make(chan struct{})
}

// await waits until the registry has applied the image this node holds
// now and then, if done is not nil, until done holds (checked after each
// apply). An in-process controller answers an admin call once its batch
// is applied to this node's image, so the call's effect is then applied
// here; a remote one answers once it is committed, which this node learns
// a moment later (done says when). The effect may already have been
// changed again by a later call: a done that may never hold again (a
// topic deleted right after its creation) gives up after
// visibleTimeout, quietly: the caller checks what it finds.
func (r *topicRegistry) await(ctx context.Context, what string, done func() bool) error {
	target := r.image.Image().Offset()
	var giveUp <-chan time.Time
	if done != nil {
		t := time.NewTimer(visibleTimeout)
		defer t.Stop()
		giveUp = t.C
	}
	for {
		r.applied.Lock()
		ch, offset := r.applied.changed, r.applied.offset
		r.applied.Unlock()
		if offset >= target && (done == nil || done()) {
			return nil
		}
		select {
		case <-ch:
		case <-giveUp:
			if offset >= target {
				return nil
			}
		case <-ctx.Done():
			return newAdminError(kerr.RequestTimedOut, "the controller committed the change but this broker did not apply it in time (%s)", what)
		case <-r.stopApply:
			return errRegistryClosed
		}
	}
}

// visibleTimeout bounds the wait for an admin change to show in this
// broker's image (it follows the controller within a heartbeat).
const visibleTimeout = 5 * time.Second

// ---- admin mutations, through the active controller ----

// create creates a topic with the given partition count and config
// overrides (a nil value is an error, as in Kafka's CreateTopics).
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

// createTopic validates a topic here (name, count, configs, tiering, the
// partition and file-handle limits) and has the controller create it
// (or, with validateOnly, validate it too); it returns once the topic is
// applied here. With validateOnly, the returned topic is not registered,
// has no partitions opened (len(partitions) is still the count) and a
// zero id. Errors are *adminError, *topicconfig.Error or the controller's
// (errorCode maps them all).
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
	if err := r.checkNewName(name); err != nil {
		return nil, err
	}
	if err := r.checkNewPartitions(int(partitions)); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	res, err := r.admin.CreateTopics(ctx, []controller.NewTopic{{
		Name: name, NumPartitions: partitions, ReplicationFactor: -1, Configs: overrides, ValidateOnly: validateOnly,
	}})
	if err != nil {
		return nil, err
	}
	if res[0].Err != nil {
		if errors.Is(res[0].Err, controller.ErrTopicExists) {
			// Created concurrently: let the caller find it here.
			_ = r.await(ctx, "topic "+name, func() bool { return r.get(name) != nil })
		}
		return nil, res[0].Err
	}
	if validateOnly {
		return &topic{name: name, overrides: cloneStrings(overrides), config: cfg, partitions: make([]*replica.Partition, partitions)}, nil
	}
	id := res[0].ID
	if err := r.await(ctx, "create topic "+name, func() bool { return r.getByID(id) != nil }); err != nil {
		return nil, err
	}
	if err := r.openError(id); err != nil {
		return nil, err // created, but a partition could not be opened here: it is retried at the next apply
	}
	if t := r.getByID(id); t != nil {
		return t, nil
	}
	return nil, newAdminError(kerr.UnknownTopicOrPartition, "Topic '%s' was deleted right after it was created.", name)
}

// deleteTopic has the controller delete t, and returns once its
// partitions are gone here.
func (r *topicRegistry) deleteTopic(t *topic) error {
	if t.name == offsetsTopic {
		// The group coordinator holds its partitions; see group_driver.go.
		return newAdminError(kerr.InvalidTopicException, "Topic '%s' is internal to the group coordinator and cannot be deleted.", t.name)
	}
	if r.isClosed() {
		return errRegistryClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	res, err := r.admin.DeleteTopics(ctx, []controller.TopicRef{{ID: t.id}})
	if err != nil {
		return err
	}
	if res[0].Err != nil {
		if errors.Is(res[0].Err, controller.ErrUnknownTopicID) {
			return newAdminError(kerr.UnknownTopicOrPartition, "This server does not host topic '%s'.", t.name)
		}
		return res[0].Err
	}
	return r.await(ctx, "delete topic "+t.name, func() bool { return r.getByID(t.id) == nil })
}

// addPartitions grows a topic to count partitions (validating only, if
// validateOnly). Shrinking or keeping the count is INVALID_PARTITIONS.
func (r *topicRegistry) addPartitions(name string, count int32, validateOnly bool) error {
	cur, err := r.existing(name)
	switch {
	case err != nil:
		return err
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
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	res, err := r.admin.CreatePartitions(ctx, []controller.NewPartitions{{Topic: name, Count: count, ValidateOnly: validateOnly}})
	if err != nil {
		return err
	}
	if res[0].Err != nil || validateOnly {
		return res[0].Err
	}
	if err := r.await(ctx, "create partitions of "+name, func() bool {
		t := r.getByID(cur.id)
		return t == nil || len(t.partitions) >= int(count)
	}); err != nil {
		return err
	}
	return r.openError(cur.id)
}

// alterConfig computes a topic's new override set with fn (given a copy
// of the current one), validates it here, and has the controller replace
// the topic's overrides with it (unless validateOnly); it returns once
// the new config is applied here.
func (r *topicRegistry) alterConfig(name string, validateOnly bool, fn func(cur topicconfig.Config, overrides map[string]string) error) error {
	cur, err := r.existing(name)
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
	change := controller.TopicConfigChange{Topic: name, Replace: true, ValidateOnly: validateOnly}
	for _, k := range slices.Sorted(maps.Keys(overrides)) {
		change.Changes = append(change.Changes, controller.ConfigChange{Key: k, Op: controller.ConfigSet, Value: overrides[k]})
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	res, err := r.admin.AlterTopicConfigs(ctx, []controller.TopicConfigChange{change})
	if err != nil {
		return err
	}
	if res[0].Err != nil || validateOnly {
		return res[0].Err
	}
	return r.await(ctx, "alter configs of "+name, func() bool {
		t := r.getByID(cur.id)
		return t == nil || maps.Equal(t.overrides, overrides)
	})
}

// existing returns the topic a mutation changes: errRegistryClosed after
// close, UNKNOWN_TOPIC_OR_PARTITION if there is none.
func (r *topicRegistry) existing(name string) (*topic, error) {
	if r.isClosed() {
		return nil, errRegistryClosed
	}
	if t := r.get(name); t != nil {
		return t, nil
	}
	return nil, newAdminError(kerr.UnknownTopicOrPartition, "This server does not host topic '%s'.", name)
}

func (r *topicRegistry) isClosed() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.mu.closed
}

// openError is the error of the last apply of topic id's partitions here,
// nil if they all opened.
func (r *topicRegistry) openError(id [16]byte) error {
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	return r.openErrs[id]
}
