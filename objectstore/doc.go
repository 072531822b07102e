// Package objectstore is Strata's seam to object storage: one small Store
// interface (put, conditional puts, ranged get, stat, list by prefix, batch
// delete), its backends, and wrappers that add metrics and injected faults.
//
// What belongs here: moving bytes to and from a bucket, and translating each
// backend's errors into the sentinels ErrNotExist, ErrPreconditionFailed,
// ErrUnsupported, ErrInvalidKey and ErrInvalidRange. What does not: object
// naming, manifests, fencing and retention, which are tiering's (package
// tiering is the sole owner of object keys); and anything Kafka.
//
// Backends, chosen by URL with Open (see ParseURL):
//
//	file:///abs/path   a local directory (NewFile): atomic, durable puts by
//	                   temp file + fsync + rename + directory fsync
//	mem://             in memory (NewMem), for unit tests
//	s3://… minio://…   recognised, not built yet (issue 4): Open returns
//	                   ErrBackendNotBuilt
//
// Wrappers: Instrumented counts and times every call with OpenTelemetry,
// including requests by S3 pricing class; Faulty injects errors, latency and
// partial failures by operation and key, deterministically from a seed. The
// conformance suite every backend must pass is objectstoretest.Run.
//
// Concurrency: every Store method may be called from any goroutine; no
// backend starts goroutines of its own, and a call's work runs on the
// caller's goroutine. Get's reader belongs to the caller, who must close it.
//
// Invariants:
//   - A put is all or nothing: readers see the old object or the whole new
//     one, never part of one, and a failed or cancelled put changes nothing.
//   - An ETag changes whenever an object's content changes.
//   - Memory is bounded: puts stream their body in 256 KiB chunks, gets
//     stream the range, List yields one entry at a time and pages
//     underneath. Only the mem backend holds whole objects.
//   - Conditional puts are atomic where Capabilities says so, and fail
//     with ErrUnsupported where it does not; never a silent plain put.
//
// Retries, backoff with jitter on throttling and 5xx, per-operation
// timeouts and bounded request concurrency belong to the network backends
// (issue 4): the local backends fail only for local reasons (ENOSPC, EIO),
// which retrying would not fix, and callers bound their own concurrency.
package objectstore
