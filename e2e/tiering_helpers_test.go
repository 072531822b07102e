package e2e

// Helpers of the tiered-storage tests (tiering_test.go): a real MinIO server with a bucket,
// brokers started against it, the broker's tiering status endpoint, the bucket's manifests and
// segment objects, the local segment files, waiting for uploads to catch up, and streaming
// readers (franz-go and kcat) for logs too large to hold in memory.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stratalog/strata/broker"
	"github.com/stratalog/strata/internal/harness"
	"github.com/stratalog/strata/internal/miniotest"
	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/tiering"
)

// Hang guards of the tiering tests. Uploading and deleting are asynchronous, so the tests wait
// for a state (uploads caught up, local retention applied, orphans gone) and fail, showing the
// last state seen, only if it is not reached within the guard.
const (
	tierWaitTimeout = 3 * time.Minute
	tierPollEvery   = 200 * time.Millisecond
)

// tierStore is a bucket on a real MinIO server (internal/miniotest) that the brokers of one test
// tier into, plus a client to inspect it.
type tierStore struct {
	srv    *miniotest.Server
	bucket string
	mc     *minio.Client
}

// newTierStore starts a MinIO server (failing with the install command if there is none) and
// creates a bucket on it.
func newTierStore(t testing.TB) *tierStore {
	t.Helper()
	return newTierBucket(t, miniotest.Start(t))
}

// newTierBucket creates another bucket on srv.
func newTierBucket(t testing.TB, srv *miniotest.Server) *tierStore {
	t.Helper()
	return &tierStore{srv: srv, bucket: srv.NewBucket(t), mc: srv.Client(t)}
}

// minioURL is the bucket's --object-store URL for the minio-go backend.
func (s *tierStore) minioURL() string {
	return "minio://" + s.srv.Addr() + "/" + s.bucket + "?secure=false"
}

// s3URL is the bucket's --object-store URL for the aws-sdk-go-v2 backend (path-style requests
// to the endpoint).
func (s *tierStore) s3URL() string {
	q := url.Values{"region": {"us-east-1"}, "endpoint": {s.srv.Endpoint()}}
	return "s3://" + s.bucket + "?" + q.Encode()
}

// env gives the broker the server's credentials.
func (s *tierStore) env() []string {
	return []string{
		objectstore.EnvAccessKey + "=" + s.srv.AccessKey(),
		objectstore.EnvSecretKey + "=" + s.srv.SecretKey(),
	}
}

// tierFlags are the broker flags of every tiered broker in these tests: the store, and a tiering
// loop and retention check that run often (instead of every 30 s and 5 min), so that uploads and
// local deletions follow the produce within a second.
func tierFlags(storeURL string) []string {
	return []string{
		"--object-store", storeURL,
		"--remote.log.manager.task.interval.ms=200",
		"--log.retention.check.interval.ms=500",
	}
}

// startTiered starts a broker tiering into storeURL (a URL of s's bucket) with tierFlags and extra.
func startTiered(t testing.TB, s *tierStore, storeURL string, extra ...string) *strataProc {
	t.Helper()
	args := append(tierFlags(storeURL), extra...)
	b := harness.Start(t, harness.Options{Args: args, Env: s.env(), StopTimeout: stopTimeout})
	return &strataProc{Broker: b, t: t}
}

// ---- the status endpoint ----------------------------------------------------------------------

// tierStatus is one partition of GET /v1/tiering/status (the broker's own type, read with the
// harness's client), printable for messages.
type tierStatus broker.TieringPartitionStatus

func (s tierStatus) String() string {
	return fmt.Sprintf("%s/%d: tiered=%v logStart=%d localStart=%d localEnd=%d hw=%d localBytes=%d remote=[%d,%d) %d bytes %d segments, lag %d bytes %d segments %.1fs, lastError=%q",
		s.Topic, s.Partition, s.Tiered, s.LogStartOffset, s.LocalStartOffset, s.LocalEndOffset, s.HighWatermark, s.LocalBytes,
		s.RemoteStartOffset, s.RemoteEndOffset, s.RemoteBytes, s.RemoteSegments, s.UploadLagBytes, s.UploadLagSegments, s.UploadLagSeconds, s.LastError)
}

// fetchTierStatus returns the tiering status of topic's partitions by partition. It returns
// errors rather than failing the test, so that monitoring goroutines can call it.
func fetchTierStatus(b *strataProc, topic string) (map[int32]tierStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	parts, err := b.Broker.TieringStatus(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]tierStatus{}
	for _, p := range parts {
		if p.Topic != topic {
			return nil, fmt.Errorf("the tiering status of %s holds topic %q", topic, p.Topic)
		}
		out[p.Partition] = tierStatus(p)
	}
	return out, nil
}

