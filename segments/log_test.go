package segments

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fill appends n batches of `records` records each, one per ms, and returns
// the bytes as written per batch.
func fill(t *testing.T, l *Log, n, records, valueSize int, codec int8, start time.Time) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range n {
		ts := start.Add(time.Duration(i) * time.Millisecond)
		_, b := appendBatch(t, l, testBatch{records: records, valueSize: valueSize, baseTs: ts.UnixMilli(), codec: codec}, ts)
		out = append(out, b)
	}
	return out
}

func mustSync(t *testing.T, l *Log) Offset {
	t.Helper()
	o, err := l.Sync()
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return o
}

// readFrom reads everything from `from` up to the end, looping over segments.
func readFrom(t *testing.T, l *Log, from Offset) []byte {
	t.Helper()
	var out []byte
	for from < l.EndOffset() {
		r, err := l.Read(from, l.EndOffset(), 1<<30, true)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		b := readAll(t, r)
		if len(b) == 0 {
			t.Fatalf("Read(%d) returned nothing before the end %d", from, l.EndOffset())
		}
		hs, err := ValidateBatches(b, 0, false)
		if err != nil {
			t.Fatalf("read bytes invalid: %v", err)
		}
		from = hs[len(hs)-1].NextOffset()
		out = append(out, b...)
	}
	return out
}

func TestAppendReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, testConfig())
	defer l.Close()
	var want []byte
	for i, c := range codecs {
		info, b := appendBatch(t, l, testBatch{records: 5 + i, valueSize: 100, codec: c.codec, xerial: c.xerial}, t0)
		if info.LastOffset-info.FirstOffset != Offset(4+i) {
			t.Fatalf("append %d: %+v", i, info)
		}
		want = append(want, b...)
	}
	if d := mustSync(t, l); d != l.EndOffset() || l.DurableOffset() != d {
		t.Fatalf("durable %d end %d", d, l.EndOffset())
	}
	got := readFrom(t, l, 0)
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d (equal=%v)", len(got), len(want), bytes.Equal(got, want))
	}
	hs, _ := ValidateBatches(got, 0, false)
	var next Offset
	for _, h := range hs {
		if h.BaseOffset != next || h.PartitionLeaderEpoch != 3 {
			t.Fatalf("batch %+v, want base %d epoch 3", h, next)
		}
		next = h.NextOffset()
	}
	// Read from inside a batch returns the whole batch.
	r, err := l.Read(hs[1].BaseOffset+2, l.EndOffset(), 1, true)
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, r); !bytes.Equal(b, want[hs[0].Size():hs[0].Size()+hs[1].Size()]) {
		t.Fatalf("minOneBatch read: %d bytes", len(b))
	}
	// maxBytes below the first batch without minOneBatch: nothing.
	if r, err := l.Read(0, l.EndOffset(), 1, false); err != nil || r.Bytes != 0 {
		t.Fatalf("%+v %v", r, err)
	}
	// upTo stops before the batch holding it.
	r, err = l.Read(0, hs[2].BaseOffset, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if r.Bytes != hs[0].Size()+hs[1].Size() {
		t.Fatalf("upTo: %d bytes", r.Bytes)
	}
	r.Release()
	r.Release() // idempotent
	// maxBytes cuts at a batch boundary.
	r, _ = l.Read(0, l.EndOffset(), int32(hs[0].Size()+hs[1].Size()+hs[2].Size()-1), true)
	if r.Bytes != hs[0].Size()+hs[1].Size() {
		t.Fatalf("maxBytes: %d bytes", r.Bytes)
	}
	r.Release()
	// Edges.
	if r, err := l.Read(l.EndOffset(), l.EndOffset(), 100, true); err != nil || r.Bytes != 0 {
		t.Fatalf("at end: %+v %v", r, err)
	}
	if _, err := l.Read(l.EndOffset()+1, l.EndOffset()+1, 100, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past end: %v", err)
	}
}

