package wire

// The server: its configuration and API table, the accept loop with
// max.connections and max.connections.per.ip, the set of open connections,
// and Shutdown. Connections themselves are in conn.go.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/internal/backoff"
	"github.com/stratalog/strata/internal/logutil"
	"github.com/stratalog/strata/wire/shape"
)

// badInputLogEvery is how often a kind of bad input is logged at most; the
// next line says how many were not (the metric counts every one).
const badInputLogEvery = 10 * time.Second

// Config configures one listener's server. The owner (broker.Config,
// the controller's config) validates the values and documents their
// defaults; a zero value means "no limit" where noted.
type Config struct {
	// Name names the listener: "broker" or "controller". Log lines carry
	// listener=<Name>, and metrics are named strata.<Name>.*. Required.
	Name string
	// SocketRequestMaxBytes bounds a request frame (socket.request.max.bytes):
	// a larger size prefix closes the connection before anything is
	// allocated.
	SocketRequestMaxBytes int32
	// QueuedMaxRequestBytes bounds, server-wide, the bytes request frames
	// hold and, separately, what their decoded forms take
	// (queued.max.request.bytes; budget.go); <= 0 unlimited.
	QueuedMaxRequestBytes int64
	// MaxInFlightPerConnection bounds the replies queued per connection
	// (queued.max.requests); when full the reader stops reading. <= 0
	// means 1.
	MaxInFlightPerConnection int
	// ConnectionsMaxIdle closes a connection that sends nothing, or reads
	// nothing we write, for that long (connections.max.idle.ms); 0 never.
	ConnectionsMaxIdle time.Duration
	// RequestReadTimeout is a frame's time to arrive once its size prefix
	// has (socket.request.read.timeout.ms); 0 none.
	RequestReadTimeout time.Duration
	// MaxConnections bounds the connections open at once (max.connections);
	// at the limit the accept loop waits. 0 unlimited.
	MaxConnections int
	// MaxConnectionsPerIP bounds the connections from one IP
	// (max.connections.per.ip); one more is closed at once. 0 unlimited.
	MaxConnectionsPerIP int
	// Logger: nil means slog.Default().
	Logger *slog.Logger
	// Meter creates the metrics; nil means the global MeterProvider's meter
	// "github.com/stratalog/strata/wire".
	Meter metric.Meter
}

// ErrServerClosed is returned by Serve once Shutdown has begun.
var ErrServerClosed = errors.New("wire: server shut down")

// Server serves the Kafka protocol on one listener for a table of APIs,
// plus ApiVersions, which it answers itself from that table.
//
// Ownership: the accept loop (Serve) creates connections; each connection
// owns its two goroutines (conn.go); Shutdown owns the end. mu guards the
// listener and the set of open connections; no lock is held across I/O.
type Server struct {
	cfg        Config
	log        *slog.Logger // with listener=<Name>
	apis       map[int16]*API
	advertised []kmsg.ApiVersionsResponseApiKey // ApiVersions' ApiKeys, sorted; read-only
	metrics    *metrics
	// badInputLog rate-limits the log lines of bad requests per kind, so a
	// client looping on bad input cannot flood the log.
	badInputLog *logutil.Limiter
	// frameBytes and decodedBytes bound the request frames, and the
	// decoded requests, held in memory by all connections together
	// (queued.max.request.bytes each; budget.go); nil if unlimited.
	frameBytes, decodedBytes *memBudget
	// slots holds a token per open connection (or accept in progress);
	// nil when max.connections is 0 (unlimited).
	slots chan struct{}

	stopping atomic.Bool    // set once by Shutdown, before readers are interrupted
	wg       sync.WaitGroup // one per connection
	stopCtx  context.Context
	stop     context.CancelFunc // cancels every request context
	drained  chan struct{}      // closed once Shutdown has closed every connection

	mu struct {
		sync.Mutex
		ln       net.Listener
		serving  bool // Serve was called
		shutdown bool // Shutdown was called: no new connections
		conns    map[*Conn]struct{}
		byIP     map[string]int // open connections per remote IP
	}
}

