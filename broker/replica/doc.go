// Package replica is the partition layer: one Partition per topic-partition
// that this broker hosts, wrapping a segments.Log with the leader epoch,
// producer state (idempotence, via broker/txn), the high watermark and the
// group-commit fsync that makes acks=1/all durable.
//
// Every write to a partition's log, from Produce or from an internal
// coordinator, goes through Partition.Append.
package replica
