package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/broker/group"
	"github.com/stratalog/strata/internal/harness"
)

// Targets from issue 3 ("Consumer groups") for the 2-core development
// machine.
const (
	// targetRebalanceExcess: a rebalance may take at most this long beyond
	// the clients' own delays (rebalanceSamples.delay).
	targetRebalanceExcess = time.Second
	// targetCommitsPerSec: partition offsets committed per second on one
	// coordinator, each durable before its response.
	targetCommitsPerSec = 50000.0
)

const (
	groupTopic      = "strata-bench-groups"
	groupPartitions = 100
	groupMembers    = 10 // members consuming before each join
	// groupHeartbeat is the members' heartbeat interval. A member learns
	// that a rebalance started from its next heartbeat's
	// REBALANCE_IN_PROGRESS, so each rebalance round can wait this long on
	// the clients.
	groupHeartbeat = 100 * time.Millisecond
	// groupTick: the background producer writes one record to every
	// partition per tick (100 partitions / 50 ms = 2,000 records/s). A
	// member has "fetched again" when it receives a record of its new
	// partitions, so that check can wait up to one tick for the next record.
	groupTick = 50 * time.Millisecond
	// rebalanceReps: each rebalance (join, leave) is measured this often
	// per balancer.
	rebalanceReps = 5
	// groupRebalanceTimeout is the members' rebalance timeout (kgo's
	// default is 60 s); rebalanceGuard bounds the wait for one rebalance to
	// settle. Both are hang guards only.
	groupRebalanceTimeout = 30 * time.Second
	rebalanceGuard        = 45 * time.Second

	// OffsetCommit load: commitWorkers goroutines, each with one request in
	// flight, share commitConns clients (one connection each to the
	// coordinator, pipelined).
	commitConns   = 8
	commitWorkers = 64
)