func TestLogAppendTime(t *testing.T) {
	cfg := testConfig()
	cfg.TimestampType = LogAppendTime
	l := openTest(t, t.TempDir(), cfg)
	defer l.Close()
	now := t0.Add(time.Hour)
	info, _ := appendBatch(t, l, testBatch{records: 3, codec: CompressionLZ4}, now)
	if info.LogAppendTime != now.UnixMilli() || info.MaxTimestamp != now.UnixMilli() {
		t.Fatalf("%+v", info)
	}
	r, _ := l.Read(0, l.EndOffset(), 1<<20, true)
	b := readAll(t, r)
	hs, err := ValidateBatches(b, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if hs[0].TimestampType() != LogAppendTime {
		t.Fatalf("%+v", hs[0])
	}
	if h, _ := ParseBatchHeader(b); h.MaxTimestamp != now.UnixMilli() {
		t.Fatalf("stored maxTimestamp %d", h.MaxTimestamp)
	}
	if o, ts, ok, err := l.OffsetForTimestamp(now.UnixMilli()); !ok || err != nil || o != 0 || ts != now.UnixMilli() {
		t.Fatalf("%d %d %v %v", o, ts, ok, err)
	}
}

func TestRollBySizeAndTime(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	cfg.SegmentRollAge = time.Minute
	dir := t.TempDir()
	l := openTest(t, dir, cfg)
	defer l.Close()
	// Each batch ~1.2 KiB: three fit in 4 KiB.
	fill(t, l, 7, 10, 100, CompressionNone, t0)
	if n := len(segFiles(t, dir, ".log")); n != 3 {
		t.Fatalf("%d segments after size rolls, want 3", n)
	}
	// segment.ms: an append 1 minute after the active segment's first
	// one (at t0+6ms) rolls even though it fits.
	before := len(segFiles(t, dir, ".log"))
	appendBatch(t, l, testBatch{records: 1}, t0.Add(time.Minute+10*time.Millisecond))
	if n := len(segFiles(t, dir, ".log")); n != before+1 {
		t.Fatalf("%d segments after time roll, want %d", n, before+1)
	}
	mustSync(t, l)
	// The synced rolls moved the recovery point to the active segment,
	// and the closed segments' indexes were written.
	logs := segFiles(t, dir, ".log")
	activeBase, _ := parseSegmentName(filepath.Base(logs[len(logs)-1]), logSuffix)
	if rp, _ := os.ReadFile(filepath.Join(dir, recoveryPointFile)); string(rp) != string(formatOffsetCheckpoint(activeBase)) {
		t.Fatalf("recovery point checkpoint %q, want base %d", rp, activeBase)
	}
	for _, p := range segFiles(t, dir, ".timeindex")[:len(logs)-1] {
		if fileSize(t, p) == 0 {
			t.Fatalf("%s not written at roll", p)
		}
	}
	// Segment names are the base offsets.
	for _, p := range segFiles(t, dir, ".log") {
		base, ok := parseSegmentName(filepath.Base(p), logSuffix)
		if !ok {
			t.Fatalf("bad name %s", p)
		}
		r, err := l.Read(base, l.EndOffset(), 100, true)
		if err != nil {
			t.Fatal(err)
		}
		if h, _ := ParseBatchHeader(readAll(t, r)); h.BaseOffset != base {
			t.Fatalf("segment %s starts with offset %d", p, h.BaseOffset)
		}
	}
	if got := readFrom(t, l, 0); len(got) == 0 {
		t.Fatal("no data")
	}
}

func TestIndexLookups(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 16 << 10
	dir := t.TempDir()
	l := openTest(t, dir, cfg)
	// 300 batches of 2 records, ~300 bytes each, timestamps one ms apart:
	// several segments, many index entries.
	batches := fill(t, l, 300, 2, 100, CompressionNone, t0)
	mustSync(t, l)
	check := func(l *Log) {
		t.Helper()
		for i := range batches {
			for _, o := range []Offset{Offset(2 * i), Offset(2*i + 1)} {
				r, err := l.Read(o, l.EndOffset(), 1, true)
				if err != nil {
					t.Fatal(err)
				}
				if b := readAll(t, r); !bytes.Equal(b, batches[i]) {
					t.Fatalf("Read(%d) returned the wrong batch", o)
				}
			}
			// Batch i's records are at t0+i ms (tsStep 0).
			ts := t0.Add(time.Duration(i) * time.Millisecond).UnixMilli()
			o, got, ok, err := l.OffsetForTimestamp(ts)
			if err != nil || !ok || o != Offset(2*i) || got != ts {
				t.Fatalf("OffsetForTimestamp(%d) = %d %d %v %v, want %d", ts, o, got, ok, err, 2*i)
			}
		}
		if _, _, ok, _ := l.OffsetForTimestamp(t0.Add(time.Hour).UnixMilli()); ok {
			t.Fatal("found a timestamp past the end")
		}
		if ts, o := l.MaxTimestamp(); ts != t0.Add(299*time.Millisecond).UnixMilli() || o != 598 {
			t.Fatalf("MaxTimestamp %d %d", ts, o)
		}
	}
	check(l)
	if n := len(segFiles(t, dir, ".log")); n < 3 {
		t.Fatalf("only %d segments", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Index files hold whole entries, and a clean reopen uses them as they
	// are: nothing is rebuilt or rewritten, nothing is warned about.
	before := map[string][]byte{}
	for _, p := range append(segFiles(t, dir, ".index"), segFiles(t, dir, ".timeindex")...) {
		b, _ := os.ReadFile(p)
		if len(b)%offsetEntrySize != 0 && len(b)%timeEntrySize != 0 || len(b) == 0 {
			t.Fatalf("%s: size %d", p, len(b))
		}
		before[p] = b
	}
	var warnings countingHandler
	l, err := Open(dir, cfg, slog.New(&warnings))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if warnings.n.Load() != 0 {
		t.Fatalf("%d warnings on a clean reopen", warnings.n.Load())
	}
	for p, b := range before {
		if got, _ := os.ReadFile(p); !bytes.Equal(got, b) {
			t.Fatalf("%s changed on reopen", p)
		}
	}
	check(l)
	// ScanBatches from the middle.
	var seen []Offset
	if err := l.ScanBatches(301, func(h BatchHeader) error { seen = append(seen, h.BaseOffset); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 150 || seen[0] != 300 || seen[149] != 598 {
		t.Fatalf("ScanBatches saw %d batches from %v", len(seen), seen[:1])
	}
}

// countingHandler counts records at Warn or above.
type countingHandler struct{ n atomic.Int32 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.n.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func TestCleanReopenKeepsState(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, testConfig())
	want := fill(t, l, 20, 3, 50, CompressionSnappy, t0)
	end := l.EndOffset()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, cleanShutdownFile)); err != nil {
		t.Fatalf("no clean marker: %v", err)
	}
	l = openTest(t, dir, testConfig())
	defer l.Close()
	if _, err := os.Stat(filepath.Join(dir, cleanShutdownFile)); !os.IsNotExist(err) {
		t.Fatalf("clean marker still there: %v", err)
	}
	if l.EndOffset() != end || l.DurableOffset() != end || l.StartOffset() != 0 {
		t.Fatalf("end %d durable %d start %d, want %d", l.EndOffset(), l.DurableOffset(), l.StartOffset(), end)
	}
	if got := readFrom(t, l, 0); !bytes.Equal(got, bytes.Join(want, nil)) {
		t.Fatal("data differs after reopen")
	}
	// Appends continue at the end.
	info, _ := appendBatch(t, l, testBatch{records: 2}, t0)
	if info.FirstOffset != end {
		t.Fatalf("appended at %d, want %d", info.FirstOffset, end)
	}
}

func TestRecoverTornTail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, lastPos int64)
	}{
		{"truncated mid-batch", func(t *testing.T, p string, lastPos int64) {
			if err := os.Truncate(p, lastPos+30); err != nil {
				t.Fatal(err)
			}
		}},
		{"crc byte flipped", func(t *testing.T, p string, lastPos int64) {
			f, _ := os.OpenFile(p, os.O_RDWR, 0)
			defer f.Close()
			b := make([]byte, 1)
			f.ReadAt(b, lastPos+BatchHeaderSize+3)
			b[0] ^= 0x40
			f.WriteAt(b, lastPos+BatchHeaderSize+3)
		}},
		{"zeroed tail", func(t *testing.T, p string, lastPos int64) {
			f, _ := os.OpenFile(p, os.O_RDWR, 0)
			defer f.Close()
			f.WriteAt(make([]byte, 4096), fileSize(t, p))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, dir, testConfig())
			batches := fill(t, l, 10, 4, 80, CompressionNone, t0)
			mustSync(t, l)
			crash(l)
			logs := segFiles(t, dir, ".log")
			last := logs[len(logs)-1]
			size := fileSize(t, last)
			lastPos := size - int64(len(batches[9]))
			tc.damage(t, last, lastPos)

			l = openTest(t, dir, testConfig())
			defer l.Close()
			wantEnd := Offset(40)
			if tc.name != "zeroed tail" {
				wantEnd = 36 // the damaged batch is gone
			}
			if l.EndOffset() != wantEnd {
				t.Fatalf("end %d, want %d", l.EndOffset(), wantEnd)
			}
			if got := fileSize(t, last); got != lastPos && wantEnd == 36 || wantEnd == 40 && got != size {
				t.Fatalf("file size %d", got)
			}
			got := readFrom(t, l, 0)
			if !bytes.Equal(got, bytes.Join(batches[:wantEnd/4], nil)) {
				t.Fatal("recovered data differs")
			}
			// Appends continue after the cut.
			if info, _ := appendBatch(t, l, testBatch{records: 1}, t0); info.FirstOffset != wantEnd {
				t.Fatalf("next append at %d", info.FirstOffset)
			}
		})
	}
}

