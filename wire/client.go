package wire

// The client side of the protocol: one connection to a Kafka-protocol
// server that sends each kmsg.Request at exactly the version it carries. A
// broker forwards admin requests (CreateTopics, DeleteTopics, …) to the
// active controller with it: the version the broker's own client chose
// decides what the request means (DeleteTopics v0–5 carry TopicNames, v6
// carries Topics), so it must not be renegotiated, as kgo would.
//
// Goroutines: the caller's, which registers a waiter under a fresh
// correlation id, encodes its frame and hands it to the writer, then
// decodes its own response; the writer (writeLoop), which writes frames in
// the order it takes them, several per syscall when callers pipeline; the
// reader (readLoop), which reads response frames, bounded by
// MaxResponseBytes, and hands each to the waiter its correlation id names.
// The server answers in request order, but matching by correlation id
// needs no such trust.
//
// Breaking: fail (once) records why, closes done and the socket, and fails
// every waiter; closing the socket unblocks the reader and the writer, so
// nothing is left running after Close even if the server never answers. A
// waiter whose caller gave up (its ctx ended) after its frame was handed to
// the writer stays registered until its response arrives, which is then
// dropped: a late answer is not a protocol violation.
//
// Locks: Client.mu guards the waiters, the next correlation id and the
// error; it is never held across I/O.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// defaultMaxResponseBytes bounds a response frame unless
	// ClientConfig.MaxResponseBytes says otherwise: 100 MiB, as
	// socket.request.max.bytes' default bounds requests.
	defaultMaxResponseBytes = 100 << 20
	// clientAPIVersionsVersion is the ApiVersions version Dial asks with
	// first (KIP-511: v3 adds the client software name and version).
	clientAPIVersionsVersion = 3
	// clientReadBufferBytes is the client's socket read buffer: many small
	// pipelined responses per syscall.
	clientReadBufferBytes = 32 << 10
	// maxWriteBatchBytes is the most the writer gathers into one write
	// from callers handing frames over at the same time.
	maxWriteBatchBytes = 1 << 20
	// Client software name and version sent in ApiVersions v3+.
	clientSoftwareName    = "strata"
	clientSoftwareVersion = "dev"
)

// ClientConfig configures Dial.
type ClientConfig struct {
	// Addr is the server's address (host:port), passed to Dial.
	Addr string
	// ClientID is the client id of every request header.
	ClientID string
	// Dial connects to Addr; nil means a net.Dialer's DialContext (TCP).
	// The in-process quorum passes internal/memnet's Listener.Dial.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxResponseBytes bounds a response frame (its size prefix excluded):
	// a larger one closes the client. <= 0 means 100 MiB.
	MaxResponseBytes int32
}

var (
	// ErrUnsupportedVersion is wrapped by the error of a request whose API
	// or version the server does not serve (or kmsg cannot encode); such a
	// request is not sent.
	ErrUnsupportedVersion = errors.New("wire: API version not supported by the server")
	// ErrClientClosed is wrapped by the error of every request in flight
	// when the client breaks (the connection failed, the server broke the
	// protocol, Close was called) and of every later one.
	ErrClientClosed = errors.New("wire: client closed")
)

// errCloseCalled is why a client closed by Close is closed.
var errCloseCalled = errors.New("closed by Close")

// Client is one connection to a Kafka-protocol server. It is safe for
// concurrent use: requests are pipelined on the connection and their
// responses matched to them by correlation id.
type Client struct {
	cfg ClientConfig
	nc  net.Conn
	// versions is the server's version range per API key, from ApiVersions;
	// written by Dial before the client is returned, read-only after.
	versions map[int16]versionRange
	// writes hands frames to the writer. Unbuffered: a frame the writer has
	// taken is sent (unless the client breaks), one it has not is not, so a
	// caller whose ctx ends while waiting to hand over sends nothing.
	writes chan []byte
	done   chan struct{}  // closed by fail
	loops  sync.WaitGroup // the reader and the writer

	mu struct {
		sync.Mutex
		err      error // why the client broke; nil while usable
		nextCorr int32
		waiters  map[int32]chan clientResult // by correlation id; nil once broken
	}
}