// tierStatus fetches the status of topic's partitions, failing the test on any error or if a
// partition is missing.
func (p *strataProc) tierStatus(t testing.TB, topic string, partitions int32) map[int32]tierStatus {
	t.Helper()
	st, err := fetchTierStatus(p, topic)
	if err != nil {
		t.Fatal(err)
	}
	for part := range partitions {
		if _, ok := st[part]; !ok {
			t.Fatalf("/v1/tiering/status has no partition %s/%d: %v", topic, part, st)
		}
	}
	return st
}

// ---- waiting ---------------------------------------------------------------------------------

// waitFor polls cond until it reports done. cond also describes the state it saw; if the state
// is not reached within guard (a hang guard), the test fails with that description.
func waitFor(t testing.TB, what string, guard time.Duration, cond func() (done bool, state string)) {
	t.Helper()
	start := time.Now()
	for {
		done, state := cond()
		if done {
			t.Logf("%s: reached after %v", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > guard {
			t.Fatalf("%s: not reached after %v; last state:\n%s", what, guard, state)
		}
		time.Sleep(tierPollEvery)
	}
}

// waitUploaded waits until uploads of topic have caught up: for every partition the status
// reports no upload lag and the committed manifest ends at the base offset of the active local
// segment, that is, every closed segment is in the bucket. The producers must have stopped (or
// the target moves). It returns the last status and manifests.
func (s *tierStore) waitUploaded(t testing.TB, b *strataProc, topic string, partitions int32) (map[int32]tierStatus, map[int32]*tiering.Manifest) {
	t.Helper()
	var st map[int32]tierStatus
	var ms map[int32]*tiering.Manifest
	waitFor(t, topic+": uploads caught up", tierWaitTimeout, func() (bool, string) {
		st = b.tierStatus(t, topic, partitions)
		ms = s.manifests(t, topic)
		var state strings.Builder
		done := true
		for part := range partitions {
			active := activeSegmentBase(t, b.DataDir(), topic, part)
			end := int64(0)
			if m := ms[part]; m != nil {
				end = int64(m.EndOffset())
			}
			fmt.Fprintf(&state, "  %v; manifest end %d, active local segment base %d\n", st[part], end, active)
			if st[part].UploadLagBytes != 0 || end != active {
				done = false
			}
		}
		return done, state.String()
	})
	return st, ms
}

// ---- the bucket ------------------------------------------------------------------------------

// objects lists every object under prefix.
func (s *tierStore) objects(t testing.TB, prefix string) []minio.ObjectInfo {
	t.Helper()
	objs, err := s.listObjects(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// listObjects is objects returning its error, for monitoring goroutines.
func (s *tierStore) listObjects(prefix string) ([]minio.ObjectInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []minio.ObjectInfo
	for o := range s.mc.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("listing %s/%s: %w", s.bucket, prefix, o.Err)
		}
		out = append(out, o)
	}
	return out, nil
}

// get reads an object whole.
func (s *tierStore) get(t testing.TB, key string) []byte {
	t.Helper()
	data, err := s.getObject(key)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// getObject is get returning its error, for monitoring goroutines.
func (s *tierStore) getObject(key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o, err := s.mc.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", s.bucket, key, err)
	}
	defer o.Close()
	data, err := io.ReadAll(o)
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", s.bucket, key, err)
	}
	return data, nil
}

// clusterMetadata reads the bucket's cluster/metadata.json, nil if there is none yet.
func (s *tierStore) clusterMetadata(t testing.TB) *tiering.ClusterMetadata {
	t.Helper()
	for _, o := range s.objects(t, tiering.MetadataKey) {
		if o.Key == tiering.MetadataKey {
			md, err := tiering.DecodeMetadata(s.get(t, o.Key))
			if err != nil {
				t.Fatalf("%s: %v", o.Key, err)
			}
			return md
		}
	}
	return nil
}

// manifests reads the committed manifest of every partition of topic from the bucket
// (tiering.ParseManifestKey finds them, tiering.DecodeManifest checks them). A partition that
// committed nothing yet has none. Two manifests of one partition (two topic ids under one name)
// fail the test: these tests never re-create a topic.
func (s *tierStore) manifests(t testing.TB, topic string) map[int32]*tiering.Manifest {
	t.Helper()
	ms, err := s.readManifests(topic)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// readManifests is manifests returning its error, for monitoring goroutines.
func (s *tierStore) readManifests(topic string) (map[int32]*tiering.Manifest, error) {
	objs, err := s.listObjects(tiering.TopicPrefix(topic))
	if err != nil {
		return nil, err
	}
	out := map[int32]*tiering.Manifest{}
	for _, o := range objs {
		tp, err := tiering.ParseManifestKey(o.Key)
		if err != nil {
			continue // a segment object
		}
		data, err := s.getObject(o.Key)
		if err != nil {
			return nil, err
		}
		m, err := tiering.DecodeManifest(data)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", o.Key, err)
		}
		if m.TopicPartition() != tp {
			return nil, fmt.Errorf("manifest %s describes %v", o.Key, m.TopicPartition())
		}
		if prev, dup := out[tp.Partition]; dup {
			return nil, fmt.Errorf("%s/%d has two manifests, of topic ids %s and %s", topic, tp.Partition, prev.TopicID, tp.TopicID)
		}
		out[tp.Partition] = m
	}
	return out, nil
}

// checkManifestContiguous checks that m lists segments that cover [0, m.EndOffset()) without a
// gap, an overlap or a duplicate, and that each listed object is in the bucket with the size the
// manifest records. (For topics that are neither compacted nor trimmed by remote retention, as in
// these tests.)
func (s *tierStore) checkManifestContiguous(t testing.TB, m *tiering.Manifest) {
	t.Helper()
	tp := m.TopicPartition()
	if m.LogStartOffset != 0 {
		t.Errorf("%v: manifest log start offset %d, want 0 (nothing was deleted)", tp, m.LogStartOffset)
	}
	sizes := map[string]int64{}
	for _, o := range s.objects(t, tiering.SegmentsPrefix(tp)) {
		sizes[o.Key] = o.Size
	}
	next := m.LogStartOffset
	keys := map[string]bool{}
	for i := range m.Segments {
		seg := &m.Segments[i]
		key := m.SegmentKey(seg)
		if seg.BaseOffset != next {
			t.Errorf("%v: manifest segment %d is [%d, %d), but the previous one ends at %d (a gap or an overlap)",
				tp, i, seg.BaseOffset, seg.EndOffset, next)
		}
		if keys[key] {
			t.Errorf("%v: manifest lists %s twice", tp, key)
		}
		keys[key] = true
		size, ok := sizes[key]
		switch {
		case !ok:
			t.Errorf("%v: manifest lists %s [%d, %d), which is not in the bucket", tp, key, seg.BaseOffset, seg.EndOffset)
		case size != seg.ObjectBytes:
			t.Errorf("%v: %s has %d bytes, the manifest says %d", tp, key, size, seg.ObjectBytes)
		}
		next = seg.EndOffset
	}
}

// unlistedSegments returns the keys under tp's segments/ prefix that m does not list, failing
// the test on any key that is not a segment key (orphan cleanup would never delete it, and the
// broker should never write it).
func (s *tierStore) unlistedSegments(t testing.TB, m *tiering.Manifest) []string {
	t.Helper()
	listed := map[string]bool{}
	for i := range m.Segments {
		listed[m.SegmentKey(&m.Segments[i])] = true
	}
	var out []string
	for _, o := range s.objects(t, tiering.SegmentsPrefix(m.TopicPartition())) {
		if listed[o.Key] {
			continue
		}
		if _, err := tiering.ParseSegmentKey(o.Key); err != nil {
			t.Errorf("bucket object %s under the segments prefix is not a segment key: %v", o.Key, err)
			continue
		}
		out = append(out, o.Key)
	}
	return out
}

// ---- local segment files ---------------------------------------------------------------------

// localSeg is one <base>.log file of a partition directory.
type localSeg struct {
	base int64
	size int64
}

// localSegments lists the *.log files of partition directory <dataDir>/<topic>-<partition> in
// offset order. Files deleted while it lists are left out.
func localSegments(dataDir, topic string, partition int32) ([]localSeg, error) {
	dir := filepath.Join(dataDir, fmt.Sprintf("%s-%d", topic, partition))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []localSeg
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok || len(name) != 20 {
			continue
		}
		base, err := strconv.ParseInt(name, 10, 64)
		if err != nil {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted by retention meanwhile
		} else if err != nil {
			return nil, err
		}
		out = append(out, localSeg{base: base, size: fi.Size()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].base < out[j].base })
	return out, nil
}

