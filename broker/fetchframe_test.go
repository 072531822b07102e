package broker

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/segments"
	"github.com/stratalog/strata/wire"
	"github.com/stratalog/strata/wire/wiretest"
)

// segmentFile writes content to a temp file standing in for a segment and
// returns it open for reading, its position moved to an odd place so that a
// test notices if anything used (or moved) the shared position.
func segmentFile(t *testing.T, name string, content []byte) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Seek(3, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	return f
}

func filePos(t *testing.T, f *os.File) int64 {
	t.Helper()
	pos, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// realBatches returns n encoded magic-v2 record batches, back to back.
func realBatches(n int, baseOffset int64) []byte {
	var out []byte
	for i := 0; i < n; i++ {
		rec := kmsg.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: bytes.Repeat([]byte{byte(i)}, 40+i)}
		recBytes := rec.AppendTo(nil)
		rb := kmsg.RecordBatch{
			FirstOffset:          baseOffset + int64(i),
			PartitionLeaderEpoch: 3,
			Magic:                2,
			LastOffsetDelta:      0,
			FirstTimestamp:       1700000000000,
			MaxTimestamp:         1700000000000,
			ProducerID:           -1,
			ProducerEpoch:        -1,
			FirstSequence:        -1,
			NumRecords:           1,
			Records:              recBytes,
		}
		enc := rb.AppendTo(nil)
		// Length counts the bytes after the Length field itself.
		rb.Length = int32(len(enc) - 12)
		out = append(out, rb.AppendTo(nil)...)
	}
	return out
}

type fetchFixture struct {
	resp    *kmsg.FetchResponse // RecordBatches as the handler gives them (mostly nil)
	records [][][]segments.FileChunk
	want    [][][]byte // expected RecordBatches per partition
	files   []*os.File
}