type versionRange struct{ min, max int16 }

// clientResult is what a waiter gets: a response body (after the
// correlation id) or why there is none.
type clientResult struct {
	body []byte
	err  error
}

// Dial connects to cfg.Addr and learns the server's API versions with
// ApiVersions: v3 first and, if the server answers UNSUPPORTED_VERSION
// (KIP-511: in v0, with its own ApiVersions range), once more at the
// highest version both sides speak (v0 if it names none). ctx bounds the
// connection and that exchange; it does not bound the client's life.
func Dial(ctx context.Context, cfg ClientConfig) (*Client, error) {
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = defaultMaxResponseBytes
	}
	dial := cfg.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	nc, err := dial(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("wire: dialing %s: %w", cfg.Addr, err)
	}
	c := newClient(nc, cfg)
	if err := c.handshake(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("wire: ApiVersions with %s: %w", cfg.Addr, err)
	}
	return c, nil
}

// newClient starts the reader and the writer on nc; cfg.MaxResponseBytes
// must be set. The client knows no versions until handshake.
func newClient(nc net.Conn, cfg ClientConfig) *Client {
	c := &Client{cfg: cfg, nc: nc, writes: make(chan []byte), done: make(chan struct{})}
	c.mu.waiters = make(map[int32]chan clientResult)
	c.loops.Add(2)
	go c.readLoop()
	go c.writeLoop()
	return c
}

// handshake runs the ApiVersions exchange (see Dial) and records the
// server's ranges.
func (c *Client) handshake(ctx context.Context) error {
	version := int16(clientAPIVersionsVersion)
	for retried := false; ; retried = true {
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(version)
		req.ClientSoftwareName, req.ClientSoftwareVersion = clientSoftwareName, clientSoftwareVersion
		raw, err := c.send(ctx, req)
		if err != nil {
			return err
		}
		resp := raw.(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode == kerr.UnsupportedVersion.Code && !retried {
			next := int16(0)
			for _, k := range resp.ApiKeys {
				if k.ApiKey == kmsg.ApiVersions.Int16() {
					next = max(0, min(k.MaxVersion, version-1))
				}
			}
			version = next
			continue
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return fmt.Errorf("v%d: %w", version, err)
		}
		c.versions = make(map[int16]versionRange, len(resp.ApiKeys))
		for _, k := range resp.ApiKeys {
			c.versions[k.ApiKey] = versionRange{k.MinVersion, k.MaxVersion}
		}
		return nil
	}
}

// Versions returns the server's version range for an API key, as its
// ApiVersions response advertised it; ok is false for a key it does not
// serve.
func (c *Client) Versions(key int16) (minVersion, maxVersion int16, ok bool) {
	r, ok := c.versions[key]
	return r.min, r.max, ok
}

// Request sends req at exactly req.GetVersion() and returns the response,
// decoded at the same version (its type is req.ResponseKind()'s). The
// response is the caller's: its byte fields alias a frame read for it
// alone.
//
// Errors:
//   - a key or version the server does not serve (or beyond what kmsg
//     encodes): an error wrapping ErrUnsupportedVersion, naming the API,
//     the version and the server's range; nothing is sent;
//   - ctx ending first: ctx.Err(), at once; if the request was sent, its
//     response is dropped when it comes;
//   - a response that does not decode: that error, for this request only;
//   - the client breaking (connection failure, protocol violation by the
//     server, Close) before the response: an error wrapping
//     ErrClientClosed, as for every later request.
//
// A Produce request with Acks 0 gets no response from a Kafka server:
// Request returns (nil, nil) once the writer has taken its frame.
//
// Request may be called concurrently; requests are pipelined.
func (c *Client) Request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	if err := c.checkVersion(req); err != nil {
		return nil, err
	}
	return c.send(ctx, req)
}

