package segments

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// Index files. Both are arrays of fixed-size big-endian entries, as in
// Kafka:
//
//	.index      relativeOffset uint32, position uint32          (8 bytes)
//	.timeindex  timestamp int64, relativeOffset uint32          (12 bytes)
//
// relativeOffset is offset - segment base offset. As in Kafka, an offset
// index entry (r, p) says the batch whose *last* offset is base+r starts at
// byte p of the .log file; entries are sparse (one per
// index.interval.bytes) and strictly increase in both fields. A time index
// entry (t, r) says that every batch appended up to the moment the entry
// was written has maxTimestamp <= t and the batch whose last offset is
// base+r carries t; timestamps strictly increase.
//
// Unlike Kafka, files are not preallocated to segment.index.bytes and
// trimmed: entries are appended, so a file's size is always a multiple of
// its entry size and every byte is an entry. The active segment keeps its
// entries in memory (mem) and writes them out when it is rolled or the log
// is closed; closed segments are searched with pread (no mmap, so a file
// truncated under a reader cannot fault).

const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

// entryFile is one index file with optional in-memory entries.
// All fields are guarded by Log.mu, except that views (immutable snapshots)
// may be used without it.
type entryFile struct {
	f         *os.File
	path      string
	entrySize int
	mem       []byte // all entries, or nil when only the file has them
	n         int    // number of entries
	flushed   int    // entries known to be in the file
}

// view returns an immutable snapshot for lookups outside Log.mu. Entries
// below n are never rewritten while the file is in use (mem only grows at
// the end; Truncate, which rewrites, excludes nothing but is documented).
func (e *entryFile) view() indexView {
	v := indexView{f: e.f, n: e.n, es: e.entrySize}
	if e.mem != nil {
		v.mem = e.mem[:e.n*e.entrySize]
	}
	return v
}

func (e *entryFile) appendEntry(b []byte) {
	if e.mem == nil {
		// Only active segments get entries; they always have mem.
		panic("segments: entry appended to an index without memory")
	}
	e.mem = append(e.mem, b...)
	e.n++
}

// pending returns the entries not yet written and the file position they go to.
func (e *entryFile) pending() ([]byte, int64) {
	if e.mem == nil || e.flushed >= e.n {
		return nil, 0
	}
	return e.mem[e.flushed*e.entrySize : e.n*e.entrySize], int64(e.flushed * e.entrySize)
}

// indexView is a read-only snapshot of an entryFile.
type indexView struct {
	f   *os.File
	mem []byte
	n   int
	es  int
}

// entry returns the bytes of entry i in buf (len >= es).
func (v indexView) entry(i int, buf []byte) ([]byte, error) {
	if v.mem != nil {
		return v.mem[i*v.es : (i+1)*v.es], nil
	}
	b := buf[:v.es]
	if _, err := v.f.ReadAt(b, int64(i*v.es)); err != nil {
		return nil, fmt.Errorf("read %s entry %d: %w", v.f.Name(), i, err)
	}
	return b, nil
}

// search returns the largest i in [0, n) with less(entry i) == true, assuming
// less is true for a prefix of the entries; -1 if none.
func (v indexView) search(less func(e []byte) bool) (int, error) {
	var buf [timeEntrySize]byte
	lo, hi := 0, v.n // invariant: entries < lo satisfy, entries >= hi do not
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		e, err := v.entry(mid, buf[:])
		if err != nil {
			return -1, err
		}
		if less(e) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1, nil
}

func offsetEntry(e []byte) (rel uint32, pos uint32) {
	return binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:])
}

func putOffsetEntry(b []byte, rel, pos uint32) []byte {
	b = binary.BigEndian.AppendUint32(b, rel)
	return binary.BigEndian.AppendUint32(b, pos)
}

// lookupOffset returns the last index entry whose offset is <= target:
// the position of a batch with last offset off <= target, so the batch
// holding target starts at or after it; (0, base) if there is none. Index
// errors also give (0, base): the index only accelerates, and callers
// check that a batch with last offset off really starts at pos.
func (v indexView) lookupOffset(base, target Offset) (pos int64, off Offset) {
	if target < base {
		return 0, base
	}
	rel := uint64(target - base)
	i, err := v.search(func(e []byte) bool { r, _ := offsetEntry(e); return uint64(r) <= rel })
	if err != nil {
		return 0, base
	}
	return v.offsetAt(i, base)
}

// lookupPosition returns the last index entry whose position is <= maxPos,
// as lookupOffset does.
func (v indexView) lookupPosition(base Offset, maxPos int64) (pos int64, off Offset) {
	i, err := v.search(func(e []byte) bool { _, p := offsetEntry(e); return int64(p) <= maxPos })
	if err != nil {
		return 0, base
	}
	return v.offsetAt(i, base)
}

func (v indexView) offsetAt(i int, base Offset) (int64, Offset) {
	if i < 0 {
		return 0, base
	}
	var buf [offsetEntrySize]byte
	e, err := v.entry(i, buf[:])
	if err != nil {
		return 0, base
	}
	rel, pos := offsetEntry(e)
	return int64(pos), base + Offset(rel)
}

// CheckOffsetIndex verifies an offset index read from storage against its
// segment: whole entries, strictly increasing relative offsets and
// positions, positions inside the log (logBytes) and relative offsets below
// maxRel (the segment's offset span). It returns the number of entries.
// The remote tier checks downloaded indexes with it too.
func CheckOffsetIndex(b []byte, logBytes, maxRel int64) (int, error) {
	if len(b)%offsetEntrySize != 0 {
		return 0, fmt.Errorf("size %d is not a multiple of %d", len(b), offsetEntrySize)
	}
	n := len(b) / offsetEntrySize
	var lastRel, lastPos int64 = -1, -1
	for i := range n {
		r, p := offsetEntry(b[i*offsetEntrySize:])
		if int64(r) <= lastRel || int64(p) <= lastPos {
			return 0, fmt.Errorf("entry %d (%d, %d) does not increase", i, r, p)
		}
		if int64(p) >= logBytes {
			return 0, fmt.Errorf("entry %d position %d beyond the log size %d", i, p, logBytes)
		}
		if int64(r) >= maxRel {
			return 0, fmt.Errorf("entry %d relative offset %d beyond the segment's span %d", i, r, maxRel)
		}
		lastRel, lastPos = int64(r), int64(p)
	}
	return n, nil
}

// readWhole reads a whole (index) file.
func readWhole(f *os.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}
