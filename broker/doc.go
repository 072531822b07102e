// Package broker serves the Kafka wire protocol for the partitions this
// node hosts.
//
// What belongs here: the broker's lifecycle (broker.go, server.go), its API
// table (apis.go) and one file per Kafka API key (00_produce.go,
// 01_fetch.go, 03_metadata.go, …) each opening with a comment on its
// supported versions, the zero-copy Fetch response body (fetchframe.go, a
// wire.Framed written with sendfile), the broker's place in its cluster
// (cluster.go: the controller quorum it follows, in-process for a single
// node; its registration through broker/lifecycle; forward.go: admin
// changes sent to the active controller; adopt.go: a pre-quorum data
// directory's first batch), the topic registry that follows the metadata
// image (topics.go, topics_apply.go: partitions opened, given their role
// and epoch, deleted), fetch sessions, the partition and file-handle limits checked before a create
// (handles.go, leftovers.go), the readiness detail of offline partitions
// (offline.go), and the single translation from domain errors to Kafka error
// codes (errors.go), and the group coordinator's driver (group_driver.go,
// group_records.go), which owns the timers, the __consumer_offsets I/O and
// the deferred JoinGroup/SyncGroup replies around broker/group's state
// machine. What does not: the listener, connections, framing, request
// budgets and ApiVersions (package wire, shared with the controller's
// listener; New builds a wire.Server named "broker" from Config, so its
// metrics are strata.broker.*), segment files (package segments), the
// partition write path and producer state (broker/replica, broker/txn),
// group decisions (broker/group), topic config names, defaults and
// validation (package topicconfig).
//
// Goroutines: the wire server's (an accept loop; per connection a reader
// that runs handlers one at a time in arrival order, and a writer that
// writes replies strictly in request order). Handlers run on the reader,
// one at a time; what waits (acks=all produce, long-poll fetch, a JoinGroup
// waiting for its rebalance) does so in a deferred reply's goroutine, which
// completes promptly once the request's context ends, so the connection
// goes on reading meanwhile. The
// group coordinator adds a timer goroutine and, at startup, a loader
// goroutine (group_driver.go); the registry an apply loop that follows the
// metadata image (topics_apply.go); broker/lifecycle its heartbeat
// goroutine.
//
// A handler gets a body that package wire has already bounded (wire/shape)
// and decoded; input it refuses as hostile without closing the connection
// (a corrupt produced batch) is reported through wire.Conn.BadInput.
//
// All encoding and decoding goes through franz-go's kmsg, except the Fetch
// response framing in fetchframe.go, which is computed by hand around record
// bytes that are written from segment files to the socket with sendfile.
package broker
