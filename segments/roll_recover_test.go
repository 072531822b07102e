package segments

// Rolls that cannot get file handles, and recovery of a failed log without
// reopening it.

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/stratalog/strata/internal/fdlimit"
)

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// A roll that cannot open its files leaves the log as it was and writable:
// ErrRollFailed wrapping EMFILE, no stray files, and the next append (once
// handles are free) rolls and succeeds.
func TestRollWithoutFileHandles(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 200 // every batch of 2×80-byte records fills a segment
	l := openTest(t, dir, cfg)
	defer l.Close()
	written := fill(t, l, 2, 2, 80, CompressionNone, t0)
	mustSync(t, l)
	before, end, files := dirNames(t, dir), l.EndOffset(), l.OpenFiles()
	if files != 6 {
		t.Fatalf("OpenFiles = %d with two segments, want 6", files)
	}

	for _, spare := range []int{0, 1, 2, 3} { // fail at the directory, .log, .index, .timeindex
		fdlimit.With(t, spare, func() {
			b := makeBatch(t, testBatch{records: 2, valueSize: 80, baseTs: t0.UnixMilli()})
			hs, err := ValidateBatches(b, 1<<20, false)
			if err != nil {
				t.Fatal(err)
			}
			_, err = l.Append(b, hs, 3, t0)
			if !errors.Is(err, ErrRollFailed) || !errors.Is(err, ErrNotWritten) || !errors.Is(err, syscall.EMFILE) {
				t.Fatalf("spare %d: Append = %v, want ErrRollFailed wrapping EMFILE", spare, err)
			}
			if err := l.Roll(); !errors.Is(err, ErrRollFailed) {
				t.Fatalf("spare %d: Roll = %v", spare, err)
			}
		})
		if got := dirNames(t, dir); !slices.Equal(got, before) {
			t.Fatalf("spare %d: a failed roll left files: %v, before %v", spare, got, before)
		}
		if l.EndOffset() != end || l.OpenFiles() != files {
			t.Fatalf("spare %d: end %d (want %d), %d files (want %d)", spare, l.EndOffset(), end, l.OpenFiles(), files)
		}
	}

	// Handles are back: the roll happens, durably, and data follows.
	info, b := appendBatch(t, l, testBatch{records: 2, valueSize: 80, baseTs: t0.UnixMilli()}, t0)
	if info.FirstOffset != end {
		t.Fatalf("append after the failed rolls at %d, want %d", info.FirstOffset, end)
	}
	if l.OpenFiles() != 3*3+1 {
		t.Fatalf("OpenFiles = %d after a roll, want 10 (three segments and the directory until the next Sync)", l.OpenFiles())
	}
	mustSync(t, l)
	if l.OpenFiles() != 9 {
		t.Fatalf("OpenFiles = %d after Sync, want 9", l.OpenFiles())
	}
	if got := readFrom(t, l, 0); !bytes.Equal(got, bytes.Join(append(written, b), nil)) {
		t.Fatal("data differs after the failed rolls")
	}
}

// Roll retries a failed roll without an append, and does nothing to an
// empty active segment.
func TestRollRetry(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, testConfig())
	defer l.Close()
	if err := l.Roll(); err != nil || len(segFiles(t, dir, ".log")) != 1 {
		t.Fatalf("Roll of an empty log: %v, %d segments", err, len(segFiles(t, dir, ".log")))
	}
	fill(t, l, 1, 1, 10, CompressionNone, t0)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	mustSync(t, l)
	if n := len(segFiles(t, dir, ".log")); n != 2 {
		t.Fatalf("%d segments after Roll, want 2", n)
	}
}

// failLog marks l failed, as an fsync error does.
func failLog(l *Log) {
	l.mu.Lock()
	l.mu.failed = errors.New("injected fsync failure")
	l.mu.Unlock()
}

// Recover reloads a failed log in place: it cuts the log at the durable
// offset (a torn tail and unsynced appends go), keeps the durable data and
// takes writes again; a reopened log agrees.
func TestRecoverFailedLog(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 600
	l := openTest(t, dir, cfg)
	defer func() { l.Close() }()
	kept := fill(t, l, 5, 2, 80, CompressionNone, t0)
	durable := mustSync(t, l)
	fill(t, l, 4, 2, 80, CompressionNone, t0) // appended, rolled, never synced
	// A torn write at the very end, too.
	logs := segFiles(t, dir, ".log")
	f, err := os.OpenFile(logs[len(logs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("torn"))
	f.Close()
	failLog(l)

	// A held read keeps its files across the reload.
	held, err := l.Read(0, durable, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := fillErr(t, l); err == nil {
		t.Fatal("append to a failed log succeeded")
	}
	if err := l.Recover(); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if l.EndOffset() != durable || l.DurableOffset() != durable {
		t.Fatalf("after Recover: end %d, durable %d, want both %d", l.EndOffset(), l.DurableOffset(), durable)
	}
	if got := readAll(t, held); len(got) == 0 {
		t.Fatal("a read taken before Recover returned nothing")
	}
	if got := readFrom(t, l, 0); !bytes.Equal(got, bytes.Join(kept, nil)) {
		t.Fatal("durable data differs after Recover")
	}
	info, b := appendBatch(t, l, testBatch{records: 2, valueSize: 80, baseTs: t0.UnixMilli()}, t0)
	if info.FirstOffset != durable {
		t.Fatalf("next append at %d, want %d", info.FirstOffset, durable)
	}
	mustSync(t, l)
	if err := l.Recover(); err != nil { // not failed: nothing to do
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, cfg)
	if got := readFrom(t, l, 0); !bytes.Equal(got, bytes.Join(append(kept, b), nil)) {
		t.Fatal("reopened log differs")
	}
}

// fillErr appends one small batch and returns Append's error.
func fillErr(t *testing.T, l *Log) (AppendInfo, []byte, error) {
	b := makeBatch(t, testBatch{records: 1, valueSize: 10, baseTs: t0.UnixMilli()})
	hs, err := ValidateBatches(b, 1<<20, false)
	if err != nil {
		return AppendInfo{}, nil, err
	}
	info, err := l.Append(b, hs, 3, t0)
	return info, b, err
}

// Recover refuses a log whose durable data is gone from the disk, and
// leaves it failed; it also fails, retriably, without file handles.
func TestRecoverRefusesLostData(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, testConfig())
	defer l.Close()
	fill(t, l, 4, 2, 80, CompressionNone, t0)
	durable := mustSync(t, l)
	failLog(l)

	fdlimit.With(t, 0, func() {
		if err := l.Recover(); !errors.Is(err, syscall.EMFILE) {
			t.Fatalf("Recover without file handles = %v, want EMFILE", err)
		}
	})

	logs := segFiles(t, dir, ".log")
	if err := os.Truncate(logs[0], 0); err != nil {
		t.Fatal(err)
	}
	err := l.Recover()
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("below the durable offset")) {
		t.Fatalf("Recover with the durable data gone = %v", err)
	}
	if _, _, err := fillErr(t, l); err == nil {
		t.Fatal("the log takes writes after a refused Recover")
	}
	if l.DurableOffset() != durable {
		t.Fatalf("durable offset moved to %d", l.DurableOffset())
	}
}
