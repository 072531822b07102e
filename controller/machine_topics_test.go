package controller

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratalog/strata/controller/metadata"
	"github.com/stratalog/strata/topicconfig"
)

func TestMachineCreateTopics(t *testing.T) {
	r := newRig(t, func(c *MachineConfig) { c.NumPartitions = 3; c.DefaultReplicationFactor = 2 })
	for id := metadata.BrokerID(1); id <= 3; id++ {
		r.live(id, "")
	}
	r.create(NewTopic{Name: "a.b", NumPartitions: 1, ReplicationFactor: 1})
	r.register(4, 1, "") // registered, fenced
	long := strings.Repeat("x", 250)
	type want struct {
		err        error
		partitions int32
		rf         int16
	}
	requests := []NewTopic{
		{Name: "defaults", NumPartitions: -1, ReplicationFactor: -1},
		{Name: "", NumPartitions: 1, ReplicationFactor: 1},
		{Name: ".", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "..", NumPartitions: 1, ReplicationFactor: 1},
		{Name: long, NumPartitions: 1, ReplicationFactor: 1},
		{Name: "a b", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "a.b", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "a_b", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "twice", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "twice", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "both", NumPartitions: 1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{1}}},
		{Name: "zero", NumPartitions: 0, ReplicationFactor: 1},
		{Name: "minus2", NumPartitions: -2, ReplicationFactor: 1},
		{Name: "huge", NumPartitions: MaxPartitionsPerTopic + 1, ReplicationFactor: 1},
		{Name: "rf0", NumPartitions: 1, ReplicationFactor: 0},
		{Name: "rf4", NumPartitions: 1, ReplicationFactor: 4},
		{Name: "badcfg", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "soon"}},
		{Name: "unknowncfg", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]string{"no.such": "1"}},
		{Name: "unregistered", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{1, 9}}},
		{Name: "dupreplica", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{1, 1}}},
		{Name: "ragged", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{1, 2}, {3}}},
		{Name: "emptylist", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{}}},
		{Name: "allfenced", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{4}}},
		{Name: "assigned", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{{4, 2}, {3, 1}}},
		{Name: "validate", NumPartitions: 5, ReplicationFactor: 3, ValidateOnly: true, Configs: map[string]string{"retention.ms": "1000"}},
		{Name: "configured", NumPartitions: 2, ReplicationFactor: 3, Configs: map[string]string{"retention.ms": "1000"}},
	}
	wants := []want{
		{nil, 3, 2},
		{ErrInvalidTopic, 0, 0},
		{ErrInvalidTopic, 0, 0},
		{ErrInvalidTopic, 0, 0},
		{ErrInvalidTopic, 0, 0},
		{ErrInvalidTopic, 0, 0},
		{ErrTopicExists, 0, 0},
		{ErrInvalidTopic, 0, 0},
		{ErrInvalidRequest, 0, 0},
		{ErrInvalidRequest, 0, 0},
		{ErrInvalidRequest, 0, 0},
		{ErrInvalidPartitions, 0, 0},
		{ErrInvalidPartitions, 0, 0},
		{ErrInvalidPartitions, 0, 0},
		{ErrInvalidReplicationFactor, 0, 0},
		{ErrInvalidReplicationFactor, 0, 0},
		{ErrInvalidConfig, 0, 0},
		{ErrInvalidConfig, 0, 0},
		{ErrInvalidReplicaAssignment, 0, 0},
		{ErrInvalidReplicaAssignment, 0, 0},
		{ErrInvalidReplicaAssignment, 0, 0},
		{ErrInvalidReplicaAssignment, 0, 0},
		{ErrInvalidReplicaAssignment, 0, 0},
		{nil, 2, 2},
		{nil, 5, 3},
		{nil, 2, 3},
	}
	recs, res, err := r.m.CreateTopics(r.now, requests)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range wants {
		got := res[i]
		if !errors.Is(got.Err, w.err) || (w.err == nil) != (got.Err == nil) || got.NumPartitions != w.partitions || got.ReplicationFactor != w.rf {
			t.Errorf("%.20q: %v, %d partitions, RF %d; want %v, %d, %d", requests[i].Name, got.Err, got.NumPartitions, got.ReplicationFactor, w.err, w.partitions, w.rf)
		}
		if got.Err != nil && (got.Err.Error() == "" || !got.ID.IsZero()) {
			t.Errorf("%.20q: message %q, id %s", requests[i].Name, got.Err, got.ID)
		}
	}
	var cfgErr *topicconfig.Error
	if !errors.As(res[16].Err, &cfgErr) || cfgErr.Key != "retention.ms" {
		t.Errorf("a bad config's error does not carry the topicconfig.Error: %v", res[16].Err)
	}
	if !strings.Contains(res[15].Err.Error(), "4") || !strings.Contains(res[15].Err.Error(), "3 broker(s)") {
		t.Errorf("the replication factor error lacks the counts: %v", res[15].Err)
	}
	if !res[24].ID.IsZero() || res[24].Config.RetentionAge != time.Second {
		t.Errorf("validate only: id %s, config %+v", res[24].ID, res[24].Config)
	}
	r.apply(recs)
	if r.im.Topic("validate") != nil || r.im.Topic("twice") != nil {
		t.Fatal("a topic that should not exist does")
	}
	if tp := r.im.Topic("defaults"); tp == nil || len(tp.Partitions) != 3 || len(tp.Partitions[0].Replicas) != 2 || tp.ID != res[0].ID {
		t.Fatalf("defaults: %+v", tp)
	}
	// An assigned partition's ISR is its live replicas, led by the first.
	wantPart(t, "assigned-0", r.part("assigned", 0), 2, 2)
	wantPart(t, "assigned-1", r.part("assigned", 1), 3, 3, 1)
	if c := r.im.Topic("configured").Configs; c["retention.ms"] != "1000" {
		t.Errorf("configured: configs %v", c)
	}
	// Placed partitions: every replica in the ISR, replica 0 leads.
	for _, p := range r.im.Topic("configured").Partitions {
		if !slices.Equal(p.ISR, p.Replicas) || p.Leader != p.Replicas[0] || len(p.Replicas) != 3 {
			t.Errorf("configured: %+v", p)
		}
	}
}

