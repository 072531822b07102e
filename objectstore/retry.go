package objectstore

// Retries, timeouts and request concurrency of the network backends (s3,
// minio). The SDKs' own retryers are switched off (aws.NopRetryer,
// minio.Options.MaxRetries = 1), so that requests are retried in one place
// only, here, by one policy:
//
//   - Which failures are retried. Throttling (429, 503 SlowDown), other 5xx
//     answers, S3's RequestTimeout, a request attempt that ran past
//     Options.OpTimeout, and transient network errors (refused or reset
//     connections, broken pipes, unexpected EOF). Never an answer that
//     describes the object: not found, precondition failed, invalid range;
//     never a 4xx other than those listed; never once the caller's context
//     is done.
//   - Conditional commits (a PutIfAbsent or PutIfMatch PutObject, or its
//     CompleteMultipartUpload) are retried only when the failure shows the
//     request was not applied: throttled, refused with RequestTimeout (the
//     server never got the whole request), or the connection could not be
//     made. After an ambiguous failure (a 500, a reset, a timeout) the
//     first attempt may have committed, and a retry would then fail with
//     ErrPreconditionFailed against the caller's own write; so the error is
//     returned as it is, and the caller Stats the key if it must know.
//   - Backoff: exponential with full jitter, a uniform draw from
//     [0, min(RetryMaxDelay, RetryBaseDelay·2^attempt)), cut short when the
//     context is done.
//   - Concurrency: a semaphore of MaxConcurrency slots per store; each
//     request attempt holds one (a Get until its reader is closed), and
//     none is held while backing off.
//   - Timeouts: every request attempt gets OpTimeout; for Get that bounds
//     the wait for the response headers, not the reading of the body,
//     which the caller's context governs.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"time"
)

// Options tunes a network backend. The zero value means every default.
type Options struct {
	// Credentials: a static key pair. When zero, the backends read
	// EnvAccessKey and EnvSecretKey; when those are unset too, s3 uses the
	// AWS default chain (environment, shared config, instance profile)
	// and minio fails to open.
	Credentials Credentials

	// MaxRetries is how many times a failed request is retried after the
	// first attempt (default DefaultMaxRetries; negative: never).
	MaxRetries int
	// RetryBaseDelay and RetryMaxDelay bound the backoff before retry n
	// (from 0) to min(RetryMaxDelay, RetryBaseDelay·2^n), with full jitter
	// (defaults DefaultRetryBaseDelay, DefaultRetryMaxDelay).
	RetryBaseDelay, RetryMaxDelay time.Duration
	// OpTimeout bounds each request attempt (default DefaultOpTimeout);
	// for Get, until the response headers arrive.
	OpTimeout time.Duration
	// MaxConcurrency bounds the requests in flight per store, across all
	// its callers (default DefaultMaxConcurrency).
	MaxConcurrency int

	// PartSize: objects up to this size are put with one request, larger
	// ones by multipart upload in parts of this size (default
	// DefaultPartSize, at least MinPartSize). A put holds at most
	// (PartConcurrency+1)·PartSize bytes of its body in memory.
	PartSize int64
	// PartConcurrency is how many parts of one put upload at once
	// (default DefaultPartConcurrency).
	PartConcurrency int

	// NoConditionalPuts reports both conditional-put capabilities false,
	// for an S3-compatible server that ignores If-None-Match and If-Match
	// on PUT (it would turn them into plain puts). AWS S3 and MinIO
	// honour them.
	NoConditionalPuts bool
}

// Defaults of Options.
const (
	DefaultMaxRetries      = 5
	DefaultRetryBaseDelay  = 100 * time.Millisecond
	DefaultRetryMaxDelay   = 5 * time.Second
	DefaultOpTimeout       = 60 * time.Second
	DefaultMaxConcurrency  = 64
	DefaultPartSize        = 8 << 20 // 8 MiB: 80 GiB objects within S3's 10,000 parts
	DefaultPartConcurrency = 4
	// MinPartSize is S3's smallest part (but the last).
	MinPartSize = 5 << 20
	// maxParts is S3's limit on parts per upload.
	maxParts = 10_000
)

