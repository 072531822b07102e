package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDescribeCluster(t *testing.T) {
	b := admNew(t)
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrDescribeClusterRequest()
		resp := admCall[*kmsg.DescribeClusterResponse](t, b, req, v)
		if resp.ErrorCode != 0 || resp.ClusterID != b.ClusterID() || resp.ControllerID != 1 || resp.ClusterAuthorizedOperations != -2147483648 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		if len(resp.Brokers) != 1 || resp.Brokers[0].Host != "broker.example" || resp.Brokers[0].Port != 19092 || resp.Brokers[0].NodeID != 1 {
			t.Fatalf("v%d brokers: %+v", v, resp.Brokers)
		}
		if v >= 1 && resp.EndpointType != 1 {
			t.Fatalf("v%d endpoint type %d", v, resp.EndpointType)
		}
		req.IncludeClusterAuthorizedOperations = true
		if resp := admCall[*kmsg.DescribeClusterResponse](t, b, req, v); resp.ClusterAuthorizedOperations != clusterAuthorizedOps {
			t.Fatalf("v%d requested ops: %d", v, resp.ClusterAuthorizedOperations)
		}
	}
	req := kmsg.NewPtrDescribeClusterRequest()
	req.EndpointType = 2
	if resp := admCall[*kmsg.DescribeClusterResponse](t, b, req, 1); resp.ErrorCode != kerr.UnsupportedEndpointType.Code {
		t.Fatalf("controllers endpoint: %+v", resp)
	}
}
