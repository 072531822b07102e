// Package logutil holds logging helpers shared by Strata's packages. Today
// that is Limiter, which keeps a condition that lasts (a store that stays
// down, a corrupt object a consumer keeps asking for) from turning into a
// flood of identical log lines.
//
// What belongs here: leaf helpers over log/slog with no knowledge of
// brokers, partitions or stores. What does not: choosing what to log (the
// callers), log configuration (cmd/strata).
//
// Concurrency: a Limiter may be used from any goroutine; its table of keys
// is guarded by its mutex and bounded (MaxLimiterKeys).
package logutil
