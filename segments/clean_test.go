package segments

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// keyedRecord is one record of a compaction test.
type keyedRecord struct {
	key   []byte // nil: no key
	value []byte // nil: tombstone
}

// makeKeyedBatch encodes records into one batch with codec, timestamps
// baseTs, baseTs+1, …
func makeKeyedBatch(tb testing.TB, codec int8, baseTs int64, producer int64, recs []keyedRecord) []byte {
	tb.Helper()
	var raw []byte
	for i, r := range recs {
		rec := kmsg.Record{TimestampDelta64: int64(i), OffsetDelta: int32(i), Key: r.key, Value: r.value}
		body := rec.AppendTo(nil)
		rec.Length = int32(len(body) - 1)
		raw = rec.AppendTo(raw)
	}
	pid, epoch, seq := int64(-1), int16(-1), int32(-1)
	if producer >= 0 {
		pid, epoch, seq = producer, 0, 0
	}
	return finishBatch(kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(codec),
		LastOffsetDelta: int32(len(recs) - 1), FirstTimestamp: baseTs, MaxTimestamp: baseTs + int64(len(recs)-1),
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq, NumRecords: int32(len(recs)),
		Records: compress(tb, codec, false, raw),
	})
}

// storedRecord is a record read back from the log, decoded with franz-go.
type storedRecord struct {
	offset    Offset
	timestamp int64
	key       string
	value     []byte
	null      bool
}

// readRecords reads the whole log from `from` (Read, following gaps) and
// decodes every record with kmsg and kgo's decompressor, independently of
// the cleaner's own decoding.
func readRecords(t *testing.T, l *Log, from Offset) ([]storedRecord, []BatchHeader) {
	t.Helper()
	var out []storedRecord
	var headers []BatchHeader
	dec := kgo.DefaultDecompressor()
	end := l.EndOffset()
	for from < end {
		r, err := l.Read(from, end, 1<<20, true)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		b := readAll(t, r)
		if len(b) == 0 {
			t.Fatalf("Read(%d) returned nothing below the end %d", from, end)
		}
		for len(b) > 0 {
			h, err := ParseBatchHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			if got := batchCRC(b[:h.Size()]); got != h.CRC {
				t.Fatalf("batch at %d: CRC %#x, computed %#x", h.BaseOffset, h.CRC, got)
			}
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(b[:h.Size()]); err != nil {
				t.Fatalf("batch at %d: %v", h.BaseOffset, err)
			}
			recs, err := dec.Decompress(rb.Records, kgo.CompressionCodecType(h.Compression()))
			if err != nil {
				t.Fatalf("batch at %d: decompress: %v", h.BaseOffset, err)
			}
			for i := range int(rb.NumRecords) {
				var rec kmsg.Record
				n := 0
				for j := 0; j < len(recs); j++ { // length varint
					if recs[j]&0x80 == 0 {
						n = j + 1
						break
					}
				}
				l, _ := varintOf(recs)
				if err := rec.ReadFrom(recs[:n+int(l)]); err != nil {
					t.Fatalf("batch at %d record %d: %v", h.BaseOffset, i, err)
				}
				recs = recs[n+int(l):]
				out = append(out, storedRecord{
					offset: h.BaseOffset + Offset(rec.OffsetDelta), timestamp: rb.FirstTimestamp + rec.TimestampDelta64,
					key: string(rec.Key), value: rec.Value, null: rec.Value == nil,
				})
			}
			if len(recs) != 0 {
				t.Fatalf("batch at %d: %d bytes after the records", h.BaseOffset, len(recs))
			}
			headers = append(headers, h)
			from = h.NextOffset()
			b = b[h.Size():]
		}
	}
	return out, headers
}

func varintOf(b []byte) (int64, int) {
	var ux uint64
	for i, c := range b {
		ux |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return int64(ux>>1) ^ -int64(ux&1), i + 1
		}
	}
	return 0, 0
}

func compactConfig() Config {
	cfg := testConfig()
	cfg.SegmentBytes = 8 << 10
	cfg.Compact = true
	cfg.MinCleanableRatio = 0.5
	cfg.DeleteRetention = time.Hour
	return cfg
}

// update is one produced record: what the test expects back.
type update struct {
	offset Offset
	key    string
	value  []byte
}

