package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/wire/wiretest"
)

var frameOf = wiretest.Frame

func TestDecodeRequestHeaders(t *testing.T) {
	clientID := wiretest.ClientID
	table := testTable(t)
	for _, a := range table {
		for v := a.MinVersion; v <= a.MaxVersion; v++ {
			req := kmsg.RequestForKey(a.Key)
			req.SetVersion(v)
			frame := frameOf(req, 42)
			d, err := decodeRequest(frame[4:], table, nil)
			if err != nil {
				t.Fatalf("%s v%d: %v", kmsg.NameForKey(a.Key), v, err)
			}
			h := d.header
			if h.APIKey != a.Key || h.APIVersion != v || h.CorrelationID != 42 || h.ClientID == nil || *h.ClientID != clientID {
				t.Fatalf("%s v%d: header %+v", kmsg.NameForKey(a.Key), v, h)
			}
			if d.body.Key() != a.Key || d.body.GetVersion() != v || d.api != table[a.Key] {
				t.Fatalf("%s v%d: body %T v%d", kmsg.NameForKey(a.Key), v, d.body, d.body.GetVersion())
			}
		}
	}
}

func TestDecodeRequestFlexibleHeaderTags(t *testing.T) {
	// Metadata v12 with a null client id and two unknown header tags.
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	topic := "orders"
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	frame := []byte{0, 3, 0, 12, 0, 0, 0, 9, 0xff, 0xff, 2, 1, 2, 'h', 'i', 5, 0}
	frame = req.AppendTo(frame)
	d, err := decodeRequest(frame, testTable(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.header.ClientID != nil || d.header.CorrelationID != 9 {
		t.Fatalf("header %+v", d.header)
	}
	got := d.body.(*kmsg.MetadataRequest)
	if len(got.Topics) != 1 || got.Topics[0].Topic == nil || *got.Topics[0].Topic != topic {
		t.Fatalf("body %+v", got)
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	tooNew := []byte{0, 18, 0, 5, 0, 0, 0, 3, 0, 0}
	cases := []struct {
		name  string
		frame []byte
		kind  string
	}{
		{"empty", nil, badHeader},
		{"short", []byte{0, 18, 0, 0, 0, 0, 0, 1, 0}, badHeader},
		{"unknown key", []byte{0, 24, 0, 0, 0, 0, 0, 1, 0, 0}, badUnknownAPI},
		{"negative key", []byte{0xff, 0xff, 0, 0, 0, 0, 0, 1, 0, 0}, badUnknownAPI},
		{"version below min", []byte{0, 1, 0, 3, 0, 0, 0, 1, 0, 0}, badVersion},
		{"version above max", []byte{0, 3, 0, 13, 0, 0, 0, 1, 0, 0}, badVersion},
		{"negative version", []byte{0, 18, 0xff, 0xff, 0, 0, 0, 1, 0, 0}, badVersion},
		{"ApiVersions too new", tooNew, badAPIVersions},
		{"client id past end", []byte{0, 18, 0, 0, 0, 0, 0, 1, 0, 9, 'a'}, badHeader},
		{"tag past end", []byte{0, 18, 0, 3, 0, 0, 0, 1, 0, 0, 1, 0, 9, 'x'}, badHeader},
		{"body truncated", []byte{0, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0}, badShape},
		{"array longer than frame", []byte{0, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0x7f, 0xff, 0xff, 0xff}, badShape},
		// One topic whose name is null: the shape holds, kmsg refuses it.
		{"null where none is allowed", []byte{0, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0xff, 0xff}, badBody},
	}
	table := testTable(t)
	for _, c := range cases {
		d, err := decodeRequest(c.frame, table, nil)
		var bad *badInputError
		if !errors.As(err, &bad) || bad.kind != c.kind {
			t.Fatalf("%s: got %v, want kind %s", c.name, err, c.kind)
		}
		if c.kind == badAPIVersions && (d.header.CorrelationID != 3 || d.header.APIVersion != 5) {
			t.Fatalf("%s: header %+v", c.name, d.header)
		}
	}
}

func TestReadFrameRefusesSizesBeforeAllocating(t *testing.T) {
	var sizeBuf [4]byte
	for _, size := range []uint32{0, 1<<31 - 1, 1 << 31, 0xffffffff, 1025} {
		// No body follows: reading one would fail differently.
		r := bufio.NewReader(bytes.NewReader(binary.BigEndian.AppendUint32(nil, size)))
		var bad *badInputError
		if _, err := readFrame(r, &sizeBuf, 1024, frameHooks{}); !errors.As(err, &bad) || bad.kind != badFrameSize {
			t.Fatalf("size %d: got %v, want a frame_size error", size, err)
		}
	}
	r := bufio.NewReader(bytes.NewReader([]byte{0, 0, 0, 8, 1, 2, 3}))
	var bad *badInputError
	if _, err := readFrame(r, &sizeBuf, 1024, frameHooks{}); !errors.As(err, &bad) || bad.kind != badTruncatedFrame {
		t.Fatalf("truncated body: got %v", err)
	}
	r = bufio.NewReader(bytes.NewReader([]byte{0, 0}))
	if _, err := readFrame(r, &sizeBuf, 1024, frameHooks{}); !errors.As(err, &bad) || bad.kind != badTruncatedFrame {
		t.Fatalf("truncated size: got %v", err)
	}
	r = bufio.NewReader(bytes.NewReader(nil))
	if _, err := readFrame(r, &sizeBuf, 1024, frameHooks{}); err != io.EOF {
		t.Fatalf("clean EOF: got %v", err)
	}
}

func TestResponseHeaders(t *testing.T) {
	// ApiVersions v3+ is flexible but keeps response header v0.
	av := kmsg.NewPtrApiVersionsResponse()
	av.SetVersion(3)
	got := appendResponse(nil, 5, av)
	want := append([]byte{0, 0, 0, 0, 0, 0, 0, 5}, av.AppendTo(nil)...)
	binary.BigEndian.PutUint32(want, uint32(len(want)-4))
	if !bytes.Equal(got, want) {
		t.Fatalf("ApiVersions v3 frame % x, want % x", got, want)
	}
	// Other flexible responses carry an empty tag section after the id.
	md := kmsg.NewPtrMetadataResponse()
	md.SetVersion(9)
	got = appendResponse([]byte("prefix"), 6, md)
	want = append([]byte("prefix\x00\x00\x00\x00\x00\x00\x00\x06\x00"), md.AppendTo(nil)...)
	binary.BigEndian.PutUint32(want[6:], uint32(len(want)-10))
	if !bytes.Equal(got, want) {
		t.Fatalf("Metadata v9 frame % x, want % x", got, want)
	}
	md.SetVersion(8)
	if got, body := appendResponse(nil, 6, md), md.AppendTo(nil); !bytes.Equal(got[8:], body) {
		t.Fatalf("Metadata v8 (not flexible): % x after the header, want the body % x", got[8:], body)
	}
}

// FuzzRequestFrame feeds arbitrary bytes through the request path's decoding
// (framing, header, kmsg body): it must never panic, every frame it accepts
// must be within the size limit and decode to a version we serve, and
// allocation stays proportional to the input.
func FuzzRequestFrame(f *testing.F) {
	table := testTable(f)
	for _, a := range table {
		for _, v := range []int16{a.MinVersion, a.MaxVersion} {
			req := kmsg.RequestForKey(a.Key)
			req.SetVersion(v)
			f.Add(frameOf(req, 1))
		}
	}
	produce := kmsg.NewPtrProduceRequest()
	produce.SetVersion(9)
	produce.Acks = -1
	produce.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: testBatch}}}}
	f.Add(frameOf(produce, 2))
	f.Add([]byte{0, 0, 0, 10, 0, 18, 0, 99, 0, 0, 0, 1, 0, 0})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0x7f, 0xff, 0xff, 0xff})

	const maxBytes = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		br := bufio.NewReader(bytes.NewReader(data))
		var sizeBuf [4]byte
		for {
			frame, err := readFrame(br, &sizeBuf, maxBytes, frameHooks{})
			if err != nil {
				break
			}
			if len(frame) > maxBytes {
				t.Fatalf("accepted a %d-byte frame", len(frame))
			}
			d, err := decodeRequest(frame, table, nil)
			if err != nil {
				var bad *badInputError
				if !errors.As(err, &bad) {
					t.Fatalf("error %v is not a badInputError", err)
				}
				continue
			}
			a := table[d.header.APIKey]
			if d.api != a || d.header.APIVersion < a.MinVersion || d.header.APIVersion > a.MaxVersion || d.body.GetVersion() != d.header.APIVersion {
				t.Fatalf("accepted %+v", d.header)
			}
			// What we decoded, kmsg can encode again.
			_ = d.body.AppendTo(nil)
		}
		runtime.ReadMemStats(&after)
		// Generous: kmsg allocates one struct per claimed array element,
		// and elements need at least a byte each.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20+1024*uint64(len(data)) {
			t.Fatalf("%d bytes allocated for %d bytes of input", alloc, len(data))
		}
	})
}

