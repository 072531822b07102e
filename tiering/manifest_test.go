package tiering

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratalog/strata/segments"
)

func TestManifestRoundTrip(t *testing.T) {
	s2 := testSegment(300, 400, 2)
	s2.Epochs = []EpochEntry{{Epoch: 1, StartOffset: 300}, {Epoch: 2, StartOffset: 350}}
	s2.MaxTimestamp, s2.FirstTimestamp = -1, -1
	s2.Parts.Snapshot = 77
	s2.ObjectBytes += 77
	s2.ChunkBytes, s2.ChunkCRC32C = 1031, CRCs{0, 0xffffffff, 0x01020304, 0xdeadbeef, 7, 8, 9, 10, 11, 12}
	m := buildManifest(t, 2, testSegment(0, 100, 1), testSegment(100, 250, 1), s2)
	m.LogStartOffset = 42
	for _, in := range []*Manifest{NewManifest(testTP), buildManifest(t, 0), m} {
		b, err := in.Encode()
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		out, err := DecodeManifest(b)
		if err != nil {
			t.Fatalf("DecodeManifest(%s): %v", b, err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("round trip changed the manifest:\n in  %+v\n out %+v", in, out)
		}
		again, _ := out.Encode()
		if !bytes.Equal(b, again) {
			t.Fatalf("encoding is not canonical:\n%s\n%s", b, again)
		}
	}
	b, _ := NewManifest(testTP).Encode()
	if want := `{"version":2,"topic":"orders","topicId":"0123456789abcdeffedcba9876543210","partition":3,"leaderEpoch":-1,"generation":0,"logStartOffset":0,"segments":[]}`; string(b) != want {
		t.Errorf("empty manifest encodes to\n%s\nwant\n%s", b, want)
	}
	// Chunk checksums are one base64 string; a segment without them has
	// neither field.
	b, _ = m.Encode()
	if want := `"chunkBytes":1031,"chunkCrc32c":"AAAAAP////8BAgME3q2+7wAAAAcAAAAIAAAACQAAAAoAAAALAAAADA=="`; !strings.Contains(string(b), want) {
		t.Errorf("manifest encodes to\n%s\nwhich lacks %s", b, want)
	}
	if n := strings.Count(string(b), "chunkBytes"); n != 1 {
		t.Errorf("%d chunkBytes fields in %s, want only the checksummed segment's", n, b)
	}
}

// A version 1 manifest (before chunk checksums) is read as it is, and its
// next commit is version 2 with the same segments.
func TestManifestVersion1(t *testing.T) {
	m := buildManifest(t, 2, testSegment(0, 100, 1), testSegment(100, 250, 2))
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	v1 := strings.Replace(string(b), `"version":2`, `"version":1`, 1)
	old, err := DecodeManifest([]byte(v1))
	if err != nil {
		t.Fatalf("DecodeManifest(version 1): %v", err)
	}
	if old.Version != 1 || len(old.Segments) != 2 {
		t.Fatalf("decoded version 1 manifest: %+v", old)
	}
	if sums := old.Segments[0].ChunkSums(DefaultChunkBytes); sums != nil {
		t.Fatalf("a version 1 segment reports chunk checksums %v", sums)
	}
	next, err := old.Next(2)
	if err != nil {
		t.Fatal(err)
	}
	if next.Version != ManifestVersion || !reflect.DeepEqual(next.Segments, old.Segments) {
		t.Fatalf("Next of a version 1 manifest: version %d, segments %+v", next.Version, next.Segments)
	}
	withSums := testSegment(250, 300, 2)
	withSums.ChunkBytes, withSums.ChunkCRC32C = withSums.ObjectBytes, CRCs{1}
	if _, err := next.With(withSums); err != nil {
		t.Fatalf("adding a checksummed segment to the rewritten manifest: %v", err)
	}
	// Version 1 cannot carry chunk checksums.
	bad := strings.Replace(v1, `"crc32c":3735928559`, `"crc32c":3735928559,"chunkBytes":100000,"chunkCrc32c":"AAAAAQ=="`, 1)
	if _, err := DecodeManifest([]byte(bad)); !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), "version 1 manifest") {
		t.Fatalf("version 1 manifest with chunk checksums: %v", err)
	}
}