// produceUpdates appends n records over keys distinct keys, batchSize per
// batch, and returns every record with its offset.
func produceUpdates(t *testing.T, l *Log, codec int8, n, keys, batchSize int, seq *int) []update {
	t.Helper()
	var out []update
	for i := 0; i < n; i += batchSize {
		var recs []keyedRecord
		for j := i; j < min(n, i+batchSize); j++ {
			*seq++
			k := fmt.Sprintf("key-%03d", (*seq*7)%keys)
			recs = append(recs, keyedRecord{key: []byte(k), value: fmt.Appendf(nil, "%s=%d", k, *seq)})
		}
		b := makeKeyedBatch(t, codec, t0.UnixMilli()+int64(*seq), -1, recs)
		hs, err := ValidateBatches(b, 1<<20, false)
		if err != nil {
			t.Fatal(err)
		}
		info, err := l.Append(b, hs, 1, t0)
		if err != nil {
			t.Fatal(err)
		}
		for j, r := range recs {
			out = append(out, update{offset: info.FirstOffset + Offset(j), key: string(r.key), value: r.value})
		}
	}
	return out
}

// latest returns each key's last update.
func latest(us []update) map[string]update {
	m := map[string]update{}
	for _, u := range us {
		m[u.key] = u
	}
	return m
}

// rollAndSync closes the active segment (by appending one record with a
// fresh key into a new segment) and syncs, so that everything before is
// cleanable.
func rollAndSync(t *testing.T, l *Log, key string) update {
	t.Helper()
	l.mu.Lock()
	if _, err := l.rollLocked(); err != nil {
		t.Fatal(err)
	}
	l.mu.Unlock()
	b := makeKeyedBatch(t, CompressionNone, t0.UnixMilli(), -1, []keyedRecord{{key: []byte(key), value: []byte("tail")}})
	hs, _ := ValidateBatches(b, 1<<20, false)
	info, err := l.Append(b, hs, 1, t0)
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, l)
	return update{offset: info.FirstOffset, key: key, value: []byte("tail")}
}

// checkCompacted asserts that the log holds exactly want's records (key →
// latest update) at their offsets, in offset order, plus the records of
// extra (appended after the cleanable section).
func checkCompacted(t *testing.T, l *Log, want map[string]update) {
	t.Helper()
	got, _ := readRecords(t, l, l.StartOffset())
	seen := map[string]bool{}
	prev := Offset(-1)
	for _, r := range got {
		if r.offset <= prev {
			t.Fatalf("offset %d after %d", r.offset, prev)
		}
		prev = r.offset
		w, ok := want[r.key]
		if !ok {
			t.Fatalf("unexpected key %q at offset %d", r.key, r.offset)
		}
		if seen[r.key] {
			t.Fatalf("key %q appears twice (again at offset %d)", r.key, r.offset)
		}
		seen[r.key] = true
		if r.offset != w.offset || string(r.value) != string(w.value) {
			t.Fatalf("key %q: got %q at offset %d, want %q at %d", r.key, r.value, r.offset, w.value, w.offset)
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("%d keys read, want %d", len(seen), len(want))
	}
}

func TestCleanKeepsLatestPerKey(t *testing.T) {
	for _, codec := range []int8{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		t.Run(codecName(codec), func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, dir, compactConfig())
			seq := 0
			ups := produceUpdates(t, l, codec, 3000, 100, 10, &seq)
			tail := rollAndSync(t, l, "tail")
			endBefore := l.EndOffset()
			if c := l.CheckClean(t0); !c.Due || c.Reason != "dirty ratio" || c.DirtyRatio != 1 {
				t.Fatalf("CheckClean before the first pass = %+v, want due by dirty ratio 1", c)
			}
			st, err := l.Clean(context.Background(), CleanOptions{DedupeBufferBytes: 1 << 20, Now: t0})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", st)
			if st.RecordsRemoved != 3000-100 || st.CleanedTo != tail.offset {
				t.Fatalf("removed %d records and cleaned to %d, want %d and %d", st.RecordsRemoved, st.CleanedTo, 3000-100, tail.offset)
			}
			want := latest(ups)
			want["tail"] = tail
			checkCompacted(t, l, want)
			if l.EndOffset() != endBefore {
				t.Fatalf("end offset moved from %d to %d", endBefore, l.EndOffset())
			}
			if c := l.CheckClean(t0); c.Due {
				t.Fatalf("CheckClean right after a pass = %+v, want not due", c)
			}
			// Every offset, including those compacted away, reads from
			// the next surviving record.
			recs, _ := readRecords(t, l, 0)
			// Timestamp lookups find kept records in compacted batches
			// (offset deltas with gaps).
			for _, r := range recs[:len(recs)-1] {
				off, ts, found, err := l.OffsetForTimestamp(r.timestamp)
				if err != nil || !found || off != r.offset || ts != r.timestamp {
					t.Fatalf("OffsetForTimestamp(%d) = %d, %d, %v, %v; want offset %d", r.timestamp, off, ts, found, err, r.offset)
				}
			}
			for _, o := range []Offset{1, 57, tail.offset - 1} {
				r, err := l.Read(o, l.EndOffset(), 1<<20, true)
				if err != nil {
					t.Fatal(err)
				}
				b := readAll(t, r)
				h, err := ParseBatchHeader(b)
				if err != nil || h.NextOffset() <= o {
					t.Fatalf("Read(%d) gave a batch ending at %d (%v)", o, h.NextOffset(), err)
				}
			}
			// Reopen (clean) and reopen after a crash with the indexes
			// gone: the same records.
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openTest(t, dir, compactConfig())
			checkCompacted(t, l, want)
			crash(l)
			for _, p := range segFiles(t, dir, indexSuffix) {
				os.Remove(p)
			}
			os.Remove(filepath.Join(dir, cleanShutdownFile))
			l = openTest(t, dir, compactConfig())
			defer l.Close()
			checkCompacted(t, l, want)
			if got, _ := readRecords(t, l, 0); len(got) != len(recs) {
				t.Fatalf("%d records after reopening, %d before", len(got), len(recs))
			}
		})
	}
}

