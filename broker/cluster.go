package broker

// The broker in its cluster: the metadata image it follows, the active
// controller it asks for topic changes, and its registration. A broker
// given no quorum (Config.Cluster.Quorum nil) runs a one-voter quorum of
// its own, in-process, in <data-dir>/metadata: a single node is a cluster
// of one, with no controller port.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/stratalog/strata/broker/lifecycle"
	"github.com/stratalog/strata/controller"
	"github.com/stratalog/strata/controller/metadata"
	"github.com/stratalog/strata/controller/quorum"
	"github.com/stratalog/strata/topicconfig"
	"github.com/stratalog/strata/wire"
)

// ClusterConfig places the broker in its cluster.
type ClusterConfig struct {
	// Quorum is this node's part of the controller quorum, started by the
	// caller. Nil: the broker starts it (and closes it at shutdown): with
	// Voters (controller.quorum.voters) a member of that quorum with its
	// controller listener on ControllerListen (controller-listen), else a
	// one-voter quorum in-process.
	Quorum           *quorum.Quorum
	Voters           []controller.Voter
	ControllerListen string
	// ControllerWire limits the controller listener's connections (the
	// broker's own limits, by default in internal/config).
	ControllerWire wire.Config
	// Admin is the active controller's topic operations; nil means this
	// node's Driver while it is the active controller, else the active
	// controller's listener (forward.go).
	Admin Admin
	// Rack is broker.rack; HeartbeatInterval broker.heartbeat.interval.ms
	// (2 s); SessionTimeout broker.session.timeout.ms (9 s) and
	// AutoLeaderRebalance, LeaderImbalanceCheckInterval configure the
	// in-process controller.
	Rack                         string
	HeartbeatInterval            time.Duration
	SessionTimeout               time.Duration
	AutoLeaderRebalance          *bool
	LeaderImbalanceCheckInterval time.Duration
}

// imageSource is the metadata image as this node has applied it
// (*controller.Node).
type imageSource interface {
	Image() *metadata.Image
	Changed() <-chan struct{}
}

// Admin is the active controller's topic operations (*controller.Driver
// on a controller node).
type Admin interface {
	CreateTopics(ctx context.Context, topics []controller.NewTopic) ([]controller.CreateTopicResult, error)
	DeleteTopics(ctx context.Context, refs []controller.TopicRef) ([]controller.DeleteTopicResult, error)
	CreatePartitions(ctx context.Context, reqs []controller.NewPartitions) ([]controller.TopicResult, error)
	AlterTopicConfigs(ctx context.Context, reqs []controller.TopicConfigChange) ([]controller.TopicResult, error)
	// AllocateProducerIDs gives broker id (at its registration epoch) the
	// next block of producer ids of the cluster.
	AllocateProducerIDs(ctx context.Context, id metadata.BrokerID, epoch int64) (controller.ProducerIDBlock, error)
}

var _ Admin = (*controller.Driver)(nil)

// registrationTimeout bounds the wait, at start, for the broker to be
// registered and unfenced.
const registrationTimeout = time.Minute

// metadataDir holds the in-process quorum's Raft state, under the data
// directory.
const metadataDir = "metadata"

// inProcessTuning: with one voter there is no peer to wait for, so the
// election after a start can be quick.
var inProcessTuning = controller.Tuning{HeartbeatTimeout: 50 * time.Millisecond, CommitTimeout: 5 * time.Millisecond}

