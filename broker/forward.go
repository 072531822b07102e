package broker

// Admin changes go to the active controller: the Driver of this node when
// it is the active controller, else the active controller's listener (the
// Raft leader's address), over one wire.Client that follows the
// leadership. The remote path translates the Driver's calls to the Kafka
// requests controller/rpc serves and their answers back (rpc.ErrorFor
// gives back the controller's errors, so both paths fail alike).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/controller"
	"github.com/stratalog/strata/controller/metadata"
	"github.com/stratalog/strata/controller/rpc"
	"github.com/stratalog/strata/wire"
)

// clusterAdmin is Admin for a broker of a cluster.
type clusterAdmin struct {
	local  *controller.Driver // nil on a broker-only node
	remote *remoteAdmin
}

var _ Admin = (*clusterAdmin)(nil)

// pick returns the local Driver while it is active, else the remote.
func (a *clusterAdmin) pick() Admin {
	if a.local != nil && a.local.Active() {
		return a.local
	}
	return a.remote
}

func (a *clusterAdmin) CreateTopics(ctx context.Context, ts []controller.NewTopic) ([]controller.CreateTopicResult, error) {
	return retryRemote(a, func(ad Admin) ([]controller.CreateTopicResult, error) { return ad.CreateTopics(ctx, ts) })
}

func (a *clusterAdmin) DeleteTopics(ctx context.Context, refs []controller.TopicRef) ([]controller.DeleteTopicResult, error) {
	return retryRemote(a, func(ad Admin) ([]controller.DeleteTopicResult, error) { return ad.DeleteTopics(ctx, refs) })
}

func (a *clusterAdmin) CreatePartitions(ctx context.Context, reqs []controller.NewPartitions) ([]controller.TopicResult, error) {
	return retryRemote(a, func(ad Admin) ([]controller.TopicResult, error) { return ad.CreatePartitions(ctx, reqs) })
}

func (a *clusterAdmin) AlterTopicConfigs(ctx context.Context, reqs []controller.TopicConfigChange) ([]controller.TopicResult, error) {
	return retryRemote(a, func(ad Admin) ([]controller.TopicResult, error) { return ad.AlterTopicConfigs(ctx, reqs) })
}

func (a *clusterAdmin) AllocateProducerIDs(ctx context.Context, id metadata.BrokerID, epoch int64) (controller.ProducerIDBlock, error) {
	return retryRemote(a, func(ad Admin) (controller.ProducerIDBlock, error) { return ad.AllocateProducerIDs(ctx, id, epoch) })
}

// retryRemote calls fn on the picked Admin; a local Driver that stopped
// being active meanwhile (NOT_CONTROLLER before anything was proposed)
// hands the call to the remote one.
func retryRemote[R any](a *clusterAdmin, fn func(Admin) (R, error)) (R, error) {
	ad := a.pick()
	res, err := fn(ad)
	var nl *controller.NotLeaderError
	if ad != Admin(a.remote) && errors.As(err, &nl) && !errors.Is(err, controller.ErrLeadershipLost) {
		return fn(a.remote)
	}
	return res, err
}

// remoteAdmin sends admin calls to the active controller's listener.
type remoteAdmin struct {
	node     *controller.Node
	dial     func(ctx context.Context, network, addr string) (net.Conn, error) // nil: TCP
	clientID string

	mu struct {
		sync.Mutex
		addr   string
		client *wire.Client
	}
}

// client returns a client to the active controller, dialling when the
// leadership moved or the last client broke.
func (a *remoteAdmin) client(ctx context.Context) (*wire.Client, error) {
	_, addr, ok := a.node.Leader()
	if !ok {
		return nil, &controller.NotLeaderError{Leader: metadata.NoLeader}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.client != nil && a.mu.addr == addr && a.mu.client.Err() == nil {
		return a.mu.client, nil
	}
	if a.mu.client != nil {
		a.mu.client.Close()
		a.mu.client = nil
	}
	c, err := wire.Dial(ctx, wire.ClientConfig{Addr: addr, ClientID: a.clientID, Dial: a.dial})
	if err != nil {
		return nil, fmt.Errorf("the active controller at %s: %w", addr, err)
	}
	a.mu.client, a.mu.addr = c, addr
	return c, nil
}

func (a *remoteAdmin) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.client != nil {
		a.mu.client.Close()
		a.mu.client = nil
	}
}

// send sends req at the highest version both sides speak.
func (a *remoteAdmin) send(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	c, err := a.client(ctx)
	if err != nil {
		return nil, err
	}
	_, maxV, ok := c.Versions(req.Key())
	if !ok {
		return nil, fmt.Errorf("the active controller does not serve %s", kmsg.NameForKey(req.Key()))
	}
	req.SetVersion(min(maxV, req.MaxVersion()))
	return c.Request(ctx, req)
}

