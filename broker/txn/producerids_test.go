package txn

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// blocks is a BlockSource handing out consecutive blocks of size, as the
// controller does, counting its calls.
type blocks struct {
	mu    sync.Mutex
	next  int64
	size  int64
	calls int
	err   error
}

func (b *blocks) source(context.Context) (int64, int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	if b.err != nil {
		return 0, 0, b.err
	}
	first := b.next
	b.next += b.size
	return first, b.size, nil
}

// TestProducerIDsNeverRepeat: ids come from the source's blocks in order,
// one block fetched per size ids; a new allocator (a restart) skips the
// rest of the old block; after Close, Next fails.
func TestProducerIDsNeverRepeat(t *testing.T) {
	src := &blocks{next: 5000, size: 100}
	seen := map[int64]bool{}
	last := int64(-1)
	for round := 0; round < 3; round++ {
		p := NewProducerIDs(src.source)
		for i := 0; i < 150; i++ { // crosses a block boundary
			id, epoch, err := p.Next(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if epoch != 0 || seen[id] || id <= last || id < 5000 {
				t.Fatalf("round %d: id %d epoch %d (last %d, seen %v)", round, id, epoch, last, seen[id])
			}
			seen[id], last = true, id
		}
		p.Close()
		if _, _, err := p.Next(context.Background()); !errors.Is(err, ErrProducerIDsClosed) {
			t.Fatalf("Next after Close: %v", err)
		}
	}
	if src.calls != 6 {
		t.Errorf("%d blocks fetched, want 6 (two per allocator)", src.calls)
	}
}

// TestProducerIDsSourceErrors: a failing source fails Next with its error
// (nothing handed out), a bad block is refused, and the next call tries
// again.
func TestProducerIDsSourceErrors(t *testing.T) {
	boom := errors.New("controller unreachable")
	src := &blocks{size: 10, err: boom}
	p := NewProducerIDs(src.source)
	if _, _, err := p.Next(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("Next with a failing source: %v", err)
	}
	bad := NewProducerIDs(func(context.Context) (int64, int64, error) { return -1, 10, nil })
	if _, _, err := bad.Next(context.Background()); err == nil {
		t.Fatal("a negative block accepted")
	}
	src.err = nil
	if id, _, err := p.Next(context.Background()); err != nil || id != 0 {
		t.Fatalf("after the source recovered: %d, %v", id, err)
	}
}

func TestProducerIDsConcurrent(t *testing.T) {
	p := NewProducerIDs((&blocks{size: 7}).source)
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				id, _, err := p.Next(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[id] {
					t.Errorf("id %d twice", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 2400 {
		t.Fatalf("%d ids", len(seen))
	}
}

// TestReadLegacyNextProducerID: the file of an earlier release gives the
// first unreserved id; none gives 0; a damaged one is an error.
func TestReadLegacyNextProducerID(t *testing.T) {
	dir := t.TempDir()
	if n, err := ReadLegacyNextProducerID(dir); err != nil || n != 0 {
		t.Fatalf("no file: %d, %v", n, err)
	}
	os.WriteFile(filepath.Join(dir, producerIDsFile), []byte("1\n6000\n"), 0o644)
	if n, err := ReadLegacyNextProducerID(dir); err != nil || n != 6000 {
		t.Fatalf("file: %d, %v", n, err)
	}
	for _, content := range []string{"", "garbage", "1\n-5\n", "2\n10\n", "1\nx\n"} {
		os.WriteFile(filepath.Join(dir, producerIDsFile), []byte(content), 0o644)
		if _, err := ReadLegacyNextProducerID(dir); err == nil {
			t.Errorf("content %q accepted", content)
		}
	}
}
