package e2e

// Tiered storage against a real MinIO server (issue 4): the history of a partition lives in the
// bucket while the local log stays bounded; a broker whose data directory is lost gets its topics
// and history back from the bucket; an object-store outage neither stops produce nor loses data;
// kill -9 during uploads and manifest commits leaves a consistent manifest; and consumers see the
// same records and offsets whether tiering is on or off. The shared helpers are in
// tiering_helpers_test.go.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stratalog/strata/internal/miniotest"
	"github.com/stratalog/strata/tiering"
)

// ---- shared Kafka helpers of the tiering tests -------------------------------------------------

// adminClient returns a kadm client for the broker, closed at the end of the test.
func (p *strataProc) adminClient(t testing.TB) *kadm.Client {
	t.Helper()
	return kadm.NewClient(p.kgoClient(t))
}

// listOffsets is ListOffsets for every partition of topic: at = -2 asks for the earliest offset
// (the log start, remote tier included), -1 for the latest (the high watermark), anything else
// for the first offset whose timestamp is at least at (kadm answers the end offset when there is
// none).
func (p *strataProc) listOffsets(t testing.TB, topic string, at int64) map[int32]kadm.ListedOffset {
	t.Helper()
	adm := p.adminClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var lo kadm.ListedOffsets
	var err error
	switch at {
	case -2:
		lo, err = adm.ListStartOffsets(ctx, topic)
	case -1:
		lo, err = adm.ListEndOffsets(ctx, topic)
	default:
		lo, err = adm.ListOffsetsAfterMilli(ctx, at, topic)
	}
	if err != nil {
		t.Fatalf("ListOffsets %s at %d: %v", topic, at, err)
	}
	out := map[int32]kadm.ListedOffset{}
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Errorf("ListOffsets %s/%d at %d: %v", o.Topic, o.Partition, at, o.Err)
		}
		out[o.Partition] = o
	})
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// topicConfigs returns the value of each named config of topic (DescribeConfigs).
func (p *strataProc) topicConfigs(t testing.TB, topic string, names ...string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	rcs, err := p.adminClient(t).DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("DescribeTopicConfigs %s: %v", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("DescribeTopicConfigs %s: %v %v", topic, err, rc.Err)
	}
	out := map[string]string{}
	for _, c := range rc.Configs {
		for _, n := range names {
			if c.Key == n {
				out[n] = c.MaybeValue()
			}
		}
	}
	return out
}

// strPtrs turns a config map into kadm's form.
func strPtrs(m map[string]string) map[string]*string {
	out := make(map[string]*string, len(m))
	for k, v := range m {
		out[k] = &v
	}
	return out
}

// ---- 1. the history lives in the bucket ---------------------------------------------------------

// The 500 MiB stream of TestTieringHistoryFromBucket: histPartitions partitions of histPerPart
// records, record i of partition p with key histKey(p, i), a histValueLen-byte value
// histValue(p, i) and timestamp t0 + i ms.
const (
	histTotalBytes     = 500 << 20
	histValueLen       = 16 << 10
	histPartitions     = 2
	histPerPart        = histTotalBytes / histValueLen / histPartitions
	histSegmentBytes   = 8 << 20
	histLocalRetention = 16 << 20
)

// histAlphabet: 64 printable characters, so a value is one line of kcat output.
const histAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// histValue appends to dst[:0] the value of record i of partition p: histValueLen characters of
// histAlphabet from a PRNG seeded with (p, i), so any value can be regenerated to check it.
func histValue(dst []byte, p int32, i int64) []byte {
	dst = dst[:0]
	rng := rand.NewPCG(uint64(p)+1, uint64(i))
	for len(dst) < histValueLen {
		x := rng.Uint64()
		for k := 0; k < 8 && len(dst) < histValueLen; k++ {
			dst = append(dst, histAlphabet[x&63])
			x >>= 8
		}
	}
	return dst
}

func histKey(p int32, i int64) []byte { return fmt.Appendf(nil, "p%d-%09d", p, i) }

// checkHist checks one consumed record of the stream against its regeneration (scratch is a
// buffer for it).
func checkHist(scratch *[]byte, p int32, off int64, key, value []byte) error {
	if off < 0 || off >= histPerPart {
		return fmt.Errorf("partition %d: offset %d outside the produced [0, %d)", p, off, histPerPart)
	}
	if want := histKey(p, off); !bytes.Equal(key, want) {
		return fmt.Errorf("partition %d offset %d: key %q, want %q", p, off, key, want)
	}
	*scratch = histValue(*scratch, p, off)
	if !bytes.Equal(value, *scratch) {
		return fmt.Errorf("partition %d offset %d: the value differs from the one produced (%d bytes, want %d)", p, off, len(value), len(*scratch))
	}
	return nil
}

// histSample is what the monitor of TestTieringHistoryFromBucket saw of one partition at one
// moment: the committed manifest (read first), then the local *.log files, split into those the
// manifest covers — uploaded longer ago than histSettle (old) or more recently — and the rest
// (closed segments not uploaded yet, and the active segment); and the status's upload lag.
type histSample struct {
	at                              time.Duration
	local, old, recent, notUploaded int64
	remoteLogBytes, statusLag       int64
	closedNotUploaded               int64
}

// histSettle: a segment uploaded this long ago has been through a local retention pass since
// (passes run every 500 ms, log.retention.check.interval.ms; the rest is a wide scheduling
// margin for a loaded 2-core CI machine, where fsyncs of the 500 MiB produce can stall the
// broker's goroutines for a while).
const histSettle = 5 * time.Second

