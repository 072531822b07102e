package txn

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stratalog/strata/segments"
)

// bt builds a batch of n records for producer pid.
func bt(pid ProducerID, epoch ProducerEpoch, seq Sequence, n int32) Batch {
	return Batch{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, LastOffsetDelta: n - 1}
}

// appendOne checks b and, if it is new, records it at *next, like the
// partition does; it returns the check outcome.
func appendOne(t *testing.T, s *ProducerState, next *segments.Offset, b Batch) (BatchMeta, bool, error) {
	t.Helper()
	orig, dup, err := s.Check(b)
	if err != nil || dup {
		return orig, dup, err
	}
	b.FirstOffset = *next
	b.LastOffset = *next + segments.Offset(b.LastOffsetDelta)
	*next = b.LastOffset + 1
	s.Update(b)
	return BatchMeta{}, false, nil
}

func TestCheckRules(t *testing.T) {
	type step struct {
		b       Batch
		wantErr error
		wantDup bool
		dupOff  segments.Offset // original first offset when wantDup
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"non-idempotent batches skip checks", []step{
			{b: bt(-1, -1, -1, 3)},
			{b: bt(-1, -1, -1, 3)}, // same "sequence" again: not a duplicate
			{b: Batch{ProducerID: -5, ProducerEpoch: 7, BaseSequence: 99}},
		}},
		{"in order", []step{
			{b: bt(1, 0, 0, 2)},
			{b: bt(1, 0, 2, 3)},
			{b: bt(1, 0, 5, 1)},
		}},
		{"unknown producer may start anywhere", []step{
			{b: bt(1, 0, 42, 2)},
			{b: bt(1, 0, 44, 1)},
		}},
		{"gap is out of order", []step{
			{b: bt(1, 0, 0, 2)},
			{b: bt(1, 0, 3, 1), wantErr: ErrOutOfOrderSequence},
			{b: bt(1, 0, 2, 1)}, // the state did not move
		}},
		{"repeat of last batch is a duplicate", []step{
			{b: bt(1, 0, 0, 2)},
			{b: bt(1, 0, 2, 3)},
			{b: bt(1, 0, 2, 3), wantDup: true, dupOff: 2},
			{b: bt(1, 0, 0, 2), wantDup: true, dupOff: 0},
		}},
		{"same first sequence, different length is not a duplicate", []step{
			{b: bt(1, 0, 0, 2)},
			{b: bt(1, 0, 0, 3), wantErr: ErrOutOfOrderSequence},
		}},
		{"only the last five are remembered", []step{
			{b: bt(1, 0, 0, 1)}, {b: bt(1, 0, 1, 1)}, {b: bt(1, 0, 2, 1)},
			{b: bt(1, 0, 3, 1)}, {b: bt(1, 0, 4, 1)}, {b: bt(1, 0, 5, 1)},
			{b: bt(1, 0, 1, 1), wantDup: true, dupOff: 1},
			{b: bt(1, 0, 0, 1), wantErr: ErrOutOfOrderSequence},
		}},
		{"stale epoch is refused", []step{
			{b: bt(1, 3, 0, 1)},
			{b: bt(1, 2, 1, 1), wantErr: ErrInvalidProducerEpoch},
			{b: bt(1, 2, 0, 1), wantErr: ErrInvalidProducerEpoch}, // not a duplicate: other epoch
		}},
		{"new epoch starts at zero", []step{
			{b: bt(1, 0, 0, 5)},
			{b: bt(1, 1, 5, 1), wantErr: ErrOutOfOrderSequence},
			{b: bt(1, 1, 0, 1)},
			{b: bt(1, 0, 0, 5), wantErr: ErrInvalidProducerEpoch}, // old epoch's batch, now fenced
			{b: bt(1, 1, 1, 1)},
		}},
		{"new epoch clears the remembered batches", []step{
			{b: bt(1, 0, 0, 1)},
			{b: bt(1, 1, 0, 1)},
			{b: bt(1, 1, 0, 1), wantDup: true, dupOff: 1},
		}},
		{"sequence wraps at MaxInt32", []step{
			{b: bt(1, 0, math.MaxInt32-1, 2)},
			{b: bt(1, 0, 0, 1)},
			{b: bt(1, 0, 1, 1)},
		}},
		{"batch spanning the wrap", []step{
			{b: bt(1, 0, math.MaxInt32-1, 4)}, // sequences MaxInt32-1, MaxInt32, 0, 1
			{b: bt(1, 0, math.MaxInt32-1, 4), wantDup: true, dupOff: 0},
			{b: bt(1, 0, 2, 1)},
		}},
		{"producers are independent", []step{
			{b: bt(1, 0, 0, 1)},
			{b: bt(2, 0, 0, 1)},
			{b: bt(1, 0, 1, 1)},
			{b: bt(2, 0, 0, 1), wantDup: true, dupOff: 1},
			{b: bt(2, 0, 2, 1), wantErr: ErrOutOfOrderSequence},
		}},
		{"malformed producer fields", []step{
			{b: bt(1, 0, -1, 1), wantErr: segments.ErrInvalidRecord},
			{b: bt(1, -1, 0, 1), wantErr: segments.ErrInvalidRecord},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := NewProducerState()
			var next segments.Offset
			for i, st := range tc.steps {
				orig, dup, err := appendOne(t, s, &next, st.b)
				if !errors.Is(err, st.wantErr) || (err == nil) != (st.wantErr == nil) {
					t.Fatalf("step %d %+v: err %v, want %v", i, st.b, err, st.wantErr)
				}
				if dup != st.wantDup {
					t.Fatalf("step %d %+v: dup %v, want %v", i, st.b, dup, st.wantDup)
				}
				if dup && orig.FirstOffset != st.dupOff {
					t.Fatalf("step %d: duplicate of offset %d, want %d", i, orig.FirstOffset, st.dupOff)
				}
				if dup && orig.LastOffset != st.dupOff+segments.Offset(st.b.LastOffsetDelta) {
					t.Fatalf("step %d: duplicate last offset %d", i, orig.LastOffset)
				}
			}
		})
	}
}