// newFetchFixture builds a response with several topics and partitions:
// data from one chunk, several chunks across two files, an in-memory prefix,
// empty partitions, an error partition, aborted transactions (nil, empty and
// filled), every partition tag, unknown tags at each level and response-level
// brokers. bigChunk adds a multi-megabyte chunk to force partial sendfile
// writes on a loopback socket.
func newFetchFixture(t *testing.T, bigChunk bool) *fetchFixture {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	seg1 := append(realBatches(5, 100), make([]byte, 17)...)
	seg2 := make([]byte, 10000)
	for i := range seg2 {
		seg2[i] = byte(rng.UintN(256))
	}
	if bigChunk {
		big := make([]byte, 6<<20)
		for i := range big {
			big[i] = byte(rng.UintN(256))
		}
		seg2 = append(seg2, big...)
	}
	f1 := segmentFile(t, "00000000000000000100.log", seg1)
	f2 := segmentFile(t, "00000000000000000000.log", seg2)
	chunk := func(f *os.File, content []byte, pos, size int64) (segments.FileChunk, []byte) {
		return segments.FileChunk{File: f, Position: pos, Size: size}, content[pos : pos+size]
	}

	fx := &fetchFixture{files: []*os.File{f1, f2}}
	rack := "rack-a"
	resp := &kmsg.FetchResponse{ThrottleMillis: 7, ErrorCode: 0, SessionID: 123456}
	resp.UnknownTags.Set(9, []byte("resp-tag"))
	resp.Brokers = []kmsg.FetchResponseBroker{{NodeID: 1, Host: "127.0.0.1", Port: 9092, Rack: &rack}, {NodeID: 2, Host: "h2", Port: 1}}

	// Topic 0: chunked data, an empty partition, an error partition.
	t0 := kmsg.FetchResponseTopic{Topic: "orders", TopicID: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}
	p00 := kmsg.NewFetchResponseTopicPartition()
	p00.Partition, p00.HighWatermark, p00.LastStableOffset, p00.LogStartOffset = 0, 105, 105, 100
	p00.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 42, FirstOffset: 101}, {ProducerID: 43, FirstOffset: 103}}
	p00.AbortedTransactions[1].UnknownTags.Set(5, []byte{0xff})
	half := int64(len(seg1) / 2)
	c1, b1 := chunk(f1, seg1, 0, half)
	c2, b2 := chunk(f1, seg1, half, int64(len(seg1))-half)
	p01 := kmsg.NewFetchResponseTopicPartition() // empty, AbortedTransactions non-nil but empty
	p01.Partition, p01.HighWatermark, p01.LastStableOffset, p01.LogStartOffset = 1, 0, 0, 0
	p01.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
	p02 := kmsg.NewFetchResponseTopicPartition() // error
	p02.Partition, p02.ErrorCode = 2, 1          // OFFSET_OUT_OF_RANGE
	p02.CurrentLeader = kmsg.FetchResponseTopicPartitionCurrentLeader{LeaderID: 1, LeaderEpoch: 4}
	t0.Partitions = []kmsg.FetchResponseTopicPartition{p00, p01, p02}
	t0.UnknownTags.Set(3, []byte("topic-tag"))

	// Topic 1: chunks from two files, an in-memory prefix, all tags.
	t1 := kmsg.FetchResponseTopic{Topic: "events", TopicID: [16]byte{0xaa, 0xbb}}
	p10 := kmsg.NewFetchResponseTopicPartition()
	p10.Partition, p10.HighWatermark, p10.LastStableOffset, p10.LogStartOffset = 7, 1<<40, 1<<40-5, 12
	p10.PreferredReadReplica = 2
	p10.DivergingEpoch = kmsg.FetchResponseTopicPartitionDivergingEpoch{Epoch: 2, EndOffset: 99}
	p10.SnapshotID = kmsg.FetchResponseTopicPartitionSnapshotID{EndOffset: 50, Epoch: 1}
	p10.SnapshotID.UnknownTags.Set(1, []byte("snap"))
	p10.UnknownTags.Set(7, []byte("part-tag"))
	prefix := realBatches(1, 5)
	p10.RecordBatches = prefix
	c3, b3 := chunk(f2, seg2, 100, 5000)
	c4, b4 := chunk(f1, seg1, 0, int64(len(seg1)))
	c5 := segments.FileChunk{File: f2, Position: 0, Size: 0} // contributes nothing
	p11 := kmsg.NewFetchResponseTopicPartition()
	p11.Partition, p11.HighWatermark = 8, 3
	t1.Partitions = []kmsg.FetchResponseTopicPartition{p10, p11}

	// Topic 2: no partitions at all.
	t2 := kmsg.FetchResponseTopic{Topic: "quiet", TopicID: [16]byte{0x10}}
	// Topic 3: one partition, no records entry at all (records shorter).
	t3 := kmsg.FetchResponseTopic{Topic: "tail", TopicID: [16]byte{0x20}}
	p30 := kmsg.NewFetchResponseTopicPartition()
	p30.Partition, p30.HighWatermark = 0, 0
	t3.Partitions = []kmsg.FetchResponseTopicPartition{p30}

	resp.Topics = []kmsg.FetchResponseTopic{t0, t1, t2, t3}
	fx.records = [][][]segments.FileChunk{
		{{c1, c2}, nil, {}},
		{{c3, c5, c4}, nil},
		{},
	}
	fx.want = [][][]byte{
		{cat(b1, b2), {}, {}},
		{cat(prefix, b3, b4), {}},
		{},
		{{}},
	}
	if bigChunk {
		cb, bb := chunk(f2, seg2, 10000, int64(len(seg2))-10000)
		fx.records[1][1] = []segments.FileChunk{cb}
		fx.want[1][1] = bb
	}
	fx.resp = resp
	return fx
}

