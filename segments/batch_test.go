package segments

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var codecs = []struct {
	name   string
	codec  int8
	xerial bool
}{
	{"none", CompressionNone, false},
	{"gzip", CompressionGzip, false},
	{"snappy", CompressionSnappy, false},
	{"snappy-xerial", CompressionSnappy, true},
	{"lz4", CompressionLZ4, false},
	{"zstd", CompressionZstd, false},
}

func TestValidateBatchesCodecs(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			b := makeBatch(t, testBatch{records: 200, valueSize: 300, tsStep: 7, codec: c.codec, xerial: c.xerial})
			// kmsg agrees with the encoding.
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(b); err != nil {
				t.Fatalf("kmsg: %v", err)
			}
			hs, err := ValidateBatches(b, 1<<20, false)
			if err != nil {
				t.Fatalf("ValidateBatches: %v", err)
			}
			h := hs[0]
			if h.RecordCount != 200 || h.LastOffsetDelta != 199 || h.Compression() != c.codec || h.Size() != int64(len(b)) ||
				h.BaseTimestamp != rb.FirstTimestamp || uint32(rb.CRC) != h.CRC {
				t.Fatalf("header %+v", h)
			}
			if want := rb.FirstTimestamp + 199*7; h.MaxTimestamp != want {
				t.Fatalf("MaxTimestamp %d, want %d", h.MaxTimestamp, want)
			}
		})
	}
}

func TestValidateBatchesMany(t *testing.T) {
	var payload []byte
	for i := range 5 {
		payload = append(payload, makeBatch(t, testBatch{records: i + 1, valueSize: 10, codec: int8(i % 5)})...)
	}
	hs, err := ValidateBatches(payload, 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 5 {
		t.Fatalf("%d headers", len(hs))
	}
	for i, h := range hs {
		if h.RecordCount != int32(i+1) {
			t.Fatalf("batch %d: %d records", i, h.RecordCount)
		}
	}
}

// rebuild replaces a batch's record section (uncompressed) and count.
func rebuild(t *testing.T, recs []byte, count int32, lastDelta int32) []byte {
	t.Helper()
	return finishBatch(kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: lastDelta, FirstTimestamp: 1, MaxTimestamp: 1,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: count, Records: recs,
	})
}

func TestValidateBatchesRejects(t *testing.T) {
	good := makeBatch(t, testBatch{records: 3, valueSize: 20})
	recs := encodeRecords(t, 3, 20, 1)
	var corrupt *CorruptError
	isCorrupt := func(err error) bool { return errors.As(err, &corrupt) }
	isInvalid := func(err error) bool { return errors.Is(err, ErrInvalidRecord) }
	isTooLarge := func(err error) bool { return errors.Is(err, ErrRecordTooLarge) }
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }

	// A record whose offset delta is not its index.
	badDelta := encodeRecords(t, 1, 20, 1)
	badDelta = append(badDelta, encodeRecords(t, 1, 20, 1)...) // second record has delta 0
	// A zstd bomb: 80 MiB of zeros in a small batch, over the 64 MiB floor.
	// The record is well formed (one 80 MiB value), so only the limit stops it.
	bombRecs := func() []byte {
		r := kmsg.Record{Value: make([]byte, 80<<20)}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		enc, _ := zstd.NewWriter(nil)
		return enc.EncodeAll(r.AppendTo(nil), nil)
	}()
	bomb := finishBatch(kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(CompressionZstd), LastOffsetDelta: 0, NumRecords: 1,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, Records: bombRecs,
	})

	tests := []struct {
		name    string
		payload []byte
		max     int32
		check   func(error) bool
	}{
		{"empty", nil, 0, isInvalid},
		{"short header", good[:40], 0, isCorrupt},
		{"truncated batch", good[:len(good)-1], 0, isCorrupt},
		{"trailing bytes", append(bytes.Clone(good), 1, 2, 3), 0, isCorrupt},
		{"length too small", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[offLength:], 10); return b }), 0, isCorrupt},
		{"length 2 GiB", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[offLength:], 0x7fffffff); return b }), 0, isCorrupt},
		{"negative length", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[offLength:], 0xffffffff); return b }), 0, isCorrupt},
		{"bad crc", edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), 0, isCorrupt},
		{"magic 1", edit(func(b []byte) []byte { b[offMagic] = 1; return b }), 0, isInvalid},
		{"too large", good, int32(len(good) - 1), isTooLarge},
		{"count lies high", rebuild(t, recs, 4, 3), 0, isInvalid},
		{"count lies low", rebuild(t, recs, 2, 1), 0, isInvalid},
		{"zero records", rebuild(t, nil, 0, -1), 0, isInvalid},
		{"lastOffsetDelta mismatch", rebuild(t, recs, 3, 5), 0, isInvalid},
		{"offset delta not index", rebuild(t, badDelta, 2, 1), 0, isInvalid},
		{"record length lies", rebuild(t, append([]byte{0x7e}, recs[1:]...), 3, 2), 0, isInvalid},
		{"garbage records", rebuild(t, bytes.Repeat([]byte{0xff}, 30), 3, 2), 0, isInvalid},
		{"unknown codec", edit(func(b []byte) []byte { b[offAttributes+1] |= 7; fixCRC(b); return b }), 0, isInvalid},
		{"gzip garbage", edit(func(b []byte) []byte { b[offAttributes+1] |= byte(CompressionGzip); fixCRC(b); return b }), 0, isInvalid},
		{"zstd bomb", bomb, 1 << 20, isTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ValidateBatches(tc.payload, tc.max, false)
			if err == nil || !tc.check(err) {
				t.Fatalf("got %v (%T)", err, err)
			}
		})
	}
}

