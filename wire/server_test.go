package wire

import (
	"github.com/stratalog/strata/internal/metrictest"

	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/stratalog/strata/wire/wiretest"
)

// TestNewServerRefusesTables: a table the server could not serve safely is
// refused at NewServer, naming what is wrong; in particular every API needs
// a schema in wire/shape, since a body that cannot be bounded must never
// reach kmsg.
func TestNewServerRefusesTables(t *testing.T) {
	md := func(min, max int16) API { return API{kmsg.Metadata.Int16(), min, max, echo} }
	cases := []struct {
		name  string
		cfg   Config
		table []API
		want  string
	}{
		{"no name", Config{}, nil, "Name"},
		{"twice", Config{Name: "t"}, []API{md(0, 12), md(0, 3)}, "twice"},
		{"ApiVersions", Config{Name: "t"}, []API{{kmsg.ApiVersions.Int16(), 0, 4, echo}}, "served by the server itself"},
		{"unknown to kmsg", Config{Name: "t"}, []API{{kmsg.MaxKey + 1, 0, 0, echo}}, "unknown to kmsg"},
		{"no shape", Config{Name: "t"}, []API{{kmsg.AddPartitionsToTxn.Int16(), 0, 3, echo}}, "no schema in wire/shape"},
		{"empty range", Config{Name: "t"}, []API{md(5, 3)}, "not a range"},
		{"negative version", Config{Name: "t"}, []API{md(-1, 3)}, "not a range"},
		{"beyond kmsg", Config{Name: "t"}, []API{md(0, 99)}, "beyond what kmsg decodes"},
		{"no handler", Config{Name: "t"}, []API{{kmsg.Metadata.Int16(), 0, 12, nil}}, "no handler"},
	}
	for _, c := range cases {
		if _, err := NewServer(c.cfg, c.table); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
	if _, err := NewServer(Config{Name: "t"}, testAPIs()); err != nil {
		t.Fatalf("every API shape knows: %v", err)
	}
}

// TestConnAccessorsBadInputOnClose: handlers see the connection's peer and
// client id, BadInput counts under the server's name without closing the
// connection, and OnClose functions run in order once the connection has
// ended — at once if registered later, and before Shutdown returns for a
// connection Shutdown closes.
func TestConnAccessorsBadInputOnClose(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())

	var mu sync.Mutex
	var events []string
	record := func(e string) func() {
		return func() { mu.Lock(); events = append(events, e); mu.Unlock() }
	}
	seen := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(events) }
	conns := make(chan *Conn, 2)
	handler := API{kmsg.Metadata.Int16(), 0, 12, func(r *Request) (*Reply, error) {
		c := r.Conn
		tag := c.Remote()
		c.OnClose(record(tag + " first"))
		c.OnClose(record(tag + " second"))
		c.BadInput("corrupt_batch", "test: refused", "topic", "t")
		conns <- c
		return Completed(r.Body.ResponseKind()), nil
	}}
	ts := newTestServer(t, testAPIs(handler), func(c *Config) { c.Name, c.Meter = "controller", provider.Meter(meterName) })

	client := ts.dial(t)
	sendRequest(t, client, kmsg.NewPtrMetadataRequest(), 1)
	resp := kmsg.NewPtrMetadataResponse()
	resp.SetVersion(kmsg.NewPtrMetadataRequest().GetVersion())
	readResponse(t, client, 1, resp)
	c := <-conns
	if c.ClientID() != wiretest.ClientID || c.Remote() != client.LocalAddr().String() || c.IP() != "127.0.0.1" ||
		c.Host() != "/127.0.0.1" || c.RawConn() == nil {
		t.Fatalf("conn: client id %q remote %q ip %q host %q raw %v", c.ClientID(), c.Remote(), c.IP(), c.Host(), c.RawConn())
	}
	ts.checkAPIVersions(t, client, 3, 2) // bad input reported by a handler does not close the connection
	if e := seen(); len(e) != 0 {
		t.Fatalf("OnClose ran while the connection was open: %v", e)
	}
	tag := c.Remote()
	client.Close()
	waitFor(t, "the OnClose functions", func() bool { return len(seen()) == 2 })
	c.OnClose(record(tag + " late")) // the connection has ended: runs at once
	if e := seen(); !slices.Equal(e, []string{tag + " first", tag + " second", tag + " late"}) {
		t.Fatalf("OnClose ran %v", e)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if n := metrictest.Sum(t, rm, "strata.controller.bad_input", "kind", "corrupt_batch"); n != 1 {
		t.Fatalf("strata.controller.bad_input{kind=corrupt_batch} = %d, want 1", n)
	}
	if n := metrictest.Sum(t, rm, "strata.controller.requests", "api", "Metadata"); n != 1 {
		t.Fatalf("strata.controller.requests{api=Metadata} = %d, want 1", n)
	}

	// A connection that Shutdown closes has run its OnClose functions by
	// the time Shutdown returns.
	open := ts.dial(t)
	sendRequest(t, open, kmsg.NewPtrMetadataRequest(), 1)
	readResponse(t, open, 1, resp)
	tag = (<-conns).Remote()
	if err := ts.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e := seen(); !slices.Contains(e, tag+" first") || !slices.Contains(e, tag+" second") {
		t.Fatalf("after Shutdown, OnClose ran %v", e)
	}
}

// TestServeListenerClosedElsewhere: a listener closed by someone else ends
// Serve with an error (not nil, which means Shutdown).
func TestServeListenerClosedElsewhere(t *testing.T) {
	s, err := NewServer(testConfig(), testAPIs())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	waitFor(t, "Serve to start", func() bool { return s.Addr() != nil })
	ln.Close()
	if err := <-errc; err == nil {
		t.Fatal("Serve returned nil after its listener was closed by someone else")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
