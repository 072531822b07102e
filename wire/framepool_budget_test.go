package wire

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestQueuedMaxRequestBytes: a request frame holds its bytes of the
// server-wide budget until its reply is written, so a second connection's
// request is not read (its handler does not run) while the budget is
// spent, and runs once the first reply goes out. Nothing leaks: afterwards
// the whole budget is free again.
func TestQueuedMaxRequestBytes(t *testing.T) {
	const budget = 1000
	arrived := make(chan int32, 4)
	release := make(chan struct{})
	handler := func(r *Request) (*Reply, error) {
		req := r.Body.(*kmsg.MetadataRequest)
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		arrived <- r.Header.CorrelationID
		done := make(chan struct{})
		go func() {
			if r.Header.CorrelationID == 1 {
				<-release // the first reply waits, holding its frame
			}
			close(done)
		}()
		return &Reply{Done: done, Msg: resp}, nil
	}
	ts := newTestServer(t, testAPIs(API{kmsg.Metadata.Int16(), 0, 12, handler}),
		func(c *Config) { c.QueuedMaxRequestBytes = budget })

	big := func() *kmsg.MetadataRequest { // a frame of ~600 bytes: over half the budget
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(1)
		for i := range 20 {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(strings.Repeat(string(rune('a'+i)), 28))
			req.Topics = append(req.Topics, rt)
		}
		return req
	}
	a, b := ts.dial(t), ts.dial(t)
	sendRequest(t, a, big(), 1)
	if id := <-arrived; id != 1 {
		t.Fatalf("first handled request %d", id)
	}
	sendRequest(t, b, big(), 2)
	select {
	case id := <-arrived:
		t.Fatalf("request %d was read while the budget was held by request 1", id)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	resp := kmsg.NewPtrMetadataResponse()
	resp.SetVersion(1)
	readResponse(t, a, 1, resp)
	if id := <-arrived; id != 2 {
		t.Fatalf("second handled request %d", id)
	}
	readResponse(t, b, 2, resp)
	// Released after the write; give the writer a moment to finish it.
	deadline := time.Now().Add(5 * time.Second)
	for ts.frameBytes.used() != 0 || ts.decodedBytes.used() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("request memory still held after every reply was written: %d frame, %d decoded bytes",
				ts.frameBytes.used(), ts.decodedBytes.used())
		}
		time.Sleep(time.Millisecond)
	}
}
