// Package broker serves the Kafka wire protocol for the partitions this
// node hosts.
//
// What belongs here: the listener and connections (server.go, conn.go), the
// request header and framing, one file per Kafka API key (00_produce.go,
// 01_fetch.go, 03_metadata.go, 18_api_versions.go, …) each opening with a
// comment on its supported versions, the topic registry (topics.go), fetch
// sessions, the partition and file-handle limits checked before a create
// (handles.go, leftovers.go), the readiness detail of offline partitions
// (offline.go), and the single translation from domain errors to Kafka error
// codes (errors.go), and the group coordinator's driver (group_driver.go,
// group_records.go), which owns the timers, the __consumer_offsets I/O and
// the deferred JoinGroup/SyncGroup replies around broker/group's state
// machine. What does not: segment files (package segments), the partition
// write path and producer state (broker/replica, broker/txn), group
// decisions (broker/group), topic config names, defaults and validation
// (package topicconfig).
//
// Goroutines: one accept loop; per connection a reader that decodes
// requests and runs their handlers one at a time in arrival order, and a
// writer that writes replies strictly in request order, waiting on deferred
// replies (acks=all produce, long-poll fetch, a JoinGroup waiting for its
// rebalance) without blocking the reader. The group coordinator adds a
// timer goroutine and, at startup, a loader goroutine (group_driver.go).
// The number of replies queued per connection is bounded
// (queued.max.requests); when full the reader stops reading.
//
// Every byte from a client is hostile until checked: frames take memory
// from the request budgets as their bytes arrive (budget.go) and must arrive
// within socket.request.read.timeout.ms; a body's shape is checked by
// broker/shape, at a cost linear in its size, before kmsg decodes it.
// Connections are capped broker-wide and per IP (conn.go, server.go).
//
// All encoding and decoding goes through franz-go's kmsg, except the Fetch
// response framing in fetchframe.go, which is computed by hand around record
// bytes that are written from segment files to the socket with sendfile.
package broker
