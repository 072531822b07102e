package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// closeWait bounds how long a broker may take to close a connection it should drop. A broker
// that keeps a broken connection open until its idle timeout fails the test.
const closeWait = 20 * time.Second

// steadyClient is the well-behaved franz-go client that keeps producing and consuming while the
// hostile inputs arrive.
type steadyClient struct {
	mu       sync.Mutex
	produced int // records acknowledged: recValue("steady", 0..produced-1)
	consumed int // records read by the concurrent consumer
	err      error

	stopProducing chan struct{}
	producerDone  chan struct{}
	cancel        context.CancelFunc
	consumerDone  chan struct{}
}

func (s *steadyClient) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

func runSteadyClient(t *testing.T, b *strataProc, topic string) *steadyClient {
	ctx, cancel := context.WithCancel(context.Background())
	s := &steadyClient{stopProducing: make(chan struct{}), producerDone: make(chan struct{}),
		cancel: cancel, consumerDone: make(chan struct{})}
	prod := b.kgoClient(t, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond))
	cons := b.kgoClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().At(0), 1: kgo.NewOffset().At(0)},
	}), kgo.FetchMaxWait(100*time.Millisecond))
	go func() { // producer: batches of 50 until told to stop
		defer close(s.producerDone)
		for i := 0; ; {
			select {
			case <-s.stopProducing:
				return
			default:
			}
			recs := make([]*kgo.Record, 50)
			for j := range recs {
				recs[j] = &kgo.Record{Key: recKey(i + j), Value: recValue("steady", i+j)}
			}
			pctx, pcancel := context.WithTimeout(ctx, opTimeout)
			err := prod.ProduceSync(pctx, recs...).FirstErr()
			pcancel()
			if err != nil {
				s.fail(fmt.Errorf("produce: %w", err))
				return
			}
			i += len(recs)
			s.mu.Lock()
			s.produced = i
			s.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	go func() { // consumer: reads whatever arrives until cancelled
		defer close(s.consumerDone)
		for {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			var ferr error
			fs.EachError(func(topic string, p int32, err error) { ferr = fmt.Errorf("fetch %s/%d: %w", topic, p, err) })
			if ferr != nil {
				s.fail(ferr)
				return
			}
			s.mu.Lock()
			s.consumed += fs.NumRecords()
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

// waitProgress waits until the client has produced and consumed at least 100 more records than
// at the previous call, so each group of hostile inputs overlaps real traffic. Hang guard:
// opTimeout; a client error fails at once.
func (s *steadyClient) waitProgress(t *testing.T, after string) {
	t.Helper()
	s.mu.Lock()
	p0, c0 := s.produced, s.consumed
	s.mu.Unlock()
	deadline := time.Now().Add(opTimeout)
	for {
		s.mu.Lock()
		p, c, err := s.produced, s.consumed, s.err
		s.mu.Unlock()
		if err != nil {
			t.Fatalf("after %s: the well-behaved client failed: %v", after, err)
		}
		if p >= p0+100 && c >= c0+100 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: the well-behaved client made no progress in %v (produced %d -> %d, consumed %d -> %d)",
				after, opTimeout, p0, p, c0, c)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop ends both loops (idempotent) and returns what they did.
func (s *steadyClient) stop() (produced, consumed int, err error) {
	select {
	case <-s.stopProducing:
	default:
		close(s.stopProducing)
	}
	<-s.producerDone
	s.cancel()
	<-s.consumerDone
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.produced, s.consumed, s.err
}

// TestHostileInputs: garbage bytes, huge and negative length prefixes, an oversized and a
// truncated frame, an unknown API key, unsupported versions, produce requests whose record batch
// has a wrong CRC, a lying record count or length, or exceeds max.message.bytes, requests for
// impossible partitions, acks or offsets, compressed batches that lie or do not decompress, and a
// decompression bomb — each gets a Kafka error code or a closed connection, while a franz-go client
// keeps producing and consuming undisturbed (it must make progress between each group). Nothing
// from a bad batch is stored, the broker's memory stays bounded, /metrics counts the bad input,
// and the well-behaved client's records are all there afterwards.
func TestHostileInputs(t *testing.T) {
	b := startStrata(t)
	const steady, target = "steady", "hostile-target"
	b.createTopic(t, steady, 2, nil)
	b.createTopic(t, target, 1, nil)
	metricsBefore := b.Metrics()
	sc := runSteadyClient(t, b, steady)
	sc.waitProgress(t, "start")

	// expectDropped: the broker closes the connection (it may answer first, which is fine only
	// if the answer is a well-formed frame).
	expectDropped := func(name string, rc *rawConn) {
		t.Helper()
		got, err := rc.expectClosed(closeWait)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if len(got) > 0 && (len(got) < 8 || int(binary.BigEndian.Uint32(got)) != len(got)-4) {
			t.Errorf("%s: before closing, the broker sent %d bytes that are not one response frame: %q", name, len(got), got[:min(len(got), 64)])
		}
	}
	header := func(key, version int16, corr int32) []byte {
		h := binary.BigEndian.AppendUint16(nil, uint16(key))
		h = binary.BigEndian.AppendUint16(h, uint16(version))
		h = binary.BigEndian.AppendUint32(h, uint32(corr))
		return binary.BigEndian.AppendUint16(h, 0xffff) // null client id
	}
	frame := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	randBytes := func(n int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		return p
	}

	// expectAnswerOrDrop: the broker either answers with a frame carrying corr or closes the
	// connection; a broker that does neither within closeWait fails.
	expectAnswerOrDrop := func(name string, rc *rawConn, corr int32) {
		t.Helper()
		resp, err := rc.readFrame(closeWait)
		switch {
		case err == nil:
			if len(resp) < 4 || int32(binary.BigEndian.Uint32(resp)) != corr {
				t.Errorf("%s: answered with a %d-byte frame whose correlation id is not %d", name, len(resp), corr)
			}
		case isConnDropped(err):
		default:
			t.Errorf("%s: neither answered nor closed: %v", name, err)
		}
	}

	// 1. Garbage. An HTTP request: its first four bytes read as a ~1.2 GB length, above
	// socket.request.max.bytes, so the broker must drop the connection at once.
	{
		rc := dialRaw(t, b.Addr())
		if err := rc.writeRaw([]byte("GET /metrics HTTP/1.1\r\nHost: strata\r\n\r\n")); err != nil && !isConnDropped(err) {
			t.Errorf("garbage: HTTP request: write: %v", err)
		}
		expectDropped("garbage: HTTP request", rc)
	}
	// Random bytes inside well-formed frames (valid or random API headers) and frames too short to
	// hold a header: the broker answers (if the bytes happen to decode) or drops the connection.
	// The client half-closes after writing, so a broker that waits for more bytes sees EOF.
	for _, g := range []struct {
		name string
		b    []byte
	}{
		{"garbage: 64 KiB of random bytes in a frame", frame(randBytes(64 << 10))},
		{"garbage: random Metadata v9 body", frame(append(header(3, 9, 1), randBytes(300)...))},
		{"garbage: random Produce v9 body", frame(append(header(0, 9, 1), randBytes(300)...))},
		{"garbage: random Fetch v12 body", frame(append(header(1, 12, 1), randBytes(300)...))},
		{"garbage: random Produce v3 body", frame(append(header(0, 3, 1), randBytes(300)...))},
		{"garbage: header cut short", frame([]byte{0, 3})},
		{"garbage: zero-length frame", frame(nil)},
	} {
		rc := dialRaw(t, b.Addr())
		if err := rc.writeRaw(g.b); err != nil && !isConnDropped(err) {
			t.Errorf("%s: write: %v", g.name, err)
		}
		rc.c.(*net.TCPConn).CloseWrite()
		expectAnswerOrDrop(g.name, rc, 1)
	}

	sc.waitProgress(t, "garbage")

	// 2. Hostile length prefixes: 2 GiB - 1, 2 GiB (negative as int32), -1, and 200 MiB (above
	// socket.request.max.bytes, 100 MiB). The broker must not wait for (or allocate) the body.
	for _, n := range []uint32{0x7fffffff, 0x80000000, 0xffffffff, 200 << 20} {
		rc := dialRaw(t, b.Addr())
		p := binary.BigEndian.AppendUint32(nil, n)
		p = append(p, header(18, 0, 1)...)
		if err := rc.writeRaw(p); err != nil && !isConnDropped(err) {
			t.Errorf("length prefix %#x: write: %v", n, err)
		}
		expectDropped("length prefix "+hex32(n), rc)
	}

	sc.waitProgress(t, "hostile length prefixes")

	// 3. A truncated frame: the prefix promises 100 bytes, 30 arrive, then the client half-closes.
	{
		rc := dialRaw(t, b.Addr())
		p := binary.BigEndian.AppendUint32(nil, 100)
		p = append(p, header(18, 0, 1)...)
		p = append(p, make([]byte, 30-len(header(18, 0, 1)))...)
		if err := rc.writeRaw(p); err != nil {
			t.Errorf("truncated frame: write: %v", err)
		}
		rc.c.(*net.TCPConn).CloseWrite()
		expectDropped("truncated frame", rc)
	}

	sc.waitProgress(t, "a truncated frame")

	// 4. Unknown API key 9999: Kafka closes the connection; an error response is acceptable too.
	{
		rc := dialRaw(t, b.Addr())
		if err := rc.writeRaw(frame(header(9999, 0, 42))); err != nil {
			t.Errorf("unknown api key: write: %v", err)
		}
		expectAnswerOrDrop("unknown api key 9999", rc, 42)
	}

	sc.waitProgress(t, "an unknown API key")

	// 5a. ApiVersions above our range: a v0 response with UNSUPPORTED_VERSION (35) and our range
	// for key 18 (KIP-511).
	{
		rc := dialRaw(t, b.Addr())
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(127)
		req.ClientSoftwareName, req.ClientSoftwareVersion = "e2e", "1"
		corr, err := rc.send(req)
		if err != nil {
			t.Fatalf("ApiVersions v127: write: %v", err)
		}
		raw, err := rc.readFrame(closeWait)
		if err != nil {
			t.Errorf("ApiVersions v127: no response: %v", err)
		} else {
			resp := kmsg.NewPtrApiVersionsResponse()
			if err := decodeResponse(raw, corr, 18, 0, resp); err != nil {
				t.Errorf("ApiVersions v127: response is not a v0 ApiVersions response: %v", err)
			} else {
				if resp.ErrorCode != 35 {
					t.Errorf("ApiVersions v127: error code %d, want 35 (UNSUPPORTED_VERSION)", resp.ErrorCode)
				}
				if !slices.ContainsFunc(resp.ApiKeys, func(k kmsg.ApiVersionsResponseApiKey) bool { return k.ApiKey == 18 }) {
					t.Errorf("ApiVersions v127: response lacks the range for key 18: %+v", resp.ApiKeys)
				}
			}
		}
	}
	// 5b. Metadata v127: closed connection (Kafka's answer) or a response with our correlation id.
	{
		rc := dialRaw(t, b.Addr())
		if err := rc.writeRaw(frame(append(header(3, 127, 43), 0, 0, 0, 0))); err != nil {
			t.Errorf("Metadata v127: write: %v", err)
		}
		expectAnswerOrDrop("Metadata v127", rc, 43)
	}

	sc.waitProgress(t, "unsupported versions")

	// 6. Produce requests with lying record batches: each must get CORRUPT_MESSAGE (2) or, for a
	// lying count, INVALID_RECORD (87), and store nothing. The connection stays usable.
	recs := []rawRecord{
		{Key: []byte("a"), Value: []byte("first"), Timestamp: time.Now().UnixMilli()},
		{Key: []byte("b"), Value: []byte("second"), Timestamp: time.Now().UnixMilli()},
	}
	lengthLie := encodeBatch(recs, batchOpts{})
	binary.BigEndian.PutUint32(lengthLie[8:12], binary.BigEndian.Uint32(lengthLie[8:12])+1000)
	lengthShort := encodeBatch(recs, batchOpts{})
	binary.BigEndian.PutUint32(lengthShort[8:12], binary.BigEndian.Uint32(lengthShort[8:12])-5)
	flipped := encodeBatch(recs, batchOpts{})
	flipped[len(flipped)-3] ^= 0x40 // a record byte changed after the CRC was computed
	rc := dialRaw(t, b.Addr())
	for _, c := range []struct {
		name  string
		batch []byte
		codes []int16
	}{
		{"wrong CRC field", encodeBatch(recs, batchOpts{badCRC: true}), []int16{2}},
		{"record bytes changed after CRC", flipped, []int16{2}},
		{"record count says 3, holds 2", encodeBatch(recs, batchOpts{countDelta: 1}), []int16{2, 87}},
		{"record count says 1, holds 2", encodeBatch(recs, batchOpts{countDelta: -1}), []int16{2, 87}},
		{"record count says 1000000, holds 2", encodeBatch(recs, batchOpts{countDelta: 999998}), []int16{2, 87}},
		{"batch length beyond the payload", lengthLie, []int16{2, 87}},
		{"batch length short of the records", lengthShort, []int16{2, 87}},
		{"batch above max.message.bytes (2 MiB)", encodeBatch([]rawRecord{{Value: bytes.Repeat([]byte{'x'}, 2<<20), Timestamp: time.Now().UnixMilli()}}, batchOpts{}), []int16{10}},
	} {
		for _, version := range []int16{3, 7, 9} {
			req := kmsg.NewPtrProduceRequest()
			req.SetVersion(version)
			req.Acks = -1
			req.TimeoutMillis = 30000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = target
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = c.batch
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp := kmsg.NewPtrProduceResponse()
			if err := rc.roundTrip(req, resp); err != nil {
				t.Errorf("produce v%d with %s: %v", version, c.name, err)
				rc = dialRaw(t, b.Addr()) // the broker may close instead; go on with a new connection
				continue
			}
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Errorf("produce v%d with %s: response shape %+v", version, c.name, resp)
				continue
			}
			if code := resp.Topics[0].Partitions[0].ErrorCode; !slices.Contains(c.codes, code) {
				t.Errorf("produce v%d with %s: error code %d, want one of %v", version, c.name, code, c.codes)
			}
		}
	}
	sc.waitProgress(t, "corrupt produce requests")

	// 7. Well-formed requests that ask for the impossible get Kafka's error codes.
	produceTo := func(topic string, partition int32, acks int16, batch []byte) (int16, error) {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(7)
		req.Acks = acks
		req.TimeoutMillis = 30000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = partition
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := kmsg.NewPtrProduceResponse()
		if err := rc.roundTrip(req, resp); err != nil {
			rc = dialRaw(t, b.Addr())
			return 0, err
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return 0, fmt.Errorf("response shape %+v", resp)
		}
		return resp.Topics[0].Partitions[0].ErrorCode, nil
	}
	fetchAt := func(offset int64) (int16, error) {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(11)
		req.ReplicaID = -1
		req.MaxBytes = 1 << 20
		req.SessionEpoch = -1
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = steady
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.FetchOffset = offset
		fp.PartitionMaxBytes = 1 << 20
		fp.CurrentLeaderEpoch = -1
		fp.LogStartOffset = -1
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
		resp := kmsg.NewPtrFetchResponse()
		if err := rc.roundTrip(req, resp); err != nil {
			rc = dialRaw(t, b.Addr())
			return 0, err
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return 0, fmt.Errorf("response shape %+v", resp)
		}
		return resp.Topics[0].Partitions[0].ErrorCode, nil
	}
	magic1 := encodeBatch(recs, batchOpts{})
	magic1[16] = 1
	for _, c := range []struct {
		name  string
		do    func() (int16, error)
		codes []int16
	}{
		{"produce to partition 99", func() (int16, error) { return produceTo(target, 99, -1, encodeBatch(recs, batchOpts{})) }, []int16{3}},
		{"produce to an unknown topic", func() (int16, error) { return produceTo("no-such-topic", 0, -1, encodeBatch(recs, batchOpts{})) }, []int16{3}},
		{"produce with acks=2", func() (int16, error) { return produceTo(target, 0, 2, encodeBatch(recs, batchOpts{})) }, []int16{21}},
		{"produce a magic-1 batch header", func() (int16, error) { return produceTo(target, 0, -1, magic1) }, []int16{2, 43, 87}},
		{"fetch at offset 10^12", func() (int16, error) { return fetchAt(1e12) }, []int16{1}},
		{"fetch at offset -5", func() (int16, error) { return fetchAt(-5) }, []int16{1}},
	} {
		code, err := c.do()
		switch {
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case !slices.Contains(c.codes, code):
			t.Errorf("%s: error code %d, want one of %v", c.name, code, c.codes)
		}
	}
	sc.waitProgress(t, "impossible requests")

	// 8. Compressed batches that lie. A control batch (valid gzip) must be accepted, so that the
	// rejections below are about the lies, not about this test's encoding.
	gz := gzipBytes
	const control, bombTopic = "hostile-control", "hostile-bomb"
	b.createTopic(t, control, 1, nil)
	b.createTopic(t, bombTopic, 1, nil)
	if code, err := produceTo(control, 0, -1, encodeBatch(recs, batchOpts{codec: 1, compress: gz})); err != nil || code != 0 {
		t.Fatalf("control: a valid gzip batch got error code %d (%v); the compressed cases below would prove nothing", code, err)
	}
	for _, c := range []struct {
		name  string
		batch []byte
	}{
		{"gzip attribute over random bytes", encodeBatch(recs, batchOpts{codec: 1, recordsOverride: randBytes(500)})},
		{"zstd attribute over gzip bytes", encodeBatch(recs, batchOpts{codec: 4, compress: gz})},
		{"gzip batch whose count says 3, holds 2", encodeBatch(recs, batchOpts{codec: 1, compress: gz, countDelta: 1})},
		{"gzip batch whose count says 1, holds 2", encodeBatch(recs, batchOpts{codec: 1, compress: gz, countDelta: -1})},
		{"gzip stream cut in half", encodeBatch(recs, batchOpts{codec: 1, compress: func(p []byte) []byte { g := gz(p); return g[:len(g)/2] }})},
	} {
		code, err := produceTo(target, 0, -1, c.batch)
		switch {
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case code != 2 && code != 87:
			t.Errorf("%s: error code %d, want 2 (CORRUPT_MESSAGE) or 87 (INVALID_RECORD)", c.name, code)
		}
	}
	// A decompression bomb: one record with a 1 GiB value, zstd-compressed into a few KiB. The
	// broker may refuse it or store it, but must not inflate it in memory.
	{
		bomb := zstdBomb(t, 1<<30)
		rssBefore := b.PeakRSS()
		code, err := produceTo(bombTopic, 0, -1, encodeBatch([]rawRecord{{Timestamp: time.Now().UnixMilli()}},
			batchOpts{codec: 4, recordsOverride: bomb}))
		if err != nil {
			t.Errorf("zstd bomb (%d bytes): %v", len(bomb), err)
		}
		peak := b.PeakRSS()
		t.Logf("zstd bomb (%d compressed bytes, 1 GiB inflated): error code %d; broker peak RSS %d MiB before, %d MiB after",
			len(bomb), code, rssBefore>>20, peak>>20)
		if peak > 512<<20 {
			t.Errorf("the broker's peak RSS reached %d MiB around a decompression bomb: decompression is not bounded", peak>>20)
		}
	}
	sc.waitProgress(t, "compressed lies")

	// The same connection still answers a well-formed request.
	{
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(0)
		resp := kmsg.NewPtrApiVersionsResponse()
		if err := rc.roundTrip(req, resp); err != nil || resp.ErrorCode != 0 {
			t.Errorf("ApiVersions after the rejected produces: %v (error code %d)", err, resp.ErrorCode)
		}
	}

	produced, consumed, serr := sc.stop()
	if serr != nil {
		t.Fatalf("the well-behaved client failed during the hostile inputs: %v", serr)
	}
	if !b.Running() {
		t.Fatalf("the broker is gone")
	}
	t.Logf("well-behaved client: %d records produced, %d consumed concurrently", produced, consumed)
	if produced == 0 || consumed == 0 {
		t.Errorf("the well-behaved client made no progress (produced %d, consumed %d)", produced, consumed)
	}
	checkRecValues(t, steady, "steady", produced, b.consumeAll(t, steady))
	if end := b.endOffsets(t, target)[0]; end != 0 {
		t.Errorf("%s holds %d records after only corrupt produces, want 0", target, end)
	}
	// Nothing damaged: a normal produce + consume on the targeted partition works.
	cl := b.kgoClient(t, kgo.DefaultProduceTopic(target))
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: recKey(0), Value: recValue("target", 0)}).FirstErr(); err != nil {
		t.Fatalf("produce to %s after the corrupt batches: %v", target, err)
	}
	checkRecValues(t, target, "target", 1, b.consumeAll(t, target))

	// The bad input was counted.
	metrics := b.Metrics()
	before, _ := badInputCount(metricsBefore)
	after, lines := badInputCount(metrics)
	if after <= before {
		t.Errorf("bad-input metrics did not grow (before %v, after %v); matching series:\n%s\nall strata series:\n%s",
			before, after, strings.Join(lines, "\n"), strataSeries(metrics))
	} else {
		t.Logf("bad-input metrics: %v -> %v\n%s", before, after, strings.Join(lines, "\n"))
	}
}

// zstdBomb returns the zstd-compressed records section of a batch holding one record whose value
// is n zero bytes.
func zstdBomb(t *testing.T, n int64) []byte {
	var rec []byte
	rec = append(rec, 0)                   // attributes
	rec = kbin.AppendVarlong(rec, 0)       // timestamp delta
	rec = kbin.AppendVarint(rec, 0)        // offset delta
	rec = kbin.AppendVarint(rec, -1)       // null key
	rec = kbin.AppendVarint(rec, int32(n)) // value length
	bodyLen := int64(len(rec)) + n + 1     // + headers count
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatalf("zstd: %v", err)
	}
	enc.Write(kbin.AppendVarint(nil, int32(bodyLen)))
	enc.Write(rec)
	if _, err := io.Copy(enc, io.LimitReader(zeros{}, n)); err != nil {
		t.Fatalf("zstd: %v", err)
	}
	enc.Write(kbin.AppendVarint(nil, 0)) // no headers
	if err := enc.Close(); err != nil {
		t.Fatalf("zstd: %v", err)
	}
	return buf.Bytes()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// badInputCount sums the broker's bad-input counters in a /metrics exposition.
func badInputCount(exposition string) (float64, []string) {
	return metricSum(exposition, "bad_input")
}

// strataSeries returns the exposition's lines that are not Go runtime or process series.
func strataSeries(exposition string) string {
	var out []string
	for _, l := range strings.Split(exposition, "\n") {
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "go_") || strings.HasPrefix(l, "process_") ||
			strings.HasPrefix(l, "promhttp_") || strings.HasPrefix(l, "otel_") || strings.HasPrefix(l, "target_info") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func isConnDropped(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || strings.Contains(s, "connection reset") || strings.Contains(s, "broken pipe")
}

func hex32(n uint32) string {
	const digits = "0123456789abcdef"
	b := []byte("0x00000000")
	for i := 9; i >= 2; i-- {
		b[i] = digits[n&0xf]
		n >>= 4
	}
	return string(b)
}
