package tiering

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

// seedManifests returns encoded manifests for the fuzz corpus: valid ones
// of several shapes, and damaged variants.
func seedManifests(t testing.TB) [][]byte {
	s2 := testSegment(300, 400, 2)
	s2.Epochs = []EpochEntry{{Epoch: 1, StartOffset: 300}, {Epoch: 2, StartOffset: 350}}
	s2.FirstTimestamp, s2.MaxTimestamp = -1, -1
	s2.Parts.Snapshot = 77
	s2.ObjectBytes += 77
	s2.ChunkBytes, s2.ChunkCRC32C = 4096, make(CRCs, numChunks(s2.ObjectBytes, 4096))
	full := buildManifest(t, 2, testSegment(0, 100, 1), testSegment(100, 250, 1), s2)
	full.LogStartOffset = 42
	var out [][]byte
	for _, m := range []*Manifest{NewManifest(testTP), buildManifest(t, 0), buildManifest(t, 7, testSegment(1<<40, 1<<40+1, 7)), full} {
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	b := string(out[len(out)-1])
	out = append(out,
		[]byte(strings.Replace(b, `"version":2`, `"version":1`, 1)),
		[]byte(strings.Replace(b, `"version":2`, `"version":3`, 1)),
		[]byte(strings.Replace(b, `"chunkBytes":4096`, `"chunkBytes":4095`, 1)),
		[]byte(strings.Replace(b, `"baseOffset":100`, `"baseOffset":99`, 1)),
		[]byte(strings.Replace(b, `"endOffset":100`, `"endOffset":-100`, 1)),
		[]byte(strings.Replace(b, `"segments":[`, `"segments":null,"x":[`, 1)),
		[]byte(strings.ToUpper(b)),
		[]byte(b[:len(b)/2]),
		[]byte(b+b),
		[]byte("null"), []byte("{}"), []byte("[]"), []byte(`{"version":1e999}`), []byte(""),
	)
	return out
}

// DecodeManifest never panics, everything it accepts is valid, and a
// decoded manifest encodes canonically: encode, decode gives the same
// value and the same bytes.
func FuzzManifestDecode(f *testing.F) {
	for _, b := range seedManifests(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest(data)
		if err != nil {
			if m != nil {
				t.Fatalf("DecodeManifest returned a manifest and an error: %v", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("DecodeManifest accepted an invalid manifest: %v", err)
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("a decoded manifest does not encode: %v", err)
		}
		m2, err := DecodeManifest(enc)
		if err != nil {
			t.Fatalf("the encoding of a decoded manifest does not decode: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("decode(encode(m)) != m:\n%+v\n%+v", m, m2)
		}
		enc2, _ := m2.Encode()
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not canonical:\n%s\n%s", enc, enc2)
		}
		// The helpers hold up on whatever decodes.
		for i := range m.Segments {
			s := &m.Segments[i]
			if _, err := ParseSegmentKey(m.SegmentKey(s)); err != nil {
				t.Fatalf("segment %d's key does not parse: %v", i, err)
			}
			if got, ok := m.Find(max(s.BaseOffset, m.LogStartOffset)); !ok || got.BaseOffset != s.BaseOffset {
				t.Fatalf("Find(%d) = %d, %v", s.BaseOffset, got.BaseOffset, ok)
			}
		}
		cut, removed := m.WithoutBefore(m.EndOffset())
		if len(removed) != len(m.Segments) || cut.Validate() != nil {
			t.Fatalf("WithoutBefore(EndOffset) removed %d of %d segments: %v", len(removed), len(m.Segments), cut.Validate())
		}
	})
}

// DecodeMetadata never panics, everything it accepts is valid, and
// decoding is the inverse of encoding on what it accepts.
func FuzzMetadataDecode(f *testing.F) {
	good, err := testMetadata().Encode()
	if err != nil {
		f.Fatal(err)
	}
	empty, _ := NewClusterMetadata("c", time.UnixMilli(0), nil).Encode()
	s := string(good)
	for _, b := range []string{
		s, string(empty),
		strings.Replace(s, `"version":1`, `"version":2`, 1),
		strings.Replace(s, `"partitions":1`, `"partitions":0`, 1),
		strings.Replace(s, `"configs":{`, `"configs":{"":"",`, 1),
		strings.Replace(s, `"configs":{`, `"configs":{"a":"\ud800\u00e9<>&",`, 1),
		strings.Replace(s, `"audit"`, `"zzz"`, 1),
		s[:len(s)-3], "null", "{}", `{"topics":[{}]}`,
	} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeMetadata(data)
		if err != nil {
			if m != nil {
				t.Fatalf("DecodeMetadata returned metadata and an error: %v", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("DecodeMetadata accepted invalid metadata: %v", err)
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded metadata does not encode: %v", err)
		}
		m2, err := DecodeMetadata(enc)
		if err != nil {
			t.Fatalf("the encoding of decoded metadata does not decode: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("decode(encode(m)) != m:\n%+v\n%+v", m, m2)
		}
		enc2, _ := m2.Encode()
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not canonical:\n%s\n%s", enc, enc2)
		}
	})
}

// ParseSegmentKey accepts exactly what SegmentKey builds: whatever it
// accepts formats back to the same key.
func FuzzParseSegmentKey(f *testing.F) {
	f.Add(SegmentKey(testTP, 1000, 7, UID{1, 2, 3, 4, 5, 6, 7, 8}))
	f.Add(ManifestKey(testTP))
	f.Add(MetadataKey)
	f.Add("topics/a/00000000000000000000000000000001/0/segments/00000000000000000000-0000000000-0000000000000000.seg")
	f.Add("topics/a/00000000000000000000000000000001/00/segments/00000000000000000000-0000000000-0000000000000000.seg")
	f.Fuzz(func(t *testing.T, key string) {
		ref, err := ParseSegmentKey(key)
		if err != nil {
			return
		}
		if got := ref.Key(); got != key {
			t.Fatalf("ParseSegmentKey(%q) = %+v, which formats as %q", key, ref, got)
		}
	})
}
