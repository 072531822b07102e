package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stratalog/strata/broker"
	"github.com/stratalog/strata/controller"
	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/topicconfig"
)

// knob is one configuration key. Server knobs carry a parser that sets the
// Config field; topic knobs (topic == true) are collected as text and parsed
// together by topicconfig.Parse.
type knob struct {
	key string // flag name, YAML key and (transformed) env var
	// kafkaKey, if set, is Kafka's name for the key (node.id), accepted
	// as flag, YAML key and env var too.
	kafkaKey string
	def      string // default as text; "" is a valid default only where noted
	typ      string // value kind shown in --help
	usage    string
	isBool   bool // flag may be given without a value
	topic    bool
	set      func(c *Config, v string) error // nil for topic knobs
	get      func(c *Config) string          // effective value as text (nil for topic knobs)
}

// EnvName is the environment variable for key: STRATA_ + upper-case key with
// '.' and '-' replaced by '_'.
func EnvName(key string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return "STRATA_" + strings.ToUpper(r.Replace(key))
}

// Kafka's topic-level defaults (as of Kafka 3.x/4.x). They are shown in
// --help and the README when package topicconfig does not report a default
// for the key itself; topicconfig.Default is authoritative.
var topicKnobs = []struct{ key, def, typ, usage string }{
	{"segment.bytes", "1073741824", "bytes", "default segment file size before a roll (1 GiB); at least 1048576 (1 MiB), as in Kafka 4.0: every segment keeps three files open"},
	{"segment.ms", "604800000", "ms", "default age of the active segment before a roll (7 days)"},
	{"retention.ms", "604800000", "ms", "default time records are kept (7 days); -1 keeps forever"},
	{"retention.bytes", "-1", "bytes", "default partition size limit for retention; -1 means none"},
	{"max.message.bytes", "1048588", "bytes", "default largest record batch accepted (1 MiB + 12 bytes of batch overhead)"},
	{"message.timestamp.type", "CreateTime", "CreateTime|LogAppendTime", "default timestamp kind stored in batches"},
	{"message.timestamp.before.max.ms", "9223372036854775807", "ms", "with CreateTime, how far before the broker's clock a batch timestamp may lie (default: no limit)"},
	{"message.timestamp.after.max.ms", "3600000", "ms", "with CreateTime, how far after the broker's clock a batch timestamp may lie (1 hour, as Kafka 4.0)"},
	{"index.interval.bytes", "4096", "bytes", "default bytes of log between two sparse index entries"},
	{"segment.index.bytes", "10485760", "bytes", "default maximum size of an offset/time index file (10 MiB)"},
	{"cleanup.policy", "delete", "delete|compact|compact,delete", "default cleanup policy: delete removes old segments by retention.ms/retention.bytes, compact keeps the latest record per key"},
	{"delete.retention.ms", "86400000", "ms", "default time a tombstone stays in a compacted topic after the cleaner first reaches it (1 day)"},
	{"min.cleanable.dirty.ratio", "0.5", "0..1", "default share of a compacted log that must be dirty before it is cleaned"},
	{"min.compaction.lag.ms", "0", "ms", "default minimum age of a record before compaction may remove it"},
	{"max.compaction.lag.ms", "9223372036854775807", "ms", "default maximum time a record stays uncompacted (default: no limit)"},
	{"min.insync.replicas", "1", "int", "default replicas that must have a batch before acks=all is answered"},
	{"compression.type", "producer", "producer", "batches are stored as the producer compressed them (the only value Strata accepts)"},
	{"remote.storage.enable", "true", "bool", "default for tiering topics' closed segments to the object store (true whenever --object-store is not none; compacted topics are never tiered)"},
	{"local.retention.ms", "-2", "ms", "default time uploaded segments stay on local disk; -2 means retention.ms, -1 forever"},
	{"local.retention.bytes", "-2", "bytes", "default local size of a tiered partition beyond which uploaded segments are deleted locally; -2 means retention.bytes, -1 no limit"},
	{"internal.segment.bytes", "", "bytes", "for tests only (Kafka 4.0's internal config): roll segments at this size instead of segment.bytes, below its 1 MiB minimum (at least 14); empty means unset"},
}

