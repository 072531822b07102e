package wire

// Request memory: queued.max.request.bytes bounds, server-wide, the bytes
// that request frames hold while they are read and handled, and separately
// (the same amount again) the memory their decoded forms take, which
// shape.Check tells before kmsg decodes anything.
//
// A frame's bytes are taken as they arrive, never on the strength of its
// size prefix: the first step takes at most firstFrameStep, and the frame
// doubles only once the step before it is full. A sender that lies about a
// size, or stops half-way, holds at most twice what it really sent (and the
// frame's read deadline, socket.request.read.timeout.ms, ends it).
//
// Growing while holding is hold-and-wait: if every frame being read waited
// for memory that only frames being read hold, none would finish. So a
// growth step that finds the budget spent may take the overdraft: one frame
// at a time may finish past the budget. The overdraft is given back when
// that frame is complete (or cut), and waiters are woken for it as they are
// for freed bytes, so some frame always progresses. Request memory is
// therefore at most queued.max.request.bytes + socket.request.max.bytes for
// frames, plus queued.max.request.bytes for decoded requests.
//
// Decoded memory is taken once the frame is whole, while the frame is held.
// That wait cannot close a cycle: decoded memory is held only by requests
// whose frames are complete and whose handlers run to completion without
// waiting for request memory.

import (
	"context"
	"sync"
)

// firstFrameStep is the most a frame takes before its bytes arrive: 64 KiB
// holds nearly every request but Produce in one step, and bounds what a
// bare size prefix costs (64 KiB × max.connections at worst).
const firstFrameStep = 64 << 10

// memBudget is a pool of bytes shared by all connections. Unlike a FIFO
// semaphore, a waiter for many bytes does not hold back later small
// requests: waiters retry whenever bytes are freed. Starvation of a large
// growing frame is prevented by the overdraft instead.
type memBudget struct {
	capacity int64
	mu       struct {
		sync.Mutex
		used      int64
		overdraft bool          // a frame is growing past the budget
		changed   chan struct{} // closed (and replaced) when bytes or the overdraft are freed
	}
}

func newMemBudget(capacity int64) *memBudget {
	m := &memBudget{capacity: capacity}
	m.mu.changed = make(chan struct{})
	return m
}

// wakeLocked tells waiters that something was freed.
func (m *memBudget) wakeLocked() {
	close(m.mu.changed)
	m.mu.changed = make(chan struct{})
}

// acquire takes n bytes (n ≤ capacity), waiting until they are free; with
// mayOverdraft, it takes the overdraft instead if that is free first, and
// reports that it did (then nothing is taken and the caller owes
// endOverdraft). It fails only when ctx ends.
func (m *memBudget) acquire(ctx context.Context, n int64, mayOverdraft bool) (overdraft bool, err error) {
	for {
		m.mu.Lock()
		switch {
		case m.mu.used+n <= m.capacity:
			m.mu.used += n
			m.mu.Unlock()
			return false, nil
		case mayOverdraft && !m.mu.overdraft:
			m.mu.overdraft = true
			m.mu.Unlock()
			return true, nil
		}
		changed := m.mu.changed
		m.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// release returns n bytes taken by acquire.
func (m *memBudget) release(n int64) {
	if n <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.used -= n
	if m.mu.used < 0 {
		panic("memBudget: released more than was taken")
	}
	m.wakeLocked()
}

// endOverdraft gives the overdraft back.
func (m *memBudget) endOverdraft() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.overdraft = false
	m.wakeLocked()
}

// used reports the bytes taken (tests).
func (m *memBudget) used() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.used
}

// requestMemory is what one request holds: the frame's bytes and the
// decoded request's, from the server's two budgets. Its zero value holds
// nothing. Only the connection's reader changes it until the request is
// queued; afterwards only release touches it.
type requestMemory struct {
	frame, decoded int64 // bytes taken from Server.frameBytes and Server.decodedBytes
	overdraft      bool  // the frame is growing past the budget (while it is read)
}

// reserveFrame takes n more bytes for the frame being read; growth says the
// frame already holds bytes (and may take the overdraft). A frame never
// takes more than the whole budget: beyond that it is read on what it has.
func (s *Server) reserveFrame(ctx context.Context, h *requestMemory, n int64, growth bool) error {
	if s.frameBytes == nil || h.overdraft {
		return nil
	}
	n = min(n, s.frameBytes.capacity-h.frame)
	if n <= 0 {
		return nil
	}
	over, err := s.frameBytes.acquire(ctx, n, growth)
	if err != nil {
		return err
	}
	if over {
		h.overdraft = true
	} else {
		h.frame += n
	}
	return nil
}

// frameRead ends the frame's reading: the overdraft, if it had it, goes
// back (its bytes stay counted nowhere but in the bound above).
func (s *Server) frameRead(h *requestMemory) {
	if h.overdraft {
		h.overdraft = false
		s.frameBytes.endOverdraft()
	}
}

// reserveDecoded takes n bytes for the decoded request (at most the whole
// budget), waiting while other requests hold them.
func (s *Server) reserveDecoded(ctx context.Context, h *requestMemory, n int64) error {
	if s.decodedBytes == nil {
		return nil
	}
	n = min(n, s.decodedBytes.capacity)
	if _, err := s.decodedBytes.acquire(ctx, n, false); err != nil {
		return err
	}
	h.decoded += n
	return nil
}

// releaseMemory returns everything h holds.
func (s *Server) releaseMemory(h *requestMemory) {
	s.frameRead(h)
	if h.frame > 0 {
		s.frameBytes.release(h.frame)
	}
	if h.decoded > 0 {
		s.decodedBytes.release(h.decoded)
	}
	*h = requestMemory{}
}
