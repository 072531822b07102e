package rpc

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/stratalog/strata/controller"
	"github.com/stratalog/strata/topicconfig"
)

// Server answers the controller listener's requests through a Driver.
// Its handlers may run concurrently.
type Server struct {
	d   *controller.Driver
	log *slog.Logger
	// topicDefaults is the base of topics' effective configs in
	// CreateTopics responses: the cluster's broker-level topic defaults
	// (the MachineConfig's TopicDefaults).
	topicDefaults topicconfig.Config
	sessions      *sessions
}

// goneTimeout bounds the fencing of a broker whose connection closed.
const goneTimeout = 10 * time.Second

// New returns a Server for d.
func New(d *controller.Driver, topicDefaults topicconfig.Config, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{d: d, log: log, topicDefaults: topicDefaults}
	s.sessions = newSessions(s.brokerGone)
	return s
}

// brokerGone fences an incarnation whose last controller connection
// closed, in its own goroutine (the closing connection does not wait).
// Not being the active controller (any more), or the broker having
// re-registered or been fenced meanwhile, leaves nothing to do.
func (s *Server) brokerGone(inc incarnation) { go s.fenceGone(inc) }

func (s *Server) fenceGone(inc incarnation) {
	ctx, cancel := context.WithTimeout(context.Background(), goneTimeout)
	defer cancel()
	err := s.d.BrokerGone(ctx, inc.id, inc.epoch)
	switch {
	case err == nil, errors.Is(err, controller.ErrNotLeader), errors.Is(err, controller.ErrStaleBrokerEpoch),
		errors.Is(err, controller.ErrUnknownBroker), errors.Is(err, controller.ErrClosed):
	default:
		// The session timeout fences it later.
		s.log.Warn("controller: cannot fence a broker whose connection closed", "broker", inc.id, "epoch", inc.epoch, "err", err)
	}
}
