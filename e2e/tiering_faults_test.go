package e2e

// Tiered storage under hostile faults in the bucket (issue 9), against one real `strata` process
// and its default file object store (<data-dir>/objects), where a test can damage objects in
// place:
//
//   - a segment object with 4 bytes flipped is never served: consumers of the damaged range get
//     KAFKA_STORAGE_ERROR (retriable), never the altered record; other ranges read fine; the
//     corrupt-read metric counts it; the log names the range and the object; once the object is
//     repaired the range reads again. Both with the manifest's chunk checksums (verified at
//     download) and without them (a version 1 manifest: batches verified before serving).
//   - a partition whose manifest.json is deleted keeps every segment object (orphan cleanup does
//     not take absence for proof), answers reads of its tiered history with KAFKA_STORAGE_ERROR,
//     and serves its history again once the manifest is restored.
//   - a corrupt manifest makes no hot loop: over 10 s the broker writes almost no log lines,
//     uses little CPU and uploads nothing again; a consumer at the earliest offset gets retriable
//     errors instead of a reset to the local log start, and reads from offset 0 once the manifest
//     is restored.
//
// The topics are independent; they share one process to keep the test short. The phases run in
// order because the 10 s quiet window must come before the consumers start.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stratalog/strata/segments"
	"github.com/stratalog/strata/tiering"
)

// The faults test's stream: each topic gets faultRecords records of faultValueLen bytes, in
// batches of at most faultBatchBytes, into 1 MiB segments (segment.bytes' minimum) that local
// retention deletes as soon as they are uploaded (local.retention.bytes=0).
const (
	faultRecords      = 300
	faultMoreRecords  = 80 // produced after the restart: closes a segment that waits for upload
	faultValueLen     = 16 << 10
	faultBatchBytes   = 64 << 10
	faultSegmentBytes = 1 << 20
	// Quiet-window bounds (generous: a loaded 2-core machine; the hot loop of issue 9 wrote
	// 5,000–6,600 lines per second and used up to a core).
	faultWindow        = 10 * time.Second
	faultMaxLines      = 10
	faultMaxCPUPercent = 25
)

// The topics, one per fault.
const (
	faultChunk       = "fault-chunk"      // a damaged object, manifest with chunk checksums
	faultBatch       = "fault-batch"      // a damaged object, version 1 manifest (no checksums)
	faultNoManifest  = "fault-nomanifest" // manifest.json deleted
	faultBadManifest = "fault-badmanifest"
)

// faultValue is the value of record i of topic: a readable prefix, then one letter repeated, so a
// flipped byte (XOR 0xff) is never a valid value.
func faultValue(topic string, i int64) []byte {
	v := fmt.Appendf(nil, "%s-%06d:", topic, i)
	return append(v, bytes.Repeat([]byte{byte('a' + i%26)}, faultValueLen-len(v))...)
}

// checkFaultRecord fails unless r is record r.Offset of its topic, byte for byte.
func checkFaultRecord(r *kgo.Record) error {
	if want := faultValue(r.Topic, r.Offset); !bytes.Equal(r.Value, want) {
		return fmt.Errorf("%s offset %d: the value differs from the one produced (%.40q…)", r.Topic, r.Offset, r.Value)
	}
	return nil
}

// produceFault produces records [from, from+n) of topic to partition 0.
func (p *strataProc) produceFault(t *testing.T, topic string, from, n int64) {
	t.Helper()
	cl := p.kgoClient(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(faultBatchBytes), kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var rs []*kgo.Record
	for i := from; i < from+n; i++ {
		rs = append(rs, &kgo.Record{Value: faultValue(topic, i)})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("producing to %s: %v", topic, err)
	}
	for i, r := range rs {
		if r.Offset != from+int64(i) {
			t.Fatalf("%s: record %d got offset %d", topic, from+int64(i), r.Offset)
		}
	}
}

// ---- the bucket on disk ---------------------------------------------------------------------------

// faultBucket is the file store of a stopped or running broker: <data-dir>/objects.
type faultBucket struct{ dir string }

// manifestPath is the path of topic's partition 0 manifest (the test creates each topic once).
func (fb faultBucket) manifestPath(t *testing.T, topic string) string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(fb.dir, "topics", topic, "*", "0", "manifest.json"))
	if err != nil || len(paths) != 1 {
		t.Fatalf("%s: manifest files %q (%v), want one", topic, paths, err)
	}
	return paths[0]
}

