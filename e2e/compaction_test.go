package e2e

// Log compaction end to end: a real `strata` process with its log cleaner, franz-go producers
// that note the offset of every acknowledged record, and consumers reading from offset 0 that
// compare what they read with what was acknowledged. What a user of a compacted topic relies on
// (Kafka semantics): the latest record of every key stays, at the offset it was acknowledged
// with; older records of a key go; offsets are never reused or reordered (they get gaps); the
// high watermark does not move; tombstones replace a key's value and disappear later; records
// without a key are refused; a kill -9 in the middle of a cleaning pass loses nothing.
//
// The tests wait for the cleaner by reading the log again and again until it has the expected
// shape (hang guard: compactionTimeout). Every read, compacted or not yet, must already hold only
// acknowledged records at their acknowledged offsets, in offset order, and every key's latest
// record.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/internal/harness"
)

// compactionTimeout is the hang guard of one wait for the cleaner: a broker whose cleaner has
// not brought a log of this size into shape in that time is broken (or the machine is).
const compactionTimeout = 5 * time.Minute

// cleanerFlags make the cleaner look for work every 200 ms instead of every 15 s when idle.
var cleanerFlags = []string{"--log.cleaner.backoff.ms=200"}

// compactionConfigs are the topic configs of the compacted topics: many 1 MiB segments, cleaning
// as soon as 1% of the cleanable log is dirty, and segment.ms=1000 so that a record produced more
// than a second after the active segment started rolls it (rollAll).
func compactionConfigs(policy string, extra ...string) map[string]*string {
	kv := append([]string{
		"cleanup.policy", policy,
		"segment.bytes", "1048576",
		"segment.ms", "1000",
		"min.cleanable.dirty.ratio", "0.01",
	}, extra...)
	m := map[string]*string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = &kv[i+1]
	}
	return m
}

// compRec is one record the test produced: key, sequence number (unique within a test, growing
// in produce order), tombstone or not, and the size of its value.
type compRec struct {
	key  string
	seq  int
	tomb bool
	size int
	part int32
}

// value is the record's value: nil for a tombstone, else "<key>:<seq>:" followed by
// pseudo-random bytes up to size (incompressible, so that a segment holds about segment.bytes of
// values whatever the codec).
func (r compRec) value() []byte {
	if r.tomb {
		return nil
	}
	b := fmt.Appendf(make([]byte, 0, max(r.size, 32)), "%s:%07d:", r.key, r.seq)
	x := uint64(r.seq)*0x9E3779B97F4A7C15 + 1
	for len(b) < r.size {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b = append(b, byte(x))
	}
	return b
}

func (r compRec) String() string {
	if r.tomb {
		return fmt.Sprintf("tombstone %s#%d", r.key, r.seq)
	}
	return fmt.Sprintf("%s#%d", r.key, r.seq)
}

type compPos struct {
	part int32
	off  int64
}

// compModel is what the producers were acknowledged for one topic: every record at its offset,
// the latest record of each key, and each partition's end (last acknowledged offset + 1).
type compModel struct {
	topic   string
	parts   int32
	codec   kgo.CompressionCodec
	acked   map[int32]map[int64]compRec
	latest  map[string]compPos
	ends    map[int32]int64
	nextSeq int
	markers int // roll markers produced so far (each with its own key)
}

func newCompModel(topic string, parts int32, codec kgo.CompressionCodec) *compModel {
	m := &compModel{topic: topic, parts: parts, codec: codec, acked: map[int32]map[int64]compRec{},
		latest: map[string]compPos{}, ends: map[int32]int64{}}
	for p := range parts {
		m.acked[p] = map[int64]compRec{}
		m.ends[p] = 0
	}
	return m
}

// update is update i of a round-robin over keys keys: key i%keys, the next sequence number, a
// value of size bytes; key k goes to partition k%parts.
func (m *compModel) update(i, keys, size int) compRec {
	k := i % keys
	r := compRec{key: fmt.Sprintf("key-%04d", k), seq: m.nextSeq, size: size, part: int32(k) % m.parts}
	m.nextSeq++
	return r
}

