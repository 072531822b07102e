package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stratalog/strata/internal/harness"
)

// threeNodes is a cluster of three `strata serve` processes on 127.0.0.1,
// each a broker and a voter of the controller quorum, started as the
// README's three-node recipe does (flags differing only in ids and ports).
type threeNodes struct {
	t     *testing.T
	nodes []*strataProc
}

func startThreeNodes(t *testing.T, extraFlags ...string) *threeNodes {
	t.Helper()
	ports, err := harness.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	var voters []string
	for i, p := range ports {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", i+1, p))
	}
	c := &threeNodes{t: t}
	for i, p := range ports {
		args := append([]string{fmt.Sprintf("--node-id=%d", i+1), fmt.Sprintf("--controller-listen=127.0.0.1:%d", p),
			"--controller-quorum=" + strings.Join(voters, ",")}, extraFlags...)
		c.nodes = append(c.nodes, &strataProc{Broker: harness.New(t, harness.Options{Args: args, StopTimeout: stopTimeout}), t: t})
	}
	c.startAll()
	return c
}

// startAll starts every node at once: none is ready before a majority of
// the quorum runs.
func (c *threeNodes) startAll() {
	c.t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(c.nodes))
	for i, n := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = n.Start() }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			c.t.Fatalf("node %d: %v", i+1, err)
		}
	}
}

func (c *threeNodes) stopAll() {
	c.t.Helper()
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.Stop() }()
	}
	wg.Wait()
}