func TestCleanTombstones(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, compactConfig())
	defer l.Close()
	seq := 0
	ups := produceUpdates(t, l, CompressionNone, 500, 20, 5, &seq)
	var tomb []keyedRecord
	for k := range 5 {
		tomb = append(tomb, keyedRecord{key: fmt.Appendf(nil, "key-%03d", k)})
	}
	b := makeKeyedBatch(t, CompressionNone, t0.UnixMilli(), -1, tomb)
	hs, _ := ValidateBatches(b, 1<<20, false)
	info, err := l.Append(b, hs, 1, t0)
	if err != nil {
		t.Fatal(err)
	}
	tail := rollAndSync(t, l, "tail")
	want := latest(ups)
	for i, r := range tomb {
		want[string(r.key)] = update{offset: info.FirstOffset + Offset(i), key: string(r.key)}
	}
	want["tail"] = tail

	now := t0
	if _, err := l.Clean(context.Background(), CleanOptions{DedupeBufferBytes: 1 << 20, Now: now}); err != nil {
		t.Fatal(err)
	}
	checkCompacted(t, l, want) // tombstones stay for delete.retention.ms
	if c := l.CheckClean(now.Add(time.Hour - time.Millisecond)); c.Due {
		t.Fatalf("due before the delete horizon: %+v", c)
	}
	later := now.Add(time.Hour)
	c := l.CheckClean(later)
	if !c.Due || c.Reason != "delete horizon" {
		t.Fatalf("CheckClean at the delete horizon = %+v", c)
	}
	// The horizon survives a restart.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, compactConfig())
	if c := l.CheckClean(later); !c.Due {
		t.Fatalf("after reopening, CheckClean at the delete horizon = %+v", c)
	}
	if _, err := l.Clean(context.Background(), CleanOptions{DedupeBufferBytes: 1 << 20, Now: later}); err != nil {
		t.Fatal(err)
	}
	for _, r := range tomb {
		delete(want, string(r.key))
	}
	checkCompacted(t, l, want)
	if c := l.CheckClean(later.Add(time.Hour)); c.Due {
		t.Fatalf("still due after the tombstones went: %+v", c)
	}
}

