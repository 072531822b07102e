package e2e

// Consumer groups end to end: real `strata` processes, group consumers of
// several clients, committed offsets that survive a broker restart.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupFlags make rebalances quick in tests: no initial rebalance delay.
var groupFlags = []string{"--group.initial.rebalance.delay.ms=0"}

// produceValues produces "<prefix>-<i>" for i < n, round-robin over the
// topic's partitions, and waits for every ack.
func produceValues(t *testing.T, b *strataProc, topic, prefix string, n int) {
	t.Helper()
	// Uncompressed: kafkajs has no snappy codec (franz-go's default).
	cl := b.kgoClient(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Value: []byte(prefix + "-" + strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// committedMatchesEnds checks that group's committed offsets equal the
// topic's end offsets on every partition.
func committedMatchesEnds(t *testing.T, b *strataProc, group, topic string) {
	t.Helper()
	cl := b.kgoClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("FetchOffsets %s: %v", group, err)
	}
	for p, end := range b.endOffsets(t, topic) {
		o, ok := offs.Lookup(topic, p)
		if !ok || o.Err != nil || o.At != end {
			t.Errorf("group %s %s/%d: committed %+v (present %v), want %d", group, topic, p, o, ok, end)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// TestFranzGoGroups: three franz-go group members (range, sticky and
// cooperative-sticky balancers) share a 6-partition topic, process every
// record and commit; after a broker restart the committed offsets are all
// there, and a new member of the group reads only what was produced since.
func TestFranzGoGroups(t *testing.T) {
	b := startStrata(t, groupFlags...)
	balancers := []struct {
		name string
		bal  kgo.GroupBalancer
	}{
		{"range", kgo.RangeBalancer()},
		{"sticky", kgo.StickyBalancer()},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
	}
	const partitions, n, more = 6, 3000, 300
	for _, bal := range balancers {
		topic, group := "groups-"+bal.name, "g-"+bal.name
		b.createTopic(t, topic, partitions, nil)
		produceValues(t, b, topic, "first", n)

		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		var mu sync.Mutex
		seen := map[string]int{}
		allSeen := make(chan struct{})
		var closeOnce sync.Once
		var wg sync.WaitGroup
		for m := range 3 {
			cl := b.kgoClient(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.Balancers(bal.bal),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
				kgo.ClientID(fmt.Sprintf("member-%d", m)), kgo.FetchMaxWait(500*time.Millisecond))
			wg.Go(func() {
				defer cl.Close() // leaves the group
				for {
					select {
					case <-allSeen:
						if err := cl.CommitUncommittedOffsets(ctx); err != nil {
							t.Errorf("%s member %d: final commit: %v", bal.name, m, err)
						}
						return
					default:
					}
					pctx, pcancel := context.WithTimeout(ctx, time.Second)
					fs := cl.PollFetches(pctx)
					pcancel()
					if ctx.Err() != nil {
						return
					}
					fs.EachRecord(func(r *kgo.Record) {
						mu.Lock()
						seen[string(r.Value)]++
						if len(seen) == n {
							closeOnce.Do(func() { close(allSeen) })
						}
						mu.Unlock()
					})
					// A commit may fail during a rebalance (those records are
					// then processed again, as Kafka allows); the final commit
					// above settles the rest.
					_ = cl.CommitUncommittedOffsets(ctx)
				}
			})
		}
		select {
		case <-allSeen:
		case <-ctx.Done():
		}
		wg.Wait()
		cancel()
		mu.Lock()
		if len(seen) != n {
			t.Fatalf("%s: group processed %d distinct records, want %d", bal.name, len(seen), n)
		}
		mu.Unlock()
		committedMatchesEnds(t, b, group, topic)
	}

	b.Restart()

	for _, bal := range balancers {
		topic, group := "groups-"+bal.name, "g-"+bal.name
		committedMatchesEnds(t, b, group, topic) // loaded back from __consumer_offsets
		produceValues(t, b, topic, "second", more)
		cl := b.kgoClient(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.Balancers(bal.bal),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		got := map[string]bool{}
		for len(got) < more {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("%s after restart: %d of %d new records", bal.name, len(got), more)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if !strings.HasPrefix(string(r.Value), "second-") {
					t.Fatalf("%s after restart: re-delivered committed record %q at %d/%d", bal.name, r.Value, r.Partition, r.Offset)
				}
				got[string(r.Value)] = true
			})
		}
		cancel()
	}
}

// TestKafkaJSGroups: three kafkajs group consumers consume a 6-partition
// topic; the commits survive a broker restart, and the group resumes from
// them.
func TestKafkaJSGroups(t *testing.T) {
	node := requireKafkaJS(t)
	b := startStrata(t, groupFlags...)
	const topic, group, n, more = "kafkajs-groups", "kafkajs-group", 2000, 200
	b.createTopic(t, topic, 6, nil)
	produceValues(t, b, topic, "first", n)
	out := runTool(t, nil, node, "e2e/js/group.js", b.Addr(), topic, group, "first-", strconv.Itoa(n), "3")
	t.Logf("group.js: %s", out)
	committedMatchesEnds(t, b, group, topic)

	b.Restart()
	committedMatchesEnds(t, b, group, topic)
	produceValues(t, b, topic, "second", more)
	out = runTool(t, nil, node, "e2e/js/group.js", b.Addr(), topic, group, "second-", strconv.Itoa(more), "2")
	t.Logf("group.js after restart: %s", out)
	committedMatchesEnds(t, b, group, topic)
}

// TestKcatBalancedConsumer: kcat -G (librdkafka's balanced consumer) reads
// a whole topic and commits; a second run of the same group, after a broker
// restart, reads only the records produced since.
func TestKcatBalancedConsumer(t *testing.T) {
	kcat := requireCommand(t, "kcat")
	b := startStrata(t, groupFlags...)
	const topic, group, n, more = "kcat-groups", "kcat-group", 1000, 100
	b.createTopic(t, topic, 3, nil)
	produceValues(t, b, topic, "first", n)
	run := func(want int, prefix string) {
		t.Helper()
		out := runTool(t, nil, kcat, "-b", b.Addr(), "-G", group, "-X", "auto.offset.reset=earliest",
			"-e", "-q", "-f", "%s\n", topic)
		lines := strings.Fields(string(out))
		distinct := map[string]bool{}
		for _, l := range lines {
			if !strings.HasPrefix(l, prefix) {
				t.Fatalf("kcat -G read %q, want only %s* records", l, prefix)
			}
			distinct[l] = true
		}
		if len(distinct) != want {
			t.Fatalf("kcat -G read %d distinct records, want %d", len(distinct), want)
		}
	}
	run(n, "first-")
	committedMatchesEnds(t, b, group, topic)
	b.Restart()
	produceValues(t, b, topic, "second", more)
	run(more, "second-")
	committedMatchesEnds(t, b, group, topic)
}

// saramaGroupHandler records every value and marks it consumed (sarama
// commits marked offsets every second and when the group closes).
type saramaGroupHandler struct {
	mu   sync.Mutex
	seen map[string]bool
	want int
	done chan struct{}
	once sync.Once
}

func (h *saramaGroupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaGroupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaGroupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		h.seen[string(m.Value)] = true
		if len(h.seen) == h.want {
			h.once.Do(func() { close(h.done) })
		}
		h.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

// TestSaramaConsumerGroup: two sarama ConsumerGroup members read a whole
// topic and commit; the commits survive a broker restart.
func TestSaramaConsumerGroup(t *testing.T) {
	b := startStrata(t, groupFlags...)
	const topic, group, n = "sarama-groups", "sarama-group", 2000
	b.createTopic(t, topic, 4, nil)
	produceValues(t, b, topic, "first", n)

	cfg := sarama.NewConfig()
	cfg.ClientID = "e2e-sarama-group"
	cfg.Version = sarama.V2_8_0_0
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 200 * time.Millisecond
	h := &saramaGroupHandler{seen: map[string]bool{}, want: n, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var groups []sarama.ConsumerGroup
	var wg sync.WaitGroup
	for range 2 {
		cg, err := sarama.NewConsumerGroup([]string{b.Addr()}, group, cfg)
		if err != nil {
			t.Fatalf("sarama.NewConsumerGroup: %v", err)
		}
		groups = append(groups, cg)
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
					t.Errorf("Consume: %v", err)
					return
				}
				select {
				case <-h.done:
					return
				default:
				}
			}
		})
	}
	select {
	case <-h.done:
	case <-ctx.Done():
		t.Fatalf("sarama group read %d of %d records", len(h.seen), n)
	}
	for _, cg := range groups {
		if err := cg.Close(); err != nil { // commits marked offsets, leaves
			t.Errorf("close: %v", err)
		}
	}
	cancel()
	wg.Wait()
	committedMatchesEnds(t, b, group, topic)
	b.Restart()
	committedMatchesEnds(t, b, group, topic)
}

// TestStaticMembershipRejoin: a static member (group.instance.id) that
// restarts within its session timeout gets its partitions back without a
// rebalance: the other member's partitions are never revoked.
func TestStaticMembershipRejoin(t *testing.T) {
	b := startStrata(t, groupFlags...)
	const topic, group = "static-groups", "static-group"
	b.createTopic(t, topic, 4, nil)
	var mu sync.Mutex
	revoked := map[string]int{}
	assigned := map[string][]map[string][]int32{}
	member := func(inst string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.InstanceID(inst), kgo.SessionTimeout(30*time.Second), kgo.Balancers(kgo.RangeBalancer()),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				mu.Lock()
				assigned[inst] = append(assigned[inst], m)
				mu.Unlock()
			}),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				if len(m[topic]) > 0 {
					mu.Lock()
					revoked[inst]++
					mu.Unlock()
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	poll := func(cl *kgo.Client) {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		cl.PollFetches(pctx)
		pcancel()
	}
	a, other := member("static-a"), member("static-b")
	defer other.Close()
	stable := func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, inst := range []string{"static-a", "static-b"} {
			if l := assigned[inst]; len(l) > 0 {
				n += len(l[len(l)-1][topic])
			}
		}
		la := assigned["static-a"]
		return n == 4 && len(la) > 0 && len(la[len(la)-1][topic]) == 2
	}
	for !stable() {
		if ctx.Err() != nil {
			t.Fatalf("group never settled: %v", assigned)
		}
		poll(a)
		poll(other)
	}
	mu.Lock()
	before := assigned["static-a"][len(assigned["static-a"])-1][topic]
	revokedBefore := revoked["static-b"]
	mu.Unlock()

	a.Close() // a static member does not leave the group on close
	a = member("static-a")
	defer a.Close()
	for {
		mu.Lock()
		n := len(assigned["static-a"])
		mu.Unlock()
		if n >= 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("restarted static member got no assignment")
		}
		poll(a)
		poll(other)
	}
	// Give a (wrong) rebalance time to show up at the other member.
	for range 20 {
		poll(other)
		poll(a)
	}
	mu.Lock()
	defer mu.Unlock()
	after := assigned["static-a"][len(assigned["static-a"])-1][topic]
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("restarted static member got %v, had %v", after, before)
	}
	if revoked["static-b"] != revokedBefore {
		t.Errorf("the other member's partitions were revoked %d times by the static rejoin", revoked["static-b"]-revokedBefore)
	}
}