// localLogBytes is the total size of a partition directory's *.log files.
func localLogBytes(segs []localSeg) int64 {
	var n int64
	for _, s := range segs {
		n += s.size
	}
	return n
}

// activeSegmentBase is the base offset of a partition's newest (active) local segment: the end
// of its closed segments.
func activeSegmentBase(t testing.TB, dataDir, topic string, partition int32) int64 {
	t.Helper()
	segs, err := localSegments(dataDir, topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) == 0 {
		t.Fatalf("%s/%d: no segment file in the data directory %s", topic, partition, dataDir)
	}
	return segs[len(segs)-1].base
}

// ---- producing ---------------------------------------------------------------------------------

// rollSegments makes every record produced so far to topic's partitions part of a closed segment:
// it produces to each partition one record bigger than segment.bytes, which the log always writes
// to a new segment (an append that does not fit rolls a non-empty active segment). It returns each
// partition's roll-record offset, the end of its closed segments.
func (p *strataProc) rollSegments(t testing.TB, topic string, partitions int32, segmentBytes int) map[int32]int64 {
	t.Helper()
	cl := p.kgoClient(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(int32(segmentBytes)+64<<10))
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	out := map[int32]int64{}
	for part := range partitions {
		r := &kgo.Record{Partition: part, Key: []byte("roll"), Value: bytes.Repeat([]byte{'r'}, segmentBytes+1)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("producing the roll record to %s/%d: %v", topic, part, err)
		}
		out[part] = r.Offset
	}
	cl.Close()
	for part, off := range out {
		if got := activeSegmentBase(t, p.DataDir(), topic, part); got != off {
			t.Fatalf("%s/%d: the roll record at offset %d did not start a new segment (active segment base %d)", topic, part, off, got)
		}
	}
	return out
}