// identify settles the cluster id and the quorum. A single node (no
// voters, no quorum given) reads its data directory's id, then starts its
// in-process quorum, which that id bootstraps. A node of a cluster starts
// its member of the quorum (voters given) or takes the one given, waits
// until the cluster is bootstrapped (by the first active controller, from
// its own data directory) and takes the cluster's id.
func (b *Broker) identify() error {
	cc := b.cfg.Cluster
	node := metadata.BrokerID(b.cfg.NodeID)
	dir := filepath.Join(b.cfg.DataDir, metadataDir)
	if cc.Quorum == nil && len(cc.Voters) == 0 {
		_, noLog := os.Stat(dir)
		var err error
		if b.clusterID, err = b.openIdentity("", errors.Is(noLog, os.ErrNotExist)); err != nil {
			return err
		}
		mc := b.machineConfig()
		mc.InProcess = true // a restarted node need not wait out its previous incarnation's session
		q, err := quorum.Start(quorum.Config{
			NodeID: node, Dir: dir, Controller: true, Tuning: inProcessTuning, Machine: mc, Logger: b.log, Wire: cc.ControllerWire,
			Bootstrap: func(context.Context) ([]metadata.Record, error) {
				return adoptionRecords(b.cfg.DataDir, node, b.clusterID)
			},
		})
		if err != nil {
			return fmt.Errorf("metadata quorum: %w", err)
		}
		b.quorum, b.ownQuorum = q, q
		return nil
	}
	q := cc.Quorum
	if q == nil {
		var err error
		q, err = quorum.Start(quorum.Config{
			NodeID: node, Dir: dir, Voters: cc.Voters, Controller: true, Listen: cc.ControllerListen, Machine: b.machineConfig(), Logger: b.log,
			Wire: cc.ControllerWire,
			Bootstrap: func(context.Context) ([]metadata.Record, error) {
				// The first active controller of a new cluster names it
				// after its own data directory (or bucket).
				id, err := b.openIdentity("", true)
				if err != nil {
					return nil, err
				}
				return adoptionRecords(b.cfg.DataDir, node, id)
			},
		})
		if err != nil {
			return fmt.Errorf("metadata quorum: %w", err)
		}
		b.ownQuorum = q
	}
	b.quorum = q
	cluster, err := b.quorumClusterID()
	if err != nil {
		return err
	}
	b.clusterID, err = b.openIdentity(cluster, false)
	return err
}

// producerIDBlock asks the active controller for the next block of
// producer ids (txn.BlockSource).
func (b *Broker) producerIDBlock(ctx context.Context) (int64, int64, error) {
	epoch := b.lifecycle.State().Epoch
	blk, err := b.admin.AllocateProducerIDs(ctx, metadata.BrokerID(b.cfg.NodeID), epoch)
	if err != nil {
		return 0, 0, fmt.Errorf("producer id block from the controller (broker epoch %d): %w", epoch, err)
	}
	b.log.Info("producer id block", "first", blk.First, "size", blk.Size, "broker_epoch", epoch)
	return blk.First, blk.Size, nil
}

// joinCluster registers the broker with the active controller and waits
// until it is unfenced.
func (b *Broker) joinCluster() error {
	cc := b.cfg.Cluster
	q := b.quorum
	b.admin = cc.Admin
	if b.admin == nil {
		b.remoteAdmin = &remoteAdmin{node: q.Node, dial: q.Dialer(), clientID: fmt.Sprintf("strata-broker-%d", b.cfg.NodeID)}
		b.admin = &clusterAdmin{local: q.Driver, remote: b.remoteAdmin}
	}
	host, port := b.registeredHostPort()
	lc, err := lifecycle.Start(lifecycle.Config{
		NodeID: metadata.BrokerID(b.cfg.NodeID), ClusterID: b.clusterID, Rack: cc.Rack, Node: q.Node,
		Listeners:         []metadata.Endpoint{{Name: "PLAINTEXT", Host: host, Port: port}},
		HeartbeatInterval: cc.HeartbeatInterval, ClientOpts: q.ClientOpts(), Logger: b.log,
	})
	if err != nil {
		return err
	}
	b.lifecycle = lc
	ctx, cancel := context.WithTimeout(context.Background(), registrationTimeout)
	defer cancel()
	if err := lc.WaitUnfenced(ctx); err != nil {
		return fmt.Errorf("registering with the controller (%s): %w", q.Addr(), err)
	}
	return b.retireTopicsFile(q.Node.Image())
}

// leaveCluster ends the broker's membership: a controlled shutdown
// (bounded by controlledShutdownTimeout: the controller moves its
// leaderships away and fences it, so a restart registers at once; a
// quorum that has lost its majority cannot, and the broker goes anyway),
// then no more heartbeats, then, if the broker started it, its quorum
// member (bounded by quorumCloseTimeout).
func (b *Broker) leaveCluster() error {
	if b.remoteAdmin != nil {
		b.remoteAdmin.close()
	}
	if b.lifecycle != nil {
		sctx, cancel := context.WithTimeout(context.Background(), controlledShutdownTimeout)
		if err := b.lifecycle.Shutdown(sctx); err != nil {
			b.log.Warn("controlled shutdown not completed; the controller fences this broker when its connection closes", "err", err)
		}
		cancel()
		b.lifecycle.Close()
	}
	if b.ownQuorum != nil {
		ctx, cancel := context.WithTimeout(context.Background(), quorumCloseTimeout)
		defer cancel()
		return b.ownQuorum.Close(ctx)
	}
	return nil
}

