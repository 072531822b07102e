package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/stratalog/strata/broker/lifecycle"
	"github.com/stratalog/strata/broker/replica"
	"github.com/stratalog/strata/broker/txn"
	"github.com/stratalog/strata/controller/quorum"
	"github.com/stratalog/strata/topicconfig"
	"github.com/stratalog/strata/wire"
)

// meterName is the instrumentation scope of every broker metric, the wire
// server's strata.broker.* included.
const meterName = "github.com/stratalog/strata/broker"

// Config is the broker's configuration. internal/config builds it from
// flags, YAML and the environment, validates it and fills the defaults
// documented beside each field.
type Config struct {
	NodeID                      int32              // node.id (1)
	Listen                      string             // listen (127.0.0.1:9092)
	Advertise                   string             // advertise (the listen address)
	DataDir                     string             // data-dir (./strata-data)
	SocketRequestMaxBytes       int32              // socket.request.max.bytes (100 MiB)
	QueuedMaxRequestBytes       int64              // queued.max.request.bytes (512 MiB; <= 0 unlimited)
	ConnectionsMaxIdle          time.Duration      // connections.max.idle.ms (10 min)
	RequestReadTimeout          time.Duration      // socket.request.read.timeout.ms (60 s; 0 none): a frame's time to arrive once its size is read
	MaxConnections              int                // max.connections (10000; 0 unlimited): connections open at once; beyond it, accepting waits
	MaxConnectionsPerIP         int                // max.connections.per.ip (2000; 0 unlimited): beyond it, a new connection is closed at once
	MaxInFlightPerConnection    int                // queued.max.requests per connection (100)
	NumPartitions               int32              // num.partitions (1)
	DefaultReplicationFactor    int16              // default.replication.factor (1)
	AutoCreateTopics            bool               // auto.create.topics.enable (true)
	MaxIncrementalFetchSessions int                // max.incremental.fetch.session.cache.slots (1000)
	RetentionCheckInterval      time.Duration      // log.retention.check.interval.ms (5 min)
	MaxBrokerPartitions         int                // max.broker.partitions (10000; all topics, internal ones too; handles.go)
	TopicDefaults               topicconfig.Config // segment.bytes, retention.ms, … (Kafka's defaults)
	Group                       GroupConfig        // offsets.topic.num.partitions, group.* (group_driver.go)
	Cleaner                     CleanerConfig      // log.cleaner.* (cleaner.go)
	Tiering                     TieringConfig      // object-store, remote-cache-size, remote.* (tiering.go)
	Cluster                     ClusterConfig      // the controller quorum and this broker's registration (cluster.go)
	Logger                      *slog.Logger
}

// Broker serves the Kafka protocol for the partitions it hosts.
//
// Ownership: each sub-component owns its state and locking; the Broker only
// wires them. Lock order: topicRegistry.mu → replica.Partition locks →
// segments.Log locks. No lock is held across network I/O.
type Broker struct {
	cfg       Config
	log       *slog.Logger
	clusterID string

	srv         *wire.Server       // the Kafka listener's connections (package wire); handlers in apis.go
	quorum      *quorum.Quorum     // this node's part of the metadata quorum (cluster.go)
	ownQuorum   *quorum.Quorum     // quorum, when the broker started it (in-process)
	admin       Admin              // the active controller's topic operations
	remoteAdmin *remoteAdmin       // admin over the controller listener (forward.go), closed at shutdown
	lifecycle   *lifecycle.Manager // registration and heartbeats
	topics      *topicRegistry     // topics.go
	sessions    *fetchSessionCache // fetch_sessions.go
	producers   *txn.ProducerIDs   // producer id allocation (InitProducerId)
	committer   *replica.Committer // group-commit fsync shared by all partitions
	groups      *groupDriver       // group coordinator (group_driver.go)
	cleaner     *logCleaner        // log compaction (cleaner.go); nil if disabled
	tier        *tierManager       // tiered storage (tiering.go); nil if no object store
	// partitionGauges observes every partition's offsets and size at
	// collection time (partition_metrics.go).
	partitionGauges metric.Registration

	shuttingDown atomic.Bool   // set by the first Shutdown
	done         chan struct{} // closed once Shutdown has closed storage
}