func TestCleanBoundedKeyMap(t *testing.T) {
	l := openTest(t, t.TempDir(), compactConfig())
	defer l.Close()
	seq := 0
	ups := produceUpdates(t, l, CompressionNone, 4000, 400, 10, &seq)
	tail := rollAndSync(t, l, "tail")
	want := latest(ups)
	want["tail"] = tail
	// 8 KiB holds 256 slots, 230 keys: each pass maps part of the
	// dirty section; repeated passes converge.
	passes := 0
	for l.CheckClean(t0).Due || passes == 0 {
		st, err := l.Clean(context.Background(), CleanOptions{DedupeBufferBytes: 8 << 10, Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		passes++
		t.Logf("pass %d: %+v", passes, st)
		if passes > 50 {
			t.Fatalf("no convergence: %+v", st)
		}
	}
	// The final pass may leave dirty data below the ratio: clean it.
	l.mu.Lock()
	l.mu.cfg.MinCleanableRatio = 0
	l.mu.Unlock()
	for l.CheckClean(t0).Due {
		if _, err := l.Clean(context.Background(), CleanOptions{DedupeBufferBytes: 8 << 10, Now: t0}); err != nil {
			t.Fatal(err)
		}
		passes++
	}
	t.Logf("%d passes", passes)
	if passes < 2 {
		t.Fatalf("an 8 KiB map cleaned 400 keys in one pass")
	}
	checkCompacted(t, l, want)
}

func TestCleanKeepsLastProducerBatch(t *testing.T) {
	for _, codec := range []int8{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		t.Run(codecName(codec), func(t *testing.T) { testCleanKeepsLastProducerBatch(t, codec) })
	}
}

func testCleanKeepsLastProducerBatch(t *testing.T, codec int8) {
	l := openTest(t, t.TempDir(), compactConfig())
	defer l.Close()
	var lastOffset Offset
	for i := range 3 {
		b := makeKeyedBatch(t, codec, t0.UnixMilli(), 7, []keyedRecord{{key: []byte("k"), value: fmt.Appendf(nil, "v%d", i)}})
		hs, _ := ValidateBatches(b, 1<<20, false)
		info, err := l.Append(b, hs, 1, t0)
		if err != nil {
			t.Fatal(err)
		}
		lastOffset = info.LastOffset
	}
	// A later record of the same key, from another (non-idempotent)
	// writer, supersedes every producer-7 record.
	b := makeKeyedBatch(t, CompressionNone, t0.UnixMilli(), -1, []keyedRecord{{key: []byte("k"), value: []byte("final")}})
	hs, _ := ValidateBatches(b, 1<<20, false)
	if _, err := l.Append(b, hs, 1, t0); err != nil {
		t.Fatal(err)
	}
	rollAndSync(t, l, "tail")
	keep := func(pid int64, last Offset) bool { return pid == 7 && last == lastOffset }
	if _, err := l.Clean(context.Background(), CleanOptions{DedupeBufferBytes: 1 << 20, Now: t0, KeepProducerBatch: keep}); err != nil {
		t.Fatal(err)
	}
	recs, headers := readRecords(t, l, 0)
	if len(recs) != 2 || string(recs[0].value) != "final" {
		t.Fatalf("records %+v, want final and tail", recs)
	}
	if len(headers) != 3 || headers[0].ProducerID != 7 || headers[0].RecordCount != 0 || headers[0].LastOffset() != lastOffset ||
		headers[0].Compression() != CompressionNone || headers[0].Size() != BatchHeaderSize {
		t.Fatalf("headers %+v: want producer 7's last batch kept first as a bare, uncompressed header", headers)
	}
	// A second pass reads the kept header without trouble.
	l.mu.Lock()
	l.mu.cleanedTo = 0
	l.mu.Unlock()
	if _, err := l.Clean(context.Background(), CleanOptions{DedupeBufferBytes: 1 << 20, Now: t0, KeepProducerBatch: keep}); err != nil {
		t.Fatalf("second pass: %v", err)
	}
}

// TestCleanSwapCrash interrupts the swap of a cleaned segment at every step
// and checks that reopening yields either the old or the cleaned log,
// never a mix, and that the next pass finishes the work.
func TestCleanSwapCrash(t *testing.T) {
	for step := range 4 {
		t.Run(fmt.Sprint("step", step), func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, dir, compactConfig())
			seq := 0
			ups := produceUpdates(t, l, CompressionNone, 3000, 100, 10, &seq)
			tail := rollAndSync(t, l, "tail")
			before, _ := readRecords(t, l, 0)
			want := latest(ups)
			want["tail"] = tail

			crashErr := errors.New("simulated crash")
			swapStepHook = func(s int) error {
				if s == step {
					return crashErr
				}
				return nil
			}
			defer func() { swapStepHook = nil }()
			_, err := l.Clean(context.Background(), CleanOptions{DedupeBufferBytes: 1 << 20, Now: t0})
			if !errors.Is(err, crashErr) {
				t.Fatalf("Clean = %v, want the simulated crash", err)
			}
			swapStepHook = nil
			crash(l)
			l = openTest(t, dir, compactConfig())
			defer l.Close()
			if m, _ := filepath.Glob(filepath.Join(dir, "*"+cleanedSuffix)); len(m) > 0 {
				t.Fatalf("cleaned files left after reopening: %v", m)
			}
			if _, err := os.Stat(filepath.Join(dir, cleanerSwapFile)); !os.IsNotExist(err) {
				t.Fatalf("swap file left after reopening: %v", err)
			}
			got, _ := readRecords(t, l, 0)
			// Either nothing of the group changed (old records, in
			// full), or the first group was swapped in: every record
			// still there is one of the originals at its offset, and the
			// latest value of each key is there.
			orig := map[Offset]storedRecord{}
			for _, r := range before {
				orig[r.offset] = r
			}
			for _, r := range got {
				o, ok := orig[r.offset]
				if !ok || o.key != r.key || string(o.value) != string(r.value) {
					t.Fatalf("offset %d: %q=%q is not the original record", r.offset, r.key, r.value)
				}
			}
			have := map[Offset]bool{}
			for _, r := range got {
				have[r.offset] = true
			}
			for k, u := range want {
				if !have[u.offset] {
					t.Fatalf("latest record of %q (offset %d) lost", k, u.offset)
				}
			}
			if _, err := l.Clean(context.Background(), CleanOptions{DedupeBufferBytes: 1 << 20, Now: t0}); err != nil {
				t.Fatal(err)
			}
			checkCompacted(t, l, want)
		})
	}
}

