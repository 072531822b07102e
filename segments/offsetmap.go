package segments

import (
	"crypto/md5"
	"encoding/binary"
	"math/bits"
)

// offsetMap is the cleaner's key → latest offset map, in one fixed-size
// slice so that its memory is exactly what log.cleaner.dedupe.buffer.size
// allows (Kafka's SkimpyOffsetMap). A key is stored as its MD5 digest: two
// distinct keys colliding on 128 bits is not a practical concern, while
// storing keys themselves would make the memory depend on key sizes.
//
// Open addressing over a power-of-two number of slots with double hashing
// (an odd probe step visits every slot). A slot is 16 bytes of digest and 8
// of offset+1 (0 marks an empty slot).
type offsetMap struct {
	slots   []byte
	n       uint64 // number of slots, a power of two
	used    int
	maxUsed int    // load limit: the map is full beyond this
	latest  Offset // largest offset put, -1 if none
}

const (
	offsetMapSlotBytes = md5.Size + 8 // 24
	offsetMapLoad      = 0.9          // Kafka's log.cleaner.io.buffer.load.factor
)

// offsetMapSlotsFor returns the number of slots (a power of two) for a map
// that must hold up to wantKeys keys in at most maxBytes.
func offsetMapSlotsFor(wantKeys int64, maxBytes int64) uint64 {
	limit := uint64(max(maxBytes/offsetMapSlotBytes, 1))
	want := uint64(max(float64(wantKeys)/offsetMapLoad+1, 16))
	n := min(want, limit)
	// Round up to a power of two unless that breaks the memory bound.
	p := uint64(1) << (63 - bits.LeadingZeros64(n))
	if p < n && p*2 <= limit {
		p *= 2
	}
	return p
}

func newOffsetMap(slots uint64) *offsetMap {
	return &offsetMap{
		slots:   make([]byte, slots*offsetMapSlotBytes),
		n:       slots,
		maxUsed: int(float64(slots) * offsetMapLoad),
		latest:  -1,
	}
}

// Full reports whether the map can take no more distinct keys.
func (m *offsetMap) full() bool { return m.used >= m.maxUsed }

func (m *offsetMap) digest(key []byte) [md5.Size]byte { return md5.Sum(key) }

// find returns the slot position of digest d, or the empty slot where it
// would go.
func (m *offsetMap) find(d *[md5.Size]byte) (pos uint64, found bool) {
	h1 := binary.LittleEndian.Uint64(d[0:8])
	step := binary.LittleEndian.Uint64(d[8:16]) | 1
	mask := m.n - 1
	for i := h1 & mask; ; i = (i + step) & mask {
		s := m.slots[i*offsetMapSlotBytes : (i+1)*offsetMapSlotBytes]
		if binary.LittleEndian.Uint64(s[md5.Size:]) == 0 {
			return i, false
		}
		if [md5.Size]byte(s[:md5.Size]) == *d {
			return i, true
		}
	}
}

// put records that key's latest record is at off (puts come in offset
// order). It returns false, storing nothing, when a new key does not fit.
func (m *offsetMap) put(key []byte, off Offset) bool {
	d := m.digest(key)
	i, found := m.find(&d)
	if !found {
		if m.full() {
			return false
		}
		m.used++
	}
	s := m.slots[i*offsetMapSlotBytes : (i+1)*offsetMapSlotBytes]
	copy(s, d[:])
	binary.LittleEndian.PutUint64(s[md5.Size:], uint64(off)+1)
	m.latest = max(m.latest, off)
	return true
}

// get returns the latest offset recorded for key, or -1.
func (m *offsetMap) get(key []byte) Offset {
	d := m.digest(key)
	i, found := m.find(&d)
	if !found {
		return -1
	}
	return Offset(binary.LittleEndian.Uint64(m.slots[i*offsetMapSlotBytes+md5.Size:])) - 1
}
