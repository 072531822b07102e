package broker

// Remote reads: Fetch and ListOffsets below a partition's local log start
// are served from the bucket (tiering.RemoteReader through the chunk
// cache).
//
// A Fetch never blocks its connection on the store: each remote partition
// read runs in its own goroutine, bounded by remote.log.reader.timeout.ms,
// and the Fetch (already a deferred reply) waits for them at most
// remote.fetch.max.wait.ms. A read that is not done by then leaves its
// partition without records in this response (the client fetches the same
// offset again) while the download goes on filling the cache; one that
// failed gives its partition KAFKA_STORAGE_ERROR, which clients retry.

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/stratalog/strata/broker/replica"
	"github.com/stratalog/strata/segments"
	"github.com/stratalog/strata/tiering"
)

// remoteRead is one partition's remote read in flight.
type remoteRead struct {
	done chan struct{} // closed when res/err are set
	mu   sync.Mutex
	res  segments.ReadResult
	err  error
	// gone: the fetch stopped waiting; whoever comes second (the reader
	// finishing, or the fetch abandoning) releases res.
	gone bool
}

// startRead starts reading p's remote tier from offset from.
func (tm *tierManager) startRead(p *replica.Partition, from segments.Offset, maxBytes int32, minOneBatch bool) *remoteRead {
	rr := &remoteRead{done: make(chan struct{})}
	tp := tm.partition(p)
	go func() {
		var res segments.ReadResult
		var err error
		switch m := tp.currentManifest(); {
		case tp == nil || m == nil:
			err = errRemoteUnavailable
		default:
			ctx, cancel := context.WithTimeout(tm.ctx, tm.cfg.ReadTimeout)
			start := time.Now()
			res, err = tm.reader.Read(ctx, m, from, maxBytes, minOneBatch)
			cancel()
			tm.metrics.remoteRead(tp, res.Bytes, time.Since(start), err)
		}
		rr.mu.Lock()
		rr.res, rr.err = res, err
		if rr.gone {
			rr.res.Release()
		}
		rr.mu.Unlock()
		close(rr.done)
	}()
	return rr
}

// errRemoteUnavailable: the partition's manifest is not loaded (yet).
var errRemoteUnavailable = errors.New("tiering: the partition's remote tier is not available yet")

// currentManifest is the manifest remote reads use (nil-safe).
func (tp *tieredPartition) currentManifest() *tiering.Manifest {
	if tp == nil {
		return nil
	}
	return tp.manifest.Load()
}

// wait waits until the read is done or stop is closed, and returns its
// result (ok) or abandons it (!ok: the result is released when it
// arrives).
func (rr *remoteRead) wait(stop <-chan struct{}) (segments.ReadResult, bool, error) {
	select {
	case <-rr.done:
	case <-stop:
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	select {
	case <-rr.done:
		return rr.res, true, rr.err
	default:
		rr.gone = true
		return segments.ReadResult{}, false, nil
	}
}

// remoteReadErrorCode maps a remote read failure to the partition's error
// code: the log start moved (retention raced the fetch) is
// OFFSET_OUT_OF_RANGE; anything else (store down, timeout, bad object) is
// KAFKA_STORAGE_ERROR, which clients retry.
func remoteReadErrorCode(err error) int16 {
	if errors.Is(err, segments.ErrOffsetOutOfRange) {
		return kerr.OffsetOutOfRange.Code
	}
	return kerr.KafkaStorageError.Code
}

// offsetForTimestamp answers a ListOffsets timestamp query for p: from the
// remote tier when a remote-only segment (below the local log start) has a
// timestamp at or after ts, else from the local log.
func (tm *tierManager) offsetForTimestamp(ctx context.Context, p *replica.Partition, ts int64) (segments.Offset, int64, bool, error) {
	if m := tm.partition(p).currentManifest(); m != nil {
		if seg, ok := m.FindByTimestamp(ts); ok && seg.BaseOffset < p.LocalLogStartOffset() && seg.EndOffset > p.LogStartOffset() {
			ctx, cancel := context.WithTimeout(ctx, tm.cfg.ReadTimeout)
			defer cancel()
			off, bts, found, err := tm.reader.OffsetForTimestamp(ctx, m, ts)
			if err != nil || found {
				return off, bts, found, err
			}
		}
	}
	return p.OffsetForTimestamp(ts)
}

// tieredView is the ListOffsets view of a tiered partition: timestamps
// are searched in the remote tier too, and earliest-local (-4) is the
// local log start.
type tieredView struct {
	*replica.Partition
	tm  *tierManager
	ctx context.Context
}

func (v tieredView) OffsetForTimestamp(ts int64) (segments.Offset, int64, bool, error) {
	off, bts, found, err := v.tm.offsetForTimestamp(v.ctx, v.Partition, ts)
	if err != nil || !found || off >= v.HighWatermark() {
		return -1, -1, false, err
	}
	return off, bts, true, nil
}
