package broker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestHandleBudget(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		limit, maxConns          int
		wantConns, wantPartition int
		fallback                 bool
	}{
		{"max.connections fits", 1024, 100, 100, 860, false},
		{"unlimited connections", 1024, 0, 480, 480, true},
		{"max.connections too large", 1024, 5000, 480, 480, true},
		{"max.connections takes everything", 1024, 960, 480, 480, true},
		{"tiny limit", 50, 10, 0, 0, true},
		{"defaults on a 1M limit", 1 << 20, 10000, 10000, 1<<20 - 64 - 10000, false},
	} {
		h := newHandleBudget(tc.limit, tc.maxConns)
		if h.connections != tc.wantConns || h.partitionHandles() != tc.wantPartition || h.fallback != tc.fallback {
			t.Errorf("%s: connections %d, partition handles %d, fallback %v; want %d, %d, %v",
				tc.name, h.connections, h.partitionHandles(), h.fallback, tc.wantConns, tc.wantPartition, tc.fallback)
		}
	}

	h := newHandleBudget(1024, 100) // 860 handles for partitions
	for _, tc := range []struct {
		name          string
		n, held, open int
		openErr       error
		want          []string // in the message; none: allowed
	}{
		{"fits", 10, 0, 100, nil, nil},
		{"fits exactly", 10, 830, 100, nil, nil},
		{"budget", 10, 831, 100, nil, []string{"needs 30 file handles", "budget for partitions is 860", "RLIMIT_NOFILE 1024", "64 reserved", "100 for max.connections", "hold 831"}},
		{"cannot count", 1, 0, 0, &os.PathError{Op: "open", Path: "/proc/self/fd", Err: syscall.EMFILE}, []string{"cannot count its open files", "RLIMIT_NOFILE"}},
		{"not free now", 10, 0, 1024 - 45, nil, []string{"only 45 of RLIMIT_NOFILE 1024 are free now", "979 open"}},
		{"free now exactly", 10, 0, 1024 - 46, nil, nil},
	} {
		err := h.check(tc.n, tc.held, tc.open, tc.openErr)
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var ae *adminError
		if !errors.As(err, &ae) || ae.code != kerr.PolicyViolation {
			t.Errorf("%s: err = %v, want POLICY_VIOLATION", tc.name, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(ae.msg, w) {
				t.Errorf("%s: message %q lacks %q", tc.name, ae.msg, w)
			}
		}
	}
}

func TestCheckPartitionCount(t *testing.T) {
	if err := checkPartitionCount(10, 7, 3); err != nil {
		t.Fatal(err)
	}
	err := checkPartitionCount(10, 8, 3)
	var ae *adminError
	if !errors.As(err, &ae) || ae.code != kerr.PolicyViolation ||
		!strings.Contains(ae.msg, "max.broker.partitions=10") || !strings.Contains(ae.msg, "to 11 partitions") || !strings.Contains(ae.msg, "hosts 8 now") {
		t.Fatalf("err = %v", err)
	}
}

