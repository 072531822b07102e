package harness

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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Defaults for Options; each is long enough for a loaded 2-core machine
// where several test binaries build and run at once.
const (
	DefaultReadyTimeout = 60 * time.Second
	DefaultStopTimeout  = 30 * time.Second
)

// ErrUncleanExit is wrapped by Stop's error when the process exited after
// SIGTERM, but not with status 0. The data directory is then as the broker
// left it, so a test may record the error and go on checking the data.
var ErrUncleanExit = errors.New("harness: strata exited uncleanly after SIGTERM")

// markerPrefix starts every line the harness itself writes to the log.
const markerPrefix = "=== harness: "

// logDumpLines is how much of the log a failed test prints: enough for a
// race report or a goroutine dump, short enough to find the test's own
// messages above it.
const logDumpLines = 500

// Options configure a Broker. The zero value is usable.
type Options struct {
	// DataDir is passed as --data-dir. Default: a new tb.TempDir().
	DataDir string
	// Args are appended after the flags the harness sets (--data-dir,
	// --listen, --http-listen), e.g. {"--node-id", "2"}.
	Args []string
	// Env entries (KEY=VALUE) are appended to the test's environment.
	Env []string
	// LogPath is the file stdout and stderr of every incarnation are
	// appended to; only this Broker may write to it (LogOfStart relies on
	// that). Default: strata.log in a new tb.TempDir(). The process runs in
	// the directory of this file.
	LogPath string
	// ReadyTimeout bounds Start's wait for the Kafka port to accept and
	// /readyz to return 200. Default DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// StopTimeout bounds Stop's wait after SIGTERM; on expiry the process
	// is killed and Stop returns an error. Default DefaultStopTimeout.
	StopTimeout time.Duration
	// Wrapper, if set, is a command the broker runs under: the harness
	// starts Wrapper[0] with Wrapper[1:], then the strata binary and its
	// arguments, e.g. {"prlimit", "--nofile=256:256", "--"} for a low
	// open-file limit. The wrapper must exec the broker, keeping its PID
	// (prlimit and env do), so that PID, Stop and Kill reach the broker.
	Wrapper []string
}

// Broker is one strata process, restartable on the same data directory and
// addresses. Create it with New or Start.
type Broker struct {
	tb        testing.TB
	bin       string
	opts      Options
	kafkaAddr string  // host:port for --listen, fixed for the Broker's life
	httpAddr  string  // host:port for --http-listen
	logStarts []int64 // log file offset of each incarnation's start marker; len is the number of starts
	cur       *incarnation
}

// incarnation is one run of the process. The wait goroutine owns cmd after
// Start and is the only writer of err and state; readers wait on done.
type incarnation struct {
	cmd   *exec.Cmd
	log   *os.File
	done  chan struct{} // closed once the process has exited and been reaped
	err   error         // cmd.Wait's result; valid after done is closed
	state *os.ProcessState
}