// TestMachineCreateTopicsSpread: a 12-partition topic on three brokers
// (issue 10's test) gets four leaders on each, in three racks.
func TestMachineCreateTopicsSpread(t *testing.T) {
	r := newRig(t, nil)
	for id := metadata.BrokerID(1); id <= 3; id++ {
		r.live(id, fmt.Sprintf("zone-%d", id))
	}
	// __consumer_offsets, created while broker 1 was alone, is on broker 1
	// only: the next topic is still spread evenly.
	r.create(NewTopic{Name: "__consumer_offsets", NumPartitions: -1, ReplicationFactor: -1, Assignment: slices.Repeat([][]metadata.BrokerID{{1}}, 50)})
	tp := r.create(NewTopic{Name: "orders", NumPartitions: 12, ReplicationFactor: 3})
	leaders := map[metadata.BrokerID]int{}
	for _, p := range tp.Partitions {
		leaders[p.Leader]++
	}
	if leaders[1] != 4 || leaders[2] != 4 || leaders[3] != 4 {
		t.Errorf("leaders per broker: %v", leaders)
	}
}

// TestMachineHostileAssignment: a replica list of a million entries is
// refused after a few of them (a quadratic check would hang here).
func TestMachineHostileAssignment(t *testing.T) {
	r := newRig(t, nil)
	r.live(1, "")
	huge := make([]metadata.BrokerID, 1<<20)
	for i := range huge {
		huge[i] = 1
	}
	_, res, _ := r.m.CreateTopics(r.now, []NewTopic{{Name: "x", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]metadata.BrokerID{huge}}})
	if !errors.Is(res[0].Err, ErrInvalidReplicaAssignment) {
		t.Fatalf("a million replicas: %v", res[0].Err)
	}
}

func TestMachineTopicIDs(t *testing.T) {
	ids := []metadata.UUID{{}, {0: 1}, {0: 1}, {0: 2}}
	r := newRig(t, func(c *MachineConfig) {
		c.NewTopicID = func() metadata.UUID { id := ids[0]; ids = ids[1:]; return id }
	})
	r.live(1, "")
	if tp := r.create(NewTopic{Name: "x", NumPartitions: 1, ReplicationFactor: 1}); tp.ID != (metadata.UUID{0: 1}) {
		t.Fatalf("first id %s", tp.ID)
	}
	if tp := r.create(NewTopic{Name: "y", NumPartitions: 1, ReplicationFactor: 1}); tp.ID != (metadata.UUID{0: 2}) {
		t.Fatalf("second id %s (the one in use should be skipped)", tp.ID)
	}
}

