package segments

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Time index (.timeindex): 12-byte entries (timestamp int64, relative
// offset uint32), big-endian, strictly increasing timestamps. See index.go
// for the shared file handling and the meaning of an entry.

func timeEntry(e []byte) (ts int64, rel uint32) {
	return int64(binary.BigEndian.Uint64(e)), binary.BigEndian.Uint32(e[8:])
}

func putTimeEntry(b []byte, ts int64, rel uint32) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(ts))
	return binary.BigEndian.AppendUint32(b, rel)
}

// lookupTime returns an offset from which a scan for the first batch with
// maxTimestamp >= ts can start: the offset of the last entry with
// timestamp < ts (every batch up to that entry's has a smaller maximum),
// or base.
func (v indexView) lookupTime(base Offset, ts int64) Offset {
	i, err := v.search(func(e []byte) bool { t, _ := timeEntry(e); return t < ts })
	if err != nil || i < 0 {
		return base
	}
	var buf [timeEntrySize]byte
	e, err := v.entry(i, buf[:])
	if err != nil {
		return base
	}
	_, rel := timeEntry(e)
	return base + Offset(rel)
}

// lastTime returns the last time index entry, ok=false if there is none.
func (v indexView) lastTime(base Offset) (ts int64, off Offset, ok bool) {
	if v.n == 0 {
		return -1, -1, false
	}
	var buf [timeEntrySize]byte
	e, err := v.entry(v.n-1, buf[:])
	if err != nil {
		return -1, -1, false
	}
	t, rel := timeEntry(e)
	return t, base + Offset(rel), true
}

// CheckTimeIndex verifies a time index file's contents: whole entries,
// strictly increasing timestamps, nondecreasing relative offsets below
// maxRel (the segment's offset span; math.MaxUint32+1 if unknown).
func CheckTimeIndex(b []byte, maxRel int64) (int, error) {
	if len(b)%timeEntrySize != 0 {
		return 0, fmt.Errorf("size %d is not a multiple of %d", len(b), timeEntrySize)
	}
	n := len(b) / timeEntrySize
	var lastTs int64 = math.MinInt64
	var lastRel int64 = -1
	for i := range n {
		t, r := timeEntry(b[i*timeEntrySize:])
		if (i > 0 && t <= lastTs) || int64(r) < lastRel || int64(r) >= maxRel {
			return 0, fmt.Errorf("entry %d (%d, %d) out of order or range", i, t, r)
		}
		lastTs, lastRel = t, int64(r)
	}
	return n, nil
}