func TestReadFrameLargeFrames(t *testing.T) {
	var sizeBuf [4]byte
	for _, size := range []int{1, firstFrameStep - 1, firstFrameStep, firstFrameStep + 1, 3*firstFrameStep + 12345} {
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(i * 7)
		}
		in := append(binary.BigEndian.AppendUint32(nil, uint32(size)), body...)
		in = append(in, 0, 0, 0, 1, 9) // a second frame follows
		r := bufio.NewReader(bytes.NewReader(in))
		got, err := readFrame(r, &sizeBuf, 8*firstFrameStep, frameHooks{})
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("size %d: %v (got %d bytes)", size, err, len(got))
		}
		if got, err := readFrame(r, &sizeBuf, 8*firstFrameStep, frameHooks{}); err != nil || !bytes.Equal(got, []byte{9}) {
			t.Fatalf("size %d: next frame %v, %v", size, got, err)
		}
		// Cut anywhere inside: a truncated frame.
		r = bufio.NewReader(bytes.NewReader(in[:4+size/2]))
		var bad *badInputError
		if _, err := readFrame(r, &sizeBuf, 8*firstFrameStep, frameHooks{}); !errors.As(err, &bad) || bad.kind != badTruncatedFrame {
			t.Fatalf("size %d cut: %v", size, err)
		}
	}
}