func TestMachineCreateLimits(t *testing.T) {
	r := newRig(t, func(c *MachineConfig) { c.MaxBrokerPartitions = 10 })
	r.live(1, "")
	r.live(2, "")
	r.create(NewTopic{Name: "six", NumPartitions: 6, ReplicationFactor: 1})
	recs, res, _ := r.m.CreateTopics(r.now, []NewTopic{{Name: "fits", NumPartitions: 14, ReplicationFactor: 1}, {Name: "over", NumPartitions: 1, ReplicationFactor: 1}})
	if res[0].Err != nil || !errors.Is(res[1].Err, ErrPolicyViolation) || !strings.Contains(res[1].Err.Error(), "max.broker.partitions=10") {
		t.Fatalf("max.broker.partitions: %v; %v", res[0].Err, res[1].Err)
	}
	r.apply(recs)
}

// TestMachineCreateBatchBound: what one call may create fits in a batch.
func TestMachineCreateBatchBound(t *testing.T) {
	r := newRig(t, func(c *MachineConfig) { c.MaxBrokerPartitions = 0 })
	const brokers = 7
	for id := metadata.BrokerID(100000001); id < 100000001+brokers; id++ {
		r.live(id, "")
	}
	var reqs []NewTopic
	for i := range 200 {
		reqs = append(reqs, NewTopic{Name: fmt.Sprintf("t%03d", i), NumPartitions: MaxPartitionsPerTopic, ReplicationFactor: brokers})
	}
	recs, res, _ := r.m.CreateTopics(r.now, reqs)
	ok := 0
	for _, tr := range res {
		if tr.Err == nil {
			ok++
		} else if !errors.Is(tr.Err, ErrPolicyViolation) {
			t.Fatalf("%s: %v", tr.Name, tr.Err)
		}
	}
	if ok == 0 || ok == len(reqs) {
		t.Fatalf("%d of %d topics accepted", ok, len(reqs))
	}
	data, err := metadata.EncodeBatch(recs)
	if err != nil {
		t.Fatalf("the batch of %d topics does not encode: %v", ok, err)
	}
	t.Logf("%d topics accepted: %d bytes encoded, estimate %d, budget %d", ok, len(data), ok*MaxPartitionsPerTopic*partitionBytes(brokers), maxCreateBatchBytes)
	if len(data) > maxCreateBatchBytes {
		t.Errorf("estimate too low: %d bytes encoded, budget %d", len(data), maxCreateBatchBytes)
	}
}

func TestMachineTopicConfigPolicy(t *testing.T) {
	r := newRig(t, func(c *MachineConfig) {
		c.TopicConfigPolicy = func(topic string, cur *topicconfig.Config, next topicconfig.Config, overrides map[string]string) error {
			switch {
			case cur != nil && cur.Tiered() && !next.Tiered():
				return &topicconfig.Error{Key: "remote.storage.enable", Value: overrides["remote.storage.enable"], Reason: "tiered topics stay tiered"}
			case topic == "forbidden":
				return errors.New("no such topics here")
			}
			return nil
		}
	})
	r.live(1, "")
	_, res, _ := r.m.CreateTopics(r.now, []NewTopic{{Name: "forbidden", NumPartitions: 1, ReplicationFactor: 1}})
	if !errors.Is(res[0].Err, ErrPolicyViolation) {
		t.Errorf("policy refusal: %v", res[0].Err)
	}
	r.create(NewTopic{Name: "tiered", NumPartitions: 1, ReplicationFactor: 1})
	_, ares, _ := r.m.AlterTopicConfigs(r.now, []TopicConfigChange{{Topic: "tiered", Changes: []ConfigChange{{Key: "remote.storage.enable", Value: "false"}}}})
	if !errors.Is(ares[0].Err, ErrInvalidConfig) {
		t.Errorf("policy config refusal: %v", ares[0].Err)
	}
}

