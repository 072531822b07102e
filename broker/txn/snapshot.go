package txn

// Producer-state snapshots.
//
// A snapshot file `<20-digit offset>.snapshot` in the partition directory
// holds the producer state for exactly the batches below that offset. All
// integers are big-endian:
//
//	magic      [4]byte "STPS"
//	version    uint16  (1)
//	crc        uint32  CRC-32C (Castagnoli) of every byte after this field
//	offset     int64   the snapshot offset (equals the number in the name)
//	count      uint32  number of producers
//	count × producer (sorted by id):
//	  producerID    int64
//	  epoch         int16
//	  lastTimestamp int64
//	  nbatches      uint8   (<= BatchesToRetain)
//	  nbatches × batch (oldest first):
//	    firstSeq, lastSeq       int32
//	    firstOffset, lastOffset int64
//	    timestamp               int64
//
// Files are written to `<name>.tmp`, fsynced, renamed into place and the
// directory fsynced, so a crash leaves either the old set of snapshots or
// the new one; the CRC catches anything else (a corrupt snapshot is
// quarantined as `<name>.corrupt` and the state is rebuilt from the log).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/stratalog/strata/internal/fsutil"
	"github.com/stratalog/strata/segments"
)

const (
	snapshotSuffix  = ".snapshot"
	snapshotMagic   = "STPS"
	snapshotVersion = 1

	snapshotHeaderLen  = 4 + 2 + 4 + 8 + 4 // magic, version, crc, offset, count
	snapshotEntryLen   = 8 + 2 + 8 + 1     // id, epoch, lastTimestamp, nbatches
	snapshotBatchLen   = 4 + 4 + 8 + 8 + 8 // seqs, offsets, timestamp
	snapshotCRCFrom    = 4 + 2 + 4         // the CRC covers bytes from here
	snapshotsToKeep    = 2                 // newest snapshots kept by Prune
	maxSnapshotBytes   = 1 << 30           // refuse to read anything larger
	snapshotCorruptExt = ".corrupt"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorruptSnapshot reports a snapshot that fails to decode.
var ErrCorruptSnapshot = errors.New("txn: corrupt producer snapshot")

// SnapshotName returns the file name of the snapshot at offset.
func SnapshotName(offset segments.Offset) string {
	return fmt.Sprintf("%020d%s", offset, snapshotSuffix)
}

// EncodeSnapshot serialises the state as of offset (the caller guarantees
// the state covers exactly the batches below offset).
func (s *ProducerState) EncodeSnapshot(offset segments.Offset) []byte {
	ids := make([]ProducerID, 0, len(s.producers))
	size := snapshotHeaderLen
	for id, e := range s.producers {
		ids = append(ids, id)
		size += snapshotEntryLen + len(e.batches)*snapshotBatchLen
	}
	slices.Sort(ids)
	b := make([]byte, 0, size)
	b = append(b, snapshotMagic...)
	b = binary.BigEndian.AppendUint16(b, snapshotVersion)
	b = append(b, 0, 0, 0, 0) // crc, filled below
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		e := s.producers[id]
		b = binary.BigEndian.AppendUint64(b, uint64(id))
		b = binary.BigEndian.AppendUint16(b, uint16(e.epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.lastTimestamp))
		b = append(b, uint8(len(e.batches)))
		for _, m := range e.batches {
			b = binary.BigEndian.AppendUint32(b, uint32(m.FirstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(m.LastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(m.FirstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.LastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.Timestamp))
		}
	}
	binary.BigEndian.PutUint32(b[6:10], crc32.Checksum(b[snapshotCRCFrom:], castagnoli))
	return b
}

// DecodeSnapshot parses a snapshot. Any malformation (short or long data,
// bad magic, unknown version, CRC mismatch, too many batches, repeated
// producer ids) returns an error wrapping ErrCorruptSnapshot; it never
// panics and allocates in proportion to len(b).
func DecodeSnapshot(b []byte) (segments.Offset, *ProducerState, error) {
	bad := func(format string, args ...any) (segments.Offset, *ProducerState, error) {
		return -1, nil, fmt.Errorf("%w: %s", ErrCorruptSnapshot, fmt.Sprintf(format, args...))
	}
	if len(b) < snapshotHeaderLen {
		return bad("%d bytes is shorter than the header", len(b))
	}
	if string(b[:4]) != snapshotMagic {
		return bad("bad magic %q", b[:4])
	}
	if v := binary.BigEndian.Uint16(b[4:6]); v != snapshotVersion {
		return bad("unsupported version %d", v)
	}
	if want, got := binary.BigEndian.Uint32(b[6:10]), crc32.Checksum(b[snapshotCRCFrom:], castagnoli); want != got {
		return bad("crc %08x, computed %08x", want, got)
	}
	offset := segments.Offset(binary.BigEndian.Uint64(b[10:18]))
	if offset < 0 {
		return bad("negative offset %d", offset)
	}
	count := binary.BigEndian.Uint32(b[18:22])
	rest := b[snapshotHeaderLen:]
	if uint64(count) > uint64(len(rest)/snapshotEntryLen) {
		return bad("%d producers cannot fit in %d bytes", count, len(rest))
	}
	s := &ProducerState{producers: make(map[ProducerID]*producerEntry, count)}
	for i := uint32(0); i < count; i++ {
		if len(rest) < snapshotEntryLen {
			return bad("truncated producer %d", i)
		}
		id := ProducerID(binary.BigEndian.Uint64(rest[0:8]))
		e := &producerEntry{
			epoch:         ProducerEpoch(binary.BigEndian.Uint16(rest[8:10])),
			lastTimestamp: int64(binary.BigEndian.Uint64(rest[10:18])),
		}
		n := int(rest[18])
		rest = rest[snapshotEntryLen:]
		if id < 0 {
			return bad("negative producer id %d", id)
		}
		if _, dup := s.producers[id]; dup {
			return bad("producer %d listed twice", id)
		}
		if n > BatchesToRetain {
			return bad("producer %d has %d batches (max %d)", id, n, BatchesToRetain)
		}
		if len(rest) < n*snapshotBatchLen {
			return bad("truncated batches of producer %d", id)
		}
		e.batches = make([]BatchMeta, n, BatchesToRetain)
		for j := range n {
			e.batches[j] = BatchMeta{
				FirstSeq:    Sequence(binary.BigEndian.Uint32(rest[0:4])),
				LastSeq:     Sequence(binary.BigEndian.Uint32(rest[4:8])),
				FirstOffset: segments.Offset(binary.BigEndian.Uint64(rest[8:16])),
				LastOffset:  segments.Offset(binary.BigEndian.Uint64(rest[16:24])),
				Timestamp:   int64(binary.BigEndian.Uint64(rest[24:32])),
			}
			rest = rest[snapshotBatchLen:]
		}
		s.producers[id] = e
	}
	if len(rest) != 0 {
		return bad("%d trailing bytes", len(rest))
	}
	return offset, s, nil
}

// WriteSnapshot durably writes data (from EncodeSnapshot) as the snapshot
// at offset in dir: temp file, fsync, rename, fsync of the directory.
func WriteSnapshot(dir string, offset segments.Offset, data []byte) error {
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, SnapshotName(offset)), data); err != nil {
		return fmt.Errorf("txn: write producer snapshot: %w", err)
	}
	return nil
}

