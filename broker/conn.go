package broker

// One client connection: a reader goroutine and a writer goroutine joined
// by a bounded queue of replies.
//
// Reader (readLoop): reads a frame, decodes it (header.go), and runs its
// handler synchronously, so requests are handled one at a time in arrival
// order; then it queues the reply. The queue holds at most
// cfg.MaxInFlightPerConnection replies; when it is full the reader blocks
// and stops reading, which pushes back on the client through TCP.
//
// Writer (writeLoop): takes replies from the queue in order, waits for a
// deferred reply's done channel, encodes and writes it. Writes go through a
// bufio.Writer flushed whenever the writer is about to wait (queue empty, or
// the next reply not ready), so pipelined responses share syscalls but none
// waits behind a slow one. Fetch bodies built by newFramedFetch have their
// record bytes sent from segment files with sendfile.
//
// Closing: close() (idempotent) cancels the request context, closes the
// socket and the kill channel. It is called on a protocol violation, a
// handler error or panic, a write error, an idle timeout, a forced shutdown,
// and by the writer once it has drained the queue after the reader stopped.
// The reader stops quietly (without close) on a clean EOF between frames
// and on a graceful shutdown: the writer then still writes every queued
// reply. Replies abandoned because of close are still waited for (done) and
// their framed responses released, so segment files are never leaked; that
// relies on handlers closing done eventually — promptly once r.ctx is
// cancelled.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	readBufferBytes  = 32 << 10 // per-connection read buffer: many small pipelined requests per syscall
	writeBufferBytes = 64 << 10 // per-connection write buffer
	maxScratchBytes  = 1 << 20  // encode buffers larger than this are dropped after use, not kept per connection
)

// clientConn is one client connection.
type clientConn struct {
	b      *Broker
	nc     net.Conn
	apis   map[int16]*api
	log    *slog.Logger
	remote string // peer address, for logs
	ip     string // peer IP, for max.connections.per.ip
	// raw is the socket's descriptor access (sendfile, FIONREAD), nil for
	// a connection that is not TCP: then chunks are copied with pread.
	raw syscall.RawConn
	// clientID is the client id of the connection's first request. The
	// reader sets it once, before handling that request, and never changes
	// it, so handlers and the goroutines they start may read it freely.
	clientID string
	idSet    bool // reader-only
	inFrame  bool // reader-only: a frame's size prefix has arrived, its body not yet

	ctx    context.Context // request context: cancelled by close() or the broker stopping
	cancel context.CancelFunc
	queue  chan *pending // reader → writer, in request order; closed by the reader when it stops
	kill   chan struct{} // closed by close()
	once   sync.Once
}

// pending is one queued reply.
type pending struct {
	key, version  int16 // of the request
	respVersion   int16 // version to encode msg at (0 for an unsupported-ApiVersions answer)
	correlationID int32
	rep           *reply
	start         time.Time // when the request's frame had been read
	// frame is the request's bytes (from the frame pools). The request's
	// decoded body aliases it, so it goes back to its pool only once the
	// reply is written or abandoned (release).
	frame []byte
	mem   requestMemory // what frame and body hold of the request budgets
}

// release returns p's request frame to its pool and its memory to the
// request budgets.
func (c *clientConn) release(p *pending) {
	putFrame(p.frame)
	p.frame = nil
	c.b.releaseMemory(&p.mem)
}

func newClientConn(b *Broker, nc net.Conn, apis map[int16]*api) *clientConn {
	inFlight := b.cfg.MaxInFlightPerConnection
	if inFlight <= 0 {
		inFlight = 1
	}
	c := &clientConn{
		b:      b,
		nc:     nc,
		apis:   apis,
		remote: nc.RemoteAddr().String(),
		ip:     remoteIP(nc.RemoteAddr()),
		queue:  make(chan *pending, inFlight),
		kill:   make(chan struct{}),
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		c.raw, _ = tc.SyscallConn() // nil on error
	}
	c.log = b.log.With("remote", c.remote)
	c.ctx, c.cancel = context.WithCancel(b.stopCtx)
	return c
}

