package controller

// The controller listener (--controller-listen) carries two protocols:
// Raft's RPCs between nodes and the controller's Kafka-protocol RPCs
// (BrokerRegistration, BrokerHeartbeat). Mux splits one net.Listener
// between them by each connection's first byte.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"

	"github.com/stratalog/strata/internal/backoff"
	"github.com/stratalog/strata/internal/fsutil"
	"github.com/stratalog/strata/internal/logutil"
)

// RaftMarker is the first byte of every Raft connection (our StreamLayer
// writes it after dialing). A Kafka request frame starts with its size, a
// big-endian int32 that is never negative, so its first byte is at most
// 0x7f (0x00 for any frame under 16 MiB); 0xd2 is 'R' (0x52) with the top
// bit set, which no Kafka frame can start with.
const RaftMarker byte = 0xd2

// MuxConfig configures NewMux. A zero field takes its default.
type MuxConfig struct {
	// IdentifyTimeout bounds the time from accepting a connection to
	// handing it to its side's Accept (default 5 s): a connection whose
	// first byte does not come, or that its side does not accept, within
	// it is closed.
	IdentifyTimeout time.Duration
	// MaxPending bounds the connections accepted but not yet handed over
	// (default 64); beyond it a new connection is closed at once. With
	// IdentifyTimeout this bounds what connections that never speak can
	// cost: MaxPending goroutines and descriptors, each for at most
	// IdentifyTimeout.
	MaxPending int
	// Dial dials a Raft peer; nil means TCP (net.Dialer).
	Dial func(ctx context.Context, address string) (net.Conn, error)
	// Logger: nil means slog.Default().
	Logger *slog.Logger
}

// Mux accepts connections on one listener and hands each to one of two
// listeners by its first byte: RaftMarker to Raft (RaftLayer), anything
// else to Listener with that byte still unread. A TCP connection is
// handed on as the same *net.TCPConn (its first byte is peeked with
// MSG_PEEK, not read), so the Kafka-protocol server gets what a plain
// listener would give it.
//
// Closing one side's listener makes the mux close the connections that
// would go to it; Close closes the underlying listener and both sides.
type Mux struct {
	ln      net.Listener
	cfg     MuxConfig
	log     *logutil.Limiter
	pending chan struct{} // one token per connection being identified or handed over
	raft    *raftLayer
	other   *muxListener

	closeOnce sync.Once
	done      chan struct{} // closed by Close
	mu        struct {
		sync.Mutex
		err error // why the accept loop ended
	}
}

// NewMux starts splitting ln's connections. The Mux owns ln.
func NewMux(ln net.Listener, cfg MuxConfig) *Mux {
	if cfg.IdentifyTimeout <= 0 {
		cfg.IdentifyTimeout = 5 * time.Second
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 64
	}
	if cfg.Dial == nil {
		cfg.Dial = func(ctx context.Context, address string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", address)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	m := &Mux{
		ln: ln, cfg: cfg, pending: make(chan struct{}, cfg.MaxPending), done: make(chan struct{}),
		log: logutil.NewLimiter(log.With("listener", ln.Addr().String()), time.Minute, nil),
	}
	m.raft = &raftLayer{muxListener: newMuxListener(m), dial: cfg.Dial}
	m.other = newMuxListener(m)
	go m.acceptLoop()
	return m
}

// RaftLayer is the Raft side, for NewNetworkTransport: Accept returns the
// connections that began with RaftMarker (the marker consumed), Dial
// dials a peer's controller listener and writes the marker.
func (m *Mux) RaftLayer() raft.StreamLayer { return m.raft }

// Listener is the other side: every connection that did not begin with
// RaftMarker, its bytes intact.
func (m *Mux) Listener() net.Listener { return m.other }

// Addr is the underlying listener's address.
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

// Close closes the underlying listener and both sides. Connections
// already handed over are their owners'.
func (m *Mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.done)
		err = m.ln.Close()
	})
	return err
}

func (m *Mux) acceptLoop() {
	retry := backoff.Backoff{Min: 5 * time.Millisecond, Max: time.Second} // as net/http
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || fsutil.IsHandleExhaustion(err) || errors.Is(err, syscall.ECONNABORTED) {
				// Out of descriptors or a connection gone before accept:
				// retry, as net/http does.
				wait := retry.Next()
				m.log.Log(slog.LevelWarn, "accept", "controller listener: accept failed; retrying", "err", err, "backoff", wait)
				if !backoff.Sleep(m.done, wait) {
					return
				}
				continue
			}
			m.mu.Lock()
			m.mu.err = err
			m.mu.Unlock()
			m.log.Log(slog.LevelError, "accept-fatal", "controller listener: accept failed; the listener is closed", "err", err)
			_ = m.Close()
			return
		}
		retry.Reset()
		select {
		case m.pending <- struct{}{}:
			go m.identify(c)
		default:
			m.log.Log(slog.LevelWarn, "pending", "controller listener: too many connections not yet identified; closing a new one",
				"remote", c.RemoteAddr().String(), "max", m.cfg.MaxPending)
			_ = c.Close()
		}
	}
}