func TestOffsetMap(t *testing.T) {
	m := newOffsetMap(offsetMapSlotsFor(1000, 1<<20))
	for i := range 1000 {
		if !m.put(fmt.Appendf(nil, "k%d", i%300), Offset(i)) {
			t.Fatalf("put %d failed", i)
		}
	}
	for k := range 300 {
		want := Offset(k + 900)
		if k+900 >= 1000 {
			want = Offset(k + 600)
		}
		if got := m.get(fmt.Appendf(nil, "k%d", k)); got != want {
			t.Fatalf("k%d: %d, want %d", k, got, want)
		}
	}
	if got := m.get([]byte("absent")); got != -1 {
		t.Fatalf("absent key: %d", got)
	}
	small := newOffsetMap(offsetMapSlotsFor(1000, 24*16))
	n := 0
	for small.put(fmt.Appendf(nil, "k%d", n), Offset(n)) {
		n++
	}
	if n != 14 || len(small.slots) > 24*16 {
		t.Fatalf("a 16-slot map took %d keys in %d bytes", n, len(small.slots))
	}
}

func TestValidateRequiresKeysForCompactedTopics(t *testing.T) {
	keyed := makeKeyedBatch(t, CompressionLZ4, t0.UnixMilli(), -1, []keyedRecord{{key: []byte("k"), value: []byte("v")}, {key: []byte("k2")}})
	if _, err := ValidateBatches(keyed, 1<<20, true); err != nil {
		t.Fatalf("keyed records (one a tombstone): %v", err)
	}
	for _, codec := range []int8{CompressionNone, CompressionZstd} {
		keyless := makeKeyedBatch(t, codec, t0.UnixMilli(), -1, []keyedRecord{{key: []byte("k"), value: []byte("v")}, {value: []byte("no key")}})
		if _, err := ValidateBatches(keyless, 1<<20, false); err != nil {
			t.Fatalf("%s: keyless record refused without requireKeys: %v", codecName(codec), err)
		}
		_, err := ValidateBatches(keyless, 1<<20, true)
		if !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), "without a key") {
			t.Fatalf("%s: keyless record with requireKeys: %v, want ErrInvalidRecord about the key", codecName(codec), err)
		}
	}
}