func TestSegmentChunkSums(t *testing.T) {
	s := testSegment(0, 100, 1)
	s.ChunkBytes, s.ChunkCRC32C = 4096, CRCs{10, 11, 12}
	for _, c := range []struct {
		chunkBytes int64
		want       CRCs
	}{{4096, CRCs{10, 11, 12}}, {8192, nil}, {2048, nil}} {
		if got := s.ChunkSums(c.chunkBytes); !slices.Equal(got, c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("ChunkSums(%d) = %v; want %v", c.chunkBytes, got, c.want)
		}
	}
}

// validManifest is the base that each invalid case breaks in one way.
func validManifest(t *testing.T) *Manifest {
	s1 := testSegment(0, 100, 1)
	s2 := testSegment(100, 200, 2)
	s2.Epochs = []EpochEntry{{Epoch: 1, StartOffset: 100}, {Epoch: 2, StartOffset: 150}}
	m := buildManifest(t, 3, s1, s2, testSegment(300, 400, 3))
	m.Generation = 9
	return m
}

func TestManifestValidate(t *testing.T) {
	if err := validManifest(t).Validate(); err != nil {
		t.Fatalf("the base manifest is invalid: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(m *Manifest)
		want   string
	}{
		{"version", func(m *Manifest) { m.Version = 3 }, "version 3"},
		{"version 0", func(m *Manifest) { m.Version = 0 }, "version 0"},
		{"chunk checksums without chunk size", func(m *Manifest) { m.Segments[0].ChunkCRC32C = CRCs{1} }, "segments[0].chunkCrc32c has 1 values without chunkBytes"},
		{"negative chunk size", func(m *Manifest) { m.Segments[0].ChunkBytes = -1 }, "segments[0].chunkBytes -1 is outside"},
		{"huge chunk size", func(m *Manifest) { m.Segments[0].ChunkBytes = MaxChunkBytes + 1 }, "segments[0].chunkBytes 2147483649 is outside"},
		{"chunk size without checksums", func(m *Manifest) { m.Segments[0].ChunkBytes = 4096 }, "segments[0].chunkCrc32c has 0 values, a 10224-byte object has 3 chunks of 4096 bytes"},
		{"too few chunk checksums", func(m *Manifest) { m.Segments[1].ChunkBytes, m.Segments[1].ChunkCRC32C = 4096, CRCs{1, 2} }, "segments[1].chunkCrc32c has 2 values, a 10224-byte object has 3 chunks"},
		{"chunk checksums in version 1", func(m *Manifest) {
			m.Version = 1
			m.Segments[1].ChunkBytes, m.Segments[1].ChunkCRC32C = 4096, CRCs{1, 2, 3}
		}, "segments[1].chunkBytes 4096 in a version 1 manifest"},
		{"topic", func(m *Manifest) { m.Topic = "a/b" }, `topic name "a/b"`},
		{"topic id", func(m *Manifest) { m.TopicID = TopicID{} }, "zero topic id"},
		{"partition", func(m *Manifest) { m.Partition = -1 }, "partition -1"},
		{"leader epoch below -1", func(m *Manifest) { m.LeaderEpoch = -2 }, "leaderEpoch -2"},
		{"no epoch after generation 0", func(m *Manifest) { m.LeaderEpoch = -1 }, "leaderEpoch -1 at generation 9"},
		{"generation 0 with segments", func(m *Manifest) { m.Generation = 0 }, "generation 0 must be empty"},
		{"negative log start", func(m *Manifest) { m.LogStartOffset = -1 }, "logStartOffset -1"},
		{"log start past first segment", func(m *Manifest) { m.LogStartOffset = 100 }, "logStartOffset 100 is not below segments[0].endOffset 100"},
		{"negative base", func(m *Manifest) { m.Segments[0].BaseOffset = -1; m.Segments[0].Epochs[0].StartOffset = -1 }, "segments[0].baseOffset -1"},
		{"empty range", func(m *Manifest) { m.Segments[2].EndOffset = 300 }, "segments[2].endOffset 300 is not above baseOffset 300"},
		{"overlap", func(m *Manifest) { m.Segments[2].BaseOffset = 150; m.Segments[2].Epochs[0].StartOffset = 150 }, "segments[2].baseOffset 150 is below segments[1].endOffset 200"},
		{"disorder", func(m *Manifest) { m.Segments[0], m.Segments[2] = m.Segments[2], m.Segments[0] }, "segments[1].baseOffset 100 is below segments[0].endOffset 400"},
		{"segment epoch above manifest", func(m *Manifest) { m.Segments[2].LeaderEpoch = 4 }, "segments[2].leaderEpoch 4 is above the manifest's leaderEpoch 3"},
		{"negative segment epoch", func(m *Manifest) { m.Segments[0].LeaderEpoch = -1 }, "segments[0].leaderEpoch -1"},
		{"zero uid", func(m *Manifest) { m.Segments[1].UID = UID{} }, "segments[1].uid is zero"},
		{"first timestamp", func(m *Manifest) { m.Segments[0].FirstTimestamp = -2 }, "segments[0].firstTimestamp -2"},
		{"max below first timestamp", func(m *Manifest) { m.Segments[0].MaxTimestamp = m.Segments[0].FirstTimestamp - 1 }, "segments[0].maxTimestamp -1 is below firstTimestamp 0"},
		{"upload time", func(m *Manifest) { m.Segments[0].UploadTimeMs = -5 }, "segments[0].uploadTimeMs -5"},
		{"empty log part", func(m *Manifest) { m.Segments[0].ObjectBytes -= m.Segments[0].Parts.Log; m.Segments[0].Parts.Log = 0 }, "segments[0].parts.log 0"},
		{"negative part", func(m *Manifest) { m.Segments[0].Parts.Index = -80; m.Segments[0].ObjectBytes -= 160 }, "segments[0].parts.index -80 is outside"},
		{"huge part", func(m *Manifest) { m.Segments[0].Parts.Snapshot = MaxPartBytes + 1 }, "segments[0].parts.snapshot 17179869185 is outside"},
		{"parts do not sum", func(m *Manifest) { m.Segments[1].ObjectBytes++ }, "segments[1].objectBytes 10225 is not the sum of the parts, 10224"},
		{"no epochs", func(m *Manifest) { m.Segments[0].Epochs = nil }, "segments[0].epochs is empty"},
		{"epochs not at base", func(m *Manifest) { m.Segments[0].Epochs[0].StartOffset = 1 }, "segments[0].epochs[0].startOffset 1 is not baseOffset 0"},
		{"epoch past end", func(m *Manifest) { m.Segments[1].Epochs[1].StartOffset = 200 }, "segments[1].epochs[1].startOffset 200 is not below endOffset 200"},
		{"epochs repeat", func(m *Manifest) { m.Segments[1].Epochs[1].Epoch = 1 }, "segments[1].epochs[1].epoch 1 does not increase"},
		{"epoch offsets repeat", func(m *Manifest) { m.Segments[1].Epochs[1].StartOffset = 100 }, "segments[1].epochs[1].startOffset 100 does not increase"},
		{"negative record epoch", func(m *Manifest) { m.Segments[0].Epochs[0].Epoch = -1 }, "segments[0].epochs[0].epoch -1"},
		{"records newer than uploader", func(m *Manifest) { m.Segments[1].LeaderEpoch = 1 }, "segments[1].leaderEpoch 1 is below its records' epoch 2"},
		{"epochs go back across segments", func(m *Manifest) { m.Segments[2].Epochs[0].Epoch = 1 }, "segments[2].epochs[0].epoch 1 is below segments[1]'s last epoch 2"},
		{"too many epochs", func(m *Manifest) {
			s := &m.Segments[0]
			s.EndOffset = MaxEpochEntries + 1
			s.Epochs = nil
			for i := range MaxEpochEntries + 1 {
				s.Epochs = append(s.Epochs, EpochEntry{Epoch: 0, StartOffset: segments.Offset(i)})
			}
		}, "segments[0].epochs has 10001 entries"},
		{"too many segments", func(m *Manifest) {
			m.Segments = make([]Segment, MaxSegments+1)
		}, "150001 segments"},
	}
	for _, c := range cases {
		m := validManifest(t)
		c.mutate(m)
		err := m.Validate()
		if !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate() = %v; want ErrInvalidManifest mentioning %q", c.name, err, c.want)
			continue
		}
		if len(m.Segments) > 1000 {
			continue // not worth encoding and decoding 150,001 segments
		}
		// The decoder applies the same checks to what it reads.
		b, jerr := jsonMarshalForTest(m)
		if jerr != nil {
			t.Fatal(jerr)
		}
		if _, err := DecodeManifest(b); !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("%s: DecodeManifest accepted it: %v", c.name, err)
		}
		if _, err := m.Encode(); !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("%s: Encode accepted it: %v", c.name, err)
		}
	}
}

