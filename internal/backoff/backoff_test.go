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
