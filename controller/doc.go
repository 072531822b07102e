// Package controller is Strata's controller quorum: the Raft group that
// owns the cluster's metadata (package controller/metadata) and decides
// broker liveness, partition placement and leadership.
//
// Parts, each usable and tested on its own:
//   - Machine (machine.go, placement.go): the decision logic as a
//     deterministic state machine. It takes requests (a broker registers,
//     heartbeats or goes away; create or delete topics; allocate producer
//     ids) and the time, and returns the batch of records to write; it
//     never does I/O and has no clock of its own. Liveness (the time of
//     each broker's last heartbeat) lives only in the active controller's
//     Machine, as in Kafka: a new active controller gives every broker a
//     full session timeout. Its files are machine.go (lifecycle,
//     elections, producer ids), machine_topics.go (admin requests),
//     placement.go and errors.go (sentinels, each naming its Kafka code).
//     Decisions are serialized by the driver: a Machine with a batch in
//     flight refuses decisions with ErrBusy until Applied; a batch whose
//     fate is unknown retires the Machine (a new one is built from the
//     committed image).
//   - Node (raft.go, fsm.go, transport.go): one member of the Raft group
//     (github.com/hashicorp/raft v1.7.2, log and stable store
//     github.com/hashicorp/raft-boltdb/v2 v2.3.1, file snapshots). Its FSM
//     applies committed batches to a metadata.Image; voters and
//     non-voting followers (broker-only nodes) hold the same Image.
//     Node owns the Image (fsm.go): raft's FSM goroutine is its only
//     writer; readers load it from an atomic pointer and wait on Changed.
//     Voters are static (controller.quorum.voters); broker-only nodes are
//     non-voters the leader adds.
//   - Mux (transport.go): the controller listener carries Raft and the
//     controller's Kafka RPCs on one port, routing each connection by its
//     first byte (RaftMarker for Raft; a Kafka frame's first byte is at
//     most 0x7f).
//
// What does not belong here: the brokers' use of the image (broker and
// its partition manager), Kafka error codes (the RPC layer maps this
// package's errors), topic-config parsing and topic-name rules (package
// topicconfig).
package controller