// manifest reads and decodes topic's manifest.
func (fb faultBucket) manifest(t *testing.T, topic string) (*tiering.Manifest, []byte) {
	t.Helper()
	raw, err := os.ReadFile(fb.manifestPath(t, topic))
	if err != nil {
		t.Fatal(err)
	}
	m, err := tiering.DecodeManifest(raw)
	if err != nil {
		t.Fatalf("%s: %v", topic, err)
	}
	return m, raw
}

// objectPath is the file of a segment object.
func (fb faultBucket) objectPath(m *tiering.Manifest, s *tiering.Segment) string {
	return filepath.Join(fb.dir, filepath.FromSlash(m.SegmentKey(s)))
}

// segmentFiles lists topic's segment object files.
func (fb faultBucket) segmentFiles(t *testing.T, topic string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(fb.dir, "topics", topic, "*", "0", "segments", "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// damage is 4 bytes flipped inside one record batch of a segment object.
type damage struct {
	topic                 string
	key                   string          // the object's key
	path                  string          // its file
	pos                   int64           // the first flipped byte, in the object
	seg                   tiering.Segment // its manifest entry
	batchFirst, batchLast segments.Offset // the damaged batch's offsets
}

// flip XORs the 4 damaged bytes with 0xff: once damages the object, twice repairs it.
func (d *damage) flip(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(d.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 4)
	if _, err := f.ReadAt(b, d.pos); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0xff
	}
	if _, err := f.WriteAt(b, d.pos); err != nil {
		t.Fatal(err)
	}
}

// damageSegment flips 4 bytes in the middle of the records of the middle batch of topic's second
// committed segment.
func (fb faultBucket) damageSegment(t *testing.T, topic string) *damage {
	t.Helper()
	m, _ := fb.manifest(t, topic)
	if len(m.Segments) < 3 {
		t.Fatalf("%s: %d committed segments, want at least 3", topic, len(m.Segments))
	}
	seg := m.Segments[1]
	d := &damage{topic: topic, key: m.SegmentKey(&seg), path: fb.objectPath(m, &seg), seg: seg}
	obj, err := os.ReadFile(d.path)
	if err != nil {
		t.Fatal(err)
	}
	var batches [][2]int64 // position, size
	var heads []segments.BatchHeader
	for pos := int64(0); pos < seg.Parts.Log; {
		h, err := segments.ParseBatchHeader(obj[pos:])
		if err != nil {
			t.Fatalf("%s: object %s at %d: %v", topic, d.key, pos, err)
		}
		batches, heads = append(batches, [2]int64{pos, h.Size()}), append(heads, h)
		pos += h.Size()
	}
	mid := len(batches) / 2
	d.pos = batches[mid][0] + segments.BatchHeaderSize + (batches[mid][1]-segments.BatchHeaderSize)/2
	d.batchFirst, d.batchLast = heads[mid].BaseOffset, heads[mid].LastOffset()
	d.flip(t)
	return d
}

// ---- reading -------------------------------------------------------------------------------------

// readRange consumes partition 0 of topic from `from` up to `to` (exclusive), checking every
// record; it fails the test on any error.
func (p *strataProc) readRange(t *testing.T, topic string, from, to int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	cl := p.kgoClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}}),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.FetchMaxPartitionBytes(2<<20))
	next := from
	for next < to {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: reading [%d, %d): stopped at %d: %v", topic, from, to, next, ctx.Err())
		}
		if err := fs.Err(); err != nil {
			t.Fatalf("%s: reading [%d, %d) at %d: %v", topic, from, to, next, err)
		}
		for _, r := range fs.Records() {
			if r.Offset >= to {
				continue
			}
			if r.Offset != next {
				t.Fatalf("%s: got offset %d, want %d", topic, r.Offset, next)
			}
			if err := checkFaultRecord(r); err != nil {
				t.Fatal(err)
			}
			next++
		}
	}
}

