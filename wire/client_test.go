package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/internal/memnet"
	"github.com/stratalog/strata/wire/shape"
)

const testClientID = "strata-client-test"

// dialClient dials addr with a test configuration changed by mutate; the
// client is closed when the test ends.
func dialClient(t *testing.T, addr string, mutate func(*ClientConfig)) *Client {
	t.Helper()
	cfg := ClientConfig{Addr: addr, ClientID: testClientID}
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func createTopicsRequest(version int16, topic string) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(version)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 3, 1
	req.Topics = append(req.Topics, rt)
	return req
}

func metadataRequest(version int16, topic string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(version)
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	return req
}

// echoCreateTopics answers each topic as "<topic>@v<version>" with the
// request's partition count, the version in ThrottleMillis (v2+) and in
// the first byte of TopicID (v7+), so that a test sees which version the
// server decoded and the client decoded back.
func echoCreateTopics(r *Request) (*Reply, error) {
	req := r.Body.(*kmsg.CreateTopicsRequest)
	v := r.Header.APIVersion
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	resp.ThrottleMillis = int32(v)
	for _, t := range req.Topics {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = fmt.Sprintf("%s@v%d", t.Topic, v)
		rt.NumPartitions = t.NumPartitions
		rt.TopicID[0] = byte(v)
		resp.Topics = append(resp.Topics, rt)
	}
	return Completed(resp), nil
}

// checkCreateTopics checks resp is echoCreateTopics' answer to
// createTopicsRequest(version, topic).
func checkCreateTopics(raw kmsg.Response, version int16, topic string) error {
	resp, ok := raw.(*kmsg.CreateTopicsResponse)
	switch {
	case !ok:
		return fmt.Errorf("response %T", raw)
	case resp.GetVersion() != version:
		return fmt.Errorf("response v%d to a v%d request", resp.GetVersion(), version)
	case len(resp.Topics) != 1 || resp.Topics[0].Topic != fmt.Sprintf("%s@v%d", topic, version):
		return fmt.Errorf("v%d: topics %+v, want %s@v%d", version, resp.Topics, topic, version)
	case version >= 2 && resp.ThrottleMillis != int32(version):
		return fmt.Errorf("v%d: ThrottleMillis %d", version, resp.ThrottleMillis)
	case version >= 5 && resp.Topics[0].NumPartitions != 3:
		return fmt.Errorf("v%d: NumPartitions %d", version, resp.Topics[0].NumPartitions)
	case version >= 7 && resp.Topics[0].TopicID[0] != byte(version):
		return fmt.Errorf("v%d: TopicID %x", version, resp.Topics[0].TopicID)
	}
	return nil
}

// echoDeleteTopics answers each topic named as "<name>@v<version>", taking
// the names from TopicNames (v0–5) or Topics (v6+).
func echoDeleteTopics(r *Request) (*Reply, error) {
	req := r.Body.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	names := slices.Clone(req.TopicNames)
	for _, t := range req.Topics {
		if t.Topic != nil {
			names = append(names, *t.Topic)
		}
	}
	for _, n := range names {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic = kmsg.StringPtr(fmt.Sprintf("%s@v%d", n, r.Header.APIVersion))
		resp.Topics = append(resp.Topics, rt)
	}
	return Completed(resp), nil
}

