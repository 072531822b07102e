package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stratalog/strata/controller"
	"github.com/stratalog/strata/controller/metadata"
	"github.com/stratalog/strata/controller/quorum"
	"github.com/stratalog/strata/topicconfig"
)

// Three brokers in this process, each with its controller-quorum member,
// over TCP on 127.0.0.1: the cluster a real three-node deployment runs,
// with franz-go as the client.

type testCluster struct {
	t       *testing.T
	brokers map[metadata.BrokerID]*Broker
	addrs   map[metadata.BrokerID]string
}

func startTestCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	var voters []controller.Voter
	ctrl := map[metadata.BrokerID]net.Listener{}
	for i := 1; i <= n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		id := metadata.BrokerID(i)
		ctrl[id] = ln
		voters = append(voters, controller.Voter{ID: id, Addr: ln.Addr().String()})
	}
	c := &testCluster{t: t, brokers: map[metadata.BrokerID]*Broker{}, addrs: map[metadata.BrokerID]string{}}
	quorums := map[metadata.BrokerID]*quorum.Quorum{}
	for _, v := range voters {
		mc := controller.DefaultMachineConfig()
		mc.Seed = uint64(v.ID)
		q, err := quorum.Start(quorum.Config{
			NodeID: v.ID, Dir: filepath.Join(t.TempDir(), "metadata"), Voters: voters, Controller: true, Listener: ctrl[v.ID],
			Tuning:  controller.Tuning{HeartbeatTimeout: 200 * time.Millisecond, CommitTimeout: 10 * time.Millisecond},
			Machine: mc, Logger: log,
			Bootstrap: func(context.Context) ([]metadata.Record, error) {
				return []metadata.Record{&metadata.Bootstrap{ClusterID: "three-in-one"}}, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		quorums[v.ID] = q
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			q.Close(ctx)
		})
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, v := range voters {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := New(Config{
				NodeID: int32(v.ID), Listen: ln.Addr().String(), Advertise: ln.Addr().String(), DataDir: t.TempDir(),
				SocketRequestMaxBytes: 100 << 20, ConnectionsMaxIdle: 10 * time.Minute, MaxInFlightPerConnection: 100,
				NumPartitions: 1, DefaultReplicationFactor: 1, MaxIncrementalFetchSessions: 100, RetentionCheckInterval: time.Hour,
				TopicDefaults: topicconfig.Default(), Group: GroupConfig{OffsetsTopicNumPartitions: 6, InitialRebalanceDelay: -1},
				Cluster: ClusterConfig{Quorum: quorums[v.ID], HeartbeatInterval: 100 * time.Millisecond}, Logger: log,
			})
			if err != nil {
				errs <- fmt.Errorf("broker %d: %w", v.ID, err)
				ln.Close()
				return
			}
			go b.Serve(ln)
			mu.Lock()
			c.brokers[v.ID], c.addrs[v.ID] = b, ln.Addr().String()
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, b := range c.brokers {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			b.Shutdown(ctx)
			cancel()
		}
	})
	return c
}

