package e2e

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// recValue is the deterministic value of record i in a stream tagged tag. The Python (e2e/py) and
// JavaScript (e2e/js) clients compute the same bytes, so any client's output can be checked from
// Go: "<tag>:<i, 7 digits>:" followed by (i*37)%1000 bytes (i*7+j)%256 — every byte value occurs
// (binary-safe check) and the filler is compressible (so compressed batches hold many records).
func recValue(tag string, i int) []byte {
	b := fmt.Appendf(nil, "%s:%07d:", tag, i)
	n := (i * 37) % 1000
	for j := 0; j < n; j++ {
		b = append(b, byte((i*7+j)%256))
	}
	return b
}

// recKey is the key of record i.
func recKey(i int) []byte { return []byte("k" + strconv.Itoa(i)) }

// checkRecValues checks that the records of topic (per partition, in offset order) are exactly
// recValue(tag, i) with key recKey(i) for i in [0, n), each once, and that within each partition
// i increases (a producer's order is kept per partition).
func checkRecValues(t testing.TB, topic, tag string, n int, parts map[int32][]*kgo.Record) {
	t.Helper()
	seen := make([]bool, n)
	total := 0
	prefix := []byte(tag + ":")
	for part, rs := range parts {
		last := -1
		for _, r := range rs {
			total++
			if !bytes.HasPrefix(r.Value, prefix) || len(r.Value) < len(prefix)+8 {
				t.Fatalf("%s/%d offset %d: value %q does not start with %q", topic, part, r.Offset, label(r.Value), prefix)
			}
			i, err := strconv.Atoi(string(r.Value[len(prefix) : len(prefix)+7]))
			if err != nil || i < 0 || i >= n {
				t.Fatalf("%s/%d offset %d: bad sequence in value %q", topic, part, r.Offset, label(r.Value))
			}
			if seen[i] {
				t.Fatalf("%s/%d offset %d: record %d seen twice", topic, part, r.Offset, i)
			}
			seen[i] = true
			if want := recValue(tag, i); !bytes.Equal(r.Value, want) {
				t.Fatalf("%s/%d offset %d: record %d value differs (len %d, want %d)", topic, part, r.Offset, i, len(r.Value), len(want))
			}
			if want := recKey(i); !bytes.Equal(r.Key, want) {
				t.Fatalf("%s/%d offset %d: record %d key %q, want %q", topic, part, r.Offset, i, r.Key, want)
			}
			if i <= last {
				t.Fatalf("%s/%d offset %d: record %d after record %d (order within a partition broken)", topic, part, r.Offset, i, last)
			}
			last = i
		}
	}
	if total != n {
		missing := []int{}
		for i, s := range seen {
			if !s && len(missing) < 10 {
				missing = append(missing, i)
			}
		}
		t.Fatalf("%s: %d records, want %d (first missing: %v)", topic, total, n, missing)
	}
}

// label returns the "<tag>:<seq>" head of a recValue (or a quoted prefix of anything else), for
// messages.
func label(v []byte) string {
	if i := bytes.IndexByte(v, ':'); i >= 0 {
		if j := bytes.IndexByte(v[i+1:], ':'); j >= 0 {
			return string(v[:i+1+j])
		}
	}
	return fmt.Sprintf("%q", v[:min(len(v), 32)])
}