// BenchmarkGroups measures the group coordinator of a real `strata serve`:
// rebalance time with franz-go consumers (eager range and
// cooperative-sticky), and durable OffsetCommit throughput. One iteration
// is the measurement (run with -benchtime 1x). Missed targets are
// reported, never failed; a client or broker error fails the benchmark.
func BenchmarkGroups(b *testing.B) {
	seconds := envInt(b, envSeconds, 15)
	dur := time.Duration(seconds) * time.Second
	loadAtStart := loadAvg()
	work := b.TempDir()
	dataDir := filepath.Join(work, "data")

	// The floor under every durable commit: one append + fdatasync on the
	// data directory's disk, measured before the broker competes for it.
	pool := make([]byte, 1<<20)
	rand.Read(pool)
	syncLat, err := measureSyncLatency(limitFileDir(dataDir), pool, 1, 1)
	if err != nil {
		b.Fatalf("sync-latency limit: %v", err)
	}
	syncQ, _ := syncLat.quantiles(0.5, 0.99)

	br, ctx, brokerFailed := startBenchBroker(b, dataDir)
	setupCtx, setupCancel := context.WithTimeout(ctx, 30*time.Second)
	offsetsParts, err := setupGroupTopic(setupCtx, br.Addr())
	setupCancel()
	if err != nil {
		brokerFailed("%v", err)
	}

	// Rebalances, with the background producer running throughout.
	prod, err := startTicker(ctx, br.Addr())
	if err != nil {
		b.Fatal(err)
	}
	modes := []rebalanceMode{
		{name: "eager range", group: "strata-bench-rebalance-range", balancer: kgo.RangeBalancer()},
		{name: "cooperative-sticky", group: "strata-bench-rebalance-coop", balancer: kgo.CooperativeStickyBalancer()},
	}
	rebalances := make([]rebalanceResult, len(modes))
	for i, m := range modes {
		rebalances[i], err = runRebalances(ctx, br.Addr(), m)
		if err != nil {
			prod.stop()
			brokerFailed("rebalance, %s: %v", m.name, err)
		}
	}
	produced, err := prod.stop()
	if err != nil {
		brokerFailed("background producer: %v", err)
	}

	// OffsetCommit throughput: a group per client with 1, then 10
	// partitions per request, then one group shared by all clients.
	cpu := newCPUMeter(br)
	var commits []commitResult
	var commitCPU []cpuShare
	for _, load := range []commitLoad{{perRequest: 1}, {perRequest: 10}, {perRequest: 1, shared: true}} {
		fsyncsBefore := fsyncCount(br)
		cpu.lap()
		phaseCtx, phaseCancel := context.WithTimeout(ctx, dur+2*time.Minute)
		res, err := runCommits(phaseCtx, br.Addr(), load, dur)
		phaseCancel()
		commitCPU = append(commitCPU, cpu.lap())
		if err != nil {
			brokerFailed("OffsetCommit, %s: %v", load, err)
		}
		res.fsyncs = -1
		if before, after := fsyncsBefore, fsyncCount(br); before >= 0 && after >= before {
			res.fsyncs = after - before
		}
		commits = append(commits, res)
	}

	if err := br.Stop(); err != nil {
		brokerFailed("stop: %v", err)
	}

	w := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintf(w, "\nStrata group benchmark — %d CPUs (GOMAXPROCS %d), %s, %d s per OffsetCommit phase, data dir %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOARCH, seconds, dataDir)
	fmt.Fprintln(w, "figure\tvalue\tmachine limit / client delays\tratio / beyond delays\ttarget\tverdict")
	fmt.Fprintf(w, "sync latency limit p50 / p99 (16 KiB append + fdatasync)\t%s / %s\t\t\t\t\n", ms(syncQ[0]), ms(syncQ[1]))
	for i, m := range modes {
		for _, ev := range []struct {
			what string
			s    rebalanceSamples
		}{
			{fmt.Sprintf("member %d joins %d", groupMembers+1, groupMembers), rebalances[i].join},
			{fmt.Sprintf("it leaves (%d → %d)", groupMembers+1, groupMembers), rebalances[i].leave},
		} {
			took, _ := quantilesOf(ev.s.took, 0.5, 1)
			excess, n := quantilesOf(ev.s.excess, 0.5, 1)
			fmt.Fprintf(w, "rebalance, %s, %s: median / max of %d\t%s / %s\t%s\t%s / %s\t≤ delays + %s\t%s\n",
				m.name, ev.what, n, ms0(took[0]), ms0(took[1]), ev.s.delayText(), signedMs(excess[0]), signedMs(excess[1]),
				targetRebalanceExcess, verdict(excess[1] <= targetRebalanceExcess))
		}
	}
	for _, c := range commits {
		limit := c.ceiling(syncQ[0])
		q, _ := c.lat.quantiles(0.5, 0.99)
		fmt.Fprintf(w, "OffsetCommit, %d clients, %s\t%.0f commits/s\t%.0f /s (in flight / sync p50)\t%.2f\t≥ %.0f commits/s\t%s\n",
			commitWorkers, c.load, c.rate(), limit, c.rate()/limit, targetCommitsPerSec, verdict(c.rate() >= targetCommitsPerSec))
		fmt.Fprintf(w, "  OffsetCommit request p50 / p99\t%s / %s\t%s / %s\t%.1f / %.1f\t\t\n",
			ms(q[0]), ms(q[1]), ms(syncQ[0]), ms(syncQ[1]), ratio(q[0], syncQ[0]), ratio(q[1], syncQ[1]))
	}
	w.Flush()
	fmt.Printf("rebalance: %d-partition topic, %d members consuming (heartbeat %v, AtEnd, no commits); a rebalance is timed from the\n"+
		"  join (kgo.NewClient) or leave (Close) call until every member owns its partitions and has received a record of each\n"+
		"  since; client delays = one heartbeat interval per rebalance round (the generations it took) + one %v producer tick,\n"+
		"  an upper bound (a heartbeat or the next record is half that away on average), so a time below it is possible.\n"+
		"  The coordinator adds no timer to a non-empty group (group.initial.rebalance.delay.ms applies only to an empty one):\n"+
		"  a round completes when every member has rejoined, and SyncGroup answers once the group record is fsynced.\n"+
		"  Background producer: %d records acknowledged.\n", groupPartitions, groupMembers, groupHeartbeat, groupTick, produced)
	for i, m := range modes {
		fmt.Printf("  %s: joins %s; leaves %s\n", m.name, rebalances[i].join, rebalances[i].leave)
	}
	for i, c := range commits {
		perFsync := "unknown"
		if c.fsyncs > 0 {
			perFsync = fmt.Sprintf("%.0f fsyncs/s, %.1f commits (%.2f requests) per fsync",
				float64(c.fsyncs)/c.elapsed.Seconds(), float64(c.commits)/float64(c.fsyncs), float64(c.requests)/float64(c.fsyncs))
		}
		fmt.Printf("OffsetCommit, %s: %d commits in %d requests over %.1f s; %d simple group(s) on %d of %d __consumer_offsets partitions;\n"+
			"  broker: %s; every group's offsets read back with OffsetFetch equal the last commits acknowledged\n",
			c.load, c.commits, c.requests, c.elapsed.Seconds(), len(c.groups), c.offsetsPartitions(offsetsParts), offsetsParts, perFsync)
		fmt.Printf("  CPU in cores (broker + benchmark clients / whole machine busy, of %d): %s; broker CPU per 1,000 commits %.2f ms\n",
			runtime.NumCPU(), commitCPU[i], 1e6*commitCPU[i].brokerSeconds/max(float64(c.commits), 1))
	}
	printRunFooter(br, loadAtStart)

	b.ReportMetric(0, "ns/op") // the run's wall time is not a figure of merit
	for i, name := range []string{"range", "coop"} {
		join, _ := quantilesOf(rebalances[i].join.took, 0.5)
		leave, _ := quantilesOf(rebalances[i].leave.took, 0.5)
		b.ReportMetric(msf(join[0]), name+"-join-ms")
		b.ReportMetric(msf(leave[0]), name+"-leave-ms")
	}
	for _, c := range commits {
		b.ReportMetric(c.rate(), fmt.Sprintf("commits/s-%dg-%dp", len(c.groups), c.load.perRequest))
	}
}

// setupGroupTopic creates the benchmark's 100-partition topic and returns
// the partition count of __consumer_offsets (the broker creates it at
// start).
func setupGroupTopic(ctx context.Context, addr string) (int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopics(ctx, groupPartitions, 1, nil, groupTopic)
	if err != nil {
		return 0, fmt.Errorf("CreateTopics: %w", err)
	}
	if r, err := resp.On(groupTopic, nil); err != nil {
		return 0, fmt.Errorf("CreateTopics: %w", err)
	} else if r.Err != nil {
		return 0, fmt.Errorf("CreateTopics %s: %w (%s)", groupTopic, r.Err, r.ErrMessage)
	}
	topics, err := adm.ListTopicsWithInternal(ctx, "__consumer_offsets")
	if err != nil {
		return 0, fmt.Errorf("Metadata: %w", err)
	}
	td, ok := topics["__consumer_offsets"]
	if !ok || td.Err != nil || len(td.Partitions) == 0 {
		return 0, fmt.Errorf("Metadata for __consumer_offsets: found %v, error %v", ok, td.Err)
	}
	return int32(len(td.Partitions)), nil
}

// ticker is the background producer of the rebalance phase: one small
// record to every partition of groupTopic per groupTick, acks=all.
type ticker struct {
	cl       *kgo.Client
	cancel   context.CancelFunc
	done     chan struct{}
	acked    atomic.Int64
	errOnce  sync.Once
	firstErr error
}

func startTicker(ctx context.Context, addr string) (*ticker, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(groupTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
	)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	t := &ticker{cl: cl, cancel: cancel, done: make(chan struct{})}
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			if ctx.Err() == nil {
				t.errOnce.Do(func() { t.firstErr = err })
			}
			return
		}
		t.acked.Add(1)
	}
	go func() {
		defer close(t.done)
		tk := time.NewTicker(groupTick)
		defer tk.Stop()
		var seq uint64
		for {
			for p := range int32(groupPartitions) {
				seq++
				v := binary.BigEndian.AppendUint64(nil, seq)
				cl.Produce(ctx, &kgo.Record{Partition: p, Value: v}, promise)
			}
			select {
			case <-tk.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return t, nil
}

// stop ends the producer and returns how many records were acknowledged,
// or the first record error before the stop (records still buffered then
// fail with the cancelled context and are neither counted nor errors).
func (t *ticker) stop() (int64, error) {
	t.cancel()
	<-t.done
	t.cl.Close() // fails what is still buffered, with the context's error
	t.errOnce.Do(func() {})
	return t.acked.Load(), t.firstErr
}

type rebalanceMode struct {
	name     string
	group    string
	balancer kgo.GroupBalancer
}

type rebalanceResult struct {
	join, leave rebalanceSamples
}

// rebalanceSamples are the repetitions of one kind of rebalance.
type rebalanceSamples struct {
	took   []time.Duration // from the join/leave call until settled
	excess []time.Duration // took minus the clients' own delays, per repetition
	rounds []int32         // rebalance rounds (generations) of each repetition
}

// delay is what the clients themselves may spend in a rebalance of rounds
// generations: a heartbeat interval per round before a member learns of it,
// plus one producer tick before the "fetched again" record exists.
func delay(rounds int32) time.Duration {
	return time.Duration(rounds)*groupHeartbeat + groupTick
}

func (s *rebalanceSamples) add(took time.Duration, rounds int32) {
	s.took = append(s.took, took)
	s.excess = append(s.excess, took-delay(rounds))
	s.rounds = append(s.rounds, rounds)
}

// String lists every repetition with its rounds: "99 ms (1), …".
func (s rebalanceSamples) String() string {
	parts := make([]string, len(s.took))
	for i, t := range s.took {
		parts[i] = fmt.Sprintf("%s (%d)", ms0(t), s.rounds[i])
	}
	return strings.Join(parts, ", ") + " (rounds in brackets)"
}

func (s *rebalanceSamples) delayText() string {
	if len(s.rounds) == 0 {
		return ""
	}
	lo, hi := s.rounds[0], s.rounds[0]
	for _, r := range s.rounds {
		lo, hi = min(lo, r), max(hi, r)
	}
	rounds := fmt.Sprintf("%d", lo)
	if hi != lo {
		rounds = fmt.Sprintf("%d–%d", lo, hi)
	}
	return fmt.Sprintf("%s (%s round(s))", ms0(delay(hi)), rounds)
}

// runRebalances forms a group of groupMembers consumers, then rebalanceReps
// times lets one more member join and the same member leave again, timing
// each rebalance.
func runRebalances(ctx context.Context, addr string, mode rebalanceMode) (rebalanceResult, error) {
	var res rebalanceResult
	own := newOwnership()
	var members []*member
	defer func() {
		own.stop()
		var wg sync.WaitGroup
		for _, m := range members {
			wg.Go(m.close)
		}
		wg.Wait()
	}()
	nextID := 1
	start := func() (*member, error) {
		m, err := startMember(ctx, addr, mode, nextID, own)
		nextID++
		return m, err
	}

	// The group starts empty, so its first rebalance waits for
	// group.initial.rebalance.delay.ms; it is not measured.
	first := make([]int, groupMembers)
	for i := range first {
		first[i] = nextID + i
	}
	own.begin(first, 0, groupMembers)
	for range groupMembers {
		m, err := start()
		if err != nil {
			return res, err
		}
		members = append(members, m)
	}
	if _, err := own.wait(ctx, rebalanceGuard); err != nil {
		return res, fmt.Errorf("forming the group of %d: %w", groupMembers, err)
	}

	// Member 1 stays throughout; its generation counts the rounds.
	generation := func() int32 { _, g := members[0].cl.GroupMetadata(); return g }
	for rep := range rebalanceReps {
		gen0 := generation()
		own.begin([]int{nextID}, 0, groupMembers+1)
		m, err := start()
		if err != nil {
			return res, err
		}
		took, err := own.wait(ctx, rebalanceGuard)
		if err != nil {
			m.close()
			return res, fmt.Errorf("repetition %d, member %d joining: %w", rep+1, m.id, err)
		}
		gen1 := generation()
		res.join.add(took, gen1-gen0)

		own.begin(nil, m.id, groupMembers)
		m.close()
		took, err = own.wait(ctx, rebalanceGuard)
		if err != nil {
			return res, fmt.Errorf("repetition %d, member %d leaving: %w", rep+1, m.id, err)
		}
		res.leave.add(took, generation()-gen1)
	}
	return res, nil
}

// member is one franz-go group consumer and its poll loop.
type member struct {
	id   int
	cl   *kgo.Client
	done chan struct{} // closed when the poll loop has ended
}

func startMember(ctx context.Context, addr string, mode rebalanceMode, id int, own *ownership) (*member, error) {
	hook := func(f func(id int, parts []int32)) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) { f(id, assigned[groupTopic]) }
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ClientID(fmt.Sprintf("strata-bench-member-%d", id)),
		kgo.ConsumerGroup(mode.group),
		kgo.ConsumeTopics(groupTopic),
		kgo.Balancers(mode.balancer),
		kgo.HeartbeatInterval(groupHeartbeat),
		kgo.RebalanceTimeout(groupRebalanceTimeout),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.OnPartitionsAssigned(hook(own.assigned)),
		kgo.OnPartitionsRevoked(hook(own.revoked)),
		kgo.OnPartitionsLost(hook(own.lost)),
	)
	if err != nil {
		return nil, err
	}
	m := &member{id: id, cl: cl, done: make(chan struct{})}
	go m.poll(ctx, own)
	return m, nil
}

