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
// Backends, chosen by URL with Open or OpenWith (see ParseURL):
//
//	file:///abs/path   a local directory (NewFile): atomic, durable puts by
//	                   temp file + fsync + rename + directory fsync
//	mem://             in memory (NewMem), for unit tests
//	s3://bucket/prefix?region=R[&endpoint=URL]
//	                   AWS S3 with aws-sdk-go-v2 (NewS3), or an S3-compatible
//	                   service at endpoint (path-style); credentials from
//	                   Options, STRATA_OBJECT_STORE_ACCESS_KEY/SECRET_KEY, or
//	                   else the AWS default chain (env, shared config,
//	                   instance profile)
//	minio://host:port/bucket/prefix[?secure=false]
//	                   MinIO and S3-compatible servers with minio-go
//	                   (NewMinIO), path-style, static credentials only
//
// Capabilities (conditional puts that are atomic; false means the method
// fails with ErrUnsupported):
//
//	backend  PutIfAbsent  PutIfMatch  how
//	file     yes          in-process  renameat2(NOREPLACE); per-key lock in
//	                                  memory (PutIfMatchProcessLocal)
//	mem      yes          yes         one mutex
//	s3       yes          yes         If-None-Match: * / If-Match on PutObject
//	                                  or CompleteMultipartUpload
//	minio    yes          yes         the same headers through minio.Core
//
// s3 and minio report both as false with Options.NoConditionalPuts, for a
// compatible server that ignores those headers.
//
// Wrappers: Instrumented counts and times every call with OpenTelemetry,
// including requests by S3 pricing class; Faulty injects errors, latency and
// partial failures by operation and key, deterministically from a seed. The
// conformance suite every backend must pass is objectstoretest.Run; the
// network backends run it against a real MinIO server (internal/miniotest).
//
// Concurrency: every Store method may be called from any goroutine. The
// local backends start no goroutines and do a call's work on the caller's
// goroutine. The network backends upload a multipart put's parts on
// goroutines that the put waits for, and their SDKs' HTTP transports keep
// connection goroutines of their own. Get's reader belongs to the caller,
// who must close it (on s3 and minio it holds a request slot until then).
//
// Invariants:
//   - A put is all or nothing: readers see the old object or the whole new
//     one, never part of one, and a failed or cancelled put changes nothing.
//   - An ETag changes whenever an object's content changes.
//   - Memory is bounded: local puts stream their body in 256 KiB chunks;
//     network puts buffer it in parts, at most (PartConcurrency+1)·PartSize
//     bytes per put (40 MiB by default), so that each request can be
//     retried; gets stream the range; List yields one entry at a time and
//     pages underneath. Only the mem backend holds whole objects.
//   - Conditional puts are atomic where Capabilities says so, and fail
//     with ErrUnsupported where it does not; never a silent plain put.
//
// Retries (s3 and minio; retry.go): the SDKs' own retryers are off and one
// policy retries each request with exponential backoff and full jitter on
// throttling (429, 503 SlowDown), other 5xx, request timeouts and transient
// network errors, never on not-found, precondition-failed or invalid-range
// answers, never once the caller's context is done. A conditional put's
// committing request is retried only when the failure shows it was not
// applied (throttled, or no connection), since after an ambiguous failure
// a retry could fail against the caller's own write. Every knob lives in
// Options with a documented default, to be wired to configuration:
//
//	MaxRetries       5       retries after the first attempt
//	RetryBaseDelay   100ms   backoff before retry n: uniform in
//	RetryMaxDelay    5s        [0, min(RetryMaxDelay, RetryBaseDelay·2^n))
//	OpTimeout        60s     per request attempt (Get: until the headers)
//	MaxConcurrency   64      requests in flight per store
//	PartSize         8 MiB   single PutObject up to this, multipart above
//	PartConcurrency  4       parts of one put uploading at once
//
// The local backends fail only for local reasons (ENOSPC, EIO), which
// retrying would not fix, and callers bound their own concurrency.
package objectstore
