package e2e

// File-handle exhaustion and partition limits against a real `strata` process (issue 9,
// defect 6): clients that hold every file handle must not take a partition offline for good;
// the limits that keep a broker within its handles refuse work up front, with Kafka's errors.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/internal/harness"
)

// keepAliveHTTP is an HTTP client for the broker's health and metrics endpoints that keeps its
// one connection open, so that requests still get through while the broker cannot accept a new
// connection (it has no file handle for one).
type keepAliveHTTP struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newKeepAliveHTTP(t *testing.T, b *strataProc) *keepAliveHTTP {
	tr := &http.Transport{MaxIdleConns: 1, MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, IdleConnTimeout: 10 * time.Minute}
	t.Cleanup(tr.CloseIdleConnections)
	return &keepAliveHTTP{t: t, base: "http://" + b.HTTPAddr(), c: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
}

// get returns the status and body of GET path.
func (h *keepAliveHTTP) get(path string) (int, string) {
	h.t.Helper()
	resp, err := h.c.Get(h.base + path)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// metric returns a series' value from /metrics, failing the test if it is absent.
func (h *keepAliveHTTP) metric(name string, labels ...string) float64 {
	h.t.Helper()
	code, body := h.get("/metrics")
	if code != http.StatusOK {
		h.t.Fatalf("GET /metrics = %d:\n%s", code, tail([]byte(body), 2000))
	}
	v, ok := promValue(body, name, labels...)
	if !ok {
		h.t.Fatalf("/metrics has no %s%v", name, labels)
	}
	return v
}

// openFDs counts the descriptors process pid holds (/proc/<pid>/fd).
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("listing the broker's descriptors: %v", err)
	}
	return len(ents)
}

// produceOne produces value to partition 0 of topic with cl and returns the error.
func produceOne(ctx context.Context, cl *kgo.Client, topic, value string) error {
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(value)}).FirstErr()
}

