package wire

// One client connection: a reader goroutine and a writer goroutine joined
// by a bounded queue of replies. doc.go states the contracts; this is how
// they are kept.
//
// Reader (readLoop): reads a frame, decodes it (header.go), and runs its
// handler synchronously, so requests are handled one at a time in arrival
// order; then it queues the reply. The queue holds at most
// Config.MaxInFlightPerConnection replies; when it is full the reader
// blocks and stops reading, which pushes back on the client through TCP.
//
// Writer (writeLoop): takes replies from the queue in order, waits for a
// deferred reply's Done channel, encodes and writes it. Writes go through a
// bufio.Writer flushed whenever the writer is about to wait (queue empty, or
// the next reply not ready), so pipelined responses share syscalls but none
// waits behind a slow one. A Framed body writes itself (the broker's Fetch
// sends record bytes from segment files with sendfile).
//
// Closing: close() (idempotent) cancels the request context, closes the
// socket and the kill channel. It is called on a protocol violation, a
// handler error or panic, a write error, an idle timeout, a forced shutdown,
// and by the writer once it has drained the queue after the reader stopped.
// The reader stops quietly (without close) on a clean EOF between frames
// and on a graceful shutdown: the writer then still writes every queued
// reply. Replies abandoned because of close are still waited for (Done) and
// their Framed bodies released, so nothing they hold (segment files) is
// leaked; that relies on handlers closing Done eventually — promptly once
// the request's Ctx is cancelled. Once both goroutines have ended, the
// functions registered with OnClose run.

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
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	readBufferBytes  = 32 << 10 // per-connection read buffer: many small pipelined requests per syscall
	writeBufferBytes = 64 << 10 // per-connection write buffer
	maxScratchBytes  = 1 << 20  // encode buffers larger than this are dropped after use, not kept per connection
)

// Conn is one client connection, as handlers see it. Its methods are safe
// for concurrent use.
type Conn struct {
	s      *Server
	nc     net.Conn
	log    *slog.Logger
	remote string // peer address, for logs
	ip     string // peer IP, for max.connections.per.ip
	// raw is the socket's descriptor access (sendfile, FIONREAD), nil for
	// a connection that is not TCP: then a Framed body copies instead.
	raw syscall.RawConn
	// clientID is the client id of the connection's first request. The
	// reader sets it once, before handling that request, and never changes
	// it, so handlers and the goroutines they start may read it freely.
	clientID string
	idSet    bool // reader-only
	inFrame  bool // reader-only: a frame's size prefix has arrived, its body not yet

	ctx    context.Context // request context: cancelled by close() or the server stopping
	cancel context.CancelFunc
	queue  chan *pending // reader → writer, in request order; closed by the reader when it stops
	kill   chan struct{} // closed by close()
	once   sync.Once

	mu struct {
		sync.Mutex
		ended   bool     // reader and writer are done; OnClose functions have been taken
		onClose []func() // registered by OnClose, run once ended
	}
}

// ClientID is the client id of the connection's first request ("" for a
// null one, or before the first request).
func (c *Conn) ClientID() string { return c.clientID }

// Remote is the peer's address (host:port).
func (c *Conn) Remote() string { return c.remote }

// IP is the peer's IP address, as max.connections.per.ip counts it.
func (c *Conn) IP() string { return c.ip }

// Host renders the peer as Kafka shows clients (DescribeGroups' client
// host): "/<ip>".
func (c *Conn) Host() string {
	host, _, err := net.SplitHostPort(c.remote)
	if err != nil {
		return "/" + c.remote
	}
	return "/" + host
}

// RawConn is the socket's descriptor access, for a Framed body that writes
// to the socket itself (sendfile); nil when the connection is not TCP.
func (c *Conn) RawConn() syscall.RawConn { return c.raw }

// BadInput counts input the handler refuses as hostile or broken without
// closing the connection (a produced batch with a bad CRC, say) in
// strata.<name>.bad_input{kind}, and logs msg with args, the peer and the
// client id at WARN, at most once per kind every badInputLogEvery (the next
// line says how many were left out), so a client looping on bad input
// cannot flood the log.
func (c *Conn) BadInput(kind, msg string, args ...any) {
	c.s.metrics.badInputEvent(kind)
	c.s.badInputLog.Log(slog.LevelWarn, "bad input: "+kind, msg,
		append([]any{"remote", c.remote, "kind", kind, "client_id", c.clientID}, args...)...)
}