func TestValidateCompressedCountLies(t *testing.T) {
	for _, c := range codecs[1:] {
		t.Run(c.name, func(t *testing.T) {
			recs := compress(t, c.codec, c.xerial, encodeRecords(t, 5, 10, 1))
			for _, n := range []int32{4, 6} {
				b := finishBatch(kmsg.RecordBatch{
					PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(c.codec), LastOffsetDelta: n - 1, NumRecords: n,
					ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, Records: recs,
				})
				if _, err := ValidateBatches(b, 0, false); !errors.Is(err, ErrInvalidRecord) {
					t.Fatalf("count %d: got %v", n, err)
				}
			}
		})
	}
}

func TestParseBatchHeader(t *testing.T) {
	b := makeBatch(t, testBatch{records: 2, producer: 42, seq: 7})
	h, err := ParseBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.ProducerID != 42 || h.BaseSequence != 7 || h.ProducerEpoch != -1 || h.Magic != 2 || h.LastOffset() != 1 || h.IsTransactional() || h.IsControl() {
		t.Fatalf("%+v", h)
	}
	if _, err := ParseBatchHeader(b[:60]); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("short: %v", err)
	}
	b[offMagic] = 0
	if _, err := ParseBatchHeader(b); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("magic: %v", err)
	}
}

func TestPatchBatch(t *testing.T) {
	b := makeBatch(t, testBatch{records: 3, tsStep: 10})
	hs, err := ValidateBatches(b, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	crc := hs[0].CRC
	// CreateTime with a correct maxTimestamp: CRC untouched.
	h := patchBatch(b, hs[0], 1000, 7, CreateTime, 5)
	if h.CRC != crc || h.BaseOffset != 1000 || h.PartitionLeaderEpoch != 7 {
		t.Fatalf("%+v", h)
	}
	if got, _ := ParseBatchHeader(b); got != h {
		t.Fatalf("bytes say %+v, header %+v", got, h)
	}
	// LogAppendTime: bit, maxTimestamp and CRC change; still valid.
	h = patchBatch(b, hs[0], 2000, 8, LogAppendTime, 12345)
	if h.TimestampType() != LogAppendTime || h.MaxTimestamp != 12345 || h.CRC == crc {
		t.Fatalf("%+v", h)
	}
	if _, err := ValidateBatches(b, 0, false); err != nil {
		t.Fatalf("patched batch invalid: %v", err)
	}
	// A client maxTimestamp that lies is corrected under CreateTime.
	b2 := makeBatch(t, testBatch{records: 3, tsStep: 10})
	binary.BigEndian.PutUint64(b2[offMaxTimestamp:], 1)
	fixCRC(b2)
	hs, err = ValidateBatches(b2, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	h = patchBatch(b2, hs[0], 0, 0, CreateTime, 0)
	if got, _ := ParseBatchHeader(b2); got.MaxTimestamp != hs[0].MaxTimestamp || got.MaxTimestamp == 1 || batchCRC(b2) != got.CRC {
		t.Fatalf("maxTimestamp not corrected: %+v", got)
	}
}

func TestFindTimestamp(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			b := makeBatch(t, testBatch{records: 10, tsStep: 100, codec: c.codec, xerial: c.xerial})
			h, _ := ParseBatchHeader(b)
			h.BaseOffset = 1000
			for _, tc := range []struct {
				ts   int64
				from Offset
				want Offset // -1: none
			}{
				{h.BaseTimestamp - 5, 0, 1000},
				{h.BaseTimestamp + 1, 0, 1001},
				{h.BaseTimestamp + 900, 0, 1009},
				{h.BaseTimestamp + 901, 0, -1},
				{h.BaseTimestamp, 1004, 1004},
			} {
				off, ts, found, err := FindTimestamp(b, h, tc.from, tc.ts)
				if err != nil || found != (tc.want >= 0) || found && off != tc.want {
					t.Fatalf("ts %d from %d: %d %v %v, want %d", tc.ts, tc.from, off, found, err, tc.want)
				}
				if found && ts != h.BaseTimestamp+int64(off-1000)*100 {
					t.Fatalf("record ts %d", ts)
				}
			}
			bad := bytes.Clone(b)
			bad[len(bad)-1] ^= 1
			if _, _, _, err := FindTimestamp(bad, h, 0, 0); err == nil {
				t.Fatalf("corrupt batch searched without error")
			}
		})
	}
}

func BenchmarkValidateBatches(b *testing.B) {
	for _, c := range codecs {
		b.Run(c.name, func(b *testing.B) {
			// ~1 MiB of 1 KiB records, like the produce benchmark.
			batch := makeBatch(b, testBatch{records: 1000, valueSize: 1024, codec: c.codec, xerial: c.xerial})
			b.SetBytes(int64(1000 * 1024))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ValidateBatches(batch, 2<<20, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func ExampleValidateBatches() {
	_, err := ValidateBatches([]byte("not a batch"), 1<<20, false)
	fmt.Println(err)
	// Output: segments: corrupt batch in "" at position 0 (offset -1): 11 trailing bytes, shorter than a batch header
}
