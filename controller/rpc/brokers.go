package rpc

// The broker lifecycle: BrokerRegistration (key 62, v0–4), BrokerHeartbeat
// (key 63, v0–2) and AllocateProducerIDs (key 67, v0).
//
// BrokerRegistration: the broker's id, incarnation (new at each process
// start), cluster id (checked when not empty), listeners and rack. The
// answer is the broker's epoch: the offset of the batch that registered
// the incarnation, or the current epoch for a retry of the same
// incarnation. Features, log dirs, the ZooKeeper-migration flag and the
// previous epoch are accepted and ignored: Strata has no feature levels,
// one data directory per broker, and no ZooKeeper.
//
// BrokerHeartbeat: the broker's metadata offset, and whether it wants to be
// fenced or to shut down (controlled shutdown). The answer says whether it
// has caught up, is fenced, and may stop. Offline log dirs (v1+) are
// ignored: a broker whose data directory fails stops serving the
// partitions on it (issue 9's offline partitions) instead. A heartbeat
// from an unknown broker is STALE_BROKER_EPOCH, as Kafka answers: the
// broker registers again.
//
// AllocateProducerIDs: a block of producer ids for the broker at its
// current epoch.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/controller"
	"github.com/stratalog/strata/controller/metadata"
)

func (s *Server) brokerRegistration(ctx context.Context, c conn, req *kmsg.BrokerRegistrationRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	reg := controller.BrokerRegistration{
		ID:          metadata.BrokerID(req.BrokerID),
		Incarnation: metadata.UUID(req.IncarnationID),
		ClusterID:   req.ClusterID,
	}
	if req.Rack != nil {
		reg.Rack = *req.Rack
	}
	for _, l := range req.Listeners {
		reg.Listeners = append(reg.Listeners, metadata.Endpoint{Name: l.Name, Host: l.Host, Port: int32(l.Port), SecurityProtocol: l.SecurityProtocol})
	}
	epoch, err := s.d.RegisterBroker(ctx, reg)
	if err != nil {
		resp.ErrorCode, _ = errorOf(err)
		s.logRefusal("broker registration", reg.ID, err)
		return resp
	}
	resp.BrokerEpoch = epoch
	s.sessions.seen(c, incarnation{reg.ID, epoch})
	return resp
}

func (s *Server) brokerHeartbeat(ctx context.Context, c conn, req *kmsg.BrokerHeartbeatRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
	hb := controller.BrokerHeartbeat{
		ID:             metadata.BrokerID(req.BrokerID),
		Epoch:          req.BrokerEpoch,
		MetadataOffset: req.CurrentMetadataOffset,
		WantFence:      req.WantFence,
		WantShutdown:   req.WantShutdown,
	}
	res, err := s.d.Heartbeat(ctx, hb)
	if errors.Is(err, controller.ErrUnknownBroker) {
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		return resp
	}
	if err != nil {
		resp.ErrorCode, _ = errorOf(err)
		s.logRefusal("broker heartbeat", hb.ID, err)
		return resp
	}
	resp.IsCaughtUp, resp.IsFenced, resp.ShouldShutdown = res.CaughtUp, res.Fenced, res.ShouldShutdown
	s.sessions.seen(c, incarnation{hb.ID, hb.Epoch})
	return resp
}

func (s *Server) allocateProducerIDs(ctx context.Context, _ conn, req *kmsg.AllocateProducerIDsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
	block, err := s.d.AllocateProducerIDs(ctx, metadata.BrokerID(req.BrokerID), req.BrokerEpoch)
	if err != nil {
		resp.ErrorCode, _ = errorOf(err)
		s.logRefusal("allocate producer ids", metadata.BrokerID(req.BrokerID), err)
		return resp
	}
	resp.ProducerIDStart, resp.ProducerIDLen = block.First, int32(block.Size)
	return resp
}

// logRefusal logs a broker request refused for a reason other than this
// node not being the active controller (which brokers retry elsewhere).
func (s *Server) logRefusal(what string, id metadata.BrokerID, err error) {
	if errors.Is(err, controller.ErrNotLeader) {
		return
	}
	s.log.Warn("controller: "+what+" refused", "broker", id, "err", err)
}
