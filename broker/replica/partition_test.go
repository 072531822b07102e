package replica

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"sync"
	"testing"

	"github.com/stratalog/strata/broker/txn"
	"github.com/stratalog/strata/segments"
)

func TestAppendOrderedOffsets(t *testing.T) {
	p := openFake(t, t.TempDir(), newFakeLog(), nil)
	defer p.Close()
	var next segments.Offset
	for i := 1; i <= 5; i++ {
		payload := makeBatch(-1, 0, 0, i, "x")
		res := mustAppend(t, p, payload)
		if res.BaseOffset != next || res.Duplicate || res.LogAppendTime != -1 {
			t.Fatalf("append %d: %+v, want base %d", i, res, next)
		}
		if got := segments.Offset(binary.BigEndian.Uint64(payload)); got != next {
			t.Fatalf("payload baseOffset %d, want %d", got, next)
		}
		durable(t, res)
		next += segments.Offset(i)
	}
	if p.LogEndOffset() != next || p.HighWatermark() != next || p.LeaderEpoch() != 0 {
		t.Fatalf("LEO %d HW %d epoch %d", p.LogEndOffset(), p.HighWatermark(), p.LeaderEpoch())
	}
}

func TestAppendRejectsInvalid(t *testing.T) {
	p := openFake(t, t.TempDir(), newFakeLog(), nil)
	defer p.Close()
	bad := makeBatch(-1, 0, 0, 2, "x")
	bad[len(bad)-1] ^= 1
	var corrupt *segments.CorruptError
	if _, err := p.Append(bad); !errors.As(err, &corrupt) {
		t.Fatalf("bad CRC: %v", err)
	}
	if _, err := p.Append(nil); !errors.Is(err, segments.ErrInvalidRecord) {
		t.Fatalf("empty: %v", err)
	}
	ctrl := makeBatch(-1, 0, 0, 1, "marker")
	binary.BigEndian.PutUint16(ctrl[21:], 0x20) // control attribute
	binary.BigEndian.PutUint32(ctrl[17:], crc32.Checksum(ctrl[21:], crc32.MakeTable(crc32.Castagnoli)))
	if _, err := p.Append(ctrl); !errors.Is(err, segments.ErrInvalidRecord) {
		t.Fatalf("control batch: %v", err)
	}
	p.SetLogConfig(segments.Config{MaxMessageBytes: 70})
	if _, err := p.Append(makeBatch(-1, 0, 0, 10, "big")); !errors.Is(err, segments.ErrRecordTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	if p.LogEndOffset() != 0 {
		t.Fatalf("something was written: LEO %d", p.LogEndOffset())
	}
}

func TestIdempotentAppend(t *testing.T) {
	f := newFakeLog()
	p := openFake(t, t.TempDir(), f, nil)
	defer p.Close()

	durable(t, mustAppend(t, p, makeBatch(-1, 0, 0, 3, "plain"))) // offsets 0-2
	first := makeBatch(7, 0, 0, 2, "a")
	res := mustAppend(t, p, bytes.Clone(first)) // offsets 3-4
	if res.BaseOffset != 3 || res.Duplicate {
		t.Fatalf("first: %+v", res)
	}
	durable(t, res)
	durable(t, mustAppend(t, p, makeBatch(7, 0, 2, 1, "b"))) // offset 5

	// A retry of the first batch: acknowledged with its original offset,
	// nothing written.
	dup := mustAppend(t, p, bytes.Clone(first))
	if !dup.Duplicate || dup.BaseOffset != 3 {
		t.Fatalf("retry: %+v", dup)
	}
	durable(t, dup)
	if p.LogEndOffset() != 6 {
		t.Fatalf("LEO %d after duplicate", p.LogEndOffset())
	}

	for _, tc := range []struct {
		name    string
		payload []byte
		want    error
	}{
		{"gap", makeBatch(7, 0, 5, 1, "c"), txn.ErrOutOfOrderSequence},
		{"new epoch not at 0", makeBatch(7, 1, 3, 1, "c"), txn.ErrOutOfOrderSequence},
	} {
		if _, err := p.Append(tc.payload); !errors.Is(err, tc.want) {
			t.Fatalf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	durable(t, mustAppend(t, p, makeBatch(7, 1, 0, 1, "new epoch"))) // offset 6
	if _, err := p.Append(makeBatch(7, 0, 3, 1, "stale")); !errors.Is(err, txn.ErrInvalidProducerEpoch) {
		t.Fatalf("stale epoch: %v", err)
	}
	if p.LogEndOffset() != 7 {
		t.Fatalf("LEO %d", p.LogEndOffset())
	}
}

func TestMultiBatchPayload(t *testing.T) {
	p := openFake(t, t.TempDir(), newFakeLog(), nil)
	defer p.Close()
	a := makeBatch(1, 0, 0, 2, "a")
	durable(t, mustAppend(t, p, bytes.Clone(a))) // 0-1

	// [dup of a, next batch, plain batch]: the duplicate is skipped.
	payload := append(append(bytes.Clone(a), makeBatch(1, 0, 2, 3, "b")...), makeBatch(-1, 0, 0, 1, "c")...)
	res := mustAppend(t, p, payload)
	if res.Duplicate || res.BaseOffset != 0 {
		t.Fatalf("mixed: %+v", res)
	}
	durable(t, res)
	if p.LogEndOffset() != 6 {
		t.Fatalf("LEO %d, want 6", p.LogEndOffset())
	}
	// Both again: all duplicates.
	res = mustAppend(t, p, append(bytes.Clone(a), makeBatch(1, 0, 2, 3, "b")...))
	if !res.Duplicate || res.BaseOffset != 0 {
		t.Fatalf("all duplicates: %+v", res)
	}
	durable(t, res)
	// A good batch followed by a gap: nothing written.
	_, err := p.Append(append(makeBatch(1, 0, 5, 1, "d"), makeBatch(1, 0, 9, 1, "e")...))
	if !errors.Is(err, txn.ErrOutOfOrderSequence) || p.LogEndOffset() != 6 {
		t.Fatalf("err %v LEO %d", err, p.LogEndOffset())
	}
	durable(t, mustAppend(t, p, makeBatch(1, 0, 5, 1, "d"))) // state untouched by the failed append
}

func TestHighWatermarkOnlyAfterSync(t *testing.T) {
	f := newFakeLog()
	p := openFake(t, t.TempDir(), f, nil)
	defer p.Close()
	f.mu.Lock()
	f.gate, f.entered = make(chan struct{}), make(chan struct{}, 1)
	f.mu.Unlock()

	changed := p.Changed()
	res := mustAppend(t, p, makeBatch(-1, 0, 0, 4, "x"))
	<-f.entered // the committer is inside Sync, which has not returned
	if hw := p.HighWatermark(); hw != 0 {
		t.Fatalf("HW %d before the fsync completed", hw)
	}
	select {
	case err := <-res.Durable:
		t.Fatalf("durable before fsync: %v", err)
	case <-changed:
		t.Fatal("Changed fired before fsync")
	default:
	}
	if r, _ := p.Read(0, 1<<20, true); r.Bytes != 0 || f.readUpTo != 0 {
		t.Fatalf("read %d bytes up to %d before fsync", r.Bytes, f.readUpTo)
	}
	// Appended while the first fsync is running: not covered by it.
	res2 := mustAppend(t, p, makeBatch(-1, 0, 0, 1, "y"))

	f.gate <- struct{}{} // first Sync returns (durable end 4)
	durable(t, res)
	<-changed
	if hw := p.HighWatermark(); hw != 4 {
		t.Fatalf("HW %d after first fsync, want 4", hw)
	}
	select {
	case err := <-res2.Durable:
		t.Fatalf("second append durable before its fsync: %v", err)
	default:
	}
	changed = p.Changed()
	close(f.gate)
	durable(t, res2)
	<-changed
	if hw := p.HighWatermark(); hw != 5 {
		t.Fatalf("HW %d, want 5", hw)
	}
	if r, err := p.Read(0, 1<<20, true); err != nil || r.Bytes == 0 || f.readUpTo != 5 {
		t.Fatalf("read: %d bytes up to %d, %v", r.Bytes, f.readUpTo, err)
	}
}

func TestAcksZeroStillSynced(t *testing.T) {
	f := newFakeLog()
	p := openFake(t, t.TempDir(), f, nil)
	defer p.Close()
	for i := 0; i < 10; i++ {
		mustAppend(t, p, makeBatch(-1, 0, 0, 1, "fire-and-forget")) // Durable ignored
	}
	for {
		ch := p.Changed()
		if p.HighWatermark() == 10 {
			break
		}
		<-ch
	}
}

func TestReadBounds(t *testing.T) {
	f := newFakeLog()
	p := openFake(t, t.TempDir(), f, nil)
	defer p.Close()
	durable(t, mustAppend(t, p, makeBatch(-1, 0, 0, 3, "x")))
	f.mu.Lock()
	f.gate = make(chan struct{}) // hold later fsyncs
	f.mu.Unlock()
	mustAppend(t, p, makeBatch(-1, 0, 0, 2, "y")) // LEO 5, HW 3
	if r, err := p.Read(4, 100, true); err != nil || r.Bytes != 0 {
		t.Fatalf("read between HW and LEO: %d bytes, %v", r.Bytes, err)
	}
	if _, err := p.Read(6, 100, true); !errors.Is(err, segments.ErrOffsetOutOfRange) {
		t.Fatalf("read past LEO: %v", err)
	}
	if _, err := p.DeleteRecordsBefore(4); !errors.Is(err, segments.ErrOffsetOutOfRange) {
		t.Fatalf("delete above HW: %v", err)
	}
	if _, err := p.DeleteRecordsBefore(-2); !errors.Is(err, segments.ErrOffsetOutOfRange) {
		t.Fatalf("delete -2: %v", err)
	}
	if start, err := p.DeleteRecordsBefore(-1); err != nil || start != 3 {
		t.Fatalf("delete to HW: %d %v", start, err)
	}
	if ts, off := p.MaxTimestamp(); off != -1 || ts != -1 {
		t.Fatalf("max timestamp beyond HW visible: %d@%d", ts, off) // the newest batch is above HW
	}
	close(f.gate)
}

func TestGroupCommit(t *testing.T) {
	c := NewCommitter(quiet)
	defer c.Close()
	const parts, writers, perWriter = 4, 8, 25
	gate := make(chan struct{})
	var ps []*Partition
	var logs []*fakeLog
	for i := 0; i < parts; i++ {
		f := newFakeLog()
		ps = append(ps, openFake(t, t.TempDir(), f, c))
		f.mu.Lock()
		f.gate = gate // every later fsync waits until all appends were made
		f.mu.Unlock()
		logs = append(logs, f)
	}
	var wg sync.WaitGroup
	results := make(chan AppendResult, writers*perWriter)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				res, err := ps[(w+i)%parts].Append(makeBatch(-1, 0, 0, 1, "g"))
				if err != nil {
					t.Error(err)
					return
				}
				results <- res
			}
		}()
	}
	wg.Wait()
	close(results)
	close(gate)
	n := 0
	for res := range results {
		durable(t, res)
		n++
	}
	syncs := 0
	for _, f := range logs {
		syncs += f.syncCount()
	}
	st := c.Stats()
	// At most one fsync per partition can have started before the gate
	// opened; everything else was appended during it and is served by one
	// more pass of that partition's sync loop: so at most 2 per partition
	// (plus the one at open).
	if n != writers*perWriter || syncs > parts*3 || int(st.Syncs) > parts*2 {
		t.Fatalf("%d appends, %d Log.Sync calls (%d by the committer)", n, syncs, st.Syncs)
	}
	for _, p := range ps {
		if p.HighWatermark() != p.LogEndOffset() {
			t.Fatalf("HW %d LEO %d", p.HighWatermark(), p.LogEndOffset())
		}
		p.Close()
	}
}