// New opens (and recovers) the broker's data directory. It does not listen.
func New(cfg Config) (*Broker, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &Broker{cfg: cfg, log: cfg.Logger, done: make(chan struct{})}
	var err error
	if b.srv, err = wire.NewServer(wire.Config{
		Name:                     "broker",
		SocketRequestMaxBytes:    cfg.SocketRequestMaxBytes,
		QueuedMaxRequestBytes:    cfg.QueuedMaxRequestBytes,
		MaxInFlightPerConnection: cfg.MaxInFlightPerConnection,
		ConnectionsMaxIdle:       cfg.ConnectionsMaxIdle,
		RequestReadTimeout:       cfg.RequestReadTimeout,
		MaxConnections:           cfg.MaxConnections,
		MaxConnectionsPerIP:      cfg.MaxConnectionsPerIP,
		Logger:                   cfg.Logger,
		Meter:                    otel.Meter(meterName),
	}, b.apiTable()); err != nil {
		return nil, err // the table is wrong: a bug
	}
	if cfg.Tiering.ObjectStore != "" || cfg.Tiering.Store != nil {
		if b.tier, err = openTierManager(b, cfg.Tiering); err != nil {
			return nil, fmt.Errorf("tiered storage: %w", err)
		}
	}
	fail := func(err error) (*Broker, error) {
		if cerr := b.tier.close(); cerr != nil {
			b.log.Warn("closing the object store", "err", cerr)
		}
		return nil, err
	}
	if err := b.identify(); err != nil {
		_ = b.leaveCluster()
		return fail(err)
	}
	b.committer = replica.NewCommitter(b.log)
	b.sessions = newFetchSessionCache(cfg.MaxIncrementalFetchSessions)
	if err := b.joinCluster(); err != nil {
		_ = b.leaveCluster()
		b.committer.Close()
		return fail(err)
	}
	b.producers = txn.NewProducerIDs(b.producerIDBlock)
	if b.topics, err = openTopicRegistry(b, b.quorum.Node, b.admin); err != nil {
		_ = b.leaveCluster()
		b.committer.Close()
		return fail(fmt.Errorf("topics: %w", err))
	}
	if b.tier != nil {
		if err := b.tier.start(); err != nil {
			_ = b.tier.close()
			_ = b.topics.close()
			_ = b.leaveCluster()
			b.committer.Close()
			return nil, fmt.Errorf("tiered storage: %w", err)
		}
		b.tier.metrics = newTierMetrics(b.tier)
	}
	if b.groups, err = startGroupCoordinator(b); err != nil {
		_ = b.tier.close()
		_ = b.topics.close()
		_ = b.leaveCluster()
		b.committer.Close()
		return nil, fmt.Errorf("group coordinator: %w", err)
	}
	b.cleaner = startLogCleaner(b, cfg.Cleaner)
	b.topics.logHandleBudget(cfg.MaxConnections) // handles.go
	if b.partitionGauges, err = registerPartitionMetrics(otel.Meter(meterName), b); err != nil {
		b.log.Warn("per-partition metrics unavailable", "err", err) // metrics must never stop the broker
	}
	return b, nil
}

// openIdentity returns the data directory's cluster id: cluster (the
// quorum's, when known), else the bucket's, else its own. With an object
// store, the bucket's cluster metadata decides: a new data directory
// adopts the bucket's cluster id and, when bootstrapping a metadata log
// without a topics.json of its own, its topics (bootstrapTopics writes
// them as a topics.json for adoption), so the broker serves the history
// the bucket holds; an existing data directory of another cluster is
// refused rather than mixed into a bucket that is not its own.
func (b *Broker) openIdentity(cluster string, bootstrapping bool) (string, error) {
	if b.tier == nil {
		id, err := loadOrCreateMeta(b.cfg.DataDir, b.cfg.NodeID, cluster)
		if err == nil && cluster != "" && id != cluster {
			err = fmt.Errorf("data directory %s belongs to cluster %q, but the controller quorum is cluster %q", b.cfg.DataDir, id, cluster)
		}
		return id, err
	}
	md, err := b.tier.readBucketMetadata()
	if err != nil {
		return "", err
	}
	adopt := cluster
	if md != nil {
		if cluster != "" && md.ClusterID != cluster {
			return "", fmt.Errorf("object store %s holds cluster %q, but the controller quorum is cluster %q", b.tier.cfg.ObjectStore, md.ClusterID, cluster)
		}
		adopt = md.ClusterID
	}
	id, err := loadOrCreateMeta(b.cfg.DataDir, b.cfg.NodeID, adopt)
	if err != nil {
		return "", err
	}
	if md == nil {
		return id, nil
	}
	if md.ClusterID != id {
		return "", fmt.Errorf("object store %s holds cluster %q, but data directory %s belongs to cluster %q; point this broker at its own bucket (or prefix)",
			b.tier.cfg.ObjectStore, md.ClusterID, b.cfg.DataDir, id)
	}
	// Only a new metadata log of a data directory without a topics.json
	// of its own takes the bucket's topics: they become the log's first
	// batch (adopt.go).
	if _, err := os.Stat(filepath.Join(b.cfg.DataDir, topicsFile)); errors.Is(err, os.ErrNotExist) && bootstrapping {
		if err := bootstrapTopics(b.cfg.DataDir, md); err != nil {
			return "", fmt.Errorf("restoring topics from the object store: %w", err)
		}
		b.log.Info("restored topics from the object store's cluster metadata", "object_store", b.tier.cfg.ObjectStore,
			"cluster_id", id, "topics", len(md.Topics))
	}
	return id, nil
}
