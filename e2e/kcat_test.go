package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestKcatRoundTrip: kcat (librdkafka) produces 100,000 keyed messages and consumes them back
// byte-exact, in producer order within each partition, at dense offsets from 0.
func TestKcatRoundTrip(t *testing.T) {
	kcat := requireCommand(t, "kcat")
	b := startStrata(t)
	const topic, n, partitions = "kcat-roundtrip", 100_000, 3
	b.createTopic(t, topic, partitions, nil)

	// "key:value" lines; values are printable, vary in length and may contain ':' (kcat splits
	// at the first delimiter only).
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 :-_.,;!?"
	lines := make([]string, n)
	var in bytes.Buffer
	for i := range lines {
		v := make([]byte, rng.IntN(200))
		for j := range v {
			v[j] = alphabet[rng.IntN(len(alphabet))]
		}
		lines[i] = fmt.Sprintf("key-%06d:val-%06d-%s", i, i, v)
		in.WriteString(lines[i])
		in.WriteByte('\n')
	}
	input := filepath.Join(t.TempDir(), "kcat-input.txt")
	if err := os.WriteFile(input, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(input)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runTool(t, f, kcat, "-P", "-b", b.Addr(), "-t", topic, "-K:", "-X", "acks=all")

	var total int64
	for _, end := range b.endOffsets(t, topic) {
		total += end
	}
	if total != n {
		t.Fatalf("after kcat -P, the partitions' end offsets add up to %d, want %d", total, n)
	}

	out := runTool(t, nil, kcat, "-C", "-b", b.Addr(), "-t", topic, "-e", "-o", "beginning", "-q",
		"-X", "check.crcs=true", "-f", "%p %o %k:%s\n")
	perPart := map[int][]string{}     // consumed "key:value" per partition, in offset order
	partOf := make(map[string]int, n) // key -> partition it was consumed from
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 3)
		if len(f) != 3 {
			t.Fatalf("unexpected kcat output line %q", sc.Text())
		}
		p, _ := strconv.Atoi(f[0])
		off, _ := strconv.Atoi(f[1])
		if off != len(perPart[p]) {
			t.Fatalf("partition %d: kcat printed offset %d after %d messages (offsets must be dense from 0)", p, off, len(perPart[p]))
		}
		perPart[p] = append(perPart[p], f[2])
		key, _, _ := strings.Cut(f[2], ":")
		if _, dup := partOf[key]; dup {
			t.Fatalf("key %s consumed twice", key)
		}
		partOf[key] = p
	}
	if len(partOf) != n {
		t.Fatalf("kcat -C returned %d messages, want %d", len(partOf), n)
	}
	// Byte-exact and in order: per partition, the consumed lines must equal the produced lines
	// that went to that partition, in the order they were produced.
	want := map[int][]string{}
	for _, l := range lines {
		key, _, _ := strings.Cut(l, ":")
		p, ok := partOf[key]
		if !ok {
			t.Fatalf("message %q was not consumed", key)
		}
		want[p] = append(want[p], l)
	}
	for p, ls := range want {
		got := perPart[p]
		for i := range ls {
			if got[i] != ls[i] {
				t.Fatalf("partition %d offset %d: consumed %q, want %q", p, i, got[i], ls[i])
			}
		}
	}
	b.logRequestVersions(t)
	if len(want) < 2 {
		t.Errorf("all messages went to %d partition(s); expected librdkafka's partitioner to spread keys over %d", len(want), partitions)
	}
}

