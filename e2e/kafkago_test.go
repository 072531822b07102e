package e2e

// segmentio/kafka-go's consumer-group API against a real broker. kafka-go is
// an older client: its ConsumerGroup speaks FindCoordinator v0, JoinGroup
// v1/v2 (so a new member gets its id straight away, without Kafka's
// MEMBER_ID_REQUIRED round of v4+), SyncGroup, Heartbeat and LeaveGroup v0,
// OffsetFetch v1 and OffsetCommit v2.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// kafkaGoTally is what the members of one phase processed. A member counts a
// record as processed only once a commit covering it succeeded; records whose
// commit was refused (the generation had ended) are redelivered to the
// partition's next owner, which processes them then. So with a broker that
// fences commits by generation, every record is processed exactly once.
type kafkaGoTally struct {
	t      *testing.T
	prefix string        // every record delivered in the phase must start with it
	want   int           // distinct records the phase must process
	done   chan struct{} // closed when want distinct records have been processed

	firstRead chan struct{} // closed when a member has read a first record
	firstOnce sync.Once

	mu struct {
		sync.Mutex
		processed   map[string]string // value → who processed it: member, generation, partition/offset
		deliveries  int               // records read, including the ones read again
		refused     int               // records read whose commit was refused
		byMember    map[string]int    // records processed by each member
		generations []string          // member: generation and assignment, in order
		shared      map[int32]int     // generation → members given partitions in it
		sharedCh    chan struct{}     // closed when a generation gives partitions to sharedBy members
		sharedBy    int
		errs        []string // kafka-go's error log and errors from ConsumerGroup.Next
		closed      bool     // done is closed
	}
}

func newKafkaGoTally(t *testing.T, prefix string, want int) *kafkaGoTally {
	k := &kafkaGoTally{t: t, prefix: prefix, want: want, done: make(chan struct{}), firstRead: make(chan struct{})}
	k.mu.processed = map[string]string{}
	k.mu.byMember = map[string]int{}
	k.mu.shared = map[int32]int{}
	return k
}

// settle records a batch read by member in generation gen and the result of
// the commit that followed it.
func (k *kafkaGoTally) settle(member string, gen int32, batch []kafka.Message, commitErr error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.mu.deliveries += len(batch)
	for _, m := range batch {
		if v := string(m.Value); !strings.HasPrefix(v, k.prefix) {
			k.t.Errorf("%s (generation %d) read %q at %d/%d: a record committed before this phase", member, gen, v, m.Partition, m.Offset)
		}
	}
	if commitErr != nil {
		k.mu.refused += len(batch)
		k.mu.errs = append(k.mu.errs, fmt.Sprintf("%s: commit in generation %d up to %d/%d: %v",
			member, gen, batch[0].Partition, batch[len(batch)-1].Offset+1, commitErr))
		return
	}
	for _, m := range batch {
		v := string(m.Value)
		who := fmt.Sprintf("%s in generation %d at %d/%d", member, gen, m.Partition, m.Offset)
		if first, ok := k.mu.processed[v]; ok {
			k.t.Errorf("record %q processed and committed twice: by %s, then by %s", v, first, who)
			continue
		}
		k.mu.processed[v] = who
		k.mu.byMember[member]++
	}
	if len(k.mu.processed) >= k.want && !k.mu.closed {
		k.mu.closed = true
		close(k.done)
	}
}

// read notes that a member has read a record.
func (k *kafkaGoTally) read() {
	k.firstOnce.Do(func() { close(k.firstRead) })
}

func (k *kafkaGoTally) logf(format string, args ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.mu.errs = append(k.mu.errs, fmt.Sprintf(format, args...))
}