// poll consumes until the client closes, telling own which partitions
// delivered records. A fetch error (including a group session error kgo
// injects) fails the run.
func (m *member) poll(ctx context.Context, own *ownership) {
	defer close(m.done)
	for {
		fs := m.cl.PollFetches(ctx)
		at := time.Now()
		if fs.IsClientClosed() || ctx.Err() != nil {
			return
		}
		var errs []error
		fs.EachError(func(t string, p int32, err error) {
			errs = append(errs, fmt.Errorf("member %d: fetch %s/%d: %w", m.id, t, p, err))
		})
		if len(errs) > 0 {
			own.fail(errors.Join(errs...))
			return
		}
		var got []int32
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 {
				got = append(got, p.Partition)
			}
		})
		own.received(m.id, got, at)
	}
}

// close leaves the group (kgo's Close waits for the LeaveGroup) and waits
// for the poll loop.
func (m *member) close() {
	m.cl.Close()
	<-m.done
}

// ownership follows, from kgo's OnPartitionsAssigned/Revoked/Lost hooks
// and the members' poll loops, which member owns each partition and
// whether that owner has received a record of it since both its
// assignment and the start of the current measurement. The group has
// settled when every partition is owned by an active member, each owner
// has had a record of each of its partitions, and exactly want members own
// partitions. Hooks run on kgo's goroutines and the poll loops on their
// own; everything is under mu.
type ownership struct {
	failed   chan struct{} // closed on the first failure
	failOnce sync.Once
	err      error // written once, before failed is closed

	mu struct {
		sync.Mutex
		owner   [groupPartitions]int       // member id; 0: nobody
		since   [groupPartitions]time.Time // when owner was assigned it
		fetched [groupPartitions]bool      // owner had a record polled after since and start
		active  map[int]bool               // members that count (not left)
		want    int                        // members that must own partitions
		start   time.Time                  // of the current measurement
		done    chan struct{}              // closed when settled
		doneAt  time.Time
		settled bool
		stopped bool // tearing down: ignore everything
	}
}

