package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/internal/logutil"
)

// testBroker is a Broker with only the connection layer wired (no topics,
// committer or producer ids), serving table on 127.0.0.1:0.
type testBroker struct {
	*Broker
	addr     string
	serveErr chan error
}

func newTestBroker(t *testing.T, table map[int16]*api, mutate func(*Config), opts ...func(*Broker)) *testBroker {
	t.Helper()
	cfg := Config{
		NodeID:                   1,
		SocketRequestMaxBytes:    1 << 20,
		ConnectionsMaxIdle:       time.Minute,
		MaxInFlightPerConnection: 8,
		Logger:                   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if mutate != nil {
		mutate(&cfg)
	}
	b := &Broker{cfg: cfg, log: cfg.Logger, clusterID: "AAAAAAAAAAAAAAAAAAAAAA", done: make(chan struct{})}
	b.stopCtx, b.stop = context.WithCancel(context.Background())
	b.metrics = newBrokerMetrics()
	b.badInputLog = logutil.NewLimiter(b.log, badInputLogEvery, nil)
	b.conns = newConnTracker(cfg.MaxConnections, cfg.MaxConnectionsPerIP)
	if table != nil {
		b.conns.apis = table
	}
	for _, o := range opts {
		o(b)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tb := &testBroker{Broker: b, addr: ln.Addr().String(), serveErr: make(chan error, 1)}
	go func() { tb.serveErr <- b.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.Shutdown(ctx)
	})
	return tb
}

func (tb *testBroker) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tableWith is the real dispatch table plus (or overridden by) extra APIs.
func tableWith(extra ...api) map[int16]*api {
	m := make(map[int16]*api, len(apiByKey)+len(extra))
	for k, v := range apiByKey {
		m[k] = v
	}
	for i := range extra {
		m[extra[i].key] = &extra[i]
	}
	return m
}

var testFormatter = kmsg.NewRequestFormatter(kmsg.FormatterClientID("h3-test"))

func sendRequest(t *testing.T, c net.Conn, req kmsg.Request, corr int32) {
	t.Helper()
	if _, err := c.Write(testFormatter.AppendRequest(nil, req, corr)); err != nil {
		t.Fatal(err)
	}
}

// readResponse reads one response frame and decodes it into resp (whose
// version must be set), checking the correlation id.
func readResponse(t *testing.T, c net.Conn, wantCorr int32, resp kmsg.Response) {
	t.Helper()
	body := readResponseBody(t, c, wantCorr, responseFlexibleHeader(resp.Key(), resp.IsFlexible()))
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode %s v%d response: %v", kmsg.NameForKey(resp.Key()), resp.GetVersion(), err)
	}
}

func readResponseBody(t *testing.T, c net.Conn, wantCorr int32, flexibleHeader bool) []byte {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("reading response size: %v", err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, frame); err != nil {
		t.Fatalf("reading response: %v", err)
	}
	if corr := int32(binary.BigEndian.Uint32(frame)); corr != wantCorr {
		t.Fatalf("correlation id %d, want %d", corr, wantCorr)
	}
	frame = frame[4:]
	if flexibleHeader {
		if len(frame) == 0 || frame[0] != 0 {
			t.Fatalf("flexible response header without an empty tag section")
		}
		frame = frame[1:]
	}
	return frame
}

// expectClosed reads until the server closes the connection; anything it
// sends first is an error.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	var buf [1]byte
	n, err := c.Read(buf[:])
	if n != 0 || err == nil {
		t.Fatalf("connection still open: read %d bytes, err %v", n, err)
	}
	if !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("unexpected read error %v (want EOF or reset)", err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func apiVersionsRequest(version int16) *kmsg.ApiVersionsRequest {
	r := kmsg.NewPtrApiVersionsRequest()
	r.SetVersion(version)
	r.ClientSoftwareName, r.ClientSoftwareVersion = "strata-test", "1.0"
	return r
}

// checkAPIVersions checks one ApiVersions exchange on c works.
func checkAPIVersions(t *testing.T, c net.Conn, version int16, corr int32) {
	t.Helper()
	sendRequest(t, c, apiVersionsRequest(version), corr)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(version)
	readResponse(t, c, corr, resp)
	if resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions v%d: error %d", version, resp.ErrorCode)
	}
	if len(resp.ApiKeys) != len(apis) {
		t.Fatalf("ApiVersions v%d: %d keys, want %d", version, len(resp.ApiKeys), len(apis))
	}
}

