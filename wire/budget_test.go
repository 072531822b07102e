package wire

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/wire/wiretest"
)

// TestMemBudgetSmallNotHeldBackByLarge: a waiter for many bytes does not
// hold back a later small request that fits (a FIFO semaphore would).
func TestMemBudgetSmallNotHeldBackByLarge(t *testing.T) {
	m := newMemBudget(100)
	ctx := context.Background()
	if _, err := m.acquire(ctx, 90, false); err != nil {
		t.Fatal(err)
	}
	bigDone := make(chan struct{})
	go func() {
		defer close(bigDone)
		if _, err := m.acquire(ctx, 50, false); err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(10 * time.Millisecond) // let the large waiter queue first
	small, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := m.acquire(small, 10, false); err != nil {
		t.Fatalf("a 10-byte request waited behind a 50-byte one: %v", err)
	}
	select {
	case <-bigDone:
		t.Fatal("the 50-byte request got bytes that were not free")
	default:
	}
	m.release(90)
	<-bigDone
	if got := m.used(); got != 60 {
		t.Fatalf("used %d, want 60", got)
	}
}

// TestMemBudgetOverdraft: growth may take the overdraft when the budget
// is spent, one frame at a time, and waiters wake when it is given back.
func TestMemBudgetOverdraft(t *testing.T) {
	m := newMemBudget(100)
	ctx := context.Background()
	if _, err := m.acquire(ctx, 100, false); err != nil {
		t.Fatal(err)
	}
	over, err := m.acquire(ctx, 50, true)
	if err != nil || !over {
		t.Fatalf("first grower: overdraft %v, %v", over, err)
	}
	second := make(chan bool, 1)
	go func() {
		over, err := m.acquire(ctx, 50, true)
		if err != nil {
			t.Error(err)
		}
		second <- over
	}()
	select {
	case <-second:
		t.Fatal("two frames overdrew at once")
	case <-time.After(20 * time.Millisecond):
	}
	m.endOverdraft()
	if over := <-second; !over {
		t.Fatal("the second grower got bytes that were not free")
	}
	// New frames (no overdraft allowed) wait for real bytes.
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := m.acquire(waitCtx, 1, false); err == nil {
		t.Fatal("a new frame got a byte of a spent budget")
	}
}

// TestGrowingFramesAllFinish: frames that together need more than the
// budget, each growing while holding part of it, all arrive: the
// overdraft keeps one moving at a time, so growth cannot deadlock.
func TestGrowingFramesAllFinish(t *testing.T) {
	const budget = 256 << 10 // 256 KiB; each frame below is 192 KiB
	var answered = make(chan int32, 8)
	handler := func(r *Request) (*Reply, error) {
		answered <- r.Header.CorrelationID
		req := r.Body.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		return Completed(resp), nil
	}
	ts := newTestServer(t, testAPIs(API{kmsg.Produce.Int16(), 3, 11, handler}),
		func(c *Config) { c.QueuedMaxRequestBytes = budget; c.SocketRequestMaxBytes = 1 << 20 })
	const frames = 4
	conns := make([]net.Conn, frames)
	encoded := make([][]byte, frames)
	for i := range conns {
		conns[i] = ts.dial(t)
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(7)
		req.Acks = 1
		topic := kmsg.NewProduceRequestTopic()
		topic.Topic = "t"
		part := kmsg.NewProduceRequestTopicPartition()
		part.Records = make([]byte, 192<<10)
		topic.Partitions = append(topic.Partitions, part)
		req.Topics = append(req.Topics, topic)
		encoded[i] = wiretest.Frame(req, int32(i))
	}
	// Every frame's first 100 KiB first, so all hold budget and want more.
	for i, c := range conns {
		if _, err := c.Write(encoded[i][:100<<10]); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	for i, c := range conns {
		go c.Write(encoded[i][100<<10:])
	}
	for range frames {
		select {
		case <-answered:
		case <-time.After(10 * time.Second):
			t.Fatal("frames growing under a spent budget did not all finish")
		}
	}
}

// TestSlowFrameClosed: a frame that does not arrive within
// socket.request.read.timeout.ms closes its connection and frees what it
// held; a 4-byte size prefix alone holds at most the first step; other
// connections are served meanwhile.
func TestSlowFrameClosed(t *testing.T) {
	const budget = 1 << 20
	ts := newTestServer(t, nil, func(c *Config) {
		c.QueuedMaxRequestBytes = budget
		c.RequestReadTimeout = 300 * time.Millisecond
		c.SocketRequestMaxBytes = 100 << 20
	})
	var liars []net.Conn
	for range 6 { // each claims 100 MiB, over half the budget 100 times over
		c := ts.dial(t)
		if _, err := c.Write(binary.BigEndian.AppendUint32(nil, 100<<20)); err != nil {
			t.Fatal(err)
		}
		liars = append(liars, c)
	}
	waitFor(t, "the size prefixes to be read", func() bool { return ts.frameBytes.used() == 6*firstFrameStep })
	honest := ts.dial(t)
	sendRequest(t, honest, apiVersionsRequest(3), 1)
	ts.checkAPIVersions(t, honest, 3, 1)
	for _, c := range liars {
		expectClosed(t, c)
	}
	waitFor(t, "the liars' memory to be freed", func() bool { return ts.frameBytes.used() == 0 })
}

// TestMaxConnectionsPerIP: one connection over max.connections.per.ip is
// closed at once; closing one lets the next in.
func TestMaxConnectionsPerIP(t *testing.T) {
	ts := newTestServer(t, nil, func(c *Config) { c.MaxConnectionsPerIP = 2 })
	a, b := ts.dial(t), ts.dial(t)
	sendRequest(t, a, apiVersionsRequest(3), 1)
	ts.checkAPIVersions(t, a, 3, 1)
	sendRequest(t, b, apiVersionsRequest(3), 1)
	ts.checkAPIVersions(t, b, 3, 1)
	extra := ts.dial(t)
	expectClosed(t, extra)
	a.Close()
	waitFor(t, "the closed connection to be gone", func() bool { return len(ts.snapshot()) == 1 })
	c := ts.dial(t)
	sendRequest(t, c, apiVersionsRequest(3), 1)
	ts.checkAPIVersions(t, c, 3, 1)
}

// TestMaxConnectionsWaits: at max.connections the server stops accepting
// until a connection closes, as Kafka does; the waiting client is then
// served.
func TestMaxConnectionsWaits(t *testing.T) {
	ts := newTestServer(t, nil, func(c *Config) { c.MaxConnections = 1 })
	a := ts.dial(t)
	sendRequest(t, a, apiVersionsRequest(3), 1)
	ts.checkAPIVersions(t, a, 3, 1)
	b := ts.dial(t) // completes in the kernel's backlog, not accepted
	sendRequest(t, b, apiVersionsRequest(3), 7)
	b.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var one [1]byte
	if n, err := b.Read(one[:]); n > 0 || err == nil {
		t.Fatal("a connection over max.connections was served")
	}
	b.SetReadDeadline(time.Time{})
	a.Close()
	ts.checkAPIVersions(t, b, 3, 7)
}