func newOwnership() *ownership {
	o := &ownership{failed: make(chan struct{})}
	o.mu.active = map[int]bool{}
	return o
}

// begin starts a measurement: the members in add become active, member
// remove (unless 0) is no longer counted and its partitions are unowned,
// and want members must own partitions at the end. Every partition must
// then deliver a record to its owner again.
func (o *ownership) begin(add []int, remove int, want int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, id := range add {
		o.mu.active[id] = true
	}
	if remove != 0 {
		delete(o.mu.active, remove)
		for p, ow := range o.mu.owner {
			if ow == remove {
				o.mu.owner[p] = 0
			}
		}
	}
	o.mu.fetched = [groupPartitions]bool{}
	o.mu.want = want
	o.mu.done = make(chan struct{})
	o.mu.settled = false
	o.mu.start = time.Now()
}

// wait returns the time from begin until the group settled.
func (o *ownership) wait(ctx context.Context, guard time.Duration) (time.Duration, error) {
	o.mu.Lock()
	done := o.mu.done
	o.mu.Unlock()
	t := time.NewTimer(guard)
	defer t.Stop()
	select {
	case <-done:
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.mu.doneAt.Sub(o.mu.start), nil
	case <-o.failed:
		return 0, o.err
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-t.C:
		return 0, fmt.Errorf("not settled after %v: %s", guard, o.describe())
	}
}

