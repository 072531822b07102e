package config

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stratalog/strata/topicconfig"
)

// env is a fake environment for Load.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

func load(t *testing.T, args []string, e env) (*Config, error) {
	t.Helper()
	var out strings.Builder
	c, err := Load(args, e.lookup, &out)
	return c, err
}

func mustLoad(t *testing.T, args []string, e env) *Config {
	t.Helper()
	c, err := load(t, args, e)
	if err != nil {
		t.Fatalf("Load(%q): %v", args, err)
	}
	return c
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "strata.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, nil, env{})
	want := Config{
		DataDir: "./strata-data", Listen: "127.0.0.1:9092", Advertise: "", HTTPListen: "127.0.0.1:9644",
		NodeID: 1, LogLevel: slog.LevelInfo, LogFormat: "text",
		ControllerListen: "127.0.0.1:9093", BrokerSessionTimeout: 9 * time.Second, BrokerHeartbeatInterval: 2 * time.Second,
		AutoLeaderRebalance: true, LeaderImbalanceCheckInterval: 5 * time.Minute,
		NumPartitions: 1, MaxBrokerPartitions: 10000, DefaultReplicationFactor: 1, AutoCreateTopics: true,
		SocketRequestMaxBytes: 100 << 20, QueuedMaxRequestBytes: 512 << 20, ConnectionsMaxIdle: 10 * time.Minute, QueuedMaxRequests: 100,
		RequestReadTimeout: time.Minute, MaxConnections: 10000, MaxConnectionsPerIP: 2000,
		MaxIncrementalFetchSessions: 1000, RetentionCheckInterval: 5 * time.Minute,
		OffsetsTopicNumPartitions: 50, GroupInitialRebalanceDelay: 3 * time.Second,
		GroupMinSessionTimeout: 6 * time.Second, GroupMaxSessionTimeout: 30 * time.Minute,
		GroupMaxSize: 1000, OffsetsRetention: 7 * 24 * time.Hour, OffsetsTopicSegmentBytes: 100 << 20,
		LogCleanerEnable: true, LogCleanerBackoff: 15 * time.Second, LogCleanerDedupeBufferBytes: 128 << 20,
		RemoteCacheBytes: 1 << 30, RemoteTaskInterval: 30 * time.Second, RemoteFetchMaxWait: 500 * time.Millisecond,
		RemoteOrphanGrace: 15 * time.Minute,
	}
	got := *c
	got.Sources, got.topicText, got.TopicDefaults = nil, nil, topicconfig.Config{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if c.TopicDefaults != topicconfig.Default() {
		t.Errorf("topic defaults %+v, want topicconfig.Default() %+v", c.TopicDefaults, topicconfig.Default())
	}
	for k, src := range c.Sources {
		if src != "default" {
			t.Errorf("source of %s = %q, want default", k, src)
		}
	}
	if len(c.Sources) != len(Knobs()) {
		t.Errorf("%d sources for %d knobs", len(c.Sources), len(Knobs()))
	}
}

// Every documented default goes through its own parser without error, and
// the brief's knobs are all present.
func TestEveryKnobDocumented(t *testing.T) {
	required := []string{"data-dir", "listen", "advertise", "http-listen", "node-id", "log-level", "log-format",
		"num.partitions", "default.replication.factor", "auto.create.topics.enable", "socket.request.max.bytes",
		"connections.max.idle.ms", "queued.max.requests", "max.incremental.fetch.session.cache.slots",
		"log.retention.check.interval.ms", "segment.bytes", "segment.ms", "retention.ms", "retention.bytes",
		"max.message.bytes", "message.timestamp.type", "index.interval.bytes", "segment.index.bytes",
		"cleanup.policy", "min.insync.replicas", "compression.type"}
	have := map[string]Knob{}
	for _, k := range Knobs() {
		if _, dup := have[k.Key]; dup {
			t.Errorf("key %s listed twice", k.Key)
		}
		have[k.Key] = k
		if k.Usage == "" || k.Type == "" {
			t.Errorf("key %s lacks usage or type", k.Key)
		}
	}
	for _, k := range required {
		if _, ok := have[k]; !ok {
			t.Errorf("missing knob %s", k)
		}
	}
	// Giving every default explicitly as a flag must load and change nothing.
	var args []string
	for _, k := range Knobs() {
		args = append(args, "--"+k.Key+"="+k.Default)
	}
	c := mustLoad(t, args, env{})
	d := mustLoad(t, nil, env{})
	if c.TopicDefaults != d.TopicDefaults || c.NumPartitions != d.NumPartitions || c.ConnectionsMaxIdle != d.ConnectionsMaxIdle {
		t.Errorf("explicit defaults differ from implicit ones:\n%+v\n%+v", c, d)
	}
	for i, s := range c.Effective() {
		if e := d.Effective()[i]; s.Value != e.Value {
			t.Errorf("%s: explicit default %q, implicit %q", s.Key, s.Value, e.Value)
		}
	}
}

func TestEnvName(t *testing.T) {
	for key, want := range map[string]string{
		"data-dir":                 "STRATA_DATA_DIR",
		"listen":                   "STRATA_LISTEN",
		"num.partitions":           "STRATA_NUM_PARTITIONS",
		"socket.request.max.bytes": "STRATA_SOCKET_REQUEST_MAX_BYTES",
		"max.incremental.fetch.session.cache.slots": "STRATA_MAX_INCREMENTAL_FETCH_SESSION_CACHE_SLOTS",
	} {
		if got := EnvName(key); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "listen: 127.0.0.1:1001\nnum.partitions: 4\nnode-id: 7\n")
	e := env{"STRATA_LISTEN": "127.0.0.1:1002", "STRATA_NUM_PARTITIONS": "5"}
	c := mustLoad(t, []string{"--config", file, "--listen=127.0.0.1:1003"}, e)
	if c.Listen != "127.0.0.1:1003" || c.Sources["listen"] != "flag --listen" {
		t.Errorf("flag should beat env and file: listen=%s from %s", c.Listen, c.Sources["listen"])
	}
	if c.NumPartitions != 5 || c.Sources["num.partitions"] != "env STRATA_NUM_PARTITIONS" {
		t.Errorf("env should beat file: num.partitions=%d from %s", c.NumPartitions, c.Sources["num.partitions"])
	}
	if c.NodeID != 7 || c.Sources["node-id"] != "config file "+file {
		t.Errorf("file should beat default: node-id=%d from %s", c.NodeID, c.Sources["node-id"])
	}
	if c.DataDir != "./strata-data" || c.Sources["data-dir"] != "default" {
		t.Errorf("default: data-dir=%s from %s", c.DataDir, c.Sources["data-dir"])
	}
	if c.File != file {
		t.Errorf("File = %q", c.File)
	}

	// STRATA_CONFIG names the file when --config is absent; --config wins.
	other := writeFile(t, "node-id: 9\n")
	c = mustLoad(t, nil, env{"STRATA_CONFIG": file})
	if c.NodeID != 7 {
		t.Errorf("STRATA_CONFIG file not read: node-id=%d", c.NodeID)
	}
	c = mustLoad(t, []string{"--config=" + other}, env{"STRATA_CONFIG": file})
	if c.NodeID != 9 {
		t.Errorf("--config should beat STRATA_CONFIG: node-id=%d", c.NodeID)
	}
}

func TestTopicDefaultsLayered(t *testing.T) {
	file := writeFile(t, "segment.bytes: 1048576\nretention.ms: 60000\nmessage.timestamp.type: LogAppendTime\n")
	c := mustLoad(t, []string{"--config", file, "--retention.ms=120000"}, env{"STRATA_SEGMENT_BYTES": "2097152"})
	want, err := topicconfig.Parse(topicconfig.Default(), map[string]string{
		"segment.bytes": "2097152", "retention.ms": "120000", "message.timestamp.type": "LogAppendTime",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.TopicDefaults != want {
		t.Errorf("topic defaults\n got %+v\nwant %+v", c.TopicDefaults, want)
	}
	eff := map[string]string{}
	for _, s := range c.Effective() {
		eff[s.Key] = s.Value + " / " + s.Source
	}
	for k, v := range map[string]string{
		"segment.bytes":          "2097152 / env STRATA_SEGMENT_BYTES",
		"retention.ms":           "120000 / flag --retention.ms",
		"message.timestamp.type": "LogAppendTime / config file " + file,
		"retention.bytes":        "-1 / default",
	} {
		if eff[k] != v {
			t.Errorf("effective %s = %q, want %q", k, eff[k], v)
		}
	}
}

// An invalid value names the key, the value and where it came from, for
// each of the three sources.
func TestInvalidValueNamesKeyAndValue(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     env
		file    string
		wantSub []string
	}{
		{"flag int", []string{"--num.partitions=abc"}, nil, "", []string{"num.partitions", `"abc"`, "flag --num.partitions"}},
		{"flag zero", []string{"--num.partitions", "0"}, nil, "", []string{"num.partitions", `"0"`}},
		{"flag int16 overflow", []string{"--default.replication.factor=40000"}, nil, "", []string{"default.replication.factor", `"40000"`}},
		{"env hostport", nil, env{"STRATA_LISTEN": "nonsense"}, "", []string{"listen", `"nonsense"`, "env STRATA_LISTEN"}},
		{"env bool", nil, env{"STRATA_AUTO_CREATE_TOPICS_ENABLE": "maybe"}, "", []string{"auto.create.topics.enable", `"maybe"`}},
		{"file ms", nil, nil, "connections.max.idle.ms: -5\n", []string{"connections.max.idle.ms", `"-5"`, "config file"}},
		{"file level", nil, nil, "log-level: loud\n", []string{"log-level", `"loud"`}},
		{"advertise port 0", []string{"--advertise=h:0"}, nil, "", []string{"advertise", `"h:0"`}},
		{"empty data dir", nil, env{"STRATA_DATA_DIR": ""}, "", []string{"data-dir", `""`}},
		{"socket max bytes", []string{"--socket.request.max.bytes=3000000000"}, nil, "", []string{"socket.request.max.bytes", `"3000000000"`}},
		{"topic segment.bytes", []string{"--segment.bytes=abc"}, nil, "", []string{"segment.bytes", "abc"}},
		{"topic timestamp type", nil, env{"STRATA_MESSAGE_TIMESTAMP_TYPE": "Sometime"}, "", []string{"message.timestamp.type", "Sometime"}},
		{"topic cleanup", nil, nil, "cleanup.policy: shred\n", []string{"cleanup.policy", "shred"}},
		{"same http and kafka address", []string{"--listen=127.0.0.1:7000", "--http-listen=127.0.0.1:7000"}, nil, "", []string{"http-listen", "127.0.0.1:7000"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeFile(t, tc.file)}, args...)
			}
			e := tc.env
			if e == nil {
				e = env{}
			}
			_, err := load(t, args, e)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			var ve *ValueError
			if !errors.As(err, &ve) {
				t.Errorf("error %v (%T) is not a *ValueError", err, err)
			}
			for _, s := range tc.wantSub {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
		})
	}
}

