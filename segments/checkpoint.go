package segments

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/stratalog/strata/internal/fsutil"
)

// Checkpoint files, kept per partition directory (Kafka keeps the log-start
// and recovery-point checkpoints per data directory, keyed by topic and
// partition; keeping them beside the segments makes a partition directory
// self-contained). All use Kafka's checkpoint text format: a version line
// ("0"), a count line, then one entry per line.
//
//	recovery-point-checkpoint    0 / 1 / "<offset>"
//	log-start-offset-checkpoint  0 / 1 / "<offset>"
//	leader-epoch-checkpoint      0 / n / "<epoch> <startOffset>" ...
//
// Files are replaced atomically (write a .tmp, fsync, rename, fsync the
// directory). A missing or unparsable file is treated as absent.
const (
	recoveryPointFile = "recovery-point-checkpoint"
	logStartFile      = "log-start-offset-checkpoint"
	leaderEpochFile   = "leader-epoch-checkpoint"
	// cleanShutdownFile marks a log closed by Close: its indexes are
	// complete and no recovery scan is needed. Removed by Open.
	cleanShutdownFile = ".kafka_cleanshutdown"
	tmpSuffix         = fsutil.TmpSuffix
	checkpointVersion = 0
)

// maxCheckpointEntries bounds what a (corrupt) checkpoint may make us parse.
const maxCheckpointEntries = 1 << 20

// EpochEntry is one leader epoch and the first offset written in it (a
// line of the leader-epoch-checkpoint file).
type EpochEntry struct {
	Epoch       LeaderEpoch
	StartOffset Offset
}

// ParseCheckpoint parses Kafka's checkpoint text format (a version line,
// a count line, then one line per entry), returning the entry lines split
// into fields; each entry must have `fields` fields. Other packages keep
// their own checkpoints in this format too (broker/replica's tier
// checkpoint).
func ParseCheckpoint(b []byte, fields int) ([][]string, error) {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) < 2 {
		return nil, errors.New("missing version or count line")
	}
	if v, err := strconv.Atoi(strings.TrimSpace(lines[0])); err != nil || v != checkpointVersion {
		return nil, fmt.Errorf("unsupported version %q", lines[0])
	}
	n, err := strconv.Atoi(strings.TrimSpace(lines[1]))
	if err != nil || n < 0 || n > maxCheckpointEntries || n != len(lines)-2 {
		return nil, fmt.Errorf("count %q does not match %d entries", lines[1], len(lines)-2)
	}
	out := make([][]string, 0, n)
	for i, l := range lines[2:] {
		f := strings.Fields(l)
		if len(f) != fields {
			return nil, fmt.Errorf("entry %d: %q", i, l)
		}
		out = append(out, f)
	}
	return out, nil
}

// parseOffsetCheckpoint parses a single-offset checkpoint.
func parseOffsetCheckpoint(b []byte) (Offset, error) {
	entries, err := ParseCheckpoint(b, 1)
	if err != nil {
		return 0, err
	}
	if len(entries) != 1 {
		return 0, fmt.Errorf("%d entries, want 1", len(entries))
	}
	v, err := strconv.ParseInt(entries[0][0], 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad offset %q", entries[0][0])
	}
	return Offset(v), nil
}

// parseEpochCheckpoint parses leader-epoch-checkpoint; entries must have
// strictly increasing epochs and nondecreasing start offsets.
func parseEpochCheckpoint(b []byte) ([]EpochEntry, error) {
	entries, err := ParseCheckpoint(b, 2)
	if err != nil {
		return nil, err
	}
	out := make([]EpochEntry, 0, len(entries))
	for i, f := range entries {
		e, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || e < 0 || o < 0 {
			return nil, fmt.Errorf("entry %d: %q", i, strings.Join(f, " "))
		}
		if i > 0 && (LeaderEpoch(e) <= out[i-1].Epoch || Offset(o) < out[i-1].StartOffset) {
			return nil, fmt.Errorf("entry %d out of order", i)
		}
		out = append(out, EpochEntry{LeaderEpoch(e), Offset(o)})
	}
	return out, nil
}

