package broker

// Zero-copy Fetch framing: the one hand-written codec in the broker.
//
// A Fetch response is mostly small fields around large record batches. To
// send the batches straight from segment files with sendfile, the response
// body is split into parts: byte runs (everything that is not record data,
// encoded here by hand with kbin primitives) and file chunks (record data,
// sent with sendfile at an explicit file offset). The concatenation of the
// parts is, byte for byte, what kmsg.FetchResponse.AppendTo produces for the
// same response with every partition's RecordBatches set to the
// concatenated chunk bytes; fetchframe_test.go checks that for every version
// we serve (4–16), flexible and not.
//
// Records rule (the contract with the Fetch handler):
//   - The record bytes of partition p of topic t are
//     resp.Topics[t].Partitions[p].RecordBatches (normally nil; if a handler
//     has bytes in memory it may put them there) followed by the chunks
//     records[t][p], in order. records may be shorter than resp.Topics (or a
//     topic's slice shorter than its partitions): missing entries are "no
//     chunks".
//   - Records are never encoded as null: a partition with no record bytes
//     (an empty or erroring partition) is sent as a present, zero-length
//     records field — length 0 (non-flexible) or uvarint 1 (flexible), which
//     is what kmsg encodes for RecordBatches = []byte{} and what Kafka's own
//     broker sends (MemoryRecords.EMPTY). Some clients (kafka-python) do not
//     accept null records.
//   - A chunk with Size 0 contributes nothing; a negative Size panics (a bug).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/segments"
	"github.com/stratalog/strata/wire"
)

// framedResponse is a response body made of byte runs and file chunks: a
// wire.Framed. It is built by the handler (newFramedFetch) and written once
// by the connection's writer goroutine; it is not safe for concurrent use.
//
// Ownership: the chunks' files are kept open by the caller's ReadResults;
// release (given to newFramedFetch) is called exactly once, by Release,
// after the body has been written or when the connection abandons it.
type framedResponse struct {
	key      int16 // API key the body answers (Fetch)
	version  int16
	flexible bool // the version is flexible: response header v1 (a tag byte after the correlation id)

	buf   []byte      // every non-record byte of the body, in order
	parts []framePart // the body: buf runs and file chunks interleaved
	size  int64       // total body length in bytes

	release  func()
	released atomic.Bool
}

var _ wire.Framed = (*framedResponse)(nil)

// framePart is either buf[start:end] (file == nil) or size bytes of file at
// position pos.
type framePart struct {
	start, end int
	file       *os.File
	pos, size  int64
}