// describe summarises the current state for a hang report.
func (o *ownership) describe() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	owned, fetched := 0, 0
	owners := map[int]int{}
	for p, ow := range o.mu.owner {
		if ow != 0 && o.mu.active[ow] {
			owned++
			owners[ow]++
			if o.mu.fetched[p] {
				fetched++
			}
		}
	}
	return fmt.Sprintf("%d of %d partitions owned by active members (partitions per member %v), %d of them fetched again; %d members must own partitions",
		owned, groupPartitions, owners, fetched, o.mu.want)
}

func (o *ownership) fail(err error) {
	o.mu.Lock()
	stopped := o.mu.stopped
	o.mu.Unlock()
	if stopped {
		return
	}
	o.failOnce.Do(func() { o.err = err; close(o.failed) })
}

func (o *ownership) stop() {
	o.mu.Lock()
	o.mu.stopped = true
	o.mu.Unlock()
}

func (o *ownership) assigned(id int, parts []int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mu.stopped || !o.mu.active[id] {
		return
	}
	now := time.Now()
	for _, p := range parts {
		if ow := o.mu.owner[p]; ow != 0 && ow != id {
			go o.fail(fmt.Errorf("partition %d assigned to member %d while member %d still owns it", p, id, ow))
			return
		}
		o.mu.owner[p] = id
		o.mu.since[p] = now
		o.mu.fetched[p] = false
	}
}

