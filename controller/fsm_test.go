package controller

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/stratalog/strata/controller/metadata"
)

// bootstrapped returns an FSM that applied a bootstrap, a broker and a
// topic at offsets 1–3.
func bootstrapped(t testing.TB) *fsm {
	f := newFSM(slog.New(slog.DiscardHandler))
	for i, batch := range [][]metadata.Record{{bootstrap()}, {registerBroker(1)}, {createTopic(1)}} {
		data, err := metadata.EncodeBatch(batch)
		if err != nil {
			t.Fatal(err)
		}
		if res := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data}).(applyResult); res.err != nil {
			t.Fatal(res.err)
		}
	}
	return f
}

// applyHostile applies data at index to a bootstrapped FSM and checks the
// FSM's contract: no panic, a refusal wraps ErrRefused and leaves the
// image as it was, an acceptance yields an image at index; the applied
// offset is index either way.
func applyHostile(t testing.TB, index uint64, data []byte) error {
	f := bootstrapped(t)
	before := f.image.Load()
	changed := f.changed()
	res, ok := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data}).(applyResult)
	if !ok {
		t.Fatalf("Apply returned %T", res)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed not closed by an applied entry")
	}
	if res.err != nil {
		if !errors.Is(res.err, metadata.ErrRefused) || errors.Is(res.err, errApplyPanic) || res.im != nil {
			t.Fatalf("refusal %v with image %v", res.err, res.im)
		}
		if f.image.Load() != before {
			t.Fatal("a refused entry changed the image")
		}
	} else if res.im == nil || res.im.Offset() != int64(index) || f.image.Load() != res.im {
		t.Fatalf("accepted entry at %d: image %v", index, res.im)
	}
	if index <= 1<<62 && f.applied.Load() != int64(index) {
		t.Fatalf("applied %d after entry %d", f.applied.Load(), index)
	}
	return res.err
}

func TestFSMHostileEntries(t *testing.T) {
	valid, _ := metadata.EncodeBatch([]metadata.Record{createTopic(2)})
	for _, tc := range []struct {
		name   string
		index  uint64
		data   string
		refuse string // "" accepts
	}{
		{"valid", 4, string(valid), ""},
		{"empty", 4, "", "corrupt"},
		{"null", 4, "null", "version 0"},
		{"not json", 4, "\x00\xff{", "corrupt"},
		{"future version", 4, `{"version":2,"records":[]}`, "version 2"},
		{"unknown type", 4, `{"version":1,"records":[{"type":"grantAdmin","data":{}}]}`, "unknown type"},
		{"unknown field", 4, `{"version":1,"records":[{"type":"bootstrap","data":{"clusterId":"x","evil":1}}]}`, "unknown field"},
		{"null record", 4, `{"version":1,"records":[{"type":"deleteTopic","data":null}]}`, "no topic"},
		{"null records", 4, `{"version":1,"records":null}`, ""}, // an empty batch: accepted, changes only the offset
		{"second bootstrap", 4, `{"version":1,"records":[{"type":"bootstrap","data":{"clusterId":"other"}}]}`, "already bootstrapped"},
		{"negative block", 4, `{"version":1,"records":[{"type":"allocateProducerIds","data":{"broker":1,"brokerEpoch":2,"size":-5}}]}`, "producer ids"},
		{"huge partition index", 4, `{"version":1,"records":[{"type":"changePartition","data":{"topic":"qwAAAAAAAAAAAAAAAAAD6Q","partition":2147483647}}]}`, "no partition"},
		{"leader not in isr", 4, `{"version":1,"records":[{"type":"changePartition","data":{"topic":"qwAAAAAAAAAAAAAAAAAD6Q","partition":0,"leader":7}}]}`, "not in the ISR"},
		{"old offset", 3, string(valid), "not after"},
		{"index beyond int64", 1 << 63, string(valid), "does not fit"},
		{"trailing data", 4, string(valid) + "{}", "after the value"},
		{"deep nesting", 4, strings.Repeat("[", 100000), "corrupt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := applyHostile(t, tc.index, []byte(tc.data))
			switch {
			case tc.refuse == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refuse != "" && (err == nil || !strings.Contains(err.Error(), tc.refuse)):
				t.Fatalf("got %v, want a refusal mentioning %q", err, tc.refuse)
			}
		})
	}
}

// FuzzFSMApply: no log entry makes the FSM panic or break its contract.
func FuzzFSMApply(f *testing.F) {
	for _, batch := range [][]metadata.Record{
		{createTopic(2)},
		{registerBroker(2), &metadata.ChangeBroker{ID: 1, Epoch: 2}},
		{&metadata.AllocateProducerIDs{Broker: 1, BrokerEpoch: 2, Size: 1000}},
		{&metadata.DeleteTopic{Topic: testUUID(1001)}},
	} {
		data, err := metadata.EncodeBatch(batch)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint64(4), data)
	}
	f.Add(uint64(0), []byte(`{"version":1,"records":[]}`))
	f.Add(uint64(1<<63), []byte(`null`))
	f.Fuzz(func(t *testing.T, index uint64, data []byte) {
		_ = applyHostile(t, index, data)
	})
}

func TestFSMSnapshotRestore(t *testing.T) {
	src := bootstrapped(t)
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil || !sink.closed {
		t.Fatalf("persist: %v (closed %v)", err, sink.closed)
	}
	snap.Release()

	dst := newFSM(slog.New(slog.DiscardHandler))
	changed := dst.changed()
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if !metadata.Equal(src.image.Load(), dst.image.Load()) || dst.applied.Load() != 3 {
		t.Fatalf("restored image at %d (applied %d) differs", dst.image.Load().Offset(), dst.applied.Load())
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed not closed by a restore")
	}

	// A damaged snapshot is refused and the image stays.
	good := sink.buf.Bytes()
	for _, bad := range [][]byte{
		nil,
		good[:len(good)/2],
		bytes.Replace(good, []byte(`"version":1`), []byte(`"version":9`), 1),
		bytes.Replace(good, []byte(`"leader":-1`), []byte(`"leader":5`), 1),
		[]byte(`{"version":1,"offset":-4}`),
	} {
		before := dst.image.Load()
		err := dst.Restore(io.NopCloser(bytes.NewReader(bad)))
		if err == nil || !errors.Is(err, metadata.ErrCorrupt) || dst.image.Load() != before {
			t.Fatalf("restore of %.40q: %v", bad, err)
		}
	}

	// A failed write cancels the sink.
	failing := &memSink{fail: true}
	if err := snap.Persist(failing); err == nil || !failing.cancelled {
		t.Fatalf("persist to a failing sink: %v (cancelled %v)", err, failing.cancelled)
	}
}

type memSink struct {
	buf               bytes.Buffer
	fail              bool
	closed, cancelled bool
}

func (s *memSink) Write(p []byte) (int, error) {
	if s.fail {
		return 0, errors.New("disk full")
	}
	return s.buf.Write(p)
}
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

func TestFSMClose(t *testing.T) {
	f := newFSM(slog.New(slog.DiscardHandler))
	ch := f.changed()
	f.close()
	f.close()
	<-ch
	<-f.changed()
	f.StoreConfiguration(7, raft.Configuration{}) // after close: no panic on the closed channel
	if f.applied.Load() != 7 {
		t.Fatalf("applied %d", f.applied.Load())
	}
}
