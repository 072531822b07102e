package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// strataBin is built once by TestMain; the tests run it as a user would.
var strataBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-cmd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	strataBin = filepath.Join(dir, "strata")
	out, err := exec.Command("go", "build", "-o", strataBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// hermeticEnv is the test's environment without STRATA_* variables, so a
// developer's shell cannot change what the binary sees.
func hermeticEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STRATA_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

type result struct {
	code           int
	stdout, stderr string
}

// runBin runs the binary to completion. The context only guards against a
// hang (a failure, not a timing assertion).
func runBin(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, strataBin, args...)
	cmd.Env = hermeticEnv(env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	r := result{stdout: so.String(), stderr: se.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("running strata %q: %v", args, err)
	}
	return r
}

func TestHelpAndVersion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "strata serve"},
		{[]string{"-h"}, "strata topic"},
		{[]string{"help"}, "strata version"},
		{[]string{"serve", "--help"}, "--num.partitions"},
		{[]string{"serve", "--help"}, "STRATA_SOCKET_REQUEST_MAX_BYTES"},
		{[]string{"topic", "--help"}, "alter-config"},
		{[]string{"topic", "create", "--help"}, "--replication-factor"},
		{[]string{"version"}, "strata "},
	} {
		r := runBin(t, nil, tc.args...)
		if r.code != 0 {
			t.Errorf("strata %q: exit %d, want 0; stderr: %s", tc.args, r.code, r.stderr)
		}
		if !strings.Contains(r.stdout, tc.want) {
			t.Errorf("strata %q: stdout lacks %q:\n%s", tc.args, tc.want, r.stdout)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"serve", "--no-such-flag"},
		{"serve", "extra-arg"},
		{"topic"},
		{"topic", "frobnicate"},
		{"topic", "create"},               // no name
		{"topic", "alter-config", "demo"}, // nothing to alter
		{"topic", "create", "x", "--config", "novalue"},
		{"topic", "list", "stray"},
	} {
		r := runBin(t, nil, args...)
		if r.code != 2 {
			t.Errorf("strata %q: exit %d, want 2; stderr: %s", args, r.code, r.stderr)
		}
	}
}

// An invalid value stops `strata serve` before anything is opened, with a
// message naming the key and the value — whichever source it came from.
func TestServeInvalidValue(t *testing.T) {
	dir := t.TempDir()
	yamlPath := filepath.Join(dir, "strata.yaml")
	if err := os.WriteFile(yamlPath, []byte("retention.bytes: lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		env, args []string
		key, val  string
	}{
		{"flag", nil, []string{"--num.partitions=abc"}, "num.partitions", "abc"},
		{"flag negative", nil, []string{"--socket.request.max.bytes", "-1"}, "socket.request.max.bytes", "-1"},
		{"env", []string{"STRATA_LISTEN=not-an-address"}, nil, "listen", "not-an-address"},
		{"env topic default", []string{"STRATA_SEGMENT_BYTES=huge"}, nil, "segment.bytes", "huge"},
		{"yaml topic default", nil, []string{"--config", yamlPath}, "retention.bytes", "lots"},
		{"flag topic default", nil, []string{"--message.timestamp.type=Whenever"}, "message.timestamp.type", "Whenever"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			// Free ports through the environment (not flags, which would
			// beat the environment value under test), in case a value were
			// wrongly accepted.
			env := append([]string{"STRATA_LISTEN=127.0.0.1:0", "STRATA_HTTP_LISTEN=127.0.0.1:0"}, tc.env...)
			r := runBin(t, env, append([]string{"serve", "--data-dir", dataDir}, tc.args...)...)
			if r.code == 0 {
				t.Fatalf("exit 0 for an invalid %s; stderr: %s", tc.key, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.key) || !strings.Contains(r.stderr, tc.val) {
				t.Errorf("stderr does not name key %s and value %s:\n%s", tc.key, tc.val, r.stderr)
			}
			if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("data dir touched despite the invalid config (stat: %v)", err)
			}
		})
	}
}

