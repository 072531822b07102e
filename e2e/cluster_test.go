package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
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
			md, err := adm.Metadata(ctx, topic)
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
			default:
			}
		}
	}
	return leaders
}

// TestThreeNodeCluster: three processes form a quorum; a topic created
// through node 2 with 12 partitions gets leaders on all three; franz-go,
// bootstrapped from one node, produces to every partition and another
// reads every record back byte-exact; all three stopped and started
// again, the topic, its config and every record are back.
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