// quorumCloseTimeout bounds the end of the controller listener's
// connections when the quorum member closes.
const quorumCloseTimeout = 5 * time.Second

// controlledShutdownTimeout bounds the wait for the controller to let the
// broker go (it takes a heartbeat or two when the quorum is healthy).
const controlledShutdownTimeout = 5 * time.Second

// machineConfig is the in-process controller's configuration, from the
// broker's.
func (b *Broker) machineConfig() controller.MachineConfig {
	mc := controller.DefaultMachineConfig()
	cc := b.cfg.Cluster
	if cc.SessionTimeout > 0 {
		mc.SessionTimeout = cc.SessionTimeout
	}
	if cc.AutoLeaderRebalance != nil {
		mc.AutoLeaderRebalance = *cc.AutoLeaderRebalance
	}
	if cc.LeaderImbalanceCheckInterval > 0 {
		mc.LeaderImbalanceCheckInterval = cc.LeaderImbalanceCheckInterval
	}
	mc.NumPartitions = b.defaultNumPartitions()
	if b.cfg.DefaultReplicationFactor > 0 {
		mc.DefaultReplicationFactor = b.cfg.DefaultReplicationFactor
	}
	mc.MaxBrokerPartitions = b.maxBrokerPartitions()
	mc.TopicDefaults = b.topicDefaults()
	mc.TopicConfigPolicy = func(_ string, cur *topicconfig.Config, next topicconfig.Config, overrides map[string]string) error {
		return b.checkTieringConfig(cur, next, overrides)
	}
	return mc
}

// registeredHostPort is the address the broker registers for the
// cluster's clients: its advertised one (advertisedHostPort: an
// unspecified host becomes the host name), with Kafka's default port when
// no port is known yet (a broker built without a listener, in tests).
func (b *Broker) registeredHostPort() (string, int32) {
	host, port := b.advertisedHostPort()
	if port <= 0 || port > 65535 {
		port = 9092
	}
	return host, port
}

// brokerAddr returns the address clients reach broker id at: this
// broker's advertised address, or another's PLAINTEXT listener as it
// registered it; false for a broker that is not registered or fenced.
func (b *Broker) brokerAddr(id metadata.BrokerID) (string, int32, bool) {
	if id == metadata.BrokerID(b.cfg.NodeID) {
		host, port := b.advertisedHostPort()
		return host, port, true
	}
	br := b.quorum.Node.Image().Broker(id)
	if br == nil || br.Fenced {
		return "", 0, false
	}
	for _, l := range br.Listeners {
		if l.Name == "PLAINTEXT" {
			return l.Host, l.Port, true
		}
	}
	return "", 0, false
}

// brokerEndpoint is a broker as Metadata and DescribeCluster list it.
type brokerEndpoint struct {
	id   int32
	host string
	port int32
	rack *string
}

// liveBrokers returns the unfenced brokers of the image (this one always,
// at its advertised address), by id, for Metadata and DescribeCluster.
func (b *Broker) liveBrokers() []brokerEndpoint {
	self := metadata.BrokerID(b.cfg.NodeID)
	brokers := b.quorum.Node.Image().Brokers()
	if !slices.ContainsFunc(brokers, func(br *metadata.Broker) bool { return br.ID == self }) {
		brokers = append(brokers, &metadata.Broker{ID: self})
	}
	var out []brokerEndpoint
	for _, br := range brokers {
		host, port, ok := b.brokerAddr(br.ID)
		if !ok {
			continue
		}
		e := brokerEndpoint{id: int32(br.ID), host: host, port: port}
		if br.Rack != "" {
			e.rack = &br.Rack
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, c brokerEndpoint) int { return int(a.id - c.id) })
	return out
}

// activeController is the active controller's id as this node knows it,
// -1 if none is known.
func (b *Broker) activeController() int32 {
	if id, _, ok := b.quorum.Node.Leader(); ok {
		return int32(id)
	}
	return -1
}

// quorumClusterID is the cluster id of the broker's quorum, waiting for
// the cluster to be bootstrapped.
func (b *Broker) quorumClusterID() (string, error) {
	q := b.quorum
	ctx, cancel := context.WithTimeout(context.Background(), registrationTimeout)
	defer cancel()
	for {
		ch := q.Node.Changed()
		if id := q.Node.Image().ClusterID(); id != "" {
			return id, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return "", fmt.Errorf("the controller quorum has not bootstrapped the cluster after %v (is a quorum of its voters running?)", registrationTimeout)
		}
	}
}