// tombstone is a tombstone for the key of data key k.
func (m *compModel) tombstone(k int) compRec {
	r := compRec{key: fmt.Sprintf("key-%04d", k), seq: m.nextSeq, tomb: true, part: int32(k) % m.parts}
	m.nextSeq++
	return r
}

// produce produces recs (in chunks, waiting for every ack) with a new franz-go client (idempotent,
// acks=all, records placed on compRec.part) and records the offset of each.
func (m *compModel) produce(t *testing.T, b *strataProc, recs []compRec) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(m.topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(m.codec),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	const chunk = 5000
	for len(recs) > 0 {
		n := min(chunk, len(recs))
		krs := make([]*kgo.Record, n)
		which := make(map[*kgo.Record]compRec, n)
		for i, r := range recs[:n] {
			krs[i] = &kgo.Record{Key: []byte(r.key), Value: r.value(), Partition: r.part}
			which[krs[i]] = r
		}
		for _, res := range cl.ProduceSync(ctx, krs...) {
			if res.Err != nil {
				t.Fatalf("%s: produce %s: %v", m.topic, which[res.Record], res.Err)
			}
			m.ack(t, which[res.Record], res.Record.Partition, res.Record.Offset)
		}
		recs = recs[n:]
	}
}

// ack records that r was acknowledged at part/off.
func (m *compModel) ack(t *testing.T, r compRec, part int32, off int64) {
	t.Helper()
	if part != r.part {
		t.Fatalf("%s: %s was sent to partition %d but acknowledged on %d", m.topic, r, r.part, part)
	}
	if old, dup := m.acked[part][off]; dup {
		t.Fatalf("%s/%d: offset %d acknowledged twice, for %s and %s", m.topic, part, off, old, r)
	}
	m.acked[part][off] = r
	if lp, ok := m.latest[r.key]; !ok || off > lp.off {
		if ok && m.acked[part][lp.off].seq > r.seq {
			t.Fatalf("%s/%d: %s acknowledged at offset %d, after %s at %d (the producer's order is lost)",
				m.topic, part, r, off, m.acked[part][lp.off], lp.off)
		}
		m.latest[r.key] = compPos{part, off}
	}
	m.ends[part] = max(m.ends[part], off+1)
}

// produceUpdates produces n updates spread round-robin over keys keys, values of size bytes.
func (m *compModel) produceUpdates(t *testing.T, b *strataProc, n, keys, size int) {
	t.Helper()
	recs := make([]compRec, 0, min(n, 20_000))
	for i := range n {
		recs = append(recs, m.update(i, keys, size))
		if len(recs) == cap(recs) || i == n-1 {
			m.produce(t, b, recs)
			recs = recs[:0]
		}
	}
}

// marker produces a record with a key of its own (so compaction keeps it) to partition p and
// returns its offset.
func (m *compModel) marker(t *testing.T, b *strataProc, p int32, size int) int64 {
	t.Helper()
	r := compRec{key: fmt.Sprintf("marker-%d-%04d", p, m.markers), seq: m.nextSeq, size: size, part: p}
	m.nextSeq++
	m.markers++
	m.produce(t, b, []compRec{r})
	return m.latest[r.key].off
}

