package broker

// InitProducerId, API key 22, versions 0–4.
//
// Without a transactional id (idempotent producers) the answer is always a
// fresh producer id with epoch 0 from the cluster's allocator (blocks of
// 1000 from the active controller, recorded in the metadata log), exactly as
// Kafka's TransactionCoordinator does: the ProducerID/ProducerEpoch fields
// of v3+ (KIP-360) are ignored for non-transactional producers. Kafka
// does not bump an idempotent producer's epoch on the broker (the Java
// client bumps it locally), and this broker keeps no registry of issued
// ids that could prove a supplied id is the caller's: handing back a
// supplied id with epoch+1 could give one producer's id to another
// client, or reissue an id the allocator will hand out again after a
// wiped data directory — and fence the rightful owner. A fresh id has
// none of these risks and every client accepts it.
//
// With a transactional id: TRANSACTIONAL_ID_AUTHORIZATION_FAILED until the
// transaction coordinator exists. Kafka would answer NOT_COORDINATOR or
// COORDINATOR_NOT_AVAILABLE, which clients retry forever; the
// authorization error is non-retriable, so a transactional producer fails
// at once with a clear error.
//
// An allocator failure (no block from the controller: a failover, no
// quorum) is logged and answered with COORDINATOR_NOT_AVAILABLE, which
// clients retry.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleInitProducerID(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.InitProducerIDRequest)
	if !ok {
		return nil, fmt.Errorf("init producer id: unexpected body %T", r.Body)
	}
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return wire.Completed(resp), nil
	}
	id, epoch, err := b.producers.Next(r.Ctx)
	if err != nil {
		// The controller could not give a block (failover, no quorum):
		// retriable, as a coordinator that is not available.
		b.log.Warn("init producer id: allocating a producer id", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return wire.Completed(resp), nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, epoch
	return wire.Completed(resp), nil
}