// close tears the connection down; safe to call from any goroutine, more
// than once.
func (c *clientConn) close() {
	c.once.Do(func() {
		c.cancel()
		close(c.kill)
		c.nc.Close()
	})
}

func (c *clientConn) killed() bool {
	select {
	case <-c.kill:
		return true
	default:
		return false
	}
}

// stopReading makes a reader blocked in a read return, for a graceful
// shutdown: it then sees the broker stopping and stops quietly.
func (c *clientConn) stopReading() { c.nc.SetReadDeadline(time.Now()) }

// run serves the connection until both goroutines are done. The writer ends
// only after the reader has closed the queue, so when run returns nothing
// of the connection is running.
func (c *clientConn) run() {
	go c.readLoop()
	c.writeLoop()
}

func (c *clientConn) readLoop() {
	defer close(c.queue)
	br := bufio.NewReaderSize(c.nc, readBufferBytes)
	var sizeBuf [4]byte
	idle, frameTimeout := c.b.cfg.ConnectionsMaxIdle, c.b.cfg.RequestReadTimeout
	for {
		// Between frames the idle timeout applies; once a size prefix has
		// arrived, the whole frame must arrive within frameTimeout, so a
		// sender that stops half-way releases what its frame holds.
		if idle > 0 {
			c.nc.SetReadDeadline(time.Now().Add(idle))
		}
		// Checked after arming the deadline: Shutdown sets stopping and then
		// a past deadline, so either we see stopping here or our deadline
		// was overridden and the read below returns at once.
		if c.b.conns.stopping.Load() {
			return
		}
		var mem requestMemory
		c.inFrame = false
		frame, err := readFrame(br, &sizeBuf, c.b.cfg.SocketRequestMaxBytes, frameHooks{
			started: func(int32) {
				c.inFrame = true
				if frameTimeout > 0 && !c.b.conns.stopping.Load() {
					c.nc.SetReadDeadline(time.Now().Add(frameTimeout))
				}
			},
			reserve: func(n int64, growth bool) error { return c.b.reserveFrame(c.ctx, &mem, n, growth) },
			arrived: c.arrived,
		})
		c.b.frameRead(&mem)
		if err != nil {
			c.b.releaseMemory(&mem)
			c.readFailed(err)
			return
		}
		start := time.Now()
		c.b.metrics.read(4 + len(frame))

		d, err := decodeRequest(frame, c.apis, func(n int64) error { return c.b.reserveDecoded(c.ctx, &mem, n) })
		if d.decodeTime > 0 {
			c.b.metrics.decoded(d.header.APIKey, d.decodeTime)
		}
		if err != nil {
			putFrame(frame) // nothing decoded from it is kept
			c.b.releaseMemory(&mem)
			var bad *badInputError
			if !errors.As(err, &bad) {
				c.readFailed(err) // the connection's context ended while waiting for memory
				return
			}
			if bad.kind == badAPIVersions {
				// Normal negotiation (KIP-511): clients open with their
				// newest ApiVersions and retry at the version we answer.
				c.log.Debug("ApiVersions version too new: answering UNSUPPORTED_VERSION", "version", d.header.APIVersion)
				p := &pending{
					key: d.header.APIKey, version: d.header.APIVersion, respVersion: 0,
					correlationID: d.header.CorrelationID, start: start,
					rep: completed(apiVersionsUnsupported(c.apis[d.header.APIKey])),
				}
				if !c.enqueue(p) {
					return
				}
				continue
			}
			c.badRequest(bad)
			c.close()
			return
		}
		if !c.idSet {
			c.idSet = true
			if d.header.ClientID != nil {
				c.clientID = *d.header.ClientID
			}
		}
		key, version := d.header.APIKey, d.header.APIVersion
		c.b.metrics.request(key, version)
		r := &request{ctx: c.ctx, header: d.header, body: d.body, conn: c}
		rep, err := c.handle(d.api, r)
		if err != nil {
			c.b.releaseMemory(&mem)
			c.b.badInputLog.Log(slog.LevelWarn, "handler failed: "+kmsg.NameForKey(key), "closing connection: handler failed",
				"remote", c.remote, "api", kmsg.NameForKey(key), "version", version, "client_id", c.clientID, "err", err)
			c.close()
			return
		}
		p := &pending{key: key, version: version, respVersion: version, correlationID: d.header.CorrelationID, rep: rep, start: start, frame: frame, mem: mem}
		if !c.enqueue(p) {
			return
		}
	}
}

