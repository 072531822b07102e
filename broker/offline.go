package broker

// Readiness detail: which partitions are offline and why.
//
// /readyz (internal/telemetry, wired in cmd/strata) answers 503 while any
// partition is offline, with these lines as the body. The choice: Kafka
// counts offline partitions (OfflinePartitionsCount) and rolling restarts
// wait for it to be 0 before touching the next broker; a deployment tool or
// a load balancer that asks /readyz gets the same gate. A broker whose
// partitions cannot take writes should not be counted as a healthy target,
// even though it still serves reads and the other partitions; clients that
// already know the broker keep using it (Kafka clients connect to the
// advertised address, not through the balancer). Liveness is /healthz, so
// nothing restarts the process for it: offline partitions recover by
// themselves (broker/replica/recovery.go).

import (
	"fmt"
	"time"
)

// maxNotReadyLines bounds the /readyz body: with thousands of offline
// partitions (a failed disk), the first ones and a count say enough.
const maxNotReadyLines = 100

// NotReady returns one line per offline partition, sorted by topic and
// partition ("partition orders-0 offline for 12s, 3 recovery attempts:
// <reason>"), at most maxNotReadyLines of them plus a line counting the
// rest; nil when every partition takes writes. Safe for concurrent use.
func (b *Broker) NotReady() []string {
	if b.topics == nil {
		return nil
	}
	var lines []string
	more := 0
	now := time.Now()
	for _, t := range b.topics.all() {
		for _, p := range t.hosted() {
			st, off := p.Offline()
			if !off {
				continue
			}
			if len(lines) == maxNotReadyLines {
				more++
				continue
			}
			lines = append(lines, fmt.Sprintf("partition %s-%d offline for %s, %d recovery attempts: %v",
				t.name, p.Index(), now.Sub(st.Since).Round(time.Second), st.Attempts, st.Reason))
		}
	}
	if more > 0 {
		lines = append(lines, fmt.Sprintf("… and %d more offline partitions", more))
	}
	return lines
}