// TestPythonGroupConsumers: confluent-kafka-python and kafka-python group
// consumers (two members each) read a whole topic and commit; after a
// broker restart the same group reads only what was produced since.
func TestPythonGroupConsumers(t *testing.T) {
	for _, client := range []struct{ name, module string }{{"confluent", "confluent_kafka"}, {"kafka-python", "kafka"}} {
		t.Run(client.name, func(t *testing.T) {
			requirePythonModules(t, client.module)
			b := startStrata(t, groupFlags...)
			topic, group := "py-groups-"+client.name, "py-group-"+client.name
			const n, more = 1000, 100
			b.createTopic(t, topic, 4, nil)
			produceValues(t, b, topic, "first", n)
			run := func(prefix string, count int) {
				t.Helper()
				out := runTool(t, nil, debianPython, "e2e/py/group_consume.py", "--bootstrap", b.Addr(), "--topic", topic,
					"--group", group, "--prefix", prefix, "--count", strconv.Itoa(count), "--client", client.name)
				t.Logf("group_consume.py: %s", out)
			}
			run("first-", n)
			committedMatchesEnds(t, b, group, topic)
			b.Restart()
			produceValues(t, b, topic, "second", more)
			run("second-", more)
			committedMatchesEnds(t, b, group, topic)
		})
	}
}

