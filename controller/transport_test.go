package controller

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/stratalog/strata/controller/metadata"
)

func listenLocal(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// kafkaFrame is a Kafka-style request: a 4-byte big-endian size, then the
// body.
func kafkaFrame(body string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// acceptOne accepts one connection from l (within waitLimit).
func acceptOne(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := l.Accept(); ch <- res{c, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("accept: %v", r.err)
		}
		return r.c
	case <-time.After(waitLimit):
		t.Fatal("nothing accepted")
		return nil
	}
}

// TestMuxRoutesTCP: over TCP a Kafka-style connection reaches Listener as
// the same *net.TCPConn with every byte intact; a Raft dial reaches
// RaftLayer with the marker consumed.
func TestMuxRoutesTCP(t *testing.T) {
	m := NewMux(listenLocal(t), MuxConfig{Logger: testLogger(t)})
	defer m.Close()

	frame := kafkaFrame("hello, controller")
	kc, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	if _, err := kc.Write(frame); err != nil {
		t.Fatal(err)
	}
	got := acceptOne(t, m.Listener())
	defer got.Close()
	if _, ok := got.(*net.TCPConn); !ok {
		t.Errorf("the Kafka side got a %T, not the *net.TCPConn", got)
	}
	buf := make([]byte, len(frame))
	if _, err := io.ReadFull(got, buf); err != nil || !bytes.Equal(buf, frame) {
		t.Fatalf("read %q, %v; sent %q", buf, err, frame)
	}
	// The connection still works both ways.
	if _, err := got.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(kc, buf[:5]); err != nil || string(buf[:5]) != "reply" {
		t.Fatalf("reply %q, %v", buf[:5], err)
	}

	rc, err := m.RaftLayer().Dial(raft.ServerAddress(m.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := rc.Write([]byte("raft rpc")); err != nil {
		t.Fatal(err)
	}
	rgot := acceptOne(t, m.RaftLayer())
	defer rgot.Close()
	if _, err := io.ReadFull(rgot, buf[:8]); err != nil || string(buf[:8]) != "raft rpc" {
		t.Fatalf("the Raft side read %q, %v", buf[:8], err)
	}

	// Closing the Raft side leaves the Kafka side serving.
	if err := m.RaftLayer().Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.RaftLayer().Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accept on the closed Raft side: %v", err)
	}
	kc2, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer kc2.Close()
	_, _ = kc2.Write([]byte{0, 0, 0, 0})
	acceptOne(t, m.Listener()).Close()

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Listener().Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accept after Close: %v", err)
	}
}

// pipeListener hands out the server ends of net.Pipe connections, which
// expose no socket: the mux reads the first byte and replays it.
type pipeListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// TestMuxRoutesPipe: a connection without a socket is read, and its first
// byte given back to the Kafka side.
func TestMuxRoutesPipe(t *testing.T) {
	pl := newPipeListener()
	m := NewMux(pl, MuxConfig{Logger: testLogger(t)})
	defer m.Close()

	frame := kafkaFrame("abc")
	kc := pl.dial()
	defer kc.Close()
	go func() { _, _ = kc.Write(frame) }()
	got := acceptOne(t, m.Listener())
	buf := make([]byte, len(frame))
	if _, err := io.ReadFull(got, buf); err != nil || !bytes.Equal(buf, frame) {
		t.Fatalf("read %q, %v; sent %q", buf, err, frame)
	}

	rc := pl.dial()
	defer rc.Close()
	go func() { _, _ = rc.Write([]byte{RaftMarker, 'x'}) }()
	rgot := acceptOne(t, m.RaftLayer())
	if _, err := io.ReadFull(rgot, buf[:1]); err != nil || buf[0] != 'x' {
		t.Fatalf("the Raft side read %q, %v", buf[:1], err)
	}
}

// TestMuxBounds: a connection that never speaks is closed after
// IdentifyTimeout; beyond MaxPending a new one is closed at once; a
// connection its side does not accept is closed after IdentifyTimeout.
func TestMuxBounds(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	m := NewMux(listenLocal(t), MuxConfig{IdentifyTimeout: timeout, MaxPending: 2, Logger: testLogger(t)})
	defer m.Close()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", m.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedWithin reports whether the server closes c within d.
	closedWithin := func(c net.Conn, d time.Duration) bool {
		_ = c.SetReadDeadline(time.Now().Add(d))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		return err != nil && !(errors.As(err, &ne) && ne.Timeout())
	}

	silent1, silent2 := dial(), dial()
	time.Sleep(50 * time.Millisecond) // both accepted and waiting for their first byte
	if !closedWithin(dial(), timeout/2) {
		t.Fatal("a third pending connection was not closed at once")
	}
	start := time.Now()
	if !closedWithin(silent1, waitLimit) || !closedWithin(silent2, waitLimit) {
		t.Fatal("silent connections were not closed")
	}
	if waited := time.Since(start); waited > 2*timeout {
		t.Errorf("silent connections closed after %v, timeout %v", waited, timeout)
	}

	// Nobody accepts on the Kafka side: the connection is closed in time
	// and its slot freed.
	unaccepted := dial()
	_, _ = unaccepted.Write([]byte{0, 0, 0, 1, 'x'})
	if !closedWithin(unaccepted, waitLimit) {
		t.Fatal("an unaccepted connection was not closed")
	}
	speaker := dial()
	_, _ = speaker.Write([]byte{0, 0, 0, 1, 'y'})
	acceptOne(t, m.Listener()).Close()
}

// TestTCPQuorum: three nodes over the multiplexed controller listeners on
// 127.0.0.1 form a quorum and replicate, while the same ports serve a
// Kafka-style connection.
func TestTCPQuorum(t *testing.T) {
	t.Parallel()
	log := testLogger(t)
	var voters []Voter
	var lns []net.Listener
	for i := 1; i <= 3; i++ {
		ln := listenLocal(t)
		lns = append(lns, ln)
		voters = append(voters, Voter{ID: metadata.BrokerID(i), Addr: ln.Addr().String()})
	}
	var nodes []*Node
	var muxes []*Mux
	for i, ln := range lns {
		m := NewMux(ln, MuxConfig{Logger: log})
		muxes = append(muxes, m)
		n, err := OpenNode(NodeConfig{NodeID: voters[i].ID, Dir: t.TempDir(), Voters: voters, Voter: true,
			Transport: NewNetworkTransport(m.RaftLayer(), log), Logger: log, Tuning: testTuning()})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	t.Cleanup(func() {
		for i := range nodes {
			_ = nodes[i].Close()
			_ = muxes[i].Close()
		}
	})

	var leader *Node
	deadline := time.Now().Add(waitLimit)
	for leader == nil && time.Now().Before(deadline) {
		for _, n := range nodes {
			if n.IsLeader() {
				leader = n
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if leader == nil {
		t.Fatal("no leader")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var last int64
	for i, batch := range [][]metadata.Record{{bootstrap()}, {createTopic(1)}, {registerBroker(1), createTopic(2)}} {
		off, _, err := leader.Propose(ctx, batch)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		last = off
	}
	for _, n := range nodes {
		waitApplied(t, n, last)
		if !metadata.Equal(n.Image(), leader.Image()) {
			t.Fatalf("node %d's image differs", n.ID())
		}
		if id, addr, ok := n.Leader(); !ok || id != leader.ID() || addr != voters[leader.ID()-1].Addr {
			t.Fatalf("node %d names leader %d at %s", n.ID(), id, addr)
		}
	}

	// A Kafka-style connection to a follower's port reaches its other
	// listener while Raft runs on the same port.
	follower := (leader.ID())%3 + 1
	kc, err := net.Dial("tcp", voters[follower-1].Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	frame := kafkaFrame("BrokerRegistration")
	_, _ = kc.Write(frame)
	got := acceptOne(t, muxes[follower-1].Listener())
	defer got.Close()
	buf := make([]byte, len(frame))
	if _, err := io.ReadFull(got, buf); err != nil || !bytes.Equal(buf, frame) {
		t.Fatalf("read %q, %v", buf, err)
	}
	off, _, err := leader.Propose(ctx, []metadata.Record{createTopic(3)})
	if err != nil {
		t.Fatal(err)
	}
	waitApplied(t, nodes[follower-1], off)
}