func TestCorruptClosedSegmentRefused(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 2048
	dir := t.TempDir()
	l := openTest(t, dir, cfg)
	fill(t, l, 12, 4, 80, CompressionNone, t0)
	mustSync(t, l) // finalizes the closed segments: recovery point moves past them
	mustSync(t, l)
	crash(l)
	logs := segFiles(t, dir, ".log")
	if len(logs) < 3 {
		t.Fatalf("%d segments", len(logs))
	}
	// Flip a record byte in the first (closed, below the recovery point)
	// segment and drop its index so Open must rebuild it, checking CRCs.
	f, _ := os.OpenFile(logs[0], os.O_RDWR, 0)
	f.WriteAt([]byte{0xee}, BatchHeaderSize+5)
	f.Close()
	os.Remove(logs[0][:len(logs[0])-len(logSuffix)] + indexSuffix)
	_, err := Open(dir, cfg, testLogger(t))
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != logs[0] || ce.Position != 0 {
		t.Fatalf("Open: %v", err)
	}
	// Nothing was truncated.
	if fileSize(t, logs[len(logs)-1]) == 0 {
		t.Fatal("later segment damaged")
	}
}

func TestRecoverRolledUnsyncedSegment(t *testing.T) {
	// A segment rolled but never synced is above the recovery point: a torn
	// write in it truncates the log there (nothing after it was acked).
	cfg := testConfig()
	cfg.SegmentBytes = 2048
	dir := t.TempDir()
	l := openTest(t, dir, cfg)
	fill(t, l, 2, 4, 80, CompressionNone, t0)
	mustSync(t, l)
	synced := l.EndOffset()
	fill(t, l, 10, 4, 80, CompressionNone, t0)
	crash(l)
	logs := segFiles(t, dir, ".log")
	// Tear the second segment in its middle.
	if err := os.Truncate(logs[1], fileSize(t, logs[1])/2); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, cfg)
	defer l.Close()
	if l.EndOffset() < synced {
		t.Fatalf("lost synced data: end %d < %d", l.EndOffset(), synced)
	}
	if n := len(segFiles(t, dir, ".log")); n != 2 {
		t.Fatalf("%d segments remain, want 2", n)
	}
	readFrom(t, l, 0)
}