// NewServer returns a server for apis. It fails if the table is not one
// the server can serve safely: a key twice, ApiVersions (key 18, which
// the server serves itself), a key kmsg does not know, a version range
// that is empty or beyond what kmsg decodes, a nil handler, or an API
// without a schema in wire/shape (its bodies could not be bounded before
// decoding).
func NewServer(cfg Config, apis []API) (*Server, error) {
	if cfg.Name == "" {
		return nil, errors.New("wire: Config.Name is empty")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("listener", cfg.Name), drained: make(chan struct{})}
	s.apis = make(map[int16]*API, len(apis)+1)
	for i := range apis {
		a := apis[i]
		if err := checkAPI(&a); err != nil {
			return nil, err
		}
		if _, dup := s.apis[a.Key]; dup {
			return nil, fmt.Errorf("wire: %s (key %d) is in the table twice", kmsg.NameForKey(a.Key), a.Key)
		}
		s.apis[a.Key] = &a
	}
	av := kmsg.ApiVersions.Int16()
	s.apis[av] = &API{Key: av, MinVersion: apiVersionsMinVersion, MaxVersion: apiVersionsMaxVersion, Handle: s.handleAPIVersions}
	s.advertised = advertise(s.apis)

	s.metrics = newMetrics(cfg.Name, cfg.Meter, s.apis)
	s.badInputLog = logutil.NewLimiter(s.log, badInputLogEvery, nil)
	if cfg.QueuedMaxRequestBytes > 0 {
		s.frameBytes = newMemBudget(cfg.QueuedMaxRequestBytes)
		s.decodedBytes = newMemBudget(cfg.QueuedMaxRequestBytes)
	}
	if cfg.MaxConnections > 0 {
		s.slots = make(chan struct{}, cfg.MaxConnections)
	}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.mu.conns = make(map[*Conn]struct{})
	s.mu.byIP = make(map[string]int)
	return s, nil
}

// checkAPI reports why a cannot be served, or nil.
func checkAPI(a *API) error {
	name := kmsg.NameForKey(a.Key)
	req := kmsg.RequestForKey(a.Key)
	switch {
	case a.Key == kmsg.ApiVersions.Int16():
		return errors.New("wire: ApiVersions (key 18) is served by the server itself, not by the table")
	case req == nil:
		return fmt.Errorf("wire: API key %d is unknown to kmsg", a.Key)
	case !shape.Known(a.Key):
		return fmt.Errorf("wire: %s (key %d) has no schema in wire/shape: its bodies cannot be checked before decoding", name, a.Key)
	case a.MinVersion < 0 || a.MinVersion > a.MaxVersion:
		return fmt.Errorf("wire: %s versions %d–%d: not a range", name, a.MinVersion, a.MaxVersion)
	case a.MaxVersion > req.MaxVersion():
		return fmt.Errorf("wire: %s v%d is beyond what kmsg decodes (v%d)", name, a.MaxVersion, req.MaxVersion())
	case a.Handle == nil:
		return fmt.Errorf("wire: %s has no handler", name)
	}
	return nil
}

// Serve accepts connections on ln and serves each until Shutdown. It may be
// called once. It returns nil after a Shutdown, and only once that Shutdown
// has finished with the connections (every reply written, or connections
// cut). Accept errors are retried with backoff (EMFILE and friends are
// transient); a listener closed by someone else ends Serve with that error.
// Once Shutdown has begun, Serve closes ln and returns ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	switch {
	case s.mu.shutdown:
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	case s.mu.serving:
		s.mu.Unlock()
		return errors.New("wire: Serve called twice")
	}
	s.mu.serving = true
	s.mu.ln = ln
	s.mu.Unlock()

	s.log.Info("serving the Kafka protocol", "addr", ln.Addr().String())
	retry := backoff.Backoff{Min: 5 * time.Millisecond, Max: time.Second} // as net/http
	for {
		// max.connections: as in Kafka, at the limit the server stops
		// accepting (new connections wait in the listen backlog) until a
		// connection closes.
		if !s.waitSlot() {
			<-s.drained
			return nil
		}
		nc, err := ln.Accept()
		if err != nil {
			s.freeSlot()
			if s.stopping.Load() {
				<-s.drained
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("wire: %s listener closed: %w", s.cfg.Name, err)
			}
			// Transient (too many open files, …): log and retry.
			wait := retry.Next()
			s.log.Warn("accept failed; retrying", "err", err, "backoff", wait)
			time.Sleep(wait)
			continue
		}
		retry.Reset()
		s.serveConn(nc)
	}
}