// TestKcatOffsetsByTimestamp: records with known timestamps (franz-go, one record per batch, and
// one raw multi-record batch), then `kcat -o s@<ts>` starts at the first record whose timestamp
// is >= ts — Kafka's ListOffsets semantics, which look inside a batch.
func TestKcatOffsetsByTimestamp(t *testing.T) {
	kcat := requireCommand(t, "kcat")
	// Tiny segments (a roll every few batches) and an index entry per batch: the lookup must
	// find the right segment through the time indexes, not just scan one file.
	b := startStrata(t, "--internal.segment.bytes=400", "--index.interval.bytes=1")
	const topic = "kcat-timestamps"
	b.createTopic(t, topic, 1, nil)

	base := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	cl := b.kgoClient(t, kgo.DefaultProduceTopic(topic))
	// Offsets 0..19: one record per batch, timestamps base + i s.
	for i := 0; i < 20; i++ {
		r := &kgo.Record{Value: []byte("single-" + strconv.Itoa(i)), Timestamp: time.UnixMilli(base + int64(i)*1000)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		if r.Offset != int64(i) {
			t.Fatalf("record %d got offset %d", i, r.Offset)
		}
	}
	// Offsets 20..29: one batch of ten records, timestamps base2 + k s.
	base2 := base + 100_000
	var recs []rawRecord
	for k := 0; k < 10; k++ {
		recs = append(recs, rawRecord{Value: []byte("multi-" + strconv.Itoa(k)), Timestamp: base2 + int64(k)*1000})
	}
	rc := dialRaw(t, b.Addr())
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(7)
	req.Acks = -1
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = encodeBatch(recs, batchOpts{})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrProduceResponse()
	if err := rc.roundTrip(req, resp); err != nil {
		t.Fatalf("raw produce of a 10-record batch: %v", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response shape: %+v", resp)
	}
	if pr := resp.Topics[0].Partitions[0]; pr.ErrorCode != 0 || pr.BaseOffset != 20 {
		t.Fatalf("raw produce: error code %d, base offset %d (want 0, 20)", pr.ErrorCode, pr.BaseOffset)
	}

	cases := []struct {
		name    string
		ts      int64
		wantOff int
	}{
		{"before everything", base - 5000, 0},
		{"exact, single batches", base + 5000, 5},
		{"between single batches", base + 5500, 6},
		{"last single batch", base + 19000, 19},
		{"between the single batches and the multi-record batch", base + 50_000, 20},
		{"first record of the multi-record batch", base2, 20},
		{"inside the multi-record batch", base2 + 3500, 24},
		{"exact, inside the multi-record batch", base2 + 7000, 27},
	}
	for _, c := range cases {
		out := runTool(t, nil, kcat, "-C", "-b", b.Addr(), "-t", topic, "-p", "0", "-o", "s@"+strconv.FormatInt(c.ts, 10),
			"-e", "-q", "-f", "%o %T %s\n")
		first, _, _ := strings.Cut(string(out), "\n")
		f := strings.Fields(first)
		if len(f) != 3 {
			t.Errorf("%s: kcat -o s@%d printed %q", c.name, c.ts, tail(out, 200))
			continue
		}
		if off, _ := strconv.Atoi(f[0]); off != c.wantOff {
			t.Errorf("%s: kcat -o s@%d started at offset %d (ts %s, %s), want %d", c.name, c.ts, off, f[1], f[2], c.wantOff)
		}
		if lines := strings.Count(string(out), "\n"); lines != 30-c.wantOff {
			t.Errorf("%s: kcat -o s@%d printed %d messages, want %d", c.name, c.ts, lines, 30-c.wantOff)
		}
	}
}

// TestLogAppendTime: on a topic with message.timestamp.type=LogAppendTime the broker stamps each
// batch with its append time (and so must recompute the batch CRC): records produced by franz-go
// and kcat with old CreateTime timestamps come back with the broker's time and the LogAppendTime
// attribute, and librdkafka's CRC check (check.crcs=true) accepts every batch.
func TestLogAppendTime(t *testing.T) {
	kcat := requireCommand(t, "kcat")
	b := startStrata(t)
	const topic = "log-append-time"
	lat := "LogAppendTime"
	b.createTopic(t, topic, 1, map[string]*string{"message.timestamp.type": &lat})

	t0 := time.Now().UnixMilli()
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	cl := b.kgoClient(t, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	recs := make([]*kgo.Record, 100)
	for i := range recs {
		recs[i] = &kgo.Record{Key: recKey(i), Value: recValue("lat", i), Timestamp: old}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	var in bytes.Buffer
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&in, "kcat-%d\n", i)
	}
	runTool(t, &in, kcat, "-P", "-b", b.Addr(), "-t", topic, "-X", "acks=all")
	t1 := time.Now().UnixMilli()

	out := runTool(t, nil, kcat, "-C", "-b", b.Addr(), "-t", topic, "-e", "-o", "beginning", "-q",
		"-X", "check.crcs=true", "-f", "%o %T\n")
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("unexpected kcat line %q", l)
		}
		ts, _ := strconv.ParseInt(f[1], 10, 64)
		if ts < t0 || ts > t1 {
			t.Errorf("offset %s: timestamp %d, want the append time, within [%d, %d]", f[0], ts, t0, t1)
		}
		n++
	}
	if n != 200 {
		t.Fatalf("kcat read %d records, want 200", n)
	}
	got := b.consumeAll(t, topic)[0]
	for _, r := range got[:100] {
		if r.Attrs.TimestampType() != 1 {
			t.Fatalf("offset %d: timestamp type %d, want 1 (LogAppendTime)", r.Offset, r.Attrs.TimestampType())
		}
		if ts := r.Timestamp.UnixMilli(); ts < t0 || ts > t1 {
			t.Fatalf("offset %d: franz-go sees timestamp %d, want within [%d, %d]", r.Offset, ts, t0, t1)
		}
	}
	checkRecValues(t, topic, "lat", 100, map[int32][]*kgo.Record{0: got[:100]})
}