// knobs returns the full, ordered knob table. Server knobs first, then topic
// defaults: the keys above plus any extra key the broker package reports.
func knobs() []knob {
	ks := []knob{
		{key: "data-dir", def: "./strata-data", typ: "dir", usage: "directory holding topics, segments and metadata",
			set: func(c *Config, v string) error {
				if strings.TrimSpace(v) == "" {
					return errors.New("must not be empty")
				}
				c.DataDir = v
				return nil
			},
			get: func(c *Config) string { return c.DataDir }},
		{key: "listen", def: "127.0.0.1:9092", typ: "host:port", usage: "address of the Kafka protocol listener (port 0 picks a free port)",
			set: func(c *Config, v string) error {
				if err := checkHostPort(v, true); err != nil {
					return err
				}
				c.Listen = v
				return nil
			},
			get: func(c *Config) string { return c.Listen }},
		{key: "advertise", def: "", typ: "host:port", usage: "address given to clients in Metadata; empty means the bound listen address, with an unspecified host (0.0.0.0, ::) replaced by the host name",
			set: func(c *Config, v string) error {
				if v != "" {
					if err := checkHostPort(v, false); err != nil {
						return err
					}
					h, _, _ := net.SplitHostPort(v)
					if h == "" {
						return errors.New("host must not be empty")
					}
				}
				c.Advertise = v
				return nil
			},
			get: func(c *Config) string { return c.Advertise }},
		{key: "http-listen", def: "127.0.0.1:9644", typ: "host:port", usage: `address of the HTTP server for /healthz, /readyz and /metrics ("" disables it)`,
			set: func(c *Config, v string) error {
				if v != "" {
					if err := checkHostPort(v, true); err != nil {
						return err
					}
				}
				c.HTTPListen = v
				return nil
			},
			get: func(c *Config) string { return c.HTTPListen }},
		{key: "http.pprof.enable", def: "false", typ: "bool", isBool: true, usage: "serve Go runtime profiles under /debug/pprof/ on the HTTP server (off: profiles reveal internals)",
			set: func(c *Config, v string) error {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return errors.New("must be true or false")
				}
				c.HTTPPprof = b
				return nil
			},
			get: func(c *Config) string { return strconv.FormatBool(c.HTTPPprof) }},
		{key: "node-id", kafkaKey: "node.id", def: "1", typ: "int", usage: "this node's id, unique in the cluster, ≥ 0",
			set: func(c *Config, v string) error {
				n, err := parseInt(v, 0, math.MaxInt32)
				c.NodeID = int32(n)
				return err
			},
			get: func(c *Config) string { return strconv.Itoa(int(c.NodeID)) }},
		{key: "controller-listen", def: "127.0.0.1:9093", typ: "host:port",
			usage: "address of the controller listener (the quorum's Raft traffic, brokers' registrations and heartbeats, forwarded admin requests); used with controller-quorum, whose entry for this node must have the same port",
			set: func(c *Config, v string) error {
				if err := checkHostPort(v, false); err != nil {
					return err
				}
				c.ControllerListen = v
				return nil
			},
			get: func(c *Config) string { return c.ControllerListen }},
		{key: "controller-quorum", kafkaKey: "controller.quorum.voters", def: "", typ: "id@host:port,...",
			usage: `the controller quorum's voters, the same on every node, this node among them: 1, 3 or 5 (e.g. 1@10.0.0.1:9093,2@10.0.0.2:9093,3@10.0.0.3:9093); "" runs a one-voter quorum inside this node, with no controller port`,
			set: func(c *Config, v string) error {
				if v == "" {
					c.ControllerQuorum = nil
					return nil
				}
				voters, err := controller.ParseVoters(v)
				if err != nil {
					return err
				}
				c.ControllerQuorum = voters
				return nil
			},
			get: func(c *Config) string { return controller.FormatVoters(c.ControllerQuorum) }},
		{key: "rack", kafkaKey: "broker.rack", def: "", typ: "string", usage: "the rack (or availability zone) of this broker: replicas of a partition are spread over racks",
			set: func(c *Config, v string) error {
				if len(v) > 255 {
					return errors.New("longer than 255 bytes")
				}
				c.Rack = v
				return nil
			},
			get: func(c *Config) string { return c.Rack }},
		{key: "broker.session.timeout.ms", def: "9000", typ: "ms", usage: "a broker not heard from for this long is fenced and its partitions get new leaders; a broker whose process is gone is fenced at once",
			set: func(c *Config, v string) error {
				d, err := parseMs(v, 1)
				c.BrokerSessionTimeout = d
				return err
			},
			get: func(c *Config) string { return msText(c.BrokerSessionTimeout) }},
		{key: "broker.heartbeat.interval.ms", def: "2000", typ: "ms", usage: "how often a broker heartbeats to the active controller; below broker.session.timeout.ms",
			set: func(c *Config, v string) error {
				d, err := parseMs(v, 1)
				c.BrokerHeartbeatInterval = d
				return err
			},
			get: func(c *Config) string { return msText(c.BrokerHeartbeatInterval) }},
		{key: "auto.leader.rebalance.enable", def: "true", typ: "bool", isBool: true, usage: "move each partition's leadership back to its preferred replica once that broker is back",
			set: func(c *Config, v string) error {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return errors.New("must be true or false")
				}
				c.AutoLeaderRebalance = b
				return nil
			},
			get: func(c *Config) string { return strconv.FormatBool(c.AutoLeaderRebalance) }},
		{key: "leader.imbalance.check.interval.seconds", def: "300", typ: "s", usage: "how often the active controller checks for partitions not led by their preferred replica",
			set: func(c *Config, v string) error {
				n, err := parseInt(v, 1, math.MaxInt32)
				c.LeaderImbalanceCheckInterval = time.Duration(n) * time.Second
				return err
			},
			get: func(c *Config) string {
				return strconv.FormatInt(int64(c.LeaderImbalanceCheckInterval/time.Second), 10)
			}},
		{key: "log-level", def: "info", typ: "debug|info|warn|error", usage: "minimum level of log records",
			set: func(c *Config, v string) error {
				var l slog.Level
				switch strings.ToLower(v) {
				case "debug":
					l = slog.LevelDebug
				case "info":
					l = slog.LevelInfo
				case "warn", "warning":
					l = slog.LevelWarn
				case "error":
					l = slog.LevelError
				default:
					return errors.New("must be debug, info, warn or error")
				}
				c.LogLevel = l
				return nil
			},
			get: func(c *Config) string { return strings.ToLower(c.LogLevel.String()) }},
		{key: "log-format", def: "text", typ: "text|json", usage: "log record format on stderr (log/slog)",
			set: func(c *Config, v string) error {
				switch strings.ToLower(v) {
				case "text", "json":
					c.LogFormat = strings.ToLower(v)
					return nil
				}
				return errors.New("must be text or json")
			},
			get: func(c *Config) string { return c.LogFormat }},
		{key: "num.partitions", def: "1", typ: "int", usage: "partitions of an auto-created topic or a CreateTopics request that asks for the default (-1)",
			set: func(c *Config, v string) error {
				n, err := parseInt(v, 1, math.MaxInt32)
				c.NumPartitions = int32(n)
				return err
			},
			get: func(c *Config) string { return strconv.Itoa(int(c.NumPartitions)) }},
		{key: "max.broker.partitions", def: strconv.Itoa(broker.DefaultMaxBrokerPartitions), typ: "int", usage: "partitions this broker hosts at most, all topics together, internal ones included (KIP-578; Kafka's default is unlimited); a CreateTopics, CreatePartitions or auto-create beyond it fails with POLICY_VIOLATION",
			set: func(c *Config, v string) error {
				n, err := parseInt(v, 1, math.MaxInt32)
				c.MaxBrokerPartitions = int(n)
				return err
			},
			get: func(c *Config) string { return strconv.Itoa(c.MaxBrokerPartitions) }},
		{key: "default.replication.factor", def: "1", typ: "int", usage: "replication factor of auto-created topics and of CreateTopics asking for the default (-1)",
			set: func(c *Config, v string) error {
				n, err := parseInt(v, 1, math.MaxInt16)
				c.DefaultReplicationFactor = int16(n)
				return err
			},
			get: func(c *Config) string { return strconv.Itoa(int(c.DefaultReplicationFactor)) }},
		{key: "auto.create.topics.enable", def: "true", typ: "bool", isBool: true, usage: "create a topic when a client asks Metadata for an unknown one",
			set: func(c *Config, v string) error {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return errors.New("must be true or false")
				}
				c.AutoCreateTopics = b
				return nil
			},
			get: func(c *Config) string { return strconv.FormatBool(c.AutoCreateTopics) }},
		{key: "socket.request.max.bytes", def: "104857600", typ: "bytes", usage: "largest request frame accepted (100 MiB); a larger length prefix closes the connection",
			set: func(c *Config, v string) error {
				n, err := parseInt(v, 1, math.MaxInt32)
				c.SocketRequestMaxBytes = int32(n)
				return err
			},
			get: func(c *Config) string { return strconv.Itoa(int(c.SocketRequestMaxBytes)) }},
		{key: "queued.max.request.bytes", def: "536870912", typ: "bytes", usage: "request bytes held in memory by all connections together (512 MiB); when reached, connections stop being read until replies are written; -1 means unlimited (Kafka's default)",
			set: func(c *Config, v string) error {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || (n < 1 && n != -1) {
					return errors.New("must be a positive number of bytes, or -1 for unlimited")
				}
				c.QueuedMaxRequestBytes = n
				return nil
			},
			get: func(c *Config) string { return strconv.FormatInt(c.QueuedMaxRequestBytes, 10) }},
		{key: "connections.max.idle.ms", def: "600000", typ: "ms", usage: "close a connection idle this long (10 minutes)",
			set: func(c *Config, v string) error {
				d, err := parseMs(v, 1)
				c.ConnectionsMaxIdle = d
				return err
			},
			get: func(c *Config) string { return msText(c.ConnectionsMaxIdle) }},
		{key: "socket.request.read.timeout.ms", def: "60000", typ: "ms", usage: "longest a request frame may take to arrive once its size prefix is read (60 s); a slower or stalled frame closes the connection and frees the memory it held; 0 means no limit (then only connections.max.idle.ms applies)",
			set: func(c *Config, v string) error {
				d, err := parseMs(v, 0)
				c.RequestReadTimeout = d
				return err
			},
			get: func(c *Config) string { return msText(c.RequestReadTimeout) }},
		{key: "max.connections", def: "10000", typ: "int", usage: "client connections open at once; at the limit the broker stops accepting until one closes, as Kafka does (Kafka's default is unlimited); 0 means unlimited. Each connection takes a file handle",
			set: func(c *Config, v string) error {
				n, err := parseInt(v, 0, math.MaxInt32)
				c.MaxConnections = int(n)
				return err
			},
			get: func(c *Config) string { return strconv.Itoa(c.MaxConnections) }},
		{key: "max.connections.per.ip", def: "2000", typ: "int", usage: "connections open at once from one IP address; a connection beyond it is closed at once (Kafka's default is unlimited); 0 means unlimited",
			set: func(c *Config, v string) error {
				n, err := parseInt(v, 0, math.MaxInt32)
				c.MaxConnectionsPerIP = int(n)
				return err
			},
			get: func(c *Config) string { return strconv.Itoa(c.MaxConnectionsPerIP) }},
		{key: "queued.max.requests", def: "100", typ: "int", usage: "requests in flight per connection (unlike Kafka's broker-wide queue); when full the broker stops reading that connection",
			set: func(c *Config, v string) error {
				n, err := parseInt(v, 1, math.MaxInt32)
				c.QueuedMaxRequests = int(n)
				return err
			},
			get: func(c *Config) string { return strconv.Itoa(c.QueuedMaxRequests) }},
		{key: "max.incremental.fetch.session.cache.slots", def: "1000", typ: "int", usage: "incremental fetch sessions (KIP-227) kept at once; 0 disables them",
			set: func(c *Config, v string) error {
				n, err := parseInt(v, 0, math.MaxInt32)
				c.MaxIncrementalFetchSessions = int(n)
				return err
			},
			get: func(c *Config) string { return strconv.Itoa(c.MaxIncrementalFetchSessions) }},
		{key: "log.retention.check.interval.ms", def: "300000", typ: "ms", usage: "how often retention runs over all partitions (5 minutes)",
			set: func(c *Config, v string) error {
				d, err := parseMs(v, 1)
				c.RetentionCheckInterval = d
				return err
			},
			get: func(c *Config) string { return msText(c.RetentionCheckInterval) }},
		{key: "offsets.topic.num.partitions", def: "50", typ: "int", usage: "partitions of __consumer_offsets, created at the first start; a later change is ignored (groups would move away from their offsets)",
			set: func(c *Config, v string) error {
				n, err := parseInt(v, 1, 1000)
				c.OffsetsTopicNumPartitions = int32(n)
				return err
			},
			get: func(c *Config) string { return strconv.Itoa(int(c.OffsetsTopicNumPartitions)) }},
		{key: "group.initial.rebalance.delay.ms", def: "3000", typ: "ms", usage: "how long the first rebalance of an empty group waits for more members (3 s); 0 means no wait",
			set: func(c *Config, v string) error {
				d, err := parseMs(v, 0)
				c.GroupInitialRebalanceDelay = d
				return err
			},
			get: func(c *Config) string { return msText(c.GroupInitialRebalanceDelay) }},
		{key: "group.min.session.timeout.ms", def: "6000", typ: "ms", usage: "shortest session timeout a group member may ask for (6 s)",
			set: func(c *Config, v string) error {
				d, err := parseMs(v, 1)
				c.GroupMinSessionTimeout = d
				return err
			},
			get: func(c *Config) string { return msText(c.GroupMinSessionTimeout) }},
		{key: "group.max.session.timeout.ms", def: "1800000", typ: "ms", usage: "longest session timeout a group member may ask for (30 min)",
			set: func(c *Config, v string) error {
				d, err := parseMs(v, 1)
				c.GroupMaxSessionTimeout = d
				return err
			},
			get: func(c *Config) string { return msText(c.GroupMaxSessionTimeout) }},
		{key: "group.max.size", def: "1000", typ: "int", usage: "most members one consumer group may have (Kafka's default is unlimited; bounded here so one group cannot hold unbounded memory)",
			set: func(c *Config, v string) error {
				n, err := parseInt(v, 1, math.MaxInt32)
				c.GroupMaxSize = int(n)
				return err
			},
			get: func(c *Config) string { return strconv.Itoa(c.GroupMaxSize) }},
		{key: "offsets.retention.minutes", def: "10080", typ: "minutes", usage: "how long committed offsets of an empty group (or of a topic nobody in the group subscribes to) are kept (7 days)",
			set: func(c *Config, v string) error {
				n, err := parseInt(v, 1, math.MaxInt64/int64(time.Minute))
				c.OffsetsRetention = time.Duration(n) * time.Minute
				return err
			},
			get: func(c *Config) string { return strconv.FormatInt(int64(c.OffsetsRetention/time.Minute), 10) }},
		{key: "offsets.topic.segment.bytes", def: "104857600", typ: "bytes", usage: "segment.bytes of __consumer_offsets (100 MiB), applied at every start; smaller segments are compacted sooner; at least 1048576 (1 MiB), segment.bytes' minimum",
			set: func(c *Config, v string) error {
				n, err := parseInt(v, topicconfig.MinSegmentBytes, math.MaxInt32)
				c.OffsetsTopicSegmentBytes = int32(n)
				return err
			},
			get: func(c *Config) string { return strconv.Itoa(int(c.OffsetsTopicSegmentBytes)) }},
		{key: "log.cleaner.enable", def: "true", typ: "bool", isBool: true, usage: "run the log cleaner, which compacts topics whose cleanup.policy includes compact (__consumer_offsets among them)",
			set: func(c *Config, v string) error {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return errors.New("must be true or false")
				}
				c.LogCleanerEnable = b
				return nil
			},
			get: func(c *Config) string { return strconv.FormatBool(c.LogCleanerEnable) }},
		{key: "log.cleaner.backoff.ms", def: "15000", typ: "ms", usage: "how long the log cleaner sleeps when no partition needs cleaning (15 s)",
			set: func(c *Config, v string) error {
				d, err := parseMs(v, 1)
				c.LogCleanerBackoff = d
				return err
			},
			get: func(c *Config) string { return msText(c.LogCleanerBackoff) }},
		{key: "log.cleaner.dedupe.buffer.size", def: "134217728", typ: "bytes", usage: "memory for the key map of one cleaning pass (128 MiB; 24 bytes per distinct key, 90% usable); a larger dirty section is cleaned over several passes",
			set: func(c *Config, v string) error {
				n, err := parseInt(v, 1<<10, math.MaxInt64)
				c.LogCleanerDedupeBufferBytes = n
				return err
			},
			get: func(c *Config) string { return strconv.FormatInt(c.LogCleanerDedupeBufferBytes, 10) }},
		{key: "object-store", def: "", typ: "url", usage: `object store for tiered storage: file:///dir, s3://bucket/prefix?region=R[&endpoint=URL], minio://host:port/bucket/prefix[?secure=false]; "" means file://<data-dir>/objects, "none" turns tiering off. Credentials for s3 (else the AWS default chain) and minio come from STRATA_OBJECT_STORE_ACCESS_KEY and STRATA_OBJECT_STORE_SECRET_KEY, never the URL`,
			set: func(c *Config, v string) error {
				v = strings.TrimSpace(v)
				if v != "" && v != "none" {
					if _, err := objectstore.ParseURL(v); err != nil {
						return err
					}
				}
				c.ObjectStore = v
				return nil
			},
			get: func(c *Config) string { return c.ObjectStore }},
		{key: "remote-cache-size", def: "1073741824", typ: "bytes", usage: "disk space of the chunk cache that serves reads of tiered history, in <data-dir>/remote-cache (1 GiB; at least 8 MiB, one chunk)",
			set: func(c *Config, v string) error {
				n, err := parseInt(v, 8<<20, math.MaxInt64)
				c.RemoteCacheBytes = n
				return err
			},
			get: func(c *Config) string { return strconv.FormatInt(c.RemoteCacheBytes, 10) }},
		{key: "remote.log.manager.task.interval.ms", def: "30000", typ: "ms", usage: "how often each tiered partition looks for segments to upload and retries a failed upload (30 s); a segment roll starts its upload at once",
			set: func(c *Config, v string) error {
				d, err := parseMs(v, 1)
				c.RemoteTaskInterval = d
				return err
			},
			get: func(c *Config) string { return msText(c.RemoteTaskInterval) }},
		{key: "remote.fetch.max.wait.ms", def: "500", typ: "ms", usage: "how long a Fetch waits for reads from the object store before answering without those partitions' records (500 ms; the download continues into the cache)",
			set: func(c *Config, v string) error {
				d, err := parseMs(v, 1)
				c.RemoteFetchMaxWait = d
				return err
			},
			get: func(c *Config) string { return msText(c.RemoteFetchMaxWait) }},
		{key: "remote.log.orphan.grace.ms", def: "900000", typ: "ms", usage: "age after which a segment object that the committed manifest does not list, but whose offsets it covers or has trimmed (left by a crash or a retried upload), is deleted (15 min; must exceed an upload plus its commit)",
			set: func(c *Config, v string) error {
				d, err := parseMs(v, 1)
				c.RemoteOrphanGrace = d
				return err
			},
			get: func(c *Config) string { return msText(c.RemoteOrphanGrace) }},
	}

	// Topic defaults. Package topicconfig is authoritative for defaults and
	// for the set of keys; the local table gives help text and fills in
	// while topicconfig reports nothing for a key.
	topicDefaults := topicconfig.Entries(topicconfig.Default())
	seen := map[string]bool{}
	for _, t := range topicKnobs {
		def := t.def
		if d, ok := topicDefaults[t.key]; ok {
			def = d
		}
		ks = append(ks, knob{key: t.key, def: def, typ: t.typ, usage: t.usage, topic: true})
		seen[t.key] = true
	}
	var extra []string
	for _, k := range topicconfig.Keys() {
		if !seen[k] {
			extra = append(extra, k)
			seen[k] = true
		}
	}
	slices.Sort(extra)
	for _, k := range extra {
		ks = append(ks, knob{key: k, def: topicDefaults[k], typ: "value", usage: "default for topic config " + k, topic: true})
	}
	return ks
}

// parseInt parses a base-10 integer within [lo, hi].
func parseInt(v string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, errors.New("must be an integer")
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("must be between %d and %d", lo, hi)
	}
	return n, nil
}

// parseMs parses a millisecond count ≥ lo into a Duration, bounded so the
// conversion cannot overflow (MaxInt64 ns is about 292 years).
func parseMs(v string, lo int64) (time.Duration, error) {
	n, err := parseInt(v, lo, math.MaxInt64/int64(time.Millisecond))
	return time.Duration(n) * time.Millisecond, err
}

func msText(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// checkHostPort accepts host:port with a numeric port; the host may be empty
// (all interfaces) and port 0 is allowed only for listeners.
func checkHostPort(v string, allowZeroPort bool) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("must be host:port")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return errors.New("port must be a number between 0 and 65535")
	}
	if p == 0 && !allowZeroPort {
		return errors.New("port must not be 0")
	}
	return nil
}
