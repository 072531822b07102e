package logutil

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestLimiter(every time.Duration) (*Limiter, *bytes.Buffer, *fakeClock) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	lg := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	return NewLimiter(lg, every, clk.now), &buf, clk
}

func lines(buf *bytes.Buffer) []string {
	s := strings.TrimSpace(buf.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestLimiterFirstThenOncePerInterval(t *testing.T) {
	l, buf, clk := newTestLimiter(time.Minute)
	// 1000 failures, one every 10 ms for 10 s: one line.
	for i := range 1000 {
		l.Log(slog.LevelWarn, "upload p0", "uploads failing", "attempt", i)
		clk.advance(10 * time.Millisecond)
	}
	if got := lines(buf); len(got) != 1 || !strings.Contains(got[0], "attempt=0") || strings.Contains(got[0], "suppressed") {
		t.Fatalf("after 1000 lines in 10 s: %q; want only the first, without a suppressed count", got)
	}
	// A minute after the first line, the next one goes out with the count.
	clk.advance(50 * time.Second)
	if !l.Log(slog.LevelWarn, "upload p0", "uploads failing", "attempt", 1000) {
		t.Fatal("a line one interval after the last one was dropped")
	}
	got := lines(buf)
	if len(got) != 2 || !strings.Contains(got[1], "attempt=1000") || !strings.Contains(got[1], "suppressed=999") {
		t.Fatalf("lines %q; want a second one with suppressed=999", got)
	}
	// Right after it: dropped again.
	if l.Log(slog.LevelWarn, "upload p0", "uploads failing") {
		t.Fatal("a line right after a logged one went out")
	}
}

func TestLimiterKeysAreIndependent(t *testing.T) {
	l, buf, _ := newTestLimiter(time.Minute)
	for range 3 {
		l.Log(slog.LevelWarn, "a", "a failing")
		l.Log(slog.LevelWarn, "b", "b failing")
	}
	if got := lines(buf); len(got) != 2 {
		t.Fatalf("lines %q; want one per key", got)
	}
}

func TestLimiterReset(t *testing.T) {
	l, buf, _ := newTestLimiter(time.Minute)
	if n, active := l.Reset("k"); active || n != 0 {
		t.Fatalf("Reset before any line: %d, active %v; want 0, inactive", n, active)
	}
	l.Log(slog.LevelWarn, "k", "failing")
	l.Log(slog.LevelWarn, "k", "failing")
	l.Log(slog.LevelWarn, "k", "failing")
	if n, active := l.Reset("k"); !active || n != 2 {
		t.Fatalf("Reset after a line: %d dropped lines, active %v; want 2, active", n, active)
	}
	if n, active := l.Reset("k"); active || n != 0 {
		t.Fatal("key still known after Reset")
	}
	if !l.Log(slog.LevelWarn, "k", "failing again") {
		t.Fatal("the first line after Reset was dropped")
	}
	if got := lines(buf); len(got) != 2 || strings.Contains(got[1], "suppressed") {
		t.Fatalf("lines %q; want two, the second without a count", got)
	}
}

func TestLimiterBoundedKeys(t *testing.T) {
	l, buf, clk := newTestLimiter(time.Minute)
	for i := range MaxLimiterKeys + 10 {
		if !l.Log(slog.LevelInfo, fmt.Sprint("key-", i), "first") {
			t.Fatalf("first line of key %d dropped", i)
		}
	}
	l.mu.Lock()
	n := len(l.mu.keys)
	l.mu.Unlock()
	if n > MaxLimiterKeys {
		t.Fatalf("%d keys remembered, bound %d", n, MaxLimiterKeys)
	}
	// Once the windows have passed, new keys replace the expired ones.
	clk.advance(time.Minute)
	l.Log(slog.LevelInfo, "late", "first")
	l.mu.Lock()
	n = len(l.mu.keys)
	l.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d keys after the windows passed, want only the new one", n)
	}
	if got := lines(buf); len(got) != MaxLimiterKeys+11 {
		t.Fatalf("%d lines, want every first occurrence (%d)", len(got), MaxLimiterKeys+11)
	}
}

func TestLimiterZeroIntervalLogsAll(t *testing.T) {
	l, buf, _ := newTestLimiter(0)
	for range 5 {
		l.Log(slog.LevelWarn, "k", "x")
	}
	if got := lines(buf); len(got) != 5 {
		t.Fatalf("%d lines with Every 0, want 5", len(got))
	}
}
