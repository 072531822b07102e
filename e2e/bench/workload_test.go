package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	benchTopic      = "strata-bench"
	benchPartitions = 6
	recordBytes     = 1 << 10 // 1 KiB values, no key
	// producerBatchBytes is kgo's cap per record batch; the topic's
	// max.message.bytes is raised to topicMaxMessageBytes so a full batch
	// (1 MiB of records plus batch and record overhead) is never refused.
	producerBatchBytes   = 1 << 20
	topicMaxMessageBytes = 2 << 20
	producerLinger       = 5 * time.Millisecond
	// maxBufferedRecords: enough records in flight to keep 6 partitions ×
	// up to 5 pipelined produce requests × 1 MiB batches full (30 MiB =
	// 30k records) several times over, so the producer never starves the
	// broker; 256k × 1 KiB bounds the client's buffered values to 256 MiB
	// (they are slices of the shared pool, so no copies are made).
	maxBufferedRecords = 256 << 10
	// fetchMaxBytes / fetchMaxPartitionBytes: large, so the consumer is
	// limited by the broker, not by round trips.
	fetchMaxBytes          = 64 << 20
	fetchMaxPartitionBytes = 16 << 20
)

// latencies collects durations from any goroutine.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// quantiles returns the nearest-rank quantiles qs (0..1) and the count; all
// zero for no samples.
func (l *latencies) quantiles(qs ...float64) ([]time.Duration, int) {
	l.mu.Lock()
	d := slices.Clone(l.d)
	l.mu.Unlock()
	out := make([]time.Duration, len(qs))
	if len(d) == 0 {
		return out, 0
	}
	slices.Sort(d)
	for i, q := range qs {
		idx := int(q*float64(len(d))+0.5) - 1
		out[i] = d[min(max(idx, 0), len(d)-1)]
	}
	return out, len(d)
}

// produceHook times every Produce request, write start to response read
// (kgo's BrokerE2E.DurationE2E: write + wait + read; queueing in the client
// before the write is excluded), into the current phase's recorder.
type produceHook struct {
	cur     atomic.Pointer[latencies]
	ioErrs  atomic.Int64
	lastErr atomic.Pointer[error]
}

var _ kgo.HookBrokerE2E = (*produceHook)(nil)

func (h *produceHook) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if key != kmsg.Produce.Int16() {
		return
	}
	if err := errors.Join(e2e.WriteErr, e2e.ReadErr); err != nil {
		h.ioErrs.Add(1)
		h.lastErr.Store(&err)
		return
	}
	if l := h.cur.Load(); l != nil {
		l.add(e2e.DurationE2E())
	}
}

// phaseResult is what one produce phase measured.
type phaseResult struct {
	records  int64
	bytes    int64 // record value bytes acknowledged
	elapsed  time.Duration
	reqLat   *latencies // per Produce request
	recLat   *latencies // per record, Produce call → acknowledgement (paced phase only)
	requests int
}

func (p phaseResult) mibps() float64 { return mibPerSec(p.bytes, p.elapsed) }

func newProducer(addr string, hook *produceHook) (*kgo.Client, error) {
	return kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(benchTopic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(producerLinger),
		kgo.ProducerBatchMaxBytes(producerBatchBytes),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(maxBufferedRecords),
		// Round robin: every partition gets the same share, so all six
		// logs and the group commit work equally.
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.WithHooks(hook),
	)
}

// createTopic creates the benchmark topic with max.message.bytes raised for
// 1 MiB batches.
func createTopic(ctx context.Context, addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	mmb := fmt.Sprint(topicMaxMessageBytes)
	resp, err := adm.CreateTopics(ctx, benchPartitions, 1,
		map[string]*string{"max.message.bytes": &mmb}, benchTopic)
	if err != nil {
		return fmt.Errorf("CreateTopics: %w", err)
	}
	r, err := resp.On(benchTopic, nil)
	if err != nil {
		return fmt.Errorf("CreateTopics: %w", err)
	}
	if r.Err != nil {
		return fmt.Errorf("CreateTopics %s: %w (%s)", benchTopic, r.Err, r.ErrMessage)
	}
	return nil
}

