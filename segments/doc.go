// Package segments is the local storage of one partition: magic-v2 record
// batch validation and patching, segment files in Kafka's layout with
// their sparse offset and time indexes, and the partition Log built on
// them (append, roll, sync, read, timestamp lookup, recovery, retention,
// DeleteRecords, truncation, leader epoch cache).
//
// What does not belong here: producer sequence state and transactions
// (broker/txn), the high watermark, the group commit that decides when to
// call Sync, and the retention schedule (broker/replica, broker), tiered
// storage (tiering). The package imports nothing of ours.
//
// # Files
//
//	api.go         shared types and sentinel errors (owned by the lead)
//	batch.go       batch header layout, ParseBatchHeader, ValidateBatches, in-place patching
//	records.go     record walking (in place, or over bounded gzip/snappy/lz4/zstd streams)
//	index.go       .index files and the shared entry-file / lookup code
//	timeindex.go   .timeindex entries and checks
//	segment.go     one segment: files, reference count, indexer, header scanner, recovery scan
//	log.go         Log: Open, Append, roll (Roll), Sync, Close, Delete, Recover, epochs
//	recover.go     Open's loading and recovery of segments
//	read.go        Read, OffsetForTimestamp, MaxTimestamp, ScanBatches
//	retention.go   DeleteRecordsBefore, ApplyRetention, Truncate
//	clean.go       compaction passes: CheckClean, Clean, crash-safe segment swap
//	cleanbatch.go  per-batch compaction: record filter, re-encoding, recompression
//	offsetmap.go   the cleaner's fixed-memory key → latest offset map
//	checkpoint.go  checkpoint files and the leader epoch cache rules
//
// # On disk
//
// A partition directory (<data-dir>/<topic>-<partition>) holds, as Kafka
// does, <20-digit base offset>.log|.index|.timeindex per segment and
// leader-epoch-checkpoint, plus two files Kafka keeps per data directory:
// recovery-point-checkpoint and log-start-offset-checkpoint (per partition
// here, so a partition directory is self-contained), and the
// .kafka_cleanshutdown marker (likewise per partition). Batches are stored
// byte for byte as produced, except baseOffset and partitionLeaderEpoch
// (outside the CRC) and, with LogAppendTime or a client maxTimestamp that
// disagrees with its records, the timestamp-type bit and maxTimestamp
// (then the CRC is recomputed) — the fields Kafka itself rewrites. Index
// entries are appended rather than preallocated (index.go).
//
// # Durability and recovery
//
// Append writes with one pwrite into the page cache; Sync fdatasyncs every
// dirty segment (a segment rolled since the last Sync also gets its
// indexes written and fsynced, "finalized"), then advances the durable
// offset. The recovery point is the base offset of the first segment that
// is not finalized — usually the active one — so its checkpoint is written
// (with fsync) only when a roll has been synced, keeping Sync at one
// fdatasync in the common case.
//
// Open without the clean-shutdown marker trusts segments below the
// recovery point after cheap index sanity checks (an unusable index is
// rebuilt with a full CRC scan; a CRC or structure failure there is a
// *CorruptError and Open fails: acknowledged data is never silently
// dropped). Segments from the recovery point on are scanned with CRC
// checks; the log is truncated at the first bad or torn batch and later
// segments are deleted (nothing after a torn write was ever covered by a
// successful Sync, so nothing there was acknowledged). Every truncation is
// logged with topic, partition, segment, offset and position. Recovered
// data is fsynced before Open returns, and the durable offset starts at
// the end offset. With the marker, no scan happens: the active segment's
// end is found by walking the batches after its last index entry.
//
// Stored data is not CRC-checked on Read (reads are zero-copy); structural
// damage found while reading headers returns a *CorruptError instead of
// data. A damaged index entry is detected (the batch it names is not at its
// position) and bypassed by scanning from the segment start.
//
// After a failed fsync, or a failed write that cannot be cut off again,
// the Log refuses further writes and Syncs (Linux may drop unwritten pages
// after reporting an fsync error, so a retry could report success over
// lost data). Recover reloads it in place as Open would and cuts it at the
// durable offset; reopening does the same. Failures that leave nothing
// behind keep the log writable: a roll whose files cannot be created
// (ErrRollFailed: too many open files, disk full; the files it did create
// are removed) and a write that was cut off again (ErrNotWritten).
//
// # File handles
//
// Every listed segment keeps its three files open (as Kafka's do), so a
// log holds 3 × segments handles (OpenFiles). A roll takes four more: the
// new segment's files and a directory handle, held until the Sync that
// fsyncs the directory, so that making a roll durable never needs a handle
// it might not get. Warnings about failed rolls are rate-limited per log
// (fileWarnInterval) and name the limit that was hit.
//
// # Locking
//
// Lock order: Log.appendMu → Log.syncMu → Log.ckptMu → Log.mu.
//
//   - appendMu serialises writers that change the active segment: Append,
//     Truncate, Close, Delete. Append holds Log.mu only to reserve offsets
//     (and roll) and to publish the new size, end offset and index
//     entries; the pwrite itself runs without Log.mu, so Reads proceed.
//
//   - syncMu serialises Sync (the group-commit goroutine), and Truncate and
//     Close exclude it. Sync holds Log.mu only to snapshot the dirty
//     segments and to publish the result; fsyncs run unlocked, concurrently
//     with Append.
//
//   - ckptMu serialises checkpoint writes; each write takes the current
//     state under Log.mu, so the file always ends with the newest state.
//
//   - Log.mu (RWMutex) guards the segment list and every segment's mutable
//     fields, offsets, config and epoch cache. Readers (Read,
//     OffsetForTimestamp, MaxTimestamp, ScanBatches) take it shared just to
//     snapshot segment views and take references, then do their I/O
//     unlocked with pread (never a shared file position).
//
//   - structMu serialises changes to closed segments: the cleaner's swaps,
//     DeleteRecordsBefore, ApplyRetention, Truncate, Close and Delete.
//
//   - cleanMu serialises cleaning passes; it is taken with no other Log
//     lock held (the order is cleanMu → structMu → ckptMu → mu).
//
// DeleteRecordsBefore and ApplyRetention take structMu, then Log.mu (then
// ckptMu): they remove whole closed segments, which no writer touches.
//
// # Compaction
//
// Clean (cleanup.policy=compact) keeps the latest record of every key,
// with its original offset. The dirty section runs from the cleaner
// checkpoint to the first segment that is active, at or above the
// checkpointed recovery point, or younger than min.compaction.lag.ms; its
// keys are mapped (MD5 digest → latest offset) in a table bounded by the
// dedupe buffer size; then every cleanable segment from the start is
// rewritten in groups that fit one segment. Kept batches keep base offset,
// lastOffsetDelta, producer id/epoch/sequence and leader epoch; a batch is
// rebuilt (records copied, recompressed with its codec) only if a record
// goes. Tombstones get a delete horizon (KIP-534: attribute bit 6, the
// horizon in baseTimestamp) at their first cleaning and go in the first
// pass after it. Keyless records go. Control batches stay. An emptied
// batch that is an idempotent producer's newest stays as a bare header.
//
// A group is swapped in crash-safely: cleaned files (".cleaned") are
// fsynced, then the "cleaner-swap" file lists the replaced base offsets
// (written atomically: the commit point), then the cleaned files are
// renamed over the first segment's, the others are removed, the directory
// is fsynced and the swap file removed. Open completes a swap whose file
// exists and deletes ".cleaned" files otherwise, so a crash leaves either
// the old segments or the new one. Because cleaned segments can end before
// the next segment starts, Read continues into the next segment, and
// recovery accepts such gaps below the recovery point; the cleaner stays
// below the checkpointed recovery point so that the recovery scan, which
// treats a gap as a torn write, never meets a cleaned segment.
//
// # Invariants
//
//   - Segments are contiguous: each segment's base offset is the previous
//     segment's next offset (a compacted segment's batches may end before
//     it); the last segment is the only one appended to
//     and is never deleted by retention or DeleteRecords.
//   - StartOffset <= EndOffset and DurableOffset <= EndOffset (keeping
//     StartOffset <= the high watermark is the caller's check in
//     DeleteRecords); offsets never go backwards
//     or get reused, except through Truncate (a follower's explicit undo).
//     If every segment is gone, the log restarts empty at the checkpointed
//     start offset.
//   - A segment's files stay open while its reference count is positive:
//     the Log holds one reference while the segment is listed, each
//     ReadResult and internal snapshot one more. Retention unlinks the
//     files at once and the last Release closes them.
//   - Only bytes below a segment's published size are read; the published
//     size only covers whole batches.
//   - Decompression during validation is bounded (decompressLimit) and
//     streamed, so a hostile batch costs bounded memory and CPU.
package segments
