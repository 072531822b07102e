// Package broker serves the Kafka wire protocol for the partitions this
// node hosts.
//
// What belongs here: the listener and connections (server.go, conn.go), the
// request header and framing, one file per Kafka API key (00_produce.go,
// 01_fetch.go, 03_metadata.go, 18_api_versions.go, …) each opening with a
// comment on its supported versions, the topic registry (topics.go), fetch
// sessions, and the single translation from domain errors to Kafka error
// codes (errors.go). What does not: segment files (package segments), the
// partition write path and producer state (broker/replica, broker/txn).
//
// Goroutines: one accept loop; per connection a reader that decodes
// requests and runs their handlers one at a time in arrival order, and a
// writer that writes replies strictly in request order, waiting on deferred
// replies (acks=all produce, long-poll fetch) without blocking the reader.
// The number of replies queued per connection is bounded
// (queued.max.requests); when full the reader stops reading.
//
// All encoding and decoding goes through franz-go's kmsg, except the Fetch
// response framing in fetchframe.go, which is computed by hand around record
// bytes that are written from segment files to the socket with sendfile.
package broker