// observeHist takes a histSample of every partition.
func observeHist(s *tierStore, b *strataProc, topic string, at time.Duration) ([histPartitions]histSample, error) {
	var out [histPartitions]histSample
	ms, err := s.readManifests(topic)
	if err != nil {
		return out, err
	}
	st, err := fetchTierStatus(b, topic)
	if err != nil {
		return out, err
	}
	for p := range int32(histPartitions) {
		sm := histSample{at: at, statusLag: st[p].UploadLagBytes}
		uploadedAt := map[int64]int64{} // base offset → upload time (ms) of the committed segments
		end := int64(0)
		if m := ms[p]; m != nil {
			end = int64(m.EndOffset())
			sm.remoteLogBytes = m.LogBytes()
			for _, seg := range m.Segments {
				uploadedAt[int64(seg.BaseOffset)] = seg.UploadTimeMs
			}
		}
		segs, err := localSegments(b.DataDir(), topic, p)
		if err != nil {
			return out, err
		}
		settled := time.Now().Add(-histSettle).UnixMilli()
		for i, seg := range segs {
			sm.local += seg.size
			up, ok := uploadedAt[seg.base]
			switch {
			case i == len(segs)-1 || segs[i+1].base > end || !ok:
				sm.notUploaded += seg.size
				if i < len(segs)-1 {
					sm.closedNotUploaded += seg.size
				}
			case up < settled:
				sm.old += seg.size
			default:
				sm.recent += seg.size
			}
		}
		out[p] = sm
	}
	return out, nil
}

