package segments

import (
	"bytes"
	"errors"
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

// With remote storage, total retention (retention.bytes/ms) too deletes
// only segments already uploaded: a store outage never loses data.
func TestTotalRetentionWaitsForUploadWithRemoteStorage(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4 << 10
	cfg.RemoteStorage = true
	cfg.RetentionBytes, cfg.RetentionAge = 0, time.Millisecond
	cfg.LocalRetentionBytes, cfg.LocalRetentionAge = -1, -1
	l := openTest(t, t.TempDir(), cfg)
	defer l.Close()
	for range 20 {
		appendBatch(t, l, testBatch{records: 4, valueSize: 100}, t0)
	}
	mustSync(t, l)
	far := t0.Add(24 * time.Hour)
	if n, err := l.ApplyRetention(far); err != nil || n != 0 {
		t.Fatalf("total retention deleted %d segments (%v) that are not uploaded", n, err)
	}
	segs, _ := l.ClosedSegments(0)
	for i := range segs {
		segs[i].Release()
	}
	if !l.UploadPending() {
		t.Fatal("UploadPending is false with closed segments not uploaded")
	}
	if err := l.SetUploadedTo(segs[0].Next); err != nil {
		t.Fatal(err)
	}
	if n, err := l.ApplyRetention(far); err != nil || n != 1 {
		t.Fatalf("total retention deleted %d segments (%v), want the one uploaded", n, err)
	}
	if err := l.SetUploadedTo(segs[len(segs)-1].Next); err != nil {
		t.Fatal(err)
	}
	if l.UploadPending() {
		t.Fatal("UploadPending with every closed segment uploaded")
	}
}

// StartAt restarts a log empty at an offset beyond its end (a replica
// whose local log is behind the remote tier); appends continue there and
// the start survives a reopen.
func TestStartAt(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, testConfig())
	appendBatch(t, l, testBatch{records: 3}, t0)
	mustSync(t, l)
	if err := l.StartAt(1); err == nil {
		t.Fatal("StartAt below the end accepted")
	}
	if err := l.StartAt(1000); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != 1000 || l.EndOffset() != 1000 || l.SizeBytes() != 0 {
		t.Fatalf("after StartAt(1000): start %d end %d size %d", l.StartOffset(), l.EndOffset(), l.SizeBytes())
	}
	if err := l.AssignEpoch(3, 1000); err != nil {
		t.Fatal(err)
	}
	appendBatch(t, l, testBatch{records: 2}, t0)
	mustSync(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, dir, testConfig())
	defer l.Close()
	if l.StartOffset() != 1000 || l.EndOffset() != 1002 || l.LatestEpoch() != 3 {
		t.Fatalf("reopened: start %d end %d epoch %d, want 1000, 1002, 3", l.StartOffset(), l.EndOffset(), l.LatestEpoch())
	}
	if _, err := l.Read(0, 1002, 1<<20, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the new start: %v", err)
	}
}
