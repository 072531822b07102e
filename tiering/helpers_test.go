package tiering

import (
	"encoding/json"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/stratalog/strata/segments"
)

var (
	testID = TopicID{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10}
	testTP = TopicPartition{Topic: "orders", TopicID: testID, Partition: 3}
)

// testSegment returns a valid segment [base, end) uploaded at epoch whose
// records are all of epoch, with timestamps 10 ms per offset.
func testSegment(base, end segments.Offset, epoch segments.LeaderEpoch) Segment {
	parts := PartBytes{Log: int64(end-base) * 100, Index: 80, TimeIndex: 120, Epochs: 24, Snapshot: 0}
	return Segment{
		BaseOffset:     base,
		EndOffset:      end,
		LeaderEpoch:    epoch,
		UID:            NewUID(),
		ObjectBytes:    parts.Log + parts.Index + parts.TimeIndex + parts.Epochs + parts.Snapshot,
		Parts:          parts,
		FirstTimestamp: int64(base) * 10,
		MaxTimestamp:   int64(end-1) * 10,
		Epochs:         []EpochEntry{{Epoch: epoch, StartOffset: base}},
		CRC32C:         0xdeadbeef,
		UploadTimeMs:   1_700_000_000_000,
	}
}

// buildManifest commits nothing: it returns generation 1 at epoch with
// segs appended, failing the test on any error.
func buildManifest(t testing.TB, epoch segments.LeaderEpoch, segs ...Segment) *Manifest {
	t.Helper()
	m, err := NewManifest(testTP).Next(epoch)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		if m, err = m.With(s); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// chunkSums returns the CRC-32C of each chunkBytes piece of b, computed
// apart from the code under test.
func chunkSums(b []byte, chunkBytes int64) CRCs {
	var out CRCs
	for c := range slices.Chunk(b, int(chunkBytes)) {
		out = append(out, crc32.Checksum(c, crc32cTable))
	}
	return out
}

// jsonMarshalForTest encodes m without Encode's validation, to feed broken
// manifests to the decoder.
func jsonMarshalForTest(m *Manifest) ([]byte, error) { return json.Marshal(m) }