// badRequest logs and counts a protocol violation (the caller closes the
// connection). The log line is rate-limited per kind, so a client looping
// on bad input cannot flood the log.
func (c *clientConn) badRequest(bad *badInputError) {
	c.b.metrics.badInputEvent(bad.kind)
	c.b.badInputLog.Log(slog.LevelWarn, "bad input: "+bad.kind, "closing connection: bad request",
		"remote", c.remote, "kind", bad.kind, "client_id", c.clientID, "err", bad.err)
}

// readFailed handles the end of reading.
func (c *clientConn) readFailed(err error) {
	var bad *badInputError
	switch {
	case errors.Is(err, io.EOF):
		// The client closed its side between requests: answer what is
		// queued, then close (the writer does).
		c.log.Debug("client closed the connection")
	case errors.Is(err, os.ErrDeadlineExceeded) && c.b.conns.stopping.Load():
		// Graceful shutdown: stop reading, let the writer drain.
	case errors.As(err, &bad):
		c.badRequest(bad)
		c.close()
	case errors.Is(err, os.ErrDeadlineExceeded) && c.inFrame:
		// A frame started but did not arrive in time: a slow or stalled
		// sender (slowloris), or a lying size prefix.
		c.badRequest(badInput(badSlowFrame, "request frame not complete within %v (socket.request.read.timeout.ms)", c.b.cfg.RequestReadTimeout))
		c.close()
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Info("closing idle connection", "idle", c.b.cfg.ConnectionsMaxIdle, "client_id", c.clientID)
		c.close()
	case errors.Is(err, net.ErrClosed):
		c.close() // already closed by someone else
	default:
		c.log.Debug("closing connection: read failed", "err", err)
		c.close()
	}
}

// handle runs the handler, turning a panic into an error (logged with the
// stack and counted) so that one bad request closes one connection and
// never the broker.
func (c *clientConn) handle(a *api, r *request) (rep *reply, err error) {
	key, version := r.header.APIKey, r.header.APIVersion
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("handler panicked", "api", kmsg.NameForKey(key), "key", key, "version", version,
				"client_id", c.clientID, "panic", p, "stack", string(debug.Stack()))
			c.b.metrics.requestError(key, version, errKindPanic)
			rep, err = nil, fmt.Errorf("panic in %s v%d handler: %v", kmsg.NameForKey(key), version, p)
		}
	}()
	rep, err = a.handle(c.b, r)
	if err == nil && rep == nil {
		err = errNilReply
	}
	if err != nil {
		c.b.metrics.requestError(key, version, errKindHandler)
	}
	return rep, err
}

// enqueue hands p to the writer, blocking while the queue is full. It
// returns false if the connection was closed meanwhile (p is abandoned).
func (c *clientConn) enqueue(p *pending) bool {
	select {
	case c.queue <- p:
		return true
	case <-c.kill:
		c.abandon(p)
		return false
	}
}

// abandon gives up on writing p: it waits for a deferred reply to complete
// (handlers close done promptly once r.ctx is cancelled, which close()
// does) and releases a framed response's segment files.
func (c *clientConn) abandon(p *pending) {
	if p.rep == nil {
		return
	}
	if p.rep.done != nil {
		<-p.rep.done
	}
	if p.rep.framed != nil {
		p.rep.framed.done()
	}
	c.release(p)
}

