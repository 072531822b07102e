package e2e

// The harness: builds the strata binary once per `go test` run and runs it as a real process.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const installHint = "run scripts/install-test-deps.sh (make test does) to install the e2e test clients"

// Hang guards, not assertions on speed: a broker that does not come up or go down within these
// is broken, and the test says so with its log instead of hanging until go test's timeout.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 60 * time.Second
	opTimeout    = 3 * time.Minute // one client operation (a produce+consume round trip of a test)
)

var (
	repoRoot string // absolute path of the module root (the parent of e2e/)

	buildOnce sync.Once
	buildDir  string // temporary directory holding the built binary
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(2)
	}
	repoRoot = filepath.Dir(wd)
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// strataBinary builds ./cmd/strata once per test binary run and returns its path.
// STRATA_E2E_BINARY names a prebuilt binary to use instead (e.g. a release build);
// STRATA_E2E_RACE=1 builds it with the race detector.
func strataBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("STRATA_E2E_BINARY"); p != "" {
			binPath, buildErr = filepath.Abs(p)
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "strata-e2e-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "strata")
		args := []string{"build", "-o", binPath}
		if os.Getenv("STRATA_E2E_RACE") != "" {
			args = append(args, "-race") // the broker under the race detector; reports fail the test
		}
		cmd := exec.Command("go", append(args, "./cmd/strata")...)
		cmd.Dir = repoRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build -o %s ./cmd/strata: %v\n%s", binPath, err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building strata: %v", buildErr)
	}
	return binPath
}

// freeAddrs returns n distinct 127.0.0.1 addresses whose ports were free a moment ago.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		defer ln.Close() // held until all n are chosen, so they differ
		out = append(out, ln.Addr().String())
	}
	return out
}

// strataProc is one `strata serve` process. Its data directory and ports survive Restart.
// Methods are called from the test goroutine only (Kill may also be called from one other
// goroutine while the test goroutine waits; the mutex keeps that safe).
type strataProc struct {
	t        testing.TB
	DataDir  string
	Addr     string // Kafka listener, host:port
	HTTPAddr string // /healthz, /readyz, /metrics
	extra    []string
	logPath  string
	starts   int
	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the current process has exited
	exitErr  error         // valid after exited is closed
	logFile  *os.File
	dumpOnce sync.Once
}

// startStrata starts a broker with a fresh data directory and fresh ports, waits until it is
// ready, and arranges for it to be killed and (on failure) its log printed at the end of the test.
func startStrata(t testing.TB, extraFlags ...string) *strataProc {
	t.Helper()
	bin := strataBinary(t)
	dir := t.TempDir()
	addrs := freeAddrs(t, 2)
	p := &strataProc{
		t:        t,
		DataDir:  filepath.Join(dir, "data"),
		Addr:     addrs[0],
		HTTPAddr: addrs[1],
		extra:    extraFlags,
		logPath:  filepath.Join(dir, "strata.log"),
	}
	t.Cleanup(func() {
		p.mu.Lock()
		cmd, exited := p.cmd, p.exited
		p.mu.Unlock()
		if cmd != nil {
			select {
			case <-exited:
			default:
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		// A data race, or a panic (even one the broker recovered from), is a bug whatever the
		// clients saw.
		for _, l := range strings.Split(p.Log(), "\n") {
			if strings.Contains(l, "WARNING: DATA RACE") || strings.Contains(l, "panic") {
				t.Errorf("broker log: %s", l)
				break
			}
		}
		if t.Failed() {
			p.dumpLog()
		}
		if p.logFile != nil {
			p.logFile.Close()
		}
	})
	p.start(bin)
	return p
}

func (p *strataProc) args() []string {
	a := []string{"serve",
		"--data-dir", p.DataDir,
		"--listen", p.Addr,
		"--http-listen", p.HTTPAddr,
	}
	return append(a, p.extra...)
}

func (p *strataProc) start(bin string) {
	t := p.t
	t.Helper()
	if p.logFile == nil {
		f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatalf("opening broker log: %v", err)
		}
		p.logFile = f
	}
	p.starts++
	fmt.Fprintf(p.logFile, "==== e2e harness: start #%d: %s %s\n", p.starts, bin, strings.Join(p.args(), " "))
	cmd := exec.Command(bin, p.args()...)
	cmd.Stdout = p.logFile
	cmd.Stderr = p.logFile
	cmd.Dir = filepath.Dir(p.logPath)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting strata: %v", err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(exited)
	}()
	p.waitReady()
}

// waitReady waits until the Kafka port accepts connections and /readyz answers 200.
func (p *strataProc) waitReady() {
	t := p.t
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	kafkaUp, ready := false, false
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			t.Fatalf("strata exited during start (%v); its log follows", p.exitErr)
		default:
		}
		if !kafkaUp {
			c, err := net.DialTimeout("tcp", p.Addr, time.Second)
			if err == nil {
				c.Close()
				kafkaUp = true
			} else {
				lastErr = err
			}
		}
		if kafkaUp && !ready {
			resp, err := hc.Get("http://" + p.HTTPAddr + "/readyz")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ready = true
				} else {
					lastErr = fmt.Errorf("/readyz: %s", resp.Status)
				}
			} else {
				lastErr = err
			}
		}
		if kafkaUp && ready {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("strata not ready after %v (kafka port up: %v, last error: %v); its log follows",
		startTimeout, kafkaUp, lastErr)
}