func cat(parts ...[]byte) []byte {
	out := []byte{}
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// kmsgEncoding is the reference: kmsg's encoding of the fixture's response
// with every partition's RecordBatches set to its full record bytes.
func (fx *fetchFixture) kmsgEncoding(version int16) []byte {
	ref := *fx.resp
	ref.Topics = make([]kmsg.FetchResponseTopic, len(fx.resp.Topics))
	for ti, t := range fx.resp.Topics {
		ref.Topics[ti] = t
		ref.Topics[ti].Partitions = append([]kmsg.FetchResponseTopicPartition(nil), t.Partitions...)
		for pi := range t.Partitions {
			ref.Topics[ti].Partitions[pi].RecordBatches = fx.want[ti][pi]
		}
	}
	ref.SetVersion(version)
	return ref.AppendTo(nil)
}

// checkDecodes decodes body as a FetchResponse of version and compares the
// record bytes per partition.
func (fx *fetchFixture) checkDecodes(t *testing.T, version int16, body []byte) {
	t.Helper()
	var got kmsg.FetchResponse
	got.SetVersion(version)
	if err := got.ReadFrom(body); err != nil {
		t.Fatalf("v%d: kmsg cannot decode the framed response: %v", version, err)
	}
	if len(got.Topics) != len(fx.resp.Topics) {
		t.Fatalf("v%d: %d topics decoded, want %d", version, len(got.Topics), len(fx.resp.Topics))
	}
	for ti := range got.Topics {
		for pi := range got.Topics[ti].Partitions {
			if !bytes.Equal(got.Topics[ti].Partitions[pi].RecordBatches, fx.want[ti][pi]) {
				t.Fatalf("v%d: topic %d partition %d: records differ", version, ti, pi)
			}
		}
	}
}

func TestFramedFetchMatchesKmsgFakeWriter(t *testing.T) {
	fx := newFetchFixture(t, false)
	for v := int16(4); v <= 16; v++ {
		released := 0
		f := newFramedFetch(v, fx.resp, fx.records, func() { released++ })
		var out bytes.Buffer
		bw := bufio.NewWriterSize(&out, 512) // small: runs and chunks cross buffer boundaries
		if err := f.WriteBody(bw, nil); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		want := fx.kmsgEncoding(v)
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("v%d: framed body differs from kmsg's encoding (got %d bytes, want %d; first difference at %d)",
				v, out.Len(), len(want), firstDiff(out.Bytes(), want))
		}
		if f.Len() != int64(len(want)) {
			t.Fatalf("v%d: Len() = %d, want %d", v, f.Len(), len(want))
		}
		fx.checkDecodes(t, v, out.Bytes())
		f.Release()
		f.Release()
		if released != 1 {
			t.Fatalf("v%d: release called %d times, want 1", v, released)
		}
	}
	for _, file := range fx.files {
		if pos := filePos(t, file); pos != 3 {
			t.Fatalf("file position moved to %d", pos)
		}
	}
}

func TestFramedFetchMatchesKmsgOverTCP(t *testing.T) {
	fx := newFetchFixture(t, true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for v := int16(4); v <= 16; v++ {
		f := newFramedFetch(v, fx.resp, fx.records, nil)
		errc := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			raw, err := c.(*net.TCPConn).SyscallConn()
			if err != nil {
				errc <- err
				return
			}
			bw := bufio.NewWriter(c)
			if err := f.WriteBody(bw, raw); err != nil {
				errc <- err
				return
			}
			errc <- bw.Flush()
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("v%d: write: %v", v, err)
		}
		want := fx.kmsgEncoding(v)
		if !bytes.Equal(got, want) {
			t.Fatalf("v%d: bytes received differ from kmsg's encoding (got %d bytes, want %d; first difference at %d)",
				v, len(got), len(want), firstDiff(got, want))
		}
		fx.checkDecodes(t, v, got)
	}
	for _, file := range fx.files {
		if pos := filePos(t, file); pos != 3 {
			t.Fatalf("file position moved to %d", pos)
		}
	}
}

// TestFramedFetchShortFile: a chunk running past the end of its file (a
// truncated segment) is an error, never a silently short frame.
func TestFramedFetchShortFile(t *testing.T) {
	f := segmentFile(t, "short.log", make([]byte, 100))
	records := [][][]segments.FileChunk{{{{File: f, Position: 50, Size: 100}}}}
	resp := &kmsg.FetchResponse{Topics: []kmsg.FetchResponseTopic{{Topic: "t", Partitions: []kmsg.FetchResponseTopicPartition{kmsg.NewFetchResponseTopicPartition()}}}}
	fr := newFramedFetch(11, resp, records, nil)
	if err := fr.WriteBody(bufio.NewWriter(io.Discard), nil); err != errShortChunk {
		t.Fatalf("fake writer: got %v, want errShortChunk", err)
	}

	a, b := tcpPair(t)
	raw, err := a.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, b)
	if err := fr.WriteBody(bufio.NewWriter(a), raw); err != errShortChunk {
		t.Fatalf("sendfile: got %v, want errShortChunk", err)
	}
}

