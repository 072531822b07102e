package segments

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"
)

// FuzzValidateBatches: hostile produce payloads never panic, errors are of
// the documented kinds, and accepted payloads are consistent.
func FuzzValidateBatches(f *testing.F) {
	for _, c := range codecs {
		f.Add(makeBatch(f, testBatch{records: 3, valueSize: 10, codec: c.codec, xerial: c.xerial}), int32(1<<20))
	}
	two := append(makeBatch(f, testBatch{records: 1}), makeBatch(f, testBatch{records: 2, codec: CompressionGzip})...)
	f.Add(two, int32(0))
	f.Add(two[:70], int32(0))
	f.Add([]byte{}, int32(100))
	f.Fuzz(func(t *testing.T, payload []byte, maxBytes int32) {
		orig := bytes.Clone(payload)
		hs, err := ValidateBatches(payload, maxBytes, len(payload)%2 == 0)
		if !bytes.Equal(orig, payload) {
			t.Fatal("ValidateBatches modified its input")
		}
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) && !errors.Is(err, ErrInvalidRecord) && !errors.Is(err, ErrRecordTooLarge) {
				t.Fatalf("undocumented error %T: %v", err, err)
			}
			return
		}
		var total int64
		for _, h := range hs {
			if h.RecordCount <= 0 || h.LastOffsetDelta != h.RecordCount-1 || h.Magic != 2 {
				t.Fatalf("accepted header %+v", h)
			}
			if maxBytes > 0 && h.Size() > int64(maxBytes) {
				t.Fatalf("accepted %d bytes over %d", h.Size(), maxBytes)
			}
			total += h.Size()
		}
		if total != int64(len(payload)) {
			t.Fatalf("headers cover %d of %d bytes", total, len(payload))
		}
	})
}

// FuzzBatchRecords gets past the CRC check (which random mutation almost
// never does) to exercise the record walk and the decompressors with
// hostile record sections: no panic, bounded work, documented errors.
func FuzzBatchRecords(f *testing.F) {
	for _, c := range codecs {
		f.Add(compress(f, c.codec, c.xerial, encodeRecords(f, 3, 10, 1)), int16(c.codec), int32(3))
	}
	f.Fuzz(func(t *testing.T, recs []byte, attrs int16, count int32) {
		b := finishBatch(kmsg.RecordBatch{
			PartitionLeaderEpoch: -1, Magic: 2, Attributes: attrs, LastOffsetDelta: count - 1, NumRecords: count,
			ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, Records: recs,
		})
		hs, err := ValidateBatches(b, 1<<20, false)
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) && !errors.Is(err, ErrInvalidRecord) && !errors.Is(err, ErrRecordTooLarge) {
				t.Fatalf("undocumented error %T: %v", err, err)
			}
			return
		}
		if hs[0].RecordCount != count {
			t.Fatalf("%+v", hs[0])
		}
		// A timestamp search over the accepted records works too.
		if _, _, _, err := FindTimestamp(b[:hs[0].Size()], hs[0], 0, 0); err != nil {
			t.Fatalf("FindTimestamp on an accepted batch: %v", err)
		}
	})
}

// FuzzParseBatchHeader: never panics; accepted headers round-trip.
func FuzzParseBatchHeader(f *testing.F) {
	f.Add(makeBatch(f, testBatch{records: 2, producer: 9, seq: 3}))
	f.Add(make([]byte, 61))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseBatchHeader(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		if len(b) < BatchHeaderSize || h.Magic != 2 || h.Length < minBatchLength || h.Size() != int64(h.Length)+12 {
			t.Fatalf("accepted %+v from %d bytes", h, len(b))
		}
		_ = h.LastOffset()
		_ = h.Compression()
	})
}

