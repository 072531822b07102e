// Package harness builds the strata binary and runs real `strata serve`
// processes for tests and benchmarks (e2e/bench, and any test that wants a
// broker in a separate process).
//
// What belongs here: process life cycle only — build once, start on free
// 127.0.0.1 ports, wait for readiness, stop (SIGTERM), kill (SIGKILL),
// restart on the same data directory and ports, observe the process (PID,
// peak RSS, CPU time, /metrics, the log of each start), and fail the test
// whose broker logged a data race or a panic. Linux only: it reads /proc
// and uses Pdeathsig. Kafka clients, workloads and assertions belong to the
// callers (e2e keeps its client helpers beside its tests); this package
// imports nothing of the broker, so it keeps working while the broker
// changes.
//
// Environment, read once per test process by Binary:
//   - STRATA_BINARY=path (or STRATA_E2E_BINARY=path, the e2e suite's name
//     for it) runs a prebuilt binary instead of building ./cmd/strata.
//   - STRATA_E2E_RACE=1 builds the binary with -race; the race detector's
//     reports go to the log, and the log check below fails the test.
//
// Goroutines: Start launches exactly one goroutine per process incarnation,
// which calls exec.Cmd.Wait and then closes the incarnation's done channel;
// it owns the *exec.Cmd from then on. Every other method runs on the caller's
// goroutine. A Broker is not safe for concurrent use, with one exception:
// PID, Running, PeakRSS, CPUTime, Metrics, Exited and the address accessors only read,
// and may be called from other goroutines while no Start or Restart runs.
//
// Invariants:
//   - The binary is built at most once per test process (Binary), from the
//     module root found with `go env GOMOD`, unless STRATA_BINARY or
//     STRATA_E2E_BINARY names a prebuilt one. Call Main from TestMain to
//     remove the build directory on exit; otherwise it is left in os.TempDir.
//   - Addresses never change across Restart: clients keep their seed
//     brokers, and data written before a restart is found after it.
//   - Every process started through a testing.TB is killed by a tb.Cleanup
//     if the test did not stop it, so a failing test never leaks a broker.
//     The same cleanup then fails the test if any line of the log contains
//     "WARNING: DATA RACE" or "panic", and prints the log's tail if the test
//     failed.
//   - stdout and stderr of every incarnation are appended to one log file
//     (LogPath), each after a "=== harness: start #N" line whose offset the
//     Broker keeps, so LogOfStart(n) is exactly what incarnation n wrote. The
//     tail of the log is also in the error of a failed start.
package harness