func TestDecodeManifestRejects(t *testing.T) {
	good, err := validManifest(t).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeManifest(good); err != nil {
		t.Fatalf("control: %v", err)
	}
	s := string(good)
	cases := map[string]struct{ in, want string }{
		"empty":          {"", "EOF"},
		"not json":       {"manifest", "invalid character"},
		"array":          {"[]", "cannot unmarshal array"},
		"null":           {"null", "version 0"},
		"trailing data":  {s + "{}", "data after the JSON object"},
		"two objects":    {s + s, "data after the JSON object"},
		"unknown field":  {strings.Replace(s, `"generation"`, `"owner":"x","generation"`, 1), `unknown field "owner"`},
		"unknown nested": {strings.Replace(s, `"crc32c"`, `"md5":"x","crc32c"`, 1), `unknown field "md5"`},
		"newer version":  {strings.Replace(strings.Replace(s, `"version":2`, `"version":3`, 1), `"generation"`, `"chunks":[],"generation"`, 1), "unsupported version 3"},
		"bad checksums":  {strings.Replace(s, `"crc32c":3735928559`, `"crc32c":3735928559,"chunkBytes":4096,"chunkCrc32c":"AAAA"`, 1), "CRC list"},
		"odd checksums":  {strings.Replace(s, `"crc32c":3735928559`, `"crc32c":3735928559,"chunkBytes":4096,"chunkCrc32c":"AAAAAAA="`, 1), "not a whole number"},
		"string offset":  {strings.Replace(s, `"logStartOffset":0`, `"logStartOffset":"0"`, 1), "logStartOffset"},
		"float offset":   {strings.Replace(s, `"logStartOffset":0`, `"logStartOffset":0.5`, 1), "logStartOffset"},
		"epoch overflow": {strings.Replace(s, `"leaderEpoch":3,"generation"`, `"leaderEpoch":2147483648,"generation"`, 1), "leaderEpoch"},
		"bad uid":        {strings.Replace(s, `"uid":"`, `"uid":"X`, 1), "uid"},
		"bad topic id":   {strings.Replace(s, `"topicId":"01`, `"topicId":"`, 1), "topic id"},
	}
	for name, c := range cases {
		_, err := DecodeManifest([]byte(c.in))
		if !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: DecodeManifest = %v; want ErrInvalidManifest mentioning %q", name, err, c.want)
		}
	}
	huge := make([]byte, MaxManifestBytes+1)
	if _, err := DecodeManifest(huge); !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), "more than 67108864") {
		t.Errorf("oversized: DecodeManifest = %v", err)
	}
	// White space around the object is fine.
	if _, err := DecodeManifest([]byte("\n " + s + "\n")); err != nil {
		t.Errorf("white space: %v", err)
	}
}