// metadataEcho answers with the requested topics, the version in
// ThrottleMillis (v3+).
func metadataEcho(r *Request) *kmsg.MetadataResponse {
	req := r.Body.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.ThrottleMillis = int32(r.Header.APIVersion)
	for _, rt := range req.Topics {
		t := kmsg.NewMetadataResponseTopic()
		t.Topic = rt.Topic
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// checkMetadata checks resp is metadataEcho's answer to
// metadataRequest(version, topic).
func checkMetadata(raw kmsg.Response, version int16, topic string) error {
	resp, ok := raw.(*kmsg.MetadataResponse)
	switch {
	case !ok:
		return fmt.Errorf("response %T", raw)
	case resp.GetVersion() != version:
		return fmt.Errorf("response v%d to a v%d request", resp.GetVersion(), version)
	case len(resp.Topics) != 1 || resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != topic:
		return fmt.Errorf("v%d: topics %+v, want %s", version, resp.Topics, topic)
	case version >= 3 && resp.ThrottleMillis != int32(version):
		return fmt.Errorf("v%d: ThrottleMillis %d", version, resp.ThrottleMillis)
	}
	return nil
}

// heldMetadata is a Metadata API whose replies wait until hold is closed
// or, if honourCtx, until the request's context ends; handled counts the
// requests.
func heldMetadata(hold <-chan struct{}, handled *atomic.Int32, honourCtx bool) API {
	return API{kmsg.Metadata.Int16(), 0, 12, func(r *Request) (*Reply, error) {
		handled.Add(1)
		done := make(chan struct{})
		rep := &Reply{Done: done}
		ctxDone := r.Ctx.Done()
		if !honourCtx {
			ctxDone = nil
		}
		go func() {
			select {
			case <-hold:
			case <-ctxDone:
			}
			rep.Msg = metadataEcho(r)
			close(done)
		}()
		return rep, nil
	}}
}

var createTopicsAPI = API{kmsg.CreateTopics.Int16(), 0, 7, echoCreateTopics}

func TestClientRequestsAtTheirVersion(t *testing.T) {
	var mu sync.Mutex
	var clientIDs []string
	create := API{kmsg.CreateTopics.Int16(), 0, 7, func(r *Request) (*Reply, error) {
		mu.Lock()
		clientIDs = append(clientIDs, r.Conn.ClientID(), *r.Header.ClientID)
		mu.Unlock()
		return echoCreateTopics(r)
	}}
	ts := newTestServer(t, testAPIs(create, API{kmsg.DeleteTopics.Int16(), 0, 6, echoDeleteTopics}), nil)
	c := dialClient(t, ts.addr, nil)
	ctx := context.Background()

	for _, want := range []struct{ key, lo, hi int16 }{{kmsg.CreateTopics.Int16(), 0, 7}, {kmsg.ApiVersions.Int16(), 0, 4}, {kmsg.Metadata.Int16(), 0, 12}} {
		if lo, hi, ok := c.Versions(want.key); !ok || lo != want.lo || hi != want.hi {
			t.Errorf("Versions(%s) = %d, %d, %v; want %d, %d", kmsg.NameForKey(want.key), lo, hi, ok, want.lo, want.hi)
		}
	}

	// v0 and v4: request header v1, response header v0; v7: flexible,
	// request header v2, response header v1.
	for _, v := range []int16{0, 4, 7} {
		resp, err := c.Request(ctx, createTopicsRequest(v, "orders"))
		if err != nil {
			t.Fatalf("CreateTopics v%d: %v", v, err)
		}
		if err := checkCreateTopics(resp, v, "orders"); err != nil {
			t.Error(err)
		}
	}
	mu.Lock()
	for _, id := range clientIDs {
		if id != testClientID {
			t.Errorf("server saw client id %q, want %q", id, testClientID)
		}
	}
	mu.Unlock()

	// The forwarding case: DeleteTopics v5 carries TopicNames, v6 Topics;
	// each must arrive as sent.
	for _, v := range []int16{5, 6} {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.SetVersion(v)
		if v < 6 {
			req.TopicNames = []string{"gone"}
		} else {
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = kmsg.StringPtr("gone")
			req.Topics = append(req.Topics, rt)
		}
		raw, err := c.Request(ctx, req)
		if err != nil {
			t.Fatalf("DeleteTopics v%d: %v", v, err)
		}
		resp := raw.(*kmsg.DeleteTopicsResponse)
		if want := fmt.Sprintf("gone@v%d", v); resp.GetVersion() != v || len(resp.Topics) != 1 || resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != want {
			t.Errorf("DeleteTopics v%d: response v%d %+v, want topic %s", v, resp.GetVersion(), resp.Topics, want)
		}
	}

	// ApiVersions keeps response header v0 even when flexible (v3, v4).
	for _, v := range []int16{0, 3, 4} {
		raw, err := c.Request(ctx, apiVersionsRequest(v))
		if err != nil {
			t.Fatalf("ApiVersions v%d: %v", v, err)
		}
		resp := raw.(*kmsg.ApiVersionsResponse)
		if resp.GetVersion() != v || resp.ErrorCode != 0 || len(resp.ApiKeys) != len(ts.apis) {
			t.Errorf("ApiVersions v%d: response v%d, error %d, %d keys (want %d)", v, resp.GetVersion(), resp.ErrorCode, len(resp.ApiKeys), len(ts.apis))
		}
	}
	if err := c.Err(); err != nil {
		t.Fatalf("Err: %v", err)
	}
}

func TestClientUnsupportedVersionNotSent(t *testing.T) {
	var handled atomic.Int32
	create := API{kmsg.CreateTopics.Int16(), 2, 5, func(r *Request) (*Reply, error) {
		handled.Add(1)
		return echoCreateTopics(r)
	}}
	ts := newTestServer(t, testAPIs(create), nil)
	c := dialClient(t, ts.addr, nil)
	ctx := context.Background()

	for _, v := range []int16{0, 1, 6, 7, 99, -1} {
		_, err := c.Request(ctx, createTopicsRequest(v, "t"))
		if !errors.Is(err, ErrUnsupportedVersion) {
			t.Fatalf("CreateTopics v%d: %v, want ErrUnsupportedVersion", v, err)
		}
		if want := fmt.Sprintf("CreateTopics v%d: the server serves v2–v5", v); !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// A key the server does not serve at all (no wire/shape schema).
	var unserved kmsg.Request
	for key := int16(0); key <= kmsg.MaxKey && unserved == nil; key++ {
		if req := kmsg.RequestForKey(key); req != nil && !shape.Known(key) && key != kmsg.ApiVersions.Int16() {
			unserved = req
		}
	}
	if _, err := c.Request(ctx, unserved); !errors.Is(err, ErrUnsupportedVersion) || !strings.Contains(err.Error(), "does not serve") {
		t.Fatalf("%s: %v, want ErrUnsupportedVersion", kmsg.NameForKey(unserved.Key()), err)
	}

	// Nothing was sent: the server closes a connection that sends a
	// version outside its range, and the handler ran for none of them.
	resp, err := c.Request(ctx, createTopicsRequest(3, "t"))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkCreateTopics(resp, 3, "t"); err != nil {
		t.Fatal(err)
	}
	if n := handled.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1", n)
	}
}

func TestClientPipelinesConcurrentRequests(t *testing.T) {
	// Metadata replies are deferred and complete after random delays, so
	// out of order (the server still writes them in request order);
	// CreateTopics replies are immediate.
	metadata := API{kmsg.Metadata.Int16(), 0, 12, func(r *Request) (*Reply, error) {
		resp := metadataEcho(r)
		done := make(chan struct{})
		rep := &Reply{Done: done}
		delay := time.Duration(rand.IntN(2000)) * time.Microsecond
		go func() {
			select {
			case <-time.After(delay):
			case <-r.Ctx.Done():
			}
			rep.Msg = resp
			close(done)
		}()
		return rep, nil
	}}
	ts := newTestServer(t, testAPIs(metadata, createTopicsAPI), func(c *Config) { c.MaxInFlightPerConnection = 32 })
	c := dialClient(t, ts.addr, nil)

	const goroutines, each = 32, 25
	errs := make(chan error, goroutines*each)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				topic := fmt.Sprintf("g%d-%d", g, i)
				var err error
				if (g+i)%2 == 0 {
					v := int16((g + i) % 13)
					var resp kmsg.Response
					if resp, err = c.Request(context.Background(), metadataRequest(v, topic)); err == nil {
						err = checkMetadata(resp, v, topic)
					}
				} else {
					v := int16((g + i) % 8)
					var resp kmsg.Response
					if resp, err = c.Request(context.Background(), createTopicsRequest(v, topic)); err == nil {
						err = checkCreateTopics(resp, v, topic)
					}
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", topic, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("Err: %v", err)
	}
}

func TestClientContextEndsBeforeAnswer(t *testing.T) {
	hold := make(chan struct{})
	var handled atomic.Int32
	ts := newTestServer(t, testAPIs(heldMetadata(hold, &handled, true), createTopicsAPI), nil)
	c := dialClient(t, ts.addr, nil)

	// A context that has already ended sends nothing.
	ended, cancelEnded := context.WithCancel(context.Background())
	cancelEnded()
	if _, err := c.Request(ended, metadataRequest(12, "never")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Request with an ended context: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Request(ctx, metadataRequest(12, "held"))
		errc <- err
	}()
	waitFor(t, "the request to be handled", func() bool { return handled.Load() == 1 })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Request: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Request did not return when its context was cancelled")
	}

	// The held answer comes after all and is dropped; the next request
	// gets its own.
	close(hold)
	resp, err := c.Request(context.Background(), createTopicsRequest(7, "after"))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkCreateTopics(resp, 7, "after"); err != nil {
		t.Fatal(err)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("Err: %v", err)
	}
	if n := handled.Load(); n != 1 {
		t.Fatalf("%d Metadata requests reached the server, want 1", n)
	}
}

func TestClientServerShutdown(t *testing.T) {
	type result struct {
		resp kmsg.Response
		err  error
	}
	t.Run("forced", func(t *testing.T) {
		// The handler ignores its context: Shutdown with an ended context
		// cuts the connection with the request in flight.
		hold := make(chan struct{})
		var handled atomic.Int32
		ts := newTestServer(t, testAPIs(heldMetadata(hold, &handled, false), createTopicsAPI), nil)
		c := dialClient(t, ts.addr, nil)
		results := make(chan result, 1)
		go func() {
			resp, err := c.Request(context.Background(), metadataRequest(12, "held"))
			results <- result{resp, err}
		}()
		waitFor(t, "the request to be handled", func() bool { return handled.Load() == 1 })

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		shut := make(chan error, 1)
		go func() { shut <- ts.Shutdown(ctx) }()
		select {
		case r := <-results:
			if !errors.Is(r.err, ErrClientClosed) {
				t.Fatalf("in-flight request: %v, %v; want ErrClientClosed", r.resp, r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("in-flight request not failed when the server cut the connection")
		}
		close(hold) // the abandoned reply completes; Shutdown returns
		if err := <-shut; !errors.Is(err, context.Canceled) {
			t.Fatalf("Shutdown: %v", err)
		}
		if _, err := c.Request(context.Background(), createTopicsRequest(7, "later")); !errors.Is(err, ErrClientClosed) {
			t.Fatalf("later request: %v, want ErrClientClosed", err)
		}
		if err := c.Err(); !errors.Is(err, ErrClientClosed) {
			t.Fatalf("Err: %v, want ErrClientClosed", err)
		}
	})
	t.Run("graceful", func(t *testing.T) {
		// Shutdown cancels the request's context: the reply completes and
		// is written, then the server closes the connection.
		hold := make(chan struct{})
		var handled atomic.Int32
		ts := newTestServer(t, testAPIs(heldMetadata(hold, &handled, true), createTopicsAPI), nil)
		c := dialClient(t, ts.addr, nil)
		results := make(chan result, 1)
		go func() {
			resp, err := c.Request(context.Background(), metadataRequest(12, "held"))
			results <- result{resp, err}
		}()
		waitFor(t, "the request to be handled", func() bool { return handled.Load() == 1 })
		if err := ts.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		r := <-results
		if r.err != nil {
			t.Fatalf("in-flight request: %v", r.err)
		}
		if err := checkMetadata(r.resp, 12, "held"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Request(context.Background(), createTopicsRequest(7, "later")); !errors.Is(err, ErrClientClosed) {
			t.Fatalf("request after Shutdown: %v, want ErrClientClosed", err)
		}
		waitFor(t, "the client to see the connection closed", func() bool { return c.Err() != nil })
	})
}

func TestClientMaxResponseBytes(t *testing.T) {
	big := API{kmsg.Metadata.Int16(), 0, 12, func(r *Request) (*Reply, error) {
		resp := r.Body.ResponseKind().(*kmsg.MetadataResponse)
		for i := range 1000 {
			rt := kmsg.NewMetadataResponseTopic()
			rt.Topic = kmsg.StringPtr(fmt.Sprintf("topic-%04d", i))
			resp.Topics = append(resp.Topics, rt)
		}
		return Completed(resp), nil
	}}
	ts := newTestServer(t, testAPIs(big, createTopicsAPI), nil)
	c := dialClient(t, ts.addr, func(cfg *ClientConfig) { cfg.MaxResponseBytes = 4 << 10 })

	// Small responses are fine.
	if resp, err := c.Request(context.Background(), createTopicsRequest(7, "small")); err != nil || checkCreateTopics(resp, 7, "small") != nil {
		t.Fatalf("small response: %v", err)
	}
	_, err := c.Request(context.Background(), metadataRequest(12, "big"))
	if !errors.Is(err, ErrClientClosed) || !strings.Contains(err.Error(), "exceeds MaxResponseBytes (4096)") {
		t.Fatalf("oversized response: %v, want ErrClientClosed naming MaxResponseBytes", err)
	}
	if err := c.Err(); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("Err: %v", err)
	}
	if _, err := c.Request(context.Background(), createTopicsRequest(7, "later")); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("later request: %v, want ErrClientClosed", err)
	}
}

func TestClientProduceAcksZero(t *testing.T) {
	// A Kafka server sends nothing back to a Produce with acks 0.
	produce := API{kmsg.Produce.Int16(), 3, 11, func(r *Request) (*Reply, error) {
		if r.Body.(*kmsg.ProduceRequest).Acks == 0 {
			return &Reply{None: true}, nil
		}
		return echo(r)
	}}
	ts := newTestServer(t, testAPIs(produce, createTopicsAPI), nil)
	c := dialClient(t, ts.addr, nil)
	for _, acks := range []int16{0, -1, 0} {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks = acks
		resp, err := c.Request(context.Background(), req)
		if err != nil {
			t.Fatalf("acks %d: %v", acks, err)
		}
		if _, ok := resp.(*kmsg.ProduceResponse); ok != (acks != 0) {
			t.Fatalf("acks %d: response %T", acks, resp)
		}
	}
	if resp, err := c.Request(context.Background(), createTopicsRequest(7, "after")); err != nil || checkCreateTopics(resp, 7, "after") != nil {
		t.Fatalf("request after acks=0 produces: %v", err)
	}
}

func TestClientOverMemnet(t *testing.T) {
	ln := memnet.Listen("controller")
	s, err := NewServer(testConfig(), testAPIs(createTopicsAPI))
	if err != nil {
		t.Fatal(err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		if err := <-serveErr; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c := dialClient(t, ln.Addr().String(), func(cfg *ClientConfig) { cfg.Dial = ln.Dial })
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			v := int16(i % 8)
			topic := fmt.Sprintf("mem-%d", i)
			resp, err := c.Request(context.Background(), createTopicsRequest(v, topic))
			if err == nil {
				err = checkCreateTopics(resp, v, topic)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

// dialPipe dials a client to a hand-written server over net.Pipe: the
// server decodes each request frame with decodeRequest and table, and
// writes what answer returns for it (nil: nothing). answer runs on the
// server's goroutine and must not call t.Fatal.
func dialPipe(t *testing.T, table map[int16]*API, answer func(d decodedRequest, err error) []byte) *Client {
	t.Helper()
	cl, srv := net.Pipe()
	go func() {
		defer srv.Close()
		br := bufio.NewReader(srv)
		var sizeBuf [4]byte
		for {
			frame, err := readFrame(br, &sizeBuf, 1<<20, frameHooks{})
			if err != nil {
				return
			}
			if out := answer(decodeRequest(frame, table, nil)); out != nil {
				if _, err := srv.Write(out); err != nil {
					return
				}
			}
		}
	}()
	return dialClient(t, "pipe", func(cfg *ClientConfig) {
		cfg.Dial = func(context.Context, string, string) (net.Conn, error) { return cl, nil }
	})
}

// answerAPIVersions answers an ApiVersions request as a Server with table
// does.
func answerAPIVersions(table map[int16]*API, d decodedRequest) []byte {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(d.header.APIVersion)
	resp.ApiKeys = advertise(table)
	return appendResponse(nil, d.header.CorrelationID, resp)
}

// responseFrame frames a response by hand: size, correlation id, rest.
func responseFrame(corr int32, rest ...byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(4+len(rest)))
	out = binary.BigEndian.AppendUint32(out, uint32(corr))
	return append(out, rest...)
}

func TestClientAPIVersionsFallback(t *testing.T) {
	// A server serving ApiVersions v0–2 answers v3 in v0 with
	// UNSUPPORTED_VERSION and its range (KIP-511); Dial asks again at v2.
	table := maps.Clone(testTable(t))
	av := *table[kmsg.ApiVersions.Int16()]
	av.MaxVersion = 2
	table[av.Key] = &av
	var mu sync.Mutex
	var asked []int16
	c := dialPipe(t, table, func(d decodedRequest, err error) []byte {
		if d.header.APIKey == av.Key {
			mu.Lock()
			asked = append(asked, d.header.APIVersion)
			mu.Unlock()
		}
		var bad *badInputError
		switch {
		case errors.As(err, &bad) && bad.kind == badAPIVersions:
			return appendResponse(nil, d.header.CorrelationID, apiVersionsUnsupported(&av))
		case err != nil:
			return nil
		case d.header.APIKey == av.Key:
			return answerAPIVersions(table, d)
		}
		rep, _ := echoCreateTopics(&Request{Header: d.header, Body: d.body})
		rep.Msg.SetVersion(d.header.APIVersion)
		return appendResponse(nil, d.header.CorrelationID, rep.Msg)
	})
	mu.Lock()
	if !slices.Equal(asked, []int16{3, 2}) {
		t.Errorf("ApiVersions asked at %v, want [3 2]", asked)
	}
	mu.Unlock()
	if lo, hi, ok := c.Versions(av.Key); !ok || lo != 0 || hi != 2 {
		t.Errorf("Versions(ApiVersions) = %d, %d, %v", lo, hi, ok)
	}
	resp, err := c.Request(context.Background(), createTopicsRequest(7, "t"))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkCreateTopics(resp, 7, "t"); err != nil {
		t.Fatal(err)
	}
}

func TestClientBadResponses(t *testing.T) {
	table := testTable(t)
	metadataV12 := kmsg.NewPtrMetadataResponse()
	metadataV12.SetVersion(12)
	metadataV12.ThrottleMillis = 7
	body := appendResponse(nil, 0, metadataV12)[4+4+1:] // size, correlation id, header tags
	for _, tc := range []struct {
		name   string
		answer func(corr int32) []byte // to a Metadata v12 request
		closes bool                    // the client breaks; otherwise only the request fails
		want   string
	}{
		{"unknown correlation id", func(int32) []byte { return responseFrame(424242, append([]byte{0}, body...)...) }, true, "unknown correlation id 424242"},
		{"frame shorter than a correlation id", func(int32) []byte { return []byte{0, 0, 0, 3, 0, 0, 0} }, true, "3-byte response frame, shorter than a correlation id"},
		{"negative size", func(int32) []byte { return []byte{0xff, 0xff, 0xff, 0xfe} }, true, "-2-byte response frame"},
		{"no header tag section", func(corr int32) []byte { return responseFrame(corr) }, false, "truncated response header"},
		{"header tags beyond the frame", func(corr int32) []byte { return responseFrame(corr, 5, 1, 9) }, false, "truncated response header"},
		{"truncated body", func(corr int32) []byte { return responseFrame(corr, append([]byte{0}, body[:3]...)...) }, false, "decoding Metadata v12 response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialPipe(t, table, func(d decodedRequest, err error) []byte {
				switch {
				case err != nil:
					return nil
				case d.header.APIKey == kmsg.ApiVersions.Int16():
					return answerAPIVersions(table, d)
				case d.header.APIKey == kmsg.Metadata.Int16():
					return tc.answer(d.header.CorrelationID)
				}
				rep, _ := echoCreateTopics(&Request{Header: d.header, Body: d.body})
				rep.Msg.SetVersion(d.header.APIVersion)
				return appendResponse(nil, d.header.CorrelationID, rep.Msg)
			})
			_, err := c.Request(context.Background(), metadataRequest(12, "t"))
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrClientClosed) != tc.closes {
				t.Fatalf("error %v; want one containing %q, closing the client: %v", err, tc.want, tc.closes)
			}
			if !tc.closes {
				// The frame was whole: the connection is still in step.
				resp, err := c.Request(context.Background(), createTopicsRequest(7, "next"))
				if err != nil || checkCreateTopics(resp, 7, "next") != nil {
					t.Fatalf("next request: %v", err)
				}
				if err := c.Err(); err != nil {
					t.Fatalf("Err: %v", err)
				}
				return
			}
			if err := c.Err(); !errors.Is(err, ErrClientClosed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Err: %v", err)
			}
			if _, err := c.Request(context.Background(), createTopicsRequest(7, "next")); !errors.Is(err, ErrClientClosed) {
				t.Fatalf("next request: %v, want ErrClientClosed", err)
			}
		})
	}
}

func TestClientCloseWhileServerSilent(t *testing.T) {
	// The server never answers Metadata: Close must fail the request in
	// flight and end the client's goroutines all the same.
	table := testTable(t)
	got := make(chan struct{}, 1)
	c := dialPipe(t, table, func(d decodedRequest, err error) []byte {
		if err == nil && d.header.APIKey == kmsg.ApiVersions.Int16() {
			return answerAPIVersions(table, d)
		}
		got <- struct{}{}
		return nil
	})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Request(context.Background(), metadataRequest(12, "t"))
		errc <- err
	}()
	<-got
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClientClosed) || !strings.Contains(err.Error(), "closed by Close") {
			t.Fatalf("in-flight request: %v, want ErrClientClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight request not failed by Close")
	}
	select {
	case <-closed: // Close waits for the reader and the writer
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// fuzzRequests are the requests FuzzClientResponse has in flight, with
// correlation ids 0, 1, … in this order: both header formats, and
// ApiVersions, whose flexible versions keep response header v0.
func fuzzRequests() []kmsg.Request {
	deleteV6 := kmsg.NewPtrDeleteTopicsRequest()
	deleteV6.SetVersion(6)
	return []kmsg.Request{
		apiVersionsRequest(3),
		metadataRequest(1, "a"),
		metadataRequest(12, "b"),
		createTopicsRequest(4, "c"),
		createTopicsRequest(7, "d"),
		deleteV6,
	}
}

// FuzzClientResponse feeds arbitrary bytes to a client with requests in
// flight, as the server's side of the connection: whatever they are, no
// panic, every request returns (a response of its kind and version, or an
// error), and allocation stays proportional to the input.
func FuzzClientResponse(f *testing.F) {
	reqs := fuzzRequests()
	answers := make([][]byte, len(reqs))
	for i, req := range reqs {
		resp := req.ResponseKind()
		resp.SetVersion(req.GetVersion())
		answers[i] = appendResponse(nil, int32(i), resp)
	}
	f.Add(slices.Concat(answers...))
	slices.Reverse(answers)
	f.Add(slices.Concat(answers...))
	f.Add(appendResponse(nil, 0, apiVersionsUnsupported(&API{Key: kmsg.ApiVersions.Int16(), MaxVersion: 2})))
	f.Add(responseFrame(2, 5, 1, 9))
	f.Add(responseFrame(1))
	f.Add([]byte{0, 0, 0, 3, 0, 0, 0})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0xff, 0xff, 0, 0, 0, 1})

	const maxResponseBytes = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)

		cl, srv := net.Pipe()
		c := newClient(cl, ClientConfig{Addr: "fuzz", MaxResponseBytes: maxResponseBytes})
		// The server's side reads the request frames, so that each request
		// has its correlation id before the next asks for one.
		frames := make(chan struct{}, len(reqs))
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			br := bufio.NewReader(srv)
			var sizeBuf [4]byte
			for {
				frame, err := readFrame(br, &sizeBuf, 1<<20, frameHooks{})
				if err != nil {
					return
				}
				putFrame(frame)
				frames <- struct{}{}
			}
		}()
		var wg sync.WaitGroup
		for _, req := range reqs {
			wg.Go(func() {
				resp, err := c.send(context.Background(), req)
				switch {
				case err != nil:
					if !errors.Is(err, ErrClientClosed) && !strings.HasPrefix(err.Error(), "wire: ") {
						t.Errorf("%s: unexpected error %v", kmsg.NameForKey(req.Key()), err)
					}
				case resp == nil || resp.Key() != req.Key():
					t.Errorf("%s: response %T", kmsg.NameForKey(req.Key()), resp)
				case resp.GetVersion() != req.GetVersion() && !(req.Key() == kmsg.ApiVersions.Int16() && resp.GetVersion() == 0):
					t.Errorf("%s v%d: response v%d", kmsg.NameForKey(req.Key()), req.GetVersion(), resp.GetVersion())
				}
			})
			<-frames
		}
		srv.Write(data) // fails once the client breaks and closes its end
		srv.Close()     // then every request still waiting fails
		wg.Wait()
		c.Close()
		<-drained

		runtime.ReadMemStats(&after)
		// Generous: kmsg allocates one struct per claimed array element,
		// and elements need at least a byte each.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20+1024*uint64(len(data)) {
			t.Fatalf("%d bytes allocated for %d bytes of input", alloc, len(data))
		}
	})
}