func (o *ownership) revoked(id int, parts []int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mu.stopped {
		return
	}
	for _, p := range parts {
		if o.mu.owner[p] == id {
			o.mu.owner[p] = 0
			o.mu.fetched[p] = false
		}
	}
}

// lost: kgo calls OnPartitionsLost when a member's group session ended
// with an error (it also reports the error to the poll loop).
func (o *ownership) lost(id int, parts []int32) {
	o.mu.Lock()
	active := o.mu.active[id]
	o.mu.Unlock()
	o.revoked(id, parts)
	if active && len(parts) > 0 {
		o.fail(fmt.Errorf("member %d lost partitions %v: its group session ended with an error", id, parts))
	}
}

// received records that member id polled records of parts at time at.
func (o *ownership) received(id int, parts []int32, at time.Time) {
	if len(parts) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mu.stopped {
		return
	}
	for _, p := range parts {
		if o.mu.owner[p] == id && at.After(o.mu.since[p]) && at.After(o.mu.start) {
			o.mu.fetched[p] = true
		}
	}
	o.checkLocked(at)
}

// checkLocked marks the measurement done, at time at, if the group has
// settled. Only a received record can complete it: an assignment or a
// revocation always leaves a partition waiting for one.
func (o *ownership) checkLocked(at time.Time) {
	if o.mu.settled || o.mu.done == nil {
		return
	}
	owners := map[int]bool{}
	for p, ow := range o.mu.owner {
		if ow == 0 || !o.mu.active[ow] || !o.mu.fetched[p] {
			return
		}
		owners[ow] = true
	}
	if len(owners) != o.mu.want {
		return
	}
	o.mu.settled = true
	o.mu.doneAt = at
	close(o.mu.done)
}

