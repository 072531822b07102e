package replica

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/segments"
)

var quiet = slog.New(slog.DiscardHandler)

// makeBatch builds a magic-v2 batch of n uncompressed records with kmsg,
// the way a client would (baseOffset 0, CRC over attributes..end).
// pid -1 makes a non-idempotent batch.
func makeBatch(pid int64, epoch int16, seq int32, n int, tag string) []byte {
	ts := time.Now().UnixMilli()
	var recs []byte
	for i := 0; i < n; i++ {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(fmt.Sprintf("%s-%d", tag, i))}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // everything after the (1-byte, zero) length
		recs = r.AppendTo(recs)
	}
	if pid < 0 {
		epoch, seq = -1, -1
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(n - 1),
		FirstTimestamp:       ts,
		MaxTimestamp:         ts,
		ProducerID:           pid,
		ProducerEpoch:        epoch,
		FirstSequence:        seq,
		NumRecords:           int32(n),
		Records:              recs,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// fakeLog is an in-memory storage whose Sync can be held or failed. Its
// contents survive being reopened (like a disk whose page cache survived
// kill -9).
type fakeLog struct {
	mu      sync.Mutex
	batches []segments.BatchHeader
	start   segments.Offset
	end     segments.Offset
	epoch   segments.LeaderEpoch
	closed  bool

	syncs     int
	syncErr   error
	gate      chan struct{} // non-nil: Sync waits for a value or close
	entered   chan struct{} // non-nil: Sync signals entry (non-blocking)
	readUpTo  segments.Offset
	appendErr error

	synced     segments.Offset // end covered by the last successful Sync
	rollErr    error           // Roll's error
	rolls      int             // successful Roll calls
	recoverErr error           // Recover's error
	recovers   int             // successful Recover calls
}

func newFakeLog() *fakeLog { return &fakeLog{epoch: -1} }

func (f *fakeLog) reopen() *fakeLog {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &fakeLog{batches: append([]segments.BatchHeader(nil), f.batches...), start: f.start, end: f.end, epoch: f.epoch}
}

func (f *fakeLog) Append(payload []byte, headers []segments.BatchHeader, epoch segments.LeaderEpoch, now time.Time) (segments.AppendInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return segments.AppendInfo{}, segments.ErrClosed
	}
	if f.appendErr != nil {
		return segments.AppendInfo{}, f.appendErr
	}
	info := segments.AppendInfo{FirstOffset: f.end, LogAppendTime: -1}
	pos := 0
	for _, h := range headers {
		binary.BigEndian.PutUint64(payload[pos:], uint64(f.end))
		pos += 12 + int(h.Length)
		h.BaseOffset = f.end
		h.PartitionLeaderEpoch = epoch
		f.batches = append(f.batches, h)
		f.end = h.LastOffset() + 1
		info.MaxTimestamp = max(info.MaxTimestamp, h.MaxTimestamp)
	}
	if pos != len(payload) {
		panic("fakeLog: payload does not match headers")
	}
	info.LastOffset = f.end - 1
	return info, nil
}

func (f *fakeLog) Sync() (segments.Offset, error) {
	f.mu.Lock()
	f.syncs++
	end, err, gate, entered := f.end, f.syncErr, f.gate, f.entered
	f.mu.Unlock()
	if entered != nil {
		select {
		case entered <- struct{}{}:
		default:
		}
	}
	if gate != nil {
		<-gate
	}
	if err != nil {
		return 0, err
	}
	f.mu.Lock()
	f.synced = max(f.synced, end)
	f.mu.Unlock()
	return end, nil
}

func (f *fakeLog) Roll() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rollErr != nil {
		return f.rollErr
	}
	f.rolls++
	return nil
}

// Recover cuts the fake at the end of its last successful Sync, as
// segments.Log.Recover cuts a failed log at its durable offset.
func (f *fakeLog) Recover() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recoverErr != nil {
		return f.recoverErr
	}
	f.recovers++
	keep := f.batches[:0]
	for _, h := range f.batches {
		if h.LastOffset() < f.synced {
			keep = append(keep, h)
		}
	}
	f.batches, f.end = keep, f.synced
	return nil
}

func (f *fakeLog) OpenFiles() int { return 3 }

