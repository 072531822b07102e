package quorum

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stratalog/strata/controller"
	"github.com/stratalog/strata/controller/metadata"
	"github.com/stratalog/strata/controller/rpc"
	"github.com/stratalog/strata/internal/memnet"
	"github.com/stratalog/strata/topicconfig"
	"github.com/stratalog/strata/wire"
)

// Config configures Start.
type Config struct {
	NodeID metadata.BrokerID
	// Dir holds the Raft state (raft.db, snapshots/).
	Dir string
	// Voters is controller.quorum.voters; nil runs a one-voter quorum of
	// this node, in-process.
	Voters []controller.Voter
	// Controller: this node has the controller role (it must then be one
	// of Voters, if any).
	Controller bool
	// Listen is the controller listener's address (controller-listen),
	// used when Voters is set. Listener, if not nil, is that listener
	// already bound (Start owns it).
	Listen   string
	Listener net.Listener
	Tuning   controller.Tuning
	// Machine and Bootstrap configure the Driver (controller role only).
	Machine   controller.MachineConfig
	Bootstrap func(ctx context.Context) ([]metadata.Record, error)
	// Wire configures the controller listener's Kafka server; its Name is
	// set to "controller", and zero limits take the broker's defaults
	// (socket.request.max.bytes 100 MiB, queued.max.requests 100,
	// connections.max.idle.ms 10 min, socket.request.read.timeout.ms
	// 60 s).
	Wire   wire.Config
	Logger *slog.Logger
}

// inProcessAddr is the single voter's address when the quorum is
// in-process.
const inProcessAddr = "in-process:9093"

// Quorum is this process's part of the quorum, running until Close.
type Quorum struct {
	Node   *controller.Node
	Driver *controller.Driver // nil unless the controller role

	log    *slog.Logger
	mux    *controller.Mux  // nil in-process
	mem    *memnet.Listener // in-process controller listener
	server *wire.Server     // nil unless the controller role
	served chan error
	stop   context.CancelFunc
	ran    chan struct{} // closed when the Driver's Run returns
}

// Start opens the Raft member and, for a controller, starts the Driver
// and the controller listener.
func Start(cfg Config) (_ *Quorum, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	q := &Quorum{log: log, served: make(chan error, 1), ran: make(chan struct{})}
	defer func() {
		if err != nil {
			q.Close(context.Background())
		}
	}()
	voters, voter := cfg.Voters, cfg.Controller
	var trans raft.Transport
	var kafkaLn net.Listener
	if len(voters) == 0 {
		if !cfg.Controller {
			return nil, errors.New("quorum: a node without the controller role needs the voters")
		}
		voters = []controller.Voter{{ID: cfg.NodeID, Addr: inProcessAddr}}
		_, trans = raft.NewInmemTransport(raft.ServerAddress(inProcessAddr))
		q.mem = memnet.Listen(inProcessAddr)
		kafkaLn = q.mem
	} else {
		ln := cfg.Listener
		if ln == nil {
			if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
				return nil, fmt.Errorf("quorum: controller listener: %w", err)
			}
		}
		q.mux = controller.NewMux(ln, controller.MuxConfig{Logger: log})
		trans = controller.NewNetworkTransport(q.mux.RaftLayer(), log)
		kafkaLn = q.mux.Listener()
	}
	q.Node, err = controller.OpenNode(controller.NodeConfig{
		NodeID: cfg.NodeID, Dir: cfg.Dir, Voters: voters, Voter: voter, Transport: trans, Logger: log, Tuning: cfg.Tuning,
	})
	if err != nil {
		return nil, err
	}
	if !cfg.Controller {
		close(q.ran)
		return q, nil
	}
	q.Driver, err = controller.NewDriver(controller.DriverConfig{Node: q.Node, Machine: cfg.Machine, Bootstrap: cfg.Bootstrap, Logger: log})
	if err != nil {
		return nil, err
	}
	wcfg := cfg.Wire
	wcfg.Name = "controller"
	if wcfg.Logger == nil {
		wcfg.Logger = log
	}
	if wcfg.SocketRequestMaxBytes <= 0 {
		wcfg.SocketRequestMaxBytes = 100 << 20
	}
	if wcfg.MaxInFlightPerConnection <= 0 {
		wcfg.MaxInFlightPerConnection = 100
	}
	if wcfg.ConnectionsMaxIdle <= 0 {
		wcfg.ConnectionsMaxIdle = 10 * time.Minute
	}
	if wcfg.RequestReadTimeout <= 0 {
		wcfg.RequestReadTimeout = time.Minute
	}
	defaults := cfg.Machine.TopicDefaults
	if defaults == (topicconfig.Config{}) {
		defaults = topicconfig.Default()
	}
	q.server, err = wire.NewServer(wcfg, rpc.New(q.Driver, defaults, log).APIs())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	q.stop = cancel
	go func() { defer close(q.ran); q.Driver.Run(ctx) }()
	go func() { q.served <- q.server.Serve(kafkaLn) }()
	log.Info("controller listener ready", "addr", q.Addr(), "node_id", cfg.NodeID, "voters", controller.FormatVoters(voters))
	return q, nil
}

// Addr is the controller listener's address (the in-process name when
// there is no port).
func (q *Quorum) Addr() string {
	if q.mux != nil {
		return q.mux.Addr().String()
	}
	return inProcessAddr
}

// Dialer reaches the active controller's listener: nil (TCP) in a
// cluster, the in-process listener's Dial for a one-voter quorum.
func (q *Quorum) Dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if q.mem == nil {
		return nil
	}
	return q.mem.Dial
}

// ClientOpts are the franz-go options a client of the active controller
// needs (Dialer).
func (q *Quorum) ClientOpts() []kgo.Opt {
	if d := q.Dialer(); d != nil {
		return []kgo.Opt{kgo.Dialer(d)}
	}
	return nil
}

// Close stops the controller listener (bounded by ctx), the Driver and
// the Raft member (a leader hands its leadership over first), then the
// listener.
func (q *Quorum) Close(ctx context.Context) error {
	var errs []error
	if q.server != nil {
		if err := q.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("controller listener: %w", err))
		}
		<-q.served // nil once Shutdown has drained (it closes the listener)
	}
	if q.stop != nil {
		q.stop()
		<-q.ran
	}
	if q.Node != nil {
		if err := q.Node.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if q.mux != nil {
		q.mux.Close()
	}
	return errors.Join(errs...)
}
