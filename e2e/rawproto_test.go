package e2e

// Raw Kafka protocol helpers: a connection that sends kmsg-encoded requests (or arbitrary bytes)
// and a hand-built magic-v2 record batch whose fields can be made to lie, for the hostile-input
// and timestamp tests. Requests and responses are encoded by kmsg; only the record batch — the
// thing under attack — is laid out here.

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type rawRecord struct {
	Key, Value []byte // nil key is encoded as null
	Timestamp  int64  // absolute, ms
}

// batchOpts make a batch lie about itself.
type batchOpts struct {
	countDelta int  // added to the record-count field (after the CRC is computed over it)
	badCRC     bool // flip one bit of the CRC field
	// codec sets the attributes' compression bits (1 gzip, 2 snappy, 3 lz4, 4 zstd); compress
	// turns the encoded records into the batch's records section. A nil compress with a codec
	// stores the records section as given by recordsOverride (garbage, a bomb, …).
	codec           int16
	compress        func([]byte) []byte
	recordsOverride []byte
}

// encodeBatch lays out an uncompressed magic-v2 record batch (base offset 0, no producer id)
// with a correct length and CRC32C unless opts says otherwise.
func encodeBatch(recs []rawRecord, opts batchOpts) []byte {
	if len(recs) == 0 {
		panic("encodeBatch: no records")
	}
	baseTs, maxTs := recs[0].Timestamp, recs[0].Timestamp
	for _, r := range recs {
		maxTs = max(maxTs, r.Timestamp)
	}
	var records []byte
	for i, r := range recs {
		var body []byte
		body = append(body, 0) // attributes
		body = kbin.AppendVarlong(body, r.Timestamp-baseTs)
		body = kbin.AppendVarint(body, int32(i))
		if r.Key == nil {
			body = kbin.AppendVarint(body, -1)
		} else {
			body = kbin.AppendVarint(body, int32(len(r.Key)))
			body = append(body, r.Key...)
		}
		body = kbin.AppendVarint(body, int32(len(r.Value)))
		body = append(body, r.Value...)
		body = kbin.AppendVarint(body, 0) // headers
		records = kbin.AppendVarint(records, int32(len(body)))
		records = append(records, body...)
	}
	switch {
	case opts.recordsOverride != nil:
		records = opts.recordsOverride
	case opts.compress != nil:
		records = opts.compress(records)
	}
	b := make([]byte, 0, 61+len(records))
	b = binary.BigEndian.AppendUint64(b, 0)                                 // baseOffset
	b = binary.BigEndian.AppendUint32(b, uint32(49+len(records)))           // batchLength: from partitionLeaderEpoch to the end
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)                        // partitionLeaderEpoch -1
	b = append(b, 2)                                                        // magic
	b = binary.BigEndian.AppendUint32(b, 0)                                 // crc, filled below
	b = binary.BigEndian.AppendUint16(b, uint16(opts.codec))                // attributes: compression, CreateTime
	b = binary.BigEndian.AppendUint32(b, uint32(len(recs)-1))               // lastOffsetDelta
	b = binary.BigEndian.AppendUint64(b, uint64(baseTs))                    // baseTimestamp
	b = binary.BigEndian.AppendUint64(b, uint64(maxTs))                     // maxTimestamp
	b = binary.BigEndian.AppendUint64(b, 0xffffffffffffffff)                // producerId -1
	b = binary.BigEndian.AppendUint16(b, 0xffff)                            // producerEpoch -1
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)                        // baseSequence -1
	b = binary.BigEndian.AppendUint32(b, uint32(len(recs)+opts.countDelta)) // record count (may lie)
	b = append(b, records...)
	crc := crc32.Checksum(b[21:], castagnoli)
	if opts.badCRC {
		crc ^= 1
	}
	binary.BigEndian.PutUint32(b[17:21], crc)
	return b
}

