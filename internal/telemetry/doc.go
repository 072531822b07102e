// Package telemetry wires metrics exporters and the operational HTTP
// endpoints. It owns no metrics itself: each package creates its own
// instruments from the global OpenTelemetry meter provider (otel.Meter),
// which Setup installs.
//
// What belongs here: the MeterProvider with the Prometheus exporter (a
// private prometheus.Registry, plus the Go runtime and process collectors),
// and the HTTP server for /healthz, /readyz and /metrics. What does not:
// instruments, names of metrics, anything broker-specific (readiness is a
// func the caller supplies).
//
// Goroutines: Listen starts one goroutine running http.Server.Serve, ended
// by Server.Shutdown. Setup must run before other packages create their
// instruments if those should be exported without going through the
// global delegate; instruments created earlier are forwarded anyway.
package telemetry