func TestRetentionByTimeAndBytes(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1024 // two ~450-byte batches per segment
	dir := t.TempDir()
	l := openTest(t, dir, cfg)
	defer l.Close()
	// Batch i (offsets 4i..4i+3) has timestamp t0 + i minutes.
	for i := range 12 {
		ts := t0.Add(time.Duration(i) * time.Minute)
		appendBatch(t, l, testBatch{records: 4, valueSize: 80, baseTs: ts.UnixMilli()}, ts)
	}
	mustSync(t, l)
	if n := len(segFiles(t, dir, ".log")); n != 6 {
		t.Fatalf("%d segments, want 6", n)
	}
	// Nothing expires with unlimited retention.
	if n, err := l.ApplyRetention(t0.Add(24 * time.Hour)); n != 0 || err != nil {
		t.Fatalf("%d %v", n, err)
	}
	// retention.ms = 5 min at t0+10min: segment k's newest record is at
	// t0+(2k+1) min, so segments 0 and 1 (newest at 1 and 3 min) expire and
	// segment 2 (5 min, exactly at the limit) stays.
	cfg.RetentionAge = 5 * time.Minute
	l.SetConfig(cfg)
	n, err := l.ApplyRetention(t0.Add(10 * time.Minute))
	if err != nil || n != 2 || l.StartOffset() != 16 {
		t.Fatalf("time retention deleted %d, start %d: %v", n, l.StartOffset(), err)
	}
	if o, ts, ok, _ := l.OffsetForTimestamp(0); !ok || o != 16 || ts != t0.Add(4*time.Minute).UnixMilli() {
		t.Fatalf("first timestamp at %d (%d)", o, ts)
	}
	if _, err := l.Read(15, l.EndOffset(), 100, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	// retention.bytes: keep at least 2000 bytes: of 4 segments of ~900
	// bytes, deleting the oldest leaves ~2700, deleting two would leave
	// less than 2000.
	cfg.RetentionAge = -1
	cfg.RetentionBytes = 2000
	l.SetConfig(cfg)
	if n, err := l.ApplyRetention(t0); n != 1 || err != nil {
		t.Fatalf("bytes retention deleted %d: %v", n, err)
	}
	if l.StartOffset() != 24 {
		t.Fatalf("start %d", l.StartOffset())
	}
	// retention.bytes = 0: everything but the active segment.
	cfg.RetentionBytes = 0
	l.SetConfig(cfg)
	if _, err := l.ApplyRetention(t0); err != nil {
		t.Fatal(err)
	}
	if n := len(segFiles(t, dir, ".log")); n != 1 || l.StartOffset() != 40 || l.EndOffset() != 48 {
		t.Fatalf("%d segments, start %d end %d", n, l.StartOffset(), l.EndOffset())
	}
	readFrom(t, l, l.StartOffset())
}

func TestDeleteRecordsBefore(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 2048
	dir := t.TempDir()
	l := openTest(t, dir, cfg)
	fill(t, l, 12, 4, 80, CompressionNone, t0)
	mustSync(t, l)
	before := len(segFiles(t, dir, ".log"))
	got, err := l.DeleteRecordsBefore(22)
	if err != nil || got != 22 || l.StartOffset() != 22 {
		t.Fatalf("%d %v", got, err)
	}
	if n := len(segFiles(t, dir, ".log")); n >= before {
		t.Fatalf("no segment deleted (%d -> %d)", before, n)
	}
	if _, err := l.Read(21, l.EndOffset(), 100, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("%v", err)
	}
	// Reading 22 returns the batch holding it (20..23).
	r, err := l.Read(22, l.EndOffset(), 1, true)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := ParseBatchHeader(readAll(t, r)); h.BaseOffset != 20 {
		t.Fatalf("batch %d", h.BaseOffset)
	}
	if o, _, ok, _ := l.OffsetForTimestamp(0); !ok || o != 22 {
		t.Fatalf("first offset by time %d", o)
	}
	if got, _ := l.DeleteRecordsBefore(5); got != 22 {
		t.Fatalf("moved backwards to %d", got)
	}
	if _, err := l.DeleteRecordsBefore(l.EndOffset() + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("%v", err)
	}
	// The start survives a crash (checkpointed).
	crash(l)
	l = openTest(t, dir, cfg)
	if l.StartOffset() != 22 {
		t.Fatalf("start %d after reopen", l.StartOffset())
	}
	// Deleting everything keeps the offsets: the log restarts at the end.
	end := l.EndOffset()
	if _, err := l.DeleteRecordsBefore(end); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = openTest(t, dir, cfg)
	defer l.Close()
	if l.StartOffset() != end || l.EndOffset() != end {
		t.Fatalf("start %d end %d, want %d", l.StartOffset(), l.EndOffset(), end)
	}
	if info, _ := appendBatch(t, l, testBatch{records: 1}, t0); info.FirstOffset != end {
		t.Fatalf("appended at %d", info.FirstOffset)
	}
}

func TestTruncate(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 2048
	dir := t.TempDir()
	l := openTest(t, dir, cfg)
	batches := fill(t, l, 12, 4, 80, CompressionNone, t0)
	mustSync(t, l)
	if err := l.AssignEpoch(5, 30); err != nil {
		t.Fatal(err)
	}
	// Truncate mid-batch: the batch holding 26 (24..27) goes whole.
	if err := l.Truncate(26); err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != 24 || l.DurableOffset() != 24 {
		t.Fatalf("end %d durable %d", l.EndOffset(), l.DurableOffset())
	}
	if l.LatestEpoch() != 3 {
		t.Fatalf("epoch 5 (start 30) should be gone, latest %d", l.LatestEpoch())
	}
	if got := readFrom(t, l, 0); !bytes.Equal(got, bytes.Join(batches[:6], nil)) {
		t.Fatal("data after truncate differs")
	}
	info, b := appendBatch(t, l, testBatch{records: 2}, t0)
	if info.FirstOffset != 24 {
		t.Fatalf("append at %d", info.FirstOffset)
	}
	mustSync(t, l)
	l.Close()
	l = openTest(t, dir, cfg)
	if got := readFrom(t, l, 0); !bytes.Equal(got, append(bytes.Join(batches[:6], nil), b...)) {
		t.Fatal("data after reopen differs")
	}
	// Truncate below everything restarts the log there.
	if err := l.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != 0 || l.StartOffset() != 0 || len(segFiles(t, dir, ".log")) != 1 {
		t.Fatalf("end %d start %d", l.EndOffset(), l.StartOffset())
	}
	appendBatch(t, l, testBatch{records: 2}, t0)
	crash(l)
	l = openTest(t, dir, cfg)
	defer l.Close()
	if l.EndOffset() != 2 {
		t.Fatalf("end %d", l.EndOffset())
	}
}

func TestLeaderEpochCache(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, testConfig())
	if l.LatestEpoch() != -1 {
		t.Fatal("epoch in a new log")
	}
	if e, o := l.EndOffsetForEpoch(0); e != -1 || o != -1 {
		t.Fatalf("%d %d", e, o)
	}
	appendBatch(t, l, testBatch{records: 3}, t0) // epoch 3 at 0
	b := makeBatch(t, testBatch{records: 2})
	hs, _ := ValidateBatches(b, 0, false)
	if _, err := l.Append(b, hs, 5, t0); err != nil { // epoch 5 at 3
		t.Fatal(err)
	}
	b = makeBatch(t, testBatch{records: 4})
	hs, _ = ValidateBatches(b, 0, false)
	l.Append(b, hs, 7, t0) // epoch 7 at 5
	check := func(l *Log) {
		t.Helper()
		if l.LatestEpoch() != 7 {
			t.Fatalf("latest %d", l.LatestEpoch())
		}
		for _, tc := range []struct {
			e     LeaderEpoch
			wantE LeaderEpoch
			wantO Offset
		}{
			{7, 7, 9}, {6, 5, 5}, {5, 5, 5}, {4, 3, 3}, {3, 3, 3}, {1, 1, 0}, {8, -1, -1},
		} {
			if e, o := l.EndOffsetForEpoch(tc.e); e != tc.wantE || o != tc.wantO {
				t.Fatalf("EndOffsetForEpoch(%d) = %d %d, want %d %d", tc.e, e, o, tc.wantE, tc.wantO)
			}
		}
	}
	check(l)
	mustSync(t, l)
	crash(l)
	// The checkpoint is Kafka's text format.
	raw, _ := os.ReadFile(filepath.Join(dir, leaderEpochFile))
	if string(raw) != "0\n3\n3 0\n5 3\n7 5\n" {
		t.Fatalf("checkpoint %q", raw)
	}
	// Without the checkpoint the cache is rebuilt from the batches.
	os.Remove(filepath.Join(dir, leaderEpochFile))
	l = openTest(t, dir, testConfig())
	defer l.Close()
	check(l)
	// An append carrying a stale epoch does not rewrite the cache.
	b = makeBatch(t, testBatch{records: 1})
	hs, _ = ValidateBatches(b, 0, false)
	if _, err := l.Append(b, hs, 4, t0); err != nil {
		t.Fatal(err)
	}
	if l.LatestEpoch() != 7 {
		t.Fatalf("stale append changed the latest epoch to %d", l.LatestEpoch())
	}
	// Assigning an older epoch drops newer conflicting entries (Kafka's rule).
	if err := l.AssignEpoch(6, 8); err != nil {
		t.Fatal(err)
	}
	if e, o := l.EndOffsetForEpoch(5); e != 5 || o != 8 || l.LatestEpoch() != 6 {
		t.Fatalf("%d %d latest %d", e, o, l.LatestEpoch())
	}
}