func TestMachineDeleteTopics(t *testing.T) {
	r := newRig(t, nil)
	r.live(1, "")
	a := r.create(NewTopic{Name: "a", NumPartitions: 1, ReplicationFactor: 1})
	b := r.create(NewTopic{Name: "b", NumPartitions: 1, ReplicationFactor: 1})
	c := r.create(NewTopic{Name: "c", NumPartitions: 1, ReplicationFactor: 1})
	refs := []TopicRef{
		{Name: "a"},
		{ID: b.ID},
		{Name: "nope"},
		{ID: metadata.UUID{0: 0xee}},
		{Name: "a", ID: a.ID},
		{},
		{Name: "c"},
		{ID: c.ID},
	}
	wants := []error{nil, nil, ErrUnknownTopic, ErrUnknownTopicID, ErrInvalidRequest, ErrInvalidRequest, ErrInvalidRequest, ErrInvalidRequest}
	recs, res, err := r.m.DeleteTopics(r.now, refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range wants {
		if !errors.Is(res[i].Err, w) || (w == nil) != (res[i].Err == nil) {
			t.Errorf("ref %d %+v: %v, want %v", i, refs[i], res[i].Err, w)
		}
	}
	if res[0].ID != a.ID || res[1].Name != "b" {
		t.Errorf("results name the topics by name and id: %+v %+v", res[0], res[1])
	}
	r.apply(recs)
	if r.im.Topic("a") != nil || r.im.Topic("b") != nil || r.im.Topic("c") == nil {
		t.Errorf("topics after the delete: %d", r.im.NumTopics())
	}
}

func TestMachineCreatePartitions(t *testing.T) {
	r := newRig(t, nil)
	for id := metadata.BrokerID(1); id <= 3; id++ {
		r.live(id, "")
	}
	r.create(NewTopic{Name: "t", NumPartitions: 2, ReplicationFactor: 2})
	r.create(NewTopic{Name: "u", NumPartitions: 1, ReplicationFactor: 3})
	reqs := []NewPartitions{
		{Topic: "t", Count: 5},
		{Topic: "nope", Count: 5},
		{Topic: "u", Count: 1},
		{Topic: "u", Count: 0},
	}
	recs, res, _ := r.m.CreatePartitions(r.now, reqs)
	if res[0].Err != nil || !errors.Is(res[1].Err, ErrUnknownTopic) || !errors.Is(res[2].Err, ErrInvalidRequest) || !errors.Is(res[3].Err, ErrInvalidRequest) {
		t.Fatalf("results: %+v", res)
	}
	r.apply(recs)
	tp := r.im.Topic("t")
	if len(tp.Partitions) != 5 {
		t.Fatalf("t has %d partitions", len(tp.Partitions))
	}
	leaders, replicas := map[metadata.BrokerID]int{}, map[metadata.BrokerID]int{}
	for _, p := range tp.Partitions {
		if len(p.Replicas) != 2 || p.Leader != p.Replicas[0] || !slices.Equal(p.ISR, p.Replicas) {
			t.Errorf("partition %+v", p)
		}
		leaders[p.Leader]++
		for _, id := range p.Replicas {
			replicas[id]++
		}
	}
	if lo, hi := spread(leaders, placementBrokers(3, 0)); hi-lo > 1 {
		t.Errorf("leaders of t: %v", leaders)
	}
	if lo, hi := spread(replicas, placementBrokers(3, 0)); hi-lo > 1 {
		t.Errorf("replicas of t: %v", replicas)
	}

	r.register(4, 1, "") // fenced
	for _, tc := range []struct {
		name string
		req  NewPartitions
		want error
	}{
		{"same count", NewPartitions{Topic: "u", Count: 1}, ErrInvalidPartitions},
		{"fewer", NewPartitions{Topic: "t", Count: 2}, ErrInvalidPartitions},
		{"too many", NewPartitions{Topic: "u", Count: MaxPartitionsPerTopic + 1}, ErrInvalidPartitions},
		{"assignment count", NewPartitions{Topic: "u", Count: 3, Assignment: [][]metadata.BrokerID{{1, 2, 3}}}, ErrInvalidReplicaAssignment},
		{"assignment RF", NewPartitions{Topic: "u", Count: 2, Assignment: [][]metadata.BrokerID{{1, 2}}}, ErrInvalidReplicaAssignment},
		{"assignment unregistered", NewPartitions{Topic: "u", Count: 2, Assignment: [][]metadata.BrokerID{{1, 2, 7}}}, ErrInvalidReplicaAssignment},
		{"assigned", NewPartitions{Topic: "u", Count: 2, Assignment: [][]metadata.BrokerID{{4, 2, 3}}}, nil},
		{"validate only", NewPartitions{Topic: "t", Count: 9, ValidateOnly: true}, nil},
	} {
		recs, res, _ := r.m.CreatePartitions(r.now, []NewPartitions{tc.req})
		if !errors.Is(res[0].Err, tc.want) || (tc.want == nil) != (res[0].Err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, res[0].Err, tc.want)
		}
		r.apply(recs)
	}
	wantPart(t, "assigned u-1", r.part("u", 1), 2, 2, 3)
	if n := len(r.im.Topic("t").Partitions); n != 5 {
		t.Errorf("validate only added partitions: %d", n)
	}
	// With one broker fenced, a topic of RF 3 cannot grow by placement.
	r.beat(3, func(h *BrokerHeartbeat) { h.WantFence = true })
	if _, res, _ := r.m.CreatePartitions(r.now, []NewPartitions{{Topic: "u", Count: 3}}); !errors.Is(res[0].Err, ErrInvalidReplicationFactor) {
		t.Errorf("growing RF 3 over two live brokers: %v", res[0].Err)
	}
}