func TestNewFramedFetchRejectsOldVersions(t *testing.T) {
	for _, v := range []int16{-1, 0, 3, 17} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("version %d: no panic", v)
				}
			}()
			newFramedFetch(v, &kmsg.FetchResponse{}, nil, nil)
		}()
	}
}

func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { c1.Close(); r.c.Close() })
	return r.c, c1
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// BenchmarkFramedFetchWrite writes an 8-partition Fetch v16 body of 1 MiB
// per partition over loopback TCP, with sendfile and with the pread copy
// fallback, for comparison (go test -bench FramedFetchWrite).
func BenchmarkFramedFetchWrite(b *testing.B) {
	const parts, chunk = 8, 1 << 20
	path := filepath.Join(b.TempDir(), "00000000000000000000.log")
	if err := os.WriteFile(path, bytes.Repeat([]byte{0xab}, parts*chunk), 0o644); err != nil {
		b.Fatal(err)
	}
	file, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer file.Close()
	resp := &kmsg.FetchResponse{}
	records := [][][]segments.FileChunk{make([][]segments.FileChunk, parts)}
	topic := kmsg.FetchResponseTopic{Topic: "bench"}
	for p := range parts {
		part := kmsg.NewFetchResponseTopicPartition()
		part.Partition = int32(p)
		topic.Partitions = append(topic.Partitions, part)
		records[0][p] = []segments.FileChunk{{File: file, Position: int64(p * chunk), Size: chunk}}
	}
	resp.Topics = []kmsg.FetchResponseTopic{topic}

	for _, mode := range []string{"sendfile", "pread"} {
		b.Run(mode, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				io.Copy(io.Discard, c)
				c.Close()
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			raw, _ := c.(*net.TCPConn).SyscallConn()
			if mode == "pread" {
				raw = nil
			}
			bw := bufio.NewWriterSize(c, 64<<10) // the size of a wire connection's write buffer
			b.SetBytes(parts * chunk)
			b.ResetTimer()
			for range b.N {
				f := newFramedFetch(16, resp, records, nil)
				if err := f.WriteBody(bw, raw); err != nil {
					b.Fatal(err)
				}
				if err := bw.Flush(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFramedFetchThroughConnection serves a Fetch whose records come from a
// segment file through a wire server's whole connection writer (sendfile on
// TCP), complete and deferred, at every version.
func TestFramedFetchThroughConnection(t *testing.T) {
	fx := newFetchFixture(t, false)
	var released atomic.Int32
	fetch := wire.API{Key: kmsg.Fetch.Int16(), MinVersion: 4, MaxVersion: 16, Handle: func(r *wire.Request) (*wire.Reply, error) {
		v := r.Header.APIVersion
		if v%2 == 0 { // deferred, like a long poll
			done := make(chan struct{})
			rep := &wire.Reply{Done: done}
			go func() {
				rep.Framed = newFramedFetch(v, fx.resp, fx.records, func() { released.Add(1) })
				close(done)
			}()
			return rep, nil
		}
		return &wire.Reply{Framed: newFramedFetch(v, fx.resp, fx.records, func() { released.Add(1) })}, nil
	}}
	srv, err := wire.NewServer(wire.Config{
		Name:                     "broker",
		SocketRequestMaxBytes:    1 << 20,
		MaxInFlightPerConnection: 8,
		Logger:                   slog.New(slog.DiscardHandler),
	}, []wire.API{fetch})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for v := int16(4); v <= 16; v++ {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(v)
		wiretest.Send(t, c, req, int32(v))
	}
	for v := int16(4); v <= 16; v++ {
		body := wiretest.ReadResponseBody(t, c, int32(v), v >= 12)
		if want := fx.kmsgEncoding(v); !bytes.Equal(body, want) {
			t.Fatalf("v%d: body differs from kmsg's encoding (first difference at %d)", v, firstDiff(body, want))
		}
		fx.checkDecodes(t, v, body)
	}
	if keys := wiretest.APIVersions(t, c, 3, 99).ApiKeys; len(keys) != 2 { // the connection is still in sync
		t.Fatalf("ApiVersions lists %d APIs, want Fetch and ApiVersions", len(keys))
	}
	if r := released.Load(); r != 13 {
		t.Fatalf("%d framed responses released, want 13", r)
	}
}
