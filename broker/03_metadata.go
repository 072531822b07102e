package broker

// Metadata (key 3), versions 0–12.
//
// One broker: it is every partition's leader, its only replica and ISR, and
// the controller. The broker entry carries the advertised host:port (rack
// null). Topics:
//   - v0: an empty list means all topics; v1+: null means all, empty none.
//   - v10+: a topic may be named by id instead (null name); an unknown id is
//     UNKNOWN_TOPIC_ID.
//   - An unknown name is auto-created with num.partitions partitions when
//     auto.create.topics.enable is set and the request allows it (v4+ has
//     the flag; earlier versions always allow it, as in Kafka); otherwise
//     UNKNOWN_TOPIC_OR_PARTITION. An invalid name is INVALID_TOPIC_EXCEPTION
//     either way (Kafka's KafkaApis behaviour), and a name colliding with an
//     existing one under '.'/'_' equivalence is INVALID_TOPIC_EXCEPTION too.
//   - Created topics are ready at once (partitions open), so they are
//     returned without the LEADER_NOT_AVAILABLE Kafka sends while electing.
//
// Authorized-operations fields are -2147483648 ("not computed") unless
// requested (v8+); when requested, every operation is allowed (no ACLs), as
// Kafka reports without an authorizer.

import (
	"net"
	"os"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/controller/metadata"
	"github.com/stratalog/strata/wire"
)

// ACL operation codes (Kafka's AclOperation) for authorized-operations
// bitfields: without an authorizer Kafka reports every supported operation.
const (
	aclRead            = 3
	aclWrite           = 4
	aclCreate          = 5
	aclDelete          = 6
	aclAlter           = 7
	aclDescribe        = 8
	aclClusterAction   = 9
	aclDescribeConfigs = 10
	aclAlterConfigs    = 11
	aclIdempotentWrite = 12
	aclCreateTokens    = 13
	aclDescribeTokens  = 14

	// authorizedOpsOmitted is Kafka's "not requested" value (Integer.MIN_VALUE).
	authorizedOpsOmitted = -2147483648
)

func aclBits(ops ...int) int32 {
	var v int32
	for _, op := range ops {
		v |= 1 << op
	}
	return v
}

var (
	topicAuthorizedOps   = aclBits(aclRead, aclWrite, aclCreate, aclDelete, aclAlter, aclDescribe, aclDescribeConfigs, aclAlterConfigs)
	clusterAuthorizedOps = aclBits(aclCreate, aclAlter, aclDescribe, aclClusterAction, aclDescribeConfigs, aclAlterConfigs, aclIdempotentWrite, aclCreateTokens, aclDescribeTokens)
)

