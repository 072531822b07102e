package logutil

// Limiter: the first line of a lasting condition at once, then at most one
// per interval with the count of those left out.

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// MaxLimiterKeys bounds the keys a Limiter remembers. Keys name lasting
// conditions (one per partition and step, say), so the bound is only
// reached by a caller that puts unbounded values in keys; then expired
// keys are forgotten first, and if none has expired the line is logged
// without being tracked (a first occurrence is never lost).
const MaxLimiterKeys = 4096

// Limiter logs the first line of each key at once and then at most one
// line per key every Every, counting the ones it drops: the next line it
// lets through carries "suppressed", n. Safe for concurrent use.
//
// A key names one lasting condition ("tiering upload orders-3"), not one
// message text: error texts often carry values (ETags, generations) that
// change on every retry.
type Limiter struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu struct {
		sync.Mutex
		keys map[string]*limitState
	}
}

// limitState is one key's window.
type limitState struct {
	logged     time.Time // when the last line of the key went out
	suppressed int       // lines dropped since then
}

// NewLimiter returns a Limiter writing to log at most once per every per
// key (every ≤ 0 logs everything). now is its clock; nil means time.Now.
func NewLimiter(log *slog.Logger, every time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{log: log, every: every, now: now}
	l.mu.keys = make(map[string]*limitState)
	return l
}

// Log logs msg with args at level unless a line of key went out less than
// Every ago, in which case it only counts it. It reports whether it
// logged. A line that follows dropped ones carries "suppressed" (how many
// were dropped since the last line of key).
func (l *Limiter) Log(level slog.Level, key, msg string, args ...any) bool {
	n, ok := l.admit(key)
	if !ok {
		return false
	}
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	l.log.Log(context.Background(), level, msg, args...)
	return true
}

// admit decides whether a line of key goes out now and how many were
// dropped before it.
func (l *Limiter) admit(key string) (suppressed int, ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.mu.keys[key]
	if st != nil && l.every > 0 && now.Sub(st.logged) < l.every {
		st.suppressed++
		return 0, false
	}
	if st == nil {
		if len(l.mu.keys) >= MaxLimiterKeys {
			l.forgetExpiredLocked(now)
		}
		if len(l.mu.keys) >= MaxLimiterKeys {
			return 0, true // untracked: never lose a first occurrence
		}
		st = &limitState{}
		l.mu.keys[key] = st
	}
	suppressed, st.suppressed, st.logged = st.suppressed, 0, now
	return suppressed, true
}

// forgetExpiredLocked drops the keys whose window has passed; their
// dropped-line counts go with them.
func (l *Limiter) forgetExpiredLocked(now time.Time) {
	for k, st := range l.mu.keys {
		if now.Sub(st.logged) >= l.every {
			delete(l.mu.keys, k)
		}
	}
}

// Reset forgets key, for when the condition it names has ended: the next
// line of key goes out at once. It reports whether key was active (logged
// and not Reset since, so that a caller logs "recovered" only after a
// failure was reported) and how many of its lines were dropped and not
// yet reported, for that "recovered" line.
func (l *Limiter) Reset(key string) (suppressed int, active bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.mu.keys[key]
	if st == nil {
		return 0, false
	}
	delete(l.mu.keys, key)
	return st.suppressed, true
}