// A broker whose clients hold every file handle it may open (RLIMIT_NOFILE, set low with
// prlimit) keeps its partitions: a produce that needs a new segment fails with a retriable error
// while no handle is free, the partition is reported offline in /readyz and the metrics
// meanwhile, and once the connections holding the handles close, it is back by itself — no
// restart — and every acknowledged record is there.
func TestFileHandleExhaustion(t *testing.T) {
	prlimit := requireCommand(t, "prlimit") // util-linux
	const nofile = 256
	b := &strataProc{t: t, Broker: harness.Start(t, harness.Options{
		Wrapper: []string{prlimit, fmt.Sprintf("--nofile=%d:%d", nofile, nofile), "--"},
		Args: []string{"--offsets.topic.num.partitions=1", "--object-store=none",
			// Unlimited connections: the clients below can hold every handle (the budget's start
			// warning says so).
			"--max.connections=0"},
		StopTimeout: stopTimeout,
	})}
	pid := b.PID()
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	limited := false
	for _, l := range strings.Split(string(limits), "\n") {
		if rest, ok := strings.CutPrefix(l, "Max open files"); ok {
			f := strings.Fields(rest) // soft, hard, unit
			limited = len(f) >= 2 && f[0] == strconv.Itoa(nofile) && f[1] == strconv.Itoa(nofile)
		}
	}
	if !limited {
		t.Fatalf("the broker does not run with RLIMIT_NOFILE %d:\n%s", nofile, limits)
	}

	const topic = "handles"
	// One batch per segment: every produce rolls, and needs four new handles.
	b.createTopic(t, topic, 1, map[string]*string{"internal.segment.bytes": kadm.StringPtr("100")})
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var acked []string
	good := b.kgoClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := range 5 {
		v := fmt.Sprintf("before-%d", i)
		if err := produceOne(ctx, good, topic, v); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
		acked = append(acked, v)
	}
	// A client that gives up after one retry, to see the error a producer retries on, and admin
	// requests through it. Its connections open now (franz-go keeps one per kind of request:
	// produce, metadata, and "slow" ones such as CreateTopics): later the broker has no handle
	// to accept a new one.
	once := b.kgoClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(), kgo.RecordRetries(1), kgo.MetadataMinAge(50*time.Millisecond))
	if err := produceOne(ctx, once, topic, "warm-up"); err != nil {
		t.Fatalf("produce warm-up: %v", err)
	}
	acked = append(acked, "warm-up")
	adm := kadm.NewClient(once)
	if _, err := adm.ListTopics(ctx); err != nil {
		t.Fatal(err)
	}
	if resp, err := adm.ValidateCreateTopics(ctx, 1, 1, nil, "warm-up"); err != nil || resp["warm-up"].Err != nil {
		t.Fatalf("ValidateCreateTopics: %v %v", err, resp["warm-up"].Err)
	}
	web := newKeepAliveHTTP(t, b)
	if code, body := web.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before = %d %q", code, body)
	}
	if v := web.metric("strata_broker_offline_partitions"); v != 0 {
		t.Fatalf("strata_broker_offline_partitions before = %v", v)
	}

	// Hold every handle: idle connections, until the broker's descriptors reach the limit.
	var hogs []net.Conn
	defer func() {
		for _, c := range hogs {
			c.Close()
		}
	}()
	deadline := time.Now().Add(time.Minute)
	for openFDs(t, pid) < nofile {
		if time.Now().After(deadline) {
			t.Fatalf("the broker holds %d descriptors after %d idle connections, not %d", openFDs(t, pid), len(hogs), nofile)
		}
		for range nofile - openFDs(t, pid) {
			c, err := net.Dial("tcp", b.Addr())
			if err != nil {
				t.Fatal(err)
			}
			hogs = append(hogs, c)
		}
		time.Sleep(200 * time.Millisecond) // let the broker accept them
	}
	t.Logf("%d idle connections hold the broker's last handles (%d open)", len(hogs), openFDs(t, pid))

	t.Run("produce fails with a retriable error", func(t *testing.T) {
		err := produceOne(ctx, once, topic, "refused")
		if !errors.Is(err, kerr.KafkaStorageError) || !kerr.IsRetriable(err) {
			t.Fatalf("produce without file handles: %v, want KAFKA_STORAGE_ERROR (retriable)", err)
		}
	})
	t.Run("reported offline", func(t *testing.T) {
		code, body := web.get("/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "partition handles-0 offline") || !strings.Contains(body, "too many open files") {
			t.Fatalf("/readyz while offline = %d %q", code, body)
		}
		if v := web.metric("strata_broker_offline_partitions"); v != 1 {
			t.Errorf("strata_broker_offline_partitions = %v, want 1", v)
		}
		if v := web.metric("strata_partition_offline", `topic="handles"`, `partition="0"`); v != 1 {
			t.Errorf("strata_partition_offline{handles,0} = %v, want 1", v)
		}
	})
	t.Run("CreateTopics refused up front", func(t *testing.T) {
		resp, err := adm.CreateTopics(ctx, 2, 1, nil, "no-handles")
		if err != nil {
			t.Fatal(err)
		}
		r := resp["no-handles"]
		if !errors.Is(r.Err, kerr.PolicyViolation) || !strings.Contains(r.ErrMessage, "file handles") {
			t.Fatalf("CreateTopics without file handles: %v %q, want POLICY_VIOLATION about file handles", r.Err, r.ErrMessage)
		}
		if m, _ := filepath.Glob(filepath.Join(b.DataDir(), "no-handles-*")); len(m) != 0 {
			t.Fatalf("a refused CreateTopics left %v", m)
		}
	})

	// Free the handles.
	for _, c := range hogs {
		c.Close()
	}
	hogs = nil
	for deadline := time.Now().Add(time.Minute); openFDs(t, pid) > nofile-50; {
		if time.Now().After(deadline) {
			t.Fatalf("the broker still holds %d descriptors after the connections closed", openFDs(t, pid))
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Run("back online without a restart", func(t *testing.T) {
		// By itself: the partition's recovery retries the roll (after 1, 2, 4 … s).
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
			code, body := web.get("/readyz")
			if code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz after the handles came back = %d %q", code, body)
			}
		}
		if v := web.metric("strata_broker_offline_partitions"); v != 0 {
			t.Errorf("strata_broker_offline_partitions after = %v", v)
		}
		if v := web.metric("strata_partition_offline_periods_total", `topic="handles"`, `partition="0"`); v < 1 {
			t.Errorf("strata_partition_offline_periods_total = %v: the offline period was not counted", v)
		}
		if !b.Running() || b.PID() != pid || b.Starts() != 1 {
			t.Fatalf("the broker was restarted (running %v, pid %d → %d, %d starts)", b.Running(), pid, b.PID(), b.Starts())
		}
		for i := range 5 {
			v := fmt.Sprintf("after-%d", i)
			if err := produceOne(ctx, good, topic, v); err != nil {
				t.Fatalf("produce %s: %v", v, err)
			}
			acked = append(acked, v)
		}
	})
	t.Run("every acknowledged record is there", func(t *testing.T) {
		got := b.consumeAll(t, topic)[0]
		var values []string
		for _, r := range got {
			values = append(values, string(r.Value))
		}
		if strings.Join(values, ",") != strings.Join(acked, ",") {
			t.Fatalf("partition holds %q,\nacknowledged %q", values, acked)
		}
	})
	t.Run("the log names the limit", func(t *testing.T) {
		log := strings.Join(b.LogOfStart(1), "\n")
		for _, want := range []string{"cannot roll to a new segment", "too many open files", "RLIMIT_NOFILE", "partition back online"} {
			if !strings.Contains(log, want) {
				t.Errorf("the broker log lacks %q", want)
			}
		}
	})
}