func TestMachineAlterTopicConfigs(t *testing.T) {
	r := newRig(t, nil)
	r.live(1, "")
	r.create(NewTopic{Name: "t", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "1000", "segment.ms": "5000"}})
	step := func(name string, ch TopicConfigChange, want error, configs map[string]string) {
		t.Helper()
		recs, res, err := r.m.AlterTopicConfigs(r.now, []TopicConfigChange{ch})
		if err != nil || !errors.Is(res[0].Err, want) || (want == nil) != (res[0].Err == nil) {
			t.Fatalf("%s: %v %v, want %v", name, err, res[0].Err, want)
		}
		r.apply(recs)
		if got := r.im.Topic("t").Configs; !maps.Equal(got, configs) {
			t.Fatalf("%s: configs %v, want %v", name, got, configs)
		}
	}
	step("set and delete", TopicConfigChange{Topic: "t", Changes: []ConfigChange{
		{Key: "retention.ms", Op: ConfigSet, Value: "2000"}, {Key: "segment.ms", Op: ConfigDelete}}},
		nil, map[string]string{"retention.ms": "2000"})
	step("validate only", TopicConfigChange{Topic: "t", ValidateOnly: true, Changes: []ConfigChange{{Key: "retention.ms", Value: "3000"}}},
		nil, map[string]string{"retention.ms": "2000"})
	step("append to the default", TopicConfigChange{Topic: "t", Changes: []ConfigChange{{Key: "cleanup.policy", Op: ConfigAppend, Value: "compact"}}},
		nil, map[string]string{"retention.ms": "2000", "cleanup.policy": "delete,compact"})
	step("subtract", TopicConfigChange{Topic: "t", Changes: []ConfigChange{{Key: "cleanup.policy", Op: ConfigSubtract, Value: "delete"}}},
		nil, map[string]string{"retention.ms": "2000", "cleanup.policy": "compact"})
	step("append to a non-list", TopicConfigChange{Topic: "t", Changes: []ConfigChange{{Key: "retention.ms", Op: ConfigAppend, Value: "1"}}},
		ErrInvalidConfig, map[string]string{"retention.ms": "2000", "cleanup.policy": "compact"})
	step("invalid value", TopicConfigChange{Topic: "t", Changes: []ConfigChange{{Key: "retention.ms", Value: "-5"}}},
		ErrInvalidConfig, map[string]string{"retention.ms": "2000", "cleanup.policy": "compact"})
	step("unknown key", TopicConfigChange{Topic: "t", Changes: []ConfigChange{{Key: "no.such.key", Op: ConfigDelete}}},
		ErrInvalidConfig, map[string]string{"retention.ms": "2000", "cleanup.policy": "compact"})
	step("key twice", TopicConfigChange{Topic: "t", Changes: []ConfigChange{{Key: "retention.ms", Value: "1"}, {Key: "retention.ms", Op: ConfigDelete}}},
		ErrInvalidRequest, map[string]string{"retention.ms": "2000", "cleanup.policy": "compact"})
	step("unknown operation", TopicConfigChange{Topic: "t", Changes: []ConfigChange{{Key: "retention.ms", Op: 7}}},
		ErrInvalidRequest, map[string]string{"retention.ms": "2000", "cleanup.policy": "compact"})
	step("unknown topic", TopicConfigChange{Topic: "nope"},
		ErrUnknownTopic, map[string]string{"retention.ms": "2000", "cleanup.policy": "compact"})
	step("no change", TopicConfigChange{Topic: "t", Changes: []ConfigChange{{Key: "retention.ms", Value: "2000"}}},
		nil, map[string]string{"retention.ms": "2000", "cleanup.policy": "compact"})
	step("replace with a delete", TopicConfigChange{Topic: "t", Replace: true, Changes: []ConfigChange{{Key: "retention.ms", Op: ConfigDelete}}},
		ErrInvalidRequest, map[string]string{"retention.ms": "2000", "cleanup.policy": "compact"})
	step("replace", TopicConfigChange{Topic: "t", Replace: true, Changes: []ConfigChange{{Key: "segment.ms", Value: "7000"}}},
		nil, map[string]string{"segment.ms": "7000"})
	step("replace with nothing", TopicConfigChange{Topic: "t", Replace: true},
		nil, nil)
}