// TestServeLifecycle runs `strata serve` on free ports, checks the HTTP
// endpoints, drives every admin subcommand against it, and stops it with
// SIGTERM, which must exit 0.
func TestServeLifecycle(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, strataBin, "serve", "--data-dir", dataDir,
		"--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--log-format", "json", "--node-id", "1")
	cmd.Env = hermeticEnv("STRATA_NUM_PARTITIONS=2")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	logDone := make(chan struct{})
	addrs := make(chan map[string]string, 2)
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			logBuf.Write(line)
			logBuf.WriteByte('\n')
			var rec map[string]any
			if json.Unmarshal(line, &rec) != nil {
				continue
			}
			switch rec["msg"] {
			case "http listener ready":
				addrs <- map[string]string{"http": fmt.Sprint(rec["addr"])}
			case "kafka listener ready":
				addrs <- map[string]string{"kafka": fmt.Sprint(rec["addr"]), "advertise": fmt.Sprint(rec["advertise"])}
			}
		}
	}()
	exited := make(chan error, 1)
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			<-logDone
			t.Logf("strata log:\n%s", logBuf.String())
		}
	}()
	got := map[string]string{}
	for len(got) < 3 {
		select {
		case m := <-addrs:
			for k, v := range m {
				got[k] = v
			}
		case <-ctx.Done():
			t.Fatal("strata did not report its listeners")
		}
	}
	go func() { <-logDone; exited <- cmd.Wait() }()
	kafka, httpAddr := got["kafka"], got["http"]
	if got["advertise"] != kafka {
		t.Errorf("advertise %s, want the bound listen address %s", got["advertise"], kafka)
	}

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "target_info") {
		t.Errorf("/metrics: %d, body lacks go_goroutines/target_info:\n%.2000s", code, body)
	}

	topic := func(args ...string) result {
		t.Helper()
		return runBin(t, nil, append(append([]string{"topic"}, args...), "--bootstrap", kafka, "--timeout", "60s")...)
	}
	mustTopic := func(args ...string) string {
		t.Helper()
		r := topic(args...)
		if r.code != 0 {
			t.Fatalf("strata topic %q: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	out := mustTopic("create", "orders", "--partitions", "3", "--config", "retention.ms=3600000")
	if !strings.Contains(out, "created topic orders") || !strings.Contains(out, "partitions 3") {
		t.Errorf("create output: %s", out)
	}
	// -1 asks for the broker default, which the environment set to 2.
	if out := mustTopic("create", "events"); !strings.Contains(out, "partitions 2") {
		t.Errorf("create with broker default partitions: %s", out)
	}
	if r := topic("create", "orders"); r.code != 1 || !strings.Contains(r.stderr, "TOPIC_ALREADY_EXISTS") {
		t.Errorf("creating an existing topic: exit %d, stderr %s", r.code, r.stderr)
	}
	if r := topic("create", "bad", "--config", "retention.ms=soon"); r.code != 1 || !strings.Contains(r.stderr, "INVALID_CONFIG") {
		t.Errorf("creating with an invalid config: exit %d, stderr %s", r.code, r.stderr)
	}
	out = mustTopic("list")
	if !strings.Contains(out, "orders") || !strings.Contains(out, "events") || strings.Contains(out, "bad") {
		t.Errorf("list: %s", out)
	}
	out = mustTopic("describe", "orders")
	if !strings.Contains(out, "Partitions: 3") || !strings.Contains(out, "retention.ms=3600000") || !strings.Contains(out, "(topic)") {
		t.Errorf("describe: %s", out)
	}
	mustTopic("alter-config", "orders", "--set", "retention.ms=7200000", "--set", "segment.bytes=1048576")
	out = mustTopic("describe", "orders")
	if !strings.Contains(out, "retention.ms=7200000") || !strings.Contains(out, "segment.bytes=1048576") {
		t.Errorf("describe after alter-config --set: %s", out)
	}
	mustTopic("alter-config", "orders", "--delete", "segment.bytes")
	out = mustTopic("describe", "orders")
	if strings.Contains(out, "segment.bytes=1048576") {
		t.Errorf("describe after alter-config --delete still shows the override: %s", out)
	}
	if out := mustTopic("delete", "orders", "events"); !strings.Contains(out, "deleted topic orders") || !strings.Contains(out, "deleted topic events") {
		t.Errorf("delete: %s", out)
	}
	if out := mustTopic("list"); strings.Contains(out, "orders") {
		t.Errorf("list after delete: %s", out)
	}
	if r := topic("describe", "orders"); r.code != 1 {
		t.Errorf("describe of a deleted topic: exit %d, stdout %s", r.code, r.stdout)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped = true
	err = <-exited
	if err != nil {
		t.Errorf("strata serve after SIGTERM: %v, want exit 0", err)
	}
	if !strings.Contains(logBuf.String(), `"msg":"stopped cleanly"`) {
		t.Errorf("no clean-stop record in the log")
	}
}

func TestParseInterleaved(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		wantPos   []string
		wantParts int
	}{
		{[]string{"a", "--partitions", "3", "b"}, []string{"a", "b"}, 3},
		{[]string{"--partitions=4", "a"}, []string{"a"}, 4},
		{[]string{"a"}, []string{"a"}, -1},
		{[]string{"--partitions", "2", "--", "--odd-name", "x"}, []string{"--odd-name", "x"}, 2},
		{nil, nil, -1},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		p := fs.Int("partitions", -1, "")
		pos, err := parseInterleaved(fs, tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if strings.Join(pos, "|") != strings.Join(tc.wantPos, "|") || *p != tc.wantParts {
			t.Errorf("%q: positional %q partitions %d, want %q %d", tc.args, pos, *p, tc.wantPos, tc.wantParts)
		}
	}
}

func TestKVFlag(t *testing.T) {
	var f kvFlag
	for _, s := range []string{"retention.ms=1", "cleanup.policy=delete", "empty="} {
		if err := f.Set(s); err != nil {
			t.Fatalf("Set(%q): %v", s, err)
		}
	}
	if f.String() != "retention.ms=1,cleanup.policy=delete,empty=" || *f.m["empty"] != "" {
		t.Errorf("kvFlag = %s", f.String())
	}
	for _, bad := range []string{"novalue", "=x", "retention.ms=2"} {
		if err := f.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

func TestAdvertisedAddr(t *testing.T) {
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	tcp := func(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	host, _ := os.Hostname()
	for _, tc := range []struct {
		adv   string
		bound net.Addr
		want  string
	}{
		{"kafka.example.com:9092", tcp("127.0.0.1:5555"), "kafka.example.com:9092"},
		{"", tcp("127.0.0.1:5555"), "127.0.0.1:5555"},
		{"", tcp("[::1]:5555"), "[::1]:5555"},
		{"", tcp("0.0.0.0:9092"), net.JoinHostPort(host, "9092")},
		{"", tcp("[::]:9092"), net.JoinHostPort(host, "9092")},
	} {
		got, err := advertisedAddr(tc.adv, tc.bound, lg)
		if err != nil || got != tc.want {
			t.Errorf("advertisedAddr(%q, %v) = %q, %v; want %q", tc.adv, tc.bound, got, err, tc.want)
		}
	}
}