func (c *testCluster) client(id metadata.BrokerID, opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.addrs[id])}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// TestThreeBrokers: a topic created through one broker gets its 12
// partitions led by all three (placement spreads them); franz-go,
// bootstrapped from a single broker, produces to every partition and
// reads every record back byte-exact from the leaders; every broker
// answers Metadata and DescribeCluster alike; a group's offsets commit
// at its coordinator, wherever it is.
func TestThreeBrokers(t *testing.T) {
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(c.client(2))
	if _, err := adm.CreateTopic(ctx, 12, 1, nil, "spread"); err != nil {
		t.Fatalf("create through broker 2: %v", err)
	}
	leaders := map[int32]int{}
	for id := metadata.BrokerID(1); id <= 3; id++ {
		// Every broker follows the metadata log within a heartbeat.
		waitFor(t, fmt.Sprintf("broker %d to know the topic", id), func() bool { return c.brokers[id].topics.get("spread") != nil })
		md, err := kadm.NewClient(c.client(id)).Metadata(ctx, "spread")
		if err != nil {
			t.Fatal(err)
		}
		if len(md.Brokers) != 3 || md.Controller < 1 {
			t.Errorf("broker %d's Metadata: %d brokers, controller %d", id, len(md.Brokers), md.Controller)
		}
		td := md.Topics["spread"]
		if len(td.Partitions) != 12 {
			t.Fatalf("broker %d sees %d partitions", id, len(td.Partitions))
		}
		if id == 1 {
			for _, p := range td.Partitions {
				leaders[p.Leader]++
			}
		}
	}
	if len(leaders) != 3 {
		t.Errorf("leaders of the 12 partitions: %v; want all three brokers", leaders)
	}

	prod := c.client(3, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("spread"))
	const per = 20
	for p := int32(0); p < 12; p++ {
		for i := 0; i < per; i++ {
			r := &kgo.Record{Partition: p, Value: []byte(fmt.Sprintf("spread-%d-%d", p, i))}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce to partition %d: %v", p, err)
			}
			if r.Offset != int64(i) {
				t.Fatalf("partition %d record %d at offset %d", p, i, r.Offset)
			}
		}
	}
	offsets := map[string]map[int32]kgo.Offset{"spread": {}}
	for p := int32(0); p < 12; p++ {
		offsets["spread"][p] = kgo.NewOffset().AtStart()
	}
	cons := c.client(1, kgo.ConsumePartitions(offsets))
	got := 0
	for got < 12*per {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v (after %d records)", err, got)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("spread-%d-%d", r.Partition, r.Offset); string(r.Value) != want {
				t.Errorf("partition %d offset %d: %q, want %q", r.Partition, r.Offset, r.Value, want)
			}
			got++
		})
	}

	// A broker that is not the active controller forwards every admin
	// change over the controller listener (forward.go).
	var follower *Broker
	for _, b := range c.brokers {
		if !b.quorum.Driver.Active() {
			follower = b
			break
		}
	}
	if _, err := follower.topics.create("forwarded", 2, map[string]*string{"retention.ms": ptrTo("60000")}); err != nil {
		t.Fatalf("create through a follower: %v", err)
	}
	if err := follower.topics.addPartitions("forwarded", 4, false); err != nil {
		t.Fatalf("add partitions through a follower: %v", err)
	}
	if err := follower.topics.alterConfig("forwarded", false, func(_ topicconfig.Config, o map[string]string) error {
		o["retention.ms"] = "120000"
		return nil
	}); err != nil {
		t.Fatalf("alter configs through a follower: %v", err)
	}
	if ft := follower.topics.get("forwarded"); ft == nil || len(ft.partitions) != 4 || ft.overrides["retention.ms"] != "120000" {
		t.Fatalf("forwarded topic at the follower: %+v", ft)
	}
	if _, err := follower.topics.create("forwarded", 1, nil); err == nil {
		t.Error("creating it again through a follower succeeded")
	} else if code, _ := adminErrorCode(err); code != kerr.TopicAlreadyExists.Code {
		t.Errorf("creating it again through a follower: %v, want TOPIC_ALREADY_EXISTS", err)
	}
	if err := follower.topics.deleteTopic(follower.topics.get("forwarded")); err != nil || follower.topics.get("forwarded") != nil {
		t.Fatalf("delete through a follower: %v", err)
	}

	commit := kadm.Offsets{}
	commit.AddOffset("spread", 3, 7, -1)
	if resp, err := adm.CommitOffsets(ctx, "spread-group", commit); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	fetched, err := kadm.NewClient(c.client(1)).FetchOffsets(ctx, "spread-group")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup("spread", 3); !ok || o.At != 7 {
		t.Errorf("committed offset: %+v (found %v), want 7", o, ok)
	}
}

func ptrTo(s string) *string { return &s }