// TestTieringHistoryFromBucket: 500 MiB into a topic with 8 MiB segments and 16 MiB of local
// retention. The bound on a partition directory's *.log files is Kafka's size rule: a retention
// pass deletes the oldest segment only if it is uploaded and the rest (active segment included)
// still holds at least local.retention.bytes; so after a pass either no uploaded segment is left
// or the rest is under local.retention.bytes + the oldest segment ≤ 16 + 8 MiB (no segment
// exceeds segment.bytes: batches are 1 MB). Hence, while producing, the local segments uploaded
// before the last pass (taken as those uploaded over histSettle ago, per the manifest's upload
// times) total under 24 MiB, whatever the upload lag; segments not uploaded yet, or uploaded
// since, come on top. Once uploads have caught up and a pass has run, the whole directory is
// under 24 MiB. Meanwhile the bucket grows; afterwards the manifests cover every offset from 0
// up to the active segment with no gap to the local log, ListOffsets earliest is 0, franz-go and
// kcat read all 500 MiB from offset 0 byte-exact, and ListOffsets by timestamp finds a record
// that exists only in the bucket.
func TestTieringHistoryFromBucket(t *testing.T) {
	kcat := requireCommand(t, "kcat")
	s := newTierStore(t)
	b := startTiered(t, s, s.minioURL())
	const topic = "tier-history"
	b.createTopic(t, topic, histPartitions, strPtrs(map[string]string{
		"segment.bytes":         strconv.Itoa(histSegmentBytes),
		"local.retention.bytes": strconv.Itoa(histLocalRetention),
	}))
	const caughtUpBound = histLocalRetention + histSegmentBytes

	// Monitor the manifests, the status and the local directories every 250 ms while producing.
	var (
		monMu      sync.Mutex
		samples    [][histPartitions]histSample
		monErr     error
		stopMon    = make(chan struct{})
		monStopped = make(chan struct{})
	)
	start := time.Now()
	go func() {
		defer close(monStopped)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopMon:
				return
			case <-tick.C:
			}
			sm, err := observeHist(s, b, topic, time.Since(start))
			monMu.Lock()
			if err != nil && monErr == nil {
				monErr = err
			}
			if err == nil {
				samples = append(samples, sm)
			}
			monMu.Unlock()
		}
	}()

	t0 := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
	cl := b.kgoClient(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1_000_000),
		kgo.MaxBufferedBytes(64<<20), kgo.ProducerLinger(5*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	var produceErr atomic.Pointer[error]
	for i := int64(0); i < histPerPart; i++ {
		for p := range int32(histPartitions) {
			r := &kgo.Record{Partition: p, Key: histKey(p, i), Value: histValue(nil, p, i), Timestamp: time.UnixMilli(t0 + i)}
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				if err == nil && r.Offset != i {
					err = fmt.Errorf("record %d of partition %d acknowledged at offset %d", i, p, r.Offset)
				}
				if err != nil {
					produceErr.CompareAndSwap(nil, &err)
					cancel()
				}
			})
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flushing the produce: %v", err)
	}
	if e := produceErr.Load(); e != nil {
		t.Fatalf("produce: %v", *e)
	}
	produced := time.Since(start)
	close(stopMon)
	<-monStopped
	t.Logf("produced %d MiB (%d records of %d bytes in %d partitions) in %v", histTotalBytes>>20,
		histPerPart*histPartitions, histValueLen, histPartitions, produced.Round(time.Millisecond))

	// While producing: what local retention answers for — the uploaded segments that have been
	// through a retention pass — stayed under local.retention.bytes + one segment, and the
	// bucket grew.
	monMu.Lock()
	if monErr != nil {
		t.Fatalf("monitoring while producing: %v", monErr)
	}
	var peak, peakNotUploaded, peakStatusLag, prevRemote [histPartitions]int64
	grew := map[int64]bool{}
	for _, sms := range samples {
		var remote int64
		for p, sm := range sms {
			peak[p] = max(peak[p], sm.local)
			peakNotUploaded[p] = max(peakNotUploaded[p], sm.closedNotUploaded)
			peakStatusLag[p] = max(peakStatusLag[p], sm.statusLag)
			if sm.old >= caughtUpBound {
				t.Errorf("at %v partition %d kept %d bytes of segments uploaded over %v ago (of %d local: %d uploaded since, %d not uploaded), not under %d = local.retention.bytes %d + one segment",
					sm.at.Round(time.Millisecond), p, sm.old, histSettle, sm.local, sm.recent, sm.notUploaded, caughtUpBound, histLocalRetention)
			}
			if sm.remoteLogBytes < prevRemote[p] {
				t.Errorf("at %v partition %d's manifest holds %d log bytes, fewer than the %d before (nothing expires here)",
					sm.at.Round(time.Millisecond), p, sm.remoteLogBytes, prevRemote[p])
			}
			prevRemote[p] = sm.remoteLogBytes
			remote += sm.remoteLogBytes
		}
		if remote > 0 {
			grew[remote] = true
		}
	}
	monMu.Unlock()
	t.Logf("while producing: %d samples; peak local *.log bytes per partition %v; peak closed segments not uploaded %v (status uploadLagBytes peaked at %v); %d distinct non-zero sizes of the remote log",
		len(samples), peak, peakNotUploaded, peakStatusLag, len(grew))
	if len(grew) < 2 {
		t.Errorf("the manifests' log bytes took %d distinct non-zero values while 500 MiB were produced; want the bucket to grow during the produce", len(grew))
	}

	// Once uploads have caught up and retention has run: within the bound, no gap between the tiers.
	_, ms := s.waitUploaded(t, b, topic, histPartitions)
	waitFor(t, "local retention applied", tierWaitTimeout, func() (bool, string) {
		var state strings.Builder
		done := true
		for p := range int32(histPartitions) {
			segs, err := localSegments(b.DataDir(), topic, p)
			if err != nil {
				t.Fatal(err)
			}
			n := localLogBytes(segs)
			fmt.Fprintf(&state, "  partition %d: %d bytes in %d *.log files (want under %d): %v\n", p, n, len(segs), caughtUpBound, segs)
			if n >= caughtUpBound {
				done = false
			}
		}
		return done, state.String()
	})
	st := b.tierStatus(t, topic, histPartitions)
	for p := range int32(histPartitions) {
		m := ms[p]
		if m == nil {
			t.Fatalf("partition %d has no manifest in the bucket", p)
		}
		s.checkManifestContiguous(t, m)
		if st[p].LocalStartOffset <= 0 || st[p].LocalStartOffset > int64(m.EndOffset()) {
			t.Errorf("partition %d: local log starts at %d, want within (0, %d] (retention deleted uploaded segments, and only those): %v",
				p, st[p].LocalStartOffset, m.EndOffset(), st[p])
		}
		if st[p].LogStartOffset != 0 {
			t.Errorf("partition %d: status logStartOffset %d, want 0: %v", p, st[p].LogStartOffset, st[p])
		}
		t.Logf("%v; manifest: %d segments, %d log bytes, [%d, %d)", st[p], len(m.Segments), m.LogBytes(), m.LogStartOffset, m.EndOffset())
	}
	for p, o := range b.listOffsets(t, topic, -2) {
		if o.Offset != 0 {
			t.Errorf("ListOffsets earliest of partition %d: %d, want 0 (the bucket holds the history)", p, o.Offset)
		}
	}
	for p, o := range b.listOffsets(t, topic, -1) {
		if o.Offset != histPerPart {
			t.Errorf("ListOffsets latest of partition %d: %d, want %d", p, o.Offset, histPerPart)
		}
	}

	// ListOffsets by timestamp: a record only the bucket has.
	localStart := int64(histPerPart)
	for p := range int32(histPartitions) {
		localStart = min(localStart, st[p].LocalStartOffset)
	}
	target := localStart / 2
	for p, o := range b.listOffsets(t, topic, t0+target) {
		if o.Offset != target || o.Timestamp != t0+target {
			t.Errorf("ListOffsets partition %d after %d (the timestamp of offset %d, below the local start %d): offset %d timestamp %d, want %d %d",
				p, t0+target, target, st[p].LocalStartOffset, o.Offset, o.Timestamp, target, t0+target)
		}
	}
	for p, o := range b.listOffsets(t, topic, t0-1000) {
		if o.Offset != 0 {
			t.Errorf("ListOffsets partition %d before the first timestamp: offset %d, want 0", p, o.Offset)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Read everything back from offset 0: kcat (one process per partition) and franz-go at once.
	readCtx, readCancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer readCancel()
	var wg sync.WaitGroup
	kcatErrs := make([]error, histPartitions)
	for p := range int32(histPartitions) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var scratch []byte
			next := int64(0)
			n, err := kcatStream(readCtx, kcat, b.Addr(), topic, p, func(off int64, key, value []byte) error {
				if off != next {
					return fmt.Errorf("partition %d: offset %d after %d messages (offsets must be dense from 0)", p, off, next)
				}
				next++
				return checkHist(&scratch, p, off, key, value)
			})
			if err == nil && n != histPerPart {
				err = fmt.Errorf("kcat read %d messages of partition %d, want %d", n, p, histPerPart)
			}
			kcatErrs[p] = err
		}()
	}
	var scratch []byte
	ends := map[int32]int64{}
	for p := range int32(histPartitions) {
		ends[p] = histPerPart
	}
	readStart := time.Now()
	err := consumeStream(readCtx, b.Addr(), topic, ends, func(r *kgo.Record) error {
		if want := t0 + r.Offset; r.Timestamp.UnixMilli() != want {
			return fmt.Errorf("partition %d offset %d: timestamp %d, want %d", r.Partition, r.Offset, r.Timestamp.UnixMilli(), want)
		}
		return checkHist(&scratch, r.Partition, r.Offset, r.Key, r.Value)
	})
	if err != nil {
		t.Errorf("franz-go: %v", err)
	}
	wg.Wait()
	if err := errors.Join(kcatErrs...); err != nil {
		t.Errorf("kcat: %v", err)
	}
	t.Logf("franz-go and kcat read the %d MiB back in %v; metrics: %s", histTotalBytes>>20,
		time.Since(readStart).Round(time.Millisecond), tieringMetricsSummary(b))
}

