// Package quorum starts this process's part of the controller quorum: its
// Raft member (a voter for the controller role, a non-voting follower for
// a broker-only node) and, for a controller, the Driver and the Kafka
// server of the controller listener (controller/rpc over package wire).
//
// Over TCP, one controller listener carries Raft and the controller's
// Kafka requests (controller.Mux). With no voters configured, a node is a
// one-voter quorum by itself: Raft runs over an in-memory transport and
// the controller's Kafka server over an in-process listener
// (internal/memnet), so no port is opened and the broker still reaches
// its controller through the same client and server code a cluster uses.
package quorum