// checkVersion reports why req cannot be sent at its version, or nil.
func (c *Client) checkVersion(req kmsg.Request) error {
	key, v := req.Key(), req.GetVersion()
	name := kmsg.NameForKey(key)
	r, ok := c.versions[key]
	switch {
	case !ok:
		return fmt.Errorf("%w: %s (key %d) v%d: the server does not serve %s", ErrUnsupportedVersion, name, key, v, name)
	case v < r.min || v > r.max:
		return fmt.Errorf("%w: %s v%d: the server serves v%d–v%d", ErrUnsupportedVersion, name, v, r.min, r.max)
	case v < 0 || v > req.MaxVersion():
		return fmt.Errorf("%w: %s v%d: kmsg encodes v0–v%d", ErrUnsupportedVersion, name, v, req.MaxVersion())
	}
	return nil
}

// send sends req at its version, without checking it against the
// server's ranges (Dial's ApiVersions precedes them), and waits for the
// response as Request describes.
func (c *Client) send(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, isProduce := req.(*kmsg.ProduceRequest)
	wantResponse := !isProduce || p.Acks != 0
	corr, ch, err := c.register(wantResponse)
	if err != nil {
		return nil, err
	}
	frame := appendRequestFrame(nil, c.cfg.ClientID, corr, req)
	select {
	case c.writes <- frame:
	case <-ctx.Done():
		c.unregister(corr) // never sent: no response will come
		return nil, ctx.Err()
	case <-c.done:
		return nil, c.Err()
	}
	if !wantResponse {
		return nil, nil
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return decodeResponse(req, r.body)
	case <-ctx.Done():
		return nil, ctx.Err() // the reader drops the response when it comes
	}
}

// register allocates a correlation id and, if wantResponse, a waiter for
// its response. The error wraps ErrClientClosed once the client is broken.
func (c *Client) register(wantResponse bool) (int32, chan clientResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.err != nil {
		return 0, nil, c.mu.err
	}
	for {
		corr := c.mu.nextCorr
		c.mu.nextCorr++ // wraps around after 2^32 requests
		if _, used := c.mu.waiters[corr]; used {
			continue // an abandoned request from 2^32 ago still waits for its answer
		}
		if !wantResponse {
			return corr, nil, nil
		}
		ch := make(chan clientResult, 1) // one send ever, by the reader or fail: neither blocks
		c.mu.waiters[corr] = ch
		return corr, ch, nil
	}
}

func (c *Client) unregister(corr int32) {
	c.mu.Lock()
	delete(c.mu.waiters, corr)
	c.mu.Unlock()
}

// Err returns nil while the client is usable, and why it broke once it is
// not (an error wrapping ErrClientClosed).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.err
}

// Close closes the connection, fails the requests in flight with an error
// wrapping ErrClientClosed, and returns once the client's goroutines have
// ended. It may be called more than once, and on a broken client.
func (c *Client) Close() error {
	c.fail(errCloseCalled)
	c.loops.Wait()
	return nil
}

// fail breaks the client for cause, once: later calls do nothing.
func (c *Client) fail(cause error) {
	c.mu.Lock()
	if c.mu.err != nil {
		c.mu.Unlock()
		return
	}
	err := fmt.Errorf("%w: %s: %w", ErrClientClosed, c.cfg.Addr, cause)
	c.mu.err = err
	waiters := c.mu.waiters
	c.mu.waiters = nil
	c.mu.Unlock()
	close(c.done)
	c.nc.Close()
	for _, ch := range waiters {
		ch <- clientResult{err: err}
	}
}

// writeLoop writes the frames callers hand over until the client breaks.
func (c *Client) writeLoop() {
	defer c.loops.Done()
	var batch net.Buffers
	for {
		select {
		case f := <-c.writes:
			batch = append(batch[:0], f)
		case <-c.done:
			return
		}
		// Gather the frames other callers are handing over right now, so
		// that pipelined requests share a syscall (writev on TCP).
		size := len(batch[0])
	gather:
		for size < maxWriteBatchBytes {
			select {
			case f := <-c.writes:
				batch = append(batch, f)
				size += len(f)
			default:
				break gather
			}
		}
		bufs := batch // WriteTo consumes its receiver
		_, err := bufs.WriteTo(c.nc)
		clear(batch) // drop the frames
		if err != nil {
			c.fail(fmt.Errorf("writing requests: %w", err))
			return
		}
	}
}