func (f *fakeLog) syncCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncs
}

func (f *fakeLog) StartOffset() segments.Offset { f.mu.Lock(); defer f.mu.Unlock(); return f.start }
func (f *fakeLog) EndOffset() segments.Offset   { f.mu.Lock(); defer f.mu.Unlock(); return f.end }
func (f *fakeLog) SizeBytes() int64             { return 0 }

func (f *fakeLog) Read(from, upTo segments.Offset, maxBytes int32, minOneBatch bool) (segments.ReadResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readUpTo = upTo
	if from < f.start || from > f.end {
		return segments.ReadResult{}, segments.ErrOffsetOutOfRange
	}
	var r segments.ReadResult
	for _, h := range f.batches {
		if h.LastOffset() >= from && h.BaseOffset < upTo {
			r.Bytes += int64(h.Length) + 12
		}
	}
	return r, nil
}

func (f *fakeLog) OffsetForTimestamp(ts int64) (segments.Offset, int64, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.batches {
		if h.MaxTimestamp >= ts {
			return h.BaseOffset, h.MaxTimestamp, true, nil
		}
	}
	return -1, -1, false, nil
}

func (f *fakeLog) MaxTimestamp() (int64, segments.Offset) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ts, off := int64(-1), segments.Offset(-1)
	for _, h := range f.batches {
		if h.MaxTimestamp >= ts {
			ts, off = h.MaxTimestamp, h.BaseOffset
		}
	}
	return ts, off
}

func (f *fakeLog) ScanBatches(from segments.Offset, fn func(h segments.BatchHeader) error) error {
	f.mu.Lock()
	hs := append([]segments.BatchHeader(nil), f.batches...)
	f.mu.Unlock()
	for _, h := range hs {
		if h.BaseOffset >= from {
			if err := fn(h); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *fakeLog) AssignEpoch(e segments.LeaderEpoch, _ segments.Offset) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch = e
	return nil
}

func (f *fakeLog) LatestEpoch() segments.LeaderEpoch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.epoch
}

func (f *fakeLog) EndOffsetForEpoch(e segments.LeaderEpoch) (segments.LeaderEpoch, segments.Offset) {
	return f.LatestEpoch(), f.EndOffset()
}

func (f *fakeLog) DeleteRecordsBefore(o segments.Offset) (segments.Offset, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.start = max(f.start, o)
	return f.start, nil
}

func (f *fakeLog) ApplyRetention(time.Time) (int, error)    { return 0, nil }
func (f *fakeLog) SetConfig(segments.Config)                {}
func (f *fakeLog) CheckClean(time.Time) segments.CleanCheck { return segments.CleanCheck{} }
func (f *fakeLog) Clean(context.Context, segments.CleanOptions) (segments.CleanStats, error) {
	return segments.CleanStats{}, nil
}
func (f *fakeLog) Close() error  { f.mu.Lock(); defer f.mu.Unlock(); f.closed = true; return nil }
func (f *fakeLog) Delete() error { return f.Close() }

// openFake opens a partition on f with snapshots in dir.
func openFake(t *testing.T, dir string, f *fakeLog, c *Committer) *Partition {
	t.Helper()
	p, err := open(Options{Dir: dir, Topic: "t", Partition: 0, Committer: c, Logger: quiet,
		Log: segments.Config{MaxMessageBytes: 1 << 20}}, f, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustAppend(t *testing.T, p *Partition, payload []byte) AppendResult {
	t.Helper()
	res, err := p.Append(payload)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res
}

func durable(t *testing.T, res AppendResult) {
	t.Helper()
	if err := <-res.Durable; err != nil {
		t.Fatalf("durable: %v", err)
	}
}

// The fake has no closed segments and no remote tier.
func (f *fakeLog) ClosedSegments(segments.Offset) ([]segments.ClosedSegment, error) { return nil, nil }
func (f *fakeLog) SetUploadedTo(segments.Offset) error                              { return nil }
func (f *fakeLog) UploadedTo() segments.Offset                                      { return 0 }
func (f *fakeLog) UploadPending() bool                                              { return false }
func (f *fakeLog) StartAt(segments.Offset) error                                    { return segments.ErrClosed } // unsupported by the fake