// identify reads c's first byte and hands c to its side, both within
// IdentifyTimeout. It holds a pending token until then.
func (m *Mux) identify(c net.Conn) {
	defer func() { <-m.pending }()
	timer := time.NewTimer(m.cfg.IdentifyTimeout)
	defer timer.Stop()
	_ = c.SetReadDeadline(time.Now().Add(m.cfg.IdentifyTimeout))
	b, rest, err := peekByte(c)
	if err == nil {
		err = c.SetReadDeadline(time.Time{})
	}
	if err != nil {
		m.log.Log(slog.LevelDebug, "identify", "controller listener: connection closed before its first byte",
			"remote", c.RemoteAddr().String(), "err", err)
		_ = c.Close()
		return
	}
	side := m.other
	if b == RaftMarker {
		side = m.raft.muxListener
		if rest == c { // peeked, not read: consume the marker
			var one [1]byte
			if _, err := io.ReadFull(c, one[:]); err != nil {
				_ = c.Close()
				return
			}
		} else {
			rest = rest.(*replayConn).Conn // read already: drop the marker
		}
	}
	select {
	case side.conns <- rest:
	case <-side.closed:
		_ = rest.Close()
	case <-m.done:
		_ = rest.Close()
	case <-timer.C:
		m.log.Log(slog.LevelWarn, "handover", "controller listener: a connection was not accepted in time; closing it",
			"remote", rest.RemoteAddr().String(), "raft", b == RaftMarker, "timeout", m.cfg.IdentifyTimeout)
		_ = rest.Close()
	}
}

// peekByte returns c's first byte. A connection that exposes its socket
// is peeked (MSG_PEEK) and returned as it is; any other is read from and
// returned wrapped, the byte to be read again. The read deadline applies.
func peekByte(c net.Conn) (byte, net.Conn, error) {
	var buf [1]byte
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			var n int
			var rerr error
			err := raw.Read(func(fd uintptr) bool {
				for {
					n, _, rerr = unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK)
					if rerr != unix.EINTR {
						break
					}
				}
				return rerr != unix.EAGAIN
			})
			switch {
			case err != nil:
				return 0, nil, err
			case rerr != nil:
				return 0, nil, rerr
			case n == 0:
				return 0, nil, io.EOF
			}
			return buf[0], c, nil
		}
	}
	if _, err := io.ReadFull(c, buf[:]); err != nil {
		return 0, nil, err
	}
	return buf[0], &replayConn{Conn: c, first: buf[0], unread: true}, nil
}

// replayConn gives back the byte the mux read before the rest.
type replayConn struct {
	net.Conn
	first  byte
	unread bool // only the reader touches it, as with any net.Conn Read
}

func (c *replayConn) Read(p []byte) (int, error) {
	if c.unread && len(p) > 0 {
		p[0], c.unread = c.first, false
		return 1, nil
	}
	return c.Conn.Read(p)
}

// muxListener is one side of a Mux.
type muxListener struct {
	m         *Mux
	conns     chan net.Conn
	closeOnce sync.Once
	closed    chan struct{}
}

var _ net.Listener = (*muxListener)(nil)

func newMuxListener(m *Mux) *muxListener {
	return &muxListener{m: m, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *muxListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-l.m.done:
		l.m.mu.Lock()
		err := l.m.mu.err
		l.m.mu.Unlock()
		if err == nil {
			err = net.ErrClosed
		}
		return nil, err
	}
}

// Close closes this side only: connections for it are closed from now
// on. The underlying listener stays open for the other side (Mux.Close
// closes it).
func (l *muxListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *muxListener) Addr() net.Addr { return l.m.ln.Addr() }

// raftLayer is the Raft side: a muxListener that also dials.
type raftLayer struct {
	*muxListener
	dial func(ctx context.Context, address string) (net.Conn, error)
}

var _ raft.StreamLayer = (*raftLayer)(nil)

// Dial dials a peer's controller listener and writes RaftMarker, within
// timeout.
func (l *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := l.dial(ctx, string(address))
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	_ = c.SetWriteDeadline(deadline)
	if _, err := c.Write([]byte{RaftMarker}); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("raft dial %s: %w", address, err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// NewNetworkTransport returns raft's TCP transport over stream (a Mux's
// RaftLayer): up to 3 pooled connections per peer, and 10 s I/O deadlines
// on each RPC (raft scales them up for snapshot installs).
func NewNetworkTransport(stream raft.StreamLayer, log *slog.Logger) raft.Transport {
	if log == nil {
		log = slog.Default()
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  newHCLogger(log, "raft-net"),
	})
}