// ---- streaming readers ---------------------------------------------------------------------------

// consumeStream reads partitions of topic with franz-go from offset 0 up to ends[partition]
// (exclusive) and calls check with every record in offset order per partition, without keeping
// them. It returns the first error check or the fetches return; the read is bounded by ctx.
func consumeStream(ctx context.Context, addr, topic string, ends map[int32]int64, check func(*kgo.Record) error) error {
	offs := map[int32]kgo.Offset{}
	left := 0
	next := map[int32]int64{}
	for part, end := range ends {
		if end > 0 {
			offs[part] = kgo.NewOffset().At(0)
			left++
		}
	}
	if left == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
		kgo.FetchMaxWait(500*time.Millisecond), kgo.FetchMaxPartitionBytes(8<<20), kgo.FetchMaxBytes(32<<20))
	if err != nil {
		return err
	}
	defer cl.Close()
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("consuming %s: stopped at %v (ends %v): %w", topic, next, ends, ctx.Err())
		}
		var errs []error
		fs.EachError(func(tp string, part int32, err error) {
			errs = append(errs, fmt.Errorf("fetch %s/%d: %w", tp, part, err))
		})
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		var cerr error
		fs.EachRecord(func(r *kgo.Record) {
			end := ends[r.Partition]
			if cerr != nil || r.Offset >= end {
				return
			}
			if r.Offset != next[r.Partition] {
				cerr = fmt.Errorf("%s/%d: got offset %d, want %d (offsets must be dense from 0)", topic, r.Partition, r.Offset, next[r.Partition])
				return
			}
			if err := check(r); err != nil {
				cerr = err
				return
			}
			next[r.Partition]++
			if next[r.Partition] == end {
				left--
			}
		})
		if cerr != nil {
			return cerr
		}
	}
	return nil
}

// kcatStream reads partition part of topic from the beginning to its end with kcat (librdkafka,
// CRC checks on), printing '%o %k %s\n', and calls check with each message's offset, key and
// value as it arrives; keys must hold no ' ' and neither keys nor values '\n'. It returns the
// number of messages, or the first error of check or kcat. ctx bounds the run.
func kcatStream(ctx context.Context, kcat, addr, topic string, part int32, check func(off int64, key, value []byte) error) (int64, error) {
	cmd := exec.CommandContext(ctx, kcat, "-C", "-b", addr, "-t", topic, "-p", strconv.Itoa(int(part)),
		"-o", "beginning", "-e", "-q", "-X", "check.crcs=true", "-f", "%o %k %s\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	fail := func(err error) (int64, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, fmt.Errorf("kcat %s/%d: %w\nstderr (tail):\n%s", topic, part, err, tail(stderr.Bytes(), 4096))
	}
	r := bufio.NewReaderSize(out, 1<<20)
	var n int64
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fail(fmt.Errorf("a line longer than %d bytes after %d messages", r.Size(), n))
		}
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				return fail(fmt.Errorf("output ends in a partial line %q", tail(line, 100)))
			}
			break
		}
		if err != nil {
			return fail(err)
		}
		line = line[:len(line)-1]
		offStr, rest, ok1 := bytes.Cut(line, []byte{' '})
		key, value, ok2 := bytes.Cut(rest, []byte{' '})
		off, perr := strconv.ParseInt(string(offStr), 10, 64)
		if !ok1 || !ok2 || perr != nil {
			return fail(fmt.Errorf("unexpected output line %q", tail(line, 100)))
		}
		if err := check(off, key, value); err != nil {
			return fail(err)
		}
		n++
	}
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("kcat %s/%d: %w (ctx: %v)\nstderr (tail):\n%s", topic, part, err, ctx.Err(), tail(stderr.Bytes(), 4096))
	}
	return n, nil
}
