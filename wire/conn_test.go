package wire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/wire/shape"
	"github.com/stratalog/strata/wire/wiretest"
)

// testServer is a Server serving a test table on 127.0.0.1:0.
type testServer struct {
	*Server
	addr     string
	serveErr chan error
}

// testConfig is the configuration of test servers: small limits, logs
// discarded (shown with -v).
func testConfig() Config {
	cfg := Config{
		Name:                     "broker",
		SocketRequestMaxBytes:    1 << 20,
		ConnectionsMaxIdle:       time.Minute,
		MaxInFlightPerConnection: 8,
		Logger:                   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

// newTestServer serves table (nil: testAPIs()) with testConfig changed by
// mutate; it is shut down when the test ends.
func newTestServer(t *testing.T, table []API, mutate func(*Config)) *testServer {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	if table == nil {
		table = testAPIs()
	}
	s, err := NewServer(cfg, table)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, addr: ln.Addr().String(), serveErr: make(chan error, 1)}
	go func() { ts.serveErr <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return ts
}

func (ts *testServer) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testRanges narrows kmsg's version ranges where tests need bounds to
// cross: as in the broker, Produce from v3 and Fetch from v4 (magic v2
// batches), and Metadata up to v12.
var testRanges = map[int16][2]int16{
	kmsg.Produce.Int16():  {3, 11},
	kmsg.Fetch.Int16():    {4, 16},
	kmsg.Metadata.Int16(): {0, 12},
}

// testAPIs is a table of every API wire/shape has a schema for (but
// ApiVersions, which the server serves itself), at every version kmsg
// knows but for testRanges, each answered with an empty response of its
// kind; extra entries are added or replace the entry of their key.
func testAPIs(extra ...API) []API {
	var out []API
	for key := int16(0); key <= kmsg.MaxKey; key++ {
		req := kmsg.RequestForKey(key)
		if req == nil || !shape.Known(key) || key == kmsg.ApiVersions.Int16() {
			continue
		}
		a := API{Key: key, MinVersion: 0, MaxVersion: req.MaxVersion(), Handle: echo}
		if r, ok := testRanges[key]; ok {
			a.MinVersion, a.MaxVersion = r[0], r[1]
		}
		if i := slices.IndexFunc(extra, func(e API) bool { return e.Key == key }); i >= 0 {
			a = extra[i]
		}
		out = append(out, a)
	}
	return out
}

// echo answers a request with an empty response of its kind.
func echo(r *Request) (*Reply, error) { return Completed(r.Body.ResponseKind()), nil }

// testTable is the dispatch table a server builds from testAPIs, for
// decodeRequest.
func testTable(t testing.TB) map[int16]*API {
	t.Helper()
	s, err := NewServer(Config{Name: "test"}, testAPIs())
	if err != nil {
		t.Fatal(err)
	}
	return s.apis
}

var (
	sendRequest        = wiretest.Send
	readResponse       = wiretest.ReadResponse
	readResponseBody   = wiretest.ReadResponseBody
	expectClosed       = wiretest.ExpectClosed
	apiVersionsRequest = wiretest.APIVersionsRequest
)

// checkAPIVersions checks one ApiVersions exchange on c works and lists
// the server's whole table.
func (ts *testServer) checkAPIVersions(t *testing.T, c net.Conn, version int16, corr int32) {
	t.Helper()
	resp := wiretest.APIVersions(t, c, version, corr)
	if len(resp.ApiKeys) != len(ts.apis) {
		t.Fatalf("ApiVersions v%d: %d keys, want %d", version, len(resp.ApiKeys), len(ts.apis))
	}
}

func TestPipelinedAPIVersions(t *testing.T) {
	ts := newTestServer(t, nil, func(c *Config) { c.MaxInFlightPerConnection = 4 })
	c := ts.dial(t)
	const n = 50
	var out []byte
	for i := range int32(n) {
		out = append(out, wiretest.Frame(apiVersionsRequest(int16(i%5)), 1000+i)...)
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
		if resp.ErrorCode != 0 || len(resp.ApiKeys) != len(ts.apis) {
			t.Fatalf("response %d (v%d): error %d, %d keys", i, v, resp.ErrorCode, len(resp.ApiKeys))
		}
		for _, k := range resp.ApiKeys {
			a := ts.apis[k.ApiKey]
			if a == nil || a.MinVersion != k.MinVersion || a.MaxVersion != k.MaxVersion {
				t.Fatalf("advertised %+v does not match the apis table", k)
			}
		}
	}
}

func TestAPIVersionsTooNew(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	c := ts.dial(t)
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
	ts.checkAPIVersions(t, c, 4, 8)
}

func TestUnknownAPIKeyClosesConnection(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	other := ts.dial(t)
	ts.checkAPIVersions(t, other, 3, 1)

	c := ts.dial(t)
	sendRequest(t, c, kmsg.NewPtrAddPartitionsToTxnRequest(), 1) // key 24: not served
	expectClosed(t, c)

	c = ts.dial(t)
	raw := []byte{0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff} // key 32512
	c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(raw))), raw...))
	expectClosed(t, c)

	c = ts.dial(t)
	p := kmsg.NewPtrProduceRequest()
	p.SetVersion(2) // below our minimum (magic v2 needs Produce v3)
	sendRequest(t, c, p, 1)
	expectClosed(t, c)

	ts.checkAPIVersions(t, other, 3, 2)
}

