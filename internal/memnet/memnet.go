package memnet

import (
	"context"
	"net"
	"sync"
)

// Listener accepts connections made by its Dial. Safe for concurrent use.
type Listener struct {
	name   string
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

var _ net.Listener = (*Listener)(nil)

// Listen returns a listener whose address is name.
func Listen(name string) *Listener {
	return &Listener{name: name, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// Accept waits for the next Dial; net.ErrClosed after Close.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, &net.OpError{Op: "accept", Net: "memnet", Addr: l.Addr(), Err: net.ErrClosed}
	}
}

// Close stops Accept and Dial; connections already made stay open.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr is the listener's name.
func (l *Listener) Addr() net.Addr { return addr(l.name) }

// Dial connects to the listener, waiting until it accepts, Close, or ctx
// ends. The network and address arguments are ignored, so Dial fits as a
// dialer function (kgo.Dialer).
func (l *Listener) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, &net.OpError{Op: "dial", Net: "memnet", Addr: l.Addr(), Err: ctx.Err()}
	}
	client.Close()
	server.Close()
	return nil, &net.OpError{Op: "dial", Net: "memnet", Addr: l.Addr(), Err: net.ErrClosed}
}

type addr string

func (a addr) Network() string { return "memnet" }
func (a addr) String() string  { return string(a) }
