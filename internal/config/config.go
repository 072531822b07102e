package config

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/stratalog/strata/broker"
	"github.com/stratalog/strata/controller"
	"github.com/stratalog/strata/topicconfig"
	"github.com/stratalog/strata/wire"
)

// Config is the validated configuration of `strata serve`. Field comments
// give the key and the default; knobs.go holds the parsers.
type Config struct {
	File string // YAML file read (--config / STRATA_CONFIG), "" if none

	DataDir    string     // data-dir (./strata-data)
	Listen     string     // listen (127.0.0.1:9092)
	Advertise  string     // advertise ("" = the bound listen address)
	HTTPListen string     // http-listen (127.0.0.1:9644; "" disables)
	HTTPPprof  bool       // http.pprof.enable (false): /debug/pprof on the HTTP server
	NodeID     int32      // node-id / node.id (1)
	LogLevel   slog.Level // log-level (info)
	LogFormat  string     // log-format (text): "text" or "json"

	ControllerListen             string             // controller-listen (127.0.0.1:9093)
	ControllerQuorum             []controller.Voter // controller-quorum / controller.quorum.voters (none: a one-voter quorum in-process)
	Rack                         string             // rack / broker.rack ("")
	BrokerSessionTimeout         time.Duration      // broker.session.timeout.ms (9000)
	BrokerHeartbeatInterval      time.Duration      // broker.heartbeat.interval.ms (2000)
	AutoLeaderRebalance          bool               // auto.leader.rebalance.enable (true)
	LeaderImbalanceCheckInterval time.Duration      // leader.imbalance.check.interval.seconds (300)

	NumPartitions               int32         // num.partitions (1)
	MaxBrokerPartitions         int           // max.broker.partitions (10000)
	DefaultReplicationFactor    int16         // default.replication.factor (1)
	AutoCreateTopics            bool          // auto.create.topics.enable (true)
	SocketRequestMaxBytes       int32         // socket.request.max.bytes (104857600)
	QueuedMaxRequestBytes       int64         // queued.max.request.bytes (536870912; -1 unlimited)
	ConnectionsMaxIdle          time.Duration // connections.max.idle.ms (600000)
	RequestReadTimeout          time.Duration // socket.request.read.timeout.ms (60000; 0 none)
	MaxConnections              int           // max.connections (10000; 0 unlimited)
	MaxConnectionsPerIP         int           // max.connections.per.ip (2000; 0 unlimited)
	QueuedMaxRequests           int           // queued.max.requests, per connection (100)
	MaxIncrementalFetchSessions int           // max.incremental.fetch.session.cache.slots (1000)
	RetentionCheckInterval      time.Duration // log.retention.check.interval.ms (300000)

	OffsetsTopicNumPartitions  int32         // offsets.topic.num.partitions (50)
	GroupInitialRebalanceDelay time.Duration // group.initial.rebalance.delay.ms (3000; 0 none)
	GroupMinSessionTimeout     time.Duration // group.min.session.timeout.ms (6000)
	GroupMaxSessionTimeout     time.Duration // group.max.session.timeout.ms (1800000)
	GroupMaxSize               int           // group.max.size (1000; Kafka: unlimited)
	OffsetsRetention           time.Duration // offsets.retention.minutes (10080)
	OffsetsTopicSegmentBytes   int32         // offsets.topic.segment.bytes (104857600)

	LogCleanerEnable            bool          // log.cleaner.enable (true)
	LogCleanerBackoff           time.Duration // log.cleaner.backoff.ms (15000)
	LogCleanerDedupeBufferBytes int64         // log.cleaner.dedupe.buffer.size (134217728)
	ObjectStore                 string        // object-store ("": file://<data-dir>/objects; "none": off)
	RemoteCacheBytes            int64         // remote-cache-size (1073741824)
	RemoteTaskInterval          time.Duration // remote.log.manager.task.interval.ms (30000)
	RemoteFetchMaxWait          time.Duration // remote.fetch.max.wait.ms (500)
	RemoteOrphanGrace           time.Duration // remote.log.orphan.grace.ms (900000)

	// TopicDefaults is topicconfig.Default with the topic keys given
	// here (segment.bytes, retention.ms, …) applied by topicconfig.Parse.
	TopicDefaults topicconfig.Config

	// Sources maps every key to where its value came from: "default",
	// "flag --key", "env STRATA_KEY" or "config file <path>".
	Sources map[string]string

	topicText map[string]string // topic keys given by the user, as text
}

