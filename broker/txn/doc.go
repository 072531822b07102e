// Package txn holds producer-id allocation and the per-partition state of
// idempotent producers; the transaction coordinator will live here too.
//
// What belongs here:
//   - ProducerIDs: the broker-wide producer id allocator behind
//     InitProducerId, persisted in blocks so ids never repeat.
//   - ProducerState: per partition, each producer's epoch and its last
//     BatchesToRetain (5) batches (sequence range and offsets), with Kafka's
//     rules: a repeat of one of those batches is a duplicate (acknowledged
//     with the original offsets, not written again); a sequence gap is
//     ErrOutOfOrderSequence; an older epoch is ErrInvalidProducerEpoch; a
//     new epoch must start at sequence 0; sequences wrap at MaxInt32;
//     batches without a producer id skip all checks; an unknown producer
//     may start at any sequence (Kafka 2.5+, KIP-360).
//   - Snapshots of ProducerState (`<20-digit offset>.snapshot`, format in
//     snapshot.go) and LoadProducerState, which picks the newest valid
//     snapshot at or below the log end and replays the log after it.
//
// What does not: the log itself (segments), locking and durability
// (broker/replica), mapping errors to Kafka codes (broker).
//
// Concurrency: ProducerIDs is safe for concurrent use. ProducerState and
// Appender are not; the owning replica.Partition serialises access under
// its append lock. No goroutines are started here.
//
// Invariant: after LoadProducerState, and after every append the partition
// makes, the state equals what replaying the whole log (from its start)
// would produce, except for producers dropped by ExpireBefore and batches
// removed by retention (whose producers are remembered, as in Kafka).
package txn
