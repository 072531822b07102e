// Package lifecycle is a broker's membership in the cluster, as the
// active controller sees it: the broker registers (BrokerRegistration)
// when it starts, heartbeats (BrokerHeartbeat) every
// broker.heartbeat.interval.ms with the metadata offset it has applied,
// is unfenced once it has caught up with its own registration, and on
// SIGTERM asks for a controlled shutdown, so that leadership moves away
// before the process exits.
//
// One goroutine (run) owns the conversation with the controller: it finds
// the active controller from the Raft log's leader (every broker follows
// the log), keeps one client to it, and re-registers when the controller
// no longer knows its epoch. Other goroutines read the state (Epoch,
// Fenced, Changed) and ask for the shutdown.
package lifecycle