func TestReadDuringRetention(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 2048
	dir := t.TempDir()
	l := openTest(t, dir, cfg)
	defer l.Close()
	batches := fill(t, l, 12, 4, 80, CompressionNone, t0)
	mustSync(t, l)
	r, err := l.Read(0, l.EndOffset(), 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	first := segFiles(t, dir, ".log")[0]
	cfg.RetentionBytes = 0
	l.SetConfig(cfg)
	if n, err := l.ApplyRetention(t0); n == 0 || err != nil {
		t.Fatalf("%d %v", n, err)
	}
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Fatalf("segment file still present: %v", err)
	}
	// The reader's file is still open and readable.
	f := r.Chunks[0].File
	got := readAll(t, r) // also releases
	if !bytes.HasPrefix(bytes.Join(batches, nil), got) || len(got) == 0 {
		t.Fatal("reader lost its data")
	}
	if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("file not closed after release: %v", err)
	}

	// Concurrently: readers loop while appends, syncs and retention run.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := l.StartOffset()
				r, err := l.Read(start, l.DurableOffset(), 4096, true)
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue // retention moved the start
				}
				if err != nil {
					t.Error(err)
					return
				}
				if b := readAll(t, r); len(b) > 0 {
					if _, err := ValidateBatches(b, 0, false); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	for i := range 100 {
		appendBatch(t, l, testBatch{records: 3, valueSize: 50}, t0)
		if i%10 == 0 {
			mustSync(t, l)
			l.ApplyRetention(t0)
		}
	}
	close(stop)
	wg.Wait()
}

