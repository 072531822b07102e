package harness

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

// TestLifecycle drives one broker through every harness operation against
// the real binary: start, observe, clean stop, restart on the same
// addresses and data directory, kill -9, start again.
func TestLifecycle(t *testing.T) {
	b := Start(t, Options{})
	if !b.Running() || b.PID() <= 0 {
		t.Fatalf("after Start: running=%v pid=%d", b.Running(), b.PID())
	}
	addr, httpAddr, dir := b.Addr(), b.HTTPAddr(), b.DataDir()
	rss, err := b.PeakRSS()
	if err != nil || rss <= 0 {
		t.Fatalf("PeakRSS while running = %d, %v", rss, err)
	}
	if m, err := b.Metrics(); err != nil || !strings.Contains(m, "# TYPE ") {
		t.Fatalf("Metrics = %.200q, %v", m, err)
	}
	if err := b.Stop(); err != nil {
		t.Fatalf("Stop: %v\n%s", err, b.LogTail(30))
	}
	if b.Running() {
		t.Fatal("running after Stop")
	}
	if rss, err := b.PeakRSS(); err != nil || rss <= 0 {
		t.Fatalf("PeakRSS after exit = %d, %v", rss, err)
	}
	// The port is free again once the process is gone.
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("%s still accepts after Stop", addr)
	}

	first := b.PID()
	b.Restart()
	if b.PID() == first || b.Addr() != addr || b.HTTPAddr() != httpAddr || b.DataDir() != dir {
		t.Fatalf("Restart: pid %d→%d, addr %s→%s, http %s→%s, dir %s→%s",
			first, b.PID(), addr, b.Addr(), httpAddr, b.HTTPAddr(), dir, b.DataDir())
	}
	b.Kill()
	if b.Running() {
		t.Fatal("running after Kill")
	}
	if b.ExitErr() == nil {
		t.Fatal("ExitErr is nil after SIGKILL")
	}
	if err := b.Start(); err != nil {
		t.Fatalf("Start after Kill: %v", err)
	}
	if err := b.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	log, err := os.ReadFile(b.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "=== harness: start #"); n != 3 || b.Starts() != 3 {
		t.Fatalf("log has %d start markers, Starts() = %d, want 3", n, b.Starts())
	}
	if !strings.Contains(string(log), "=== harness: SIGKILL sent") {
		t.Fatal("log does not note the kill")
	}
	var all []string
	for n := 1; n <= b.Starts(); n++ {
		lines := b.LogOfStart(n)
		if len(lines) == 0 {
			t.Fatalf("LogOfStart(%d) is empty", n)
		}
		all = append(all, lines...)
	}
	// The starts' lines are, together, every line of the log but the harness's own.
	var want []string
	for _, l := range strings.Split(string(log), "\n") {
		if l != "" && !strings.HasPrefix(l, "=== harness: ") {
			want = append(want, l)
		}
	}
	if strings.Join(all, "\n") != strings.Join(want, "\n") {
		t.Fatalf("LogOfStart(1..3) gives %d lines, the log has %d of the broker's", len(all), len(want))
	}
}

// errorsTB records Errorf calls instead of failing the test.
type errorsTB struct {
	testing.TB
	errs []string
}

func (e *errorsTB) Errorf(format string, args ...any) {
	e.errs = append(e.errs, fmt.Sprintf(format, args...))
}

func TestCheckLog(t *testing.T) {
	for _, c := range []struct {
		log  string
		fail bool
	}{
		{"=== harness: start #1 at now: strata serve --panic-free\nlevel=INFO msg=ready\n", false},
		{"level=INFO msg=ready\n==================\nWARNING: DATA RACE\nWrite at 0x00c000\n", true},
		{"level=ERROR msg=\"recovered panic in handler\"\n", true},
		{"panic: runtime error: index out of range\n\ngoroutine 1 [running]:\n", true},
	} {
		path := filepath.Join(t.TempDir(), "strata.log")
		if err := os.WriteFile(path, []byte(c.log), 0o644); err != nil {
			t.Fatal(err)
		}
		tb := &errorsTB{TB: t}
		(&Broker{tb: tb, opts: Options{LogPath: path}}).checkLog()
		if got := len(tb.errs) > 0; got != c.fail || len(tb.errs) > 1 {
			t.Errorf("checkLog(%q) reported %q, want a failure: %v", c.log, tb.errs, c.fail)
		}
	}
}

func TestPrebuilt(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "strata")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, bin) // the test runs in the package directory
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		binary, e2eBinary string
		want              string // "" for none, "error" for an error
	}{
		{"", "", ""},
		{bin, "", bin},
		{"", rel, bin},
		{bin, bin, bin},
		{bin, bin + ".other", "error"},
		{bin + ".missing", "", "error"},
	} {
		t.Setenv(BinaryEnv, c.binary)
		t.Setenv(E2EBinaryEnv, c.e2eBinary)
		got, err := prebuilt()
		if err != nil {
			got = "error"
		}
		if got != c.want {
			t.Errorf("$%s=%q $%s=%q: prebuilt() = %q, %v; want %q", BinaryEnv, c.binary, E2EBinaryEnv, c.e2eBinary, got, err, c.want)
		}
	}
}

// TestStartFailureReportsLog: a broker that cannot start (an invalid flag
// value) makes Start return an error carrying the log tail, not hang.
func TestStartFailureReportsLog(t *testing.T) {
	b := New(t, Options{Args: []string{"--node-id", "not-a-number"}})
	err := b.Start()
	if err == nil {
		t.Fatal("Start succeeded with --node-id not-a-number")
	}
	if !strings.Contains(err.Error(), "exited during start") || !strings.Contains(err.Error(), "node-id") {
		t.Fatalf("error does not say the process exited and why:\n%v", err)
	}
	if b.Running() {
		t.Fatal("running after a failed start")
	}
}

func TestProcCPUTime(t *testing.T) {
	// Burn a little CPU so the figure cannot legitimately be zero.
	x := 0
	for i := range 200_000_000 {
		x += i
	}
	u, s, err := procCPUTime(os.Getpid())
	if err != nil || u+s <= 0 {
		t.Fatalf("procCPUTime(self) = %v, %v, %v (x=%d)", u, s, err, x)
	}
}

func TestVmHWM(t *testing.T) {
	v, err := vmHWM(os.Getpid())
	if err != nil || v <= 0 {
		t.Fatalf("vmHWM(self) = %d, %v", v, err)
	}
}
