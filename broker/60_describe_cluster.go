package broker

// DescribeCluster (key 60), versions 0–1.
//
// The unfenced brokers of the metadata image (this one always, at its
// advertised address; the others at their registered PLAINTEXT listener),
// with their racks; the active controller; the cluster id. v1's endpoint_type 1 (brokers) is served;
// 2 (controllers) is UNSUPPORTED_ENDPOINT_TYPE, as a Kafka broker answers.
// cluster_authorized_operations is -2147483648 unless requested; then every
// cluster operation (no ACLs), as Kafka reports without an authorizer.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleDescribeCluster(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.DescribeClusterRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = 1
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.EndpointType = req.EndpointType
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		msg := "Strata brokers answer DescribeCluster for endpoint type 1 (brokers) only."
		resp.ErrorMessage = &msg
		return wire.Completed(resp), nil
	}
	resp.ClusterID = b.ClusterID()
	resp.ControllerID = b.activeController()
	for _, e := range b.liveBrokers() {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port, db.Rack = e.id, e.host, e.port, e.rack
		resp.Brokers = append(resp.Brokers, db)
	}
	resp.ClusterAuthorizedOperations = authorizedOpsOmitted
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterAuthorizedOps
	}
	return wire.Completed(resp), nil
}
