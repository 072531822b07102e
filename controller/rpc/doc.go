// Package rpc serves the controller's Kafka-protocol requests on the
// controller listener: brokers register and heartbeat (BrokerRegistration,
// BrokerHeartbeat), take producer-id blocks (AllocateProducerIDs), and
// forward the admin requests any broker accepts (CreateTopics,
// DeleteTopics, CreatePartitions, AlterConfigs, IncrementalAlterConfigs,
// ElectLeaders). Each handler translates the kmsg request into a
// controller.Driver call and the Driver's answer into the kmsg response;
// errors.go is the one place controller errors become Kafka error codes.
//
// A node that is not the active controller answers NOT_CONTROLLER, which
// brokers retry at the leader they learn from the Raft log.
//
// Liveness: a connection that carried a broker's successful registration
// or heartbeat belongs to that broker incarnation (sessions.go). When the
// last such connection of an incarnation closes — the broker process is
// gone: a crash, kill -9, or a clean exit after its controlled shutdown —
// the broker is fenced at once (Driver.BrokerGone); the session timeout is
// for brokers that fall silent without closing.
//
// The connection layer (framing, budgets, decoding, ordered replies) is
// package wire's; handlers that wait for a commit answer with deferred
// replies, so one broker's connection keeps reading meanwhile.
package rpc