// commitLoad is the shape of one OffsetCommit phase.
type commitLoad struct {
	perRequest int  // partitions committed per request
	shared     bool // one group for all workers (each with its own partitions) instead of one group each
}

func (l commitLoad) String() string {
	groups := "a group each"
	if l.shared {
		groups = "one group"
	}
	return fmt.Sprintf("%s, %d partition(s) per request", groups, l.perRequest)
}

// commitResult is what one OffsetCommit phase measured.
type commitResult struct {
	load     commitLoad
	groups   []string
	commits  int64 // partition offsets acknowledged with error 0
	requests int64
	elapsed  time.Duration
	lat      *latencies // per OffsetCommit request
	fsyncs   int64      // broker fsyncs during the phase; -1 if unknown
}

func (c commitResult) rate() float64 {
	if c.elapsed <= 0 {
		return 0
	}
	return float64(c.commits) / c.elapsed.Seconds()
}

// ceiling is Little's law for this load: commitWorkers requests in flight,
// each waiting at least one fsync of sync, commit at most this many
// partition offsets per second.
func (c commitResult) ceiling(sync time.Duration) float64 {
	if sync <= 0 {
		return 0
	}
	return float64(commitWorkers*c.load.perRequest) / sync.Seconds()
}

// offsetsPartitions is how many __consumer_offsets partitions (of n) the
// phase's groups map to.
func (c commitResult) offsetsPartitions(n int32) int {
	seen := map[int32]bool{}
	for _, g := range c.groups {
		seen[group.PartitionFor(g, n)] = true
	}
	return len(seen)
}

// commitWorker is one goroutine of an OffsetCommit phase: one request in
// flight at a time, on a client shared with other workers.
type commitWorker struct {
	group string
	cl    *kgo.Client
	parts []int32         // partitions it commits, in turn
	seq   int64           // requests acknowledged so far
	last  map[int32]int64 // partition → last offset acknowledged
}