// Shutdown stops the server gracefully:
//  1. stop accepting (the listener is closed) and stop reading requests;
//  2. cancel request contexts, so that long polls and other deferred
//     replies complete now;
//  3. wait — bounded by ctx — until every request already read has been
//     handled and its response written, then close the connections; if ctx
//     ends first, the remaining connections are closed at once (their
//     handlers still run to completion, and their deferred replies are
//     waited for, before Shutdown returns).
//
// It returns ctx.Err() if connections had to be cut. Calling it again
// waits for the first call (or for its own ctx) and returns nil.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	first := !s.mu.shutdown
	s.mu.shutdown = true
	ln := s.mu.ln
	s.mu.Unlock()
	if !first {
		select {
		case <-s.drained:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	s.stopping.Store(true)
	if ln != nil {
		ln.Close()
	}
	conns := s.snapshot() // no connection is added after shutdown was set
	for _, c := range conns {
		c.stopReading()
	}
	s.stop()
	s.log.Info("shutting down: finishing in-flight requests", "connections", len(conns))

	var err error
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		left := s.snapshot()
		s.log.Warn("shutdown: closing connections with requests in flight", "connections", len(left), "err", err)
		for _, c := range left {
			c.close()
		}
		<-done
	}
	close(s.drained)
	return err
}

// Addr is the address Serve listens on, or nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.ln == nil {
		return nil
	}
	return s.mu.ln.Addr()
}

// waitSlot takes a connection slot before an accept, waiting while
// max.connections are open (logged once per wait). False once Shutdown
// has begun.
func (s *Server) waitSlot() bool {
	if s.slots == nil {
		return true
	}
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	s.log.Warn("max.connections reached: not accepting new connections until one closes", "max_connections", cap(s.slots))
	select {
	case s.slots <- struct{}{}:
		s.log.Info("accepting connections again", "max_connections", cap(s.slots))
		return true
	case <-s.stopCtx.Done():
		return false
	}
}

// freeSlot gives back a slot taken by waitSlot.
func (s *Server) freeSlot() {
	if s.slots != nil {
		<-s.slots
	}
}

// errPerIPLimit refuses a connection over max.connections.per.ip.
var errPerIPLimit = errors.New("max.connections.per.ip reached")

// add registers c (holding a slot); ErrServerClosed once Shutdown has
// begun, errPerIPLimit when c's address has max.connections.per.ip open.
// On error the caller closes c and frees the slot.
func (s *Server) add(c *Conn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.shutdown {
		return ErrServerClosed
	}
	if perIP := s.cfg.MaxConnectionsPerIP; perIP > 0 && s.mu.byIP[c.ip] >= perIP {
		return errPerIPLimit
	}
	s.mu.conns[c] = struct{}{}
	s.mu.byIP[c.ip]++
	s.wg.Add(1)
	return nil
}

func (s *Server) remove(c *Conn) {
	s.mu.Lock()
	delete(s.mu.conns, c)
	if s.mu.byIP[c.ip]--; s.mu.byIP[c.ip] <= 0 {
		delete(s.mu.byIP, c.ip)
	}
	s.mu.Unlock()
	s.freeSlot()
	s.wg.Done()
}

// snapshot returns the open connections.
func (s *Server) snapshot() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Conn, 0, len(s.mu.conns))
	for c := range s.mu.conns {
		out = append(out, c)
	}
	return out
}

// serveConn starts serving an accepted connection, which holds a slot.
func (s *Server) serveConn(nc net.Conn) {
	c := newConn(s, nc)
	if err := s.add(c); err != nil {
		nc.Close()
		s.freeSlot()
		if errors.Is(err, errPerIPLimit) {
			s.metrics.connRejected("max_connections_per_ip")
			s.badInputLog.Log(slog.LevelWarn, "max.connections.per.ip "+c.ip, "closing new connection: max.connections.per.ip reached",
				"remote", c.remote, "max_connections_per_ip", s.cfg.MaxConnectionsPerIP)
		}
		return
	}
	s.metrics.connOpened()
	c.log.Debug("connection opened")
	go func() {
		defer s.remove(c)
		defer s.metrics.connClosed()
		c.run()
		c.ended()
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