func TestManifestFind(t *testing.T) {
	// [10,100) [100,200) gap [250,300) [300,400); log start 50.
	m := buildManifest(t, 1, testSegment(10, 100, 1), testSegment(100, 200, 1), testSegment(250, 300, 1), testSegment(300, 400, 1))
	m, _ = m.WithoutBefore(50)
	cases := []struct {
		off      segments.Offset
		wantBase segments.Offset // -1: not found
	}{
		{-1, -1}, {0, -1}, {10, -1}, {49, -1}, // below the log start
		{50, 10}, {99, 10}, {100, 100}, {199, 100},
		{200, 250}, {249, 250}, // in the gap: the next segment
		{250, 250}, {299, 250}, {300, 300}, {399, 300},
		{400, -1}, {1 << 62, -1}, // at or past the end
	}
	for _, c := range cases {
		s, ok := m.Find(c.off)
		if c.wantBase < 0 {
			if ok {
				t.Errorf("Find(%d) = segment at %d, want none", c.off, s.BaseOffset)
			}
			continue
		}
		if !ok || s.BaseOffset != c.wantBase {
			t.Errorf("Find(%d) = %d, %v; want segment at %d", c.off, s.BaseOffset, ok, c.wantBase)
		}
	}
	if _, ok := NewManifest(testTP).Find(0); ok {
		t.Error("Find in the empty manifest found something")
	}
	if got := m.EndOffset(); got != 400 {
		t.Errorf("EndOffset = %d, want 400", got)
	}
}

