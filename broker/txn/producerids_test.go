package txn

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestProducerIDsNeverRepeat(t *testing.T) {
	dir := t.TempDir()
	seen := map[int64]bool{}
	last := int64(-1)
	for round := 0; round < 3; round++ {
		p, err := OpenProducerIDs(dir)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < producerIDBlock+10; i++ { // crosses a block boundary
			id, epoch, err := p.Next()
			if err != nil {
				t.Fatal(err)
			}
			if epoch != 0 || seen[id] || id <= last {
				t.Fatalf("round %d: id %d epoch %d (last %d, seen %v)", round, id, epoch, last, seen[id])
			}
			seen[id], last = true, id
		}
		if round == 1 {
			// Simulate a crash: no Close.
			continue
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.Next(); err == nil {
			t.Fatal("Next after Close succeeded")
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, producerIDsFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "1\n6000\n" { // three opens, each reserving two blocks
		t.Fatalf("file %q", data)
	}
}

func TestProducerIDsConcurrent(t *testing.T) {
	p, err := OpenProducerIDs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				id, _, err := p.Next()
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

func TestProducerIDsBadFile(t *testing.T) {
	for _, content := range []string{"", "garbage", "1\n-5\n", "2\n10\n", "1\nx\n"} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, producerIDsFile), []byte(content), 0o644)
		if _, err := OpenProducerIDs(dir); err == nil {
			t.Errorf("content %q accepted", content)
		}
	}
}
