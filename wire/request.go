package wire

// The types shared by the server and its handlers: a decoded request, the
// reply a handler produces, a zero-copy response body, and the API table's
// entry type.

import (
	"bufio"
	"context"
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Header is the Kafka request header (v0–v2).
type Header struct {
	APIKey        int16
	APIVersion    int16
	CorrelationID int32
	ClientID      *string
}

// Request is one decoded request as handed to a handler. The handler may
// keep it (a deferred reply's goroutine does) until its reply is complete.
type Request struct {
	// Ctx is cancelled when the connection closes or the server shuts
	// down: a deferred reply must then complete promptly.
	Ctx    context.Context
	Header Header
	// Body is decoded with kmsg at Header.APIVersion. Its byte fields
	// (Produce's records) alias the request frame, which is reused once
	// the reply has been written or abandoned: nothing may keep them
	// beyond that.
	Body kmsg.Request
	// Conn is the connection the request came on; nil only in tests that
	// call a handler directly.
	Conn *Conn
}

// Reply is what a handler produces for one request. Exactly one of Msg or
// Framed is set once the reply is complete, or None. Replies are written
// strictly in request order.
//
// A handler does its order-sensitive work (for Produce: validating and
// appending) before it returns. If completing the reply must wait (the fsync
// of an acks=all produce, a Fetch long-poll), the handler returns a reply
// with Done non-nil and fills Msg or Framed from another goroutine before
// closing Done; the connection goes on to the next request meanwhile, and
// its writer waits on Done before writing this reply. A deferred reply's
// Done must always be closed, and promptly once the request's Ctx is
// cancelled: closing connections and Shutdown wait on it (a Framed body's
// files are released only then). A deferred reply that completes with
// neither Msg nor Framed after Ctx ended is dropped quietly, and the
// connection closed.
type Reply struct {
	Msg    kmsg.Response   // encoded by the writer at the request's version
	Framed Framed          // a body its owner writes (the broker's zero-copy Fetch)
	Done   <-chan struct{} // nil: complete now
	None   bool            // no response at all (Produce with acks=0)
}

// Completed wraps a ready response.
func Completed(msg kmsg.Response) *Reply { return &Reply{Msg: msg} }

// Framed is a response body written by its owner rather than encoded by
// kmsg: the broker's Fetch response, whose record bytes go from segment
// files to the socket with sendfile. The writer frames it (size prefix,
// correlation id, the response header's tag byte when Flexible and Key is
// not ApiVersions) and calls WriteBody once, from the connection's writer
// goroutine.
type Framed interface {
	// Key is the API key the body answers; it must be the request's.
	Key() int16
	// Flexible reports whether the body's version is flexible (then the
	// response header is v1, unless Key is ApiVersions).
	Flexible() bool
	// Len is the body's length in bytes (without size prefix and header).
	Len() int64
	// WriteBody writes exactly Len bytes to w; it may flush w and write
	// to the socket itself through raw (nil when the connection is not
	// TCP). An error closes the connection: the frame is then incomplete.
	WriteBody(w *bufio.Writer, raw syscall.RawConn) error
	// Release is called exactly once, after the body has been written or
	// when the connection abandons it.
	Release()
}

// Handler serves one API. A non-nil error closes the connection (for
// protocol violations only); Kafka-level errors go in the response. A
// handler runs on the connection's reader goroutine, one request at a time
// in arrival order, and must not block on anything but its own work: what
// waits (fsync, long-poll) belongs in a deferred Reply.
type Handler func(r *Request) (*Reply, error)

// API is one entry of a server's table: an API key, the versions served
// (every version from MinVersion to MaxVersion works, and ApiVersions
// advertises exactly that range) and its handler.
type API struct {
	Key        int16
	MinVersion int16
	MaxVersion int16
	Handle     Handler
}
