package backoff

import "time"

// Backoff yields the waits between retries: Min, then doubling up to Max
// (for 1 s and 30 s: 1, 2, 4, 8, 16, 30, 30 … s). Set Min and Max, both
// positive; the zero state of the rest is ready to use. Not safe for
// concurrent use.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration // the last wait returned; 0 before the first
}

// Next returns the wait before the next retry.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	} else {
		b.cur = min(2*b.cur, b.Max)
	}
	return b.cur
}

// Reset starts the sequence again at Min (after a success).
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits for d, or until done is closed (a shutdown; ctx.Done() for a
// context). It reports whether the full wait passed: false means done.
func Sleep(done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return false
	case <-t.C:
		return true
	}
}
