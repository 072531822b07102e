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

// exchange sends req at the highest version both sides speak (refusing,
// before sending, a controller below minVersion) and returns its answer,
// which must hold n entries (count tells).
func exchange[R kmsg.Response](ctx context.Context, a *remoteAdmin, req kmsg.Request, minVersion int16, n int, count func(R) int) (R, error) {
	var zero R
	c, err := a.client(ctx)
	if err != nil {
		return zero, err
	}
	name := kmsg.NameForKey(req.Key())
	_, maxV, ok := c.Versions(req.Key())
	if !ok || maxV < minVersion {
		return zero, fmt.Errorf("the active controller does not serve %s v%d or later", name, minVersion)
	}
	req.SetVersion(min(maxV, req.MaxVersion()))
	raw, err := c.Request(ctx, req)
	if err != nil {
		return zero, err
	}
	resp := raw.(R)
	if got := count(resp); got != n {
		return zero, fmt.Errorf("%s: %d answers for %d entries", name, got, n)
	}
	return resp, nil
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
	resp, err := exchange(ctx, a, req, 0, len(ts), func(r *kmsg.CreateTopicsResponse) int { return len(r.Topics) })
	if err != nil {
		return nil, err
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
	// v6 names topics by id.
	resp, err := exchange(ctx, a, req, 6, len(refs), func(r *kmsg.DeleteTopicsResponse) int { return len(r.Topics) })
	if err != nil {
		return nil, err
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
	resp, err := exchange(ctx, a, req, 0, len(reqs), func(r *kmsg.CreatePartitionsResponse) int { return len(r.Topics) })
	if err != nil {
		return nil, err
	}
	out := make([]controller.TopicResult, len(reqs))
	for i, st := range resp.Topics {
		out[i] = controller.TopicResult{Topic: st.Topic, Err: rpc.ErrorFor(st.ErrorCode, st.ErrorMessage)}
	}
	return out, nil
}

// AlterTopicConfigs sends the legacy AlterConfigs, which replaces a
// topic's whole override set: the only change the registry makes (it
// computes the new set itself, topics_apply.go).
func (a *remoteAdmin) AlterTopicConfigs(ctx context.Context, reqs []controller.TopicConfigChange) ([]controller.TopicResult, error) {
	req := kmsg.NewPtrAlterConfigsRequest()
	for _, r := range reqs {
		if !r.Replace {
			return nil, fmt.Errorf("forwarding config changes of topic %q: only a replacement of the whole override set is forwarded", r.Topic)
		}
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
	resp, err := exchange(ctx, a, req, 0, len(reqs), func(r *kmsg.AlterConfigsResponse) int { return len(r.Resources) })
	if err != nil {
		return nil, err
	}
	out := make([]controller.TopicResult, len(reqs))
	for i, sr := range resp.Resources {
		out[i] = controller.TopicResult{Topic: reqs[i].Topic, Err: rpc.ErrorFor(sr.ErrorCode, sr.ErrorMessage)}
	}
	return out, nil
}

func (a *remoteAdmin) AllocateProducerIDs(ctx context.Context, id metadata.BrokerID, epoch int64) (controller.ProducerIDBlock, error) {
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID, req.BrokerEpoch = int32(id), epoch
	resp, err := exchange(ctx, a, req, 0, 1, func(*kmsg.AllocateProducerIDsResponse) int { return 1 })
	if err != nil {
		return controller.ProducerIDBlock{}, err
	}
	if err := rpc.ErrorFor(resp.ErrorCode, nil); err != nil {
		return controller.ProducerIDBlock{}, err
	}
	return controller.ProducerIDBlock{First: resp.ProducerIDStart, Size: int64(resp.ProducerIDLen)}, nil
}