// ValueError reports an invalid value; its message names the key, the value
// and the source.
type ValueError struct {
	Key    string
	Value  string
	Source string
	Err    error
}

func (e *ValueError) Error() string {
	msg := e.Err.Error()
	if strings.Contains(msg, e.Key) && strings.Contains(msg, fmt.Sprintf("%q", e.Value)) {
		// The parser (topicconfig.Parse) named both already.
		return fmt.Sprintf("%s (from %s)", msg, e.Source)
	}
	return fmt.Sprintf("invalid value %q for %s (from %s): %s", e.Value, e.Key, e.Source, msg)
}

func (e *ValueError) Unwrap() error { return e.Err }

const sourceDefault = "default"

// Knob describes one key for documentation (help, README).
type Knob struct {
	Key     string
	Default string
	Env     string
	Type    string
	Usage   string
	Topic   bool // a topic-config default (per-topic overrides exist)
}

// Knobs lists every key, server keys first, then topic defaults.
func Knobs() []Knob {
	var out []Knob
	for _, k := range knobs() {
		out = append(out, Knob{Key: k.key, Default: k.def, Env: EnvName(k.key), Type: k.typ, Usage: k.usage, Topic: k.topic})
	}
	return out
}

// flagValue records a flag's text and whether it was given at all, so the
// layering can tell "not given" from "given the default".
type flagValue struct {
	text   string
	given  bool
	isBool bool
}

func (f *flagValue) String() string {
	if f == nil {
		return ""
	}
	return f.text
}
func (f *flagValue) Set(s string) error { f.text, f.given = s, true; return nil }
func (f *flagValue) IsBoolFlag() bool   { return f.isBool }

// ConfigEnv names the YAML file when --config is not given.
const ConfigEnv = "STRATA_CONFIG"

// Load resolves the configuration from args (the arguments after
// "serve"), the environment (lookupEnv is os.LookupEnv outside tests) and
// the YAML file named by --config or STRATA_CONFIG. Usage and flag-syntax
// errors are written to out. With -h/--help it returns flag.ErrHelp after
// writing the usage. Any invalid value yields a *ValueError (possibly
// wrapped) naming key, value and source.
func Load(args []string, lookupEnv func(string) (string, bool), out io.Writer) (*Config, error) {
	ks := knobs()
	fs := flag.NewFlagSet("strata serve", flag.ContinueOnError)
	fs.SetOutput(out)
	vals := make(map[string]*flagValue, len(ks))
	for _, k := range ks {
		for _, name := range k.names() {
			v := &flagValue{isBool: k.isBool}
			vals[name] = v
			fs.Var(v, name, k.usage)
		}
	}
	configFlag := fs.String("config", "", "YAML file of key: value pairs")
	fs.Usage = func() { WriteUsage(out) }
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags are --key=value)", fs.Arg(0))
	}

	file := *configFlag
	if file == "" {
		if v, ok := lookupEnv(ConfigEnv); ok {
			file = v
		}
	}
	var fileVals map[string]string
	if file != "" {
		known := make(map[string]bool, len(ks))
		for _, k := range ks {
			for _, name := range k.names() {
				known[name] = true
			}
		}
		var err error
		if fileVals, err = readYAML(file, known); err != nil {
			return nil, err
		}
	}

	c := &Config{File: file, Sources: make(map[string]string, len(ks)), topicText: map[string]string{}}
	for _, k := range ks {
		text, src, err := k.lookup(vals, lookupEnv, fileVals, file)
		if err != nil {
			return nil, err
		}
		c.Sources[k.key] = src
		if k.topic {
			if src == sourceDefault {
				continue // topicconfig.Default already holds it
			}
			// Parse each key alone first so an error names its source.
			if _, err := topicconfig.Parse(topicconfig.Default(), map[string]string{k.key: text}); err != nil {
				return nil, &ValueError{Key: k.key, Value: text, Source: src, Err: err}
			}
			c.topicText[k.key] = text
			continue
		}
		if err := k.set(c, text); err != nil {
			return nil, &ValueError{Key: k.key, Value: text, Source: src, Err: err}
		}
	}
	td, err := topicconfig.Parse(topicconfig.Default(), c.topicText)
	if err != nil {
		return nil, fmt.Errorf("topic defaults: %w", err)
	}
	c.TopicDefaults = td

	if err := c.crossCheck(); err != nil {
		return nil, err
	}
	return c, nil
}