func TestFsyncFailureTakesPartitionOffline(t *testing.T) {
	f := newFakeLog()
	p := openFake(t, t.TempDir(), f, nil)
	defer p.Close()
	durable(t, mustAppend(t, p, makeBatch(-1, 0, 0, 2, "ok")))
	f.mu.Lock()
	f.syncErr = errors.New("EIO")
	f.mu.Unlock()
	res := mustAppend(t, p, makeBatch(-1, 0, 0, 1, "lost"))
	if err := <-res.Durable; !errors.Is(err, ErrStorage) {
		t.Fatalf("durable: %v", err)
	}
	if _, err := p.Append(makeBatch(-1, 0, 0, 1, "more")); !errors.Is(err, ErrStorage) {
		t.Fatalf("append after failed fsync: %v", err)
	}
	if hw := p.HighWatermark(); hw != 2 {
		t.Fatalf("HW %d", hw)
	}
}

func TestAppendIOErrorTakesPartitionOffline(t *testing.T) {
	f := newFakeLog()
	p := openFake(t, t.TempDir(), f, nil)
	defer p.Close()
	f.mu.Lock()
	f.appendErr = errors.New("ENOSPC")
	f.mu.Unlock()
	if _, err := p.Append(makeBatch(-1, 0, 0, 1, "x")); !errors.Is(err, ErrStorage) {
		t.Fatalf("append: %v", err)
	}
	f.mu.Lock()
	f.appendErr = nil
	f.mu.Unlock()
	if _, err := p.Append(makeBatch(-1, 0, 0, 1, "x")); !errors.Is(err, ErrStorage) {
		t.Fatalf("append after I/O error: %v", err)
	}
}