// newFramedFetch builds the Fetch response body for version from resp and
// the record file chunks records[t][p] for resp.Topics[t].Partitions[p];
// see the records rule at the top of this file. resp is only read, and not
// retained: the caller may reuse it once newFramedFetch returns. release
// (may be nil) is called once the response has been written or abandoned.
//
// It panics if version is outside 4–16 (the versions apis.go advertises for
// Fetch; older ones cannot carry magic v2 batches) or a chunk size is
// negative: both are programmer errors.
func newFramedFetch(version int16, resp *kmsg.FetchResponse, records [][][]segments.FileChunk, release func()) *framedResponse {
	if version < 4 || version > 16 {
		panic(fmt.Sprintf("newFramedFetch: unsupported Fetch version %d", version))
	}
	f := &framedResponse{
		key:      kmsg.Fetch.Int16(),
		version:  version,
		flexible: version >= 12,
		release:  release,
	}
	flex := f.flexible
	b := make([]byte, 0, 256)

	if version >= 1 {
		b = kbin.AppendInt32(b, resp.ThrottleMillis)
	}
	if version >= 7 {
		b = kbin.AppendInt16(b, resp.ErrorCode)
		b = kbin.AppendInt32(b, resp.SessionID)
	}
	b = appendArrayLen(b, len(resp.Topics), flex)
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		if version <= 12 {
			if flex {
				b = kbin.AppendCompactString(b, t.Topic)
			} else {
				b = kbin.AppendString(b, t.Topic)
			}
		} else {
			b = kbin.AppendUuid(b, t.TopicID)
		}
		b = appendArrayLen(b, len(t.Partitions), flex)
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			b = kbin.AppendInt32(b, p.Partition)
			b = kbin.AppendInt16(b, p.ErrorCode)
			b = kbin.AppendInt64(b, p.HighWatermark)
			b = kbin.AppendInt64(b, p.LastStableOffset) // v4+
			if version >= 5 {
				b = kbin.AppendInt64(b, p.LogStartOffset)
			}
			at := p.AbortedTransactions // v4+, nullable
			if flex {
				b = kbin.AppendCompactNullableArrayLen(b, len(at), at == nil)
			} else {
				b = kbin.AppendNullableArrayLen(b, len(at), at == nil)
			}
			for ai := range at {
				a := &at[ai]
				b = kbin.AppendInt64(b, a.ProducerID)
				b = kbin.AppendInt64(b, a.FirstOffset)
				if flex {
					b = appendTags(b, 0, &a.UnknownTags)
				}
			}
			if version >= 11 {
				b = kbin.AppendInt32(b, p.PreferredReadReplica)
			}

			// The records field: length, then in-memory bytes, then chunks.
			var chunks []segments.FileChunk
			if ti < len(records) && pi < len(records[ti]) {
				chunks = records[ti][pi]
			}
			n := int64(len(p.RecordBatches))
			for _, c := range chunks {
				if c.Size < 0 {
					panic(fmt.Sprintf("newFramedFetch: negative chunk size %d", c.Size))
				}
				n += c.Size
			}
			if n > math.MaxInt32-1 {
				panic(fmt.Sprintf("newFramedFetch: %d record bytes in one partition", n))
			}
			if flex {
				b = kbin.AppendUvarint(b, uint32(n)+1)
			} else {
				b = kbin.AppendInt32(b, int32(n))
			}
			b = append(b, p.RecordBatches...)
			for _, c := range chunks {
				if c.Size == 0 {
					continue
				}
				b = f.addChunk(b, c)
			}

			if flex {
				b = appendPartitionTags(b, p)
			}
		}
		if flex {
			b = appendTags(b, 0, &t.UnknownTags)
		}
	}
	if flex {
		known := 0
		if len(resp.Brokers) > 0 {
			known = 1
		}
		b = kbin.AppendUvarint(b, uint32(known+resp.UnknownTags.Len()))
		if known == 1 {
			b = kbin.AppendUvarint(b, 0) // tag 0: Brokers (NodeEndpoints)
			b = appendSized(b, func(d []byte) []byte {
				d = kbin.AppendCompactArrayLen(d, len(resp.Brokers))
				for i := range resp.Brokers {
					br := &resp.Brokers[i]
					d = kbin.AppendInt32(d, br.NodeID)
					d = kbin.AppendCompactString(d, br.Host)
					d = kbin.AppendInt32(d, br.Port)
					d = kbin.AppendCompactNullableString(d, br.Rack)
					d = appendTags(d, 0, &br.UnknownTags)
				}
				return d
			})
		}
		b = resp.UnknownTags.AppendEach(b)
	}

	f.closeRun(b)
	f.buf = b
	if f.size > math.MaxInt32-8 { // the frame size (body + header) is an int32
		panic(fmt.Sprintf("newFramedFetch: %d-byte response", f.size))
	}
	return f
}

// addChunk ends the current byte run at len(b) and appends the chunk.
func (f *framedResponse) addChunk(b []byte, c segments.FileChunk) []byte {
	f.closeRun(b)
	f.parts = append(f.parts, framePart{start: len(b), end: len(b), file: c.File, pos: c.Position, size: c.Size})
	f.size += c.Size
	return b
}

// closeRun records buf[runStart:len(b)] as a part if it is not empty; a run
// starts where the previous part ended.
func (f *framedResponse) closeRun(b []byte) {
	start := 0
	if k := len(f.parts); k > 0 {
		start = f.parts[k-1].end
	}
	if len(b) > start {
		f.parts = append(f.parts, framePart{start: start, end: len(b)})
		f.size += int64(len(b) - start)
	}
}

func appendArrayLen(b []byte, n int, flex bool) []byte {
	if flex {
		return kbin.AppendCompactArrayLen(b, n)
	}
	return kbin.AppendArrayLen(b, n)
}

// appendTags appends a tag section holding `known` already-counted tags
// (none here) and the unknown tags: the count, then each tag. Known tags are
// written by the callers that have them (appendPartitionTags).
func appendTags(b []byte, known int, t *kmsg.Tags) []byte {
	b = kbin.AppendUvarint(b, uint32(known+t.Len()))
	return t.AppendEach(b)
}

// appendSized appends the uvarint length of what fill appends, then it.
func appendSized(b []byte, fill func([]byte) []byte) []byte {
	var scratch [64]byte
	body := fill(scratch[:0])
	b = kbin.AppendUvarint(b, uint32(len(body)))
	return append(b, body...)
}