// rollAll makes everything produced so far cleanable: per partition it produces markers until
// one starts a new segment (a segment file named after the marker's offset appears), which
// segment.ms=1000 brings about within about a second. The cleaner never touches the active
// segment; after this every record but the markers is in a closed one.
func (m *compModel) rollAll(t *testing.T, b *strataProc) {
	t.Helper()
	for p := range m.parts {
		deadline := time.Now().Add(opTimeout)
		for {
			off := m.marker(t, b, p, 64)
			seg := filepath.Join(b.DataDir(), fmt.Sprintf("%s-%d", m.topic, p), fmt.Sprintf("%020d.log", off))
			if _, err := os.Stat(seg); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s/%d: after %v of producing markers none started a new segment (segment.ms=1000); no %s",
					m.topic, p, opTimeout, seg)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// checkEnds checks that the high watermarks are the ends of what was acknowledged: compaction
// never moves them.
func (m *compModel) checkEnds(t *testing.T, b *strataProc) {
	t.Helper()
	got := b.endOffsets(t, m.topic)
	for p := range m.parts {
		if got[p] != m.ends[p] {
			t.Fatalf("%s/%d: high watermark %d, but the last acknowledged offset is %d (want %d)",
				m.topic, p, got[p], m.ends[p]-1, m.ends[p])
		}
	}
}

// read reads every partition from offset 0 to its end with a fresh client (no group). The last
// record of each partition is a marker in the active segment, which no cleaner touches, so the
// read of a partition ends when that offset arrives.
func (m *compModel) read(t *testing.T, b *strataProc) map[int32][]*kgo.Record {
	t.Helper()
	offs := map[int32]kgo.Offset{}
	for p, end := range m.ends {
		if end > 0 {
			offs[p] = kgo.NewOffset().At(0)
		}
	}
	out := map[int32][]*kgo.Record{}
	if len(offs) == 0 {
		return out
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{m.topic: offs}),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	pending := len(offs)
	for pending > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: reading from offset 0: %d partitions not read to their end after %v", m.topic, pending, opTimeout)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			end := m.ends[r.Partition]
			if r.Offset >= end {
				t.Fatalf("%s/%d: read offset %d, beyond the high watermark %d", m.topic, r.Partition, r.Offset, end)
			}
			out[r.Partition] = append(out[r.Partition], r)
			if r.Offset == end-1 {
				pending--
			}
		})
	}
	return out
}

// compStats describe one read of a compacted topic.
type compStats struct {
	records    int    // records read
	superseded int    // records that are not the latest of their key
	example    string // one superseded record, for messages
	tombs      int    // tombstones read (each is its key's latest record)
	olderTomb  int    // superseded records of keys whose latest record is a tombstone
}

func (s compStats) String() string {
	return fmt.Sprintf("%d records, %d superseded (e.g. %s), %d tombstones, %d older records of tombstoned keys",
		s.records, s.superseded, s.example, s.tombs, s.olderTomb)
}

