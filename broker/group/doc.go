// Package group is the classic (pre-KIP-848) consumer group coordinator as
// a deterministic state machine: it decides, it does no I/O.
//
// What belongs here: group membership and the rebalance protocol (JoinGroup,
// SyncGroup, Heartbeat, LeaveGroup), committed offsets (OffsetCommit,
// OffsetFetch, OffsetDelete), group administration (DescribeGroups,
// ListGroups, DeleteGroups), offset expiry, the encoding of the
// __consumer_offsets records that make all of it durable, their replay, and
// PartitionFor, which picks a group's coordinator partition. What does not:
// sockets, request framing and FindCoordinator (package broker), appending
// records to __consumer_offsets and reading them back (the partition layer,
// through the broker), timers, and log compaction of that topic.
//
// # Contract
//
// Inputs are decoded kmsg requests, each with the current time passed in as
// now, plus Tick(now) for the passage of time. Outputs are kmsg responses
// and a Result: Records to append to __consumer_offsets and Completions,
// the responses to earlier requests that had to wait. No method reads a
// clock, starts a goroutine or blocks, so the same inputs give the same
// outputs (member ids aside: they are random unless Config.NewUUID says
// otherwise); tests drive the machine with a fake clock.
//
// JoinGroup and SyncGroup may wait, as in Kafka: JoinGroup until the
// rebalance completes, a follower's SyncGroup until the leader sends the
// assignment. Such a call returns a nonzero Ticket instead of a response;
// the response arrives later as a Completion carrying that Ticket, in the
// Result of whichever call (a request of another member, or Tick) completed
// it. Every Ticket is completed exactly once — with its response, or with an
// error if the member is removed, fenced, re-sends the request, or the
// partition is unloaded — so a driver never leaks a waiting request.
//
// The driver must append a Result's Records, in order, to the partitions they
// name before it sends the immediate response or any Completion of that
// Result. State is updated when a method returns, before the append: if an
// append fails the driver must Unload the partition (waiting requests get
// NOT_COORDINATOR), answer the affected requests with NOT_COORDINATOR, and
// Load it again from the log. Between a method's return and the end of its
// append, a concurrent OffsetFetch may already see the new offsets.
//
// Time: the driver calls Tick at or after NextDeadline (and may call it more
// often). Tick applies every timeout Kafka's purgatories apply: sessions (a
// member that has not heartbeated, joined, synced or committed within its
// session timeout, unless it waits in JoinGroup or SyncGroup), the 5-minute
// limit on a new member waiting in its first JoinGroup, MEMBER_ID_REQUIRED
// placeholders, the rebalance timeout (dynamic members that did not rejoin
// are removed; static ones stay until their session expires), the initial
// rebalance delay, the deadline for every member to SyncGroup after a
// rebalance (the rebalance timeout, as Kafka's DelayedSync), and every
// offsets.retention.check.interval.ms offset expiry.
//
// # Records
//
// Records are Kafka's own, built with kmsg.OffsetCommitKey/Value and
// kmsg.GroupMetadataKey/Value, so Kafka's tools read them: offset commits
// (key v1, value v3, or v1 when the commit carried a retention time),
// group metadata (key v2, value v3) when a leader's assignment completes a
// rebalance, when a rebalance leaves the group empty, and when a static
// member rejoins without rebalance; tombstones (nil value) when offsets are
// deleted or expire and when a group is deleted. Apply replays any of them,
// every key and value version up to the flexible v4, so Load after a restart
// or failover rebuilds what was acknowledged. Records that do not decode
// return ErrCorruptRecord and never panic.
//
// # Ownership and concurrency
//
// A Coordinator serves the groups of the __consumer_offsets partitions it
// has Loaded; any other group gets NOT_COORDINATOR. It owns no goroutine and
// is not safe for concurrent use: the driver serialises every call (one
// goroutine or one mutex). Responses and Completions share no memory with
// requests, and byte slices taken from requests are copied, because request
// frames are pooled; responses may share bytes with the coordinator's state,
// which the driver must not modify.
//
// # Invariants
//
//   - A group's generation only grows while a coordinator serves it. A new
//     coordinator resumes from the last persisted one, as in Kafka: a
//     generation that completed but was never synced was not persisted.
//   - A member's assignment is replaced only by the leader's SyncGroup of a
//     newer generation, or cleared when a rebalance restarts before the
//     leader synced (as Kafka does), so members keep their assignment across
//     a rebalance (cooperative rebalancing) and a static member that
//     rejoins without a rebalance gets it back.
//   - Each group.instance.id maps to at most one member id; the newest
//     JoinGroup with that instance id wins and any request carrying the old
//     member id gets FENCED_INSTANCE_ID.
//   - The state after Load of every Record ever emitted equals the live
//     state in everything Kafka persists (offsets, generation, protocol,
//     leader, members and assignments of a Stable or Empty group).
//   - Walks over groups and members are in a fixed order (sorted ids, join
//     order), so outputs are deterministic.
package group