func TestBadFramesCloseOnlyTheirConnection(t *testing.T) {
	ts := newTestServer(t, nil, func(c *Config) { c.SocketRequestMaxBytes = 1 << 16 })
	other := ts.dial(t)
	ts.checkAPIVersions(t, other, 0, 1)

	sizes := []uint32{1<<16 + 1, 1 << 31, 0xffffffff /* -1 */, 0}
	for _, size := range sizes {
		c := ts.dial(t)
		// Only the size prefix: the server must refuse before reading (or
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
		c := ts.dial(t)
		if _, err := c.Write(g); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			c.(*net.TCPConn).CloseWrite() // truncated frame: EOF inside it
		}
		expectClosed(t, c)
	}
	ts.checkAPIVersions(t, other, 4, 2)
}

func TestIdleConnectionClosed(t *testing.T) {
	ts := newTestServer(t, nil, func(c *Config) { c.ConnectionsMaxIdle = 50 * time.Millisecond })
	c := ts.dial(t)
	ts.checkAPIVersions(t, c, 1, 1)
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

func (rc *reverseCompleter) handle(r *Request) (*Reply, error) {
	req := r.Body.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	i := rc.n
	rc.n++
	resp.ThrottleMillis = int32(i)
	done := make(chan struct{})
	rep := &Reply{Done: done, Msg: resp}
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
	ts := newTestServer(t, testAPIs(API{kmsg.Metadata.Int16(), 0, 12, rc.handle}), func(c *Config) { c.MaxInFlightPerConnection = n })
	c := ts.dial(t)
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

func (g *gate) handle(r *Request) (*Reply, error) {
	corr := r.Header.CorrelationID
	if g.none[corr] {
		g.handled.Add(1)
		return &Reply{None: true}, nil
	}
	release := make(chan struct{})
	g.mu.Lock()
	g.waiting[corr] = release
	g.mu.Unlock()
	g.handled.Add(1)
	done := make(chan struct{})
	rep := &Reply{Done: done}
	go func() {
		select {
		case <-release:
		case <-r.Ctx.Done():
		}
		rep.Msg = r.Body.ResponseKind()
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
	ts := newTestServer(t, testAPIs(API{kmsg.Metadata.Int16(), 0, 12, g.handle}), func(c *Config) { c.MaxInFlightPerConnection = inFlight })
	c := ts.dial(t)
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
	ts := newTestServer(t, testAPIs(API{kmsg.Metadata.Int16(), 0, 12, g.handle}), nil)
	c := ts.dial(t)
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
	panicky := API{kmsg.Metadata.Int16(), 0, 12, func(r *Request) (*Reply, error) {
		topics := r.Body.(*kmsg.MetadataRequest).Topics
		return Completed(r.Body.ResponseKind()), errors.New(*topics[len(topics)+1].Topic) // index out of range: a runtime panic
	}}
	failing := API{kmsg.ListOffsets.Int16(), 1, 8, func(r *Request) (*Reply, error) {
		return nil, errors.New("protocol violation")
	}}
	nilReply := API{kmsg.DescribeCluster.Int16(), 0, 1, func(r *Request) (*Reply, error) { return nil, nil }}
	ts := newTestServer(t, testAPIs(panicky, failing, nilReply), nil)
	other := ts.dial(t)
	ts.checkAPIVersions(t, other, 2, 1)
	listOffsets := kmsg.NewPtrListOffsetsRequest()
	listOffsets.SetVersion(1)
	for _, req := range []kmsg.Request{kmsg.NewPtrMetadataRequest(), listOffsets, kmsg.NewPtrDescribeClusterRequest()} {
		c := ts.dial(t)
		sendRequest(t, c, req, 1)
		expectClosed(t, c)
	}
	ts.checkAPIVersions(t, other, 2, 2)
}

func TestShutdownFinishesInFlight(t *testing.T) {
	// A long-poll-like handler: it answers when released or when its
	// context is cancelled (which Shutdown does).
	g := newGate()
	ts := newTestServer(t, testAPIs(API{kmsg.Metadata.Int16(), 0, 12, g.handle}), nil)
	c := ts.dial(t)
	for i := range int32(3) {
		sendRequest(t, c, kmsg.NewPtrMetadataRequest(), i)
	}
	waitFor(t, "requests to be handled", func() bool { return g.handled.Load() == 3 })

	errc := make(chan error, 1)
	go func() { errc <- ts.Shutdown(context.Background()) }()
	for i := range int32(3) {
		resp := kmsg.NewPtrMetadataResponse()
		resp.SetVersion(kmsg.NewPtrMetadataRequest().GetVersion())
		readResponse(t, c, i, resp)
	}
	expectClosed(t, c)
	if err := <-errc; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-ts.serveErr; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Fatalf("still accepting after Shutdown")
	}
	if err := ts.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestShutdownForcedByContext(t *testing.T) {
	// This handler ignores its context until the test lets it go: the
	// connection must be cut when Shutdown's context ends.
	hold := make(chan struct{})
	var handled atomic.Int32
	stuck := API{kmsg.Metadata.Int16(), 0, 12, func(r *Request) (*Reply, error) {
		handled.Add(1)
		done := make(chan struct{})
		rep := &Reply{Done: done}
		go func() { <-hold; rep.Msg = r.Body.ResponseKind(); close(done) }()
		return rep, nil
	}}
	ts := newTestServer(t, testAPIs(stuck), nil)
	c := ts.dial(t)
	sendRequest(t, c, kmsg.NewPtrMetadataRequest(), 1)
	waitFor(t, "the request to be handled", func() bool { return handled.Load() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- ts.Shutdown(ctx) }()
	cancel()
	expectClosed(t, c)
	close(hold) // the handler completes; its abandoned reply is released
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v, want context.Canceled", err)
	}
}

// memFramed is a Framed body held in memory. It counts the writes that got
// the socket (raw) and its releases.
type memFramed struct {
	key      int16
	flexible bool
	body     []byte
	sawRaw   *atomic.Int32
	released *atomic.Int32
}

func (f *memFramed) Key() int16     { return f.key }
func (f *memFramed) Flexible() bool { return f.flexible }
func (f *memFramed) Len() int64     { return int64(len(f.body)) }
func (f *memFramed) Release()       { f.released.Add(1) }

func (f *memFramed) WriteBody(w *bufio.Writer, raw syscall.RawConn) error {
	if raw != nil {
		f.sawRaw.Add(1)
	}
	_, err := w.Write(f.body)
	return err
}

// TestFramedRepliesThroughConnection serves Framed bodies, complete and
// deferred, flexible and not, through the whole connection writer: each is
// framed like kmsg's encoding of the same response, given the socket, and
// released exactly once, also when it answers the wrong request or is
// abandoned.
func TestFramedRepliesThroughConnection(t *testing.T) {
	var sawRaw, released atomic.Int32
	hold := make(chan struct{})
	framed := func(key, version int16) *memFramed {
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(version)
		resp.SessionID = int32(version)
		return &memFramed{key: key, flexible: resp.IsFlexible(), body: resp.AppendTo(nil), sawRaw: &sawRaw, released: &released}
	}
	fetch := API{kmsg.Fetch.Int16(), 4, 16, func(r *Request) (*Reply, error) {
		v := r.Header.APIVersion
		switch {
		case r.Header.CorrelationID == 100: // answers as another API
			return &Reply{Framed: framed(kmsg.Metadata.Int16(), v)}, nil
		case r.Header.CorrelationID == 200: // completes only once the test lets it
			done := make(chan struct{})
			rep := &Reply{Done: done}
			go func() { <-hold; rep.Framed = framed(kmsg.Fetch.Int16(), v); close(done) }()
			return rep, nil
		case v%2 == 0: // deferred, like a long poll
			done := make(chan struct{})
			rep := &Reply{Done: done}
			go func() { rep.Framed = framed(kmsg.Fetch.Int16(), v); close(done) }()
			return rep, nil
		}
		return &Reply{Framed: framed(kmsg.Fetch.Int16(), v)}, nil
	}}
	ts := newTestServer(t, testAPIs(fetch), nil)
	c := ts.dial(t)
	for v := int16(4); v <= 16; v++ {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(v)
		sendRequest(t, c, req, int32(v))
	}
	for v := int16(4); v <= 16; v++ {
		body := readResponseBody(t, c, int32(v), v >= 12)
		if want := framed(kmsg.Fetch.Int16(), v).body; !bytes.Equal(body, want) {
			t.Fatalf("v%d: body % x, want % x", v, body, want)
		}
		back := kmsg.NewPtrFetchResponse()
		back.SetVersion(v)
		if err := back.ReadFrom(body); err != nil || back.SessionID != int32(v) && v >= 7 {
			t.Fatalf("v%d: body does not decode (%v) to what was framed", v, err)
		}
	}
	ts.checkAPIVersions(t, c, 3, 99) // the connection is still in sync
	if r, s := released.Load(), sawRaw.Load(); r != 13 || s != 13 {
		t.Fatalf("%d framed bodies released and %d given the socket, want 13 each", r, s)
	}

	fetchReq := kmsg.NewPtrFetchRequest()
	fetchReq.SetVersion(12)
	wrong := ts.dial(t)
	sendRequest(t, wrong, fetchReq, 100)
	expectClosed(t, wrong)
	waitFor(t, "the wrong-key body to be released", func() bool { return released.Load() == 14 })

	abandoned := ts.dial(t)
	sendRequest(t, abandoned, fetchReq, 200)
	abandoned.Write([]byte{0xff, 0xff, 0xff, 0xff}) // a bad frame: the connection is closed with the reply pending
	expectClosed(t, abandoned)
	close(hold)
	waitFor(t, "the abandoned body to be released", func() bool { return released.Load() == 15 })
	time.Sleep(20 * time.Millisecond) // a second release would show now
	if r := released.Load(); r != 15 {
		t.Fatalf("%d releases, want 15: a body was released twice", r)
	}
}

// TestHalfCloseStillAnswered: a client that sends its requests and then
// closes its write side still gets every response before the server closes.
func TestHalfCloseStillAnswered(t *testing.T) {
	g := newGate()
	ts := newTestServer(t, testAPIs(API{kmsg.Metadata.Int16(), 0, 12, g.handle}), nil)
	c := ts.dial(t)
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
	ts := newTestServer(t, nil, nil)
	waitFor(t, "Serve to start", func() bool { return ts.Addr() != nil })
	if ts.Addr().String() != ts.addr {
		t.Fatalf("Addr() = %v, want %s", ts.Addr(), ts.addr)
	}
	if err := ts.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-ts.serveErr; err != nil {
		t.Fatalf("first Serve: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatalf("listener left open")
	}
}