// check fails the test unless got (one read of every partition from 0) is consistent whatever
// the cleaner did so far: offsets strictly increase; every record is the very one acknowledged at
// its offset (key and value byte-exact, a tombstone still a tombstone); no record lacks a key;
// the latest record of every key whose latest is not a tombstone is there. It returns what the
// read shows of compaction's progress.
func (m *compModel) check(t *testing.T, got map[int32][]*kgo.Record) compStats {
	t.Helper()
	var s compStats
	present := map[string]bool{}
	for p, rs := range got {
		last := int64(-1)
		for _, r := range rs {
			s.records++
			if r.Offset <= last {
				t.Fatalf("%s/%d: offset %d read after offset %d (offsets must strictly increase)", m.topic, p, r.Offset, last)
			}
			last = r.Offset
			w, ok := m.acked[p][r.Offset]
			if !ok {
				t.Fatalf("%s/%d: offset %d holds key %q value %s, but no record was acknowledged at that offset",
					m.topic, p, r.Offset, r.Key, label(r.Value))
			}
			if r.Key == nil {
				t.Fatalf("%s/%d: offset %d holds a record without a key (%s was acknowledged there)", m.topic, p, r.Offset, w)
			}
			if string(r.Key) != w.key || (r.Value == nil) != w.tomb || !bytes.Equal(r.Value, w.value()) {
				t.Fatalf("%s/%d: offset %d holds key %q value %s (null: %v), but %s was acknowledged there",
					m.topic, p, r.Offset, r.Key, label(r.Value), r.Value == nil, w)
			}
			lp := m.latest[w.key]
			if lp.off == r.Offset {
				present[w.key] = true
				if w.tomb {
					s.tombs++
				}
				continue
			}
			s.superseded++
			if s.example == "" {
				s.example = fmt.Sprintf("%s at %d/%d, superseded by %s at %d", w, p, r.Offset, m.acked[p][lp.off], lp.off)
			}
			if m.acked[p][lp.off].tomb {
				s.olderTomb++
			}
		}
	}
	var missing []string
	for k, lp := range m.latest {
		if !present[k] && !m.acked[lp.part][lp.off].tomb {
			missing = append(missing, fmt.Sprintf("%s at %d/%d", m.acked[lp.part][lp.off], lp.part, lp.off))
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Fatalf("%s: the latest record of %d keys is missing, e.g. %s", m.topic, len(missing), strings.Join(missing[:min(5, len(missing))], ", "))
	}
	return s
}

// tombKeys returns how many keys have a tombstone as their latest record.
func (m *compModel) tombKeys() int {
	n := 0
	for _, lp := range m.latest {
		if m.acked[lp.part][lp.off].tomb {
			n++
		}
	}
	return n
}

// waitCompacted reads the topic from offset 0 (after checking the high watermarks) until done
// says the read has the wanted shape, and returns that read's stats. Each read is checked (see
// check); each, if not nil, is called with every read's stats and may produce more records. The
// wait is bounded by compactionTimeout, a hang guard.
func (m *compModel) waitCompacted(t *testing.T, b *strataProc, what string, done func(compStats) bool, each func(compStats)) compStats {
	t.Helper()
	start := time.Now()
	for reads := 1; ; reads++ {
		m.checkEnds(t, b)
		s := m.check(t, m.read(t, b))
		if done(s) {
			t.Logf("%s: %s after %d reads (%v): %s", m.topic, what, reads, time.Since(start).Round(time.Millisecond), s)
			return s
		}
		if time.Since(start) > compactionTimeout {
			t.Fatalf("%s: %s: not reached after %v (%d reads); the last read had %s", m.topic, what, compactionTimeout, reads, s)
		}
		if each != nil {
			each(s)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// fullyCompacted is the shape of a compacted log whose tombstones (if any) are still kept: each
// key once, with its latest record.
func (m *compModel) fullyCompacted(s compStats) bool {
	return s.superseded == 0 && s.tombs == m.tombKeys()
}

// checkFinal asserts the end state of a compacted topic with nothing superseded: exactly one
// record per key (tombstones included if keepTombs), and the log start offsets still 0
// (compaction deletes records, never the log's beginning).
func (m *compModel) checkFinal(t *testing.T, b *strataProc, s compStats, keepTombs bool) {
	t.Helper()
	want := len(m.latest)
	if !keepTombs {
		want -= m.tombKeys()
	}
	if s.superseded != 0 || s.records != want {
		t.Fatalf("%s: %s; want exactly %d records, one per key", m.topic, s, want)
	}
	adm := kadm.NewClient(b.kgoClient(t))
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	starts, err := adm.ListStartOffsets(ctx, m.topic)
	if err != nil {
		t.Fatalf("ListStartOffsets %s: %v", m.topic, err)
	}
	starts.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Errorf("ListStartOffsets %s/%d: %v", o.Topic, o.Partition, o.Err)
		} else if o.Offset != 0 {
			t.Errorf("%s/%d: log start offset %d after compaction, want 0", o.Topic, o.Partition, o.Offset)
		}
	})
}

// TestCompactionLatestPerKey: 100,000 updates over 1,000 keys to a compacted topic with many
// segments; once the cleaner is done a consumer from offset 0 reads each key exactly once, with
// its latest value, at the offset that value was acknowledged with, in offset order, and the
// high watermark has not moved.
func TestCompactionLatestPerKey(t *testing.T) {
	cases := []struct {
		name, policy string
		parts        int32
		codec        kgo.CompressionCodec
	}{
		{"compact-1-partition", "compact", 1, kgo.SnappyCompression()},
		{"compact-delete-3-partitions", "compact,delete", 3, kgo.ZstdCompression()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := startStrata(t, cleanerFlags...)
			topic := "compaction-" + c.name
			b.createTopic(t, topic, c.parts, compactionConfigs(c.policy))
			m := newCompModel(topic, c.parts, c.codec)
			const updates, keys = 100_000, 1000
			m.produceUpdates(t, b, updates, keys, 100)
			m.rollAll(t, b)
			s := m.waitCompacted(t, b, "each key once", m.fullyCompacted, nil)
			if s.records != keys+m.markers {
				t.Fatalf("%s: read %d records, want %d keys + %d markers", topic, s.records, keys, m.markers)
			}
			m.checkFinal(t, b, s, true)
		})
	}
}

