package rpc

import (
	"sync"

	"github.com/stratalog/strata/controller/metadata"
)

// conn is what the handlers need of the connection a request came on
// (*wire.Conn): to learn when it has ended.
type conn interface {
	// OnClose registers fn to run once the connection has ended; at once
	// if it already has.
	OnClose(fn func())
}

// incarnation is a broker process as the controller knows it: its id and
// the epoch its registration got.
type incarnation struct {
	id    metadata.BrokerID
	epoch int64
}

// sessions maps controller connections to the broker incarnations they
// carry, and reports an incarnation gone when its last connection ends.
type sessions struct {
	gone func(incarnation) // called without the lock, from the closing connection's goroutine
	mu   struct {
		sync.Mutex
		byConn map[conn]incarnation // the incarnation a connection last carried
		open   map[incarnation]int  // connections per incarnation
	}
}

func newSessions(gone func(incarnation)) *sessions {
	s := &sessions{gone: gone}
	s.mu.byConn = map[conn]incarnation{}
	s.mu.open = map[incarnation]int{}
	return s
}

// seen records that c carried a successful registration or heartbeat of
// inc. A connection that moves to a newer incarnation (the broker
// re-registered) stops counting for the older one, which is not reported
// gone: its successor has taken over.
func (s *sessions) seen(c conn, inc incarnation) {
	s.mu.Lock()
	prev, known := s.mu.byConn[c]
	if known && prev == inc {
		s.mu.Unlock()
		return
	}
	if known {
		s.dropLocked(prev)
	}
	s.mu.byConn[c] = inc
	s.mu.open[inc]++
	s.mu.Unlock()
	if !known {
		// Outside the lock: fn runs at once if c has already ended.
		c.OnClose(func() { s.closed(c) })
	}
}

// closed forgets c and reports its incarnation gone if c was its last
// connection.
func (s *sessions) closed(c conn) {
	s.mu.Lock()
	inc, ok := s.mu.byConn[c]
	delete(s.mu.byConn, c)
	last := ok && s.dropLocked(inc)
	s.mu.Unlock()
	if last {
		s.gone(inc)
	}
}

// dropLocked removes one connection of inc and reports whether it was
// the last.
func (s *sessions) dropLocked(inc incarnation) bool {
	s.mu.open[inc]--
	if s.mu.open[inc] > 0 {
		return false
	}
	delete(s.mu.open, inc)
	return true
}