// produce runs one phase for dur: at full speed if rate <= 0 (Produce blocks
// only when maxBufferedRecords are outstanding), otherwise paced at rate
// records/s. It returns once every record is acknowledged. Any record
// failure ends the phase with an error: with acks=all and an idempotent
// producer, a failed record is a broker error.
func produce(ctx context.Context, cl *kgo.Client, hook *produceHook, pool []byte, dur time.Duration, rate int) (phaseResult, error) {
	res := phaseResult{reqLat: &latencies{}, recLat: &latencies{}}
	hook.cur.Store(res.reqLat)
	defer hook.cur.Store(nil)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		acked    atomic.Int64
		errOnce  sync.Once
		firstErr error
	)
	paced := rate > 0
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			errOnce.Do(func() { firstErr = err; cancel() })
			return
		}
		acked.Add(1)
		if paced {
			// kgo stamps Timestamp with time.Now() inside Produce.
			res.recLat.add(time.Since(r.Timestamp))
		}
	}
	span := int64(len(pool) - recordBytes)
	var sent int64
	next := func() *kgo.Record {
		// A 1 KiB window of the random pool; the stride keeps neighbouring
		// records different and the whole pool in use.
		off := (sent * 4099) % span
		sent++
		return &kgo.Record{Value: pool[off : off+recordBytes]}
	}

	start := time.Now()
	end := start.Add(dur)
	for ctx.Err() == nil {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		if !paced {
			cl.Produce(ctx, next(), promise)
			continue
		}
		due := int64(now.Sub(start).Seconds() * float64(rate))
		for sent < due && ctx.Err() == nil {
			cl.Produce(ctx, next(), promise)
		}
		time.Sleep(200 * time.Microsecond)
	}
	flushErr := cl.Flush(ctx)
	res.elapsed = time.Since(start)
	res.records = acked.Load()
	res.bytes = res.records * recordBytes
	_, res.requests = res.reqLat.quantiles(0.5)
	errOnce.Do(func() {}) // publishes firstErr
	if firstErr != nil {
		return res, fmt.Errorf("produce failed after %d acknowledged records: %w", res.records, firstErr)
	}
	if flushErr != nil {
		return res, fmt.Errorf("flush: %w", flushErr)
	}
	if res.records != sent {
		return res, fmt.Errorf("%d records produced but %d acknowledged", sent, res.records)
	}
	return res, nil
}

// consumeResult is what the consume phase measured.
type consumeResult struct {
	records int64
	bytes   int64
	elapsed time.Duration
}

// endOffsets lists the benchmark topic's end offsets per partition.
func endOffsets(ctx context.Context, addr string) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, benchTopic)
	if err != nil {
		return nil, fmt.Errorf("ListOffsets: %w", err)
	}
	ends := make(map[int32]int64)
	var errs []error
	offs.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			errs = append(errs, fmt.Errorf("ListOffsets %s/%d: %w", o.Topic, o.Partition, o.Err))
		}
		ends[o.Partition] = o.Offset
	})
	return ends, errors.Join(errs...)
}

// consume reads every partition from offset 0 up to ends and checks that
// offsets are contiguous and each value is 1 KiB.
func consume(ctx context.Context, addr string, ends map[int32]int64) (consumeResult, error) {
	return consumeUpTo(ctx, addr, benchTopic, ends, func(r *kgo.Record) error {
		if len(r.Value) != recordBytes {
			return fmt.Errorf("partition %d offset %d: value of %d bytes, want %d", r.Partition, r.Offset, len(r.Value), recordBytes)
		}
		return nil
	})
}

// consumeUpTo reads every partition p of topic from offset 0 up to (not
// including) ends[p], checking that offsets are contiguous and calling
// check on every record; it fails on the first fetch error or wrong
// record.
func consumeUpTo(ctx context.Context, addr, topic string, ends map[int32]int64, check func(r *kgo.Record) error) (consumeResult, error) {
	var res consumeResult
	parts := make(map[int32]kgo.Offset, len(ends))
	next := make(map[int32]int64, len(ends))
	remaining := 0
	for p, end := range ends {
		if end > 0 {
			parts[p] = kgo.NewOffset().At(0)
			next[p] = 0
			remaining++
		}
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchMaxBytes(fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(fetchMaxPartitionBytes),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return res, err
	}
	defer cl.Close()

	start := time.Now()
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("consume %s: %w after %d records (next offsets %v, ends %v)", topic, err, res.records, next, ends)
		}
		var errs []error
		fs.EachError(func(t string, p int32, err error) {
			errs = append(errs, fmt.Errorf("fetch %s/%d: %w", t, p, err))
		})
		if len(errs) > 0 {
			return res, errors.Join(errs...)
		}
		var bad error
		fs.EachRecord(func(r *kgo.Record) {
			if bad != nil {
				return
			}
			want, ok := next[r.Partition]
			switch {
			case !ok:
				bad = fmt.Errorf("record from unexpected partition %d", r.Partition)
			case r.Offset != want:
				bad = fmt.Errorf("partition %d: offset %d, want %d (gap or duplicate)", r.Partition, r.Offset, want)
			case r.Offset >= ends[r.Partition]:
				bad = fmt.Errorf("partition %d: offset %d at or past the end offset %d", r.Partition, r.Offset, ends[r.Partition])
			default:
				bad = check(r)
			}
			if bad != nil {
				return
			}
			next[r.Partition] = r.Offset + 1
			res.records++
			res.bytes += int64(len(r.Value))
			if r.Offset+1 == ends[r.Partition] {
				remaining--
			}
		})
		if bad != nil {
			return res, fmt.Errorf("consume %s: %w", topic, bad)
		}
	}
	res.elapsed = time.Since(start)
	return res, nil
}
