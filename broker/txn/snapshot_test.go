package txn

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/stratalog/strata/segments"
)

func sampleState() *ProducerState {
	s := NewProducerState()
	var off segments.Offset
	for pid := ProducerID(0); pid < 4; pid++ {
		for i := 0; i < int(pid)*2+1; i++ { // producer 3 has 7 batches, 5 kept
			b := bt(pid, ProducerEpoch(pid), Sequence(i*3), 3)
			b.FirstOffset, b.LastOffset, b.Timestamp = off, off+2, 1000+int64(off)
			off += 3
			s.Update(b)
		}
	}
	s.Update(Batch{ProducerID: math.MaxInt64, ProducerEpoch: math.MaxInt16, BaseSequence: math.MaxInt32,
		LastOffsetDelta: 1, FirstOffset: off, LastOffset: off + 1, Timestamp: -1})
	return s
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := sampleState()
	data := s.EncodeSnapshot(1234)
	off, got, err := DecodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	if off != 1234 {
		t.Fatalf("offset %d", off)
	}
	if !reflect.DeepEqual(got.producers, s.producers) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got.producers, s.producers)
	}
	if n := len(got.Batches(3)); n != BatchesToRetain {
		t.Fatalf("producer 3 has %d batches", n)
	}
	// Canonical: encoding again gives the same bytes.
	if again := got.EncodeSnapshot(1234); !bytes.Equal(again, data) {
		t.Fatal("re-encoding differs")
	}
	// Empty state.
	off, got, err = DecodeSnapshot(NewProducerState().EncodeSnapshot(0))
	if err != nil || off != 0 || got.Len() != 0 {
		t.Fatalf("empty: %d %v %v", off, got, err)
	}
}

func TestSnapshotCorruptionDetected(t *testing.T) {
	data := sampleState().EncodeSnapshot(77)
	for i := range data {
		c := bytes.Clone(data)
		c[i] ^= 0x40
		if _, _, err := DecodeSnapshot(c); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("flipping byte %d: err %v", i, err)
		}
	}
	for n := 0; n < len(data); n++ {
		if _, _, err := DecodeSnapshot(data[:n]); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("truncated to %d: err %v", n, err)
		}
	}
	if _, _, err := DecodeSnapshot(append(bytes.Clone(data), 0)); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("trailing byte: %v", err)
	}
}

// fakeLog is a list of batches that replays from an offset.
type fakeLog struct {
	batches []Batch
	froms   []segments.Offset
}

func (l *fakeLog) add(b Batch) {
	var next segments.Offset
	if n := len(l.batches); n > 0 {
		next = l.batches[n-1].LastOffset + 1
	}
	b.FirstOffset, b.LastOffset = next, next+segments.Offset(b.LastOffsetDelta)
	l.batches = append(l.batches, b)
}

func (l *fakeLog) end() segments.Offset {
	if len(l.batches) == 0 {
		return 0
	}
	return l.batches[len(l.batches)-1].LastOffset + 1
}

func (l *fakeLog) replay(from segments.Offset, apply func(Batch) error) error {
	l.froms = append(l.froms, from)
	for _, b := range l.batches {
		if b.FirstOffset >= from {
			if err := apply(b); err != nil {
				return err
			}
		}
	}
	return nil
}

// stateUpTo replays the log below end into a fresh state.
func (l *fakeLog) stateUpTo(end segments.Offset) *ProducerState {
	s := NewProducerState()
	for _, b := range l.batches {
		if b.FirstOffset < end {
			s.Update(b)
		}
	}
	return s
}

func snapshotFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

