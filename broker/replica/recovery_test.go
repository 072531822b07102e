package replica

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stratalog/strata/internal/backoff"
	"github.com/stratalog/strata/segments"
)

// The recovery schedule: 1, 2, 4, 8, 16, then every 30 s.
func TestRecoveryBackoff(t *testing.T) {
	b := backoff.Backoff{Min: recoveryBackoffMin, Max: recoveryBackoffMax}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i, w := range want {
		if got := b.Next(); got != w*time.Second {
			t.Fatalf("wait %d = %v, want %v", i+1, got, w*time.Second)
		}
	}
}

func set(f *fakeLog, fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// An fsync failure takes the partition offline; it comes back by itself
// once the cause is gone, cut at the high watermark, with nobody
// restarting anything. The backoff is 1, 2, 4 … s (virtual time).
func TestFsyncFailureRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeLog()
		p := openFake(t, t.TempDir(), f, nil)
		defer p.Close()
		durable(t, mustAppend(t, p, makeBatch(7, 0, 0, 2, "ok")))

		set(f, func() { f.syncErr = errors.New("EIO") })
		start := time.Now()
		res := mustAppend(t, p, makeBatch(7, 0, 2, 1, "lost"))
		if err := <-res.Durable; !errors.Is(err, ErrStorage) {
			t.Fatalf("durable: %v", err)
		}
		st, off := p.Offline()
		if !off || !errors.Is(st.Reason, ErrStorage) || !st.Since.Equal(start) || p.OfflinePeriods() != 1 {
			t.Fatalf("Offline() = %+v, %v; periods %d", st, off, p.OfflinePeriods())
		}
		if _, err := p.Append(makeBatch(7, 0, 3, 1, "refused")); !errors.Is(err, ErrStorage) {
			t.Fatalf("append while offline: %v", err)
		}

		// Attempts at 1 s and 3 s fail: Recover works but the fsync after
		// it does not.
		time.Sleep(3*time.Second + time.Millisecond)
		synctest.Wait()
		if st, off := p.Offline(); !off || st.Attempts != 2 {
			t.Fatalf("after 3 s: offline %v, %d attempts, want 2", off, st.Attempts)
		}

		set(f, func() { f.syncErr = nil })
		time.Sleep(4 * time.Second) // the third attempt, at 7 s
		synctest.Wait()
		if st, off := p.Offline(); off {
			t.Fatalf("still offline after the cause went: %+v", st)
		}
		if p.HighWatermark() != 2 || p.LogEndOffset() != 2 {
			t.Fatalf("HW %d, LEO %d: the unacknowledged batch should be cut at the HW 2", p.HighWatermark(), p.LogEndOffset())
		}
		// The producer state was rebuilt from the log: sequence 2 is
		// next again (the cut batch never happened), and appends work.
		res = mustAppend(t, p, makeBatch(7, 0, 2, 1, "again"))
		if res.BaseOffset != 2 || res.Duplicate {
			t.Fatalf("append after recovery: %+v", res)
		}
		durable(t, res)
		if p.OfflinePeriods() != 1 {
			t.Fatalf("%d offline periods", p.OfflinePeriods())
		}
	})
}