func TestYAML(t *testing.T) {
	c := mustLoad(t, []string{"--config", writeFile(t, `
# comment
data-dir: /var/lib/strata
advertise: ""
http-listen: ""
auto.create.topics.enable: false
log.retention.check.interval.ms: 9223372036854
segment.bytes: 1073741823
`)}, env{})
	if c.DataDir != "/var/lib/strata" || c.Advertise != "" || c.HTTPListen != "" || c.AutoCreateTopics {
		t.Errorf("yaml values not applied: %+v", c)
	}
	if c.RetentionCheckInterval != 9223372036854*time.Millisecond {
		t.Errorf("large integer not kept exactly: %v", c.RetentionCheckInterval)
	}
	if c.TopicDefaults.SegmentBytes != 1073741823 {
		t.Errorf("segment.bytes = %d", c.TopicDefaults.SegmentBytes)
	}

	for name, tc := range map[string]struct{ text, want string }{
		"unknown key": {"data-dir: x\nnum.partition: 3\n", `unknown key "num.partition"`},
		"duplicate":   {"listen: a:1\nlisten: b:2\n", `"listen" given twice`},
		"nested":      {"listen:\n  host: a\n", "listen needs a single value"},
		"null":        {"listen:\n", "listen needs a single value"},
		"list":        {"- a\n- b\n", "mapping"},
		"syntax":      {"listen: [\n", "config file"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(t, []string{"--config", writeFile(t, tc.text)}, env{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := load(t, []string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, env{}); err == nil {
		t.Error("missing config file accepted")
	}
	if c := mustLoad(t, []string{"--config", writeFile(t, "")}, env{}); c.NumPartitions != 1 {
		t.Error("empty config file changed defaults")
	}
}

func TestFlags(t *testing.T) {
	c := mustLoad(t, []string{"--auto.create.topics.enable=false", "-node-id", "3", "--log-format=JSON", "--log-level=debug"}, env{})
	if c.AutoCreateTopics || c.NodeID != 3 || c.LogFormat != "json" || c.LogLevel != slog.LevelDebug {
		t.Errorf("flags not applied: %+v", c)
	}
	// A bool knob given bare means true, and beats the environment.
	c = mustLoad(t, []string{"--auto.create.topics.enable"}, env{"STRATA_AUTO_CREATE_TOPICS_ENABLE": "false"})
	if !c.AutoCreateTopics {
		t.Error("bare bool flag did not set true")
	}
	if _, err := load(t, []string{"--no-such-flag=1"}, env{}); err == nil || !strings.Contains(err.Error(), "no-such-flag") {
		t.Errorf("unknown flag: err = %v", err)
	}
	if _, err := load(t, []string{"stray"}, env{}); err == nil {
		t.Error("positional argument accepted")
	}
	if _, err := load(t, []string{"-h"}, env{}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: err = %v, want flag.ErrHelp", err)
	}
}

func TestBrokerProjection(t *testing.T) {
	c := mustLoad(t, []string{"--queued.max.requests=7", "--connections.max.idle.ms=1500", "--max.incremental.fetch.session.cache.slots=0"}, env{})
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	bc := c.Broker("example.com:9092", lg)
	if bc.MaxInFlightPerConnection != 7 || bc.ConnectionsMaxIdle != 1500*time.Millisecond ||
		bc.MaxIncrementalFetchSessions != 0 || bc.Advertise != "example.com:9092" || bc.Logger != lg ||
		bc.Listen != c.Listen || bc.DataDir != c.DataDir || bc.TopicDefaults != c.TopicDefaults ||
		bc.SocketRequestMaxBytes != 100<<20 || bc.NumPartitions != 1 || !bc.AutoCreateTopics ||
		bc.RetentionCheckInterval != 5*time.Minute || bc.NodeID != 1 || bc.DefaultReplicationFactor != 1 {
		t.Errorf("broker config %+v", bc)
	}
}

func TestUsageAndLogAttrs(t *testing.T) {
	var b strings.Builder
	WriteUsage(&b)
	for _, k := range Knobs() {
		if !strings.Contains(b.String(), "--"+k.Key+" ") || !strings.Contains(b.String(), k.Env) {
			t.Errorf("usage lacks %s or %s", k.Key, k.Env)
		}
	}
	if !strings.Contains(b.String(), "per connection") {
		t.Error("usage does not say queued.max.requests is per connection")
	}
	c := mustLoad(t, []string{"--node-id=4"}, env{})
	var out strings.Builder
	slog.New(slog.NewJSONHandler(&out, nil)).Info("effective config", c.LogAttrs()...)
	for _, s := range []string{`"node-id":"4"`, `"sources":{"node-id":"flag --node-id"}`, `"segment.bytes":"`} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("log record %s lacks %s", out.String(), s)
		}
	}
}

// The README's configuration table lists every key with its env var and
// default, so the documentation cannot drift from the code unnoticed.
func TestREADMEListsEveryKnob(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Knobs() {
		var row string
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "| `"+k.Key+"`") {
				row = line
			}
		}
		if row == "" {
			t.Errorf("README has no table row for %s", k.Key)
			continue
		}
		if !strings.Contains(row, "`"+k.Env+"`") {
			t.Errorf("README row for %s lacks %s: %s", k.Key, k.Env, row)
		}
		if k.Default != "" && !strings.Contains(row, "`"+k.Default+"`") {
			t.Errorf("README row for %s lacks default %s: %s", k.Key, k.Default, row)
		}
	}
}