func TestConcurrentAppendSync(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 16 << 10
	dir := t.TempDir()
	l := openTest(t, dir, cfg)
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			d, err := l.Sync()
			if err != nil {
				t.Error(err)
				return
			}
			if d > l.EndOffset() {
				t.Errorf("durable %d beyond end %d", d, l.EndOffset())
			}
		}
	})
	want := fill(t, l, 200, 2, 100, CompressionNone, t0)
	close(done)
	wg.Wait()
	mustSync(t, l)
	crash(l)
	l = openTest(t, dir, cfg)
	defer l.Close()
	if got := readFrom(t, l, 0); !bytes.Equal(got, bytes.Join(want, nil)) {
		t.Fatal("data differs")
	}
}

func TestClosedLog(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, testConfig())
	appendBatch(t, l, testBatch{records: 1}, t0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b := makeBatch(t, testBatch{records: 1})
	hs, _ := ValidateBatches(b, 0, false)
	if _, err := l.Append(b, hs, 0, t0); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if _, err := l.Read(0, 1, 100, true); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if _, err := l.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	l = openTest(t, dir, testConfig())
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir remains: %v", err)
	}
}

// BenchmarkAppend measures the produce hot path: 1 MiB batches of 1 KiB
// records, with an fsync every 8 appends (group commit).
func BenchmarkAppend(b *testing.B) {
	for _, every := range []int{0, 8} {
		b.Run(fmt.Sprintf("sync-every-%d", every), func(b *testing.B) { benchmarkAppend(b, every) })
	}
}