// waitTopic waits until every node's Metadata lists topic with n
// partitions, each with a leader, and returns the leaders' counts.
func (c *threeNodes) waitTopic(ctx context.Context, topic string, n int) map[int32]int {
	c.t.Helper()
	var leaders map[int32]int
	for i, node := range c.nodes {
		adm := kadm.NewClient(node.kgoClient(c.t))
		for {
			md, err := adm.Metadata(fresh(ctx), topic)
			if err != nil {
				c.t.Fatalf("node %d: Metadata: %v", i+1, err)
			}
			td := md.Topics[topic]
			led := map[int32]int{}
			for _, p := range td.Partitions {
				if p.Leader >= 0 && p.Err == nil {
					led[p.Leader]++
				}
			}
			total := 0
			for _, k := range led {
				total += k
			}
			if td.Err == nil && len(td.Partitions) == n && total == n && len(md.Brokers) == len(c.nodes) {
				leaders = led
				break
			}
			select {
			case <-ctx.Done():
				c.t.Fatalf("node %d: %s not fully led: %v partitions, leaders %v, %d brokers (%v)", i+1, topic, len(td.Partitions), led, len(md.Brokers), td.Err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return leaders
}

// TestThreeNodeCluster: three processes form a quorum; a topic created
// through node 2 with 12 partitions gets leaders on all three; franz-go,
// kcat and kafka-python, each bootstrapped from a single node, produce to
// every partition and read every record back byte-exact (through another
// node); all three stopped and started again, the topic, its config and
// every record are back.
func TestThreeNodeCluster(t *testing.T) {
	t.Parallel()
	c := startThreeNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	retention := "7200000"
	c.nodes[1].createTopic(t, "spread", 12, map[string]*string{"retention.ms": &retention})
	if leaders := c.waitTopic(ctx, "spread", 12); len(leaders) != 3 {
		t.Errorf("leaders of the 12 partitions: %v; want all three nodes", leaders)
	}

	prod := c.nodes[2].kgoClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("spread"))
	const per = 25
	for p := int32(0); p < 12; p++ {
		for i := 0; i < per; i++ {
			r := &kgo.Record{Partition: p, Key: []byte(fmt.Sprint(i)), Value: recValue(fmt.Sprintf("spread-%d", p), i)}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce to partition %d: %v", p, err)
			}
		}
	}
	readAll := func(from *strataProc) {
		t.Helper()
		ends := map[int32]int64{}
		for p := int32(0); p < 12; p++ {
			ends[p] = per
		}
		if err := consumeStream(ctx, from.Addr(), "spread", ends, func(r *kgo.Record) error {
			if want := recValue(fmt.Sprintf("spread-%d", r.Partition), int(r.Offset)); string(r.Value) != string(want) {
				return fmt.Errorf("partition %d offset %d: %q, want %q", r.Partition, r.Offset, r.Value, want)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	readAll(c.nodes[0])

	// kcat (librdkafka) bootstrapped from node 1 produces keyed lines to
	// every partition and reads each partition back from node 2.
	kcat := requireCommand(t, "kcat")
	c.nodes[1].createTopic(t, "spread-kcat", 12, nil)
	c.waitTopic(ctx, "spread-kcat", 12)
	for p := 0; p < 12; p++ {
		var lines strings.Builder
		for i := 0; i < 10; i++ {
			fmt.Fprintf(&lines, "k%d-%d:v%d-%d\n", p, i, p, i)
		}
		runTool(t, strings.NewReader(lines.String()), kcat, "-P", "-b", c.nodes[0].Addr(), "-t", "spread-kcat", "-p", fmt.Sprint(p), "-K:", "-X", "acks=all")
	}
	for p := int32(0); p < 12; p++ {
		n, err := kcatStream(ctx, kcat, c.nodes[1].Addr(), "spread-kcat", p, func(off int64, key, value []byte) error {
			if want := fmt.Sprintf("k%d-%d", p, off); string(key) != want || string(value) != fmt.Sprintf("v%d-%d", p, off) {
				return fmt.Errorf("offset %d: %q %q", off, key, value)
			}
			return nil
		})
		if err != nil || n != 10 {
			t.Fatalf("kcat partition %d: %d messages, %v", p, n, err)
		}
	}

	// kafka-python bootstrapped from node 3 (its script checks values and
	// offsets), then franz-go reads the topic again.
	requirePythonModules(t, "kafka")
	c.nodes[0].createTopic(t, "spread-kp-none", 12, nil)
	c.waitTopic(ctx, "spread-kp-none", 12)
	out := runTool(t, nil, debianPython, "e2e/py/kafka_python_roundtrip.py",
		"--bootstrap", c.nodes[2].Addr(), "--topic-prefix", "spread-kp", "--codecs", "none", "--count", "1200")
	t.Logf("kafka_python_roundtrip.py: %s", out)
	checkRecValues(t, "spread-kp-none", "kp-none", 1200, c.nodes[1].consumeAll(t, "spread-kp-none"))

	c.stopAll()
	c.startAll()
	c.waitTopic(ctx, "spread", 12)
	readAll(c.nodes[1])
	rcs, err := kadm.NewClient(c.nodes[2].kgoClient(t)).DescribeTopicConfigs(ctx, "spread")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("spread", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range rc.Configs {
		if cfg.Key == "retention.ms" && cfg.MaybeValue() != retention {
			t.Errorf("retention.ms after the restart: %q, want %s", cfg.MaybeValue(), retention)
		}
	}
}

// activeController asks node n which node is the active controller.
func (c *threeNodes) activeController(ctx context.Context, n int) int32 {
	c.t.Helper()
	md, err := kadm.NewClient(c.nodes[n].kgoClient(c.t)).Metadata(fresh(ctx))
	if err != nil {
		c.t.Fatalf("node %d: Metadata: %v", n+1, err)
	}
	return md.Controller
}

// TestClusterKills: kill -9 of a broker: the partitions it led (one
// replica each) answer LEADER_NOT_AVAILABLE, never an empty log, while
// the others keep taking records; once it is back, every record is there
// at its offset. kill -9 of the active controller: another is elected, a
// CreateTopics sent right after succeeds with nothing lost, and the
// killed node rejoins.
func TestClusterKills(t *testing.T) {
	t.Parallel()
	c := startThreeNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*opTimeout)
	defer cancel()
	c.nodes[0].createTopic(t, "kills", 6, nil)
	c.waitTopic(ctx, "kills", 6)
	prod := c.nodes[0].kgoClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("kills"))
	produce := func(p int32, i int) error {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		defer pcancel()
		return prod.ProduceSync(pctx, &kgo.Record{Partition: p, Value: recValue(fmt.Sprintf("kills-%d", p), i)}).FirstErr()
	}
	for p := int32(0); p < 6; p++ {
		for i := 0; i < 10; i++ {
			if err := produce(p, i); err != nil {
				t.Fatal(err)
			}
		}
	}

	// kill -9 of a broker that is not the active controller.
	active := c.activeController(ctx, 0)
	victim := int32(1)
	for victim == active {
		victim++
	}
	adm := kadm.NewClient(c.nodes[(int(victim))%3].kgoClient(t)) // a survivor
	md, err := adm.Metadata(fresh(ctx), "kills")
	if err != nil {
		t.Fatal(err)
	}
	var lost, kept []int32
	for _, p := range md.Topics["kills"].Partitions {
		if p.Leader == victim {
			lost = append(lost, p.Partition)
		} else {
			kept = append(kept, p.Partition)
		}
	}
	if len(lost) == 0 || len(kept) == 0 {
		t.Fatalf("placement: node %d leads %v, the others %v", victim, lost, kept)
	}
	c.nodes[victim-1].Kill()
	for {
		md, err := adm.Metadata(fresh(ctx), "kills")
		if err != nil {
			t.Fatal(err)
		}
		unavailable := 0
		for _, p := range md.Topics["kills"].Partitions {
			if errors.Is(p.Err, kerr.LeaderNotAvailable) && p.Leader == -1 {
				unavailable++
			}
		}
		if unavailable == len(lost) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the killed broker's %d partitions never became LEADER_NOT_AVAILABLE", len(lost))
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, p := range kept {
		if err := produce(p, 10); err != nil {
			t.Fatalf("partition %d, led by a survivor: %v", p, err)
		}
	}
	if err := c.nodes[victim-1].Start(); err != nil {
		t.Fatal(err)
	}
	c.waitTopic(ctx, "kills", 6)
	ends := map[int32]int64{}
	for p := int32(0); p < 6; p++ {
		ends[p] = 10
	}
	for _, p := range kept {
		ends[p] = 11
	}
	if err := consumeStream(ctx, c.nodes[0].Addr(), "kills", ends, func(r *kgo.Record) error {
		if want := recValue(fmt.Sprintf("kills-%d", r.Partition), int(r.Offset)); string(r.Value) != string(want) {
			return fmt.Errorf("partition %d offset %d: %q, want %q", r.Partition, r.Offset, r.Value, want)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// kill -9 of the active controller.
	active = c.activeController(ctx, 0)
	if active < 1 {
		t.Fatalf("no active controller named: %d", active)
	}
	c.nodes[active-1].Kill()
	survivor := c.nodes[int(active)%3]
	survivor.createTopic(t, "after-failover", 3, nil)
	if got := c.activeController(ctx, int(active)%3); got == active || got < 1 {
		t.Errorf("active controller after the failover: %d (killed %d)", got, active)
	}
	if err := c.nodes[active-1].Start(); err != nil {
		t.Fatalf("the killed controller's node does not rejoin: %v", err)
	}
	// Nothing lost: both topics, fully led, on every node (the rejoined
	// one included).
	c.waitTopic(ctx, "after-failover", 3)
	c.waitTopic(ctx, "kills", 6)
}

// fresh makes kadm's Metadata ask the broker instead of answering from
// franz-go's metadata cache (up to 5 s old), by asking for authorized
// operations too.
func fresh(ctx context.Context) context.Context { return kadm.WithAuthorizedOps(ctx) }
