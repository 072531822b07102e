package segments

import (
	"bytes"
	"testing"
	"time"
)

func TestClosedSegmentsPinnedWithIndexesAndEpochs(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4 << 10
	l := openTest(t, t.TempDir(), cfg)
	defer l.Close()
	for i := range 40 {
		b := makeBatch(t, testBatch{records: 4, valueSize: 100})
		hs, err := ValidateBatches(b, 1<<20, false)
		if err != nil {
			t.Fatal(err)
		}
		epoch := LeaderEpoch(1 + i/20) // epoch 2 starts half-way
		if _, err := l.Append(b, hs, epoch, t0); err != nil {
			t.Fatal(err)
		}
	}
	mustSync(t, l)
	segs, err := l.ClosedSegments(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 3 {
		t.Fatalf("%d closed segments, want several", len(segs))
	}
	var sawTwoEpochs bool
	for i, c := range segs {
		if i > 0 && c.Base != segs[i-1].Next {
			t.Fatalf("segment %d starts at %d, previous ends at %d", i, c.Base, segs[i-1].Next)
		}
		if c.IndexBytes == 0 || c.TimeIndexBytes == 0 || c.MaxTimestamp < 0 {
			t.Fatalf("segment %d: %+v without indexes", i, c)
		}
		// The pinned files read the segment's bytes.
		b := make([]byte, c.LogBytes)
		if _, err := c.Log.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		h, err := ParseBatchHeader(b)
		if err != nil || h.BaseOffset != c.Base {
			t.Fatalf("segment %d starts with batch %d (%v)", i, h.BaseOffset, err)
		}
		if len(c.Epochs) == 0 || c.Epochs[0].StartOffset > c.Base {
			t.Fatalf("segment %d: epochs %v do not cover its base %d", i, c.Epochs, c.Base)
		}
		sawTwoEpochs = sawTwoEpochs || len(c.Epochs) == 2
	}
	if !sawTwoEpochs {
		t.Fatalf("no segment spans the epoch change")
	}
	// Retention deleting a pinned segment leaves it readable until Release.
	first := segs[0]
	cfg.RetentionBytes = 0
	l.SetConfig(cfg)
	if n, err := l.ApplyRetention(t0); err != nil || n == 0 {
		t.Fatalf("ApplyRetention: %d, %v", n, err)
	}
	b := make([]byte, BatchHeaderSize)
	if _, err := first.Log.ReadAt(b, 0); err != nil {
		t.Fatalf("pinned segment unreadable after retention: %v", err)
	}
	for i := range segs {
		segs[i].Release()
		segs[i].Release() // twice is fine
	}
}

func TestLocalRetentionWaitsForUpload(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4 << 10
	cfg.RemoteStorage = true
	cfg.LocalRetentionBytes = 0
	cfg.LocalRetentionAge = -1
	l := openTest(t, t.TempDir(), cfg)
	defer l.Close()
	for range 40 {
		appendBatch(t, l, testBatch{records: 4, valueSize: 100}, t0)
	}
	mustSync(t, l)
	segs, _ := l.ClosedSegments(0)
	for i := range segs {
		segs[i].Release()
	}
	if n, err := l.ApplyRetention(t0); err != nil || n != 0 {
		t.Fatalf("retention deleted %d segments (%v) before any upload", n, err)
	}
	// Two segments uploaded: exactly those go.
	if err := l.SetUploadedTo(segs[1].Next); err != nil {
		t.Fatal(err)
	}
	if n, err := l.ApplyRetention(t0); err != nil || n != 2 {
		t.Fatalf("retention deleted %d segments (%v), want the 2 uploaded", n, err)
	}
	if got := l.StartOffset(); got != segs[2].Base {
		t.Fatalf("local start %d, want %d", got, segs[2].Base)
	}
	if err := l.SetUploadedTo(l.EndOffset() + 1); err == nil {
		t.Fatalf("SetUploadedTo beyond the end accepted")
	}
	// Local age: uploaded segments older than local.retention.ms go.
	cfg.LocalRetentionBytes = -1
	cfg.LocalRetentionAge = time.Hour
	l.SetConfig(cfg)
	if err := l.SetUploadedTo(segs[len(segs)-1].Next); err != nil {
		t.Fatal(err)
	}
	if n, _ := l.ApplyRetention(t0); n != 0 {
		t.Fatalf("young segments deleted")
	}
	if n, _ := l.ApplyRetention(time.Now().Add(24 * 365 * time.Hour)); n != len(segs)-2 {
		t.Fatalf("deleted %d old uploaded segments, want %d", n, len(segs)-2)
	}
	r, err := l.Read(l.StartOffset(), l.EndOffset(), 1<<20, true)
	if err != nil || len(bytes.TrimSpace(readAll(t, r))) == 0 {
		t.Fatalf("active segment unreadable: %v", err)
	}
}