// appendPartitionTags writes a flexible partition's tag section the way
// kmsg does: the known tags that differ from their defaults (0
// DivergingEpoch, 1 CurrentLeader, 2 SnapshotID — each struct's default is
// all -1 with no unknown tags), in tag order, then the unknown tags.
func appendPartitionTags(b []byte, p *kmsg.FetchResponseTopicPartition) []byte {
	de, cl, sn := &p.DivergingEpoch, &p.CurrentLeader, &p.SnapshotID
	hasDE := de.Epoch != -1 || de.EndOffset != -1 || de.UnknownTags.Len() > 0
	hasCL := cl.LeaderID != -1 || cl.LeaderEpoch != -1 || cl.UnknownTags.Len() > 0
	hasSN := sn.EndOffset != -1 || sn.Epoch != -1 || sn.UnknownTags.Len() > 0
	known := 0
	for _, h := range [...]bool{hasDE, hasCL, hasSN} {
		if h {
			known++
		}
	}
	b = kbin.AppendUvarint(b, uint32(known+p.UnknownTags.Len()))
	if hasDE {
		b = kbin.AppendUvarint(b, 0)
		b = appendSized(b, func(d []byte) []byte {
			d = kbin.AppendInt32(d, de.Epoch)
			d = kbin.AppendInt64(d, de.EndOffset)
			return appendTags(d, 0, &de.UnknownTags)
		})
	}
	if hasCL {
		b = kbin.AppendUvarint(b, 1)
		b = appendSized(b, func(d []byte) []byte {
			d = kbin.AppendInt32(d, cl.LeaderID)
			d = kbin.AppendInt32(d, cl.LeaderEpoch)
			return appendTags(d, 0, &cl.UnknownTags)
		})
	}
	if hasSN {
		b = kbin.AppendUvarint(b, 2)
		b = appendSized(b, func(d []byte) []byte {
			d = kbin.AppendInt64(d, sn.EndOffset)
			d = kbin.AppendInt32(d, sn.Epoch)
			return appendTags(d, 0, &sn.UnknownTags)
		})
	}
	return p.UnknownTags.AppendEach(b)
}

// Key is the API key the body answers (Fetch).
func (f *framedResponse) Key() int16 { return f.key }

// Flexible reports whether the body's version is flexible.
func (f *framedResponse) Flexible() bool { return f.flexible }

// Len is the body length in bytes (without the size prefix and header).
func (f *framedResponse) Len() int64 { return f.size }

// Release calls release once; safe to call more than once.
func (f *framedResponse) Release() {
	if f.released.Swap(true) {
		return
	}
	if f.release != nil {
		f.release()
	}
}

// errShortChunk reports a file chunk that ended before its size: the file
// was truncated under us. The frame is then unusable and the connection
// must be closed.
var errShortChunk = errors.New("broker: segment file shorter than fetch chunk")

// sendfileFunc, when set (sendfile_linux.go), copies n bytes of file from
// position off to the socket behind sock, without touching the file's
// position. It returns the number of bytes written.
var sendfileFunc func(sock syscall.RawConn, file *os.File, off, n int64) (int64, error)

// WriteBody writes the body to bw. Byte runs go through bw; before each
// file chunk bw is flushed and the chunk is sent with sendfile on sock when
// both sock and sendfileFunc are available, else copied with pread (ReadAt)
// through bw. It does not flush bw at the end. It returns the first error;
// the connection must then be closed, as the frame is incomplete.
func (f *framedResponse) WriteBody(bw *bufio.Writer, sock syscall.RawConn) error {
	for i := range f.parts {
		p := &f.parts[i]
		if p.file == nil {
			if _, err := bw.Write(f.buf[p.start:p.end]); err != nil {
				return err
			}
			continue
		}
		if sock != nil && sendfileFunc != nil {
			if err := bw.Flush(); err != nil {
				return err
			}
			n, err := sendfileFunc(sock, p.file, p.pos, p.size)
			if err != nil {
				return err
			}
			if n != p.size {
				return errShortChunk
			}
			continue
		}
		if err := copyChunk(bw, p.file, p.pos, p.size); err != nil {
			return err
		}
	}
	return nil
}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// copyChunk copies size bytes of file at pos to w with ReadAt (pread: no
// shared file position).
func copyChunk(w io.Writer, file *os.File, pos, size int64) error {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	// writerOnly hides w's ReadFrom so that io.CopyBuffer really preads
	// into our buffer instead of handing the reader to something that might
	// use the file's shared position.
	n, err := io.CopyBuffer(writerOnly{w}, io.NewSectionReader(file, pos, size), *bp)
	if err != nil {
		return err
	}
	if n != size {
		return errShortChunk
	}
	return nil
}

type writerOnly struct{ io.Writer }
