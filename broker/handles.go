package broker

// Partition and file-handle limits, checked before CreateTopics,
// CreatePartitions or an auto-create does any work (topics.go), so that a
// creation is refused up front with a clear error instead of failing
// half-way for want of a file handle.
//
// max.broker.partitions (KIP-578's name) caps the partitions of all topics
// together, internal ones included, as KIP-578 specifies.
//
// File handles. Every partition keeps three handles per segment (.log,
// .index, .timeindex stay open while the segment exists, as in Kafka), and
// every client connection one (its socket). The process may hold
// RLIMIT_NOFILE handles (Go raises the soft limit to the hard one at
// start). The budget divides them:
//
//	RLIMIT_NOFILE = reservedHandles + connection handles + partition handles
//
// Connection handles are max.connections, whose cap guarantees them. When
// max.connections is unlimited, or so large that nothing would be left for
// partitions, half of what the reserve leaves is kept for connections
// instead, and the start logs a warning. A create of n partitions (3n
// handles for their first segments) is refused with POLICY_VIOLATION when
//   - the partitions' handles (the sum of their logs' OpenFiles) plus 3n
//     exceed the partition handles, or
//   - fewer than 3n + freeHandleHeadroom handles are free right now
//     (RLIMIT_NOFILE minus the descriptors in /proc/self/fd): connections,
//     segments rolled since, or files of other parts may have taken them.
//
// Both are estimates checked at one moment, not reservations: a roll later
// needs handles too, and fails (retriably, see replica) if none are left.

import (
	"fmt"
	"math"
	"os"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/stratalog/strata/internal/fsutil"
)

const (
	// DefaultMaxBrokerPartitions is max.broker.partitions' default. KIP-578
	// proposed no default (Int.MAX); Kafka's long-standing advice is a few
	// thousand partitions per broker. 10,000 partitions need 30,000 file
	// handles for their first segments alone (more as segments accumulate),
	// which fits the common limits of 65,536 and 1,048,576 with room for
	// max.connections; and it equals the per-topic cap.
	DefaultMaxBrokerPartitions = 10000

	// handlesPerNewPartition: a new partition's first segment keeps its
	// .log, .index and .timeindex open.
	handlesPerNewPartition = 3

	// reservedHandles are kept out of the budget for everything that is
	// neither a segment file nor a client connection: about 12 at rest
	// (stdio, the log, epoll, the Kafka and HTTP listeners, metadata
	// files), up to 8 partitions opened or closed at once with a
	// checkpoint or snapshot temporary file each (16), up to 16 group-commit
	// fsyncs each holding a roll's directory handle (16), and HTTP scrapes,
	// uploads and remote-cache reads (16): 12 + 16 + 16 + 16 = 60, rounded
	// up to 64.
	reservedHandles = 64

	// freeHandleHeadroom is how many handles must stay free after a create
	// right now: a few rolls (4 handles each) and accepted connections.
	freeHandleHeadroom = 16
)

// handleBudget is the file-handle arithmetic above, as pure values.
type handleBudget struct {
	limit       int  // RLIMIT_NOFILE
	connections int  // handles kept for client connections
	fallback    bool // connections is not max.connections (unlimited or too large)
}

// newHandleBudget divides limit for maxConnections (<= 0: unlimited).
func newHandleBudget(limit, maxConnections int) handleBudget {
	left := max(0, limit-reservedHandles)
	if maxConnections > 0 && maxConnections < left {
		return handleBudget{limit: limit, connections: maxConnections}
	}
	return handleBudget{limit: limit, connections: left / 2, fallback: true}
}

// partitionHandles is what partitions' segment files may hold together.
func (h handleBudget) partitionHandles() int {
	return max(0, h.limit-reservedHandles-h.connections)
}