// A failed roll keeps the partition usable: the append gets a retriable
// error wrapping segments.ErrRollFailed (not ErrStorage), the partition is
// reported offline, and it is back as soon as a roll succeeds — through
// the next append, or the recovery goroutine's retry.
func TestRollFailureIsRetriable(t *testing.T) {
	rollErr := fmt.Errorf("%w at offset 2: open 00000000000000000002.log: %w", segments.ErrRollFailed, syscall.EMFILE)

	t.Run("next append", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeLog()
			p := openFake(t, t.TempDir(), f, nil)
			defer p.Close()
			set(f, func() { f.appendErr = rollErr })
			_, err := p.Append(makeBatch(-1, 0, 0, 1, "x"))
			if !errors.Is(err, segments.ErrRollFailed) || !errors.Is(err, syscall.EMFILE) || errors.Is(err, ErrStorage) {
				t.Fatalf("append: %v", err)
			}
			if st, off := p.Offline(); !off || !errors.Is(st.Reason, segments.ErrRollFailed) {
				t.Fatalf("Offline() = %+v, %v", st, off)
			}
			set(f, func() { f.appendErr = nil })
			durable(t, mustAppend(t, p, makeBatch(-1, 0, 0, 1, "x")))
			if _, off := p.Offline(); off {
				t.Fatal("still offline after a successful append")
			}
		})
	})

	t.Run("background roll", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeLog()
			p := openFake(t, t.TempDir(), f, nil)
			defer p.Close()
			durable(t, mustAppend(t, p, makeBatch(-1, 0, 0, 1, "x")))
			set(f, func() { f.appendErr, f.rollErr = rollErr, rollErr })
			if _, err := p.Append(makeBatch(-1, 0, 0, 1, "x")); !errors.Is(err, segments.ErrRollFailed) {
				t.Fatalf("append: %v", err)
			}
			time.Sleep(3*time.Second + time.Millisecond)
			synctest.Wait()
			if st, off := p.Offline(); !off || st.Attempts != 2 {
				t.Fatalf("after 3 s: %+v, %v", st, off)
			}
			set(f, func() { f.rollErr = nil })
			time.Sleep(4 * time.Second)
			synctest.Wait()
			if _, off := p.Offline(); off {
				t.Fatal("the recovery goroutine's roll did not bring the partition back")
			}
			set(f, func() { f.appendErr = nil })
			if f.rolls != 1 {
				t.Fatalf("%d rolls", f.rolls)
			}
			syncs := f.syncCount()
			durable(t, mustAppend(t, p, makeBatch(-1, 0, 0, 1, "y")))
			if f.syncCount() <= syncs {
				t.Fatal("no sync after the append")
			}
		})
	})
}

// A write that failed and was undone (ErrNotWritten) is retriable and does
// not take the partition offline.
func TestNotWrittenStaysOnline(t *testing.T) {
	f := newFakeLog()
	p := openFake(t, t.TempDir(), f, nil)
	defer p.Close()
	set(f, func() { f.appendErr = fmt.Errorf("%w: append: %w", segments.ErrNotWritten, syscall.ENOSPC) })
	if _, err := p.Append(makeBatch(-1, 0, 0, 1, "x")); !errors.Is(err, segments.ErrNotWritten) || errors.Is(err, ErrStorage) {
		t.Fatalf("append: %v", err)
	}
	if st, off := p.Offline(); off {
		t.Fatalf("offline after an undone write: %+v", st)
	}
	set(f, func() { f.appendErr = nil })
	durable(t, mustAppend(t, p, makeBatch(-1, 0, 0, 1, "x")))
}

// Close ends a recovery goroutine that is waiting, and a partition closed
// while offline does not start another.
func TestCloseStopsRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeLog()
		p := openFake(t, t.TempDir(), f, nil)
		set(f, func() { f.syncErr = errors.New("EIO") })
		res := mustAppend(t, p, makeBatch(-1, 0, 0, 1, "x"))
		<-res.Durable
		if err := p.Close(); err == nil {
			t.Fatal("Close of a failed partition reported no error")
		}
		// synctest.Test fails if a goroutine of the bubble is left.
	})
}

// A failure that a reload already dealt with does not take the partition
// offline again.
func TestStaleFailureIgnored(t *testing.T) {
	f := newFakeLog()
	p := openFake(t, t.TempDir(), f, nil)
	defer p.Close()
	gen := p.generation()
	p.cmu.Lock()
	p.cmu.gen++ // a reload happened since gen
	p.cmu.Unlock()
	p.failIfCurrent("fsync", errors.New("old EIO"), gen)
	if st, off := p.Offline(); off {
		t.Fatalf("a stale failure took the partition offline: %+v", st)
	}
	p.failIfCurrent("fsync", errors.New("EIO"), gen+1)
	if _, off := p.Offline(); !off {
		t.Fatal("a current failure did not")
	}
}