// partitionDirs lists <data-dir>/<topic>-* directories.
func partitionDirs(t *testing.T, b *Broker, topic string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(b.cfg.DataDir, topic+"-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// max.broker.partitions holds for CreateTopics (validate_only too),
// CreatePartitions and auto-creation, counting __consumer_offsets, and a
// refused create leaves nothing behind.
func TestMaxBrokerPartitions(t *testing.T) {
	cfg := admTestConfig(t.TempDir())
	cfg.MaxBrokerPartitions = 55 // __consumer_offsets has 50
	b := admOpen(t, cfg)
	create := func(name string, n int32, validateOnly bool) kmsg.CreateTopicsResponseTopic {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.ValidateOnly = validateOnly
		req.Topics = []kmsg.CreateTopicsRequestTopic{admCreateTopic(name, n, 1)}
		return admCall[*kmsg.CreateTopicsResponse](t, b, req, 7).Topics[0]
	}
	if r := create("fits", 3, false); r.ErrorCode != 0 {
		t.Fatalf("3 partitions: %v %v", kerr.ErrorForCode(r.ErrorCode), deref(r.ErrorMessage))
	}
	for _, validateOnly := range []bool{true, false} {
		r := create("over", 3, validateOnly)
		if r.ErrorCode != kerr.PolicyViolation.Code || !strings.Contains(deref(r.ErrorMessage), "max.broker.partitions=55") ||
			!strings.Contains(deref(r.ErrorMessage), "hosts 53") {
			t.Fatalf("validate_only=%v: %v %q", validateOnly, kerr.ErrorForCode(r.ErrorCode), deref(r.ErrorMessage))
		}
	}
	if b.topics.get("over") != nil || len(partitionDirs(t, b, "over")) != 0 {
		t.Fatal("a refused create left a topic or directories")
	}

	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = "fits", 6
	req.Topics = append(req.Topics, rt)
	if r := admCall[*kmsg.CreatePartitionsResponse](t, b, req, 3).Topics[0]; r.ErrorCode != kerr.PolicyViolation.Code ||
		!strings.Contains(deref(r.ErrorMessage), "max.broker.partitions=55") {
		t.Fatalf("CreatePartitions: %v %q", kerr.ErrorForCode(r.ErrorCode), deref(r.ErrorMessage))
	}
	if n := len(partitionDirs(t, b, "fits")); n != 3 {
		t.Fatalf("%d directories of fits, want 3", n)
	}

	// num.partitions is 2: an auto-create fits once (55), then not.
	md := kmsg.NewPtrMetadataRequest()
	for _, name := range []string{"auto1", "auto2"} {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		md.Topics = append(md.Topics, mt)
	}
	md.AllowAutoTopicCreation = true
	resp := admCall[*kmsg.MetadataResponse](t, b, md, 9)
	codes := map[string]int16{}
	for _, mt := range resp.Topics {
		codes[*mt.Topic] = mt.ErrorCode
	}
	if codes["auto1"] != 0 || codes["auto2"] != kerr.PolicyViolation.Code {
		t.Fatalf("auto-create codes %v", codes)
	}
}

// A create beyond the file-handle budget is refused before any directory
// is made.
func TestHandleBudgetRefusesCreate(t *testing.T) {
	b := admNew(t)
	b.topics.handles = newHandleBudget(64+100+180, 100) // 180 handles for partitions; 50 × 3 held by __consumer_offsets
	r := admCall[*kmsg.CreateTopicsResponse](t, b, &kmsg.CreateTopicsRequest{Topics: []kmsg.CreateTopicsRequestTopic{admCreateTopic("big", 11, 1)}}, 7).Topics[0]
	if r.ErrorCode != kerr.PolicyViolation.Code || !strings.Contains(deref(r.ErrorMessage), "file-handle budget") {
		t.Fatalf("%v %q", kerr.ErrorForCode(r.ErrorCode), deref(r.ErrorMessage))
	}
	if len(partitionDirs(t, b, "big")) != 0 {
		t.Fatal("directories left")
	}
	if _, err := b.topics.create("small", 10, nil); err != nil {
		t.Fatalf("10 partitions (30 handles) fit: %v", err)
	}
	// No handle to count with: refused with the reason.
	b.topics.countOpenFiles = func() (int, error) {
		return 0, &os.PathError{Op: "open", Path: "/proc/self/fd", Err: syscall.EMFILE}
	}
	_, err := b.topics.create("more", 1, nil)
	if code, msg := adminErrorCode(err); code != kerr.PolicyViolation.Code || !strings.Contains(*msg, "open-file limit") {
		t.Fatalf("%v", err)
	}
}

// A partition that fails to open when its topic is created reports the
// error to the creator and leaves no directory; the topic is committed,
// and the partition opens at the next metadata change once the fault is
// gone. A directory that cannot be removed is retried in the background
// until it goes.
func TestFailedCreateLeavesNoDirectories(t *testing.T) {
	b := admNew(t)
	var failRemove atomic.Bool
	b.topics.removeAll = func(dir string) error {
		if failRemove.Load() && strings.HasSuffix(dir, "-3") {
			return &os.PathError{Op: "open", Path: dir, Err: syscall.EMFILE}
		}
		return os.RemoveAll(dir)
	}
	var faultAt atomic.Int32
	faultAt.Store(2)
	b.topics.openFault = func(topic string, p int32) error {
		if p == faultAt.Load() {
			return &os.PathError{Op: "open", Path: "00000000000000000000.log", Err: syscall.EMFILE}
		}
		return nil
	}
	_, err := b.topics.create("half", 5, nil)
	if !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("create: %v", err)
	}
	if dirs := partitionDirs(t, b, "half"); len(dirs) != 4 || b.topics.get("half").partition(2) != nil {
		t.Fatalf("after the failed open: %v", dirs)
	}

	// CreatePartitions, with the removal of one directory failing at first.
	faultAt.Store(-1)
	if _, err := b.topics.create("grow", 1, nil); err != nil {
		t.Fatal(err)
	}
	if dirs := partitionDirs(t, b, "half"); len(dirs) != 5 || b.topics.get("half").partition(2) == nil {
		t.Fatalf("half-2 not opened at the next change: %v", dirs)
	}
	faultAt.Store(3)
	failRemove.Store(true)
	if err := b.topics.addPartitions("grow", 4, false); err == nil {
		t.Fatal("addPartitions succeeded")
	}
	dirs := partitionDirs(t, b, "grow")
	if len(dirs) != 4 || filepath.Base(dirs[3]) != "grow-3" {
		t.Fatalf("directories after the failed CreatePartitions: %v (want grow-0..2 and the unremovable grow-3)", dirs)
	}
	if p := b.topics.pendingLeftovers(); len(p) != 1 {
		t.Fatalf("pending removals %v", p)
	}
	failRemove.Store(false) // the handles are back
	deadline := time.Now().Add(10 * time.Second)
	for len(partitionDirs(t, b, "grow")) != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("grow-3 still there: %v", partitionDirs(t, b, "grow"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if g := b.topics.get("grow"); len(g.partitions) != 4 || g.partition(3) != nil {
		t.Fatalf("grow has %d partitions, partition 3 open: %v; want 4, not open", len(g.partitions), g.partition(3) != nil)
	}
}

// A topic of an older Strata's topics.json with a segment.bytes below
// today's minimum is adopted into the metadata log with its segment size
// kept as internal.segment.bytes, and topics.json is retired.
func TestLegacySmallSegmentBytes(t *testing.T) {
	dir := t.TempDir()
	cfg := admTestConfig(dir)
	legacy := `{"version":1,"topics":[{"name":"old","id":"` + topicIDString([16]byte{1, 2, 3}) + `","partitions":1,"configs":{"segment.bytes":"4096"}}]}`
	if err := os.WriteFile(filepath.Join(dir, topicsFile), []byte(legacy), 0o644); err != nil {
		t.Fatal(err)
	}
	b := admOpen(t, cfg)
	tp := b.topics.get("old")
	if tp == nil || tp.config.LogConfig().SegmentBytes != 4096 || tp.overrides["internal.segment.bytes"] != "4096" || tp.id != [16]byte{1, 2, 3} {
		t.Fatalf("topic %+v", tp)
	}
	if _, err := os.Stat(filepath.Join(dir, topicsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("topics.json still there after adoption: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, adoptedTopicsFile)); err != nil {
		t.Errorf("topics.json not kept as %s: %v", adoptedTopicsFile, err)
	}
}