// TestCompactionTombstones: tombstones for 100 of 1,000 keys (delete.retention.ms=3000) first
// replace those keys' values, at the tombstones' own offsets, and later disappear, leaving 900
// keys. Once the tombstones were seen, no read from offset 0 shows an older value of those keys
// again. While waiting for the tombstones to go, a marker is produced about every second
// (segment.ms=1000 rolls a segment each time), as on a live topic, so that the test does not
// depend on whether the cleaner schedules a pass at the delete horizon by itself (Kafka's
// revisits a log only when it has new dirty data).
func TestCompactionTombstones(t *testing.T) {
	b := startStrata(t, cleanerFlags...)
	const topic, keys, tombs = "compaction-tombstones", 1000, 100
	b.createTopic(t, topic, 1, compactionConfigs("compact", "delete.retention.ms", "3000"))
	m := newCompModel(topic, 1, kgo.NoCompression())
	m.produceUpdates(t, b, 10_000, keys, 200)
	var ts []compRec
	for k := range tombs {
		ts = append(ts, m.tombstone(k))
	}
	m.produce(t, b, ts)
	m.rollAll(t, b)
	if m.tombKeys() != tombs {
		t.Fatalf("%d keys have a tombstone as their latest record, want %d", m.tombKeys(), tombs)
	}

	m.waitCompacted(t, b, "tombstones in place of the values", m.fullyCompacted, nil)

	lastMarker := time.Now()
	s := m.waitCompacted(t, b, "tombstones removed",
		func(s compStats) bool {
			if s.superseded != 0 {
				t.Fatalf("%s: after the tombstones replaced the values a read shows older records again: %s", topic, s)
			}
			return s.tombs == 0
		},
		func(compStats) {
			if time.Since(lastMarker) >= time.Second {
				// 16 KiB: more than 1% (min.cleanable.dirty.ratio) of the compacted log.
				m.marker(t, b, 0, 16<<10)
				lastMarker = time.Now()
			}
		})
	if s.records != keys-tombs+m.markers {
		t.Fatalf("%s: read %d records, want %d keys + %d markers", topic, s.records, keys-tombs, m.markers)
	}
	m.checkFinal(t, b, s, false)
}

// TestCompactionNullKey: a record without a key cannot be stored in a compacted topic: the
// produce fails with INVALID_RECORD and the log stays empty; a keyed record after it gets offset 0.
func TestCompactionNullKey(t *testing.T) {
	b := startStrata(t)
	for _, policy := range []string{"compact", "compact,delete"} {
		topic := "compaction-null-key-" + strings.ReplaceAll(policy, ",", "-")
		b.createTopic(t, topic, 1, compactionConfigs(policy))
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topic))
		if err != nil {
			t.Fatalf("kgo.NewClient: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		err = cl.ProduceSync(ctx, &kgo.Record{Value: []byte("no key")}).FirstErr()
		cancel()
		cl.Close()
		if !errors.Is(err, kerr.InvalidRecord) {
			t.Fatalf("%s: producing a record without a key: err = %v, want %v", topic, err, kerr.InvalidRecord)
		}
		if end := b.endOffsets(t, topic)[0]; end != 0 {
			t.Fatalf("%s: high watermark %d after the refused record, want 0", topic, end)
		}
		m := newCompModel(topic, 1, kgo.NoCompression())
		m.produce(t, b, []compRec{{key: "keyed", size: 16}})
		if off := m.latest["keyed"].off; off != 0 {
			t.Fatalf("%s: the first keyed record got offset %d, want 0 (the refused record must take no offset)", topic, off)
		}
		m.checkEnds(t, b)
		if s := m.check(t, m.read(t, b)); s.records != 1 {
			t.Fatalf("%s: %s; want only the keyed record", topic, s)
		}
	}
}

// cleanerLines counts the cleaner's "cleaning log" (pass started) and "cleaned log" (pass ended)
// lines for topic among lines.
func cleanerLines(lines []string, topic string) (started, ended int) {
	for _, l := range lines {
		if !strings.Contains(l, " topic="+topic+" ") && !strings.HasSuffix(l, " topic="+topic) {
			continue
		}
		switch {
		case strings.Contains(l, `msg="cleaning log"`):
			started++
		case strings.Contains(l, `msg="cleaned log"`):
			ended++
		}
	}
	return started, ended
}