func TestPipelinedAPIVersions(t *testing.T) {
	tb := newTestBroker(t, nil, func(c *Config) { c.MaxInFlightPerConnection = 4 })
	c := tb.dial(t)
	const n = 50
	var out []byte
	for i := range int32(n) {
		// AppendRequest only frames correctly into an empty slice.
		out = append(out, testFormatter.AppendRequest(nil, apiVersionsRequest(int16(i%5)), 1000+i)...)
	}
	// All 50 requests in one write, nothing read until they are sent: the
	// server must keep reading while the queue (4) drains.
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	for i := range int32(n) {
		v := int16(i % 5)
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.SetVersion(v)
		readResponse(t, c, 1000+i, resp)
		if resp.ErrorCode != 0 || len(resp.ApiKeys) != len(apis) {
			t.Fatalf("response %d (v%d): error %d, %d keys", i, v, resp.ErrorCode, len(resp.ApiKeys))
		}
		for _, k := range resp.ApiKeys {
			a := apiByKey[k.ApiKey]
			if a == nil || a.minVersion != k.MinVersion || a.maxVersion != k.MaxVersion {
				t.Fatalf("advertised %+v does not match the apis table", k)
			}
		}
	}
}

func TestAPIVersionsTooNew(t *testing.T) {
	tb := newTestBroker(t, nil, nil)
	c := tb.dial(t)
	// kmsg cannot encode v99, so write the frame by hand: a v2 header for
	// ApiVersions v99 followed by a body we do not understand.
	frame := []byte{0, 18, 0, 99, 0, 0, 0, 7, 0, 4, 't', 'e', 's', 't', 0, 0xde, 0xad}
	if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)); err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	readResponse(t, c, 7, resp)
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error code %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
	}
	if len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 || resp.ApiKeys[0].MinVersion != 0 || resp.ApiKeys[0].MaxVersion != 4 {
		t.Fatalf("ApiKeys %+v, want only ApiVersions 0–4", resp.ApiKeys)
	}
	// The client then retries with a version we support, on the same connection.
	checkAPIVersions(t, c, 4, 8)
}

func TestUnknownAPIKeyClosesConnection(t *testing.T) {
	tb := newTestBroker(t, nil, nil)
	other := tb.dial(t)
	checkAPIVersions(t, other, 3, 1)

	c := tb.dial(t)
	sendRequest(t, c, kmsg.NewPtrAddPartitionsToTxnRequest(), 1) // key 24: not served
	expectClosed(t, c)

	c = tb.dial(t)
	raw := []byte{0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff} // key 32512
	c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(raw))), raw...))
	expectClosed(t, c)

	c = tb.dial(t)
	p := kmsg.NewPtrProduceRequest()
	p.SetVersion(2) // below our minimum (magic v2 needs Produce v3)
	sendRequest(t, c, p, 1)
	expectClosed(t, c)

	checkAPIVersions(t, other, 3, 2)
}

func TestBadFramesCloseOnlyTheirConnection(t *testing.T) {
	tb := newTestBroker(t, nil, func(c *Config) { c.SocketRequestMaxBytes = 1 << 16 })
	other := tb.dial(t)
	checkAPIVersions(t, other, 0, 1)

	sizes := []uint32{1<<16 + 1, 1 << 31, 0xffffffff /* -1 */, 0}
	for _, size := range sizes {
		c := tb.dial(t)
		// Only the size prefix: the broker must refuse before reading (or
		// allocating) a body.
		if _, err := c.Write(binary.BigEndian.AppendUint32(nil, size)); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c)
	}

	garbage := [][]byte{
		{0, 0, 0, 20, 1, 2, 3}, // truncated header, then the client goes away (below)
		append([]byte{0, 0, 0, 12}, bytes.Repeat([]byte{0xff}, 12)...),                           // key -1
		append([]byte{0, 0, 0, 12, 0, 18, 0, 3, 0, 0, 0, 1, 0x7f, 0x7f}, 0xff, 0xff, 0xff, 0xff), // client id longer than the frame
		append([]byte{0, 0, 0, 4}, 0, 18, 0, 0),                                                  // header shorter than its fields
		{0, 0, 0, 13, 0, 18, 0, 3, 0, 0, 0, 1, 0, 0, 0x05, 0x80, 0x80},                           // flexible header, tag section runs off the end
		{0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0x7f, 0xff},                            // Metadata v1: topic array claims 32767 entries
	}
	for i, g := range garbage {
		c := tb.dial(t)
		if _, err := c.Write(g); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			c.(*net.TCPConn).CloseWrite() // truncated frame: EOF inside it
		}
		expectClosed(t, c)
	}
	checkAPIVersions(t, other, 4, 2)
}