// New prepares a Broker without starting it: it builds the binary (once per
// test process), chooses free loopback ports and creates the directories. New
// fails tb if any of that fails.
//
// At the end of the test a tb.Cleanup kills the process if the test left it
// running, then fails the test if the log shows a data race or a panic (even
// one the broker recovered from: either is a bug whatever the clients saw),
// and prints the log's last lines if the test failed.
func New(tb testing.TB, opts Options) *Broker {
	tb.Helper()
	bin := MustBinary(tb)
	if opts.DataDir == "" {
		opts.DataDir = tb.TempDir()
	}
	if opts.LogPath == "" {
		opts.LogPath = filepath.Join(tb.TempDir(), "strata.log")
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = DefaultReadyTimeout
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	ports, err := FreePorts(2)
	if err != nil {
		tb.Fatal(err)
	}
	b := &Broker{
		tb:        tb,
		bin:       bin,
		opts:      opts,
		kafkaAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		httpAddr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
	}
	tb.Cleanup(func() {
		if b.Running() {
			b.Kill()
		}
		b.checkLog()
		if tb.Failed() {
			tb.Logf("last %d lines of %s:\n%s", logDumpLines, b.opts.LogPath, b.LogTail(logDumpLines))
		}
	})
	return b
}

// Start is New followed by b.Start, failing tb (with the log tail) if the
// broker does not become ready.
func Start(tb testing.TB, opts Options) *Broker {
	tb.Helper()
	b := New(tb, opts)
	if err := b.Start(); err != nil {
		tb.Fatal(err)
	}
	return b
}

// Addr is the Kafka listener, host:port, the same for every incarnation.
func (b *Broker) Addr() string { return b.kafkaAddr }

// HTTPAddr is the health/metrics listener, host:port.
func (b *Broker) HTTPAddr() string { return b.httpAddr }

// DataDir is the broker's --data-dir.
func (b *Broker) DataDir() string { return b.opts.DataDir }

// LogPath is the file holding stdout and stderr of every incarnation.
func (b *Broker) LogPath() string { return b.opts.LogPath }

// Running reports whether a started incarnation has not exited yet.
func (b *Broker) Running() bool {
	if b.cur == nil {
		return false
	}
	select {
	case <-b.cur.done:
		return false
	default:
		return true
	}
}

// PID is the process id of the current (or last) incarnation, 0 if none was
// started.
func (b *Broker) PID() int {
	if b.cur == nil {
		return 0
	}
	return b.cur.cmd.Process.Pid
}

// Exited returns a channel closed when the current incarnation exits; nil
// if none was started. Use ExitErr afterwards.
func (b *Broker) Exited() <-chan struct{} {
	if b.cur == nil {
		return nil
	}
	return b.cur.done
}

// ExitErr is the exit error of the current incarnation (nil for exit status
// 0). It must only be called after Exited is closed.
func (b *Broker) ExitErr() error { return b.cur.err }

// Start starts a new incarnation (the Broker must not be running) and waits
// until the Kafka port accepts connections and GET /readyz returns 200. On
// failure the process is killed and the error carries the log tail.
func (b *Broker) Start() error {
	if b.Running() {
		return errors.New("harness: Start: broker is already running")
	}
	if err := os.MkdirAll(b.opts.DataDir, 0o755); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	logf, err := os.OpenFile(b.opts.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	argv := slices.Concat(b.opts.Wrapper, []string{b.bin, "serve",
		"--data-dir", b.opts.DataDir,
		"--listen", b.kafkaAddr,
		"--http-listen", b.httpAddr,
	}, b.opts.Args)
	fi, err := logf.Stat()
	if err != nil {
		logf.Close()
		return fmt.Errorf("harness: %w", err)
	}
	b.logStarts = append(b.logStarts, fi.Size())
	fmt.Fprintf(logf, "%sstart #%d at %s: %s\n", markerPrefix, b.Starts(),
		time.Now().UTC().Format(time.RFC3339Nano), strings.Join(argv, " "))

	cmd := exec.Command(argv[0], argv[1:]...)
	// Not the test's directory: nothing the broker writes lands in the source tree.
	cmd.Dir = filepath.Dir(b.opts.LogPath)
	cmd.Env = append(os.Environ(), b.opts.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: a ^C aimed at `go test` does not reach the
		// broker before the test's cleanup decides what to do with it.
		Setpgid: true,
		// If the test binary dies (e.g. go test's timeout), take the
		// broker with it rather than leak a process holding the ports.
		// The harness never locks OS threads, so the spawning thread
		// lives as long as the test binary.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("harness: starting %s: %w", b.bin, err)
	}
	inc := &incarnation{cmd: cmd, log: logf, done: make(chan struct{})}
	go func() {
		inc.err = cmd.Wait()
		inc.state = cmd.ProcessState
		inc.log.Close()
		close(inc.done)
	}()
	b.cur = inc

	if err := b.waitReady(); err != nil {
		if b.Running() {
			b.Kill()
		}
		return fmt.Errorf("%w\n--- last lines of %s ---\n%s", err, b.opts.LogPath, b.LogTail(40))
	}
	return nil
}

// Starts is how many incarnations were started (successfully or not); the
// current one is number Starts().
func (b *Broker) Starts() int { return len(b.logStarts) }

// waitReady polls until both listeners answer, the process exits, or
// ReadyTimeout passes.
func (b *Broker) waitReady() error {
	deadline := time.Now().Add(b.opts.ReadyTimeout)
	var last error
	for {
		select {
		case <-b.cur.done:
			return fmt.Errorf("harness: strata exited during start (pid %d): %v", b.PID(), b.cur.err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("harness: strata (pid %d) not ready after %v: %v", b.PID(), b.opts.ReadyTimeout, last)
		}
		last = b.probe()
		if last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probe checks that the Kafka port accepts and GET /readyz returns 200.
func (b *Broker) probe() error {
	c, err := net.DialTimeout("tcp", b.kafkaAddr, 500*time.Millisecond)
	if err != nil {
		return err
	}
	c.Close()
	_, err = b.get("/readyz", time.Second)
	return err
}

// Metrics returns the body of GET /metrics (the Prometheus text format) of
// the running broker.
func (b *Broker) Metrics() (string, error) {
	body, err := b.get("/metrics", 10*time.Second)
	return string(body), err
}

// get returns the body of GET path on the HTTP listener, or an error (with
// the body) if the status is not 200 or nothing answers within timeout.
func (b *Broker) get(path string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return httpGet(ctx, "http://"+b.httpAddr+path)
}

// httpGet returns the body of GET url, or an error (with the body) if the
// status is not 200.
func httpGet(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s\n%s", url, resp.Status, body)
	}
	return body, nil
}

// Stop sends SIGTERM and waits up to StopTimeout for the process to exit. It
// returns nil only for a clean exit (status 0); a process that had already
// exited, exited non-zero (the error wraps ErrUncleanExit), or had to be
// killed gives an error.
func (b *Broker) Stop() error {
	if b.cur == nil {
		return errors.New("harness: Stop: never started")
	}
	if !b.Running() {
		return fmt.Errorf("harness: Stop: strata (pid %d) had already exited: %v", b.PID(), b.cur.err)
	}
	if err := b.cur.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("harness: SIGTERM: %w", err)
	}
	t := time.NewTimer(b.opts.StopTimeout)
	defer t.Stop()
	select {
	case <-b.cur.done:
		if b.cur.err != nil {
			return fmt.Errorf("%w (pid %d): %w", ErrUncleanExit, b.PID(), b.cur.err)
		}
		return nil
	case <-t.C:
		b.Kill()
		return fmt.Errorf("harness: strata (pid %d) did not exit within %v of SIGTERM; killed", b.PID(), b.opts.StopTimeout)
	}
}

// Kill sends SIGKILL (like kill -9: no clean shutdown), waits for the
// process to be reaped and notes the kill in the log. Killing an exited
// process is a no-op.
func (b *Broker) Kill() {
	if !b.Running() {
		return
	}
	_ = b.cur.cmd.Process.Signal(syscall.SIGKILL)
	<-b.cur.done
	// The wait goroutine closed the incarnation's handle; the note is best effort.
	if f, err := os.OpenFile(b.opts.LogPath, os.O_WRONLY|os.O_APPEND, 0); err == nil {
		fmt.Fprintf(f, "%sSIGKILL sent, pid %d gone\n", markerPrefix, b.PID())
		f.Close()
	}
}

// Restart stops the broker if it is running (SIGTERM; failing tb if that
// does not exit cleanly) and starts a new incarnation on the same data
// directory and addresses, failing tb if it does not become ready.
func (b *Broker) Restart() {
	b.tb.Helper()
	if b.Running() {
		if err := b.Stop(); err != nil {
			b.tb.Fatal(err)
		}
	}
	if err := b.Start(); err != nil {
		b.tb.Fatal(err)
	}
}

// PeakRSS returns the peak resident set size of the current incarnation in
// bytes: VmHWM from /proc/<pid>/status while it runs, the kernel's maxrss
// (getrusage) once it has exited.
func (b *Broker) PeakRSS() (int64, error) {
	if b.cur == nil {
		return 0, errors.New("harness: PeakRSS: never started")
	}
	if !b.Running() {
		if ru, ok := b.cur.state.SysUsage().(*syscall.Rusage); ok {
			return ru.Maxrss * 1024, nil // Linux reports ru_maxrss in KiB
		}
		return 0, errors.New("harness: PeakRSS: no rusage for the exited process")
	}
	return vmHWM(b.PID())
}

// CPUTime returns the user and system CPU time the running incarnation has
// used so far (all threads), from /proc/<pid>/stat. Differences of two calls
// tell how much CPU the broker spent on a phase of a benchmark.
func (b *Broker) CPUTime() (user, sys time.Duration, err error) {
	if !b.Running() {
		return 0, 0, errors.New("harness: CPUTime: broker is not running")
	}
	return procCPUTime(b.PID())
}

// userHZ is the unit of utime/stime in /proc/<pid>/stat: USER_HZ, fixed at
// 100 by the Linux ABI on every architecture Go supports.
const userHZ = 100

func procCPUTime(pid int) (user, sys time.Duration, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("harness: %w", err)
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15 (1-based, man 5 proc).
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("harness: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("harness: short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("harness: /proc/%d/stat: %w", pid, err)
	}
	tick := time.Second / userHZ
	return time.Duration(ut) * tick, time.Duration(st) * tick, nil
}

// vmHWM reads the "VmHWM:  123 kB" line of /proc/<pid>/status.
func vmHWM(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("harness: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("harness: unexpected VmHWM line %q", sc.Text())
		}
		kib, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("harness: VmHWM: %w", err)
		}
		return kib * 1024, nil
	}
	return 0, fmt.Errorf("harness: no VmHWM in /proc/%d/status (exited?)", pid)
}

// LogOfStart returns the non-empty lines incarnation n (1-based, up to
// Starts) wrote to the log, without the harness's own marker lines. It fails
// the test if n is out of range or the log cannot be read, so it must be
// called from the test's goroutine.
func (b *Broker) LogOfStart(n int) []string {
	b.tb.Helper()
	if n < 1 || n > b.Starts() {
		b.tb.Fatalf("harness: LogOfStart(%d): the broker was started %d times", n, b.Starts())
	}
	data, err := os.ReadFile(b.opts.LogPath)
	if err != nil {
		b.tb.Fatalf("harness: %v", err)
	}
	data = data[b.logStarts[n-1]:]
	if n < b.Starts() {
		data = data[:b.logStarts[n]-b.logStarts[n-1]]
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" && !strings.HasPrefix(l, markerPrefix) {
			out = append(out, l)
		}
	}
	return out
}

// checkLog fails the test, naming the first such line, if the log shows a
// data race report or a panic.
func (b *Broker) checkLog() {
	data, err := os.ReadFile(b.opts.LogPath)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) { // never started
			b.tb.Errorf("harness: %v", err)
		}
		return
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, markerPrefix) {
			continue // the harness's own lines quote the broker's arguments
		}
		if strings.Contains(l, "WARNING: DATA RACE") || strings.Contains(l, "panic") {
			b.tb.Errorf("broker log %s: %s", b.opts.LogPath, l)
			return
		}
	}
}

// LogTail returns up to the last n lines of the log file (all incarnations),
// or a note saying why it cannot.
func (b *Broker) LogTail(n int) string {
	data, err := os.ReadFile(b.opts.LogPath)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// FreePorts returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago. All n listeners are held open together so the kernel gives n
// different ports; another process may still take one before the broker
// binds it, in which case Start fails with the broker's bind error.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("harness: finding a free port: %w", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