func (b *Broker) handleMetadata(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.MetadataRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	v := req.Version
	resp := req.ResponseKind().(*kmsg.MetadataResponse)

	for _, e := range b.liveBrokers() {
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port, mb.Rack = e.id, e.host, e.port, e.rack
		resp.Brokers = append(resp.Brokers, mb)
	}
	if v >= 2 {
		id := b.ClusterID()
		resp.ClusterID = &id
	}
	resp.ControllerID = b.activeController()
	resp.AuthorizedOperations = authorizedOpsOmitted
	if req.IncludeClusterAuthorizedOperations && v >= 8 && v <= 10 {
		resp.AuthorizedOperations = clusterAuthorizedOps
	}

	includeOps := req.IncludeTopicAuthorizedOperations && v >= 8
	allTopics := req.Topics == nil || (v == 0 && len(req.Topics) == 0)
	if allTopics {
		for _, t := range b.topics.all() {
			resp.Topics = append(resp.Topics, b.metadataTopic(t, includeOps))
		}
		return wire.Completed(resp), nil
	}

	autoCreate := b.cfg.AutoCreateTopics && (v < 4 || req.AllowAutoTopicCreation)
	seenNames := map[string]bool{}
	seenIDs := map[[16]byte]bool{}
	for _, rt := range req.Topics {
		if v >= 10 && rt.Topic == nil {
			// By id. Kafka answers a zero id with UNKNOWN_TOPIC_ID too.
			if seenIDs[rt.TopicID] {
				continue
			}
			seenIDs[rt.TopicID] = true
			if t := b.topics.getByID(rt.TopicID); t != nil {
				resp.Topics = append(resp.Topics, b.metadataTopic(t, includeOps))
				continue
			}
			mt := kmsg.NewMetadataResponseTopic()
			mt.ErrorCode = kerr.UnknownTopicID.Code
			mt.TopicID = rt.TopicID
			mt.AuthorizedOperations = authorizedOpsOmitted
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		name := ""
		if rt.Topic != nil {
			name = *rt.Topic
		}
		if seenNames[name] {
			continue
		}
		seenNames[name] = true
		t := b.topics.get(name)
		var err error
		if t == nil {
			if err = validateTopicName(name); err == nil {
				if autoCreate {
					t, err = b.topics.createTopic(name, b.defaultNumPartitions(), nil, false)
					if code, _ := adminErrorCode(err); code == kerr.TopicAlreadyExists.Code {
						// Created concurrently by another request.
						t, err = b.topics.get(name), nil
					}
				} else {
					err = kerr.UnknownTopicOrPartition
				}
			}
		}
		if t == nil || err != nil {
			if err == nil {
				err = kerr.UnknownTopicOrPartition
			}
			mt := kmsg.NewMetadataResponseTopic()
			mt.ErrorCode = metadataErrorCode(err)
			mt.Topic = &name
			mt.AuthorizedOperations = authorizedOpsOmitted
			if mt.ErrorCode == kerr.UnknownServerError.Code {
				b.log.Error("metadata: auto-creating topic", "topic", name, "err", err)
			}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, b.metadataTopic(t, includeOps))
	}
	return wire.Completed(resp), nil
}

// metadataErrorCode maps an error met while resolving a requested topic.
func metadataErrorCode(err error) int16 {
	if ke, ok := err.(*kerr.Error); ok {
		return ke.Code
	}
	code, _ := adminErrorCode(err)
	return code
}

// metadataTopic describes one existing topic.
func (b *Broker) metadataTopic(t *topic, includeOps bool) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.name
	mt.Topic = &name
	mt.TopicID = t.id
	mt.IsInternal = isInternalTopic(t.name)
	mt.AuthorizedOperations = authorizedOpsOmitted
	if includeOps {
		mt.AuthorizedOperations = topicAuthorizedOps
	}
	node := metadata.BrokerID(b.cfg.NodeID)
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, len(t.meta.Partitions))
	for i, ip := range t.meta.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = int32(i)
		mp.Leader, mp.LeaderEpoch = int32(ip.Leader), int32(ip.LeaderEpoch)
		if ip.Leader == node {
			// The epoch this broker leads at: the log's, which is the
			// image's unless the log holds a newer one (replica.BecomeLeader).
			if p, code := t.led(int32(i)); code == 0 {
				mp.LeaderEpoch = int32(p.LeaderEpoch())
			}
		}
		if ip.Leader == metadata.NoLeader {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mp.Replicas = brokerIDs(ip.Replicas)
		mp.ISR = brokerIDs(ip.ISR)
		mp.OfflineReplicas = []int32{}
		mt.Partitions[i] = mp
	}
	return mt
}

// advertisedHostPort is the address clients are told to connect to:
// cfg.Advertise, else cfg.Listen. A zero or missing port (":0" in tests) is
// taken from the live listener; an unspecified host (0.0.0.0, ::, empty)
// becomes this machine's host name, as Kafka does.
func (b *Broker) advertisedHostPort() (string, int32) {
	addr := b.cfg.Advertise
	if addr == "" {
		addr = b.cfg.Listen
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		host, portStr = addr, ""
	}
	port, _ := strconv.ParseInt(portStr, 10, 32)
	if a, ok := b.Addr().(*net.TCPAddr); ok && a != nil && port == 0 {
		port = int64(a.Port)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		} else {
			host = "localhost"
		}
	}
	return host, int32(port)
}

// defaultNumPartitions is num.partitions (1 when the Config left it zero).
func (b *Broker) defaultNumPartitions() int32 {
	if b.cfg.NumPartitions > 0 {
		return b.cfg.NumPartitions
	}
	return 1
}

// errUnexpectedBody reports a dispatch bug: the connection layer decoded a
// body of the wrong type for this handler. The connection is closed.
func errUnexpectedBody(r *wire.Request) error {
	return &unexpectedBodyError{key: r.Header.APIKey}
}

type unexpectedBodyError struct{ key int16 }

func (e *unexpectedBodyError) Error() string {
	return "handler got an unexpected request body for api key " + strconv.Itoa(int(e.key))
}

// brokerIDs converts broker ids for a response.
func brokerIDs(ids []metadata.BrokerID) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}
