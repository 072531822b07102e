package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"

	"github.com/stratalog/strata/broker"
	"github.com/stratalog/strata/internal/harness"
	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/tiering"
)

// Records of the tiering benchmark. Record number seq (0, 1, …, in produce
// order over all partitions) has an 8-byte big-endian key holding seq and,
// as its value, the recordBytes window of the random pool at
// tierValueOffset(seq): the value is a slice of the pool (no copy while
// producing), and a consumer can check every byte of it from the key.

func tierKey(seq int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(seq)) }

func tierValue(pool []byte, seq int64) []byte {
	// The stride (a prime) keeps neighbouring records different and the
	// whole pool in use.
	off := (seq * 4099) % int64(len(pool)-recordBytes)
	return pool[off : off+recordBytes]
}

// tierProduced is what produceRecords measured.
type tierProduced struct {
	records int64
	bytes   int64 // record value bytes acknowledged
	elapsed time.Duration
}

func (p tierProduced) mibps() float64 { return mibPerSec(p.bytes, p.elapsed) }

// produceRecords produces records seq = first … first+n-1 to topic as fast
// as cl takes them and returns once all are acknowledged. Any failed
// record fails the call: with acks=all and an idempotent producer it is a
// broker error.
func produceRecords(ctx context.Context, cl *kgo.Client, topic string, pool []byte, first, n int64) (tierProduced, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		acked    atomic.Int64
		errOnce  sync.Once
		firstErr error
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			errOnce.Do(func() { firstErr = err; cancel() })
			return
		}
		acked.Add(1)
	}
	start := time.Now()
	for seq := first; seq < first+n && ctx.Err() == nil; seq++ {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: tierKey(seq), Value: tierValue(pool, seq)}, promise)
	}
	flushErr := cl.Flush(ctx)
	res := tierProduced{elapsed: time.Since(start), records: acked.Load()}
	res.bytes = res.records * recordBytes
	errOnce.Do(func() {}) // publishes firstErr
	switch {
	case firstErr != nil:
		return res, fmt.Errorf("produce to %s failed after %d acknowledged records: %w", topic, res.records, firstErr)
	case flushErr != nil:
		return res, fmt.Errorf("produce to %s: flush: %w", topic, flushErr)
	case res.records != n:
		return res, fmt.Errorf("produce to %s: %d records produced but %d acknowledged", topic, n, res.records)
	}
	return res, nil
}

// consumeRecords reads every partition of topic from offset 0 up to (not
// including) ends[p], and checks what it reads: offsets contiguous from 0,
// every key a record number below total seen exactly once, every value
// recordBytes long and, for a sample (spotCheckEvery), the bytes produced
// for that number, and total records in all. It fails on
// the first wrong record or fetch error.
func consumeRecords(ctx context.Context, addr, topic string, ends map[int32]int64, pool []byte, total int64) (consumeResult, error) {
	seen := make([]uint64, (total+63)/64) // bit per record number
	res, err := consumeUpTo(ctx, addr, topic, ends, func(r *kgo.Record) error { return checkTierRecord(r, seen, pool, total) })
	if err == nil && res.records != total {
		err = fmt.Errorf("consume %s: %d records up to the end offsets %v, want %d", topic, res.records, ends, total)
	}
	return res, err
}

// spotCheckEvery: consumeRecords compares the value bytes of every
// spotCheckEvery-th record number with what was produced. Comparing all
// of them costs the consumer about 0.3 s of CPU per GiB (each value is a
// cache miss into the 64 MiB pool), a share of the 2-core machine the
// broker would lose; keys, lengths and counts are checked for every record.
const spotCheckEvery = 16

// checkTierRecord checks one consumed record's key and value (see
// consumeRecords; consumeUpTo checks its offset) and marks its number seen.
func checkTierRecord(r *kgo.Record, seen []uint64, pool []byte, total int64) error {
	if len(r.Key) != 8 {
		return fmt.Errorf("partition %d offset %d: key of %d bytes, want 8", r.Partition, r.Offset, len(r.Key))
	}
	seq := int64(binary.BigEndian.Uint64(r.Key))
	switch {
	case seq < 0 || seq >= total:
		return fmt.Errorf("partition %d offset %d: record number %d outside [0, %d)", r.Partition, r.Offset, seq, total)
	case seen[seq/64]&(1<<(seq%64)) != 0:
		return fmt.Errorf("partition %d offset %d: record number %d seen twice", r.Partition, r.Offset, seq)
	case len(r.Value) != recordBytes:
		return fmt.Errorf("partition %d offset %d: record %d: value of %d bytes, want %d", r.Partition, r.Offset, seq, len(r.Value), recordBytes)
	case seq%spotCheckEvery == 0 && !bytes.Equal(r.Value, tierValue(pool, seq)):
		return fmt.Errorf("partition %d offset %d: record %d: value differs from the one produced", r.Partition, r.Offset, seq)
	}
	seen[seq/64] |= 1 << (seq % 64)
	return nil
}

