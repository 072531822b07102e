package txn

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/stratalog/strata/internal/fsutil"
)

const (
	// producerIDsFile holds the first producer id not yet reserved.
	producerIDsFile = "producer-ids"
	// producerIDBlock is how many ids one fsync reserves: ids are handed
	// out from memory until the block is used up, so an InitProducerId
	// costs one fsync per 1000 producers. Ids of a block that were not
	// handed out before a restart are skipped, never reused.
	producerIDBlock = 1000
)

// ProducerIDs allocates producer ids for idempotent producers. Ids never
// repeat, across restarts too: before handing out an id from a new block,
// the end of that block is persisted in <data-dir>/producer-ids (write to a
// temporary file, fsync, rename, fsync the directory), and a restart starts
// from the persisted value.
//
// File format (text, so operators can read it): a version line "1" and a
// line with the next unreserved id.
//
// Safe for concurrent use.
type ProducerIDs struct {
	dir string
	mu  struct {
		sync.Mutex
		next     int64 // next id to hand out
		reserved int64 // end (exclusive) of the reserved block
		closed   bool
	}
}

// ErrProducerIDsClosed is returned by Next after Close.
var ErrProducerIDsClosed = errors.New("txn: producer id allocator closed")

// OpenProducerIDs opens (or creates) the allocator in dataDir. A file that
// cannot be parsed is an error rather than a restart from 0, which could
// reuse ids.
func OpenProducerIDs(dataDir string) (*ProducerIDs, error) {
	p := &ProducerIDs{dir: dataDir}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("txn: %w", err)
	}
	data, err := os.ReadFile(filepath.Join(dataDir, producerIDsFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		// A fresh data directory; ids start at 0 as in Kafka.
	case err != nil:
		return nil, fmt.Errorf("txn: read producer id block: %w", err)
	default:
		next, err := parseProducerIDs(data)
		if err != nil {
			return nil, fmt.Errorf("txn: %s: %w", filepath.Join(dataDir, producerIDsFile), err)
		}
		p.mu.next, p.mu.reserved = next, next
	}
	return p, nil
}

func parseProducerIDs(data []byte) (int64, error) {
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) != 2 || lines[0] != "1" {
		return 0, fmt.Errorf("unrecognised producer id file %q", data)
	}
	next, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || next < 0 {
		return 0, fmt.Errorf("bad next producer id %q", lines[1])
	}
	return next, nil
}

// Next returns a fresh producer id and its first epoch (0).
func (p *ProducerIDs) Next() (id int64, epoch int16, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return -1, -1, ErrProducerIDsClosed
	}
	if p.mu.next >= p.mu.reserved {
		if p.mu.next > math.MaxInt64-producerIDBlock {
			return -1, -1, errors.New("txn: producer ids exhausted")
		}
		end := p.mu.next + producerIDBlock
		if err := p.persist(end); err != nil {
			return -1, -1, err
		}
		p.mu.reserved = end
	}
	id = p.mu.next
	p.mu.next++
	return id, 0, nil
}

func (p *ProducerIDs) persist(next int64) error {
	data := []byte("1\n" + strconv.FormatInt(next, 10) + "\n")
	if err := fsutil.WriteFileAtomic(filepath.Join(p.dir, producerIDsFile), data); err != nil {
		return fmt.Errorf("txn: reserve producer ids: %w", err)
	}
	return nil
}

// Close stops allocation. The reserved remainder of the current block is
// abandoned (ids are plentiful; reuse is what must never happen).
func (p *ProducerIDs) Close() error {
	p.mu.Lock()
	p.mu.closed = true
	p.mu.Unlock()
	return nil
}