// runCommits runs commitWorkers goroutines over commitConns clients for
// dur, committing load.perRequest partitions per request for simple groups
// (generation −1, no member id) with increasing offsets, then reads every
// group's offsets back with OffsetFetch and checks they are the last ones
// acknowledged.
func runCommits(ctx context.Context, addr string, load commitLoad, dur time.Duration) (commitResult, error) {
	res := commitResult{load: load, lat: &latencies{}}
	clients := make([]*kgo.Client, commitConns)
	for i := range clients {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(fmt.Sprintf("strata-bench-commit-%d", i)))
		if err != nil {
			return res, err
		}
		defer cl.Close()
		clients[i] = cl
	}
	workers := make([]*commitWorker, commitWorkers)
	for i := range workers {
		w := &commitWorker{cl: clients[i%commitConns], last: map[int32]int64{}}
		if load.shared {
			// Workers of one group must not commit the same partition:
			// the last acknowledged offset would not be well defined.
			w.group = fmt.Sprintf("strata-bench-commit-shared-%dp", load.perRequest)
			for p := int32(i); p < groupPartitions; p += commitWorkers {
				w.parts = append(w.parts, p)
			}
		} else {
			w.group = fmt.Sprintf("strata-bench-commit-%dp-%02d", load.perRequest, i)
			for p := range int32(groupPartitions) {
				w.parts = append(w.parts, p)
			}
		}
		if len(w.parts) < load.perRequest {
			panic(fmt.Sprintf("commit worker %d has %d partitions for %d per request", i, len(w.parts), load.perRequest))
		}
		workers[i] = w
		if len(res.groups) == 0 || res.groups[len(res.groups)-1] != w.group {
			res.groups = append(res.groups, w.group)
		}
	}
	var commits, requests atomic.Int64
	// commit sends one request; its partitions rotate through the worker's
	// and every offset is the request's sequence number, so the last
	// acknowledged commit of each partition is the one that must be stored.
	commit := func(w *commitWorker, timed bool) error {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group = w.group
		req.Generation = -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = groupTopic
		for k := range int64(load.perRequest) {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition = w.parts[(w.seq*int64(load.perRequest)+k)%int64(len(w.parts))]
			rp.Offset = w.seq
			rp.LeaderEpoch = -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		t0 := time.Now()
		kresp, err := w.cl.Request(ctx, req)
		took := time.Since(t0)
		if err != nil {
			return fmt.Errorf("group %s: OffsetCommit: %w", w.group, err)
		}
		resp := kresp.(*kmsg.OffsetCommitResponse)
		n := 0
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return fmt.Errorf("group %s: OffsetCommit %s/%d: %w", w.group, t.Topic, p.Partition, kerr.ErrorForCode(p.ErrorCode))
				}
				n++
			}
		}
		if n != load.perRequest {
			return fmt.Errorf("group %s: OffsetCommit answered %d partitions, want %d", w.group, n, load.perRequest)
		}
		for _, rp := range rt.Partitions {
			w.last[rp.Partition] = w.seq
		}
		w.seq++
		if timed {
			res.lat.add(took)
			commits.Add(int64(n))
			requests.Add(1)
		}
		return nil
	}

	// One untimed commit per worker first: it finds the coordinator and
	// opens the connections.
	for _, w := range workers {
		if err := commit(w, false); err != nil {
			return res, err
		}
	}
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	end := start.Add(dur)
	for _, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				if err := commit(w, true); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.commits, res.requests = commits.Load(), requests.Load()
	if firstErr != nil {
		return res, fmt.Errorf("after %d acknowledged commits: %w", res.commits, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}

	// What each group must hold: the workers' partitions are disjoint
	// within a group.
	want := map[string]map[int32]int64{}
	for _, w := range workers {
		if want[w.group] == nil {
			want[w.group] = map[int32]int64{}
		}
		for p, o := range w.last {
			want[w.group][p] = o
		}
	}
	adm := kadm.NewClient(clients[0])
	for g, offs := range want {
		got, err := adm.FetchOffsets(ctx, g)
		if err != nil {
			return res, fmt.Errorf("group %s: OffsetFetch: %w", g, err)
		}
		if n := len(got[groupTopic]); n != len(offs) {
			return res, fmt.Errorf("group %s: OffsetFetch returned %d partitions, %d were committed", g, n, len(offs))
		}
		for p, o := range offs {
			r, ok := got.Lookup(groupTopic, p)
			switch {
			case !ok:
				return res, fmt.Errorf("group %s: OffsetFetch has no offset for %s/%d", g, groupTopic, p)
			case r.Err != nil:
				return res, fmt.Errorf("group %s: OffsetFetch %s/%d: %w", g, groupTopic, p, r.Err)
			case r.At != o:
				return res, fmt.Errorf("group %s: OffsetFetch %s/%d = %d, but the last acknowledged commit was %d", g, groupTopic, p, r.At, o)
			}
		}
	}
	return res, nil
}

// fsyncCount is the broker's strata.replica.fsyncs counter from /metrics,
// or -1 if it cannot be read: it explains the table, it decides nothing.
func fsyncCount(br *harness.Broker) int64 {
	text, err := br.Metrics()
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, "strata_replica_fsyncs") {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return -1
		}
		return int64(v)
	}
	return -1
}

// quantilesOf is latencies.quantiles of ds.
func quantilesOf(ds []time.Duration, qs ...float64) ([]time.Duration, int) {
	l := latencies{d: ds}
	return l.quantiles(qs...)
}

// ms0 is a duration in whole milliseconds.
func ms0(d time.Duration) string { return fmt.Sprintf("%.0f ms", msf(d)) }

func signedMs(d time.Duration) string { return fmt.Sprintf("%+.0f ms", msf(d)) }