// max.broker.partitions and segment.bytes' minimum: what a client asks beyond them is refused
// with Kafka's error and a message naming the limit, and leaves nothing on disk.
func TestPartitionLimits(t *testing.T) {
	const limit = 8
	b := startStrata(t, fmt.Sprintf("--max.broker.partitions=%d", limit), "--offsets.topic.num.partitions=1", "--object-store=none")
	cl := b.kgoClient(t)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	b.createTopic(t, "seg", 1, nil) // for the segment.bytes subtest
	dirs := func(prefix string) []string {
		m, err := filepath.Glob(filepath.Join(b.DataDir(), prefix+"-*"))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	t.Run("max.broker.partitions", func(t *testing.T) {
		td, err := adm.ListTopicsWithInternal(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hosted := 0
		for _, d := range td {
			hosted += len(d.Partitions)
		}
		// Fill the broker but one partition, then ask for two.
		if resp, err := adm.CreateTopics(ctx, int32(limit-hosted-1), 1, nil, "fits"); err != nil || resp["fits"].Err != nil {
			t.Fatalf("%d partitions within the limit: %v %v", limit-hosted-1, err, resp["fits"].Err)
		}
		for _, validateOnly := range []bool{true, false} {
			create := adm.CreateTopics
			if validateOnly {
				create = adm.ValidateCreateTopics
			}
			resp, err := create(ctx, 2, 1, nil, "over")
			if err != nil {
				t.Fatal(err)
			}
			r := resp["over"]
			for _, want := range []string{fmt.Sprintf("max.broker.partitions=%d", limit), fmt.Sprintf("hosts %d now", limit-1), fmt.Sprintf("to %d partitions", limit+1)} {
				if !errors.Is(r.Err, kerr.PolicyViolation) || !strings.Contains(r.ErrMessage, want) {
					t.Fatalf("validate_only=%v: CreateTopics beyond the limit = %v %q, want POLICY_VIOLATION saying %q", validateOnly, r.Err, r.ErrMessage, want)
				}
			}
		}
		if m := dirs("over"); len(m) != 0 {
			t.Fatalf("a refused CreateTopics left %v", m)
		}
		resp, err := adm.CreatePartitions(ctx, 2, "fits")
		if err != nil {
			t.Fatal(err)
		}
		if r := resp["fits"]; !errors.Is(r.Err, kerr.PolicyViolation) || !strings.Contains(r.ErrMessage, fmt.Sprintf("max.broker.partitions=%d", limit)) {
			t.Fatalf("CreatePartitions beyond the limit = %v %q", r.Err, r.ErrMessage)
		}
		if m := dirs("fits"); len(m) != limit-hosted-1 {
			t.Fatalf("directories of fits after a refused CreatePartitions: %v", m)
		}
		if resp, err := adm.CreatePartitions(ctx, 1, "fits"); err != nil || resp["fits"].Err != nil {
			t.Fatalf("CreatePartitions up to the limit: %v %v", err, resp["fits"].Err)
		}
	})

	t.Run("segment.bytes minimum", func(t *testing.T) {
		for _, v := range []string{"1048575", "14"} { // 14: Kafka 3.x's minimum
			resp, err := adm.ValidateCreateTopics(ctx, 1, 1, map[string]*string{"segment.bytes": kadm.StringPtr(v)}, "small-segments")
			if err != nil {
				t.Fatal(err)
			}
			if r := resp["small-segments"]; !errors.Is(r.Err, kerr.InvalidConfig) || !strings.Contains(r.ErrMessage, "at least 1048576") {
				t.Fatalf("segment.bytes=%s: %v %q, want INVALID_CONFIG naming the minimum 1048576", v, r.Err, r.ErrMessage)
			}
		}
		alter := func(value string, validateOnly bool) kmsg.IncrementalAlterConfigsResponseResource {
			t.Helper()
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			req.ValidateOnly = validateOnly
			rr := kmsg.NewIncrementalAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "seg"
			c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			c.Name, c.Value, c.Op = "segment.bytes", kmsg.StringPtr(value), kmsg.IncrementalAlterConfigOpSet
			rr.Configs = append(rr.Configs, c)
			req.Resources = append(req.Resources, rr)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Resources[0]
		}
		if r := alter("65536", false); r.ErrorCode != kerr.InvalidConfig.Code || r.ErrorMessage == nil || !strings.Contains(*r.ErrorMessage, "at least 1048576") {
			t.Fatalf("IncrementalAlterConfigs segment.bytes=65536: %v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
		}
		if r := alter("1048576", true); r.ErrorCode != 0 {
			t.Fatalf("IncrementalAlterConfigs segment.bytes=1048576: %v", kerr.ErrorForCode(r.ErrorCode))
		}
	})

	t.Run("segment.bytes minimum at start", func(t *testing.T) {
		for _, flag := range []string{"--segment.bytes=65536", "--offsets.topic.segment.bytes=65536"} {
			cmd := exec.Command(harness.MustBinary(t), "serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--http-listen", "", flag)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "1048576") {
				t.Fatalf("strata serve %s: %v, want exit status 2 naming the minimum 1048576:\n%s", flag, err, out)
			}
		}
	})
}