func (k *kafkaGoTally) generation(member string, gen *kafka.Generation, topic string) {
	var parts []string
	for _, pa := range gen.Assignments[topic] {
		parts = append(parts, fmt.Sprintf("%d@%d", pa.ID, pa.Offset))
	}
	sort.Strings(parts)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.mu.generations = append(k.mu.generations, fmt.Sprintf("%s: generation %d, partitions@start %v", member, gen.ID, parts))
	if len(parts) > 0 {
		k.mu.shared[gen.ID]++
		if k.mu.sharedCh != nil && k.mu.shared[gen.ID] == k.mu.sharedBy {
			close(k.mu.sharedCh)
			k.mu.sharedCh = nil
		}
	}
}

// sharedBy returns a channel closed once some generation has given
// partitions to members members.
func (k *kafkaGoTally) sharedBy(members int) <-chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	ch := make(chan struct{})
	for _, n := range k.mu.shared {
		if n == members {
			close(ch)
			return ch
		}
	}
	k.mu.sharedCh, k.mu.sharedBy = ch, members
	return ch
}

// processedBy returns how many records member processed.
func (k *kafkaGoTally) processedBy(member string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.mu.byMember[member]
}

// report logs the phase's generations, refused commits and errors, and
// fails the test unless exactly want distinct records were processed.
func (k *kafkaGoTally) report(phase string) {
	k.t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.t.Logf("%s: %d records processed (by member: %v), %d deliveries (%d read again after a refused commit); generations:\n  %s",
		phase, len(k.mu.processed), k.mu.byMember, k.mu.deliveries, k.mu.refused, strings.Join(k.mu.generations, "\n  "))
	if len(k.mu.errs) > 0 {
		errs := k.mu.errs
		if len(errs) > 50 {
			errs = append(errs[:25:25], fmt.Sprintf("… %d more …", len(errs)-50))
			errs = append(errs, k.mu.errs[len(k.mu.errs)-25:]...)
		}
		k.t.Logf("%s: kafka-go errors and refused commits:\n  %s", phase, strings.Join(errs, "\n  "))
	}
	if len(k.mu.processed) != k.want {
		k.t.Fatalf("%s: %d distinct records processed and committed, want %d", phase, len(k.mu.processed), k.want)
	}
}

// kafkaGoMember joins group as a kafka.ConsumerGroup member and, in every
// generation it gets, consumes each assigned partition in its own goroutine
// started with Generation.Start. A slow member commits nothing in its first
// generation until that generation ends. It returns the group (Close leaves
// it) and a channel closed when the member's loop has ended.
func kafkaGoMember(ctx context.Context, b *strataProc, group, topic, name string, slow bool, k *kafkaGoTally) (*kafka.ConsumerGroup, <-chan struct{}) {
	k.t.Helper()
	errLog := kafka.LoggerFunc(func(format string, args ...any) { k.logf(name+": kafka-go: "+format, args...) })
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                group,
		Brokers:           []string{b.Addr()},
		Dialer:            &kafka.Dialer{ClientID: "e2e-kafka-go-" + name, Timeout: 30 * time.Second},
		Topics:            []string{topic},
		HeartbeatInterval: time.Second, // how soon a member hears of a rebalance
		SessionTimeout:    30 * time.Second,
		RebalanceTimeout:  30 * time.Second,
		JoinGroupBackoff:  500 * time.Millisecond,
		Timeout:           30 * time.Second, // per coordinator request: generous on a loaded machine
		StartOffset:       kafka.FirstOffset,
		ErrorLogger:       errLog,
	})
	if err != nil {
		k.t.Fatalf("kafka.NewConsumerGroup: %v", err)
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for first := true; ; first = false {
			gen, err := cg.Next(ctx)
			if errors.Is(err, kafka.ErrGroupClosed) || ctx.Err() != nil {
				return
			}
			if err != nil {
				// A failed join or sync (e.g. REBALANCE_IN_PROGRESS when
				// another member joins meanwhile); kafka-go tries again.
				k.logf("%s: ConsumerGroup.Next: %v", name, err)
				continue
			}
			k.generation(name, gen, topic)
			hold := slow && first
			for _, pa := range gen.Assignments[topic] {
				gen.Start(func(gctx context.Context) {
					consumeKafkaGoPartition(gctx, b, gen, topic, pa, name, hold, errLog, k)
				})
			}
		}
	}()
	return cg, ended
}