func TestCloseCompletesWaitersAndWakesLongPolls(t *testing.T) {
	f := newFakeLog()
	c := NewCommitter(quiet)
	defer c.Close()
	p := openFake(t, t.TempDir(), f, c)
	f.mu.Lock()
	f.gate = make(chan struct{})
	f.entered = make(chan struct{}, 1)
	f.mu.Unlock()
	res := mustAppend(t, p, makeBatch(-1, 0, 0, 1, "x"))
	<-f.entered
	changed := p.Changed()
	closed := make(chan error)
	go func() { closed <- p.Close() }()
	close(f.gate) // the committer's Sync and then Close's own Sync return
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	durable(t, res)
	<-changed
	<-p.Changed()
	if _, err := p.Append(makeBatch(-1, 0, 0, 1, "y")); !errors.Is(err, segments.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

// TestRestartKeepsProducerState: a retry after restart (clean, or a crash
// without Close) is detected as a duplicate.
func TestRestartKeepsProducerState(t *testing.T) {
	for _, clean := range []bool{true, false} {
		name := "crash"
		if clean {
			name = "clean"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			f := newFakeLog()
			p := openFake(t, dir, f, nil)
			batches := [][]byte{}
			for i := 0; i < 8; i++ {
				b := makeBatch(42, 3, int32(i*2), 2, "r")
				batches = append(batches, bytes.Clone(b))
				durable(t, mustAppend(t, p, b))
			}
			if clean {
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(dir + "/" + txn.SnapshotName(16)); err != nil {
					t.Fatalf("no snapshot at clean close: %v", err)
				}
			}
			p2 := openFake(t, dir, f.reopen(), nil)
			defer p2.Close()
			for i := 3; i < 8; i++ { // the last five are remembered
				res := mustAppend(t, p2, bytes.Clone(batches[i]))
				if !res.Duplicate || res.BaseOffset != segments.Offset(i*2) {
					t.Fatalf("retry of batch %d: %+v", i, res)
				}
				durable(t, res)
			}
			if _, err := p2.Append(makeBatch(42, 3, 17, 1, "gap")); !errors.Is(err, txn.ErrOutOfOrderSequence) {
				t.Fatalf("gap after restart: %v", err)
			}
			if _, err := p2.Append(makeBatch(42, 2, 16, 1, "stale")); !errors.Is(err, txn.ErrInvalidProducerEpoch) {
				t.Fatalf("stale epoch after restart: %v", err)
			}
			res := mustAppend(t, p2, makeBatch(42, 3, 16, 1, "next"))
			if res.Duplicate || res.BaseOffset != 16 {
				t.Fatalf("next: %+v", res)
			}
		})
	}
}

// TestBackgroundSnapshot: snapshots are written while appending, and a
// crash then replays only the tail after the newest one.
func TestBackgroundSnapshot(t *testing.T) {
	dir := t.TempDir()
	f := newFakeLog()
	p := openFake(t, dir, f, nil)
	p.snapshotBytes = 1 // a snapshot after every append (one at a time)
	for i := 0; i < 20; i++ {
		durable(t, mustAppend(t, p, makeBatch(5, 0, int32(i), 1, "s")))
	}
	p.snapWG.Wait()
	offs, _ := os.ReadDir(dir)
	if len(offs) == 0 || len(offs) > 2 {
		t.Fatalf("snapshots: %v", offs)
	}
	// Crash: no Close. The newest snapshot plus replay gives the state.
	p2 := openFake(t, dir, f.reopen(), nil)
	defer p2.Close()
	res := mustAppend(t, p2, makeBatch(5, 0, 19, 1, "s"))
	if !res.Duplicate || res.BaseOffset != 19 {
		t.Fatalf("retry after crash: %+v", res)
	}
}

// TestSnapshotBeyondLogEndIgnored: a snapshot written before its data was
// fsynced, then a crash that lost the tail: the snapshot must not be used.
func TestSnapshotBeyondLogEndIgnored(t *testing.T) {
	dir := t.TempDir()
	f := newFakeLog()
	p := openFake(t, dir, f, nil)
	durable(t, mustAppend(t, p, makeBatch(9, 0, 0, 1, "kept")))
	lostState := f.reopen() // the "disk" after the crash: only offset 0
	durable(t, mustAppend(t, p, makeBatch(9, 0, 1, 1, "lost")))
	p.Close() // snapshot at 2

	p2 := openFake(t, dir, lostState, nil)
	defer p2.Close()
	// Sequence 1 was never durably written: it must be accepted as new.
	res := mustAppend(t, p2, makeBatch(9, 0, 1, 1, "lost"))
	if res.Duplicate || res.BaseOffset != 1 {
		t.Fatalf("%+v", res)
	}
}

// TestLeadership: a partition leads at its log's epoch when opened;
// BecomeLeader at a higher epoch records it from the log end and later
// batches carry it; a lower epoch keeps the latest; StopLeading refuses
// appends with ErrNotLeader until the partition leads again.
func TestLeadership(t *testing.T) {
	p := openDisk(t, t.TempDir(), nil, segments.Config{MaxMessageBytes: 1 << 20, SegmentBytes: 1 << 20, IndexIntervalBytes: 4096, SegmentIndexBytes: 1 << 20})
	t.Cleanup(func() { p.Close() })
	if !p.IsLeader() || p.LeaderEpoch() != 0 {
		t.Fatalf("opened: leader %v epoch %d", p.IsLeader(), p.LeaderEpoch())
	}
	mustAppend(t, p, makeBatch(-1, 0, 0, 2, "a"))
	if e, err := p.BecomeLeader(3); err != nil || e != 3 {
		t.Fatalf("BecomeLeader(3): %d, %v", e, err)
	}
	mustAppend(t, p, makeBatch(-1, 0, 0, 1, "b"))
	if e, off := p.EndOffsetForEpoch(0); e != 0 || off != 2 {
		t.Errorf("end of epoch 0: epoch %d offset %d, want 0 and 2", e, off)
	}
	if e, err := p.BecomeLeader(1); err != nil || e != 3 {
		t.Errorf("BecomeLeader(1) after 3: %d, %v; want 3 kept", e, err)
	}
	p.StopLeading()
	if _, err := p.Append(makeBatch(-1, 0, 0, 1, "c")); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("append while not leading: %v", err)
	}
	if _, err := p.BecomeLeader(4); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, p, makeBatch(-1, 0, 0, 1, "d"))
	if p.LeaderEpoch() != 4 || p.LogEndOffset() != 4 {
		t.Errorf("after leading again: epoch %d end %d", p.LeaderEpoch(), p.LogEndOffset())
	}
}