// withDefaults fills the zero fields and checks the others.
func (o Options) withDefaults() (Options, error) {
	if err := o.Credentials.validate(); err != nil {
		return o, err
	}
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = DefaultMaxRetries
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	if o.RetryBaseDelay == 0 {
		o.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if o.RetryMaxDelay == 0 {
		o.RetryMaxDelay = DefaultRetryMaxDelay
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = DefaultOpTimeout
	}
	if o.MaxConcurrency == 0 {
		o.MaxConcurrency = DefaultMaxConcurrency
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.PartConcurrency == 0 {
		o.PartConcurrency = DefaultPartConcurrency
	}
	switch {
	case o.RetryBaseDelay < 0 || o.RetryMaxDelay < 0 || o.OpTimeout < 0:
		return o, errors.New("object store options: negative duration")
	case o.RetryMaxDelay < o.RetryBaseDelay:
		return o, fmt.Errorf("object store options: RetryMaxDelay %v below RetryBaseDelay %v", o.RetryMaxDelay, o.RetryBaseDelay)
	case o.MaxConcurrency < 1 || o.PartConcurrency < 1:
		return o, errors.New("object store options: MaxConcurrency and PartConcurrency must be positive")
	case o.PartSize < MinPartSize:
		return o, fmt.Errorf("object store options: PartSize %d below S3's minimum %d", o.PartSize, MinPartSize)
	case o.PartSize > 5<<30:
		return o, fmt.Errorf("object store options: PartSize %d above S3's maximum %d", o.PartSize, int64(5<<30))
	}
	return o, nil
}

// retryClass says whether and when a failed request may be retried.
type retryClass int

const (
	// noRetry: the answer is final (or the caller's context is done).
	noRetry retryClass = iota
	// retryUnapplied: transient, and the request certainly was not
	// applied (throttled, or never reached the server).
	retryUnapplied
	// retryAmbiguous: transient, but the request may have been applied.
	retryAmbiguous
)

// reqKind says which failures a request may be retried after.
type reqKind int

const (
	// idempotent requests are retried after any transient failure.
	idempotent reqKind = iota
	// conditionalCommit requests only after failures that show they were
	// not applied.
	conditionalCommit
)

// errAttemptTimeout is the cause of a request attempt's context when
// OpTimeout ran out.
var errAttemptTimeout = errors.New("object store request timed out")

// remoteFailure is how a backend describes a failed request.
type remoteFailure struct {
	status int    // HTTP status; 0 when no answer was received
	code   string // S3 error code ("NoSuchKey", "SlowDown" …), if any
}

// policy applies Options to requests: the semaphore, attempt timeouts and
// retries with backoff.
type policy struct {
	opts     Options
	sem      chan struct{}
	describe func(error) remoteFailure // the backend's error decoder
	// sleep waits for d or until ctx is done (tests may replace it).
	sleep func(ctx context.Context, d time.Duration) error
	// onFull, if set, is called when a request must wait for a slot
	// (tests).
	onFull func()
}

func newPolicy(opts Options, describe func(error) remoteFailure) *policy {
	return &policy{opts: opts, sem: make(chan struct{}, opts.MaxConcurrency), describe: describe, sleep: delay}
}

// acquire takes a request slot, or fails when ctx is done first.
func (p *policy) acquire(ctx context.Context) error {
	select {
	case p.sem <- struct{}{}:
		return nil
	default:
	}
	if p.onFull != nil {
		p.onFull()
	}
	select {
	case p.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *policy) release() { <-p.sem }

// backoff is the upper bound of the wait before retry n (from 0).
func (p *policy) backoff(n int) time.Duration {
	d := p.opts.RetryBaseDelay
	for range n {
		if d >= p.opts.RetryMaxDelay/2 {
			return p.opts.RetryMaxDelay
		}
		d *= 2
	}
	return min(d, p.opts.RetryMaxDelay)
}

// jitter draws the wait before retry n: full jitter over [0, backoff(n)).
func (p *policy) jitter(n int) time.Duration {
	b := p.backoff(n)
	if b <= 0 {
		return 0
	}
	return rand.N(b)
}

// classify says whether err, from a request attempt whose context was
// actx under the caller's ctx, may be retried.
func (p *policy) classify(ctx, actx context.Context, err error) retryClass {
	if ctx.Err() != nil {
		return noRetry
	}
	if context.Cause(actx) == errAttemptTimeout {
		return retryAmbiguous
	}
	f := p.describe(err)
	switch f.code {
	case "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests":
		return retryUnapplied
	case "RequestTimeout":
		// The server gave up waiting for the request body.
		return retryUnapplied
	case "InternalError", "ServiceUnavailable":
		return retryAmbiguous
	}
	switch {
	case f.status == 429 || f.status == 503:
		return retryUnapplied
	case f.status >= 500:
		return retryAmbiguous
	case f.status != 0:
		return noRetry
	}
	return classifyNetError(err)
}

// classifyNetError sorts an error that came without an answer.
func classifyNetError(err error) retryClass {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return retryUnapplied
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return retryUnapplied
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && (dns.IsTemporary || dns.IsTimeout) {
		return retryUnapplied
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return retryAmbiguous
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return retryAmbiguous
	}
	if op != nil {
		return retryAmbiguous // a read or write on the connection failed
	}
	return noRetry
}

// retryable reports whether a request of kind may be retried after a
// failure of class c.
func retryable(kind reqKind, c retryClass) bool {
	switch c {
	case retryUnapplied:
		return true
	case retryAmbiguous:
		return kind == idempotent
	}
	return false
}

// do runs fn, one request, with a slot, an attempt timeout and retries. It
// returns fn's last error, or ctx's error (wrapping the last failure)
// once ctx is done.
func (p *policy) do(ctx context.Context, kind reqKind, fn func(ctx context.Context) error) error {
	for n := 0; ; n++ {
		if err := p.acquire(ctx); err != nil {
			return err
		}
		actx, cancel := context.WithTimeoutCause(ctx, p.opts.OpTimeout, errAttemptTimeout)
		err := fn(actx)
		class := noRetry
		if err != nil {
			class = p.classify(ctx, actx, err)
			err = p.timedOut(ctx, actx, err)
		}
		cancel()
		p.release()
		if err == nil {
			return nil
		}
		if err := p.wait(ctx, kind, class, n, err); err != nil {
			return err
		}
	}
}

// timedOut rewrites the error of an attempt that OpTimeout cut short:
// the SDK reports its context's error, which must not be mistaken for the
// caller's context ending, so that error is kept as text only.
func (p *policy) timedOut(ctx, actx context.Context, err error) error {
	if ctx.Err() == nil && context.Cause(actx) == errAttemptTimeout {
		return fmt.Errorf("%w after %v (%v)", errAttemptTimeout, p.opts.OpTimeout, err)
	}
	return err
}

// wait decides after failure n (from 0) of class: it returns nil after
// backing off when the request should be tried again, else the error to
// return.
func (p *policy) wait(ctx context.Context, kind reqKind, class retryClass, n int, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(err, cerr) {
			return err
		}
		return fmt.Errorf("%w (last failure: %w)", cerr, err)
	}
	if !retryable(kind, class) || n >= p.opts.MaxRetries {
		if n > 0 {
			return fmt.Errorf("after %d attempts: %w", n+1, err)
		}
		return err
	}
	if serr := p.sleep(ctx, p.jitter(n)); serr != nil {
		return fmt.Errorf("%w (last failure: %w)", serr, err)
	}
	return nil
}