// readLoop reads response frames and hands each to its waiter until the
// client breaks.
func (c *Client) readLoop() {
	defer c.loops.Done()
	br := bufio.NewReaderSize(c.nc, clientReadBufferBytes)
	for {
		frame, err := readResponseFrame(br, c.cfg.MaxResponseBytes)
		if err != nil {
			c.fail(err)
			return
		}
		corr := int32(binary.BigEndian.Uint32(frame))
		c.mu.Lock()
		ch, ok := c.mu.waiters[corr]
		delete(c.mu.waiters, corr)
		c.mu.Unlock()
		if !ok {
			// Nothing was sent under that id (or it is no longer awaited
			// because the client broke, and fail does nothing then).
			c.fail(fmt.Errorf("response with unknown correlation id %d", corr))
			return
		}
		ch <- clientResult{body: frame[4:]}
	}
}

// readResponseFrame reads one response frame from r: a size prefix, then
// that many bytes, at least the correlation id and at most maxBytes. As for
// request frames (readFrame), memory follows the bytes that arrive: the
// first step takes at most firstFrameStep, and the buffer doubles only
// once full, so a lying size prefix costs at most twice what was sent.
// The frame is freshly allocated: the caller owns it.
func readResponseFrame(r io.Reader, maxBytes int32) ([]byte, error) {
	var sizeBuf [4]byte
	if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
		return nil, fmt.Errorf("reading a response: %w", err)
	}
	size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
	switch {
	case size < 4:
		return nil, fmt.Errorf("%d-byte response frame, shorter than a correlation id", size)
	case size > maxBytes:
		return nil, fmt.Errorf("%d-byte response frame exceeds MaxResponseBytes (%d)", size, maxBytes)
	}
	frame := make([]byte, min(int(size), firstFrameStep))
	n := 0
	for {
		m, err := io.ReadFull(r, frame[n:])
		n += m
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("%d-byte response frame cut at %d bytes: %w", size, n, err)
		}
		if n == int(size) {
			return frame, nil
		}
		grown := make([]byte, min(int(size), 2*len(frame)))
		copy(grown, frame)
		frame = grown
	}
}

// appendRequestFrame appends req's whole frame to dst: size prefix,
// request header v1 (v2, with an empty tag section, for flexible
// versions) as decodeRequest reads it, and the body at req's version.
func appendRequestFrame(dst []byte, clientID string, corr int32, req kmsg.Request) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = kbin.AppendInt16(dst, req.Key())
	dst = kbin.AppendInt16(dst, req.GetVersion())
	dst = kbin.AppendInt32(dst, corr)
	dst = kbin.AppendString(dst, clientID) // header v1 and v2 both carry a non-compact client id
	if req.IsFlexible() {
		dst = append(dst, 0) // no tagged fields
	}
	dst = req.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// decodeResponse decodes body (a response frame after its correlation id)
// as the response to req: response header v1's tag section first for
// flexible versions but ApiVersions (responseFlexibleHeader), then the
// body at req's version — except an ApiVersions response carrying
// UNSUPPORTED_VERSION, which a server sends in v0 whatever was asked
// (KIP-511; its error code leads every version).
func decodeResponse(req kmsg.Request, body []byte) (kmsg.Response, error) {
	key := req.Key()
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if responseFlexibleHeader(key, resp.IsFlexible()) {
		b := kbin.Reader{Src: body}
		n := b.Uvarint()
		for i := uint32(0); i < n && b.Ok(); i++ {
			b.Uvarint() // tag
			b.Span(int(b.Uvarint()))
		}
		if !b.Ok() {
			return nil, fmt.Errorf("wire: %s v%d response: truncated response header", kmsg.NameForKey(key), resp.GetVersion())
		}
		body = b.Src
	}
	if key == kmsg.ApiVersions.Int16() && len(body) >= 2 && int16(binary.BigEndian.Uint16(body)) == kerr.UnsupportedVersion.Code {
		resp.SetVersion(0)
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("wire: decoding %s v%d response: %w", kmsg.NameForKey(key), resp.GetVersion(), err)
	}
	return resp, nil
}