// tieringMetricsSummary sums the tiering metrics, for the log.
func tieringMetricsSummary(b *strataProc) string {
	m, err := b.Broker.Metrics()
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, name := range []string{"strata_tiering_uploaded_bytes_total", "strata_tiering_uploaded_segments_total",
		"strata_tiering_remote_read_bytes_total", "strata_tiering_cache_hits_total", "strata_tiering_cache_misses_total"} {
		v, _ := metricSum(m, name)
		parts = append(parts, fmt.Sprintf("%s=%g", name, v))
	}
	return strings.Join(parts, " ")
}

// ---- 2. a lost data directory comes back from the bucket -----------------------------------------

// TestTieringWipeDataDir: two topics with small segments (s3 backend) are produced to and
// entirely uploaded (a record larger than segment.bytes closes each partition's active segment,
// so everything before it is in a closed segment); then the broker stops, its data directory is
// deleted, and it starts again on the same bucket. The topics are back with their ids, partition
// counts and config overrides; consumers read the tiered history from offset 0 byte-exact; the
// roll records, which were never uploaded, are gone with the disk, so the log ends where the
// tiered history ends, and a new record gets that offset.
func TestTieringWipeDataDir(t *testing.T) {
	s := newTierStore(t)
	b := startTiered(t, s, s.s3URL())
	const n, segmentBytes = 3000, 32768
	topics := []struct {
		name       string
		partitions int32
		configs    map[string]string
	}{
		{"wipe-three", 3, map[string]string{"internal.segment.bytes": strconv.Itoa(segmentBytes), "retention.ms": "864000000",
			"max.message.bytes": "2000000"}},
		{"wipe-one", 1, map[string]string{"internal.segment.bytes": strconv.Itoa(segmentBytes), "local.retention.bytes": "65536",
			"message.timestamp.type": "LogAppendTime"}},
	}
	acked := map[string][]*kgo.Record{}
	tieredEnd := map[string]map[int32]int64{}
	topicIDs := map[string]kadm.TopicID{}
	for _, tp := range topics {
		b.createTopic(t, tp.name, tp.partitions, strPtrs(tp.configs))
		cl := b.kgoClient(t, kgo.DefaultProduceTopic(tp.name), kgo.ProducerLinger(2*time.Millisecond))
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = &kgo.Record{Key: recKey(i), Value: recValue(tp.name, i)}
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		err := cl.ProduceSync(ctx, recs...).FirstErr()
		cancel()
		if err != nil {
			t.Fatalf("produce to %s: %v", tp.name, err)
		}
		acked[tp.name] = recs
		tieredEnd[tp.name] = b.rollSegments(t, tp.name, tp.partitions, segmentBytes)
		_, ms := s.waitUploaded(t, b, tp.name, tp.partitions)
		for p := range tp.partitions {
			s.checkManifestContiguous(t, ms[p])
			topicIDs[tp.name] = kadm.TopicID(ms[p].TopicID)
		}
		t.Logf("%s: tiered up to %v", tp.name, tieredEnd[tp.name])
	}
	// The bucket describes the topics (cluster/metadata.json, written in the background) before
	// the disk goes.
	waitFor(t, "the bucket's cluster metadata lists the topics", tierWaitTimeout, func() (bool, string) {
		md := s.clusterMetadata(t)
		if md == nil {
			return false, "no " + tiering.MetadataKey
		}
		for _, tp := range topics {
			if _, ok := md.Topic(tp.name); !ok {
				return false, fmt.Sprintf("%s lists %d topics, not %s", tiering.MetadataKey, len(md.Topics), tp.name)
			}
		}
		return true, ""
	})
	b.Stop()
	if err := os.RemoveAll(b.DataDir()); err != nil {
		t.Fatal(err)
	}
	b.Restart()

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	details, err := b.adminClient(t).ListTopics(ctx)
	if err != nil {
		t.Fatalf("ListTopics after the restart: %v", err)
	}
	for _, tp := range topics {
		d, ok := details[tp.name]
		switch {
		case !ok:
			t.Fatalf("topic %s is missing after the restart on an empty data directory; topics: %v", tp.name, details.Names())
		case d.Err != nil:
			t.Fatalf("topic %s after the restart: %v", tp.name, d.Err)
		case int32(len(d.Partitions)) != tp.partitions:
			t.Errorf("topic %s has %d partitions after the restart, want %d", tp.name, len(d.Partitions), tp.partitions)
		case d.ID != topicIDs[tp.name]:
			t.Errorf("topic %s has id %s after the restart, the bucket's keys name %s", tp.name, d.ID, topicIDs[tp.name])
		}
		names := make([]string, 0, len(tp.configs))
		for k := range tp.configs {
			names = append(names, k)
		}
		got := b.topicConfigs(t, tp.name, names...)
		for k, v := range tp.configs {
			if got[k] != v {
				t.Errorf("topic %s: %s = %q after the restart, want %q", tp.name, k, got[k], v)
			}
		}
		for p, o := range b.listOffsets(t, tp.name, -2) {
			if o.Offset != 0 {
				t.Errorf("%s/%d: earliest offset %d after the restart, want 0", tp.name, p, o.Offset)
			}
		}
		for p, o := range b.listOffsets(t, tp.name, -1) {
			if o.Offset != tieredEnd[tp.name][p] {
				t.Errorf("%s/%d: latest offset %d after the restart, want %d (the end of the tiered history)", tp.name, p, o.Offset, tieredEnd[tp.name][p])
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		got2 := b.consumeAll(t, tp.name)
		checkRecValues(t, tp.name, tp.name, n, got2)
		checkAcked(t, tp.name, tp.name, acked[tp.name], got2)

		// Produce continues at the end of the tiered history.
		cl := b.kgoClient(t, kgo.DefaultProduceTopic(tp.name), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		for p := range tp.partitions {
			r := &kgo.Record{Partition: p, Key: []byte("after-wipe"), Value: fmt.Appendf(nil, "after-wipe-%d", p)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce to %s/%d after the restart: %v", tp.name, p, err)
			}
			if r.Offset != tieredEnd[tp.name][p] {
				t.Errorf("%s/%d: the first record after the restart got offset %d, want %d", tp.name, p, r.Offset, tieredEnd[tp.name][p])
			}
		}
		all := b.consumeAll(t, tp.name)
		for p := range tp.partitions {
			rs := all[p]
			if int64(len(rs)) != tieredEnd[tp.name][p]+1 || string(rs[len(rs)-1].Value) != fmt.Sprintf("after-wipe-%d", p) {
				t.Errorf("%s/%d: read %d records after producing one more, want %d ending in after-wipe-%d", tp.name, p, len(rs), tieredEnd[tp.name][p]+1, p)
			}
		}
	}
}

// ---- 3. an object-store outage -------------------------------------------------------------------

// TestTieringStoreOutage: a paced idempotent producer (acks=all) runs while MinIO is stopped for
// 30 s and started again. Produce keeps succeeding throughout; while the store is down the broker
// logs `tiering: uploads failing` and reports the growing upload lag (status endpoint and
// strata_tiering_upload_lag_bytes), and it deletes no local
// segment that is not in the bucket (the local log never starts after the remote end); after the
// store returns uploads catch up, and consumers read every record exactly once, in order, at the
// offset it was acknowledged with.
func TestTieringStoreOutage(t *testing.T) {
	s := newTierStore(t)
	b := startTiered(t, s, s.minioURL())
	const topic, tag, partitions, segmentBytes = "tier-outage", "outage", 2, 131072
	const outage = 30 * time.Second
	b.createTopic(t, topic, partitions, strPtrs(map[string]string{
		"internal.segment.bytes": strconv.Itoa(segmentBytes), "local.retention.bytes": strconv.Itoa(segmentBytes),
	}))
	cl := b.kgoClient(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	var acks ackLog
	var produced atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopProduce := make(chan struct{})
	producerDone := make(chan struct{})
	go func() { // about 500 records (250 KiB) a second
		defer close(producerDone)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; {
			select {
			case <-stopProduce:
				return
			case <-tick.C:
			}
			for range 10 {
				cl.Produce(ctx, &kgo.Record{Key: recKey(i), Value: recValue(tag, i)}, acks.promise)
				i++
				produced.Store(int64(i))
			}
		}
	}()
	noProduceErrors := func(when string) {
		t.Helper()
		acks.mu.Lock()
		defer acks.mu.Unlock()
		if len(acks.errs) > 0 {
			t.Fatalf("%s: %d produce errors: %v", when, len(acks.errs), errors.Join(acks.errs[:min(len(acks.errs), 5)]...))
		}
	}

	// Uploads work before the outage.
	waitFor(t, "segments uploaded before the outage", tierWaitTimeout, func() (bool, string) {
		st := b.tierStatus(t, topic, partitions)
		return st[0].RemoteSegments > 0 && st[1].RemoteSegments > 0, fmt.Sprint(st)
	})
	noProduceErrors("before the outage")

	s.srv.Stop()
	down := time.Now()
	acksAtStop := acks.n.Load()
	var maxLagMetric float64
	var maxLagStatus int64
	samples := 0
	for time.Since(down) < outage {
		st := b.tierStatus(t, topic, partitions)
		for p := range int32(partitions) {
			maxLagStatus = max(maxLagStatus, st[p].UploadLagBytes)
			if st[p].LocalStartOffset > remoteEnd(st[p]) {
				t.Errorf("during the outage, partition %d's local log starts at %d, after the end of its remote tier %d: a segment that is not in the bucket was deleted locally (%v)",
					p, st[p].LocalStartOffset, remoteEnd(st[p]), st[p])
			}
		}
		v, _ := metricSum(b.Metrics(), "strata_tiering_upload_lag_bytes")
		maxLagMetric = max(maxLagMetric, v)
		samples++
		time.Sleep(250 * time.Millisecond)
	}
	failingLines := 0
	for _, l := range b.LogOfStart(1) {
		if strings.Contains(l, "tiering: uploads failing") {
			failingLines++
		}
	}
	acksInOutage := acks.n.Load() - acksAtStop
	s.srv.Start()
	t.Logf("during the %v outage: %d records acknowledged, upload lag up to %d bytes (status) / %g (metric), %d `tiering: uploads failing` lines, %d samples",
		outage, acksInOutage, maxLagStatus, maxLagMetric, failingLines, samples)
	noProduceErrors("during the outage")
	if acksInOutage <= 0 {
		t.Errorf("no record was acknowledged while the object store was down")
	}
	// Closed segments piled up while the store was down (the catch-up uploads them), so the lag
	// the broker reports must have been positive.
	if failingLines == 0 {
		t.Errorf("while the object store was down, no `tiering: uploads failing` line was logged")
	}
	if maxLagMetric <= 0 {
		t.Errorf("while the object store was down, strata_tiering_upload_lag_bytes stayed 0")
	}
	if maxLagStatus <= 0 {
		t.Errorf("while the object store was down, GET /v1/tiering/status never reported uploadLagBytes > 0")
	}

	// Produce goes on after the store is back, then stops; uploads catch up.
	acks.waitAcked(t, acks.n.Load()+1000, producerDone)
	close(stopProduce)
	<-producerDone
	flushCtx, flushCancel := context.WithTimeout(context.Background(), opTimeout)
	defer flushCancel()
	if err := cl.Flush(flushCtx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	noProduceErrors("after the outage")
	_, ms := s.waitUploaded(t, b, topic, partitions)
	for p := range int32(partitions) {
		if ms[p] == nil {
			t.Fatalf("partition %d: no manifest", p)
		}
		s.checkManifestContiguous(t, ms[p])
	}

	got := b.consumeAll(t, topic)
	n := int(produced.Load())
	if int(acks.n.Load()) != n {
		t.Fatalf("%d records produced, %d acknowledged", n, acks.n.Load())
	}
	checkRecValues(t, topic, tag, n, got)
	acks.mu.Lock()
	defer acks.mu.Unlock()
	checkAcked(t, topic, tag, acks.acked, got)
}

// remoteEnd is the offset after the last offset in the bucket according to the status (0 when
// nothing is there).
func remoteEnd(st tierStatus) int64 {
	return max(st.RemoteEndOffset, 0)
}

// ---- 4. kill -9 during uploads and commits ------------------------------------------------------

// TestTieringKill9: with small segments and a tiny local retention, uploads and manifest commits
// run all the time while a producer (acks=all) streams; the broker is killed with SIGKILL four
// times, at different points of the stream, each time as soon as a new object shows up in the
// bucket (so typically between a segment object's PUT and the manifest commit that lists it, or
// during the next upload), and restarted. Afterwards every acknowledged record is readable from offset 0 at its offset,
// byte-exact; each manifest lists segments that cover [0, end) without a gap or a duplicate and
// that are all in the bucket; the objects no manifest lists (uploads a kill cut off before their
// commit: at most one per partition and kill, as a partition uploads one segment at a time) are
// segment keys, and orphan cleanup (grace period 3 s here, instead of 15 min) deletes them.
func TestTieringKill9(t *testing.T) {
	s := newTierStore(t)
	b := startTiered(t, s, s.minioURL(), "--remote.log.orphan.grace.ms=3000")
	const topic, tag, partitions, segmentBytes = "tier-kill9", "tkill", 3, 32768
	b.createTopic(t, topic, partitions, strPtrs(map[string]string{
		"internal.segment.bytes": strconv.Itoa(segmentBytes), "local.retention.bytes": strconv.Itoa(2 * segmentBytes),
	}))
	// Kill once this run has put a new segment object into the bucket: uploads are under way.
	killAfterUpload := func() {
		before := len(s.objects(t, tiering.TopicPrefix(topic)))
		waitFor(t, fmt.Sprintf("run %d uploaded a segment", b.Starts()), tierWaitTimeout, func() (bool, string) {
			n := len(s.objects(t, tiering.TopicPrefix(topic)))
			return n > before, fmt.Sprintf("%d objects under the topic, as when the wait began", n)
		})
		b.Kill()
	}
	var acked []*kgo.Record
	next := 0
	kills := 0
	for _, after := range []int64{3000, 9000, 5000, 12000} {
		var a []*kgo.Record
		a, next = streamUntil(t, b, topic, tag, next, after, killAfterUpload)
		kills++
		acked = append(acked, a...)
		b.Restart()
	}

	_, ms := s.waitUploaded(t, b, topic, partitions)
	checkAcked(t, topic, tag, acked, b.consumeAll(t, topic))
	for p := range int32(partitions) {
		m := ms[p]
		if m == nil {
			t.Fatalf("partition %d: no manifest", p)
		}
		s.checkManifestContiguous(t, m)
		orphans := s.unlistedSegments(t, m)
		t.Logf("partition %d: manifest generation %d, epoch %d, %d segments [%d, %d); %d unlisted segment objects now",
			p, m.Generation, m.LeaderEpoch, len(m.Segments), m.LogStartOffset, m.EndOffset(), len(orphans))
		if len(orphans) > kills {
			t.Errorf("partition %d: %d segment objects that the manifest does not list, more than one per kill (%d): %v", p, len(orphans), kills, orphans)
		}
	}
	waitFor(t, "orphans cleaned up", tierWaitTimeout, func() (bool, string) {
		ms := s.manifests(t, topic)
		var left []string
		for p := range int32(partitions) {
			left = append(left, s.unlistedSegments(t, ms[p])...)
		}
		return len(left) == 0, fmt.Sprintf("unlisted segment objects: %v", left)
	})
}

// ---- 5. the same results with tiering on and off --------------------------------------------------

// onOffRec is one record of TestTieringOnOffSameResults's data.
type onOffRec struct {
	part    int32
	key     []byte
	value   []byte
	headers []kgo.RecordHeader
	ts      int64
	codec   int8 // kgo.RecordAttrs.CompressionType of the batch it is produced in
}

// onOffData is the deterministic data of TestTieringOnOffSameResults, one slice per producer
// phase (one codec each): keys (some null, many repeated), values (some null, some empty, every
// byte value), 0–3 headers (some with empty values) and increasing timestamps from t0. The
// uncompressed phase is the largest: about 2 MiB per partition, so that 1 MiB segments roll too.
func onOffData(t0 int64, partitions int32) (codecs []kgo.CompressionCodec, phases [][]onOffRec) {
	codecs = []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(),
		kgo.Lz4Compression(), kgo.ZstdCompression()}
	g := 0
	for ph := range codecs {
		n := 1200
		if ph == 0 {
			n = 12000
		}
		var recs []onOffRec
		for range n {
			g++
			r := onOffRec{part: int32((g + g/7) % int(partitions)), ts: t0 + int64(g)*7, codec: int8(ph)}
			if g%11 != 0 {
				r.key = fmt.Appendf(nil, "key-%d", g%97)
			}
			switch {
			case g%13 == 0: // null value
			case g%17 == 0:
				r.value = []byte{}
			default:
				r.value = recValue("onoff", g)
			}
			for h := range g % 4 {
				hv := fmt.Appendf(nil, "v%d-%d", g, h)
				if h == 2 {
					hv = nil
				}
				r.headers = append(r.headers, kgo.RecordHeader{Key: "h" + strconv.Itoa(h), Value: hv})
			}
			recs = append(recs, r)
		}
		phases = append(phases, recs)
	}
	return codecs, phases
}

// onOffResult is what a consumer sees of the topic: its records and ListOffsets answers.
type onOffResult struct {
	records  map[int32][]*kgo.Record
	earliest map[int32]kadm.ListedOffset
	latest   map[int32]kadm.ListedOffset
	byTime   []map[int32]kadm.ListedOffset // one per onOffTimes entry
}

// sameBytes compares two byte slices, telling null from empty.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// recordDiff describes how two consumed records differ in what a consumer sees, or "".
func recordDiff(a, b *kgo.Record) string {
	var d []string
	if a.Offset != b.Offset {
		d = append(d, fmt.Sprintf("offset %d vs %d", a.Offset, b.Offset))
	}
	if !sameBytes(a.Key, b.Key) {
		d = append(d, fmt.Sprintf("key %q vs %q", a.Key, b.Key))
	}
	if !sameBytes(a.Value, b.Value) {
		d = append(d, fmt.Sprintf("value %s (%d bytes, null %v) vs %s (%d bytes, null %v)", label(a.Value), len(a.Value), a.Value == nil,
			label(b.Value), len(b.Value), b.Value == nil))
	}
	if len(a.Headers) != len(b.Headers) {
		d = append(d, fmt.Sprintf("%d headers vs %d", len(a.Headers), len(b.Headers)))
	} else {
		for i := range a.Headers {
			if a.Headers[i].Key != b.Headers[i].Key || !sameBytes(a.Headers[i].Value, b.Headers[i].Value) {
				d = append(d, fmt.Sprintf("header %d %q=%q vs %q=%q", i, a.Headers[i].Key, a.Headers[i].Value, b.Headers[i].Key, b.Headers[i].Value))
			}
		}
	}
	if a.Timestamp.UnixMilli() != b.Timestamp.UnixMilli() {
		d = append(d, fmt.Sprintf("timestamp %d vs %d", a.Timestamp.UnixMilli(), b.Timestamp.UnixMilli()))
	}
	if a.Attrs.TimestampType() != b.Attrs.TimestampType() {
		d = append(d, fmt.Sprintf("timestamp type %d vs %d", a.Attrs.TimestampType(), b.Attrs.TimestampType()))
	}
	if a.Attrs.CompressionType() != b.Attrs.CompressionType() {
		d = append(d, fmt.Sprintf("compression %d vs %d", a.Attrs.CompressionType(), b.Attrs.CompressionType()))
	}
	return strings.Join(d, ", ")
}

// TestTieringOnOffSameResults: the same deterministic data (3 partitions; keys, null and empty
// values, headers; five codecs; explicit timestamps) produced to a broker tiering with tiny
// segments (16 KiB, minio backend), one tiering with large segments (1 MiB, s3 backend) — both
// with local.retention.bytes=0, read once every closed segment is only in the bucket — and one
// without an object store. Consumers from offset 0 see exactly the produced records (offsets,
// keys, values, headers, timestamps, codecs) in all three, and ListOffsets earliest, latest and
// by timestamp answer the same in all three.
func TestTieringOnOffSameResults(t *testing.T) {
	srv := miniotest.Start(t)
	const topic, partitions = "tier-onoff", 3
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Second).UnixMilli()
	codecs, phases := onOffData(t0, partitions)
	var all []onOffRec
	for _, ph := range phases {
		all = append(all, ph...)
	}
	lastTS := all[len(all)-1].ts
	onOffTimes := []int64{t0 - 60_000, t0, t0 + 7*1000, t0 + 7*1000 + 3, t0 + 7*3333 + 1, t0 + 7*4321, lastTS - 20, lastTS, lastTS + 1}

	// The expected view: per partition, the records in produce order at offsets 0, 1, ….
	want := map[int32][]*kgo.Record{}
	for _, r := range all {
		want[r.part] = append(want[r.part], &kgo.Record{Offset: int64(len(want[r.part])), Key: r.key, Value: r.value,
			Headers: r.headers, Timestamp: time.UnixMilli(r.ts), Attrs: kgo.RecordAttrs{}})
	}

	rows := []struct {
		name     string
		configs  map[string]string
		tieredTo *tierStore
	}{
		{"tiny segments, minio", map[string]string{"internal.segment.bytes": "16384", "local.retention.bytes": "0"}, newTierBucket(t, srv)},
		{"large segments, s3", map[string]string{"segment.bytes": "1048576", "local.retention.bytes": "0"}, newTierBucket(t, srv)},
		{"tiering off", nil, nil},
	}
	results := make([]onOffResult, len(rows))
	for i, row := range rows {
		var b *strataProc
		switch {
		case row.tieredTo == nil:
			b = startStrata(t, "--object-store", "none")
		case strings.HasPrefix(row.name, "large"):
			b = startTiered(t, row.tieredTo, row.tieredTo.s3URL())
		default:
			b = startTiered(t, row.tieredTo, row.tieredTo.minioURL())
		}
		b.createTopic(t, topic, partitions, strPtrs(row.configs))
		for ph, recs := range phases {
			cl := b.kgoClient(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.ProducerBatchCompression(codecs[ph]), kgo.ProducerLinger(2*time.Millisecond),
				kgo.ProducerBatchMaxBytes(8<<10)) // batches well under the tiny segments' 16 KiB
			krecs := make([]*kgo.Record, len(recs))
			for j, r := range recs {
				krecs[j] = &kgo.Record{Partition: r.part, Key: r.key, Value: r.value, Headers: r.headers, Timestamp: time.UnixMilli(r.ts)}
			}
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			err := cl.ProduceSync(ctx, krecs...).FirstErr()
			cancel()
			if err != nil {
				t.Fatalf("%s: produce phase %d: %v", row.name, ph, err)
			}
			cl.Close()
		}
		if row.tieredTo != nil {
			row.tieredTo.waitUploaded(t, b, topic, partitions)
			// local.retention.bytes=0: every uploaded segment goes from the disk, so everything
			// before the active segment is read from the bucket.
			waitFor(t, row.name+": local retention applied", tierWaitTimeout, func() (bool, string) {
				st := b.tierStatus(t, topic, partitions)
				done := true
				var state strings.Builder
				for p := range int32(partitions) {
					active := activeSegmentBase(t, b.DataDir(), topic, p)
					fmt.Fprintf(&state, "  %v; active segment base %d\n", st[p], active)
					if st[p].LocalStartOffset != active {
						done = false
					}
				}
				return done, state.String()
			})
			for p, st := range b.tierStatus(t, topic, partitions) {
				if st.LocalStartOffset == 0 {
					t.Fatalf("%s: partition %d has no closed segment, so nothing is read from the bucket: %v", row.name, p, st)
				}
			}
		}
		res := onOffResult{records: b.consumeAll(t, topic), earliest: b.listOffsets(t, topic, -2), latest: b.listOffsets(t, topic, -1)}
		for _, ts := range onOffTimes {
			res.byTime = append(res.byTime, b.listOffsets(t, topic, ts))
		}
		results[i] = res
		var counts []int
		for p := range int32(partitions) {
			counts = append(counts, len(res.records[p]))
		}
		if row.tieredTo != nil {
			ms := row.tieredTo.manifests(t, topic)
			var segs []int
			for p := range int32(partitions) {
				segs = append(segs, len(ms[p].Segments))
			}
			t.Logf("%s: read %v records per partition; the bucket holds %v segments per partition", row.name, counts, segs)
		} else {
			t.Logf("%s: read %v records per partition", row.name, counts)
		}

		// Against the produced data.
		for p := range int32(partitions) {
			got, exp := res.records[p], want[p]
			if len(got) != len(exp) {
				t.Errorf("%s: partition %d: %d records, want %d", row.name, p, len(got), len(exp))
				continue
			}
			for j := range exp {
				e := *exp[j]
				e.Attrs = got[j].Attrs // the timestamp type must be CreateTime; the codec is checked below
				if d := recordDiff(got[j], &e); d != "" {
					t.Errorf("%s: partition %d record %d: got vs produced: %s", row.name, p, j, d)
					break
				}
				if got[j].Attrs.TimestampType() != 0 {
					t.Errorf("%s: partition %d offset %d: timestamp type %d, want CreateTime", row.name, p, j, got[j].Attrs.TimestampType())
					break
				}
			}
			if res.earliest[p].Offset != 0 || res.latest[p].Offset != int64(len(exp)) {
				t.Errorf("%s: partition %d: earliest %d latest %d, want 0 %d", row.name, p, res.earliest[p].Offset, res.latest[p].Offset, len(exp))
			}
			for k, ts := range onOffTimes {
				wantOff := int64(len(exp))
				for _, r := range exp {
					if r.Timestamp.UnixMilli() >= ts {
						wantOff = r.Offset
						break
					}
				}
				if got := res.byTime[k][p].Offset; got != wantOff {
					t.Errorf("%s: partition %d: ListOffsets after %d: offset %d, want %d", row.name, p, ts, got, wantOff)
				}
			}
		}
		// The codec of each record's batch is the codec of the phase it was produced in.
		seen := map[int32]int{}
		for _, r := range all {
			got := res.records[r.part]
			j := seen[r.part]
			seen[r.part]++
			if j < len(got) && int8(got[j].Attrs.CompressionType()) != r.codec {
				t.Errorf("%s: partition %d offset %d: batch codec %d, want %d", row.name, r.part, j, got[j].Attrs.CompressionType(), r.codec)
				break
			}
		}
		b.Stop()
	}
	if t.Failed() {
		t.FailNow()
	}

	// Across the three: identical consumer views (implied by the checks above; compared directly
	// so a difference is reported as one).
	ref := results[len(results)-1]
	for i, res := range results[:len(results)-1] {
		name := rows[i].name + " vs " + rows[len(rows)-1].name
		for p := range int32(partitions) {
			for j := range ref.records[p] {
				if d := recordDiff(res.records[p][j], ref.records[p][j]); d != "" {
					t.Errorf("%s: partition %d offset %d: %s", name, p, j, d)
					break
				}
			}
			if res.earliest[p] != ref.earliest[p] || res.latest[p] != ref.latest[p] {
				t.Errorf("%s: partition %d: earliest %+v latest %+v vs %+v %+v", name, p, res.earliest[p], res.latest[p], ref.earliest[p], ref.latest[p])
			}
			for k, ts := range onOffTimes {
				if a, c := res.byTime[k][p], ref.byTime[k][p]; a != c {
					t.Errorf("%s: partition %d: ListOffsets after %d: %+v vs %+v", name, p, ts, a, c)
				}
			}
		}
	}
}