func TestIdleConnectionClosed(t *testing.T) {
	tb := newTestBroker(t, nil, func(c *Config) { c.ConnectionsMaxIdle = 50 * time.Millisecond })
	c := tb.dial(t)
	checkAPIVersions(t, c, 1, 1)
	expectClosed(t, c) // nothing more sent: closed once idle
}

// reverseCompleter is a Metadata handler whose replies complete in reverse order
// of arrival; the writer must still answer in request order.
type reverseCompleter struct {
	mu    sync.Mutex
	n     int
	total int
	dones []chan struct{}
}

func (rc *reverseCompleter) handle(b *Broker, r *request) (*reply, error) {
	req := r.body.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	i := rc.n
	rc.n++
	resp.ThrottleMillis = int32(i)
	done := make(chan struct{})
	rep := &reply{done: done, msg: resp}
	rc.dones = append(rc.dones, done)
	if rc.n == rc.total {
		for j := len(rc.dones) - 1; j >= 0; j-- {
			close(rc.dones[j])
		}
	}
	return rep, nil
}

func TestRepliesInRequestOrder(t *testing.T) {
	const n = 20
	rc := &reverseCompleter{total: n}
	tb := newTestBroker(t, tableWith(api{kmsg.Metadata.Int16(), 0, 12, rc.handle}), func(c *Config) { c.MaxInFlightPerConnection = n })
	c := tb.dial(t)
	for i := range int32(n) {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(int16(i % 13))
		sendRequest(t, c, req, i)
	}
	for i := range int32(n) {
		resp := kmsg.NewPtrMetadataResponse()
		resp.SetVersion(int16(i % 13))
		readResponse(t, c, i, resp)
		if resp.GetVersion() >= 3 && resp.ThrottleMillis != i {
			t.Fatalf("response %d carries marker %d", i, resp.ThrottleMillis)
		}
	}
}

// gate is a Metadata handler whose replies wait until released one by one
// (by correlation id) or until the request context ends.
type gate struct {
	handled atomic.Int32
	mu      sync.Mutex
	waiting map[int32]chan struct{}
	none    map[int32]bool // correlation ids answered with reply.none
}

func newGate() *gate { return &gate{waiting: make(map[int32]chan struct{})} }

func (g *gate) handle(b *Broker, r *request) (*reply, error) {
	corr := r.header.CorrelationID
	if g.none[corr] {
		g.handled.Add(1)
		return &reply{none: true}, nil
	}
	release := make(chan struct{})
	g.mu.Lock()
	g.waiting[corr] = release
	g.mu.Unlock()
	g.handled.Add(1)
	done := make(chan struct{})
	rep := &reply{done: done}
	go func() {
		select {
		case <-release:
		case <-r.ctx.Done():
		}
		rep.msg = r.body.ResponseKind()
		close(done)
	}()
	return rep, nil
}