// names are the knob's key and, if it has one, its Kafka name.
func (k knob) names() []string {
	if k.kafkaKey == "" {
		return []string{k.key}
	}
	return []string{k.key, k.kafkaKey}
}

// lookup finds the knob's text and source by precedence (flag >
// environment > YAML file > default), under either of its names; both
// names in the same source is an error. (Both names share one env var
// when they differ only in '.' and '-'.)
func (k knob) lookup(flags map[string]*flagValue, lookupEnv func(string) (string, bool), fileVals map[string]string, file string) (text, src string, err error) {
	type found struct{ text, src string }
	var flagHits, envHits, fileHits []found
	envSeen := map[string]bool{}
	for _, name := range k.names() {
		if fv := flags[name]; fv.given {
			flagHits = append(flagHits, found{fv.text, "flag --" + name})
		}
		if env := EnvName(name); !envSeen[env] {
			envSeen[env] = true
			if v, ok := lookupEnv(env); ok {
				envHits = append(envHits, found{v, "env " + env})
			}
		}
		if v, ok := fileVals[name]; ok {
			fileHits = append(fileHits, found{v, "config file " + file})
		}
	}
	for _, hits := range [][]found{flagHits, envHits, fileHits} {
		switch len(hits) {
		case 0:
			continue
		case 1:
			return hits[0].text, hits[0].src, nil
		}
		return "", "", &ValueError{Key: k.key, Value: hits[0].text, Source: hits[0].src,
			Err: fmt.Errorf("given twice, as %s and as %s (%s)", k.key, k.kafkaKey, hits[1].src)}
	}
	return k.def, sourceDefault, nil
}

// crossCheck validates relations between keys.
func (c *Config) crossCheck() error {
	if c.HTTPListen != "" && c.HTTPListen == c.Listen {
		if _, port, _ := net.SplitHostPort(c.Listen); port != "0" {
			return &ValueError{Key: "http-listen", Value: c.HTTPListen, Source: c.Sources["http-listen"],
				Err: fmt.Errorf("same address as listen")}
		}
	}
	if err := c.checkCluster(); err != nil {
		return err
	}
	if c.GroupMinSessionTimeout > c.GroupMaxSessionTimeout {
		return &ValueError{Key: "group.min.session.timeout.ms", Value: msText(c.GroupMinSessionTimeout), Source: c.Sources["group.min.session.timeout.ms"],
			Err: fmt.Errorf("above group.max.session.timeout.ms (%s)", msText(c.GroupMaxSessionTimeout))}
	}
	return nil
}

// Setting is one key's effective value and its source.
type Setting struct{ Key, Value, Source string }

// Effective lists every key with its effective value, in table order.
// Topic values come from topicconfig.Entries when it reports the key,
// otherwise from the text given (or the documented default).
func (c *Config) Effective() []Setting {
	entries := topicconfig.Entries(c.TopicDefaults)
	var out []Setting
	for _, k := range knobs() {
		var v string
		switch {
		case !k.topic:
			v = k.get(c)
		case entries[k.key] != "":
			v = entries[k.key]
		case c.topicText[k.key] != "":
			v = c.topicText[k.key]
		default:
			v = k.def
		}
		out = append(out, Setting{Key: k.key, Value: v, Source: c.Sources[k.key]})
	}
	return out
}