func (a *remoteAdmin) CreateTopics(ctx context.Context, ts []controller.NewTopic) ([]controller.CreateTopicResult, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	for _, t := range ts {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t.Name, t.NumPartitions, t.ReplicationFactor
		for i, replicas := range t.Assignment {
			ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			ra.Partition = int32(i)
			ra.Replicas = brokerIDs(replicas)
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
		}
		for k, v := range t.Configs {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, &v
			rt.Configs = append(rt.Configs, c)
		}
		req.ValidateOnly = req.ValidateOnly || t.ValidateOnly
		req.Topics = append(req.Topics, rt)
	}
	raw, err := a.send(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := raw.(*kmsg.CreateTopicsResponse)
	if len(resp.Topics) != len(ts) {
		return nil, fmt.Errorf("CreateTopics: %d answers for %d topics", len(resp.Topics), len(ts))
	}
	out := make([]controller.CreateTopicResult, len(ts))
	for i, st := range resp.Topics {
		out[i] = controller.CreateTopicResult{Name: st.Topic, ID: metadata.UUID(st.TopicID), NumPartitions: st.NumPartitions,
			ReplicationFactor: st.ReplicationFactor, Err: rpc.ErrorFor(st.ErrorCode, st.ErrorMessage)}
	}
	return out, nil
}

func (a *remoteAdmin) DeleteTopics(ctx context.Context, refs []controller.TopicRef) ([]controller.DeleteTopicResult, error) {
	req := kmsg.NewPtrDeleteTopicsRequest()
	for _, ref := range refs {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		if ref.Name != "" {
			rt.Topic = &ref.Name
		}
		rt.TopicID = ref.ID
		req.Topics = append(req.Topics, rt)
	}
	raw, err := a.send(ctx, req)
	if err != nil {
		return nil, err
	}
	if req.Version < 6 {
		return nil, errors.New("the active controller does not take DeleteTopics by topic id (v6)")
	}
	resp := raw.(*kmsg.DeleteTopicsResponse)
	if len(resp.Topics) != len(refs) {
		return nil, fmt.Errorf("DeleteTopics: %d answers for %d topics", len(resp.Topics), len(refs))
	}
	out := make([]controller.DeleteTopicResult, len(refs))
	for i, st := range resp.Topics {
		out[i] = controller.DeleteTopicResult{ID: metadata.UUID(st.TopicID), Err: rpc.ErrorFor(st.ErrorCode, st.ErrorMessage)}
		if st.Topic != nil {
			out[i].Name = *st.Topic
		}
	}
	return out, nil
}

func (a *remoteAdmin) CreatePartitions(ctx context.Context, reqs []controller.NewPartitions) ([]controller.TopicResult, error) {
	req := kmsg.NewPtrCreatePartitionsRequest()
	for _, r := range reqs {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = r.Topic, r.Count
		for _, replicas := range r.Assignment {
			ra := kmsg.NewCreatePartitionsRequestTopicAssignment()
			ra.Replicas = brokerIDs(replicas)
			rt.Assignment = append(rt.Assignment, ra)
		}
		req.ValidateOnly = req.ValidateOnly || r.ValidateOnly
		req.Topics = append(req.Topics, rt)
	}
	raw, err := a.send(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := raw.(*kmsg.CreatePartitionsResponse)
	if len(resp.Topics) != len(reqs) {
		return nil, fmt.Errorf("CreatePartitions: %d answers for %d topics", len(resp.Topics), len(reqs))
	}
	out := make([]controller.TopicResult, len(reqs))
	for i, st := range resp.Topics {
		out[i] = controller.TopicResult{Topic: st.Topic, Err: rpc.ErrorFor(st.ErrorCode, st.ErrorMessage)}
	}
	return out, nil
}

// AlterTopicConfigs sends IncrementalAlterConfigs (the legacy replacing
// AlterConfigs for a Replace change).
func (a *remoteAdmin) AlterTopicConfigs(ctx context.Context, reqs []controller.TopicConfigChange) ([]controller.TopicResult, error) {
	var codes []int16
	var msgs []*string
	if len(reqs) > 0 && reqs[0].Replace {
		req := kmsg.NewPtrAlterConfigsRequest()
		for _, r := range reqs {
			rr := kmsg.NewAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, r.Topic
			for _, c := range r.Changes {
				rc := kmsg.NewAlterConfigsRequestResourceConfig()
				rc.Name, rc.Value = c.Key, &c.Value
				rr.Configs = append(rr.Configs, rc)
			}
			req.ValidateOnly = req.ValidateOnly || r.ValidateOnly
			req.Resources = append(req.Resources, rr)
		}
		raw, err := a.send(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, sr := range raw.(*kmsg.AlterConfigsResponse).Resources {
			codes, msgs = append(codes, sr.ErrorCode), append(msgs, sr.ErrorMessage)
		}
	} else {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		for _, r := range reqs {
			rr := kmsg.NewIncrementalAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, r.Topic
			for _, c := range r.Changes {
				rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
				rc.Name, rc.Op, rc.Value = c.Key, kmsg.IncrementalAlterConfigOp(c.Op), &c.Value
				rr.Configs = append(rr.Configs, rc)
			}
			req.ValidateOnly = req.ValidateOnly || r.ValidateOnly
			req.Resources = append(req.Resources, rr)
		}
		raw, err := a.send(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, sr := range raw.(*kmsg.IncrementalAlterConfigsResponse).Resources {
			codes, msgs = append(codes, sr.ErrorCode), append(msgs, sr.ErrorMessage)
		}
	}
	if len(codes) != len(reqs) {
		return nil, fmt.Errorf("altering configs: %d answers for %d topics", len(codes), len(reqs))
	}
	out := make([]controller.TopicResult, len(reqs))
	for i, r := range reqs {
		out[i] = controller.TopicResult{Topic: r.Topic, Err: rpc.ErrorFor(codes[i], msgs[i])}
	}
	return out, nil
}

func (a *remoteAdmin) AllocateProducerIDs(ctx context.Context, id metadata.BrokerID, epoch int64) (controller.ProducerIDBlock, error) {
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID, req.BrokerEpoch = int32(id), epoch
	raw, err := a.send(ctx, req)
	if err != nil {
		return controller.ProducerIDBlock{}, err
	}
	resp := raw.(*kmsg.AllocateProducerIDsResponse)
	if err := rpc.ErrorFor(resp.ErrorCode, nil); err != nil {
		return controller.ProducerIDBlock{}, err
	}
	return controller.ProducerIDBlock{First: resp.ProducerIDStart, Size: int64(resp.ProducerIDLen)}, nil
}