// createTierTopic creates topic with partitions partitions and the given
// configs (max.message.bytes is raised for 1 MiB batches).
func createTierTopic(ctx context.Context, addr, topic string, partitions int32, configs map[string]string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	cfg := map[string]*string{"max.message.bytes": new(fmt.Sprint(topicMaxMessageBytes))}
	for k, v := range configs {
		cfg[k] = new(v)
	}
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, cfg, topic)
	if err != nil {
		return fmt.Errorf("CreateTopics %s: %w", topic, err)
	}
	r, err := resp.On(topic, nil)
	if err != nil {
		return fmt.Errorf("CreateTopics %s: %w", topic, err)
	}
	if r.Err != nil {
		return fmt.Errorf("CreateTopics %s: %w (%s)", topic, r.Err, r.ErrMessage)
	}
	return nil
}

// setTopicConfig sets one config of topic (IncrementalAlterConfigs).
func setTopicConfig(ctx context.Context, addr, topic, name, value string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: name, Value: &value}}, topic)
	if err != nil {
		return fmt.Errorf("IncrementalAlterConfigs %s %s=%s: %w", topic, name, value, err)
	}
	for _, r := range resp {
		if r.Err != nil {
			return fmt.Errorf("IncrementalAlterConfigs %s %s=%s: %w (%s)", topic, name, value, r.Err, r.ErrMessage)
		}
	}
	return nil
}

// listOffsets returns topic's start (earliest) and end offsets per
// partition.
func listOffsets(ctx context.Context, addr, topic string) (starts, ends map[int32]int64, err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	collect := func(what string, offs kadm.ListedOffsets, err error) (map[int32]int64, error) {
		if err != nil {
			return nil, fmt.Errorf("ListOffsets %s %s: %w", what, topic, err)
		}
		m := make(map[int32]int64)
		var errs []error
		offs.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				errs = append(errs, fmt.Errorf("ListOffsets %s %s/%d: %w", what, o.Topic, o.Partition, o.Err))
			}
			m[o.Partition] = o.Offset
		})
		return m, errors.Join(errs...)
	}
	offs, err := adm.ListStartOffsets(ctx, topic)
	if starts, err = collect("earliest", offs, err); err != nil {
		return nil, nil, err
	}
	offs, err = adm.ListEndOffsets(ctx, topic)
	if ends, err = collect("latest", offs, err); err != nil {
		return nil, nil, err
	}
	return starts, ends, nil
}

// tierStatus fetches GET /v1/tiering/status?topic=topic from the broker's
// HTTP listener, one entry per partition, sorted by partition.
func tierStatus(ctx context.Context, httpAddr, topic string) ([]broker.TieringPartitionStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	parts, err := harness.TieringStatus(ctx, httpAddr, topic)
	if err != nil {
		return nil, err
	}
	var out []broker.TieringPartitionStatus
	for _, p := range parts {
		if p.Topic == topic {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b broker.TieringPartitionStatus) int { return int(a.Partition) - int(b.Partition) })
	return out, nil
}

// activeSegmentBase returns the base offset of the active (last) segment
// in a local partition directory: the largest base among its *.log files
// (named by their 20-digit base offset). -1 if there is none.
func activeSegmentBase(dir string) (int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return -1, err
	}
	base := int64(-1)
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok || len(name) != 20 {
			continue
		}
		if b, err := strconv.ParseInt(name, 10, 64); err == nil {
			base = max(base, b)
		}
	}
	return base, nil
}

// partitionDir is the local directory of topic's partition p.
func partitionDir(dataDir, topic string, p int32) string {
	return filepath.Join(dataDir, fmt.Sprintf("%s-%d", topic, p))
}