// recoveryProblems returns the lines of a start's log that show data being cut off or found
// corrupt during recovery: the segment store's "truncating torn or corrupt log tail" and
// "deleting segment after a torn write", any other line mentioning corruption, and any ERROR.
// After a kill -9 with no produce in flight (every record was acknowledged, so fsynced) none
// of them may appear: a cleaning pass cut short must leave each segment fully old or fully new.
func recoveryProblems(lines []string) []string {
	var out []string
	for _, l := range lines {
		low := strings.ToLower(l)
		if strings.Contains(l, "truncating torn or corrupt log tail") || strings.Contains(l, "deleting segment after a torn write") ||
			strings.Contains(low, "corrupt") || strings.Contains(l, "level=ERROR") {
			out = append(out, l)
		}
	}
	return out
}

// TestCompactionKill9: the broker is killed with SIGKILL in the middle of cleaning passes and
// loses nothing. Two brokers take turns on one data directory: a writer with the cleaner off
// (--log.cleaner.enable=false) produces 1 KiB updates over 1,000 keys (100,000 in the first
// round, 10,000 in each later one) and stops cleanly; then a broker with the cleaner on starts,
// finds all of that dirty and begins one long pass, and is killed 0–3.5 s after its log shows
// "cleaning log". Six rounds. Every start after a kill recovers the log intact: recovery reports
// nothing cut off or corrupt, the high watermark is the acknowledged end, every record read is
// the one acknowledged at its offset and every key's latest record is there. At the end the
// cleaner runs to completion and each key is there once, with its latest value at its
// acknowledged offset.
func TestCompactionKill9(t *testing.T) {
	dataDir := t.TempDir()
	// Both brokers wait up to stopTimeout after SIGTERM, as startStrata's do.
	writer := &strataProc{Broker: harness.New(t, harness.Options{DataDir: dataDir, StopTimeout: stopTimeout,
		Args: []string{"--log.cleaner.enable=false"}}), t: t}
	cleaner := &strataProc{Broker: harness.New(t, harness.Options{DataDir: dataDir, StopTimeout: stopTimeout,
		Args: cleanerFlags}), t: t}
	start := func(p *strataProc, what string) {
		t.Helper()
		if err := p.Start(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		lines := p.LogOfStart(p.Starts())
		if bad := recoveryProblems(lines); len(bad) > 0 {
			t.Errorf("%s: the start logged:\n%s", what, strings.Join(bad, "\n"))
		}
		for _, l := range lines {
			if strings.Contains(l, "level=WARN") {
				t.Logf("%s: the start logged: %s", what, l)
			}
		}
	}

	const topic, keys, size = "compaction-kill9", 1000, 1024
	m := newCompModel(topic, 1, kgo.NoCompression())
	// A pass over the first round's 100 MiB takes a few seconds here (reading the dirty section
	// into the key map, then rewriting and swapping segment after segment); the delays spread
	// the kills over both phases.
	delays := []time.Duration{0, 150 * time.Millisecond, 500 * time.Millisecond, 1200 * time.Millisecond,
		2200 * time.Millisecond, 3500 * time.Millisecond}
	midPass := 0
	for round, delay := range delays {
		start(writer, fmt.Sprintf("round %d: writer", round+1))
		n := 10_000
		if round == 0 {
			writer.createTopic(t, topic, 1, compactionConfigs("compact"))
			n = 100_000
		} else {
			// The last start of the cleaner broker was killed.
			m.checkEnds(t, writer)
			t.Logf("round %d: after the kill: %s", round+1, m.check(t, m.read(t, writer)))
		}
		m.produceUpdates(t, writer, n, keys, size)
		m.rollAll(t, writer)
		writer.Stop()

		start(cleaner, fmt.Sprintf("round %d: cleaner", round+1))
		deadline := time.Now().Add(compactionTimeout)
		for {
			if started, _ := cleanerLines(cleaner.LogOfStart(cleaner.Starts()), topic); started > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no %q line for %s in the log of the cleaner's start #%d after %v",
					round+1, "cleaning log", topic, cleaner.Starts(), compactionTimeout)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(delay)
		cleaner.Kill()
		started, ended := cleanerLines(cleaner.LogOfStart(cleaner.Starts()), topic)
		if started > ended {
			midPass++
		}
		t.Logf("round %d: killed %v after a pass started; %d passes started, %d ended", round+1, delay, started, ended)
	}
	t.Logf("%d of %d kills landed while a pass was running (per the log)", midPass, len(delays))

	start(cleaner, "after the last kill: cleaner")
	s := m.waitCompacted(t, cleaner, "each key once", m.fullyCompacted, nil)
	for _, l := range cleaner.LogOfStart(cleaner.Starts()) {
		if strings.Contains(l, `msg="cleaned log"`) {
			t.Logf("the last start's cleaner: %s", l)
		}
	}
	if s.records != keys+m.markers {
		t.Fatalf("%s: read %d records, want %d keys + %d markers", topic, s.records, keys, m.markers)
	}
	m.checkFinal(t, cleaner, s, true)
}

// TestCompactionConsumerOffsets: __consumer_offsets is compacted. 20,000 commits of the same
// partition for one group (kadm CommitOffsets), with 1 MiB segments for __consumer_offsets; once
// the cleaner is done, the closed segments of the group's partition hold at most one record per
// key; after a restart the group's committed offset is the last one committed, and the partition
// holds far fewer records than there were commits.
func TestCompactionConsumerOffsets(t *testing.T) {
	b := startStrata(t, append(cleanerFlags, "--offsets.topic.segment.bytes=1048576")...)
	const topic, group, commits = "compaction-offsets", "compaction-group", 20_000
	b.createTopic(t, topic, 1, nil)
	adm := kadm.NewClient(b.kgoClient(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*compactionTimeout)
	defer cancel()
	start := time.Now()
	for i := 1; i <= commits; i++ {
		var commit kadm.Offsets
		commit.Add(kadm.Offset{Topic: topic, Partition: 0, At: int64(i), LeaderEpoch: -1})
		resp, err := adm.CommitOffsets(ctx, group, commit)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("commit %d of %d: %v", i, commits, err)
		}
	}
	t.Logf("%d commits in %v", commits, time.Since(start).Round(time.Millisecond))

	// The group's __consumer_offsets partition is the only one with records.
	const offsetsTopic = "__consumer_offsets"
	part, end := int32(-1), int64(0)
	for p, e := range b.endOffsets(t, offsetsTopic) {
		if e > 0 {
			if part >= 0 {
				t.Fatalf("%s partitions %d and %d both hold records; one group was used", offsetsTopic, part, p)
			}
			part, end = p, e
		}
	}
	if end < commits {
		t.Fatalf("%s/%d: high watermark %d after %d commits", offsetsTopic, part, end, commits)
	}
	m := &compModel{topic: offsetsTopic, ends: map[int32]int64{part: end}}
	dir := filepath.Join(b.DataDir(), fmt.Sprintf("%s-%d", offsetsTopic, part))

	// offsetRecords reads the partition, checks that it holds only records of the group (offset
	// commits of topic/0 and, if the broker writes them, group metadata), in offset order, and
	// returns what it holds: how many records, how many in the active segment (the one with the
	// highest base offset in dir), how many records of the closed segments repeat a key seen
	// earlier in them, the offset the last offset commit record commits, and the segment files.
	type offsetLog struct {
		total, inActive, closedDups int
		last                        int64
		segs                        []string // base:size of each segment file
	}
	offsetRecords := func() offsetLog {
		t.Helper()
		var ol offsetLog
		active := int64(-1)
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if name, ok := strings.CutSuffix(e.Name(), ".log"); ok && len(name) == 20 {
				if base, err := strconv.ParseInt(name, 10, 64); err == nil {
					active = max(active, base)
					if fi, err := e.Info(); err == nil {
						ol.segs = append(ol.segs, fmt.Sprintf("%d:%d", base, fi.Size()))
					}
				}
			}
		}
		recs := m.read(t, b)[part]
		prev := int64(-1)
		ol.last, ol.total = -1, len(recs)
		seen := map[string]bool{}
		for _, r := range recs {
			if r.Offset <= prev {
				t.Fatalf("%s/%d: offset %d after %d", offsetsTopic, part, r.Offset, prev)
			}
			prev = r.Offset
			if r.Offset >= active {
				ol.inActive++
			} else {
				if seen[string(r.Key)] {
					ol.closedDups++
				}
				seen[string(r.Key)] = true
			}
			if len(r.Key) < 2 {
				t.Fatalf("%s/%d: offset %d: a %d-byte key", offsetsTopic, part, r.Offset, len(r.Key))
			}
			switch version := int16(r.Key[0])<<8 | int16(r.Key[1]); version {
			case 0, 1:
				var k kmsg.OffsetCommitKey
				if err := k.ReadFrom(r.Key); err != nil {
					t.Fatalf("%s/%d: offset %d: offset commit key: %v", offsetsTopic, part, r.Offset, err)
				}
				if k.Group != group || k.Topic != topic || k.Partition != 0 {
					t.Fatalf("%s/%d: offset %d: commit of %s %s/%d; only %s %s/0 was committed",
						offsetsTopic, part, r.Offset, k.Group, k.Topic, k.Partition, group, topic)
				}
				var v kmsg.OffsetCommitValue
				if err := v.ReadFrom(r.Value); err != nil {
					t.Fatalf("%s/%d: offset %d: offset commit value: %v", offsetsTopic, part, r.Offset, err)
				}
				ol.last = v.Offset
			case 2:
				var k kmsg.GroupMetadataKey
				if err := k.ReadFrom(r.Key); err != nil || k.Group != group {
					t.Fatalf("%s/%d: offset %d: group metadata key %+v (%v); only %s was used", offsetsTopic, part, r.Offset, k, err, group)
				}
			default:
				t.Fatalf("%s/%d: offset %d: key version %d", offsetsTopic, part, r.Offset, version)
			}
		}
		return ol
	}

	deadline := time.Now().Add(compactionTimeout)
	for {
		ol := offsetRecords()
		if ol.last != commits {
			t.Fatalf("%s/%d: the last offset commit record commits offset %d, want %d", offsetsTopic, part, ol.last, commits)
		}
		if ol.closedDups == 0 {
			t.Logf("%s/%d: %d records (%d in the active segment) after %d commits, no key twice in the closed segments; segments (base:bytes) %v",
				offsetsTopic, part, ol.total, ol.inActive, commits, ol.segs)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%d: after %v the closed segments still hold %d records superseded by a later one of their key (%d records in all); segments (base:bytes) %v",
				offsetsTopic, part, compactionTimeout, ol.closedDups, ol.total, ol.segs)
		}
		time.Sleep(200 * time.Millisecond)
	}

	b.Stop()
	b.Restart()
	offs, err := kadm.NewClient(b.kgoClient(t)).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("FetchOffsets %s after the restart: %v", group, err)
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok || o.Err != nil || o.At != commits {
		t.Fatalf("after the restart %s's committed offset of %s/0 is %+v (found %v), want %d", group, topic, o, ok, commits)
	}
	if e := b.endOffsets(t, offsetsTopic)[part]; e != end {
		t.Fatalf("%s/%d: high watermark %d after the restart, %d before", offsetsTopic, part, e, end)
	}
	ol := offsetRecords()
	if ol.closedDups != 0 || ol.last != commits {
		t.Fatalf("%s/%d after the restart: %d superseded records in closed segments, last commit record %d (want 0, %d)",
			offsetsTopic, part, ol.closedDups, ol.last, commits)
	}
	// Far fewer records than commits: besides the active segment, which the cleaner never
	// touches, at most one record per key (the offset key, perhaps a group metadata key) is left.
	t.Logf("%s/%d after the restart: %d records (%d in the active segment) after %d commits", offsetsTopic, part, ol.total, ol.inActive, commits)
	if ol.total-ol.inActive > 2 || ol.total*2 > commits {
		t.Fatalf("%s/%d: %d records (%d in the active segment) after %d commits and compaction; want at most 2 outside the active segment and fewer than half the commits in all; segments (base:bytes) %v",
			offsetsTopic, part, ol.total, ol.inActive, commits, ol.segs)
	}
}