// TestReadFrameMemoryFollowsBytes: a frame takes memory as its bytes
// arrive, never on the strength of its size prefix. A sender that claims
// 100 MiB and sends k bytes makes the broker reserve at most
// max(firstFrameStep, 2k); a complete frame reserves exactly its size, and
// only steps after the first are growth (the overdraft is for those).
func TestReadFrameMemoryFollowsBytes(t *testing.T) {
	const claimed = 100 << 20
	for _, sent := range []int{0, 1, firstFrameStep - 1, firstFrameStep, firstFrameStep + 1, 5 << 20, 33<<20 + 7} {
		in := binary.BigEndian.AppendUint32(nil, claimed)
		in = append(in, make([]byte, sent)...)
		var reserved int64
		var growths int
		_, err := readFrame(bufio.NewReader(bytes.NewReader(in)), new([4]byte), claimed, frameHooks{
			reserve: func(n int64, growth bool) error {
				if growth != (reserved > 0) {
					t.Errorf("sent %d: growth=%v with %d reserved", sent, growth, reserved)
				}
				if growth {
					growths++
				}
				reserved += n
				return nil
			},
		})
		var bad *badInputError
		if !errors.As(err, &bad) || bad.kind != badTruncatedFrame {
			t.Fatalf("sent %d of %d: %v, want a truncated frame", sent, claimed, err)
		}
		if limit := int64(max(firstFrameStep, 2*sent)); reserved > limit {
			t.Errorf("sent %d bytes of a %d-byte frame: %d reserved, more than %d", sent, claimed, reserved, limit)
		}
	}
	// A whole frame: exactly its size, in doubling steps.
	size := 3<<20 + 5
	in := append(binary.BigEndian.AppendUint32(nil, uint32(size)), make([]byte, size)...)
	var reserved int64
	var steps []int64
	if _, err := readFrame(bufio.NewReader(bytes.NewReader(in)), new([4]byte), int32(size), frameHooks{
		reserve: func(n int64, _ bool) error { reserved += n; steps = append(steps, n); return nil },
	}); err != nil {
		t.Fatal(err)
	}
	if reserved != int64(size) {
		t.Errorf("a %d-byte frame reserved %d bytes (steps %v)", size, reserved, steps)
	}
	// Bytes that have already arrived are taken in one step, not doubled
	// up to (fewer copies for a fast sender); what has not arrived still
	// costs nothing.
	for _, sent := range []int{size, size / 3} {
		src := bytes.NewReader(in[:4+sent])
		reserved, steps = 0, nil
		_, err := readFrame(bufio.NewReader(src), new([4]byte), int32(size), frameHooks{
			reserve: func(n int64, _ bool) error { reserved += n; steps = append(steps, n); return nil },
			arrived: src.Len,
		})
		if sent == size && (err != nil || len(steps) > 2) {
			t.Errorf("a whole frame that has arrived: %v, %d steps %v", err, len(steps), steps)
		}
		if limit := int64(max(firstFrameStep, 2*sent)); reserved > limit {
			t.Errorf("sent %d of %d: %d reserved, more than %d", sent, size, reserved, limit)
		}
	}
	// A refused reservation ends the read with its error.
	stop := errors.New("no memory")
	if _, err := readFrame(bufio.NewReader(bytes.NewReader(in)), new([4]byte), int32(size), frameHooks{
		reserve: func(int64, bool) error { return stop },
	}); err != stop {
		t.Errorf("refused reservation: %v", err)
	}
}

// TestFramedHeader: a Framed body's size prefix and response header are
// those appendResponse writes for kmsg's encoding of the same response,
// ApiVersions' header v0 included.
func TestFramedHeader(t *testing.T) {
	av := kmsg.NewPtrApiVersionsResponse()
	av.SetVersion(3)
	md := kmsg.NewPtrMetadataResponse()
	md.SetVersion(9)
	md8 := kmsg.NewPtrMetadataResponse()
	md8.SetVersion(8)
	for _, resp := range []kmsg.Response{av, md, md8} {
		body := resp.AppendTo(nil)
		f := &memFramed{key: resp.Key(), flexible: resp.IsFlexible(), body: body}
		got := append(appendFramedHeader([]byte("prefix"), 6, f), body...)
		want := appendResponse([]byte("prefix"), 6, resp)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s v%d: framed % x, want % x", kmsg.NameForKey(resp.Key()), resp.GetVersion(), got, want)
		}
	}
}

// testBatch stands for a produced record batch in fuzz seeds: the shape
// check and kmsg see records only as bytes.
var testBatch = bytes.Repeat([]byte{0x5a}, 61)
