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
//     full session timeout.
//   - Node (raft.go, fsm.go, transport.go): one member of the Raft group
//     (github.com/hashicorp/raft v1.7.2, log and stable store
//     github.com/hashicorp/raft-boltdb/v2 v2.3.1, file snapshots). Its FSM
//     applies committed batches to a metadata.Image; voters and
//     non-voting followers (broker-only nodes) hold the same Image.
//
// What does not belong here: the brokers' use of the image (broker and
// its partition manager), Kafka error codes (the RPC layer maps this
// package's errors), topic-config parsing (package topicconfig).
package controller
