package backoff

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 30 * time.Second}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i, w := range want {
		if got := b.Next(); got != w*time.Second {
			t.Fatalf("wait %d = %v, want %v", i+1, got, w*time.Second)
		}
	}
	b.Reset()
	if got := b.Next(); got != time.Second {
		t.Fatalf("wait after Reset = %v, want 1s", got)
	}
}

// TestJitter: each wait lies in the upper half of its step, the steps
// double as without jitter, and the extremes are reachable.
func TestJitter(t *testing.T) {
	for _, c := range []struct {
		name   string
		jitter func(time.Duration) time.Duration
		want   []time.Duration // in milliseconds
	}{
		{"least", func(time.Duration) time.Duration { return 0 }, []time.Duration{500, 1000, 2000, 4000, 4000}},
		{"most", func(n time.Duration) time.Duration { return n - 1 }, []time.Duration{1000, 2000, 4000, 8000, 8000}},
	} {
		b := Backoff{Min: time.Second, Max: 8 * time.Second, Jitter: c.jitter}
		for i, w := range c.want {
			if got := b.Next(); got != w*time.Millisecond {
				t.Fatalf("%s: wait %d = %v, want %v", c.name, i+1, got, w*time.Millisecond)
			}
		}
	}
	b := Backoff{Min: time.Second, Max: 8 * time.Second, Jitter: RandomJitter}
	for i := range 100 {
		step := min(time.Second<<min(i, 3), 8*time.Second)
		if got := b.Next(); got < step/2 || got > step {
			t.Fatalf("random wait %d = %v, want within [%v, %v]", i+1, got, step/2, step)
		}
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		done := make(chan struct{})
		start := time.Now()
		if !Sleep(done, time.Second) || time.Since(start) != time.Second {
			t.Fatalf("Sleep returned false or after %v, want true after 1s", time.Since(start))
		}
		go func() {
			time.Sleep(time.Second)
			close(done)
		}()
		start = time.Now()
		if Sleep(done, time.Minute) || time.Since(start) != time.Second {
			t.Fatalf("Sleep returned true or after %v, want false when done closes after 1s", time.Since(start))
		}
	})
}