func TestManifestFindByTimestamp(t *testing.T) {
	s := []Segment{testSegment(0, 10, 0), testSegment(10, 20, 0), testSegment(20, 30, 0), testSegment(30, 40, 0)}
	// CreateTime timestamps need not grow: segment 1 holds newer records
	// than segment 2.
	s[0].FirstTimestamp, s[0].MaxTimestamp = 100, 200
	s[1].FirstTimestamp, s[1].MaxTimestamp = 150, 500
	s[2].FirstTimestamp, s[2].MaxTimestamp = 300, 400
	s[3].FirstTimestamp, s[3].MaxTimestamp = -1, -1
	m := buildManifest(t, 0, s...)
	cases := []struct {
		ts       int64
		wantBase segments.Offset
	}{{0, 0}, {200, 0}, {201, 10}, {400, 10}, {500, 10}, {501, -1}}
	for _, c := range cases {
		got, ok := m.FindByTimestamp(c.ts)
		if c.wantBase < 0 {
			if ok {
				t.Errorf("FindByTimestamp(%d) = segment at %d, want none", c.ts, got.BaseOffset)
			}
		} else if !ok || got.BaseOffset != c.wantBase {
			t.Errorf("FindByTimestamp(%d) = %d, %v; want segment at %d", c.ts, got.BaseOffset, ok, c.wantBase)
		}
	}
}

