package wiretest

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ClientID is the client id of the requests Send writes.
const ClientID = "h3-test"

var formatter = kmsg.NewRequestFormatter(kmsg.FormatterClientID(ClientID))

// Frame returns req as a whole request frame (size prefix, header with
// ClientID, body at req's version) with correlation id corr.
func Frame(req kmsg.Request, corr int32) []byte {
	return formatter.AppendRequest(nil, req, corr) // AppendRequest frames correctly only into an empty slice
}

// Send writes req's frame to c.
func Send(t testing.TB, c net.Conn, req kmsg.Request, corr int32) {
	t.Helper()
	if _, err := c.Write(Frame(req, corr)); err != nil {
		t.Fatal(err)
	}
}

// FlexibleHeader reports whether a response of key at a flexible or
// non-flexible version has response header v1 (a tag section after the
// correlation id): every flexible response but ApiVersions, which keeps
// header v0 so a client can read it before it knows our versions (KIP-511).
func FlexibleHeader(key int16, flexible bool) bool {
	return flexible && key != kmsg.ApiVersions.Int16()
}

// ReadResponse reads one response frame from c and decodes it into resp
// (whose version must be set), checking the correlation id.
func ReadResponse(t testing.TB, c net.Conn, wantCorr int32, resp kmsg.Response) {
	t.Helper()
	body := ReadResponseBody(t, c, wantCorr, FlexibleHeader(resp.Key(), resp.IsFlexible()))
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode %s v%d response: %v", kmsg.NameForKey(resp.Key()), resp.GetVersion(), err)
	}
}

// ReadResponseBody reads one response frame from c, checks its correlation
// id and (if flexibleHeader) its empty header tag section, and returns the
// body.
func ReadResponseBody(t testing.TB, c net.Conn, wantCorr int32, flexibleHeader bool) []byte {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("reading response size: %v", err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, frame); err != nil {
		t.Fatalf("reading response: %v", err)
	}
	if corr := int32(binary.BigEndian.Uint32(frame)); corr != wantCorr {
		t.Fatalf("correlation id %d, want %d", corr, wantCorr)
	}
	frame = frame[4:]
	if flexibleHeader {
		if len(frame) == 0 || frame[0] != 0 {
			t.Fatalf("flexible response header without an empty tag section")
		}
		frame = frame[1:]
	}
	return frame
}

// ExpectClosed reads until the server closes c; anything it sends first is
// an error.
func ExpectClosed(t testing.TB, c net.Conn) {
	t.Helper()
	var buf [1]byte
	n, err := c.Read(buf[:])
	if n != 0 || err == nil {
		t.Fatalf("connection still open: read %d bytes, err %v", n, err)
	}
	if !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("unexpected read error %v (want EOF or reset)", err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// APIVersionsRequest is an ApiVersions request at version, with the v3+
// client software fields filled.
func APIVersionsRequest(version int16) *kmsg.ApiVersionsRequest {
	r := kmsg.NewPtrApiVersionsRequest()
	r.SetVersion(version)
	r.ClientSoftwareName, r.ClientSoftwareVersion = "strata-test", "1.0"
	return r
}

// APIVersions runs one ApiVersions exchange at version on c, fails the
// test unless it succeeds, and returns the response.
func APIVersions(t testing.TB, c net.Conn, version int16, corr int32) *kmsg.ApiVersionsResponse {
	t.Helper()
	Send(t, c, APIVersionsRequest(version), corr)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(version)
	ReadResponse(t, c, corr, resp)
	if resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions v%d: error %d", version, resp.ErrorCode)
	}
	return resp
}