// FuzzIndexFiles: arbitrary .index/.timeindex contents for a cleanly closed
// log never panic Open, and reads still return exactly the stored batches
// (a damaged index is rebuilt or bypassed, never trusted into a wrong answer
// for offset reads).
func FuzzIndexFiles(f *testing.F) {
	// Build a small closed log once; each run copies it.
	src := f.TempDir()
	cfg := testConfig()
	cfg.IndexIntervalBytes = 100
	cfg.SegmentBytes = 1000
	l, err := Open(src, cfg, quietLogger)
	if err != nil {
		f.Fatal(err)
	}
	var want []byte
	for i := range 12 {
		_, b := appendBatch(f, l, testBatch{records: 2, valueSize: 60, baseTs: t0.UnixMilli() + int64(i)}, t0)
		want = append(want, b...)
	}
	if err := l.Close(); err != nil {
		f.Fatal(err)
	}
	files, _ := os.ReadDir(src)
	var idxNames []string
	for _, e := range files {
		if filepath.Ext(e.Name()) == indexSuffix {
			idxNames = append(idxNames, e.Name())
			idx, _ := os.ReadFile(filepath.Join(src, e.Name()))
			tix, _ := os.ReadFile(filepath.Join(src, e.Name()[:20]+timeIndexSuffix))
			f.Add(idx, tix, uint8(len(idxNames)-1))
		}
	}
	f.Fuzz(func(t *testing.T, idx, tix []byte, which uint8) {
		dir := fuzzDir(t)
		for _, e := range files {
			b, _ := os.ReadFile(filepath.Join(src, e.Name()))
			os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
		}
		name := idxNames[int(which)%len(idxNames)]
		os.WriteFile(filepath.Join(dir, name), idx, 0o644)
		os.WriteFile(filepath.Join(dir, name[:20]+timeIndexSuffix), tix, 0o644)
		l, err := Open(dir, cfg, quietLogger)
		if err != nil {
			return // refusing to open is allowed; serving wrong data is not
		}
		defer l.Close()
		if l.EndOffset() != 24 {
			t.Fatalf("end %d", l.EndOffset())
		}
		for o := Offset(0); o < 24; o += 5 {
			r, err := l.Read(o, 24, 1, true)
			if err != nil {
				t.Fatalf("Read(%d): %v", o, err)
			}
			b := readAll(t, r)
			h, err := ParseBatchHeader(b)
			if err != nil || h.BaseOffset != o&^1 || !bytes.Contains(want, b) {
				t.Fatalf("Read(%d) returned batch %+v (%v)", o, h, err)
			}
		}
		_, _, _, _ = l.OffsetForTimestamp(t0.UnixMilli() + 5)
		_, _ = l.MaxTimestamp()
	})
}

// FuzzRecoverSegment: an arbitrary .log file (a crash can leave anything in
// the tail) never panics Open, and what the recovered log serves is made of
// valid batches with increasing offsets.
func FuzzRecoverSegment(f *testing.F) {
	var good []byte
	for i := range 3 {
		b := makeBatch(f, testBatch{records: 2, codec: int8(i)})
		patchBatch(b, mustHeader(f, b), Offset(2*i), 0, CreateTime, 0)
		good = append(good, b...)
	}
	f.Add(good)
	f.Add(good[:len(good)-7])
	f.Add(append(bytes.Clone(good), make([]byte, 100)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := fuzzDir(t)
		os.WriteFile(segmentPath(dir, 0, logSuffix), data, 0o644)
		l, err := Open(dir, testConfig(), quietLogger)
		if err != nil {
			return
		}
		defer l.Close()
		var next Offset
		for next < l.EndOffset() {
			r, err := l.Read(next, l.EndOffset(), 1<<20, true)
			if err != nil {
				t.Fatalf("Read(%d): %v", next, err)
			}
			b := readAll(t, r)
			if len(b) == 0 {
				t.Fatalf("empty read at %d below end %d", next, l.EndOffset())
			}
			for p := 0; p < len(b); {
				h, err := ParseBatchHeader(b[p:])
				if err != nil || batchCRC(b[p:p+int(h.Size())]) != h.CRC || h.BaseOffset < next {
					t.Fatalf("served a bad batch at %d: %+v %v", p, h, err)
				}
				next = h.NextOffset()
				p += int(h.Size())
			}
		}
	})
}

func mustHeader(tb testing.TB, b []byte) BatchHeader {
	hs, err := ValidateBatches(b, 0, false)
	if err != nil {
		tb.Fatal(err)
	}
	return hs[0]
}