// listSnapshots returns the snapshot offsets in dir, ascending.
func listSnapshots(dir string) ([]segments.Offset, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var offs []segments.Offset
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, snapshotSuffix) || e.IsDir() {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(name, snapshotSuffix), 10, 64)
		if err != nil || n < 0 || len(name) != 20+len(snapshotSuffix) {
			continue
		}
		offs = append(offs, segments.Offset(n))
	}
	slices.Sort(offs)
	return offs, nil
}

// PruneSnapshots deletes all but the newest snapshotsToKeep snapshots. Two
// are kept so that if the newest turns out to lie beyond the log end after
// a crash (it may be written before the data below it is fsynced), the
// previous one still saves a replay from the log start.
func PruneSnapshots(dir string) error {
	offs, err := listSnapshots(dir)
	if err != nil {
		return err
	}
	var errs []error
	for i := 0; i < len(offs)-snapshotsToKeep; i++ {
		if err := os.Remove(filepath.Join(dir, SnapshotName(offs[i]))); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ReplayFunc calls apply for every batch in the log from offset `from` to
// the log end, in order (segments.Log.ScanBatches through FromHeader).
type ReplayFunc func(from segments.Offset, apply func(Batch) error) error

// LoadProducerState rebuilds a partition's producer state: the newest
// readable snapshot at or below logEnd, then every batch from its offset
// (or from logStart when there is none) replayed through Update. It returns
// the number of batches replayed, so the caller can write a fresh snapshot
// when replay was needed.
//
// Snapshots above logEnd describe batches the log no longer has (a crash
// lost an unsynced tail) and are deleted, so they cannot be picked up once
// the log grows past them again. A snapshot that fails to decode is
// renamed to `<name>.corrupt`, logged, and the next older one tried.
// Leftover `.tmp` files from an interrupted write are removed.
func LoadProducerState(dir string, logStart, logEnd segments.Offset, replay ReplayFunc, logger *slog.Logger) (*ProducerState, int, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if tmps, err := filepath.Glob(filepath.Join(dir, "*"+snapshotSuffix+".tmp")); err == nil {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	offs, err := listSnapshots(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("txn: list producer snapshots: %w", err)
	}
	var state *ProducerState
	from := logStart
	for i := len(offs) - 1; i >= 0 && state == nil; i-- {
		off := offs[i]
		path := filepath.Join(dir, SnapshotName(off))
		if off > logEnd {
			logger.Info("deleting producer snapshot beyond the log end", "file", path, "log_end", int64(logEnd))
			if err := os.Remove(path); err != nil {
				return nil, 0, fmt.Errorf("txn: remove stale producer snapshot: %w", err)
			}
			continue
		}
		s, err := readSnapshot(path, off)
		if err != nil {
			logger.Error("producer snapshot unreadable; quarantined, rebuilding from the log", "file", path, "err", err)
			if rerr := os.Rename(path, path+snapshotCorruptExt); rerr != nil {
				return nil, 0, fmt.Errorf("txn: quarantine corrupt producer snapshot: %w", rerr)
			}
			continue
		}
		state, from = s, max(off, logStart)
	}
	if state == nil {
		state = NewProducerState()
	}
	replayed := 0
	if from < logEnd {
		err := replay(from, func(b Batch) error {
			state.Update(b)
			replayed++
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("txn: replay producer state from offset %d: %w", from, err)
		}
	}
	return state, replayed, nil
}

func readSnapshot(path string, off segments.Offset) (*ProducerState, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > maxSnapshotBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrCorruptSnapshot, st.Size())
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, err
	}
	got, s, err := DecodeSnapshot(data)
	if err != nil {
		return nil, err
	}
	if got != off {
		return nil, fmt.Errorf("%w: file name says offset %d, content %d", ErrCorruptSnapshot, off, got)
	}
	return s, nil
}
