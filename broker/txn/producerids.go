package txn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// producerIDsFile is where a data directory written before the
// controller quorum kept the first producer id it had not reserved;
// ReadLegacyNextProducerID reads it so that the metadata log's producer
// ids start past every id that node handed out.
const producerIDsFile = "producer-ids"

// BlockSource returns a block [first, first+size) of producer ids that no
// other allocator of the cluster gets: the active controller's
// AllocateProducerIDs, which records each block in the metadata log.
type BlockSource func(ctx context.Context) (first, size int64, err error)

// ProducerIDs hands out producer ids for idempotent producers from blocks
// of a BlockSource. Ids never repeat in the cluster, across restarts too:
// ids of a block not handed out before a restart are skipped, never
// reused. Safe for concurrent use; one block is fetched at a time.
type ProducerIDs struct {
	source BlockSource
	mu     struct {
		sync.Mutex
		next, end int64 // the current block's next id and end (exclusive)
		closed    bool
	}
}

// ErrProducerIDsClosed is returned by Next after Close.
var ErrProducerIDsClosed = errors.New("txn: producer id allocator closed")

// NewProducerIDs returns an allocator over source.
func NewProducerIDs(source BlockSource) *ProducerIDs {
	return &ProducerIDs{source: source}
}

// Next returns a fresh producer id and its first epoch (0), fetching a
// new block when the current one is used up; the source's error (the
// controller unreachable) is returned as is.
func (p *ProducerIDs) Next(ctx context.Context) (id int64, epoch int16, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return -1, -1, ErrProducerIDsClosed
	}
	if p.mu.next >= p.mu.end {
		first, size, err := p.source(ctx)
		if err != nil {
			return -1, -1, err
		}
		if first < 0 || size < 1 || first > math.MaxInt64-size {
			return -1, -1, fmt.Errorf("txn: producer id block [%d, +%d) is invalid", first, size)
		}
		p.mu.next, p.mu.end = first, first+size
	}
	id = p.mu.next
	p.mu.next++
	return id, 0, nil
}

// Close makes later Next calls fail.
func (p *ProducerIDs) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.closed = true
	return nil
}

// ReadLegacyNextProducerID returns the first producer id that a data
// directory written before the controller quorum had not reserved (0
// without its producer-ids file). A file that cannot be parsed is an error
// rather than 0, which could reuse ids.
func ReadLegacyNextProducerID(dataDir string) (int64, error) {
	path := filepath.Join(dataDir, producerIDsFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("txn: read %s: %w", path, err)
	}
	next, err := parseProducerIDs(data)
	if err != nil {
		return 0, fmt.Errorf("txn: %s: %w", path, err)
	}
	return next, nil
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