// uploadWatch follows a tiered topic while it is produced to: every
// uploadPollInterval it reads the partitions' local directories and the
// tiering status, and remembers when the first segment was closed (rolled)
// in any partition and the upload lag: record values in closed segments
// not yet committed to the bucket (the active segment's base offset minus
// the remote end offset, in records of recordBytes).
type uploadWatch struct {
	stop func()
	done chan struct{}

	mu struct {
		sync.Mutex
		firstRoll time.Time // zero until a partition's active segment has base > 0
		lags      []lagSample
		err       error // last status error (polling goes on)
	}
}

type lagSample struct {
	at    time.Time
	bytes int64
}

const uploadPollInterval = 50 * time.Millisecond

func startUploadWatch(ctx context.Context, httpAddr, dataDir, topic string, partitions int32) *uploadWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &uploadWatch{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(uploadPollInterval)
		defer tick.Stop()
		for {
			now := time.Now()
			active := make(map[int32]int64, partitions)
			rolled := false
			for p := range partitions {
				b, err := activeSegmentBase(partitionDir(dataDir, topic, p))
				if err == nil && b > 0 {
					rolled = true
				}
				active[p] = b
			}
			st, err := tierStatus(ctx, httpAddr, topic)
			var lag int64
			for _, p := range st {
				lag += max(0, active[p.Partition]-remoteEndExclusive(p)) * recordBytes
			}
			w.mu.Lock()
			if rolled && w.mu.firstRoll.IsZero() {
				w.mu.firstRoll = now
			}
			if err == nil {
				w.mu.lags = append(w.mu.lags, lagSample{now, lag})
			} else if ctx.Err() == nil {
				w.mu.err = err
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// watchResult is what an uploadWatch saw.
type watchResult struct {
	firstRoll time.Time
	lags      []lagSample
	err       error
}

// finish stops the watch and returns what it saw.
func (w *uploadWatch) finish() watchResult {
	w.stop()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return watchResult{w.mu.firstRoll, w.mu.lags, w.mu.err}
}

// maxLag is the largest upload lag seen, and lagAt the lag of the first
// sample at or after t.
func (r watchResult) maxLag() int64 {
	var m int64
	for _, l := range r.lags {
		m = max(m, l.bytes)
	}
	return m
}

func (r watchResult) lagAt(t time.Time) int64 {
	for _, l := range r.lags {
		if !l.at.Before(t) {
			return l.bytes
		}
	}
	return 0
}

// uploadState is the tiered topic at one poll: whether every closed
// segment (every segment below the active one, per the local directory) is
// uploaded and committed, and how far the remote tier reaches.
type uploadState struct {
	at         time.Time
	uploaded   bool
	remoteEnd  map[int32]int64 // exclusive end offset of the remote tier per partition
	remote     int64           // remoteBytes, all partitions
	segs       int64           // remoteSegments, all partitions
	localStart map[int32]int64
	lastErrors []string
}

// pollUploads reads the status once; a closed segment counts as uploaded
// when the remote tier reaches the base of the active segment and the
// status shows no upload lag.
func pollUploads(ctx context.Context, httpAddr, dataDir, topic string, partitions int32) (uploadState, error) {
	s := uploadState{at: time.Now(), uploaded: true, remoteEnd: map[int32]int64{}, localStart: map[int32]int64{}}
	st, err := tierStatus(ctx, httpAddr, topic)
	if err != nil {
		return s, err
	}
	if len(st) != int(partitions) {
		return s, fmt.Errorf("tiering status of %s lists %d partitions, want %d", topic, len(st), partitions)
	}
	for _, p := range st {
		active, err := activeSegmentBase(partitionDir(dataDir, topic, p.Partition))
		if err != nil {
			return s, err
		}
		end := remoteEndExclusive(p)
		s.remoteEnd[p.Partition] = end
		s.localStart[p.Partition] = p.LocalStartOffset
		s.remote += p.RemoteBytes
		s.segs += int64(p.RemoteSegments)
		if end < active || p.UploadLagBytes > 0 {
			s.uploaded = false
		}
		if p.LastError != "" {
			s.lastErrors = append(s.lastErrors, fmt.Sprintf("%s/%d: %s", p.Topic, p.Partition, p.LastError))
		}
	}
	return s, nil
}

// remoteEndExclusive is one past the last offset in the remote tier (0 when
// nothing is tiered), from the status's remoteEndOffset.
func remoteEndExclusive(p broker.TieringPartitionStatus) int64 {
	if p.RemoteSegments == 0 || p.RemoteEndOffset < 0 {
		return 0
	}
	return p.RemoteEndOffset
}

// waitFor polls cond every uploadPollInterval until it reports done, fails,
// or ctx ends (a hang guard, reported with the last state seen).
func waitFor(ctx context.Context, what string, cond func() (done bool, state string, err error)) error {
	tick := time.NewTicker(uploadPollInterval)
	defer tick.Stop()
	last := "nothing polled"
	for {
		done, state, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if done {
			return nil
		}
		last = state
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w; last seen: %s", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// putObjectSize is the object size of the raw PUT limit: one segment.
const putObjectSize = tierSegmentBytes

// measurePut is the best of limitTrials runs of putTrial.
func measurePut(ctx context.Context, store objectstore.Store, size int64, pool []byte) (float64, error) {
	trial := 0
	return bestOf(func() (float64, error) {
		trial++
		return putTrial(ctx, store, fmt.Sprintf("bench-limit/put-%d", trial), size, pool)
	})
}

// putTrial stores size bytes as putObjectSize objects (windows of the
// random pool) one after another with store.Put under prefix — what the
// uploader does with one partition's closed segments — and returns the
// rate in MiB/s. The objects are deleted afterwards.
func putTrial(ctx context.Context, store objectstore.Store, prefix string, size int64, pool []byte) (float64, error) {
	if int64(len(pool)) < putObjectSize {
		return 0, fmt.Errorf("random pool of %d bytes is smaller than a %d-byte object", len(pool), putObjectSize)
	}
	var keys []string
	defer func() {
		if len(keys) > 0 {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			_ = store.Delete(dctx, keys...)
		}
	}()
	start := time.Now()
	var put int64
	for i := 0; put < size; i++ {
		n := min(putObjectSize, size-put)
		key := fmt.Sprintf("%s/%04d", prefix, i)
		keys = append(keys, key)
		if _, err := store.Put(ctx, key, bytes.NewReader(pool[:n]), n); err != nil {
			return 0, fmt.Errorf("raw PUT %s: %w", key, err)
		}
		put += n
	}
	return mibPerSec(put, time.Since(start)), nil
}

// remoteObject is a stored object and its size.
type remoteObject struct {
	key  string
	size int64
}

// segmentObjects lists topic's segment objects (keys ParseSegmentKey
// accepts) in key order, i.e. per partition in offset order.
func segmentObjects(ctx context.Context, store objectstore.Store, topic string) ([]remoteObject, error) {
	var objs []remoteObject
	for info, err := range store.List(ctx, tiering.TopicPrefix(topic)) {
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", tiering.TopicPrefix(topic), err)
		}
		if _, err := tiering.ParseSegmentKey(info.Key); err == nil {
			objs = append(objs, remoteObject{info.Key, info.Size})
		}
	}
	return objs, nil
}

// measureGet is the best of limitTrials runs of getTrial.
func measureGet(ctx context.Context, store objectstore.Store, objs []remoteObject, size, rangeBytes int64, streams int) (float64, error) {
	return bestOf(func() (float64, error) { return getTrial(ctx, store, objs, size, rangeBytes, streams) })
}

// getTrial reads the objects in order, in ranges of rangeBytes (a chunk of
// the remote cache), until size bytes are read, with streams ranged GETs in
// flight — each stream taking the next range, as the cache's demand
// downloads and read-ahead do — and returns the rate in MiB/s. The bytes
// are discarded: this is the store's rate, without the cache's file.
func getTrial(ctx context.Context, store objectstore.Store, objs []remoteObject, size, rangeBytes int64, streams int) (float64, error) {
	type span struct {
		key    string
		off, n int64
	}
	var spans []span
	var total int64
	for _, o := range objs {
		for off := int64(0); off < o.size && total < size; off += rangeBytes {
			n := min(rangeBytes, o.size-off)
			spans = append(spans, span{o.key, off, n})
			total += n
		}
	}
	if total == 0 {
		return 0, errors.New("raw GET: no segment objects to read")
	}
	var next atomic.Int64
	errs := make(chan error, streams)
	start := time.Now()
	for range streams {
		go func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(spans)) {
					errs <- nil
					return
				}
				s := spans[i]
				rc, _, err := store.Get(ctx, s.key, s.off, s.n)
				if err != nil {
					errs <- fmt.Errorf("raw GET %s [%d, %d): %w", s.key, s.off, s.off+s.n, err)
					return
				}
				got, err := io.Copy(io.Discard, rc)
				rc.Close()
				if err == nil && got != s.n {
					err = fmt.Errorf("%d bytes, want %d", got, s.n)
				}
				if err != nil {
					errs <- fmt.Errorf("raw GET %s [%d, %d): %w", s.key, s.off, s.off+s.n, err)
					return
				}
			}
		}()
	}
	var err error
	for range streams {
		err = errors.Join(err, <-errs)
	}
	if err != nil {
		return 0, err
	}
	return mibPerSec(total, time.Since(start)), nil
}

// freeDiskBytes is the space available to unprivileged users on the file
// system holding dir.
func freeDiskBytes(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// metricSum adds up every sample of the Prometheus metric name (all label
// sets) in a /metrics text; ok is false when there is none.
func metricSum(text, name string) (sum float64, ok bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, found := strings.CutPrefix(line, name)
		if !found || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			sum += v
			ok = true
		}
	}
	return sum, ok
}