// rawConn is one TCP connection speaking the Kafka protocol by hand.
type rawConn struct {
	t    testing.TB
	c    net.Conn
	corr int32
	fmtr *kmsg.RequestFormatter
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return rawConnOver(t, c)
}

// rawConnOver wraps a connection the caller dialled (from a chosen source
// address, say); the caller closes it.
func rawConnOver(t testing.TB, c net.Conn) *rawConn {
	return &rawConn{t: t, c: c, fmtr: kmsg.NewRequestFormatter(kmsg.FormatterClientID("e2e-raw"))}
}

// writeRaw writes arbitrary bytes.
func (rc *rawConn) writeRaw(b []byte) error {
	rc.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := rc.c.Write(b)
	return err
}

// send writes req (its version already set) and returns the correlation id used.
func (rc *rawConn) send(req kmsg.Request) (int32, error) {
	rc.corr++
	return rc.corr, rc.writeRaw(rc.fmtr.AppendRequest(nil, req, rc.corr))
}

// readFrame reads one size-prefixed frame; a hang guard of d bounds the wait.
func (rc *rawConn) readFrame(d time.Duration) ([]byte, error) {
	rc.c.SetReadDeadline(time.Now().Add(d))
	var sz [4]byte
	if _, err := io.ReadFull(rc.c, sz[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(sz[:]))
	if n < 4 || n > 64<<20 {
		return nil, fmt.Errorf("response frame size %d", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(rc.c, b); err != nil {
		return nil, fmt.Errorf("reading %d-byte response: %w", n, err)
	}
	return b, nil
}

// roundTrip sends req and decodes its response into resp (whose version is set here).
func (rc *rawConn) roundTrip(req kmsg.Request, resp kmsg.Response) error {
	corr, err := rc.send(req)
	if err != nil {
		return fmt.Errorf("writing request: %w", err)
	}
	b, err := rc.readFrame(time.Minute)
	if err != nil {
		return err
	}
	return decodeResponse(b, corr, req.Key(), req.GetVersion(), resp)
}

// decodeResponse checks the correlation id and decodes the body (responseBody) into resp.
func decodeResponse(b []byte, corr int32, key, version int16, resp kmsg.Response) error {
	if len(b) < 4 {
		return errors.New("short response")
	}
	if got := int32(binary.BigEndian.Uint32(b)); got != corr {
		return fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	body, err := responseBody(b, key, version)
	if err != nil {
		return err
	}
	resp.SetVersion(version)
	return resp.ReadFrom(body)
}

// responseBody returns the body of a response frame (given from the correlation id on) to key at
// version: after the correlation id and, for flexible versions except ApiVersions' (whose
// response header is always v0), the header's tagged fields.
func responseBody(b []byte, key, version int16) ([]byte, error) {
	if len(b) < 4 {
		return nil, errors.New("short response")
	}
	b = b[4:]
	resp := kmsg.ResponseForKey(key)
	resp.SetVersion(version)
	if resp.IsFlexible() && key != kmsg.ApiVersions.Int16() {
		r := kbin.Reader{Src: b}
		for n := r.Uvarint(); n > 0 && r.Ok(); n-- {
			r.Uvarint()
			r.Span(int(r.Uvarint()))
		}
		if !r.Ok() {
			return nil, errors.New("response header tags: truncated")
		}
		b = r.Src
	}
	return b, nil
}

// gzipBytes compresses p with gzip (a batch codec in tests).
func gzipBytes(p []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(p)
	w.Close()
	return buf.Bytes()
}

// expectClosed reads until the broker closes the connection (EOF or reset). Any bytes that
// arrive first are returned (a broker may answer before closing). A read that times out means
// the broker kept a broken connection open.
func (rc *rawConn) expectClosed(d time.Duration) ([]byte, error) {
	rc.c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(rc.c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return b, fmt.Errorf("connection still open after %v (read %d bytes)", d, len(b))
	}
	return b, nil // EOF (nil from ReadAll) or a reset: closed either way
}