// Kafka's names are accepted for the keys that have one, as flags, YAML
// keys and env vars; both names in one source is an error naming both.
func TestKafkaNames(t *testing.T) {
	c := mustLoad(t, []string{"--node.id=5", "--broker.rack=zone-b"}, env{})
	if c.NodeID != 5 || c.Rack != "zone-b" || c.Sources["node-id"] != "flag --node.id" {
		t.Errorf("flags by Kafka name: node %d rack %q source %q", c.NodeID, c.Rack, c.Sources["node-id"])
	}
	c = mustLoad(t, nil, env{"STRATA_BROKER_RACK": "zone-c"})
	if c.Rack != "zone-c" {
		t.Errorf("env by Kafka name: rack %q", c.Rack)
	}
	file := writeFile(t, "node.id: 6\n")
	if c = mustLoad(t, []string{"--config", file}, env{}); c.NodeID != 6 {
		t.Errorf("YAML by Kafka name: node %d", c.NodeID)
	}
	_, err := load(t, []string{"--node-id=1", "--node.id=2"}, env{})
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Key != "node-id" || !strings.Contains(err.Error(), "node.id") {
		t.Errorf("both names given: %v", err)
	}
	if _, err := load(t, []string{"--broker.heartbeat.interval.ms=9000"}, env{}); err == nil || !strings.Contains(err.Error(), "broker.session.timeout.ms") {
		t.Errorf("heartbeat interval not below the session timeout: %v", err)
	}
	c = mustLoad(t, nil, env{"STRATA_CONTROLLER_QUORUM_VOTERS": "1@a:9093,2@b:9093,3@c:9093"})
	if len(c.ControllerQuorum) != 3 || c.ControllerQuorum[2].Addr != "c:9093" {
		t.Errorf("controller.quorum.voters from the env: %+v", c.ControllerQuorum)
	}
	for _, bad := range [][]string{
		{"--controller-quorum=2@a:9093,3@b:9093,4@c:9093"},                                    // node 1 not a voter
		{"--controller-quorum=1@a:9094,2@b:9093,3@c:9093"},                                    // port differs from controller-listen
		{"--controller-quorum=1@a:9093,1@b:9093"},                                             // duplicate id
		{"--node-id=2", "--controller-quorum=1@a:9093,2@b:9093", "--controller-listen=:9093"}, // fine but even: accepted
	} {
		_, err := load(t, bad, env{})
		if (err == nil) != (len(bad) == 3) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
