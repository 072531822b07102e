package wire

// Request framing and header decoding, and response framing.
//
// A request frame is a 4-byte big-endian size followed by that many bytes:
// the request header, then the body. The header is v1 (api key, api
// version, correlation id, nullable client id) or, for flexible versions of
// an API, v2 (v1 plus a tagged-field section). The body is decoded by kmsg.
// A response frame is a 4-byte size, the correlation id, a tagged-field byte
// for flexible versions (response header v1) — except ApiVersions, whose
// response header is always v0 so that a client can read it before it knows
// which versions we speak — then the kmsg-encoded body.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/wire/shape"
)

// Bad-input kinds, the values of the "kind" attribute of the bad-input
// counter. Each closes the connection — except badAPIVersions, which is not
// bad input at all but version negotiation: it gets an UNSUPPORTED_VERSION
// reply and is not counted.
const (
	badFrameSize      = "frame_size"          // size prefix <= 0 or above socket.request.max.bytes
	badTruncatedFrame = "truncated_frame"     // connection ended inside a frame
	badSlowFrame      = "slow_frame"          // a frame did not arrive within socket.request.read.timeout.ms
	badHeader         = "header"              // header shorter than its fields
	badUnknownAPI     = "unknown_api"         // API key we do not serve
	badVersion        = "unsupported_version" // version outside our range (not ApiVersions)
	badAPIVersions    = "api_versions_version"
	badShape          = "shape" // the body claims more elements, bytes or tagged fields than it holds (shape.Check)
	badBody           = "body"  // the body's shape held, but kmsg could not decode it
)

// minRequestHeaderBytes is the smallest valid header: api key (2) + api
// version (2) + correlation id (4) + client id length (2).
const minRequestHeaderBytes = 2 + 2 + 4 + 2

// badInputError is a protocol violation by the client: it is logged,
// counted by kind, and (but for badAPIVersions) closes the connection.
type badInputError struct {
	kind string
	err  error
}

func (e *badInputError) Error() string { return "bad input (" + e.kind + "): " + e.err.Error() }
func (e *badInputError) Unwrap() error { return e.err }

func badInput(kind, format string, args ...any) *badInputError {
	return &badInputError{kind: kind, err: fmt.Errorf(format, args...)}
}

// frameHooks lets the connection follow a frame as it is read. Either
// may be nil.
type frameHooks struct {
	// started is called once the size prefix has arrived, before any body
	// byte is read (the connection arms the frame's read deadline).
	started func(size int32)
	// reserve is called with n before each allocation of n more bytes of
	// the frame: the first with growth false, later ones (the frame
	// doubling once full) with growth true. An error from it is returned
	// as is.
	reserve func(n int64, growth bool) error
	// arrived reports how many bytes have arrived and wait to be read
	// (the socket's receive queue): a step may take that much at once,
	// since those bytes are really there. It saves copying a large frame
	// from a fast sender through every doubling.
	arrived func() int
}

// readFrame reads one request frame from r. The size is checked against
// maxBytes before anything is allocated, so a hostile size (2 GiB,
// negative) costs nothing, and memory follows the bytes that actually
// arrive: the first step is at most firstFrameStep (or what has already
// arrived), and the buffer grows only once it is full, to twice its size or
// to what has arrived, so a frame holds at most twice what its sender
// sent. Frames come from the frame pools; the caller owns the result and
// returns it with putFrame once nothing aliases it (decoded []byte fields,
// such as Produce's records, do).
//
// io.EOF means the peer closed cleanly between frames; a frame cut short is
// a badTruncatedFrame.
func readFrame(r *bufio.Reader, sizeBuf *[4]byte, maxBytes int32, hooks frameHooks) ([]byte, error) {
	if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, &badInputError{kind: badTruncatedFrame, err: err}
		}
		return nil, err
	}
	size := int(int32(binary.BigEndian.Uint32(sizeBuf[:])))
	if size <= 0 || size > int(maxBytes) {
		return nil, badInput(badFrameSize, "request size %d outside 1..%d (socket.request.max.bytes)", size, maxBytes)
	}
	if hooks.started != nil {
		hooks.started(int32(size))
	}
	var frame []byte
	n := 0
	for {
		next := max(2*len(frame), firstFrameStep)
		if hooks.arrived != nil && next < size {
			next = max(next, n+r.Buffered()+hooks.arrived())
		}
		next = min(size, next)
		if hooks.reserve != nil {
			if err := hooks.reserve(int64(next-len(frame)), frame != nil); err != nil {
				putFrame(frame)
				return nil, err
			}
		}
		grown := getFrame(next)
		copy(grown, frame[:n])
		putFrame(frame)
		frame = grown
		m, err := io.ReadFull(r, frame[n:])
		n += m
		if err != nil {
			putFrame(frame)
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil, &badInputError{kind: badTruncatedFrame, err: fmt.Errorf("%d-byte frame cut at %d bytes: %w", size, n, io.ErrUnexpectedEOF)}
			}
			return nil, err
		}
		if n == size {
			return frame, nil
		}
	}
}

