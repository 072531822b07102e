package replica

// Tests against the real segments.Log on disk.

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stratalog/strata/broker/txn"
	"github.com/stratalog/strata/segments"
)

func openDisk(t testing.TB, dir string, c *Committer, cfg segments.Config) *Partition {
	t.Helper()
	p, err := Open(Options{Dir: dir, Topic: "t", Partition: 3, Log: cfg, Committer: c, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// readAll reads every batch below the HW from `from` and returns the bytes.
func readAll(t *testing.T, p *Partition, from segments.Offset) []byte {
	t.Helper()
	var out []byte
	for from < p.HighWatermark() {
		r, err := p.Read(from, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		if r.Bytes == 0 {
			t.Fatalf("empty read at %d below HW %d", from, p.HighWatermark())
		}
		for _, c := range r.Chunks {
			buf := make([]byte, c.Size)
			if _, err := c.File.ReadAt(buf, c.Position); err != nil {
				t.Fatal(err)
			}
			out = append(out, buf...)
		}
		r.Release()
		hs, err := segments.ValidateBatches(out, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		from = hs[len(hs)-1].LastOffset() + 1
	}
	return out
}

func TestDiskAppendReadRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-3")
	cfg := segments.Config{SegmentBytes: 1024, MaxMessageBytes: 1 << 20} // several segments
	p := openDisk(t, dir, nil, cfg)
	var want []byte
	for i := 0; i < 30; i++ {
		b := makeBatch(11, 0, int32(i*3), 3, "disk")
		res := mustAppend(t, p, b) // b is patched in place: it now holds the stored bytes
		if res.BaseOffset != segments.Offset(i*3) {
			t.Fatalf("base %d", res.BaseOffset)
		}
		durable(t, res)
		want = append(want, b...)
	}
	if p.HighWatermark() != 90 || p.LogEndOffset() != 90 || p.LeaderEpoch() != 0 {
		t.Fatalf("HW %d LEO %d epoch %d", p.HighWatermark(), p.LogEndOffset(), p.LeaderEpoch())
	}
	if got := readAll(t, p, 0); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d equal bytes", len(got), len(want))
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	p = openDisk(t, dir, nil, cfg)
	defer p.Close()
	if p.HighWatermark() != 90 || p.LogEndOffset() != 90 {
		t.Fatalf("after restart HW %d LEO %d", p.HighWatermark(), p.LogEndOffset())
	}
	if got := readAll(t, p, 0); !bytes.Equal(got, want) {
		t.Fatal("data differs after restart")
	}
	res := mustAppend(t, p, makeBatch(11, 0, 84, 3, "disk"))
	if !res.Duplicate || res.BaseOffset != 84 {
		t.Fatalf("retry after clean restart: %+v", res)
	}
	durable(t, res)
	if ts, off := p.MaxTimestamp(); off < 0 || ts <= 0 {
		t.Fatalf("max timestamp %d@%d", ts, off)
	}
	if start, err := p.DeleteRecordsBefore(-1); err != nil || start != 90 || p.LogStartOffset() != 90 {
		t.Fatalf("delete records: %d %v", start, err)
	}
}

// TestDiskCrashKeepsProducerState: no Close (as after kill -9): reopening
// the directory replays the log and still detects the retry.
func TestDiskCrashKeepsProducerState(t *testing.T) {
	for _, mode := range []string{"no snapshot", "corrupt snapshot", "old snapshot"} {
		t.Run(mode, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "t-3")
			cfg := segments.Config{MaxMessageBytes: 1 << 20}
			if mode != "no snapshot" {
				p := openDisk(t, dir, nil, cfg)
				durable(t, mustAppend(t, p, makeBatch(1, 0, 0, 2, "early")))
				p.Close() // snapshot at 2
				if mode == "corrupt snapshot" {
					os.WriteFile(filepath.Join(dir, txn.SnapshotName(2)), []byte("STPS garbage"), 0o644)
				}
			}
			c := NewCommitter(quiet)
			p := openDisk(t, dir, c, cfg)
			var sent [][]byte
			for i := 0; i < 6; i++ {
				b := makeBatch(77, 2, int32(i), 1, "crash")
				sent = append(sent, bytes.Clone(b))
				res := mustAppend(t, p, b)
				if i < 5 {
					durable(t, res)
				} // the last one is not waited for: it may still be unsynced
			}
			end := p.LogEndOffset()
			// Crash: p is abandoned without Close (its files stay open, as
			// a killed process's page cache stays).
			p2 := openDisk(t, dir, nil, cfg)
			defer p2.Close()
			if p2.LogEndOffset() != end {
				t.Fatalf("LEO %d after crash, want %d", p2.LogEndOffset(), end)
			}
			for i := 1; i < 6; i++ {
				res := mustAppend(t, p2, bytes.Clone(sent[i]))
				if !res.Duplicate || res.BaseOffset != end-6+segments.Offset(i) {
					t.Fatalf("retry %d: %+v", i, res)
				}
				durable(t, res)
			}
			if p2.LogEndOffset() != end {
				t.Fatalf("a retry was written twice: LEO %d", p2.LogEndOffset())
			}
			if mode == "corrupt snapshot" {
				if _, err := os.Stat(filepath.Join(dir, txn.SnapshotName(2)+".corrupt")); err != nil {
					t.Fatalf("corrupt snapshot not quarantined: %v", err)
				}
				res := mustAppend(t, p2, makeBatch(1, 0, 0, 2, "early"))
				if !res.Duplicate || res.BaseOffset != 0 {
					t.Fatalf("producer from before the corrupt snapshot: %+v", res)
				}
			}
			c.Close()
		})
	}
}

func TestDiskDelete(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-3")
	p := openDisk(t, dir, nil, segments.Config{})
	durable(t, mustAppend(t, p, makeBatch(-1, 0, 0, 1, "x")))
	if err := p.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("directory still there: %v", err)
	}
}

// BenchmarkGroupCommit appends from many goroutines to several partitions
// with acks=all semantics (each waits for Durable) and reports how many
// appends one Log.Sync served.
func BenchmarkGroupCommit(b *testing.B) {
	c := NewCommitter(quiet)
	defer c.Close()
	const parts = 6
	var ps []*Partition
	for i := 0; i < parts; i++ {
		ps = append(ps, openDisk(b, filepath.Join(b.TempDir(), "t-3"), c, segments.Config{MaxMessageBytes: 1 << 20}))
	}
	payload := makeBatch(-1, 0, 0, 10, "bench-record-of-modest-size")
	var n sync.Mutex
	i := 0
	before := c.Stats()
	b.SetParallelism(16)
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := bytes.Clone(payload)
		for pb.Next() {
			n.Lock()
			p := ps[i%parts]
			i++
			n.Unlock()
			res, err := p.Append(buf)
			if err != nil {
				b.Error(err)
				return
			}
			if err := <-res.Durable; err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	st := c.Stats()
	if syncs := st.Syncs - before.Syncs; syncs > 0 {
		b.ReportMetric(float64(b.N)/float64(syncs), "appends/sync")
	}
	for _, p := range ps {
		p.Close()
	}
}
