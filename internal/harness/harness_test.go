package harness

import (
	"net"
	"os"
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
	if n := strings.Count(string(log), "=== harness: start #"); n != 3 {
		t.Fatalf("log has %d start markers, want 3", n)
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