// Alive reports whether the current process is still running.
func (p *strataProc) Alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and waits for a clean exit (status 0).
func (p *strataProc) Stop() {
	t := p.t
	t.Helper()
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		t.Fatalf("strata had already exited (%v) before Stop; its log follows", p.exitErr)
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("strata did not exit within %v of SIGTERM; its log follows", stopTimeout)
	}
	p.mu.Lock()
	err := p.exitErr
	p.mu.Unlock()
	if err != nil {
		t.Errorf("strata exited with %v after SIGTERM (want status 0)", err)
	}
}

// Kill sends SIGKILL and waits for the process to be gone. Safe to call from another goroutine.
func (p *strataProc) Kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	fmt.Fprintf(p.logFile, "==== e2e harness: SIGKILL sent, process gone\n")
}

// Restart starts the broker again with the same data directory, ports and flags. The previous
// process must have exited (Stop or Kill).
func (p *strataProc) Restart() {
	t := p.t
	t.Helper()
	if p.Alive() {
		t.Fatalf("Restart while strata is still running")
	}
	p.start(strataBinary(t))
}

// logTail returns the last part of the broker's log (all starts).
func (p *strataProc) logTail() string {
	const max = 64 << 10
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", p.logPath, err)
	}
	if len(b) > max {
		b = append([]byte("…(earlier lines cut)…\n"), b[len(b)-max:]...)
	}
	return string(b)
}

// LogOfStart returns the log lines written by the n-th start (1-based) of this broker.
func (p *strataProc) LogOfStart(n int) []string {
	var out []string
	in := false
	for _, l := range strings.Split(p.Log(), "\n") {
		if strings.HasPrefix(l, "==== e2e harness: start #") {
			in = strings.HasPrefix(l, fmt.Sprintf("==== e2e harness: start #%d:", n))
			continue
		}
		if in && l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Starts returns how many times the broker was started.
func (p *strataProc) Starts() int { return p.starts }

// Log returns the broker's whole log so far.
func (p *strataProc) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *strataProc) dumpLog() {
	p.dumpOnce.Do(func() {
		p.t.Logf("strata log (%s):\n%s", p.logPath, p.logTail())
	})
}

// PeakRSS returns the broker process's peak resident set size (VmHWM) in bytes.
func (p *strataProc) PeakRSS(t testing.TB) int64 {
	t.Helper()
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the broker's /proc status: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" && f[2] == "kB" {
			var kb int64
			fmt.Sscan(f[1], &kb)
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// Metrics fetches /metrics and returns the body.
func (p *strataProc) Metrics() string {
	t := p.t
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + p.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading /metrics: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, b)
	}
	return string(b)
}

// ---- clients ----------------------------------------------------------------------------------

// kgoClient returns a franz-go client for the broker, closed at the end of the test.
func (p *strataProc) kgoClient(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(p.Addr), kgo.ClientID("e2e-kgo")}, opts...)
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
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr))
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
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr))
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
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr),
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

// metricSum adds up the values of every sample in a Prometheus text exposition whose metric
// name contains all of the given substrings (case-insensitive) and returns the sum and the lines.
func metricSum(exposition string, substrings ...string) (float64, []string) {
	var sum float64
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		lname := strings.ToLower(name)
		match := true
		for _, s := range substrings {
			if !strings.Contains(lname, strings.ToLower(s)) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		rest := line[len(name):]
		if i := strings.LastIndexByte(rest, '}'); i >= 0 {
			rest = rest[i+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		var v float64
		if _, err := fmt.Sscanf(fields[0], "%g", &v); err == nil {
			sum += v
			lines = append(lines, line)
		}
	}
	return sum, lines
}

// logRequestVersions logs, from /metrics, which API versions the broker served (so a client
// test's log shows the protocol versions that client really used).
func (p *strataProc) logRequestVersions(t testing.TB) {
	t.Helper()
	var seen []string
	sc := bufio.NewScanner(strings.NewReader(p.Metrics()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "strata_broker_requests_total{") {
			continue
		}
		api, version := labelValue(l, "api"), labelValue(l, "version")
		f := strings.Fields(l[strings.LastIndexByte(l, '}')+1:])
		if api != "" && len(f) > 0 {
			seen = append(seen, fmt.Sprintf("%s v%s ×%s", api, version, f[0]))
		}
	}
	t.Logf("requests served: %s", strings.Join(seen, ", "))
}

func labelValue(line, name string) string {
	i := strings.Index(line, "{"+name+`="`)
	if i < 0 {
		i = strings.Index(line, ","+name+`="`)
	}
	if i < 0 {
		return ""
	}
	rest := line[i+len(name)+3:]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}