// LogAttrs renders the effective configuration for one log record: every
// key with its value, plus a "sources" group for keys not at their default.
func (c *Config) LogAttrs() []any {
	var attrs, from []any
	if c.File != "" {
		attrs = append(attrs, slog.String("config", c.File))
	}
	for _, s := range c.Effective() {
		attrs = append(attrs, slog.String(s.Key, s.Value))
		if s.Source != sourceDefault {
			from = append(from, slog.String(s.Key, s.Source))
		}
	}
	if len(from) > 0 {
		attrs = append(attrs, slog.Group("sources", from...))
	}
	return attrs
}

// Broker projects the configuration onto broker.Config. advertise is the
// address resolved by the caller (the listener must be bound first when
// Advertise is empty or the listen port is 0).
func (c *Config) Broker(advertise string, logger *slog.Logger) broker.Config {
	return broker.Config{
		NodeID:                      c.NodeID,
		Listen:                      c.Listen,
		Advertise:                   advertise,
		DataDir:                     c.DataDir,
		SocketRequestMaxBytes:       c.SocketRequestMaxBytes,
		QueuedMaxRequestBytes:       c.QueuedMaxRequestBytes,
		ConnectionsMaxIdle:          c.ConnectionsMaxIdle,
		RequestReadTimeout:          c.RequestReadTimeout,
		MaxConnections:              c.MaxConnections,
		MaxConnectionsPerIP:         c.MaxConnectionsPerIP,
		MaxInFlightPerConnection:    c.QueuedMaxRequests,
		NumPartitions:               c.NumPartitions,
		MaxBrokerPartitions:         c.MaxBrokerPartitions,
		DefaultReplicationFactor:    c.DefaultReplicationFactor,
		AutoCreateTopics:            c.AutoCreateTopics,
		MaxIncrementalFetchSessions: c.MaxIncrementalFetchSessions,
		RetentionCheckInterval:      c.RetentionCheckInterval,
		TopicDefaults:               c.TopicDefaults,
		Group:                       c.groupConfig(),
		Cleaner: broker.CleanerConfig{
			Enable:            c.LogCleanerEnable,
			Backoff:           c.LogCleanerBackoff,
			DedupeBufferBytes: c.LogCleanerDedupeBufferBytes,
		},
		Cluster: broker.ClusterConfig{
			Voters:           c.ControllerQuorum,
			ControllerListen: c.ControllerListen,
			ControllerWire: wire.Config{
				SocketRequestMaxBytes:    c.SocketRequestMaxBytes,
				MaxInFlightPerConnection: c.QueuedMaxRequests,
				ConnectionsMaxIdle:       c.ConnectionsMaxIdle,
				RequestReadTimeout:       c.RequestReadTimeout,
				MaxConnections:           c.MaxConnections,
				MaxConnectionsPerIP:      c.MaxConnectionsPerIP,
				QueuedMaxRequestBytes:    c.QueuedMaxRequestBytes,
				Logger:                   logger,
			},
			Rack:                         c.Rack,
			HeartbeatInterval:            c.BrokerHeartbeatInterval,
			SessionTimeout:               c.BrokerSessionTimeout,
			AutoLeaderRebalance:          &c.AutoLeaderRebalance,
			LeaderImbalanceCheckInterval: c.LeaderImbalanceCheckInterval,
		},
		Tiering: broker.TieringConfig{
			ObjectStore:  c.ObjectStoreURL(),
			CacheBytes:   c.RemoteCacheBytes,
			TaskInterval: c.RemoteTaskInterval,
			FetchMaxWait: c.RemoteFetchMaxWait,
			OrphanGrace:  c.RemoteOrphanGrace,
		},
		Logger: logger,
	}
}

