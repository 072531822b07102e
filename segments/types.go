package segments

// The package's shared types: offsets, epochs, configuration, errors and
// the read result handed to the sendfile path.

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Offset is a Kafka record offset within one partition.
type Offset int64

// LeaderEpoch is a partition leader epoch; -1 means "none".
type LeaderEpoch int32

// TimestampType is a topic's message.timestamp.type.
type TimestampType int8

const (
	CreateTime    TimestampType = 0
	LogAppendTime TimestampType = 1
)

// Sentinel errors callers branch on; the broker maps them to Kafka codes.
var (
	ErrOffsetOutOfRange = errors.New("segments: offset out of range")
	ErrClosed           = errors.New("segments: log closed")
	ErrRecordTooLarge   = errors.New("segments: batch larger than max.message.bytes")
	ErrInvalidTimestamp = errors.New("segments: timestamp out of range")
	ErrInvalidRecord    = errors.New("segments: invalid record batch")
	// ErrNotWritten: Append failed before anything reached the log (a
	// write that failed was cut off again). The log is unchanged and
	// still takes writes; a retry may succeed. The cause is wrapped too.
	ErrNotWritten = errors.New("segments: nothing written")
	// ErrRollFailed (which wraps ErrNotWritten): the files of a new
	// segment could not be created (too many open files, disk full,
	// permissions), so nothing was written. The next Append, or Roll,
	// tries again. The cause is wrapped too.
	ErrRollFailed = fmt.Errorf("%w: cannot roll to a new segment", ErrNotWritten)
)

// CorruptError reports a checksum or format failure in stored or received
// bytes. Corrupt data is never served.
type CorruptError struct {
	Path     string // file, or "" for bytes received on the wire
	Position int64  // byte position in Path (or in the request payload)
	Offset   Offset // batch base offset when known, else -1
	Reason   string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("segments: corrupt batch in %q at position %d (offset %d): %s", e.Path, e.Position, e.Offset, e.Reason)
}

// Config is the per-partition log configuration (a subset of the topic's).
type Config struct {
	SegmentBytes       int64         // segment.bytes
	SegmentRollAge     time.Duration // segment.ms
	IndexIntervalBytes int32         // index.interval.bytes
	SegmentIndexBytes  int32         // segment.index.bytes
	RetentionAge       time.Duration // retention.ms; <0 means unlimited
	RetentionBytes     int64         // retention.bytes; <0 means unlimited
	MaxMessageBytes    int32         // max.message.bytes
	TimestampType      TimestampType // message.timestamp.type
	// With CreateTime, a batch whose first timestamp is more than
	// TimestampBeforeMax before the append time, or whose max timestamp is
	// more than TimestampAfterMax after it, is refused (ErrInvalidTimestamp).
	TimestampBeforeMax time.Duration // message.timestamp.before.max.ms
	TimestampAfterMax  time.Duration // message.timestamp.after.max.ms

	// Compaction (see Clean). Compact is set when cleanup.policy includes
	// compact; retention by age and size is the caller's to switch off
	// when it does not include delete (RetentionAge/RetentionBytes < 0).
	Compact           bool
	MinCleanableRatio float64       // min.cleanable.dirty.ratio
	MinCompactionLag  time.Duration // min.compaction.lag.ms
	MaxCompactionLag  time.Duration // max.compaction.lag.ms; <= 0 means unlimited
	DeleteRetention   time.Duration // delete.retention.ms

	// Tiered storage. With RemoteStorage, retention also deletes local
	// segments already in the remote tier (SetUploadedTo) beyond
	// LocalRetentionAge or LocalRetentionBytes (< 0: no local limit; the
	// caller resolves Kafka's -2, "same as the total", before).
	RemoteStorage       bool
	LocalRetentionAge   time.Duration // local.retention.ms
	LocalRetentionBytes int64         // local.retention.bytes
}

// FileChunk is a byte range of an open segment file, to be sent with
// sendfile at an explicit offset. The File stays open until the owning
// ReadResult is released.
type FileChunk struct {
	File     *os.File
	Position int64
	Size     int64
}

// ReadResult is a run of whole record batches from one segment.
type ReadResult struct {
	Chunks []FileChunk
	Bytes  int64 // sum of chunk sizes
	// release drops the reference that keeps the segment files open.
	release func()
}

// Release allows the segment files to be closed (after retention or
// deletion). Safe to call more than once and on a zero ReadResult.
func (r *ReadResult) Release() {
	if r.release != nil {
		r.release()
		r.release = nil
	}
}

// NewReadResult builds a ReadResult over chunks held open by the caller
// (the tiering chunk cache); release runs once, at the first Release.
func NewReadResult(chunks []FileChunk, release func()) ReadResult {
	var n int64
	for _, c := range chunks {
		n += c.Size
	}
	var once sync.Once
	return ReadResult{Chunks: chunks, Bytes: n, release: func() { once.Do(release) }}
}
