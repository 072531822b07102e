// Package wire serves the Kafka protocol on a listener: the hardened
// connection layer shared by the broker's Kafka listener and the
// controller's listener.
//
// What belongs here: the accept loop with max.connections and
// max.connections.per.ip (server.go), connections (conn.go), request
// framing and header decoding and response framing (header.go), the
// request-memory budgets (budget.go) and frame pools (framepool.go), the
// shape check that bounds a body before kmsg decodes it (wire/shape),
// ApiVersions, which a server answers itself from its API table
// (api_versions.go), and the connection-level metrics, strata.<name>.*
// (metrics.go). What does not: what any API means. A server is given a
// table of APIs (key, version range, Handler); handlers live with their
// owner (the broker's one file per API key), and so do Kafka error codes
// and zero-copy bodies (a Framed, such as the broker's Fetch response).
//
// The client side lives here too (client.go): Dial opens one connection
// to a Kafka-protocol server, learns its versions with ApiVersions, and
// Client.Request sends a kmsg.Request at exactly the version it carries —
// a broker forwarding a client's admin request to the active controller
// must not change its version — pipelining requests from any number of
// goroutines (one writer, one reader, waiters by correlation id) and
// bounding response frames by ClientConfig.MaxResponseBytes. A connection
// failure or protocol violation breaks a client for good (ErrClientClosed);
// the caller dials again.
//
// Goroutines: one accept loop (Serve); per connection a reader, which
// reads and decodes requests and runs their handlers one at a time in
// arrival order, and a writer, which writes replies strictly in request
// order, waiting on deferred replies (Reply.Done) without blocking the
// reader. A handler runs on its connection's reader; whatever must wait
// (an fsync, a long poll) happens in a goroutine of the handler's that
// completes the deferred reply.
//
// Invariants:
//   - Every byte from a client is hostile until checked. A frame's size
//     prefix is checked against socket.request.max.bytes before anything
//     is allocated, and its memory follows the bytes that arrive: the
//     first step takes at most 64 KiB (or what already waits in the socket),
//     and the buffer grows only once full, to twice its size or to what has
//     arrived, so a sender holds at most twice what it sent. A frame must
//     arrive within socket.request.read.timeout.ms of its prefix.
//   - Request memory is bounded server-wide by queued.max.request.bytes
//     twice over (budget.go): frames take their bytes step by step before
//     allocating them, decoded requests take what wire/shape says kmsg will
//     allocate before it decodes; both are returned when the reply has been
//     written or abandoned. When a budget is spent, connections are not read
//     (backpressure), never dropped. One growing frame at a time may
//     overdraw the frame budget (growing while holding could otherwise
//     deadlock), so frames hold at most the budget plus one
//     socket.request.max.bytes.
//   - A body's shape (every count, length and tagged-field section) is
//     checked by wire/shape at a cost linear in its size before kmsg sees
//     it; the server refuses, at NewServer, to serve an API shape has no
//     schema for.
//   - Replies per connection: at most queued.max.requests are queued; when
//     full the reader stops reading. Replies are written in request order,
//     a deferred one only once its Done is closed; a request frame goes
//     back to its pool only after its reply is written or abandoned, since
//     a decoded body aliases it.
//   - Closing: a protocol violation, a handler error or panic, a write
//     error, an idle connection or a stalled frame closes that connection
//     and no other; its request context is cancelled, deferred replies are
//     still waited for and Framed bodies released exactly once. A clean EOF
//     between frames, and a graceful Shutdown, stop the reader only: every
//     queued reply is still written. Once reader and writer are done, the
//     connection's OnClose functions run.
//   - Shutdown stops accepting and reading, cancels request contexts, waits
//     (bounded by its context) for in-flight replies, then cuts what is
//     left; Serve returns only after that.
//   - Bad input is counted (strata.<name>.bad_input{kind}) and logged at
//     most once per kind every 10 s; an ApiVersions request above v4 is
//     negotiation (KIP-511), answered in v0 with UNSUPPORTED_VERSION and our
//     range, and neither counted nor logged as bad input.
//
// Locks: Server.mu guards the listener and the connection set; Conn.mu its
// OnClose list; memBudget.mu each budget. None is held across I/O or while
// another is taken.
package wire
