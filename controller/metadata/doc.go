// Package metadata is the cluster's metadata: the records of the
// controller's replicated log, and the image they build.
//
// The controller quorum (package controller) is the single source of truth
// for brokers, topics, configs, partition assignments, leaders, leader
// epochs, ISRs and producer-id blocks. Its Raft log holds batches of
// records; every node applies the same batches in the same order with
// Image.Apply and so holds the same Image at the same offset. Brokers read
// the Image to answer Metadata and to learn what they lead; the controller
// reads it to decide what to write next.
//
// What belongs here: the record and image types, the one deterministic
// function that applies a batch (Image.Apply) with the invariants it
// enforces, and their encoding (codec.go). What does not: deciding which
// records to write (controller), Raft, networking, Kafka error codes.
//
// Images are immutable. Apply returns a new Image that shares every
// unchanged broker, topic and partition with the old one, so readers may
// hold an Image without locks for as long as they like, and a snapshot is a
// pointer. Nothing returned by an Image may be modified.
//
// Invariants Apply keeps (a batch that would break one is refused whole,
// and the Image is unchanged):
//   - a partition's leader is -1 or one of its ISR, and its ISR is a subset
//     of its replicas, without duplicates;
//   - leader epochs and partition epochs only grow; the leader epoch grows
//     exactly when the leader changes;
//   - a fenced broker leads no partition once the batch is applied;
//   - topic names and ids are unique; a topic's partition count only grows;
//   - producer-id blocks never overlap.
package metadata
