// Package fsutil holds the durable-file primitives that every on-disk
// component shares: replacing a small file atomically and making directory
// changes (creates, renames, removes) durable.
//
// Used for checkpoints (segments), producer snapshots and producer-id
// reservations (broker/txn), meta.properties and a topics.json restored from a bucket (broker). A
// crash leaves either the old or the new content of a file written with
// WriteFileAtomic, never a mix, and possibly a stray "<name>.tmp" that the
// next WriteFileAtomic overwrites.
//
// Hint turns a file-system error with a resource or permission cause
// (EMFILE, ENFILE, ENOSPC, EACCES …) into advice for the log line that
// reports it.
package fsutil
