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
//
// Corrupt bucket data is never served: the remote reader verifies every
// byte it returns (tiering/reader.go), and a read that finds damage fails
// with KAFKA_STORAGE_ERROR for that range, is counted
// (strata.tiering.remote_read.corrupt) and logged at error level with the
// partition, the offset read, the segment's offset range and the object
// key, at most once per object per tierLogEvery.
//
// A tiered partition whose manifest is not loaded (tierManager.
// checkRemoteKnown) answers Fetch below its local log start, ListOffsets
// earliest and by timestamp, and DeleteRecords with KAFKA_STORAGE_ERROR
// too, never OFFSET_OUT_OF_RANGE: it cannot know where its log starts.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

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
			if err != nil {
				tm.logReadFailure(tp, m, from, err)
			}
			err = remoteFailure(err)
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

// errRemoteUnavailable: the partition's manifest is not loaded (yet, or
// any more in this run: missing, corrupt, the store unreachable). It is a
// remote storage failure: KAFKA_STORAGE_ERROR (errors.go).
var errRemoteUnavailable = fmt.Errorf("%w: the partition's manifest is not loaded, so its remote tier is not available", errRemoteStorage)

// remoteFailure marks the error of a remote read or lookup as a failure of
// the remote storage (KAFKA_STORAGE_ERROR, errors.go) — corrupt bucket data
// included, which is not the client's CORRUPT_MESSAGE — except an offset
// out of range (the log start moved meanwhile), which stays what it is.
func remoteFailure(err error) error {
	if err == nil || errors.Is(err, segments.ErrOffsetOutOfRange) || errors.Is(err, errRemoteStorage) {
		return err
	}
	return fmt.Errorf("%w: %w", errRemoteStorage, err)
}

// checkRemoteKnown returns errRemoteUnavailable if p is tiered, its
// manifest has not been loaded in this run (missing while the tier
// checkpoint says it existed, corrupt, or the store unreachable since the
// start), and offset o lies below p's local log start: only the remote
// tier can answer for o, and without its manifest p's log start offset is
// just the local one, so OFFSET_OUT_OF_RANGE would be a lie that makes
// consumers with auto.offset.reset=earliest skip the remote history. nil
// otherwise. Nil-safe (no tiering: nil).
func (tm *tierManager) checkRemoteKnown(p *replica.Partition, o segments.Offset) error {
	// Every Fetch of every partition comes here: without tiering it
	// returns at once, and most reads are at or above the local start,
	// which needs no lookup of the partition's tiering.
	if tm == nil {
		return nil
	}
	local := p.LocalLogStartOffset()
	if o >= local {
		return nil
	}
	if tp := tm.partition(p); tp != nil && tp.currentManifest() == nil {
		return fmt.Errorf("%w (%s-%d: offset %d is below the local log start %d)", errRemoteUnavailable, tp.topic, p.Index(), o, local)
	}
	return nil
}

// logReadFailure logs a failed remote read through the rate limiter.
// Corrupt bucket data is an error naming the partition, the offset read,
// the segment's offset range and the object key, once per object and
// tierLogEvery; other failures a warning, once per partition and
// tierLogEvery. Reads cancelled by the shutdown and reads that raced
// retention (offset out of range) are not logged.
func (tm *tierManager) logReadFailure(tp *tieredPartition, m *tiering.Manifest, from segments.Offset, err error) {
	if tm.ctx.Err() != nil || errors.Is(err, segments.ErrOffsetOutOfRange) {
		return
	}
	var ce *segments.CorruptError
	if !errors.As(err, &ce) {
		tm.logs.Log(slog.LevelWarn, tierLogKey("read", tp.topic, tp.p.Index()), "tiering: remote read failed",
			"topic", tp.topic, "partition", tp.p.Index(), "offset", int64(from), "err", err)
		return
	}
	attrs := []any{"topic", tp.topic, "partition", tp.p.Index(), "offset", int64(from), "object", ce.Path, "position", ce.Position}
	if ref, perr := tiering.ParseSegmentKey(ce.Path); perr == nil {
		if seg, ok := m.Find(ref.BaseOffset); ok && seg.BaseOffset == ref.BaseOffset {
			attrs = append(attrs, "segment_offsets", fmt.Sprintf("[%d, %d)", seg.BaseOffset, seg.EndOffset))
		}
	}
	tm.logs.Log(slog.LevelError, "tiering corrupt "+ce.Path, "tiering: corrupt data in the remote tier; not served, the range answers KAFKA_STORAGE_ERROR",
		append(attrs, "err", err)...)
}

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

// offsetForTimestamp answers a ListOffsets timestamp query for p: from the
// remote tier when a remote-only segment (below the local log start) has a
// timestamp at or after ts, else from the local log.
// Errors: errRemoteUnavailable while the partition's manifest is not
// loaded (the answer may lie in the remote tier); a failed remote lookup
// as a remote storage failure (remoteFailure).
func (tm *tierManager) offsetForTimestamp(ctx context.Context, p *replica.Partition, ts int64) (segments.Offset, int64, bool, error) {
	if err := tm.checkRemoteKnown(p, 0); err != nil {
		return -1, -1, false, err
	}
	if tp := tm.partition(p); tp != nil {
		if m := tp.currentManifest(); m != nil {
			if seg, ok := m.FindByTimestamp(ts); ok && seg.BaseOffset < p.LocalLogStartOffset() && seg.EndOffset > p.LogStartOffset() {
				ctx, cancel := context.WithTimeout(ctx, tm.cfg.ReadTimeout)
				defer cancel()
				off, bts, found, err := tm.reader.OffsetForTimestamp(ctx, m, ts)
				if err != nil {
					tm.logReadFailure(tp, m, -1, err)
					return off, bts, found, remoteFailure(err)
				}
				if found {
					return off, bts, found, nil
				}
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

// EarliestOffset answers ListOffsets -2 (earliest): the log start offset,
// remote tier included; errRemoteUnavailable while the partition's
// manifest is not loaded and its local log starts above 0 (see
// checkRemoteKnown).
func (v tieredView) EarliestOffset() (segments.Offset, error) {
	if err := v.tm.checkRemoteKnown(v.Partition, 0); err != nil {
		return -1, err
	}
	return v.LogStartOffset(), nil
}

func (v tieredView) OffsetForTimestamp(ts int64) (segments.Offset, int64, bool, error) {
	off, bts, found, err := v.tm.offsetForTimestamp(v.ctx, v.Partition, ts)
	if err != nil || !found || off >= v.HighWatermark() {
		return -1, -1, false, err
	}
	return off, bts, true, nil
}