// OnClose registers fn to run once the connection has fully ended: its
// reader and writer are done and every reply has been written or
// abandoned. Functions run in registration order on the connection's own
// goroutine, before Shutdown counts the connection as closed, so fn must
// not wait for long. If the connection has already ended, fn runs at once
// in the caller's goroutine.
func (c *Conn) OnClose(fn func()) {
	c.mu.Lock()
	if !c.mu.ended {
		c.mu.onClose = append(c.mu.onClose, fn)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	fn()
}

// ended runs the OnClose functions; called once, after run returns.
func (c *Conn) ended() {
	c.mu.Lock()
	c.mu.ended = true
	fns := c.mu.onClose
	c.mu.onClose = nil
	c.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// pending is one queued reply.
type pending struct {
	key, version  int16 // of the request
	respVersion   int16 // version to encode Msg at (0 for an unsupported-ApiVersions answer)
	correlationID int32
	rep           *Reply
	start         time.Time // when the request's frame had been read
	// frame is the request's bytes (from the frame pools). The request's
	// decoded body aliases it, so it goes back to its pool only once the
	// reply is written or abandoned (release).
	frame []byte
	mem   requestMemory // what frame and body hold of the request budgets
}

// release returns p's request frame to its pool and its memory to the
// request budgets.
func (c *Conn) release(p *pending) {
	putFrame(p.frame)
	p.frame = nil
	c.s.releaseMemory(&p.mem)
}

func newConn(s *Server, nc net.Conn) *Conn {
	inFlight := s.cfg.MaxInFlightPerConnection
	if inFlight <= 0 {
		inFlight = 1
	}
	c := &Conn{
		s:      s,
		nc:     nc,
		remote: nc.RemoteAddr().String(),
		ip:     remoteIP(nc.RemoteAddr()),
		queue:  make(chan *pending, inFlight),
		kill:   make(chan struct{}),
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		c.raw, _ = tc.SyscallConn() // nil on error
	}
	c.log = s.log.With("remote", c.remote)
	c.ctx, c.cancel = context.WithCancel(s.stopCtx)
	return c
}

// close tears the connection down; safe to call from any goroutine, more
// than once.
func (c *Conn) close() {
	c.once.Do(func() {
		c.cancel()
		close(c.kill)
		c.nc.Close()
	})
}

func (c *Conn) killed() bool {
	select {
	case <-c.kill:
		return true
	default:
		return false
	}
}

// stopReading makes a reader blocked in a read return, for a graceful
// shutdown: it then sees the server stopping and stops quietly.
func (c *Conn) stopReading() { c.nc.SetReadDeadline(time.Now()) }

// run serves the connection until both goroutines are done. The writer ends
// only after the reader has closed the queue, so when run returns nothing
// of the connection is running.
func (c *Conn) run() {
	go c.readLoop()
	c.writeLoop()
}

func (c *Conn) readLoop() {
	defer close(c.queue)
	br := bufio.NewReaderSize(c.nc, readBufferBytes)
	var sizeBuf [4]byte
	idle, frameTimeout := c.s.cfg.ConnectionsMaxIdle, c.s.cfg.RequestReadTimeout
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
		if c.s.stopping.Load() {
			return
		}
		var mem requestMemory
		c.inFrame = false
		frame, err := readFrame(br, &sizeBuf, c.s.cfg.SocketRequestMaxBytes, frameHooks{
			started: func(int32) {
				c.inFrame = true
				if frameTimeout > 0 && !c.s.stopping.Load() {
					c.nc.SetReadDeadline(time.Now().Add(frameTimeout))
				}
			},
			reserve: func(n int64, growth bool) error { return c.s.reserveFrame(c.ctx, &mem, n, growth) },
			arrived: c.arrived,
		})
		c.s.frameRead(&mem)
		if err != nil {
			c.s.releaseMemory(&mem)
			c.readFailed(err)
			return
		}
		start := time.Now()
		c.s.metrics.read(4 + len(frame))

		d, err := decodeRequest(frame, c.s.apis, func(n int64) error { return c.s.reserveDecoded(c.ctx, &mem, n) })
		if d.decodeTime > 0 {
			c.s.metrics.decoded(d.header.APIKey, d.decodeTime)
		}
		if err != nil {
			putFrame(frame) // nothing decoded from it is kept
			c.s.releaseMemory(&mem)
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
					rep: Completed(apiVersionsUnsupported(c.s.apis[d.header.APIKey])),
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
		c.s.metrics.request(key, version)
		r := &Request{Ctx: c.ctx, Header: d.header, Body: d.body, Conn: c}
		rep, err := c.handle(d.api, r)
		if err != nil {
			c.s.releaseMemory(&mem)
			c.s.badInputLog.Log(slog.LevelWarn, "handler failed: "+kmsg.NameForKey(key), "closing connection: handler failed",
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
func (c *Conn) badRequest(bad *badInputError) {
	c.BadInput(bad.kind, "closing connection: bad request", "err", bad.err)
}

// readFailed handles the end of reading.
func (c *Conn) readFailed(err error) {
	var bad *badInputError
	switch {
	case errors.Is(err, io.EOF):
		// The client closed its side between requests: answer what is
		// queued, then close (the writer does).
		c.log.Debug("client closed the connection")
	case errors.Is(err, os.ErrDeadlineExceeded) && c.s.stopping.Load():
		// Graceful shutdown: stop reading, let the writer drain.
	case errors.As(err, &bad):
		c.badRequest(bad)
		c.close()
	case errors.Is(err, os.ErrDeadlineExceeded) && c.inFrame:
		// A frame started but did not arrive in time: a slow or stalled
		// sender (slowloris), or a lying size prefix.
		c.badRequest(badInput(badSlowFrame, "request frame not complete within %v (socket.request.read.timeout.ms)", c.s.cfg.RequestReadTimeout))
		c.close()
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Info("closing idle connection", "idle", c.s.cfg.ConnectionsMaxIdle, "client_id", c.clientID)
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
// never the process.
func (c *Conn) handle(a *API, r *Request) (rep *Reply, err error) {
	key, version := r.Header.APIKey, r.Header.APIVersion
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("handler panicked", "api", kmsg.NameForKey(key), "key", key, "version", version,
				"client_id", c.clientID, "panic", p, "stack", string(debug.Stack()))
			c.s.metrics.requestError(key, version, errKindPanic)
			rep, err = nil, fmt.Errorf("panic in %s v%d handler: %v", kmsg.NameForKey(key), version, p)
		}
	}()
	rep, err = a.Handle(r)
	if err == nil && rep == nil {
		err = errNilReply
	}
	if err != nil {
		c.s.metrics.requestError(key, version, errKindHandler)
	}
	return rep, err
}

// enqueue hands p to the writer, blocking while the queue is full. It
// returns false if the connection was closed meanwhile (p is abandoned).
func (c *Conn) enqueue(p *pending) bool {
	select {
	case c.queue <- p:
		return true
	case <-c.kill:
		c.abandon(p)
		return false
	}
}

// abandon gives up on writing p: it waits for a deferred reply to complete
// (handlers close Done promptly once the request's Ctx is cancelled, which
// close() does) and releases a Framed body.
func (c *Conn) abandon(p *pending) {
	if p.rep == nil {
		return
	}
	if p.rep.Done != nil {
		<-p.rep.Done
	}
	if p.rep.Framed != nil {
		p.rep.Framed.Release()
	}
	c.release(p)
}

func (c *Conn) writeLoop() {
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
		if done := p.rep.Done; done != nil {
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
func (c *Conn) armWrite() {
	if idle := c.s.cfg.ConnectionsMaxIdle; idle > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(idle))
	}
}

var errAbandoned = errors.New("deferred reply completed empty after the connection's context ended")

// writeReply writes one complete reply into bw (a Framed body may flush bw
// and write to the socket itself). On error the frame may be partly written
// and the connection must be closed. A Framed body is released in every
// case.
func (c *Conn) writeReply(bw *bufio.Writer, raw syscall.RawConn, scratch *[]byte, p *pending) (err error) {
	rep := p.rep
	defer func() {
		if rep.Framed != nil {
			rep.Framed.Release()
		}
		if r := recover(); r != nil {
			c.log.Error("panic while encoding a response", "api", kmsg.NameForKey(p.key), "version", p.version,
				"panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic encoding %s v%d response: %v", kmsg.NameForKey(p.key), p.version, r)
			c.s.metrics.requestError(p.key, p.respVersion, errKindPanic)
			return
		}
		if err != nil {
			c.s.metrics.requestError(p.key, p.respVersion, errKindWrite)
			return
		}
		// respVersion, not version: an ApiVersions request of any version
		// above ours is answered (and counted) as v0, so a client cannot
		// create a metric series per int16.
		c.s.metrics.requestDone(p.key, p.respVersion, time.Since(p.start))
	}()
	switch {
	case rep.None:
		return nil
	case rep.Framed != nil:
		f := rep.Framed
		if f.Key() != p.key {
			return fmt.Errorf("framed %s response to a %s request", kmsg.NameForKey(f.Key()), kmsg.NameForKey(p.key))
		}
		c.armWrite()
		*scratch = appendFramedHeader((*scratch)[:0], p.correlationID, f)
		if _, err := bw.Write(*scratch); err != nil {
			return err
		}
		if err := f.WriteBody(bw, raw); err != nil {
			return err
		}
		c.s.metrics.wrote(len(*scratch) + int(f.Len()))
		return nil
	case rep.Msg != nil:
		if rep.Msg.Key() != p.key {
			return fmt.Errorf("%s response to a %s request", kmsg.NameForKey(rep.Msg.Key()), kmsg.NameForKey(p.key))
		}
		rep.Msg.SetVersion(p.respVersion)
		*scratch = appendResponse((*scratch)[:0], p.correlationID, rep.Msg)
		c.armWrite()
		if _, err := bw.Write(*scratch); err != nil {
			return err
		}
		c.s.metrics.wrote(len(*scratch))
		return nil
	case c.ctx.Err() != nil:
		return errAbandoned
	default:
		return fmt.Errorf("%s v%d handler completed a reply with no response", kmsg.NameForKey(p.key), p.version)
	}
}