func (c *clientConn) writeLoop() {
	defer c.close()
	bw := bufio.NewWriterSize(c.nc, writeBufferBytes)
	raw := c.raw
	var scratch []byte
	flush := func() {
		if bw.Buffered() == 0 || c.killed() {
			return
		}
		c.armWrite()
		if err := bw.Flush(); err != nil {
			c.log.Debug("closing connection: write failed", "err", err)
			c.close()
		}
	}
	for {
		var p *pending
		var ok bool
		select {
		case p, ok = <-c.queue:
		default:
			flush() // nothing else ready: send what is buffered before waiting
			p, ok = <-c.queue
		}
		if !ok {
			flush()
			return
		}
		if c.killed() {
			c.abandon(p)
			continue
		}
		if done := p.rep.done; done != nil {
			select {
			case <-done:
			default:
				flush() // the next reply is not ready: do not hold back earlier ones
				select {
				case <-done:
				case <-c.kill:
					c.abandon(p)
					continue
				}
			}
		}
		err := c.writeReply(bw, raw, &scratch, p)
		c.release(p)
		if err != nil {
			var netErr net.Error
			var sysErr *os.SyscallError
			switch {
			case c.killed():
			case errors.As(err, &netErr), errors.As(err, &sysErr), errors.Is(err, errAbandoned):
				// The client went away or stopped reading: routine.
				c.log.Debug("closing connection: write failed", "api", kmsg.NameForKey(p.key), "err", err)
			default: // a reply we could not encode or a truncated segment: a bug or damage
				c.log.Warn("closing connection: cannot write response", "api", kmsg.NameForKey(p.key), "version", p.version, "err", err)
			}
			c.close()
		}
		if cap(scratch) > maxScratchBytes {
			scratch = nil
		}
	}
}

// armWrite sets the write deadline: a client that stops reading for the
// idle timeout is closed instead of holding its writer forever.
func (c *clientConn) armWrite() {
	if idle := c.b.cfg.ConnectionsMaxIdle; idle > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(idle))
	}
}

var errAbandoned = errors.New("deferred reply completed empty after the connection's context ended")

// writeReply writes one complete reply into bw (sendfile parts go straight
// to the socket after flushing bw). On error the frame may be partly
// written and the connection must be closed. A framed response is released
// in every case.
func (c *clientConn) writeReply(bw *bufio.Writer, raw syscall.RawConn, scratch *[]byte, p *pending) (err error) {
	rep := p.rep
	defer func() {
		if rep.framed != nil {
			rep.framed.done()
		}
		if r := recover(); r != nil {
			c.log.Error("panic while encoding a response", "api", kmsg.NameForKey(p.key), "version", p.version,
				"panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic encoding %s v%d response: %v", kmsg.NameForKey(p.key), p.version, r)
			c.b.metrics.requestError(p.key, p.respVersion, errKindPanic)
			return
		}
		if err != nil {
			c.b.metrics.requestError(p.key, p.respVersion, errKindWrite)
			return
		}
		// respVersion, not version: an ApiVersions request of any version
		// above ours is answered (and counted) as v0, so a client cannot
		// create a metric series per int16.
		c.b.metrics.requestDone(p.key, p.respVersion, time.Since(p.start))
	}()
	switch {
	case rep.none:
		return nil
	case rep.framed != nil:
		f := rep.framed
		if f.key != p.key {
			return fmt.Errorf("framed %s response to a %s request", kmsg.NameForKey(f.key), kmsg.NameForKey(p.key))
		}
		c.armWrite()
		*scratch = appendFramedHeader((*scratch)[:0], p.correlationID, f)
		if _, err := bw.Write(*scratch); err != nil {
			return err
		}
		if err := f.writeBody(bw, raw); err != nil {
			return err
		}
		c.b.metrics.wrote(len(*scratch) + int(f.Len()))
		return nil
	case rep.msg != nil:
		if rep.msg.Key() != p.key {
			return fmt.Errorf("%s response to a %s request", kmsg.NameForKey(rep.msg.Key()), kmsg.NameForKey(p.key))
		}
		rep.msg.SetVersion(p.respVersion)
		*scratch = appendResponse((*scratch)[:0], p.correlationID, rep.msg)
		c.armWrite()
		if _, err := bw.Write(*scratch); err != nil {
			return err
		}
		c.b.metrics.wrote(len(*scratch))
		return nil
	case c.ctx.Err() != nil:
		return errAbandoned
	default:
		return fmt.Errorf("%s v%d handler completed a reply with no response", kmsg.NameForKey(p.key), p.version)
	}
}

