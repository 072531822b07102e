package broker

// The types shared by the connection layer and the API handlers: a decoded
// request, the reply a handler produces, and the API table's entry type.
// Handlers live one per file, named by API key (00_produce.go …).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// requestHeader is the Kafka request header (v0–v2).
type requestHeader struct {
	APIKey        int16
	APIVersion    int16
	CorrelationID int32
	ClientID      *string
}

// request is one decoded request as handed to a handler.
type request struct {
	ctx    context.Context // cancelled when the connection closes or the broker stops
	header requestHeader
	body   kmsg.Request // decoded with kmsg at header.APIVersion
	conn   *clientConn
}

// reply is what a handler produces for one request. Exactly one of msg or
// framed is set once the reply is complete. Replies are written strictly in
// request order.
//
// A handler does its order-sensitive work (for Produce: validating and
// appending) before it returns. If completing the reply must wait (the fsync
// of an acks=all produce, a Fetch long-poll), the handler returns a reply
// with done non-nil and fills msg/framed from another goroutine before
// closing done; the connection goes on to the next request meanwhile, and
// its writer waits on done before writing this reply. A deferred reply's
// done must always be closed, and promptly once r.ctx is cancelled:
// closing connections and Shutdown wait on it to release segment files.
type reply struct {
	msg    kmsg.Response   // encoded by the writer at the request's version
	framed *framedResponse // zero-copy Fetch body (see fetchframe.go)
	done   <-chan struct{} // nil: complete now
	none   bool            // no response at all (Produce with acks=0)
}

// handlerFunc serves one API. A non-nil error closes the connection (used
// only for protocol violations); Kafka-level errors go in the response.
type handlerFunc func(b *Broker, r *request) (*reply, error)

// api describes one supported API: its version range and handler. The
// table in apis.go is the single source for dispatch and ApiVersions.
type api struct {
	key        int16
	minVersion int16
	maxVersion int16
	handle     handlerFunc
}

// completed wraps a ready response.
func completed(msg kmsg.Response) *reply { return &reply{msg: msg} }