// release completes the reply to corr, once its request has been handled.
func (g *gate) release(t *testing.T, corr int32) {
	t.Helper()
	var ch chan struct{}
	waitFor(t, "the request to be handled", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		ch = g.waiting[corr]
		return ch != nil
	})
	close(ch)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 20000 {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBackpressureBoundsInFlight(t *testing.T) {
	const inFlight, n = 2, 10
	g := newGate()
	tb := newTestBroker(t, tableWith(api{kmsg.Metadata.Int16(), 0, 12, g.handle}), func(c *Config) { c.MaxInFlightPerConnection = inFlight })
	c := tb.dial(t)
	for i := range int32(n) {
		sendRequest(t, c, kmsg.NewPtrMetadataRequest(), i)
	}
	// The writer holds reply 0 (waiting on it), the queue holds 1 and 2,
	// and the reader has handled 3 and is blocked queueing it: 4 handled.
	const bound = inFlight + 2
	waitFor(t, "the reader to fill the queue", func() bool { return g.handled.Load() >= bound })
	time.Sleep(50 * time.Millisecond) // give a broken bound a chance to show
	if h := g.handled.Load(); h != bound {
		t.Fatalf("%d requests handled with no reply written, want the bound %d", h, bound)
	}
	for i := range int32(n) {
		g.release(t, i)
		resp := kmsg.NewPtrMetadataResponse()
		resp.SetVersion(kmsg.NewPtrMetadataRequest().GetVersion())
		readResponse(t, c, i, resp)
		if h := g.handled.Load(); h > min(bound+i+1, n) {
			t.Fatalf("after %d replies, %d requests handled: bound broken", i+1, h)
		}
	}
}

func TestNoneReplyWritesNothing(t *testing.T) {
	g := newGate()
	g.none = map[int32]bool{1: true, 2: true}
	tb := newTestBroker(t, tableWith(api{kmsg.Metadata.Int16(), 0, 12, g.handle}), nil)
	c := tb.dial(t)
	for i := range int32(4) {
		sendRequest(t, c, kmsg.NewPtrMetadataRequest(), i)
	}
	g.release(t, 3)
	g.release(t, 0)
	for _, corr := range []int32{0, 3} {
		resp := kmsg.NewPtrMetadataResponse()
		resp.SetVersion(kmsg.NewPtrMetadataRequest().GetVersion())
		readResponse(t, c, corr, resp)
	}
}

func TestHandlerPanicAndErrorCloseConnection(t *testing.T) {
	panicky := api{kmsg.Metadata.Int16(), 0, 12, func(b *Broker, r *request) (*reply, error) {
		topics := r.body.(*kmsg.MetadataRequest).Topics
		return completed(r.body.ResponseKind()), errors.New(*topics[len(topics)+1].Topic) // index out of range: a runtime panic
	}}
	failing := api{kmsg.ListOffsets.Int16(), 1, 8, func(b *Broker, r *request) (*reply, error) {
		return nil, errors.New("protocol violation")
	}}
	nilReply := api{kmsg.DescribeCluster.Int16(), 0, 1, func(b *Broker, r *request) (*reply, error) { return nil, nil }}
	tb := newTestBroker(t, tableWith(panicky, failing, nilReply), nil)
	other := tb.dial(t)
	checkAPIVersions(t, other, 2, 1)
	listOffsets := kmsg.NewPtrListOffsetsRequest()
	listOffsets.SetVersion(1)
	for _, req := range []kmsg.Request{kmsg.NewPtrMetadataRequest(), listOffsets, kmsg.NewPtrDescribeClusterRequest()} {
		c := tb.dial(t)
		sendRequest(t, c, req, 1)
		expectClosed(t, c)
	}
	checkAPIVersions(t, other, 2, 2)
}

func TestShutdownFinishesInFlight(t *testing.T) {
	// A long-poll-like handler: it answers when released or when its
	// context is cancelled (which Shutdown does).
	g := newGate()
	tb := newTestBroker(t, tableWith(api{kmsg.Metadata.Int16(), 0, 12, g.handle}), nil)
	c := tb.dial(t)
	for i := range int32(3) {
		sendRequest(t, c, kmsg.NewPtrMetadataRequest(), i)
	}
	waitFor(t, "requests to be handled", func() bool { return g.handled.Load() == 3 })

	errc := make(chan error, 1)
	go func() { errc <- tb.Shutdown(context.Background()) }()
	for i := range int32(3) {
		resp := kmsg.NewPtrMetadataResponse()
		resp.SetVersion(kmsg.NewPtrMetadataRequest().GetVersion())
		readResponse(t, c, i, resp)
	}
	expectClosed(t, c)
	if err := <-errc; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-tb.serveErr; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", tb.addr); err == nil {
		t.Fatalf("still accepting after Shutdown")
	}
	if err := tb.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestShutdownForcedByContext(t *testing.T) {
	// This handler ignores its context until the test lets it go: the
	// connection must be cut when Shutdown's context ends.
	hold := make(chan struct{})
	var handled atomic.Int32
	stuck := api{kmsg.Metadata.Int16(), 0, 12, func(b *Broker, r *request) (*reply, error) {
		handled.Add(1)
		done := make(chan struct{})
		rep := &reply{done: done}
		go func() { <-hold; rep.msg = r.body.ResponseKind(); close(done) }()
		return rep, nil
	}}
	tb := newTestBroker(t, tableWith(stuck), nil)
	c := tb.dial(t)
	sendRequest(t, c, kmsg.NewPtrMetadataRequest(), 1)
	waitFor(t, "the request to be handled", func() bool { return handled.Load() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- tb.Shutdown(ctx) }()
	cancel()
	expectClosed(t, c)
	close(hold) // the handler completes; its abandoned reply is released
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v, want context.Canceled", err)
	}
}

// TestFramedFetchThroughConnection serves a Fetch whose records come from a
// segment file through the whole connection writer (sendfile on TCP).
func TestFramedFetchThroughConnection(t *testing.T) {
	fx := newFetchFixture(t, false)
	var released atomic.Int32
	fetch := api{kmsg.Fetch.Int16(), 4, 16, func(b *Broker, r *request) (*reply, error) {
		v := r.header.APIVersion
		if v%2 == 0 { // deferred, like a long poll
			done := make(chan struct{})
			rep := &reply{done: done}
			go func() {
				rep.framed = newFramedFetch(v, fx.resp, fx.records, func() { released.Add(1) })
				close(done)
			}()
			return rep, nil
		}
		return &reply{framed: newFramedFetch(v, fx.resp, fx.records, func() { released.Add(1) })}, nil
	}}
	tb := newTestBroker(t, tableWith(fetch), nil)
	c := tb.dial(t)
	for v := int16(4); v <= 16; v++ {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(v)
		sendRequest(t, c, req, int32(v))
	}
	for v := int16(4); v <= 16; v++ {
		body := readResponseBody(t, c, int32(v), v >= 12)
		if want := fx.kmsgEncoding(v); !bytes.Equal(body, want) {
			t.Fatalf("v%d: body differs from kmsg's encoding (first difference at %d)", v, firstDiff(body, want))
		}
		fx.checkDecodes(t, v, body)
	}
	checkAPIVersions(t, c, 3, 99) // the connection is still in sync
	if r := released.Load(); r != 13 {
		t.Fatalf("%d framed responses released, want 13", r)
	}
}

// TestHalfCloseStillAnswered: a client that sends its requests and then
// closes its write side still gets every response before the broker closes.
func TestHalfCloseStillAnswered(t *testing.T) {
	g := newGate()
	tb := newTestBroker(t, tableWith(api{kmsg.Metadata.Int16(), 0, 12, g.handle}), nil)
	c := tb.dial(t)
	for i := range int32(3) {
		sendRequest(t, c, kmsg.NewPtrMetadataRequest(), i)
	}
	c.(*net.TCPConn).CloseWrite()
	for i := range int32(3) {
		g.release(t, i)
		resp := kmsg.NewPtrMetadataResponse()
		readResponse(t, c, i, resp)
	}
	expectClosed(t, c)
}

func TestServeAfterShutdown(t *testing.T) {
	tb := newTestBroker(t, nil, nil)
	waitFor(t, "Serve to start", func() bool { return tb.Addr() != nil })
	if tb.Addr().String() != tb.addr {
		t.Fatalf("Addr() = %v, want %s", tb.Addr(), tb.addr)
	}
	if err := tb.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-tb.serveErr; err != nil {
		t.Fatalf("first Serve: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Serve(ln); !errors.Is(err, errBrokerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatalf("listener left open")
	}
}
