// Command strata is the Strata broker binary.
//
//	strata serve [--config file.yaml] [--key=value ...]   run a broker
//	strata topic create|list|describe|delete|alter-config  admin via the Kafka protocol
//	strata version
//
// What belongs here: argument parsing (stdlib flag, one FlagSet per
// subcommand), process lifecycle (signals, exit codes, the order in which
// telemetry, listener and broker start and stop) and the admin client
// commands, which talk to any Kafka-compatible cluster through franz-go's
// kadm. What does not: configuration keys and validation
// (internal/config), metrics plumbing (internal/telemetry), broker logic.
//
// Exit codes: 0 success (including a clean shutdown after SIGTERM/SIGINT
// and --help), 1 runtime failure, 2 usage or configuration error.
//
// Goroutines in serve: main waits for a signal or for Broker.Serve (run in
// its own goroutine) to return; the telemetry HTTP server runs in its own
// goroutine; a second signal during shutdown exits at once with code 1.
package main