func TestLoadProducerState(t *testing.T) {
	log := &fakeLog{}
	for i := 0; i < 20; i++ {
		log.add(bt(ProducerID(i%3), 0, Sequence(i/3*2), 2)) // offsets 0..39
	}
	want := log.stateUpTo(log.end())

	t.Run("no snapshot replays from log start", func(t *testing.T) {
		dir := t.TempDir()
		log.froms = nil
		s, n, err := LoadProducerState(dir, 0, log.end(), log.replay, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(s.producers, want.producers) || n != 20 || !slices.Equal(log.froms, []segments.Offset{0}) {
			t.Fatalf("state differs or replay wrong: n=%d froms=%v", n, log.froms)
		}
	})

	t.Run("newest snapshot at or below log end, stale ones deleted", func(t *testing.T) {
		dir := t.TempDir()
		for _, off := range []segments.Offset{10, 20} {
			if err := WriteSnapshot(dir, off, log.stateUpTo(off).EncodeSnapshot(off)); err != nil {
				t.Fatal(err)
			}
		}
		// A snapshot beyond the log end (the tail it covered was lost).
		bogus := NewProducerState()
		bogus.Update(bt(9, 0, 0, 1))
		if err := WriteSnapshot(dir, 100, bogus.EncodeSnapshot(100)); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, SnapshotName(30)+".tmp"), []byte("torn"), 0o644)
		log.froms = nil
		s, n, err := LoadProducerState(dir, 0, log.end(), log.replay, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(s.producers, want.producers) {
			t.Fatalf("state differs: %+v", s.producers)
		}
		if !slices.Equal(log.froms, []segments.Offset{20}) || n != 10 {
			t.Fatalf("replayed %d from %v, want 10 from [20]", n, log.froms)
		}
		if got := snapshotFiles(t, dir); !slices.Equal(got, []string{SnapshotName(10), SnapshotName(20)}) {
			t.Fatalf("files %v", got)
		}
	})

	t.Run("corrupt snapshot quarantined, older one used", func(t *testing.T) {
		dir := t.TempDir()
		WriteSnapshot(dir, 10, log.stateUpTo(10).EncodeSnapshot(10))
		data := log.stateUpTo(20).EncodeSnapshot(20)
		data[len(data)-1] ^= 1
		os.WriteFile(filepath.Join(dir, SnapshotName(20)), data, 0o644)
		log.froms = nil
		s, _, err := LoadProducerState(dir, 0, log.end(), log.replay, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(s.producers, want.producers) || !slices.Equal(log.froms, []segments.Offset{10}) {
			t.Fatalf("froms %v", log.froms)
		}
		if got := snapshotFiles(t, dir); !slices.Equal(got, []string{SnapshotName(10), SnapshotName(20) + ".corrupt"}) {
			t.Fatalf("files %v", got)
		}
	})

	t.Run("only snapshot corrupt replays from log start", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, SnapshotName(20)), []byte("garbage"), 0o644)
		log.froms = nil
		s, _, err := LoadProducerState(dir, 4, log.end(), log.replay, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(log.froms, []segments.Offset{4}) {
			t.Fatalf("froms %v", log.froms)
		}
		w := NewProducerState() // the batches from offset 4 on
		for _, b := range log.batches[2:] {
			w.Update(b)
		}
		if !reflect.DeepEqual(s.producers, w.producers) {
			t.Fatalf("state differs")
		}
	})

	t.Run("snapshot at log end needs no replay", func(t *testing.T) {
		dir := t.TempDir()
		WriteSnapshot(dir, log.end(), want.EncodeSnapshot(log.end()))
		log.froms = nil
		s, n, err := LoadProducerState(dir, 0, log.end(), log.replay, nil)
		if err != nil || n != 0 || len(log.froms) != 0 || !reflect.DeepEqual(s.producers, want.producers) {
			t.Fatalf("n=%d froms=%v err=%v", n, log.froms, err)
		}
	})

	t.Run("snapshot below log start replays from log start", func(t *testing.T) {
		dir := t.TempDir()
		WriteSnapshot(dir, 10, log.stateUpTo(10).EncodeSnapshot(10))
		log.froms = nil
		if _, _, err := LoadProducerState(dir, 30, log.end(), log.replay, nil); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(log.froms, []segments.Offset{30}) {
			t.Fatalf("froms %v", log.froms)
		}
	})

	t.Run("replay error fails the load", func(t *testing.T) {
		boom := errors.New("boom")
		_, _, err := LoadProducerState(t.TempDir(), 0, 10, func(segments.Offset, func(Batch) error) error { return boom }, nil)
		if !errors.Is(err, boom) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestPruneSnapshots(t *testing.T) {
	dir := t.TempDir()
	for _, off := range []segments.Offset{5, 1, 30, 7} {
		if err := WriteSnapshot(dir, off, NewProducerState().EncodeSnapshot(off)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "00000000000000000000.log"), nil, 0o644)
	if err := PruneSnapshots(dir); err != nil {
		t.Fatal(err)
	}
	want := []string{"00000000000000000000.log", SnapshotName(7), SnapshotName(30)}
	if got := snapshotFiles(t, dir); !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(sampleState().EncodeSnapshot(99))
	f.Add(NewProducerState().EncodeSnapshot(0))
	f.Add([]byte("STPS"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		off, s, err := DecodeSnapshot(data)
		if err != nil {
			if !errors.Is(err, ErrCorruptSnapshot) {
				t.Fatalf("error %v does not wrap ErrCorruptSnapshot", err)
			}
			return
		}
		// Whatever decodes must survive a round trip unchanged.
		off2, s2, err := DecodeSnapshot(s.EncodeSnapshot(off))
		if err != nil || off2 != off || !reflect.DeepEqual(s.producers, s2.producers) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