func TestManifestNextAndWith(t *testing.T) {
	m0 := NewManifest(testTP)
	if _, err := m0.With(testSegment(0, 10, 0)); !errors.Is(err, ErrInvalidManifest) {
		t.Errorf("With on generation 0 = %v, want ErrInvalidManifest", err)
	}
	m1, err := m0.Next(4)
	if err != nil {
		t.Fatal(err)
	}
	if m1.Generation != 1 || m1.LeaderEpoch != 4 || m0.Generation != 0 || m0.LeaderEpoch != -1 {
		t.Fatalf("Next: got generation %d epoch %d, receiver now %d/%d", m1.Generation, m1.LeaderEpoch, m0.Generation, m0.LeaderEpoch)
	}
	s := testSegment(0, 10, 4)
	m2, err := m1.With(s)
	if err != nil {
		t.Fatal(err)
	}
	s.Epochs[0].Epoch = 99 // the caller's slice is not the manifest's
	if len(m1.Segments) != 0 || len(m2.Segments) != 1 || m2.Segments[0].Epochs[0].Epoch != 4 {
		t.Fatalf("With: receiver has %d segments, result %d (%+v)", len(m1.Segments), len(m2.Segments), m2.Segments)
	}
	if _, err := m2.Next(3); !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "leader epoch 3 is below the manifest's 4") {
		t.Errorf("Next(3) after epoch 4 = %v, want ErrFenced naming both epochs", err)
	}
	if _, err := m2.Next(-1); !errors.Is(err, ErrInvalidManifest) {
		t.Errorf("Next(-1) = %v", err)
	}
	bad := map[string]Segment{
		"overlap":          testSegment(5, 20, 4),
		"newer uploader":   testSegment(10, 20, 5),
		"invalid":          {BaseOffset: 10, EndOffset: 10},
		"epochs go back":   func() Segment { s := testSegment(10, 20, 4); s.Epochs[0].Epoch = 3; return s }(),
		"no parts in sync": func() Segment { s := testSegment(10, 20, 4); s.ObjectBytes = 1; return s }(),
	}
	for name, s := range bad {
		if _, err := m2.With(s); !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("With(%s) = %v, want ErrInvalidManifest", name, err)
		}
	}
	// A gap is fine; so is a segment straddling the log start of an
	// empty manifest.
	if _, err := m2.With(testSegment(50, 60, 4)); err != nil {
		t.Errorf("With after a gap: %v", err)
	}
	e, _ := m2.WithoutBefore(15)
	if len(e.Segments) != 0 || e.LogStartOffset != 15 || e.EndOffset() != 15 {
		t.Fatalf("WithoutBefore(15) = %+v", e)
	}
	if _, err := e.With(testSegment(5, 15, 4)); !errors.Is(err, ErrInvalidManifest) {
		t.Errorf("With a segment ending at the log start = %v, want ErrInvalidManifest", err)
	}
	if _, err := e.With(testSegment(10, 20, 4)); err != nil {
		t.Errorf("With a segment straddling the log start: %v", err)
	}
}

func TestManifestWithoutBefore(t *testing.T) {
	m := buildManifest(t, 1, testSegment(0, 100, 1), testSegment(100, 200, 1), testSegment(200, 300, 1))
	bases := func(ss []Segment) []segments.Offset {
		var out []segments.Offset
		for _, s := range ss {
			out = append(out, s.BaseOffset)
		}
		return out
	}
	cases := []struct {
		off          segments.Offset
		wantStart    segments.Offset
		kept, gone   []segments.Offset
		sameManifest bool
	}{
		{0, 0, []segments.Offset{0, 100, 200}, nil, true},
		{-5, 0, []segments.Offset{0, 100, 200}, nil, true},
		{50, 50, []segments.Offset{0, 100, 200}, nil, false},
		{100, 100, []segments.Offset{100, 200}, []segments.Offset{0}, false},
		{250, 250, []segments.Offset{200}, []segments.Offset{0, 100}, false},
		{300, 300, nil, []segments.Offset{0, 100, 200}, false},
		{1000, 1000, nil, []segments.Offset{0, 100, 200}, false},
	}
	for _, c := range cases {
		got, removed := m.WithoutBefore(c.off)
		if got.LogStartOffset != c.wantStart || !reflect.DeepEqual(bases(got.Segments), c.kept) || !reflect.DeepEqual(bases(removed), c.gone) {
			t.Errorf("WithoutBefore(%d): start %d, kept %v, removed %v; want %d, %v, %v",
				c.off, got.LogStartOffset, bases(got.Segments), bases(removed), c.wantStart, c.kept, c.gone)
		}
		if (got == m) != c.sameManifest {
			t.Errorf("WithoutBefore(%d) returned the receiver: %v", c.off, got == m)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("WithoutBefore(%d) is invalid: %v", c.off, err)
		}
	}
	if len(m.Segments) != 3 || m.LogStartOffset != 0 {
		t.Fatalf("WithoutBefore changed its receiver: %+v", m)
	}
}

