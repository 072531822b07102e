// Package e2e holds Strata's end-to-end tests: each test starts real `strata serve` processes
// (built once per `go test` run from ./cmd/strata) on 127.0.0.1 ports and drives them with real,
// unmodified Kafka clients — kcat (librdkafka), kafka-python and confluent-kafka-python (the
// Debian packages, run with /usr/bin/python3), kafkajs (npm, e2e/js) and, in process, franz-go
// and sarama — plus raw hostile frames and the `strata topic` admin CLI.
//
// What belongs here: tests that need a real broker process and real clients. What does not:
// unit tests of one package (they live beside the package) and benchmarks (`strata bench`).
//
// The external clients are installed by scripts/install-test-deps.sh (which `make test` runs).
// A test whose client is missing fails with a message naming that script; it never skips.
//
// Running: `go test ./e2e/` (or `-run TestKcat` etc.). STRATA_E2E_BINARY=path runs a prebuilt
// binary instead of building ./cmd/strata; STRATA_E2E_RACE=1 builds the broker with the race
// detector. A data race or a panic in the broker's log fails the test that saw it. The processes
// are run by internal/harness, which reads these variables (STRATA_BINARY works too).
//
// Goroutines: each test owns its broker processes (harness.Broker, wrapped as strataProc in
// harness_test.go beside the shared Kafka-client and external-tool helpers) and the goroutines it
// starts; every process a test starts is killed in t.Cleanup, and its log is printed when the
// test fails.
//
// Invariants the tests check: every acknowledged record is readable at its offset, byte for
// byte, after a clean restart or a kill -9; an idempotent producer's retries across a crash
// write nothing twice; hostile input never stops the broker serving well-behaved clients.
package e2e
