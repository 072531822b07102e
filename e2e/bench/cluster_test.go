package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stratalog/strata/internal/harness"
)

const (
	propagationTrials = 50
	failoverTrials    = 10
	// Targets (issue 10), reported, never failed.
	propagationP99Target = 500 * time.Millisecond
	failoverP50Target    = 2 * time.Second
	failoverMaxTarget    = 5 * time.Second
)

// BenchmarkCluster measures a three-node cluster of real `strata serve`
// processes on 127.0.0.1 (each a broker and a controller voter):
//   - metadata propagation: CreateTopics answered at node 1 → the topic,
//     fully led, in Metadata at node 3 (50 trials, p50 and p99);
//   - controller failover: kill -9 of the active controller → the next
//     successful CreateTopics at a survivor (10 trials, p50 and max; the
//     killed node is restarted between trials).
//
// The limit beside them is the data directory disk's fsync latency: every
// metadata commit is a Raft log append that a majority fsyncs.
func BenchmarkCluster(b *testing.B) {
	loadAtStart := loadAvg()
	work := b.TempDir()
	pool := make([]byte, 1<<20)
	rand.Read(pool)
	syncLat, err := measureSyncLatency(work, pool, 1, 1)
	if err != nil {
		b.Fatalf("sync-latency limit: %v", err)
	}
	syncQ, _ := syncLat.quantiles(0.5, 0.99)

	ports, err := harness.FreePorts(3)
	if err != nil {
		b.Fatal(err)
	}
	var voters []string
	for i, p := range ports {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", i+1, p))
	}
	nodes := make([]*harness.Broker, 3)
	for i, p := range ports {
		nodes[i] = harness.New(b, harness.Options{DataDir: filepath.Join(work, fmt.Sprint("node", i+1)), Args: []string{
			fmt.Sprintf("--node-id=%d", i+1), fmt.Sprintf("--controller-listen=127.0.0.1:%d", p),
			"--controller-quorum=" + strings.Join(voters, ","), "--object-store=none"}})
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.Start(); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	client := func(n *harness.Broker) *kadm.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(cl.Close)
		return kadm.NewClient(cl)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	b.ResetTimer()
	// Metadata propagation.
	first, third := client(nodes[0]), client(nodes[2])
	var prop latencies
	for i := range propagationTrials {
		topic := fmt.Sprintf("propagation-%d", i)
		if _, err := first.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
			b.Fatalf("create %s: %v", topic, err)
		}
		answered := time.Now()
		for {
			md, err := third.Metadata(fresh(ctx), topic)
			if err != nil {
				b.Fatal(err)
			}
			if td := md.Topics[topic]; td.Err == nil && len(td.Partitions) == 3 && allLed(td) {
				break
			}
			if ctx.Err() != nil {
				b.Fatalf("%s never reached node 3", topic)
			}
			time.Sleep(time.Millisecond)
		}
		prop.add(time.Since(answered))
	}

	// Controller failover.
	var fail latencies
	for i := range failoverTrials {
		md, err := first.Metadata(fresh(ctx))
		if err != nil {
			b.Fatal(err)
		}
		active := int(md.Controller)
		if active < 1 || active > 3 {
			b.Fatalf("no active controller known: %d", active)
		}
		survivor := nodes[active%3]
		adm := client(survivor)
		killed := time.Now()
		nodes[active-1].Kill()
		topic := fmt.Sprintf("failover-%d", i)
		for {
			tctx, tcancel := context.WithTimeout(ctx, 10*time.Second)
			resp, err := adm.CreateTopic(tctx, 1, 1, nil, topic)
			tcancel()
			if err == nil && resp.Err == nil {
				break
			}
			if ctx.Err() != nil {
				b.Fatalf("no CreateTopics after the failover: %v %v", err, resp.Err)
			}
		}
		fail.add(time.Since(killed))
		if err := nodes[active-1].Start(); err != nil {
			b.Fatalf("restart node %d: %v", active, err)
		}
		first = client(nodes[0])
	}
	b.StopTimer()

	pq, n := prop.quantiles(0.5, 0.99)
	fq, fn := fail.quantiles(0.5, 1)
	fmt.Printf("cluster: 3 nodes (broker + controller each) on 127.0.0.1; limit: data-disk fsync latency p50 %s, p99 %s\n", syncQ[0], syncQ[1])
	fmt.Printf("  metadata propagation (CreateTopics answered at node 1 → fully led in Metadata at node 3), %d trials: p50 %s, p99 %s (target p99 ≤ %s%s)\n",
		n, pq[0], pq[1], propagationP99Target, missed(pq[1] > propagationP99Target))
	fmt.Printf("  controller failover (kill -9 of the active controller → next successful CreateTopics), %d trials: p50 %s, max %s (target p50 ≤ %s, max ≤ %s%s)\n",
		fn, fq[0], fq[1], failoverP50Target, failoverMaxTarget, missed(fq[0] > failoverP50Target || fq[1] > failoverMaxTarget))
	fmt.Printf("load average (1, 5, 15 min): %s at the start, %s at the end\n", loadAtStart, loadAvg())
}

func allLed(td kadm.TopicDetail) bool {
	for _, p := range td.Partitions {
		if p.Leader < 0 || p.Err != nil {
			return false
		}
	}
	return true
}

func missed(m bool) string {
	if m {
		return "; MISSED"
	}
	return ""
}

// fresh makes kadm's Metadata ask the broker instead of answering from
// franz-go's metadata cache (up to 5 s old).
func fresh(ctx context.Context) context.Context { return kadm.WithAuthorizedOps(ctx) }