// consumeKafkaGoPartition reads one assigned partition from the offset the
// generation starts it at. It commits after every 100 records and whenever
// the partition has nothing more to read for now — or, if hold, not before
// the generation ends. When the generation ends (a rebalance, or the member
// closing) it commits what it has read, as a consumer does before it
// rejoins, and returns. A refused commit ends the goroutine, and so the
// generation: the records it covered are processed again by the partition's
// next owner, and committing later records would skip them.
func consumeKafkaGoPartition(gctx context.Context, b *strataProc, gen *kafka.Generation, topic string,
	pa kafka.PartitionAssignment, member string, hold bool, errLog kafka.Logger, k *kafkaGoTally) {
	// genCtx is not a standard context: derive one once, so that the
	// per-fetch timeouts below do not each start a goroutine.
	ctx, cancel := context.WithCancel(gctx)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{b.Addr()},
		Dialer:      &kafka.Dialer{ClientID: "e2e-kafka-go-" + member, Timeout: 30 * time.Second},
		Topic:       topic,
		Partition:   pa.ID,
		MaxWait:     500 * time.Millisecond,
		ErrorLogger: errLog,
	})
	defer r.Close()
	if err := r.SetOffset(pa.Offset); err != nil {
		k.logf("%s: SetOffset %d/%d: %v", member, pa.ID, pa.Offset, err)
		return
	}
	var batch []kafka.Message
	commit := func() bool {
		if len(batch) == 0 {
			return true
		}
		err := gen.CommitOffsets(map[string]map[int]int64{topic: {pa.ID: batch[len(batch)-1].Offset + 1}})
		k.settle(member, gen.ID, batch, err)
		batch = batch[:0]
		return err == nil
	}
	for {
		// The timeout only decides when to commit a short batch.
		fctx, fcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		m, err := r.FetchMessage(fctx)
		fcancel()
		switch {
		case err == nil:
			k.read()
			batch = append(batch, m)
			if hold || len(batch) < 100 {
				continue
			}
		case ctx.Err() != nil: // the generation ended
			commit()
			return
		case errors.Is(err, context.DeadlineExceeded): // nothing more to read for now
			if hold {
				continue
			}
		default:
			k.logf("%s: FetchMessage %s/%d: %v", member, topic, pa.ID, err)
			commit()
			return
		}
		if !commit() {
			return
		}
	}
}

// closeKafkaGoMembers closes every member at once (each commits what it has
// read and leaves the group) and waits for their loops to end.
func closeKafkaGoMembers(t *testing.T, groups []*kafka.ConsumerGroup, ended []<-chan struct{}) {
	t.Helper()
	var wg sync.WaitGroup
	for _, cg := range groups {
		wg.Go(func() {
			if err := cg.Close(); err != nil {
				t.Errorf("ConsumerGroup.Close: %v", err)
			}
		})
	}
	wg.Wait()
	for _, e := range ended {
		<-e
	}
}