// probeRange consumes partition 0 of topic from `from` with retriable errors kept (so the test
// sees them) for up to d, and returns the records and errors it got.
func (p *strataProc) probeRange(t *testing.T, topic string, from int64, d time.Duration) ([]*kgo.Record, []error) {
	t.Helper()
	cl := p.kgoClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}}),
		kgo.KeepRetryableFetchErrors(), kgo.FetchMaxWait(200*time.Millisecond), kgo.FetchMaxPartitionBytes(2<<20))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var recs []*kgo.Record
	var errs []error
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				errs = append(errs, err)
			}
		})
		recs = append(recs, fs.Records()...)
	}
	return recs, errs
}

// logLines returns the lines of the current incarnation's log containing every one of subs.
func (p *strataProc) logLines(subs ...string) []string {
	var out []string
	for _, l := range p.LogOfStart(p.Starts()) {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// ---- the test ------------------------------------------------------------------------------------

func TestTieringFaults(t *testing.T) {
	outer := t
	b := startStrata(t,
		"--remote.log.manager.task.interval.ms=200",
		"--log.retention.check.interval.ms=500",
		"--remote.log.orphan.grace.ms=1000",
	)
	topics := []string{faultChunk, faultBatch, faultNoManifest, faultBadManifest}
	for _, topic := range topics {
		b.createTopic(t, topic, 1, strPtrs(map[string]string{
			"segment.bytes": fmt.Sprint(faultSegmentBytes), "local.retention.bytes": "0",
		}))
		b.produceFault(t, topic, 0, faultRecords)
	}
	for _, topic := range topics {
		waitFor(t, topic+": tiered, local copies deleted", tierWaitTimeout, func() (bool, string) {
			st, err := fetchTierStatus(b, topic)
			if err != nil {
				return false, err.Error()
			}
			s := st[0]
			return s.RemoteSegments >= 3 && s.UploadLagBytes == 0 && s.LocalStartOffset == s.RemoteEndOffset, s.String()
		})
	}

	// Damage the bucket while the broker is down.
	b.Stop()
	fb := faultBucket{dir: filepath.Join(b.DataDir(), "objects")}
	objects := map[string][]string{}
	for _, topic := range topics {
		objects[topic] = fb.segmentFiles(t, topic)
	}
	damaged := map[string]*damage{faultChunk: fb.damageSegment(t, faultChunk), faultBatch: fb.damageSegment(t, faultBatch)}
	// fault-batch: its manifest as version 1 wrote it, without chunk checksums.
	m, _ := fb.manifest(t, faultBatch)
	m.Version = 1
	for i := range m.Segments {
		m.Segments[i].ChunkBytes, m.Segments[i].ChunkCRC32C = 0, nil
	}
	v1, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fb.manifestPath(t, faultBatch), v1, 0o644); err != nil {
		t.Fatal(err)
	}
	saved, savedPath := map[string][]byte{}, map[string]string{}
	for _, topic := range []string{faultNoManifest, faultBadManifest} {
		path := fb.manifestPath(t, topic)
		_, saved[topic] = fb.manifest(t, topic)
		savedPath[topic] = path
		if topic == faultNoManifest {
			err = os.Remove(path)
		} else {
			err = os.WriteFile(path, []byte(`{"version":2,"topic":"`+topic+`","segm`), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Broker.Start(); err != nil {
		t.Fatal(err)
	}

	t.Run("lasting manifest failures stay quiet", func(t *testing.T) {
		// A closed segment waiting for upload on each failing partition: every round would
		// upload it again if the loop re-uploaded on retries.
		for _, topic := range []string{faultNoManifest, faultBadManifest} {
			b.produceFault(t, topic, faultRecords, faultMoreRecords)
		}
		time.Sleep(time.Second)
		countObjects := func() int {
			return len(fb.segmentFiles(t, faultNoManifest)) + len(fb.segmentFiles(t, faultBadManifest))
		}
		lines0, objects0 := len(b.LogOfStart(b.Starts())), countObjects()
		u0, s0, err := b.CPUTime()
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(faultWindow)
		u1, s1, err := b.CPUTime()
		if err != nil {
			t.Fatal(err)
		}
		lines := b.LogOfStart(b.Starts())
		if n := len(lines) - lines0; n > faultMaxLines {
			t.Errorf("%d log lines in %v of lasting failures, want at most %d; the first:\n%s", n, faultWindow, faultMaxLines,
				strings.Join(lines[lines0:min(len(lines), lines0+20)], "\n"))
		}
		cpu := (u1 - u0) + (s1 - s0)
		if pct := 100 * cpu.Seconds() / faultWindow.Seconds(); pct > faultMaxCPUPercent {
			t.Errorf("the broker used %v of CPU in %v (%.0f%% of a core), want below %d%%", cpu, faultWindow, pct, faultMaxCPUPercent)
		} else {
			t.Logf("%d log lines and %v of CPU (%.1f%% of a core) in %v", len(lines)-lines0, cpu, pct, faultWindow)
		}
		if n := countObjects(); n != objects0 {
			t.Errorf("%d segment objects after the window, %d before: uploads went on over an unusable manifest", n, objects0)
		}
		// The failures were reported, once each, with what to do.
		if l := b.logLines("manifest is lost", "topic="+faultNoManifest); len(l) == 0 {
			t.Errorf("no log line says %s's manifest is lost", faultNoManifest)
		}
		if l := b.logLines("level=WARN", "topic="+faultBadManifest, "invalid manifest"); len(l) == 0 {
			t.Errorf("no log line reports %s's corrupt manifest", faultBadManifest)
		}
	})

	// Consumers at the earliest offset of the partitions whose manifest is unusable: they must
	// retry, not reset to the local log start. They keep running until the manifests are back.
	type earliest struct {
		mu   sync.Mutex
		recs []*kgo.Record
	}
	consumers := map[string]*earliest{}
	t.Run("unusable manifest answers retriable errors", func(t *testing.T) {
		adm := b.adminClient(t)
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		for _, topic := range []string{faultNoManifest, faultBadManifest} {
			st := b.tierStatus(t, topic, 1)[0]
			if st.LastError == "" || st.RemoteSegments != 0 || st.LocalStartOffset == 0 {
				t.Errorf("%s: status %v; want the failure shown, no remote tier, a local log start above 0", topic, st)
			}
			lo, err := adm.ListStartOffsets(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			if o, _ := lo.Lookup(topic, 0); !errors.Is(o.Err, kerr.KafkaStorageError) {
				t.Errorf("%s: ListOffsets earliest: offset %d, %v; want KAFKA_STORAGE_ERROR", topic, o.Offset, o.Err)
			}
			recs, errs := b.probeRange(t, topic, 0, 1500*time.Millisecond)
			if len(recs) != 0 || len(errs) == 0 || !errors.Is(errs[0], kerr.KafkaStorageError) {
				t.Errorf("%s: Fetch at 0: %d records, errors %v; want KAFKA_STORAGE_ERROR and nothing else", topic, len(recs), errs)
			}
			// Local data still reads.
			b.readRange(t, topic, st.LocalStartOffset, min(st.LocalStartOffset+5, st.HighWatermark))
			// Nothing was deleted, though orphan cleanup (grace 1 s) was due long ago.
			for _, path := range objects[topic] {
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: %v", topic, err)
				}
			}

			c := &earliest{}
			consumers[topic] = c
			// The whole test's client (closed at its end), not the subtest's.
			cl := b.kgoClient(outer, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchMaxWait(200*time.Millisecond))
			go func() {
				for {
					fs := cl.PollFetches(context.Background())
					if fs.IsClientClosed() {
						return
					}
					c.mu.Lock()
					c.recs = append(c.recs, fs.Records()...)
					c.mu.Unlock()
				}
			}()
		}
		time.Sleep(2 * time.Second)
		for topic, c := range consumers {
			c.mu.Lock()
			if len(c.recs) > 0 {
				t.Errorf("%s: a consumer at the earliest offset got %d records starting at offset %d while the manifest is unusable (a reset)", topic, len(c.recs), c.recs[0].Offset)
			}
			c.mu.Unlock()
		}
		// Restore the manifests; the loops find them after their backoff.
		for _, topic := range []string{faultNoManifest, faultBadManifest} {
			if err := os.WriteFile(savedPath[topic], saved[topic], 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})

	for _, topic := range []string{faultChunk, faultBatch} {
		d := damaged[topic]
		t.Run("damaged object is never served: "+topic, func(t *testing.T) {
			seg := d.seg
			// 2 s: the chunk is quarantined 1 s after the first failure, then 2 s.
			recs, errs := b.probeRange(t, topic, int64(seg.BaseOffset), 2*time.Second)
			storageErr := false
			for _, err := range errs {
				storageErr = storageErr || errors.Is(err, kerr.KafkaStorageError)
			}
			if !storageErr {
				t.Errorf("reading the damaged segment [%d, %d): errors %v, want KAFKA_STORAGE_ERROR", seg.BaseOffset, seg.EndOffset, errs)
			}
			for _, r := range recs {
				if err := checkFaultRecord(r); err != nil {
					t.Errorf("served a damaged record: %v", err)
				}
				if r.Offset >= int64(d.batchFirst) && r.Offset <= int64(d.batchLast) {
					t.Errorf("served offset %d of the damaged batch [%d, %d]", r.Offset, d.batchFirst, d.batchLast)
				}
			}
			// The other remote segments read fine.
			b.readRange(t, topic, 0, int64(seg.BaseOffset))
			b.readRange(t, topic, int64(seg.EndOffset), faultRecords)

			if v, ok := promValue(b.Metrics(), "strata_tiering_remote_read_corrupt_total", `topic="`+topic+`"`); !ok || v < 1 {
				t.Errorf("strata_tiering_remote_read_corrupt_total for %s is %v (present: %v), want at least 1", topic, v, ok)
			}
			rangeText := fmt.Sprintf(`segment_offsets="[%d, %d)"`, seg.BaseOffset, seg.EndOffset)
			if l := b.logLines("corrupt data in the remote tier", "topic="+topic, "object="+d.key, rangeText); len(l) == 0 {
				t.Errorf("no log line names the corrupt object %s and its range %s", d.key, rangeText)
			}

			// Repaired: the range reads again once its quarantine is over.
			d.flip(t)
			b.readRange(t, topic, int64(seg.BaseOffset), faultRecords)
		})
	}

	t.Run("restored manifests serve the whole history", func(t *testing.T) {
		for _, topic := range []string{faultNoManifest, faultBadManifest} {
			c := consumers[topic]
			if c == nil {
				t.Fatalf("%s: no consumer (an earlier subtest failed)", topic)
			}
			const total = faultRecords + faultMoreRecords
			waitFor(t, topic+": the consumer at the earliest offset to read every record", tierWaitTimeout, func() (bool, string) {
				c.mu.Lock()
				defer c.mu.Unlock()
				st, _ := fetchTierStatus(b, topic)
				return len(c.recs) >= total, fmt.Sprintf("%d records; status %v", len(c.recs), st[0])
			})
			c.mu.Lock()
			for i, r := range c.recs[:total] {
				if r.Offset != int64(i) {
					t.Fatalf("%s: record %d has offset %d (the consumer did not start at 0)", topic, i, r.Offset)
				}
				if err := checkFaultRecord(r); err != nil {
					t.Fatal(err)
				}
			}
			c.mu.Unlock()
			for _, path := range objects[topic] {
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: a segment object is gone: %v", topic, err)
				}
			}
		}
	})
}
