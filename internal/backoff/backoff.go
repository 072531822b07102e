package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff yields the waits between retries: steps of Min, then doubling up
// to Max (for 1 s and 30 s: 1, 2, 4, 8, 16, 30, 30 … s). Set Min and Max,
// both positive; the zero state of the rest is ready to use. Not safe for
// concurrent use.
type Backoff struct {
	Min, Max time.Duration
	// Jitter, if set, spreads each wait over the upper half of its step:
	// step/2 + Jitter(step/2+1), where Jitter(n) is uniform in [0, n)
	// (RandomJitter; tests inject fixed ones), so that many retriers
	// failing together do not retry together. Nil: the wait is the step.
	Jitter func(n time.Duration) time.Duration
	cur    time.Duration // the last step; 0 before the first
}

// RandomJitter is a uniform Jitter.
var RandomJitter = rand.N[time.Duration]

// Next returns the wait before the next retry.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	} else {
		b.cur = min(2*b.cur, b.Max)
	}
	if b.Jitter != nil {
		return b.cur/2 + b.Jitter(b.cur/2+1)
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