// TestKafkaGoConsumerGroup: two kafka-go ConsumerGroup members share a
// 6-partition topic; counting a record as processed only once its commit
// succeeded, every record is processed exactly once, and the committed
// offsets are the end offsets. After a broker restart the commits are still
// there, and a new ConsumerGroup member reads only the records produced
// since; then a kafka.Reader of the same group (GroupID) reads only what was
// produced after that.
func TestKafkaGoConsumerGroup(t *testing.T) {
	b := startStrata(t, groupFlags...)
	const topic, group = "kafka-go-groups", "kafka-go-group"
	const n, more, third = 3000, 300, 200
	b.createTopic(t, topic, 6, nil)

	// Phase 1: member-b joins once member-a has read records; member-a
	// commits nothing until that rebalance ends its first generation, so the
	// rebalance always finds records read and not committed. The second half
	// of the records is produced once a generation has given both members
	// partitions, so that both process records.
	k := newKafkaGoTally(t, "first-", n)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	var groups []*kafka.ConsumerGroup
	var ended []<-chan struct{}
	start := func(name string, slow bool) {
		cg, e := kafkaGoMember(ctx, b, group, topic, name, slow, k)
		groups, ended = append(groups, cg), append(ended, e)
	}
	wait := func(ch <-chan struct{}, what string) bool {
		select {
		case <-ch:
			return true
		case <-ctx.Done():
			t.Errorf("hang guard: %s within %v", what, opTimeout)
			return false
		}
	}
	produceValues(t, b, topic, "first-early", n/2)
	start("member-a", true)
	ok := wait(k.firstRead, "member-a read no record")
	if ok {
		start("member-b", false)
		ok = wait(k.sharedBy(2), "no generation gave partitions to both members")
	}
	if ok {
		produceValues(t, b, topic, "first-late", n-n/2)
		if wait(k.done, fmt.Sprintf("the group did not process all %d records", n)) {
			for _, m := range []string{"member-a", "member-b"} {
				if k.processedBy(m) == 0 {
					t.Errorf("%s processed no record", m)
				}
			}
		}
	}
	closeKafkaGoMembers(t, groups, ended)
	cancel()
	k.report("two members")
	committedMatchesEnds(t, b, group, topic)

	// Phase 2: after a restart, a new member resumes from the commits.
	b.Restart()
	committedMatchesEnds(t, b, group, topic) // loaded back from __consumer_offsets
	produceValues(t, b, topic, "second", more)
	k = newKafkaGoTally(t, "second-", more)
	ctx, cancel = context.WithTimeout(context.Background(), opTimeout)
	cg, e := kafkaGoMember(ctx, b, group, topic, "member-c", false, k)
	select {
	case <-k.done:
	case <-ctx.Done():
		t.Errorf("hang guard: the new member did not process all %d new records within %v", more, opTimeout)
	}
	closeKafkaGoMembers(t, []*kafka.ConsumerGroup{cg}, []<-chan struct{}{e})
	cancel()
	k.report("after restart")
	committedMatchesEnds(t, b, group, topic)

	// Phase 3: kafka.Reader with GroupID (kafka-go's ConsumerGroup inside,
	// committing synchronously) resumes from the same commits.
	produceValues(t, b, topic, "third", third)
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           []string{b.Addr()},
		Dialer:            &kafka.Dialer{ClientID: "e2e-kafka-go-reader", Timeout: 30 * time.Second},
		GroupID:           group,
		Topic:             topic,
		MaxWait:           500 * time.Millisecond,
		HeartbeatInterval: time.Second,
		SessionTimeout:    30 * time.Second,
		RebalanceTimeout:  30 * time.Second,
		JoinGroupBackoff:  500 * time.Millisecond,
		StartOffset:       kafka.FirstOffset,
	})
	defer r.Close() // on a failure; closing again is harmless
	ctx, cancel = context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	got := map[string]bool{}
	for len(got) < third {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("Reader (GroupID) after %d of %d new records: %v", len(got), third, err)
		}
		if v := string(m.Value); !strings.HasPrefix(v, "third-") {
			t.Fatalf("Reader (GroupID) re-read committed record %q at %d/%d", v, m.Partition, m.Offset)
		}
		got[string(m.Value)] = true
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("Reader (GroupID) commit %d/%d: %v", m.Partition, m.Offset, err)
		}
	}
	if err := r.Close(); err != nil { // leaves the group
		t.Errorf("Reader.Close: %v", err)
	}
	committedMatchesEnds(t, b, group, topic)
}
