package objectstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func TestFaultyError(t *testing.T) {
	f := NewFaulty(NewMem(), 1)
	ctx := t.Context()
	f.Add(Fault{Ops: OpAllPuts, Key: "seg/*.log"})
	_, err := f.Put(ctx, "seg/1.log", strings.NewReader("x"), 1)
	if !errors.Is(err, ErrInjected) {
		t.Fatalf("matching Put: %v", err)
	}
	if _, err := f.Stat(ctx, "seg/1.log"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("a FaultError put stored something: %v", err)
	}
	putString(t, f, "seg/1.index", "x")                   // other key
	putString(t, f, "seg/a/1.log", "x")                   // "*" does not cross "/"
	if _, err := f.Stat(ctx, "seg/1.index"); err != nil { // other op
		t.Fatal(err)
	}
	custom := errors.New("503 slow down")
	f.Clear()
	f.Add(Fault{Ops: OpStat, Err: custom, Times: 2})
	for i := range 3 {
		_, err := f.Stat(ctx, "seg/1.index")
		if i < 2 && !errors.Is(err, custom) || i == 2 && err != nil {
			t.Fatalf("Stat %d: %v", i, err)
		}
	}
	if n := f.Injected(); n != 3 {
		t.Fatalf("Injected() = %d, want 3", n)
	}
}

func TestFaultyErrorAfter(t *testing.T) {
	f := NewFaulty(NewMem(), 1)
	ctx := t.Context()
	f.Add(Fault{Ops: OpWrites | OpGet | OpStat, Kind: FaultErrorAfter})
	_, err := f.Put(ctx, "k", strings.NewReader("stored"), 6)
	if !errors.Is(err, ErrInjected) {
		t.Fatalf("Put: %v", err)
	}
	if got := mustRead(t, f.Inner(), "k"); got != "stored" {
		t.Fatalf("a lost-reply Put did not store: %q", got)
	}
	if _, _, err := f.Get(ctx, "k", 0, ToEnd); !errors.Is(err, ErrInjected) {
		t.Fatalf("Get: %v", err)
	}
	if _, err := f.Stat(ctx, "k"); !errors.Is(err, ErrInjected) {
		t.Fatalf("Stat: %v", err)
	}
	if err := f.Delete(ctx, "k"); !errors.Is(err, ErrInjected) {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := f.Inner().Stat(ctx, "k"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("a lost-reply Delete did not delete: %v", err)
	}
}

func mustRead(t *testing.T, s Store, key string) string {
	t.Helper()
	rc, _, err := s.Get(t.Context(), key, 0, ToEnd)
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	return string(b)
}

func TestFaultyPartial(t *testing.T) {
	f := NewFaulty(NewMem(), 1)
	ctx := t.Context()
	for i := range 5 {
		putString(t, f, fmt.Sprintf("p/%d", i), "0123456789")
	}
	f.Add(Fault{Kind: FaultPartial, N: 4})

	body := strings.NewReader("new content")
	_, err := f.Put(ctx, "p/0", body, 11)
	if !errors.Is(err, ErrInjected) || body.Len() != 11-4 {
		t.Fatalf("partial Put: %v, %d bytes left unread", err, body.Len())
	}
	if got := mustRead(t, f.Inner(), "p/0"); got != "0123456789" {
		t.Fatalf("a partial Put changed the object to %q", got)
	}

	rc, info, err := f.Get(ctx, "p/1", 2, ToEnd)
	if err != nil || info.Size != 10 {
		t.Fatalf("partial Get: %+v, %v", info, err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if string(got) != "2345" || !errors.Is(err, ErrInjected) {
		t.Fatalf("short read: %q, %v", got, err)
	}

	var keys []string
	var listErr error
	for info, err := range f.List(ctx, "p/") {
		if err != nil {
			listErr = err
			break
		}
		keys = append(keys, info.Key)
	}
	if len(keys) != 4 || !errors.Is(listErr, ErrInjected) {
		t.Fatalf("partial List: %q, %v", keys, listErr)
	}

	err = f.Delete(ctx, "p/4", "p/3", "p/2", "p/1", "p/0")
	if !errors.Is(err, ErrInjected) {
		t.Fatalf("partial Delete: %v", err)
	}
	f.Clear()
	var left []string
	for info, err := range f.List(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		left = append(left, info.Key)
	}
	if len(left) != 1 || left[0] != "p/0" {
		t.Fatalf("after deleting the first 4 keys: %q", left)
	}
	if _, err := f.Stat(ctx, "p/0"); err != nil {
		t.Fatal(err)
	}
}

func TestFaultyLatency(t *testing.T) {
	f := NewFaulty(NewMem(), 1)
	f.Add(Fault{Ops: OpStat, Latency: 30 * time.Millisecond})
	putString(t, f, "k", "v")
	start := time.Now()
	if _, err := f.Stat(t.Context(), "k"); err != nil {
		t.Fatalf("a latency-only rule failed the call: %v", err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("Stat took %v", d)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Millisecond)
	defer cancel()
	f.Clear()
	f.Add(Fault{Latency: time.Hour})
	if _, err := f.Stat(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("delayed Stat past its deadline: %v", err)
	}
}

// The same seed gives the same faults; the rate follows Probability.
func TestFaultyDeterministic(t *testing.T) {
	pattern := func(seed uint64) string {
		f := NewFaulty(NewMem(), seed)
		f.Add(Fault{Ops: OpStat, Probability: 0.3})
		var b strings.Builder
		for range 400 {
			if _, err := f.Stat(t.Context(), "k"); errors.Is(err, ErrInjected) {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	a, b, c := pattern(7), pattern(7), pattern(8)
	if a != b {
		t.Fatal("the same seed gave different faults")
	}
	if a == c {
		t.Fatal("different seeds gave the same 400 draws")
	}
	if n := strings.Count(a, "x"); n < 80 || n > 160 {
		t.Fatalf("%d of 400 calls hit with probability 0.3", n)
	}
}

func TestFaultyDisableConditional(t *testing.T) {
	f := NewFaulty(NewMem(), 1)
	if !f.Capabilities().PutIfAbsent {
		t.Fatal("mem's capabilities hidden")
	}
	f.DisableConditional(true)
	if f.Capabilities() != (Capabilities{}) {
		t.Fatalf("capabilities %+v", f.Capabilities())
	}
	if _, err := f.PutIfAbsent(t.Context(), "k", strings.NewReader(""), 0); !errors.Is(err, ErrUnsupported) {
		t.Fatal(err)
	}
	if _, err := f.PutIfMatch(t.Context(), "k", "e", strings.NewReader(""), 0); !errors.Is(err, ErrUnsupported) {
		t.Fatal(err)
	}
}
