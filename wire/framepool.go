package wire

import (
	"math/bits"
	"sync"
)

// Request frames are the largest allocations on the produce path (a
// franz-go producer sends ~1–6 MiB per request). Allocating each afresh
// costs zeroing, page faults and GC work per byte received, so frames come
// from per-size-class pools and go back once their reply has been written.
// A frame must not be reused earlier: kmsg decodes byte fields (Produce's
// records) as sub-slices of the frame, and a deferred reply may still be
// working on the request.
//
// Classes are powers of two from 4 KiB (2^12) to 128 MiB (2^27), which
// covers socket.request.max.bytes' 100 MiB default. Pooled memory is freed
// by the garbage collector when idle (sync.Pool); the live amount is
// bounded by connections × queued.max.requests × request size, as without
// the pool.
const (
	minFrameClassShift = 12
	maxFrameClassShift = 27
)

var framePools [maxFrameClassShift - minFrameClassShift + 1]sync.Pool

// frameClass returns the pool index for a frame of n bytes, or -1 if n is
// larger than the largest class.
func frameClass(n int) int {
	shift := minFrameClassShift
	if n > 1<<minFrameClassShift {
		shift = bits.Len(uint(n - 1))
	}
	if shift > maxFrameClassShift {
		return -1
	}
	return shift - minFrameClassShift
}

// getFrame returns a buffer of length n. Its contents are arbitrary: the
// caller overwrites all of it.
func getFrame(n int) []byte {
	c := frameClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if b, ok := framePools[c].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, 1<<(c+minFrameClassShift))
}

// putFrame returns a buffer from getFrame to its pool; the caller must not
// use it afterwards. Buffers of other capacities are left to the GC.
func putFrame(b []byte) {
	c := frameClass(cap(b))
	if c < 0 || cap(b) != 1<<(c+minFrameClassShift) {
		return
	}
	b = b[:0]
	framePools[c].Put(&b)
}