// check decides whether n new partitions fit: held is the handles the
// existing partitions hold, open the descriptors open now (openErr if they
// could not be counted, e.g. for want of a handle to list them). The error
// is a POLICY_VIOLATION *adminError saying which limit and by how much.
func (h handleBudget) check(n, held, open int, openErr error) error {
	need := n * handlesPerNewPartition
	if held+need > h.partitionHandles() {
		conns := fmt.Sprintf("%d for max.connections connections", h.connections)
		if h.fallback {
			conns = fmt.Sprintf("%d kept for connections (max.connections is unlimited or does not fit)", h.connections)
		}
		return newAdminError(kerr.PolicyViolation,
			"Creating %d partition(s) needs %d file handles (%d each), but the file-handle budget for partitions is %d (RLIMIT_NOFILE %d, minus %d reserved for the broker and %s) and the partitions hold %d already. Raise the open-file limit, lower max.connections, or delete partitions.",
			n, need, handlesPerNewPartition, h.partitionHandles(), h.limit, reservedHandles, conns, held)
	}
	if openErr != nil {
		return newAdminError(kerr.PolicyViolation,
			"Creating %d partition(s) needs %d file handles, but the broker cannot count its open files (%v): %s.",
			n, need, openErr, orDefault(fsutil.Hint(openErr), "it may have none to spare"))
	}
	if free := h.limit - open; free < need+freeHandleHeadroom {
		return newAdminError(kerr.PolicyViolation,
			"Creating %d partition(s) needs %d file handles, but only %d of RLIMIT_NOFILE %d are free now (%d open, %d must stay free for rolls and connections). Close connections or delete partitions, or raise the open-file limit.",
			n, need, max(0, free), h.limit, open, freeHandleHeadroom)
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// checkPartitionCount applies max.broker.partitions to a create of n
// partitions on a broker hosting current: POLICY_VIOLATION (Kafka's code
// for a request beyond its partition limits; KIP-578's new error code was
// never adopted) naming the limit and the counts.
func checkPartitionCount(limit, current, n int) error {
	if current+n > limit {
		return newAdminError(kerr.PolicyViolation,
			"Creating %d partition(s) would bring this broker to %d partitions, above max.broker.partitions=%d (it hosts %d now). Delete topics or raise max.broker.partitions.",
			n, current+n, limit, current)
	}
	return nil
}

// maxBrokerPartitions is max.broker.partitions with its default.
func (b *Broker) maxBrokerPartitions() int {
	if b.cfg.MaxBrokerPartitions <= 0 {
		return DefaultMaxBrokerPartitions
	}
	return b.cfg.MaxBrokerPartitions
}

// fileLimit is the process's RLIMIT_NOFILE soft limit (which Go raised to
// the hard limit at start), capped at MaxInt32.
func fileLimit() (int, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("getrlimit(RLIMIT_NOFILE): %w", err)
	}
	return int(min(rl.Cur, math.MaxInt32)), nil
}

// countOpenFiles counts the process's open descriptors in /proc/self/fd
// (Linux; the handle that lists the directory is not counted). It needs a
// file handle itself, so it fails with EMFILE when none is left.
func countOpenFiles() (int, error) {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return 0, err
	}
	return len(names) - 1, nil
}

// partitionUsage counts the partitions the registry hosts and the file
// handles they hold.
func (r *topicRegistry) partitionUsage() (partitions, held int) {
	for _, t := range r.all() {
		partitions += len(t.partitions)
		for _, p := range t.hosted() {
			held += p.OpenFiles()
		}
	}
	return partitions, held
}

// checkNewPartitions applies max.broker.partitions and the file-handle
// budget to a create of n partitions. The caller holds r.adminMu, so that
// two creates cannot both pass on the same counts.
func (r *topicRegistry) checkNewPartitions(n int) error {
	current, held := r.partitionUsage()
	if err := checkPartitionCount(r.b.maxBrokerPartitions(), current, n); err != nil {
		return err
	}
	open, err := r.countOpenFiles()
	return r.handles.check(n, held, open, err)
}

// logHandleBudget logs the budget at start, and warns when it cannot be
// kept: max.connections does not fit, or the partitions opened already
// hold more than their share (new partitions are then refused).
func (r *topicRegistry) logHandleBudget(maxConnections int) {
	h := r.handles
	partitions, held := r.partitionUsage()
	r.log.Info("file-handle budget", "rlimit_nofile", h.limit, "reserved", reservedHandles,
		"connections", h.connections, "partition_handles", h.partitionHandles(), "partition_handles_held", held,
		"partitions", partitions, "max.broker.partitions", r.b.maxBrokerPartitions())
	if h.fallback {
		what := fmt.Sprintf("max.connections=%d does not fit", maxConnections)
		if maxConnections <= 0 {
			what = "max.connections is unlimited"
		}
		r.log.Warn(what+": the file-handle budget keeps half of what RLIMIT_NOFILE leaves for connections; more connections than that exhaust the handles partitions need. Set max.connections below the limit, or raise the limit (ulimit -n, systemd LimitNOFILE)",
			"rlimit_nofile", h.limit, "connections", h.connections)
	}
	if held > h.partitionHandles() {
		r.log.Error("the partitions hold more file handles than the budget allows: creating topics and partitions is refused; raise RLIMIT_NOFILE (ulimit -n, systemd LimitNOFILE), lower max.connections, or delete partitions",
			"partition_handles_held", held, "partition_handles", h.partitionHandles(), "rlimit_nofile", h.limit)
	}
}