// decodedRequest is a parsed frame.
type decodedRequest struct {
	header Header
	api    *API
	body   kmsg.Request
	// decodeTime is what checking the body's shape and decoding it took
	// (waiting for memory in between not included).
	decodeTime time.Duration
}

// decodeRequest parses a frame's header, checks its body's shape
// (shape.Check: every count and length bounded by the bytes present, at a
// cost linear in the frame) and decodes the body with kmsg, for the APIs
// in table. Between the two it calls reserve, if non-nil, with the memory
// the decode will allocate; an error from reserve is returned as is.
// Other errors are *badInputError. For an ApiVersions request above our
// maximum version the error's kind is badAPIVersions and the returned
// header has the key, version and correlation id: the caller answers it
// with apiVersionsUnsupported.
func decodeRequest(frame []byte, table map[int16]*API, reserve func(decodedBytes int64) error) (decodedRequest, error) {
	var d decodedRequest
	if len(frame) < minRequestHeaderBytes {
		return d, badInput(badHeader, "%d-byte request, shorter than a header", len(frame))
	}
	start := time.Now()
	r := kbin.Reader{Src: frame}
	d.header.APIKey = r.Int16()
	d.header.APIVersion = r.Int16()
	d.header.CorrelationID = r.Int32()
	key, version := d.header.APIKey, d.header.APIVersion

	a := table[key]
	if a == nil {
		return d, badInput(badUnknownAPI, "unknown API key %d (version %d)", key, version)
	}
	if version < a.MinVersion || version > a.MaxVersion {
		if key == kmsg.ApiVersions.Int16() && version > a.MaxVersion {
			return d, badInput(badAPIVersions, "ApiVersions v%d above our maximum v%d", version, a.MaxVersion)
		}
		return d, badInput(badVersion, "%s v%d outside v%d–v%d", kmsg.NameForKey(key), version, a.MinVersion, a.MaxVersion)
	}
	req := kmsg.RequestForKey(key) // not nil: NewServer checked the table
	req.SetVersion(version)

	// Header v1 and v2 both carry a non-compact nullable client id; v2
	// (flexible requests) adds tagged fields, none of which we use. Each
	// tag takes at least two bytes, which the loop's Ok check enforces.
	d.header.ClientID = r.NullableString()
	if req.IsFlexible() {
		n := r.Uvarint()
		for i := uint32(0); i < n && r.Ok(); i++ {
			r.Uvarint() // tag
			r.Span(int(r.Uvarint()))
		}
	}
	if !r.Ok() {
		return d, badInput(badHeader, "%s v%d: truncated request header", kmsg.NameForKey(key), version)
	}
	decodedBytes, err := shape.Check(req, r.Src)
	d.decodeTime = time.Since(start)
	if err != nil {
		return d, badInput(badShape, "%v", err)
	}
	if reserve != nil {
		if err := reserve(decodedBytes); err != nil {
			return d, err
		}
	}
	start = time.Now()
	if err := req.ReadFrom(r.Src); err != nil {
		// The shape held, so kmsg refused a value, not a length: most
		// likely a null where its field allows none.
		return d, badInput(badBody, "%s v%d: body does not decode although its lengths hold (a null in a field that takes none?)", kmsg.NameForKey(key), version)
	}
	d.decodeTime += time.Since(start)
	d.api = a
	d.body = req
	return d, nil
}

// responseFlexibleHeader reports whether the response to key at version
// uses response header v1 (a tag byte after the correlation id).
// ApiVersions never does (KIP-511).
func responseFlexibleHeader(key int16, flexible bool) bool {
	return flexible && key != kmsg.ApiVersions.Int16()
}

// appendResponse appends a whole response frame (size, header, body) for
// msg, which must already have its version set.
func appendResponse(dst []byte, correlationID int32, msg kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = kbin.AppendInt32(dst, correlationID)
	if responseFlexibleHeader(msg.Key(), msg.IsFlexible()) {
		dst = append(dst, 0)
	}
	dst = msg.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// appendFramedHeader appends the size prefix and response header for the
// framed body f.
func appendFramedHeader(dst []byte, correlationID int32, f Framed) []byte {
	hdr := int64(4)
	if responseFlexibleHeader(f.Key(), f.Flexible()) {
		hdr++
	}
	dst = kbin.AppendInt32(dst, int32(hdr+f.Len()))
	dst = kbin.AppendInt32(dst, correlationID)
	if hdr == 5 {
		dst = append(dst, 0)
	}
	return dst
}

// errNilReply is a handler that returned neither a reply nor an error.
var errNilReply = errors.New("handler returned a nil reply")
