// Package replica is the partition layer: one Partition per topic-partition
// that this broker hosts, wrapping a segments.Log with the leader epoch,
// producer state (idempotence, via broker/txn), the high watermark and the
// group-commit fsync that makes acks=1/all durable.
//
// Every write to a partition's log, from Produce or from an internal
// coordinator, goes through Partition.Append.
//
// What does not belong here: batch parsing and files (segments), Kafka
// error codes and request handling (broker), producer-state rules (txn).
// Replication (followers, ISR) will live here later.
//
// Goroutines: the Committer runs one short-lived sync loop per partition
// with unsynced appends (at most maxSyncWorkers fsyncs at once); it fsyncs
// the partition and completes its waiters, and ends when nothing is left. A Partition starts a short-lived goroutine to write a producer
// snapshot in the background; Close waits for it. An offline partition runs
// one recovery goroutine (recovery.go) until it is online again or closed;
// Close stops it and waits for it.
//
// Invariants:
//   - Appends to a partition are totally ordered by its append lock; the
//     producer state always describes exactly the batches in its log.
//   - HighWatermark == the end offset covered by the last successful
//     fsync; it never moves backwards. Reads, ListOffsets by timestamp and
//     DeleteRecords are bounded by it, so nobody sees or deletes data that
//     a crash could still lose.
//   - Each Durable channel receives exactly one value: nil once its
//     batches are fsynced, the fsync error (ErrStorage) if the fsync
//     failed, or segments.ErrClosed if the partition closed first.
//   - After a failed fsync (or a failed write that could not be cut off)
//     the partition is offline (ErrStorage on Append) until its recovery
//     goroutine has reloaded the log from disk and cut it at the high
//     watermark; the fsync itself is never retried (the kernel may have
//     dropped the pages it reported). A roll that could not create its
//     files wrote nothing: the partition is offline (retriable
//     segments.ErrRollFailed) only until a roll succeeds.
//   - Producer state survives restarts: a snapshot is written at clean
//     Close and about once per segment's worth of appends; Open loads the
//     newest valid snapshot at or below the log end and replays the rest
//     of the log, so a retried batch is detected as a duplicate even after
//     kill -9.
package replica
