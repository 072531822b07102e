package e2e

// The e2e side of the harness: a broker under test is an internal/harness Broker (which builds,
// starts, stops, kills and restarts the real process, and checks its log) plus the Kafka-client
// helpers and external-tool helpers the tests share.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stratalog/strata/internal/harness"
)

const installHint = "run scripts/install-test-deps.sh (make test does) to install the e2e test clients"

// Hang guards, not assertions on speed: a broker that does not go down within stopTimeout is
// broken (the start guard is harness.DefaultReadyTimeout), and the test says so with its log
// instead of hanging until go test's timeout.
const (
	stopTimeout = 60 * time.Second
	opTimeout   = 3 * time.Minute // one client operation (a produce+consume round trip of a test)
)

var repoRoot string // absolute path of the module root (the parent of e2e/)

func TestMain(m *testing.M) {
	root, err := harness.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(2)
	}
	repoRoot = root
	harness.Main(m)
}

// strataProc is one `strata serve` process: a *harness.Broker, whose data directory and ports
// survive Restart, with Stop, PeakRSS and Metrics that fail the test instead of returning an
// error. At the end of the test the harness kills it, fails the test if its log shows a data race
// or a panic, and prints the log if the test failed.
type strataProc struct {
	*harness.Broker
	t testing.TB
}

// startStrata starts a broker with a fresh data directory and fresh ports and waits until it is
// ready.
func startStrata(t testing.TB, extraFlags ...string) *strataProc {
	t.Helper()
	b := harness.Start(t, harness.Options{Args: extraFlags, StopTimeout: stopTimeout})
	return &strataProc{Broker: b, t: t}
}

// Stop sends SIGTERM and waits for the process to exit. An exit status other than 0 fails the
// test but lets it go on checking the data; anything else that goes wrong stops the test.
func (p *strataProc) Stop() {
	p.t.Helper()
	if err := p.Broker.Stop(); errors.Is(err, harness.ErrUncleanExit) {
		p.t.Error(err)
	} else if err != nil {
		p.t.Fatal(err)
	}
}

// PeakRSS returns the broker process's peak resident set size (VmHWM) in bytes.
func (p *strataProc) PeakRSS() int64 {
	p.t.Helper()
	rss, err := p.Broker.PeakRSS()
	if err != nil {
		p.t.Fatal(err)
	}
	return rss
}

// Metrics fetches /metrics and returns the body.
func (p *strataProc) Metrics() string {
	p.t.Helper()
	m, err := p.Broker.Metrics()
	if err != nil {
		p.t.Fatal(err)
	}
	return m
}

// ---- clients ----------------------------------------------------------------------------------

// kgoClient returns a franz-go client for the broker, closed at the end of the test.
func (p *strataProc) kgoClient(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(p.Addr()), kgo.ClientID("e2e-kgo")}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic creates a topic through the Kafka protocol (kadm), failing the test on any error.
func (p *strataProc) createTopic(t testing.TB, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()))
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, configs, name)
	if err != nil {
		t.Fatalf("CreateTopics %s: %v", name, err)
	}
	for _, r := range resp {
		if r.Err != nil {
			t.Fatalf("CreateTopics %s: %v (%s)", name, r.Err, r.ErrMessage)
		}
	}
}

// endOffsets returns the high watermark of each partition of topic.
func (p *strataProc) endOffsets(t testing.TB, topic string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()))
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	lo, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListEndOffsets %s: %v", topic, err)
	}
	out := map[int32]int64{}
	var errs []error
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			errs = append(errs, fmt.Errorf("%s/%d: %w", o.Topic, o.Partition, o.Err))
		}
		out[o.Partition] = o.Offset
	})
	if len(errs) > 0 {
		t.Fatalf("ListEndOffsets %s: %v", topic, errors.Join(errs...))
	}
	return out
}

// consumeAll reads every partition of topic from offset 0 up to the high watermark it has when
// called, with a fresh franz-go client (no group), and returns the records per partition in
// offset order.
func (p *strataProc) consumeAll(t testing.TB, topic string) map[int32][]*kgo.Record {
	t.Helper()
	ends := p.endOffsets(t, topic)
	want := 0
	offs := map[int32]kgo.Offset{}
	for part, end := range ends {
		offs[part] = kgo.NewOffset().At(0)
		want += int(end)
	}
	out := map[int32][]*kgo.Record{}
	if want == 0 {
		return out
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
		kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	got := 0
	for got < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming %s: read %d of %d records before %v", topic, got, want, ctx.Err())
		}
		fs.EachError(func(topic string, part int32, err error) {
			t.Errorf("fetch %s/%d: %v", topic, part, err)
		})
		if t.Failed() {
			t.FailNow()
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				return // produced after we listed the end offsets
			}
			out[r.Partition] = append(out[r.Partition], r)
			got++
		})
	}
	for part, rs := range out {
		for i, r := range rs {
			if r.Offset != int64(i) {
				t.Fatalf("%s/%d: record %d has offset %d (offsets must be dense from 0)", topic, part, i, r.Offset)
			}
		}
	}
	return out
}

// ---- external tools -----------------------------------------------------------------------------

const debianPython = "/usr/bin/python3"

// requireCommand fails the test if name is not on PATH.
func requireCommand(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH: %s", name, installHint)
	}
	return path
}

// requirePythonModules fails the test unless /usr/bin/python3 imports every module.
func requirePythonModules(t testing.TB, modules ...string) {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		t.Fatalf("%s not found: %s", debianPython, installHint)
	}
	for _, m := range modules {
		out, err := exec.Command(debianPython, "-c", "import "+m).CombinedOutput()
		if err != nil {
			t.Fatalf("%s cannot import %s (%v: %s): %s", debianPython, m, err, bytes.TrimSpace(out), installHint)
		}
	}
}

// requireKafkaJS fails the test unless node and e2e/js/node_modules/kafkajs are present.
func requireKafkaJS(t testing.TB) string {
	t.Helper()
	node := requireCommand(t, "node")
	if _, err := os.Stat(filepath.Join(repoRoot, "e2e", "js", "node_modules", "kafkajs", "package.json")); err != nil {
		t.Fatalf("kafkajs is not installed in e2e/js/node_modules: %s", installHint)
	}
	return node
}

// runTool runs an external client with a hang guard and returns its stdout; on a non-zero exit
// it fails the test with stdout and stderr.
func runTool(t testing.TB, stdin io.Reader, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = repoRoot
	// No __pycache__ in the source tree.
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: no exit within %v\nstdout (tail):\n%s\nstderr (tail):\n%s", name, strings.Join(args, " "),
			opTimeout, tail(stdout.Bytes(), 4096), tail(stderr.Bytes(), 8192))
	}
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout (tail):\n%s\nstderr (tail):\n%s", name, strings.Join(args, " "),
			err, tail(stdout.Bytes(), 4096), tail(stderr.Bytes(), 8192))
	}
	if stderr.Len() > 0 {
		t.Logf("%s stderr (tail):\n%s", name, tail(stderr.Bytes(), 4096))
	}
	return stdout.Bytes()
}

func tail(b []byte, n int) string {
	if len(b) > n {
		return "…" + string(b[len(b)-n:])
	}
	return string(b)
}
