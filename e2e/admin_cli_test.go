package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stratalog/strata/internal/harness"
)

// strataCLI runs the strata binary with args and returns stdout, stderr and the exit code.
func strataCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(harness.MustBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("strata %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String(), stderr.String(), code
}

// topicConfig returns the value and source of one config of topic, through kadm.
func topicConfig(t *testing.T, b *strataProc, topic, key string) (string, string) {
	t.Helper()
	cl := b.kgoClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("DescribeTopicConfigs %s: %v", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("DescribeTopicConfigs %s: %v %v", topic, err, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == key {
			return c.MaybeValue(), c.Source.String()
		}
	}
	t.Fatalf("DescribeTopicConfigs %s: no %s", topic, key)
	return "", ""
}

// TestAdminCLI: `strata topic create/list/describe/alter-config/delete --bootstrap …` against a
// running broker, each checked through the Kafka protocol as well as through its output.
func TestAdminCLI(t *testing.T) {
	b := startStrata(t)
	boot := []string{"--bootstrap", b.Addr()}
	run := func(wantCode int, args ...string) (string, string) {
		t.Helper()
		stdout, stderr, code := strataCLI(t, append(append([]string{"topic"}, args...), boot...)...)
		if code != wantCode {
			t.Fatalf("strata topic %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, stdout, stderr)
		}
		return stdout, stderr
	}

	// create
	out, _ := run(0, "create", "cli-a", "cli-b", "--partitions", "3", "--config", "retention.ms=3600000")
	for _, name := range []string{"cli-a", "cli-b"} {
		if !strings.Contains(out, "created topic "+name) {
			t.Errorf("create output lacks %q:\n%s", "created topic "+name, out)
		}
	}
	if got := len(b.endOffsets(t, "cli-a")); got != 3 {
		t.Errorf("cli-a has %d partitions, want 3", got)
	}
	if v, _ := topicConfig(t, b, "cli-a", "retention.ms"); v != "3600000" {
		t.Errorf("cli-a retention.ms = %q, want 3600000", v)
	}
	_, errOut := run(1, "create", "cli-a", "--partitions", "1")
	if !strings.Contains(errOut, "TOPIC_ALREADY_EXISTS") {
		t.Errorf("creating cli-a twice: stderr lacks TOPIC_ALREADY_EXISTS:\n%s", errOut)
	}
	_, errOut = run(1, "create", "cli-bad", "--config", "retention.ms=banana")
	if !strings.Contains(errOut, "INVALID_CONFIG") {
		t.Errorf("creating with retention.ms=banana: stderr lacks INVALID_CONFIG:\n%s", errOut)
	}

	// list
	out, _ = run(0, "list")
	var aLine string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "cli-a" {
			aLine = l
			if f[1] != "3" {
				t.Errorf("list shows cli-a with %s partitions, want 3: %q", f[1], l)
			}
		}
		if strings.HasPrefix(l, "cli-bad") {
			t.Errorf("list shows cli-bad, whose creation failed: %q", l)
		}
	}
	if aLine == "" || !strings.Contains(out, "cli-b") {
		t.Errorf("list lacks cli-a or cli-b:\n%s", out)
	}

	// describe, after some records
	cl := b.kgoClient(t, kgo.DefaultProduceTopic("cli-a"))
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: recKey(i), Value: recValue("cli", i)}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	out, _ = run(0, "describe", "cli-a")
	for _, want := range []string{"Topic: cli-a", "Partitions: 3", "retention.ms=3600000"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe cli-a output lacks %q:\n%s", want, out)
		}
	}

	// alter-config: set, then delete back to the default
	run(0, "alter-config", "cli-a", "--set", "retention.ms=7200000", "--set", "segment.bytes=1048576")
	if v, _ := topicConfig(t, b, "cli-a", "retention.ms"); v != "7200000" {
		t.Errorf("after alter-config --set, retention.ms = %q, want 7200000", v)
	}
	if v, _ := topicConfig(t, b, "cli-a", "segment.bytes"); v != "1048576" {
		t.Errorf("after alter-config --set, segment.bytes = %q, want 1048576", v)
	}
	run(0, "alter-config", "cli-a", "--delete", "retention.ms")
	if v, src := topicConfig(t, b, "cli-a", "retention.ms"); v != "604800000" || strings.Contains(src, "TOPIC") {
		t.Errorf("after alter-config --delete, retention.ms = %q (source %s), want the default 604800000", v, src)
	}
	_, errOut = run(1, "alter-config", "cli-a", "--set", "retention.ms=banana")
	if !strings.Contains(errOut, "INVALID_CONFIG") && !strings.Contains(errOut, "INVALID_REQUEST") {
		t.Errorf("alter-config retention.ms=banana: stderr lacks INVALID_CONFIG:\n%s", errOut)
	}
	if v, _ := topicConfig(t, b, "cli-a", "segment.bytes"); v != "1048576" {
		t.Errorf("a rejected alter-config changed segment.bytes to %q", v)
	}

	// delete
	out, _ = run(0, "delete", "cli-b")
	if !strings.Contains(out, "deleted topic cli-b") {
		t.Errorf("delete output lacks %q:\n%s", "deleted topic cli-b", out)
	}
	out, _ = run(0, "list")
	if strings.Contains(out, "cli-b") {
		t.Errorf("list still shows cli-b after delete:\n%s", out)
	}
	_, errOut = run(1, "delete", "cli-b")
	if !strings.Contains(errOut, "UNKNOWN_TOPIC") {
		t.Errorf("deleting cli-b twice: stderr lacks UNKNOWN_TOPIC_OR_PARTITION:\n%s", errOut)
	}
	// cli-a is untouched.
	checkRecValues(t, "cli-a", "cli", 10, b.consumeAll(t, "cli-a"))
}