func TestManifestExpire(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	s := []Segment{testSegment(0, 10, 0), testSegment(10, 20, 0), testSegment(20, 30, 0), testSegment(30, 40, 0)}
	// Log parts: 1000 bytes each (testSegment: 100 per offset).
	s[0].MaxTimestamp = 100_000
	s[1].MaxTimestamp = 500_000
	s[2].FirstTimestamp, s[2].MaxTimestamp = -1, -1 // ages from upload time
	s[2].UploadTimeMs = 100_000
	s[3].MaxTimestamp = 900_000
	m := buildManifest(t, 0, s...)
	cases := []struct {
		name      string
		r         Retention
		wantStart segments.Offset // log start after; 0 and nothing removed if unchanged
		removed   int
	}{
		{"unlimited", Retention{Age: -1, Bytes: -1}, 0, 0},
		{"age keeps everything", Retention{Age: time.Hour, Bytes: -1}, 0, 0},
		// Segment 2 is old too, but behind the young segment 1: only a
		// prefix goes.
		{"age: a prefix only", Retention{Age: 600 * time.Second, Bytes: -1}, 10, 1},
		// Exactly retention.ms old is kept (now - ts must exceed it).
		{"age boundary", Retention{Age: 900 * time.Second, Bytes: -1}, 0, 0},
		{"age: segment without timestamps by upload time", Retention{Age: 400 * time.Second, Bytes: -1}, 30, 3},
		{"age: everything", Retention{Age: 0, Bytes: -1}, 40, 4},
		{"bytes keeps everything", Retention{Age: -1, Bytes: 4000}, 0, 0},
		{"bytes: one", Retention{Age: -1, Bytes: 3000}, 10, 1},
		{"bytes: just under three", Retention{Age: -1, Bytes: 2999}, 10, 1},
		{"bytes: all", Retention{Age: -1, Bytes: 0}, 40, 4},
		{"bytes count the untiered log", Retention{Age: -1, Bytes: 3000, UntieredBytes: 2000}, 30, 3},
		{"age then bytes", Retention{Age: 600 * time.Second, Bytes: 2000}, 20, 2},
	}
	for _, c := range cases {
		got, removed := m.Expire(c.r, now)
		if len(removed) != c.removed || got.LogStartOffset != c.wantStart {
			t.Errorf("%s: removed %d segments, log start %d; want %d, %d", c.name, len(removed), got.LogStartOffset, c.removed, c.wantStart)
		}
		if c.removed == 0 && got != m {
			t.Errorf("%s: nothing removed but a new manifest returned", c.name)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%s: result invalid: %v", c.name, err)
		}
	}
}

func TestPartRange(t *testing.T) {
	s := testSegment(0, 10, 0)
	s.Parts = PartBytes{Log: 1000, Index: 10, TimeIndex: 20, Epochs: 5, Snapshot: 7}
	want := map[Part][2]int64{PartLog: {0, 1000}, PartIndex: {1000, 10}, PartTimeIndex: {1010, 20}, PartEpochs: {1030, 5}, PartSnapshot: {1035, 7}}
	for p, w := range want {
		if off, n := s.PartRange(p); off != w[0] || n != w[1] {
			t.Errorf("PartRange(%v) = %d, %d; want %d, %d", p, off, n, w[0], w[1])
		}
	}
	if PartTimeIndex.String() != "timeIndex" || Part(9).String() != "Part(9)" {
		t.Errorf("Part names: %v %v", PartTimeIndex, Part(9))
	}
}

func TestManifestSegmentKey(t *testing.T) {
	s := testSegment(100, 200, 2)
	m := buildManifest(t, 2, s)
	key := m.SegmentKey(&m.Segments[0])
	ref, err := ParseSegmentKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if ref != (SegmentRef{TopicPartition: testTP, BaseOffset: 100, LeaderEpoch: 2, UID: s.UID}) {
		t.Fatalf("key %q parses to %+v", key, ref)
	}
}