// connTracker owns the listener and the set of open connections, for
// Shutdown, and enforces max.connections (slots) and
// max.connections.per.ip. apis is the dispatch table (apiByKey; tests
// substitute their own).
type connTracker struct {
	apis     map[int16]*api
	stopping atomic.Bool    // set once by Shutdown, before readers are interrupted
	wg       sync.WaitGroup // one per connection
	// slots holds a token per open connection (or accept in progress);
	// nil when max.connections is 0 (unlimited).
	slots chan struct{}
	perIP int // max.connections.per.ip; 0 unlimited

	mu struct {
		sync.Mutex
		serving  bool // Serve was called
		shutdown bool // Shutdown was called: no new connections
		conns    map[*clientConn]struct{}
		byIP     map[string]int // open connections per remote IP
	}
}

func newConnTracker(maxConns, maxPerIP int) *connTracker {
	t := &connTracker{apis: apiByKey, perIP: maxPerIP}
	if maxConns > 0 {
		t.slots = make(chan struct{}, maxConns)
	}
	t.mu.conns = make(map[*clientConn]struct{})
	t.mu.byIP = make(map[string]int)
	return t
}

// waitSlot takes a connection slot before an accept, waiting while
// max.connections are open (logged once per wait). False when ctx ends.
func (t *connTracker) waitSlot(ctx context.Context, log *slog.Logger) bool {
	if t.slots == nil {
		return true
	}
	select {
	case t.slots <- struct{}{}:
		return true
	default:
	}
	log.Warn("max.connections reached: not accepting new connections until one closes", "max_connections", cap(t.slots))
	select {
	case t.slots <- struct{}{}:
		log.Info("accepting connections again", "max_connections", cap(t.slots))
		return true
	case <-ctx.Done():
		return false
	}
}

// freeSlot gives back a slot taken by waitSlot.
func (t *connTracker) freeSlot() {
	if t.slots != nil {
		<-t.slots
	}
}

// errPerIPLimit refuses a connection over max.connections.per.ip.
var errPerIPLimit = errors.New("max.connections.per.ip reached")

// add registers c (holding a slot); errBrokerClosed once Shutdown has
// begun, errPerIPLimit when c's address has max.connections.per.ip open.
// On error the caller closes c and frees the slot.
func (t *connTracker) add(c *clientConn) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.shutdown {
		return errBrokerClosed
	}
	if t.perIP > 0 && t.mu.byIP[c.ip] >= t.perIP {
		return errPerIPLimit
	}
	t.mu.conns[c] = struct{}{}
	t.mu.byIP[c.ip]++
	t.wg.Add(1)
	return nil
}

func (t *connTracker) remove(c *clientConn) {
	t.mu.Lock()
	delete(t.mu.conns, c)
	if t.mu.byIP[c.ip]--; t.mu.byIP[c.ip] <= 0 {
		delete(t.mu.byIP, c.ip)
	}
	t.mu.Unlock()
	t.freeSlot()
	t.wg.Done()
}

// snapshot returns the open connections.
func (t *connTracker) snapshot() []*clientConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*clientConn, 0, len(t.mu.conns))
	for c := range t.mu.conns {
		out = append(out, c)
	}
	return out
}

// serveConn starts serving an accepted connection, which holds a slot.
func (b *Broker) serveConn(nc net.Conn) {
	c := newClientConn(b, nc, b.conns.apis)
	if err := b.conns.add(c); err != nil {
		nc.Close()
		b.conns.freeSlot()
		if errors.Is(err, errPerIPLimit) {
			b.metrics.connRejected("max_connections_per_ip")
			b.badInputLog.Log(slog.LevelWarn, "max.connections.per.ip "+c.ip, "closing new connection: max.connections.per.ip reached",
				"remote", c.remote, "max_connections_per_ip", b.conns.perIP)
		}
		return
	}
	b.metrics.connOpened()
	c.log.Debug("connection opened")
	go func() {
		defer b.conns.remove(c)
		defer b.metrics.connClosed()
		c.run()
	}()
}

// remoteIP is the IP of a peer address (the whole address if it has none).
func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