// TestTieringStatusCLI: `strata tiering status [TOPIC] --http …` against a running broker on its
// default object store (file://<data-dir>/objects): after segments roll, the table shows the
// partition tiered with a remote range, and the errors are clear.
func TestTieringStatusCLI(t *testing.T) {
	b := startStrata(t, "--remote.log.manager.task.interval.ms=100")
	b.createTopic(t, "cli-tiered", 1, map[string]*string{"internal.segment.bytes": kadm.StringPtr("1024")})
	for range 3 { // one batch (> segment.bytes) each: two closed segments
		produceValues(t, b, "cli-tiered", "v", 100)
	}

	var out string
	deadline := time.Now().Add(opTimeout)
	for {
		var stderr string
		var code int
		out, stderr, code = strataCLI(t, "tiering", "status", "cli-tiered", "--http", b.HTTPAddr())
		if code != 0 {
			t.Fatalf("strata tiering status: exit %d: %s", code, stderr)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) == 2 && !strings.Contains(lines[1], " - ") { // "-": no remote range yet
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no remote range reported:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	header := strings.Fields(strings.Split(out, "\n")[0])
	row := strings.Fields(strings.Split(out, "\n")[1])
	if len(row) != len(header) || row[0] != "cli-tiered" || row[1] != "0" || row[2] != "true" {
		t.Fatalf("unexpected table:\n%s", out)
	}
	col := func(name string) string {
		for i, h := range header {
			if h == name {
				return row[i]
			}
		}
		t.Fatalf("no column %s in:\n%s", name, out)
		return ""
	}
	if col("REMOTE-START") != "0" || col("LOG-START") != "0" || col("LOCAL-END") != "300" {
		t.Errorf("remote start %s, log start %s, local end %s; want 0, 0, 300:\n%s", col("REMOTE-START"), col("LOG-START"), col("LOCAL-END"), out)
	}

	if _, stderr, code := strataCLI(t, "tiering", "status", "no-such-topic", "--http", b.HTTPAddr()); code != 1 || !strings.Contains(stderr, `unknown topic "no-such-topic"`) {
		t.Errorf("unknown topic: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code := strataCLI(t, "tiering", "status", "--http", "127.0.0.1:1"); code != 1 || !strings.Contains(stderr, "cannot reach the broker's HTTP server") {
		t.Errorf("unreachable broker: exit %d, stderr %q", code, stderr)
	}
}
