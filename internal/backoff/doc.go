// Package backoff computes the waits between retries of an operation that
// keeps failing (a partition's recovery, the removal of a leftover
// directory, a tiering step, a corrupt chunk's quarantine, an accept loop),
// with optional jitter, and sleeps them interruptibly.
//
// What belongs here: the arithmetic of exponential backoff and a sleep that
// a shutdown can cut short, as leaf helpers with no knowledge of what is
// retried. What does not: deciding what to retry or how to log it (the
// callers; see internal/logutil for rate-limited logging).
//
// Concurrency: a Backoff belongs to the one goroutine that retries; Sleep
// may be called from any goroutine.
package backoff