// groupConfig projects the group coordinator's knobs. A zero initial
// rebalance delay means none, which broker.GroupConfig spells negative.
func (c *Config) groupConfig() broker.GroupConfig {
	delay := c.GroupInitialRebalanceDelay
	if delay == 0 {
		delay = -1
	}
	return broker.GroupConfig{
		OffsetsTopicNumPartitions: c.OffsetsTopicNumPartitions,
		InitialRebalanceDelay:     delay,
		MinSessionTimeout:         c.GroupMinSessionTimeout,
		MaxSessionTimeout:         c.GroupMaxSessionTimeout,
		MaxSize:                   c.GroupMaxSize,
		OffsetsRetention:          c.OffsetsRetention,
		OffsetsTopicSegmentBytes:  c.OffsetsTopicSegmentBytes,
	}
}

// WriteUsage writes `strata serve --help`.
func WriteUsage(w io.Writer) {
	var b strings.Builder
	b.WriteString(`Usage: strata serve [--config file.yaml] [--key=value ...]

Runs a single-node Strata broker. Every flag below is also a key in the YAML
file given by --config (key: value, flat, named exactly like the flag) and an
environment variable (STRATA_ + key upper-cased, '.' and '-' as '_').
Precedence: flag > environment > YAML file > default. An invalid value stops
the start with a message naming the key and the value. SIGTERM or SIGINT
shuts down cleanly (in-flight requests finish, segments are flushed and
closed; up to 30 s).

  --config file
        YAML file with any of the keys below (env ` + ConfigEnv + `)
`)
	topicHeader := false
	for _, k := range Knobs() {
		if k.Topic && !topicHeader {
			b.WriteString("\nTopic defaults (Kafka's topic config names; a topic's own config, set by\nCreateTopics or `strata topic alter-config`, overrides them):\n\n")
			topicHeader = true
		}
		def := k.Default
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(&b, "  --%s %s\n        %s (default %s; env %s)\n", k.Key, k.Type, k.Usage, def, k.Env)
	}
	io.WriteString(w, b.String())
}

// ObjectStoreURL is the object store the broker uses: the object-store
// key, file://<absolute data-dir>/objects when it is empty, "" (tiering
// off) when it is "none".
func (c *Config) ObjectStoreURL() string {
	switch c.ObjectStore {
	case "none":
		return ""
	case "":
		dir, err := filepath.Abs(c.DataDir)
		if err != nil {
			dir = c.DataDir
		}
		return (&url.URL{Scheme: "file", Path: filepath.Join(dir, "objects")}).String()
	}
	return c.ObjectStore
}

// checkCluster validates the cluster keys against each other. Every node
// of a cluster is a broker and a controller for now (process.roles is
// issue 10's next step), so a node must be one of the voters.
func (c *Config) checkCluster() error {
	if c.BrokerHeartbeatInterval >= c.BrokerSessionTimeout {
		return &ValueError{Key: "broker.heartbeat.interval.ms", Value: msText(c.BrokerHeartbeatInterval), Source: c.Sources["broker.heartbeat.interval.ms"],
			Err: fmt.Errorf("not below broker.session.timeout.ms (%s)", msText(c.BrokerSessionTimeout))}
	}
	if len(c.ControllerQuorum) == 0 {
		return nil
	}
	quorumErr := func(format string, args ...any) error {
		return &ValueError{Key: "controller-quorum", Value: controller.FormatVoters(c.ControllerQuorum), Source: c.Sources["controller-quorum"], Err: fmt.Errorf(format, args...)}
	}
	i := slices.IndexFunc(c.ControllerQuorum, func(v controller.Voter) bool { return int32(v.ID) == c.NodeID })
	if i < 0 {
		return quorumErr("node %d is not one of the voters (every node is a controller and a broker)", c.NodeID)
	}
	_, port, _ := net.SplitHostPort(c.ControllerListen)
	if _, vport, _ := net.SplitHostPort(c.ControllerQuorum[i].Addr); vport != port {
		return quorumErr("node %d's entry %s and controller-listen %s differ in port", c.NodeID, c.ControllerQuorum[i].Addr, c.ControllerListen)
	}
	return nil
}