// cacheCounters are the broker's remote-cache counters at one moment. A
// counter without samples yet reads as zero (the broker may export a
// labelled counter only once it counted something).
type cacheCounters struct {
	hits, misses, readBytes float64
	reads, readSeconds      float64 // remote reads served and their total duration
	read                    bool    // /metrics was read
	exported                bool    // at least one of the counters has a sample
}

func readCacheCounters(metrics string) cacheCounters {
	c := cacheCounters{read: true}
	var ok [5]bool
	c.hits, ok[0] = metricSum(metrics, "strata_tiering_cache_hits_total")
	c.misses, ok[1] = metricSum(metrics, "strata_tiering_cache_misses_total")
	c.readBytes, ok[2] = metricSum(metrics, "strata_tiering_remote_read_bytes_total")
	c.reads, ok[3] = metricSum(metrics, "strata_tiering_remote_read_duration_seconds_count")
	c.readSeconds, ok[4] = metricSum(metrics, "strata_tiering_remote_read_duration_seconds_sum")
	c.exported = slices.Contains(ok[:], true)
	return c
}

// since describes the counters' change from prev.
func (c cacheCounters) since(prev cacheCounters) string {
	switch {
	case !c.read || !prev.read:
		return "broker metrics unreadable"
	case !c.exported:
		return "no cache counters exported"
	}
	reads := c.reads - prev.reads
	avg := 0.0
	if reads > 0 {
		avg = (c.readSeconds - prev.readSeconds) / reads * 1000
	}
	return fmt.Sprintf("cache hits %.0f, misses %.0f; %.0f remote reads of %.1f MiB on average, %.1f ms each",
		c.hits-prev.hits, c.misses-prev.misses, reads, (c.readBytes-prev.readBytes)/mib/max(reads, 1), avg)
}

// procMeter measures the CPU of another process (the MinIO server) in
// laps, as cpuMeter does for the broker; pid 0 (not found) reads zero.
type procMeter struct {
	pid int
	at  time.Time
	cpu time.Duration
}

// findProcess returns the pid of a process whose command line holds every
// one of args as separate arguments, in order; 0 if there is none.
func findProcess(args ...string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	want := []byte(strings.Join(args, "\x00") + "\x00")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(append(cmd, 0), want) {
			return pid
		}
	}
	return 0
}

func newProcMeter(pid int) *procMeter {
	m := &procMeter{pid: pid}
	m.lap()
	return m
}

// lap returns the process's CPU time per wall-clock second (cores) since
// the previous lap.
func (m *procMeter) lap() float64 {
	now := time.Now()
	cpu := procCPU(m.pid)
	cores := (cpu - m.cpu).Seconds() / now.Sub(m.at).Seconds()
	m.at, m.cpu = now, cpu
	return cores
}

// procCPU is the user+system CPU time of pid from /proc/<pid>/stat (fields
// 14 and 15, in USER_HZ = 100 ticks per second); 0 if unreadable.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(data, ')') // the command name may hold spaces
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * (time.Second / 100)
}