// FuzzCheckpoints: checkpoint parsers never panic and accept what the
// formatters write.
func FuzzCheckpoints(f *testing.F) {
	f.Add([]byte("0\n1\n42\n"))
	f.Add([]byte("0\n2\n1 0\n4 100\n"))
	f.Add([]byte("0\n99999999\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if o, err := parseOffsetCheckpoint(b); err == nil {
			if got, err := parseOffsetCheckpoint(formatOffsetCheckpoint(o)); err != nil || got != o {
				t.Fatalf("round trip %d: %d %v", o, got, err)
			}
		}
		if es, err := parseEpochCheckpoint(b); err == nil {
			got, err := parseEpochCheckpoint(formatEpochCheckpoint(es))
			if err != nil || len(got) != len(es) {
				t.Fatalf("round trip %v: %v %v", es, got, err)
			}
			for i := range es {
				if got[i] != es[i] {
					t.Fatalf("round trip %v: %v", es, got)
				}
			}
		}
		if to, h, err := parseCleanerCheckpoint(b); err == nil {
			if gotTo, gotH, err := parseCleanerCheckpoint(formatCleanerCheckpoint(to, h)); err != nil || gotTo != to || gotH != h {
				t.Fatalf("cleaner checkpoint round trip %d %d: %d %d %v", to, h, gotTo, gotH, err)
			}
		}
		if bases, err := parseSwapList(b); err == nil {
			got, err := parseSwapList(formatSwapList(bases))
			if err != nil || len(got) != len(bases) || len(bases) == 0 {
				t.Fatalf("swap list round trip %v: %v %v", bases, got, err)
			}
		}
	})
}

// FuzzCleanBatch: the cleaner's record filter never panics on a stored
// batch, whatever its bytes (a corrupt segment), and what it writes is a
// batch that parses, with a valid CRC, offsets inside the original's.
func FuzzCleanBatch(f *testing.F) {
	for _, codec := range []int8{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		f.Add(makeKeyedBatch(f, codec, 1000, 3, []keyedRecord{{key: []byte("a"), value: []byte("1")}, {key: []byte("b")}, {value: []byte("x")}}), int64(5))
	}
	f.Add(makeBatch(f, testBatch{records: 4, valueSize: 3}), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, now int64) {
		if len(b) < BatchHeaderSize {
			return
		}
		h := parseHeaderUnchecked(b)
		if h.Size() != int64(len(b)) || h.Magic != 2 || h.Length < minBatchLength || h.LastOffsetDelta < 0 || h.BaseOffset < 0 {
			return // the segment scanner hands the filter whole batches it has checked so far only
		}
		f := &batchFilter{keys: newOffsetMap(64), nowMs: now, deleteRetentionMs: 10, decompressLimit: 1 << 20,
			keepProducerBatch: func(int64, Offset) bool { return true }}
		f.keys.put([]byte("a"), h.BaseOffset+1)
		res, err := f.filter(b, h)
		if err != nil || res.out == nil {
			return
		}
		out, err := ParseBatchHeader(res.out)
		if err != nil || out.Size() != int64(len(res.out)) {
			t.Fatalf("filter wrote a batch that does not parse: %v", err)
		}
		if batchCRC(res.out) != out.CRC && !res.unchanged {
			t.Fatalf("filter wrote a bad CRC")
		}
		if out.BaseOffset != h.BaseOffset || out.LastOffsetDelta != h.LastOffsetDelta || out.RecordCount > h.RecordCount {
			t.Fatalf("filter changed the offsets: %+v from %+v", out, h)
		}
	})
}

// fuzzDir returns a new directory for one fuzz input, removed when the input is done.
//
// Opening and closing a Log fsyncs every file it writes and the directory: about 15 fsyncs and
// fdatasyncs, on top of creating and removing the directory. On a disk that is ~6 ms an input,
// twenty times the work under test, and the fuzz engine makes it worse: it minimizes every
// input that finds new coverage by running the target O(len(input)²) more times, for up to
// -fuzzminimizetime (60 s), and counts none of those runs in its execs/sec until it is done —
// which is how FuzzRecoverSegment came to show "0/sec" for most of a run. On tmpfs an fsync
// costs nothing, so when /dev/shm is a writable tmpfs the directory goes there (some 20× more
// executions a second); otherwise it is t.TempDir(). Nothing the targets check depends on
// durability.
func fuzzDir(t *testing.T) string {
	if base := fuzzDirBase(); base != "" {
		if dir, err := os.MkdirTemp(base, "strata-segments-fuzz-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// fuzzDirBase is /dev/shm if it is a writable tmpfs, else "".
var fuzzDirBase = sync.OnceValue(func() string {
	const shm = "/dev/shm"
	var st unix.Statfs_t
	if err := unix.Statfs(shm, &st); err != nil || st.Type != unix.TMPFS_MAGIC || unix.Access(shm, unix.W_OK) != nil {
		return ""
	}
	return shm
})

// quietLogger keeps fuzz workers from blocking on a full stderr pipe.
var quietLogger = slog.New(slog.DiscardHandler)