func benchmarkAppend(b *testing.B, syncEvery int) {
	cfg := testConfig()
	cfg.SegmentBytes = 256 << 20
	cfg.IndexIntervalBytes = 4096
	l, err := Open(b.TempDir(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	proto := makeBatch(b, testBatch{records: 1024, valueSize: 1000})
	payload := make([]byte, len(proto))
	b.SetBytes(int64(len(proto)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		copy(payload, proto)
		hs, err := ValidateBatches(payload, 2<<20, false)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Append(payload, hs, 1, t0); err != nil {
			b.Fatal(err)
		}
		if i++; syncEvery > 0 && i%syncEvery == 0 {
			if _, err := l.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkReadTail measures a caught-up consumer's read: the last MiB
// below the end, as a Fetch does (no record bytes are copied).
func BenchmarkReadTail(b *testing.B) {
	cfg := testConfig()
	cfg.SegmentBytes = 256 << 20
	cfg.IndexIntervalBytes = 4096
	l, err := Open(b.TempDir(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for range 64 {
		appendBatch(b, l, testBatch{records: 100, valueSize: 1000}, t0)
	}
	end := l.EndOffset()
	b.ReportAllocs()
	for b.Loop() {
		r, err := l.Read(end-1000, end, 1<<20, true)
		if err != nil || r.Bytes == 0 {
			b.Fatal(err)
		}
		r.Release()
	}
}

func TestRollWhenIndexFull(t *testing.T) {
	cfg := testConfig()
	cfg.IndexIntervalBytes = 1     // an entry for every batch after the first
	cfg.SegmentIndexBytes = 4 * 12 // four time index entries
	dir := t.TempDir()
	l := openTest(t, dir, cfg)
	defer l.Close()
	batches := fill(t, l, 20, 1, 10, CompressionNone, t0) // increasing timestamps
	if n := len(segFiles(t, dir, ".log")); n < 4 {
		t.Fatalf("%d segments, want rolls on a full index", n)
	}
	mustSync(t, l)
	if got := readFrom(t, l, 0); !bytes.Equal(got, bytes.Join(batches, nil)) {
		t.Fatal("data differs")
	}
}

func TestTimestampLimits(t *testing.T) {
	cfg := testConfig()
	cfg.TimestampBeforeMax = time.Hour
	cfg.TimestampAfterMax = time.Minute
	l := openTest(t, t.TempDir(), cfg)
	defer l.Close()
	now := time.UnixMilli(1_700_000_000_000)
	try := func(baseTs int64) error {
		b := makeBatch(t, testBatch{records: 3, tsStep: 10, baseTs: baseTs})
		hs, err := ValidateBatches(b, 1<<20, false)
		if err != nil {
			t.Fatal(err)
		}
		_, err = l.Append(b, hs, 0, now)
		return err
	}
	if err := try(now.Add(-59 * time.Minute).UnixMilli()); err != nil {
		t.Fatalf("within before.max: %v", err)
	}
	if err := try(now.Add(-61 * time.Minute).UnixMilli()); !errors.Is(err, ErrInvalidTimestamp) {
		t.Fatalf("older than before.max: got %v", err)
	}
	if err := try(now.Add(61 * time.Second).UnixMilli()); !errors.Is(err, ErrInvalidTimestamp) {
		t.Fatalf("later than after.max: got %v", err)
	}
	if got := l.EndOffset(); got != 3 {
		t.Fatalf("refused batches were written: end offset %d, want 3", got)
	}
	// LogAppendTime topics ignore the producer's timestamps.
	cfg.TimestampType = LogAppendTime
	l.SetConfig(cfg)
	if err := try(0); err != nil {
		t.Fatalf("LogAppendTime: %v", err)
	}
}
