// Package tiering is Strata's object-storage tier: how a partition's closed
// segments are laid out in a bucket, the manifest that says which of them
// are committed, the epoch-fenced protocol that commits it, and the cluster
// metadata snapshot that lets the bucket describe itself.
//
// What belongs here: the bucket layout (layout.go, the only code in Strata
// that builds or parses object keys), the partition manifest as a value
// with its invariants and its pure update rules (manifest.go), the commit
// protocol over an objectstore.Store (manifest_store.go) and the cluster
// metadata snapshot (metadata.go), the uploader of closed segments and its
// orphan cleanup (uploader.go), and the remote read path: an on-disk chunk
// cache of object ranges (cache.go) and a reader serving Fetch and
// timestamp lookups from it (reader.go), and trims of the manifest by
// retention or DeleteRecords plus deletion of a topic's data
// (retention.go). The broker drives all of it (broker/tiering.go): when
// to upload, retention schedules, bootstrapping from the bucket.
// What does not: moving bytes to and from a backend (objectstore), local
// segment files (segments), leadership and epochs' origin (broker/replica,
// later the controller), anything Kafka-wire. The package never imports
// broker; it imports segments for Offset and LeaderEpoch.
//
// Concurrency: manifests and metadata snapshots are values that methods
// never modify; a ManifestStore holds no state and may be used from any
// goroutine. An Uploader serves one caller at a time and starts nothing.
// The ChunkCache runs each download in its own goroutine (shared by every
// reader waiting for that chunk, cancelled when all of them give up) and
// bounded read-ahead downloads; Close stops them. Its quarantine of
// corrupt chunks is bounded (1,024 entries) and guarded by its mutex.
//
// # Bucket layout
//
// Keys are relative to the store (which applies its URL prefix):
//
//	cluster/metadata.json
//	topics/<topic>/<topic id>/<partition>/manifest.json
//	topics/<topic>/<topic id>/<partition>/segments/<base>-<epoch>-<uid>.seg
//
// The topic id (32 hex digits) is in every partition key, so a topic
// deleted and re-created under its name never mixes with its predecessor's
// objects; it is a path segment of its own rather than a suffix of the
// name so that a Kafka-legal name (≤ 249 bytes) stays a legal file name
// (≤ 255 bytes) on the file store. A segment object is the segment's .log
// followed by its .index, .timeindex, leader-epoch checkpoint and producer
// snapshot, at byte ranges the manifest records: one PUT per segment, and a
// ranged GET reads just the part it needs. <base> is the base offset (20
// digits), <epoch> the uploading leader's epoch (10 digits) and <uid> 16
// random hex digits drawn for each upload attempt.
//
// # Commit protocol and fencing
//
// A leader at epoch E tiers a closed segment by (1) uploading its object
// under a fresh key, with PutIfAbsent where the store has it, then (2)
// committing a manifest that lists it: Load the manifest (and its ETag),
// build Next(E), add the segment (With), Commit with the ETag. A segment
// object exists for readers only once a committed manifest lists it.
//
// Why a deposed leader cannot commit. Leader epochs only grow, and every
// manifest records the epoch of its committer. Commit re-reads the stored
// manifest and refuses (ErrFenced) a manifest whose epoch is below the
// stored one, whatever ETag the caller holds. That alone leaves a race — a
// zombie at epoch 4 reads, the new leader at epoch 5 commits, the zombie
// writes — which conditional writes close: the zombie's write is a
// PutIfMatch on the ETag it read, which the new leader's commit has
// changed, so it fails and the re-read finds epoch 5: ErrFenced. The new
// leader's first commit, likewise, only succeeds on the manifest its
// predecessor last committed, so it continues from it. The first commit of
// a partition is a PutIfAbsent. Generation (+1 per commit) makes every
// manifest's content unique, so content-derived ETags never repeat (no
// ABA). Where the store lacks atomic conditional puts (across processes on
// the file store; S3-compatible stores without them), the commit is read,
// check, write, and fencing is only as strong as the assumption that one
// writer acts for a partition at a time (ManifestStore.CommitsAtomic).
//
// Why a retried or zombie upload never overwrites a committed object.
// Every upload attempt draws a new uid, so no two attempts share a key,
// and a committed object's key is never written again: a retry after a
// failed put writes a new object (a retry after a failed commit commits
// the object already put, Uploader.pending, which costs no PUT and leaves
// no orphan), and a zombie's late upload writes an object no committed
// manifest names. Objects of segments that retention or DeleteRecords
// removed from the manifest are deleted after the manifest without them
// is committed, never before.
//
// Orphans: never delete on absence of evidence. CleanOrphans deletes a
// segment object only when a committed manifest (generation ≥ 1, loaded
// fresh, not older than any this node knew) proves it unneeded and it is
// older than an upload grace period longer than any upload plus commit
// takes: it starts below the manifest's log start (trimmed), or inside
// the offsets of a listed segment at an epoch no newer (a superseded copy:
// a retry, a lost put reply, a deposed leader). Objects beyond the
// manifest's end, in gaps it does not cover, or of newer epochs are kept:
// the manifest does not say it replaced them (see isOrphan). A partition
// that never committed cleans nothing.
//
// Lost manifests. A manifest that disappears, or comes back older (a
// restore from a backup), must not be taken for a new partition: building
// on it would start the history over and cleaning against it would delete
// every object. The Uploader keeps a floor, the newest generation loaded
// or committed (seeded by the caller from local state kept across
// restarts: the broker's tier checkpoint); a stored manifest below it is
// ErrManifestLost, and nothing is uploaded, trimmed or deleted until a
// manifest at least as new is back. Without such a record, a missing
// manifest is lost all the same when the bucket holds a segment object
// below the local log start, which only a committed upload leaves.
//
// # Verification of what is read back
//
// Corrupt bucket data is never served. Since manifest version 2 every
// segment records the CRC-32C of each ChunkBytes piece of its object
// (Segment.ChunkCRC32C, computed while the object streams up); the chunk
// cache checks each downloaded chunk against it before the chunk enters
// the cache. Segments of version 1 manifests have no chunk checksums: the
// reader then checks the framing and CRC-32C of every batch it is about to
// return. Either way a failure is a *segments.CorruptError naming the
// object, and the chunk is quarantined — Acquire fails fast for a backoff
// of 1 s doubling to 5 min — so a damaged range is not downloaded once per
// retry, and a repaired object reads again.
//
// Lost replies. A write can succeed while its reply is lost. Commit then
// reads the manifest back and recognises its own write by content (the
// stored bytes equal its encoding); a caller that retries the same Commit
// after an error gets the same recognition, so a commit is neither applied
// twice nor reported failed when it landed.
//
// # Invariants
//
//   - Only layout.go builds keys; ParseSegmentKey accepts exactly the keys
//     SegmentKey builds, so cleanup never deletes what it does not
//     recognise.
//   - A stored manifest always passes Manifest.Validate: sorted,
//     non-overlapping segments, non-decreasing record epochs, consistent
//     sizes, bounded counts and size (see Manifest). The decoders are
//     strict, bounded and never panic (fuzzed).
//   - A manifest's generation grows by one per commit and its leader epoch
//     never decreases; an Uploader never builds on, trims or cleans against
//     a manifest older than one it knew (ErrManifestLost).
//   - No byte read back from the bucket is returned by RemoteReader
//     without a checksum verifying it (chunk or batch CRC-32C).
//   - Cluster metadata names every topic with its id, partition count and
//     config overrides; with the manifests it lets a new cluster serve the
//     tiered history from the bucket alone.
package tiering