// FormatCheckpoint writes entries, each a line of numbers, in Kafka's
// checkpoint text format (ParseCheckpoint reads it back).
func FormatCheckpoint(entries [][]int64) []byte {
	b := fmt.Appendf(nil, "%d\n%d\n", checkpointVersion, len(entries))
	for _, e := range entries {
		for i, v := range e {
			if i > 0 {
				b = append(b, ' ')
			}
			b = strconv.AppendInt(b, v, 10)
		}
		b = append(b, '\n')
	}
	return b
}

func formatOffsetCheckpoint(o Offset) []byte {
	return FormatCheckpoint([][]int64{{int64(o)}})
}

func formatEpochCheckpoint(es []EpochEntry) []byte {
	entries := make([][]int64, len(es))
	for i, e := range es {
		entries[i] = []int64{int64(e.Epoch), int64(e.StartOffset)}
	}
	return FormatCheckpoint(entries)
}

// Leader epoch cache operations (Kafka's LeaderEpochFileCache), on a slice
// ordered by epoch and start offset.

// assignEpoch records that epoch e starts at offset start. Like Kafka, an
// entry for the same epoch with an earlier start is kept (no-op), and
// entries that conflict (epoch >= e or start offset >= start) are removed.
// It reports whether the cache changed.
func assignEpoch(es []EpochEntry, e LeaderEpoch, start Offset) ([]EpochEntry, bool) {
	if e < 0 {
		return es, false
	}
	if n := len(es); n > 0 && es[n-1].Epoch == e && es[n-1].StartOffset <= start {
		return es, false
	}
	keep := len(es)
	for keep > 0 && (es[keep-1].Epoch >= e || es[keep-1].StartOffset >= start) {
		keep--
	}
	return append(es[:keep:keep], EpochEntry{e, start}), true
}

// assignNewerEpoch assigns e at start only if e is newer than every cached
// epoch: appends and recovery use it, so a batch carrying a stale epoch
// never rewrites the history of newer ones.
func assignNewerEpoch(es []EpochEntry, e LeaderEpoch, start Offset) ([]EpochEntry, bool) {
	if n := len(es); n > 0 && e <= es[n-1].Epoch {
		return es, false
	}
	return assignEpoch(es, e, start)
}

// truncateEpochsFromEnd drops entries starting at or after end.
func truncateEpochsFromEnd(es []EpochEntry, end Offset) ([]EpochEntry, bool) {
	keep := len(es)
	for keep > 0 && es[keep-1].StartOffset >= end {
		keep--
	}
	return es[:keep:keep], keep != len(es)
}

// truncateEpochsFromStart drops entries wholly below start: the last entry
// starting before start is kept, moved to start.
func truncateEpochsFromStart(es []EpochEntry, start Offset) ([]EpochEntry, bool) {
	i := 0
	for i < len(es) && es[i].StartOffset < start {
		i++
	}
	if i == 0 {
		return es, false
	}
	out := make([]EpochEntry, 0, len(es)-i+1)
	out = append(out, EpochEntry{es[i-1].Epoch, start})
	out = append(out, es[i:]...)
	if len(out) > 1 && out[1].StartOffset == start {
		out = out[1:] // the moved entry would be empty
	}
	return out, true
}

// endOffsetForEpoch implements Kafka's OffsetForLeaderEpoch lookup: for the
// latest epoch, the log end offset; otherwise the start offset of the first
// epoch above e, paired with the largest known epoch <= e (or e itself if
// e is below every known epoch). Unknown: (-1, -1).
func endOffsetForEpoch(es []EpochEntry, e LeaderEpoch, logEnd Offset) (LeaderEpoch, Offset) {
	if e < 0 || len(es) == 0 {
		return -1, -1
	}
	if es[len(es)-1].Epoch == e {
		return e, logEnd
	}
	hi := -1 // first entry with epoch > e
	for i, x := range es {
		if x.Epoch > e {
			hi = i
			break
		}
	}
	if hi < 0 {
		return -1, -1
	}
	if hi == 0 {
		return e, es[0].StartOffset
	}
	return es[hi-1].Epoch, es[hi].StartOffset
}