// TestConsumerOffsetsRecords reads __consumer_offsets as an ordinary topic
// and decodes its records with kmsg's schemas of Kafka's key and value
// formats (not the coordinator's code): the latest offset record per group
// and partition is what was committed, and a group metadata record names
// the group's protocol.
func TestConsumerOffsetsRecords(t *testing.T) {
	b := startStrata(t, append(groupFlags, "--offsets.topic.num.partitions=3")...)
	const topic, group = "offsets-records", "records-group"
	b.createTopic(t, topic, 2, nil)
	produceValues(t, b, topic, "v", 10)
	cl := b.kgoClient(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for got := 0; got < 10; {
		got += cl.PollFetches(ctx).NumRecords()
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	want := b.endOffsets(t, topic)

	committed := map[int32]int64{}
	var protocol string
	for _, recs := range b.consumeAll(t, "__consumer_offsets") {
		for _, r := range recs {
			if len(r.Key) < 2 {
				t.Fatalf("record with a %d-byte key", len(r.Key))
			}
			switch version := int16(r.Key[0])<<8 | int16(r.Key[1]); version {
			case 0, 1:
				var k kmsg.OffsetCommitKey
				if err := k.ReadFrom(r.Key); err != nil {
					t.Fatalf("offset key: %v", err)
				}
				if k.Group != group || k.Topic != topic || r.Value == nil {
					continue
				}
				var v kmsg.OffsetCommitValue
				if err := v.ReadFrom(r.Value); err != nil {
					t.Fatalf("offset value: %v", err)
				}
				committed[k.Partition] = v.Offset
			case 2:
				var k kmsg.GroupMetadataKey
				if err := k.ReadFrom(r.Key); err != nil {
					t.Fatalf("group key: %v", err)
				}
				if k.Group != group || r.Value == nil {
					continue
				}
				var v kmsg.GroupMetadataValue
				if err := v.ReadFrom(r.Value); err != nil {
					t.Fatalf("group value: %v", err)
				}
				if v.ProtocolType != "consumer" || v.Protocol == nil {
					t.Fatalf("group metadata %+v", v)
				}
				protocol = *v.Protocol
			default:
				t.Fatalf("key version %d", version)
			}
		}
	}
	if fmt.Sprint(committed) != fmt.Sprint(want) {
		t.Fatalf("offset records say %v, end offsets are %v", committed, want)
	}
	if protocol == "" {
		t.Fatal("no group metadata record for the group")
	}
}

// kafkaJSChurnSummary is the JSON summary e2e/js/group_churn.js prints.
type kafkaJSChurnSummary struct {
	Produced    int // records the script produced
	Distinct    int // distinct records processed
	Processed   int // records processed, counting each time
	Duplicates  int // records processed again after a rebalance
	Rebalancing int // times a member heard of a rebalance
	Crashes     int // consumer crashes kafkajs restarted from
	Members     []struct {
		Name      string
		Processed int
		Joins     int
	}
	Timeline []string
}

// TestKafkaJSGroupChurn: a group of three kafkajs consumers on a 6-partition
// topic; one leaves, one joins, while records are produced all along. Every
// produced record is processed (records processed again come only from the
// rebalance windows: none had been committed), the commits survive a broker
// restart, and the group resumes from the committed offsets.
func TestKafkaJSGroupChurn(t *testing.T) {
	node := requireKafkaJS(t)
	b := startStrata(t, groupFlags...)
	const topic, group, n, more = "kafkajs-churn", "kafkajs-churn-group", 3000, 300
	b.createTopic(t, topic, 6, nil)
	out := runTool(t, nil, node, "e2e/js/group_churn.js", b.Addr(), topic, group, "churn-", strconv.Itoa(n))
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	var s kafkaJSChurnSummary
	if err := json.Unmarshal(lines[len(lines)-1], &s); err != nil {
		t.Fatalf("group_churn.js summary: %v\n%s", err, out)
	}
	t.Logf("group_churn.js: produced %d, processed %d distinct, %d in all (%d again after a rebalance), %d rebalance notices, %d crashes; members %+v; timeline:\n  %s",
		s.Produced, s.Distinct, s.Processed, s.Duplicates, s.Rebalancing, s.Crashes, s.Members, strings.Join(s.Timeline, "\n  "))
	if s.Produced != n || s.Distinct != n {
		t.Fatalf("group_churn.js produced %d and processed %d distinct records, want %d", s.Produced, s.Distinct, n)
	}
	processedBy := map[string]int{}
	for _, m := range s.Members {
		processedBy[m.Name] = m.Processed
	}
	for _, m := range []string{"member-2", "member-4"} { // the one that left, the one that joined
		if processedBy[m] == 0 {
			t.Errorf("%s processed no record", m)
		}
	}
	// The log holds every value once: what the group processed is all there is.
	values := map[string]bool{}
	for _, recs := range b.consumeAll(t, topic) {
		for _, r := range recs {
			values[string(r.Value)] = true
		}
	}
	for i := range n {
		if !values["churn-"+strconv.Itoa(i)] {
			t.Fatalf("churn-%d is not in %s", i, topic)
		}
	}
	if len(values) != n {
		t.Fatalf("%s holds %d distinct values, want %d", topic, len(values), n)
	}
	committedMatchesEnds(t, b, group, topic)

	b.Restart()
	committedMatchesEnds(t, b, group, topic) // loaded back from __consumer_offsets
	produceValues(t, b, topic, "second", more)
	out = runTool(t, nil, node, "e2e/js/group.js", b.Addr(), topic, group, "second-", strconv.Itoa(more), "3")
	t.Logf("group.js after restart: %s", out)
	committedMatchesEnds(t, b, group, topic)
}