func TestLastSequence(t *testing.T) {
	for _, tc := range []struct {
		base  Sequence
		delta int32
		want  Sequence
	}{
		{0, 0, 0},
		{5, 4, 9},
		{math.MaxInt32, 0, math.MaxInt32},
		{math.MaxInt32, 1, 0},
		{math.MaxInt32 - 2, 5, 2},
	} {
		if got := (Batch{BaseSequence: tc.base, LastOffsetDelta: tc.delta}).LastSequence(); got != tc.want {
			t.Errorf("LastSequence(%d, %d) = %d, want %d", tc.base, tc.delta, got, tc.want)
		}
	}
}

func TestAppenderStagesBatches(t *testing.T) {
	s := NewProducerState()
	s.Update(Batch{ProducerID: 7, BaseSequence: 0, LastOffsetDelta: 1, FirstOffset: 0, LastOffset: 1})

	// Two batches of one producer in one append: the second is checked
	// against the first.
	a := s.Begin()
	for _, b := range []Batch{bt(7, 0, 2, 2), bt(-1, -1, -1, 3), bt(7, 0, 4, 1)} {
		if _, dup, err := a.Check(b); err != nil || dup {
			t.Fatalf("check %+v: dup=%v err=%v", b, dup, err)
		}
	}
	if got := s.Batches(7); len(got) != 1 {
		t.Fatalf("state changed before Commit: %+v", got)
	}
	a.Commit(10, -1, time.UnixMilli(0))
	got := s.Batches(7)
	want := []BatchMeta{
		{FirstSeq: 0, LastSeq: 1, FirstOffset: 0, LastOffset: 1},
		{FirstSeq: 2, LastSeq: 3, FirstOffset: 10, LastOffset: 11},
		{FirstSeq: 4, LastSeq: 4, FirstOffset: 15, LastOffset: 15}, // after 3 non-idempotent records
	}
	if len(got) != len(want) {
		t.Fatalf("batches %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].FirstSeq != want[i].FirstSeq || got[i].LastSeq != want[i].LastSeq ||
			got[i].FirstOffset != want[i].FirstOffset || got[i].LastOffset != want[i].LastOffset {
			t.Fatalf("batch %d = %+v, want %+v", i, got[i], want[i])
		}
	}

	// A failing batch after good ones: nothing is committed.
	a = s.Begin()
	if _, _, err := a.Check(bt(7, 0, 5, 1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Check(bt(7, 0, 9, 1)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap inside an append: %v", err)
	}
	if got := s.Batches(7); len(got) != 3 {
		t.Fatalf("failed append changed state: %+v", got)
	}
	// Duplicate detected through the appender, against committed state.
	a = s.Begin()
	if orig, dup, err := a.Check(bt(7, 0, 2, 2)); err != nil || !dup || orig.FirstOffset != 10 {
		t.Fatalf("duplicate via appender: %+v %v %v", orig, dup, err)
	}
}

func TestTimestampOverrideAndExpiry(t *testing.T) {
	s := NewProducerState()
	now := time.UnixMilli(1_700_000_000_000)
	old := bt(1, 0, 0, 1)
	old.Timestamp = now.Add(-48 * time.Hour).UnixMilli()
	s.Update(old)
	a := s.Begin()
	if _, _, err := a.Check(bt(2, 0, 0, 1)); err != nil {
		t.Fatal(err)
	}
	a.Commit(1, now.UnixMilli(), now) // LogAppendTime stamps the batch
	if got := s.Batches(2)[0].Timestamp; got != now.UnixMilli() {
		t.Fatalf("timestamp %d", got)
	}
	// An active producer writing old CreateTime timestamps: its append
	// time keeps it alive.
	a = s.Begin()
	oldTs := bt(3, 0, 0, 1)
	oldTs.Timestamp = now.Add(-72 * time.Hour).UnixMilli()
	if _, _, err := a.Check(oldTs); err != nil {
		t.Fatal(err)
	}
	a.Commit(2, -1, now)
	if n := s.ExpireBefore(now.Add(-24 * time.Hour)); n != 1 {
		t.Fatalf("expired %d, want 1", n)
	}
	if s.Epoch(1) != -1 || s.Epoch(2) != 0 || s.Epoch(3) != 0 || s.Len() != 2 {
		t.Fatalf("after expiry: epochs %d %d %d, len %d", s.Epoch(1), s.Epoch(2), s.Epoch(3), s.Len())
	}
}
