package controller

import (
	"errors"
	"fmt"
)

// The Machine's sentinel errors (machine.go). Each names, in brackets, the
// Kafka error code the RPC layer answers it with; that mapping lives in
// the RPC layer, not here. A returned error wraps exactly one of these
// (errors.Is), and its Error() text is the message for the response: it
// names the topic, the broker or the counts at fault, and does not repeat
// the sentinel's own text.
var (
	// ErrBusy: a decision was asked for while the previous batch is not yet
	// applied (Machine.Applied). The driver serializes decisions, so this
	// is a driver bug [UNKNOWN_SERVER_ERROR].
	ErrBusy = errors.New("controller: a batch is still in flight")

	// ErrInvalidRequest: the request contradicts itself: a topic named
	// twice, both a partition count and an explicit assignment, a topic
	// named by both name and id [INVALID_REQUEST].
	ErrInvalidRequest = errors.New("invalid request")

	// ErrInvalidTopic: a topic name breaks Kafka's rules (1–249 characters
	// of [a-zA-Z0-9._-], not "." or "..") or collides with an existing
	// name once '.' and '_' are treated alike [INVALID_TOPIC_EXCEPTION].
	ErrInvalidTopic = errors.New("invalid topic")

	// ErrTopicExists: CreateTopics of a name in use [TOPIC_ALREADY_EXISTS].
	ErrTopicExists = errors.New("topic already exists")

	// ErrUnknownTopic: no topic by that name, or no such partition
	// [UNKNOWN_TOPIC_OR_PARTITION].
	ErrUnknownTopic = errors.New("unknown topic or partition")

	// ErrUnknownTopicID: no topic with that id [UNKNOWN_TOPIC_ID].
	ErrUnknownTopicID = errors.New("unknown topic id")

	// ErrInvalidPartitions: a partition count below 1, above
	// MaxPartitionsPerTopic, or not an increase [INVALID_PARTITIONS].
	ErrInvalidPartitions = errors.New("invalid partitions")

	// ErrInvalidReplicationFactor: a replication factor below 1, or more
	// than the brokers that can take a replica (registered, unfenced, not
	// shutting down); the message gives both counts
	// [INVALID_REPLICATION_FACTOR].
	ErrInvalidReplicationFactor = errors.New("invalid replication factor")

	// ErrInvalidReplicaAssignment: an explicit assignment with an empty or
	// duplicated replica list, an unregistered broker, replica lists of
	// different lengths, the wrong number of partitions, or no live broker
	// in a partition [INVALID_REPLICA_ASSIGNMENT].
	ErrInvalidReplicaAssignment = errors.New("invalid replica assignment")

	// ErrInvalidConfig: a topic config key or value topicconfig.Parse
	// refuses; the error also wraps the *topicconfig.Error [INVALID_CONFIG].
	ErrInvalidConfig = errors.New("invalid config")

	// ErrPolicyViolation: the request is valid but exceeds a limit: the
	// partitions one batch may create, max.broker.partitions, or a
	// MachineConfig.TopicConfigPolicy refusal that is not a config error
	// [POLICY_VIOLATION].
	ErrPolicyViolation = errors.New("policy violation")

	// ErrUnknownBroker: no broker with that id is registered
	// [BROKER_ID_NOT_REGISTERED]. Kafka answers a heartbeat from an
	// unregistered id with STALE_BROKER_EPOCH; the RPC layer may do the
	// same for BrokerHeartbeat. Either way the broker registers again.
	ErrUnknownBroker = errors.New("broker not registered")

	// ErrStaleBrokerEpoch: a request names an epoch that is not the
	// broker's current one: it comes from an earlier incarnation, or from
	// before a re-registration [STALE_BROKER_EPOCH].
	ErrStaleBrokerEpoch = errors.New("stale broker epoch")

	// ErrDuplicateBrokerRegistration: another incarnation holds the id and
	// its session is still valid (unfenced, heard from within the session
	// timeout); the new process retries until that session ends
	// [DUPLICATE_BROKER_REGISTRATION].
	ErrDuplicateBrokerRegistration = errors.New("duplicate broker registration")

	// ErrInvalidRegistration: a registration without listeners or
	// incarnation, or with a negative id or a malformed listener
	// [INVALID_REGISTRATION].
	ErrInvalidRegistration = errors.New("invalid broker registration")

	// ErrInconsistentClusterID: a registration names another cluster
	// [INCONSISTENT_CLUSTER_ID].
	ErrInconsistentClusterID = errors.New("inconsistent cluster id")

	// ErrElectionNotNeeded: the preferred replica already leads
	// [ELECTION_NOT_NEEDED].
	ErrElectionNotNeeded = errors.New("election not needed")

	// ErrPreferredLeaderNotAvailable: the preferred replica is not in the
	// ISR or cannot lead (fenced, shutting down, not registered)
	// [PREFERRED_LEADER_NOT_AVAILABLE].
	ErrPreferredLeaderNotAvailable = errors.New("preferred leader not available")

	// ErrProducerIDsExhausted: the next block would pass the largest
	// producer id [UNKNOWN_SERVER_ERROR, as Kafka].
	ErrProducerIDsExhausted = errors.New("producer ids exhausted")
)

// decisionError is a refusal with its sentinel (kind), a message for the
// client, and optionally the error that caused it (a *topicconfig.Error,
// or topicconfig.ValidateTopicName's).
type decisionError struct {
	kind  error
	msg   string
	cause error
}

func (e *decisionError) Error() string { return e.msg }

func (e *decisionError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

// refuse returns an error wrapping kind with a formatted message.
func refuse(kind error, format string, args ...any) error {
	return &decisionError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// refuseCause is refuse with the underlying error; the message is cause's.
func refuseCause(kind, cause error) error {
	return &decisionError{kind: kind, msg: cause.Error(), cause: cause}
}
