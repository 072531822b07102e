package objectstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeS3 is an HTTP server that answers object requests from a script,
// for both network backends: it counts the requests and lets a test
// decide each answer. minio-go's bucket-location lookups are answered
// (us-east-1) and not counted.
type fakeS3 struct {
	srv *httptest.Server
	mu  struct {
		sync.Mutex
		requests []string // "METHOD /path?query", in arrival order
	}
	// answer is called for every counted request; n counts the requests
	// with the same method before this one (from 0).
	answer func(w http.ResponseWriter, r *http.Request, n int)
}

func newFakeS3(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, n int)) *fakeS3 {
	f := &fakeS3{answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if _, ok := r.URL.Query()["location"]; ok {
			w.Header().Set("Content-Type", "application/xml")
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
				`<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">us-east-1</LocationConstraint>`)
			return
		}
		f.mu.Lock()
		n := 0
		for _, req := range f.mu.requests {
			if strings.HasPrefix(req, r.Method+" ") {
				n++
			}
		}
		f.mu.requests = append(f.mu.requests, r.Method+" "+r.URL.RequestURI())
		f.mu.Unlock()
		f.answer(w, r, n)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// count returns how many requests with method arrived.
func (f *fakeS3) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, req := range f.mu.requests {
		if strings.HasPrefix(req, method+" ") {
			n++
		}
	}
	return n
}

func (f *fakeS3) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.mu.requests...)
}

// s3Error writes an S3 error reply.
func s3Error(w http.ResponseWriter, r *http.Request, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>fake %s</Message>`+
			`<Resource>%s</Resource><RequestId>fake</RequestId></Error>`, code, code, r.URL.Path)
	}
}

// objectHeaders writes the headers of a stored 5-byte object.
func objectHeaders(w http.ResponseWriter) {
	w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
	w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
	w.Header().Set("Content-Length", "5")
}

// answerOK answers a request as if it succeeded.
func answerOK(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodHead:
		objectHeaders(w)
	case http.MethodGet:
		objectHeaders(w)
		_, _ = io.WriteString(w, "hello")
	case http.MethodPut:
		w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
	case http.MethodPost: // DeleteObjects
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
			`<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></DeleteResult>`)
	default:
		w.WriteHeader(http.StatusNotImplemented)
	}
}

// fastRetries retries quickly, so the tests do not wait on backoff.
var fastRetries = Options{
	Credentials:    Credentials{AccessKey: "AKIDFAKE", SecretKey: "fake-secret-key"},
	RetryBaseDelay: time.Millisecond,
	RetryMaxDelay:  2 * time.Millisecond,
}

// backendsOn opens both network backends on the fake server.
func backendsOn(t *testing.T, f *fakeS3, opts Options) map[string]Store {
	t.Helper()
	u, err := url.Parse(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Store{}
	for name, raw := range map[string]string{
		"s3":    "s3://bucket?region=us-east-1&endpoint=" + url.QueryEscape(f.srv.URL),
		"minio": "minio://" + u.Host + "/bucket?secure=false",
	} {
		s, err := OpenWith(t.Context(), raw, opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { s.Close() })
		out[name] = s
	}
	return out
}

// forEachBackend runs fn against each backend on its own fake server
// answering with answer.
func forEachBackend(t *testing.T, opts Options, answer func(w http.ResponseWriter, r *http.Request, n int),
	fn func(t *testing.T, s Store, f *fakeS3)) {
	for _, name := range []string{"s3", "minio"} {
		t.Run(name, func(t *testing.T) {
			f := newFakeS3(t, answer)
			fn(t, backendsOn(t, f, opts)[name], f)
		})
	}
}

func TestRetryThrottledThenSucceeds(t *testing.T) {
	forEachBackend(t, fastRetries, func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case n == 0:
			s3Error(w, r, http.StatusServiceUnavailable, "SlowDown")
		case n == 1:
			s3Error(w, r, http.StatusTooManyRequests, "TooManyRequests")
		case n == 2:
			s3Error(w, r, http.StatusInternalServerError, "InternalError")
		default:
			answerOK(w, r)
		}
	}, func(t *testing.T, s Store, f *fakeS3) {
		info, err := s.Stat(t.Context(), "k")
		if err != nil {
			t.Fatalf("Stat after 503, 429 and 500: %v", err)
		}
		if info.Size != 5 || info.ETag != "0123456789abcdef0123456789abcdef" {
			t.Fatalf("Stat = %+v", info)
		}
		if got := f.count(http.MethodHead); got != 4 {
			t.Fatalf("%d HEAD requests, want 4 (three failures, one success): %q", got, f.requests())
		}
	})
}

func TestRetryGetThenReads(t *testing.T) {
	forEachBackend(t, fastRetries, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 0 {
			s3Error(w, r, http.StatusServiceUnavailable, "SlowDown")
			return
		}
		answerOK(w, r)
	}, func(t *testing.T, s Store, f *fakeS3) {
		rc, info, err := s.Get(t.Context(), "k", 0, ToEnd)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(b) != "hello" || info.Size != 5 {
			t.Fatalf("Get: %q, %+v, %v", b, info, err)
		}
		if got := f.count(http.MethodGet); got != 2 {
			t.Fatalf("%d GET requests, want 2", got)
		}
	})
}

func TestNoRetryOnFinalAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		code   string
		call   func(ctx context.Context, s Store) error
		want   error
		method string
	}{
		{"stat-404", 404, "NoSuchKey", func(ctx context.Context, s Store) error {
			_, err := s.Stat(ctx, "k")
			return err
		}, ErrNotExist, http.MethodHead},
		{"get-404", 404, "NoSuchKey", func(ctx context.Context, s Store) error {
			_, _, err := s.Get(ctx, "k", 0, ToEnd)
			return err
		}, ErrNotExist, http.MethodGet},
		{"get-416", 416, "InvalidRange", func(ctx context.Context, s Store) error {
			_, _, err := s.Get(ctx, "k", 10, 5)
			return err
		}, ErrInvalidRange, http.MethodGet},
		{"put-if-absent-412", 412, "PreconditionFailed", func(ctx context.Context, s Store) error {
			_, err := s.PutIfAbsent(ctx, "k", strings.NewReader("x"), 1)
			return err
		}, ErrPreconditionFailed, http.MethodPut},
		{"put-if-match-409", 409, "ConditionalRequestConflict", func(ctx context.Context, s Store) error {
			_, err := s.PutIfMatch(ctx, "k", "etag", strings.NewReader("x"), 1)
			return err
		}, ErrPreconditionFailed, http.MethodPut},
		{"put-if-match-404", 404, "NoSuchKey", func(ctx context.Context, s Store) error {
			_, err := s.PutIfMatch(ctx, "k", "etag", strings.NewReader("x"), 1)
			if !errors.Is(err, ErrNotExist) {
				return fmt.Errorf("not ErrNotExist: %w", err)
			}
			return err
		}, ErrPreconditionFailed, http.MethodPut},
		{"put-403", 403, "AccessDenied", func(ctx context.Context, s Store) error {
			_, err := s.Put(ctx, "k", strings.NewReader("x"), 1)
			return err
		}, nil, http.MethodPut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, fastRetries, func(w http.ResponseWriter, r *http.Request, n int) {
				s3Error(w, r, tc.status, tc.code)
			}, func(t *testing.T, s Store, f *fakeS3) {
				err := tc.call(t.Context(), s)
				if err == nil {
					t.Fatal("succeeded")
				}
				if tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("error %v, want %v", err, tc.want)
				}
				if got := f.count(tc.method); got != 1 {
					t.Fatalf("%d %s requests, want 1 (no retry): %v", got, tc.method, err)
				}
			})
		})
	}
}

func TestRetriesExhausted(t *testing.T) {
	opts := fastRetries
	opts.MaxRetries = 3
	forEachBackend(t, opts, func(w http.ResponseWriter, r *http.Request, n int) {
		s3Error(w, r, http.StatusInternalServerError, "InternalError")
	}, func(t *testing.T, s Store, f *fakeS3) {
		_, err := s.Stat(t.Context(), "k")
		if err == nil || errors.Is(err, ErrNotExist) || !strings.Contains(err.Error(), "after 4 attempts") {
			t.Fatalf("Stat against a failing server: %v", err)
		}
		if got := f.count(http.MethodHead); got != 4 {
			t.Fatalf("%d HEAD requests, want 1 + MaxRetries = 4", got)
		}
	})
	opts.MaxRetries = -1
	forEachBackend(t, opts, func(w http.ResponseWriter, r *http.Request, n int) {
		s3Error(w, r, http.StatusServiceUnavailable, "SlowDown")
	}, func(t *testing.T, s Store, f *fakeS3) {
		if _, err := s.Stat(t.Context(), "k"); err == nil {
			t.Fatal("Stat succeeded")
		}
		if got := f.count(http.MethodHead); got != 1 {
			t.Fatalf("%d HEAD requests with retries off, want 1", got)
		}
	})
}

// A conditional put is retried only when the failure shows it was not
// applied; a plain put after any transient failure.
func TestConditionalPutRetries(t *testing.T) {
	failFirstPut := func(status int, code string) func(w http.ResponseWriter, r *http.Request, n int) {
		return func(w http.ResponseWriter, r *http.Request, n int) {
			if r.Method == http.MethodPut && n == 0 {
				s3Error(w, r, status, code)
				return
			}
			answerOK(w, r)
		}
	}
	t.Run("ambiguous", func(t *testing.T) {
		forEachBackend(t, fastRetries, failFirstPut(500, "InternalError"), func(t *testing.T, s Store, f *fakeS3) {
			_, err := s.PutIfAbsent(t.Context(), "k", strings.NewReader("hello"), 5)
			if err == nil || errors.Is(err, ErrPreconditionFailed) {
				t.Fatalf("PutIfAbsent after a 500: %v; want the 500, not a retry", err)
			}
			if got := f.count(http.MethodPut); got != 1 {
				t.Fatalf("%d PUT requests, want 1", got)
			}
		})
	})
	t.Run("throttled", func(t *testing.T) {
		forEachBackend(t, fastRetries, failFirstPut(503, "SlowDown"), func(t *testing.T, s Store, f *fakeS3) {
			if _, err := s.PutIfAbsent(t.Context(), "k", strings.NewReader("hello"), 5); err != nil {
				t.Fatalf("PutIfAbsent after a 503: %v", err)
			}
			if got := f.count(http.MethodPut); got != 2 {
				t.Fatalf("%d PUT requests, want 2", got)
			}
		})
	})
	t.Run("plain", func(t *testing.T) {
		forEachBackend(t, fastRetries, failFirstPut(500, "InternalError"), func(t *testing.T, s Store, f *fakeS3) {
			info, err := s.Put(t.Context(), "k", strings.NewReader("hello"), 5)
			if err != nil {
				t.Fatalf("Put after a 500: %v", err)
			}
			if got := f.count(http.MethodPut); got != 2 {
				t.Fatalf("%d PUT requests, want 2", got)
			}
			if info.Size != 5 || info.ETag == "" {
				t.Fatalf("Put = %+v", info)
			}
		})
	})
}

// A cancelled context ends the backoff and the call, with ctx's error.
func TestRetryStopsOnCancel(t *testing.T) {
	opts := fastRetries
	opts.RetryBaseDelay, opts.RetryMaxDelay = time.Hour, time.Hour
	for _, name := range []string{"s3", "minio"} {
		t.Run(name, func(t *testing.T) {
			arrived := make(chan struct{}, 100)
			f := newFakeS3(t, func(w http.ResponseWriter, r *http.Request, n int) {
				arrived <- struct{}{}
				s3Error(w, r, http.StatusServiceUnavailable, "SlowDown")
			})
			s := backendsOn(t, f, opts)[name]
			ctx, cancel := context.WithCancel(t.Context())
			errc := make(chan error, 1)
			go func() {
				_, err := s.Stat(ctx, "k")
				errc <- err
			}()
			<-arrived
			cancel()
			err := <-errc
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Stat cancelled while backing off: %v", err)
			}
			if got := f.count(http.MethodHead); got != 1 {
				t.Fatalf("%d HEAD requests, want 1", got)
			}
		})
	}
}

// An attempt that runs past OpTimeout is abandoned and retried.
func TestOpTimeoutRetries(t *testing.T) {
	opts := fastRetries
	opts.OpTimeout = 200 * time.Millisecond
	forEachBackend(t, opts, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 0 {
			<-r.Context().Done() // hang until the client gives up
			return
		}
		answerOK(w, r)
	}, func(t *testing.T, s Store, f *fakeS3) {
		if _, err := s.Stat(t.Context(), "k"); err != nil {
			t.Fatalf("Stat after a hung attempt: %v", err)
		}
		if got := f.count(http.MethodHead); got != 2 {
			t.Fatalf("%d HEAD requests, want 2", got)
		}
	})
}

// When every attempt times out, the error says so and is not mistaken for
// the caller's context ending.
func TestOpTimeoutExhausted(t *testing.T) {
	opts := fastRetries
	opts.OpTimeout = 100 * time.Millisecond
	opts.MaxRetries = 1
	forEachBackend(t, opts, func(w http.ResponseWriter, r *http.Request, n int) {
		<-r.Context().Done()
	}, func(t *testing.T, s Store, f *fakeS3) {
		_, err := s.Stat(t.Context(), "k")
		_, _, gerr := s.Get(t.Context(), "k", 0, ToEnd)
		for _, err := range []error{err, gerr} {
			if !errors.Is(err, errAttemptTimeout) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				t.Fatalf("calls that time out: %v", err)
			}
		}
		if h, g := f.count(http.MethodHead), f.count(http.MethodGet); h != 2 || g != 2 {
			t.Fatalf("%d HEAD and %d GET requests, want 2 of each", h, g)
		}
	})
}

// At most MaxConcurrency requests are in flight per store: with every
// request held at the server, the calls beyond the limit wait for a slot.
func TestMaxConcurrency(t *testing.T) {
	const limit, calls = 2, 8
	opts := fastRetries
	opts.MaxConcurrency = limit
	for _, name := range []string{"s3", "minio"} {
		t.Run(name, func(t *testing.T) {
			var (
				mu                sync.Mutex
				inflight, maxSeen int
				arrived           = make(chan struct{}, calls)
				waiting           = make(chan struct{}, calls)
				gate              = make(chan struct{})
			)
			f := newFakeS3(t, func(w http.ResponseWriter, r *http.Request, n int) {
				mu.Lock()
				inflight++
				maxSeen = max(maxSeen, inflight)
				mu.Unlock()
				arrived <- struct{}{}
				<-gate
				mu.Lock()
				inflight--
				mu.Unlock()
				answerOK(w, r)
			})
			s := backendsOn(t, f, opts)[name]
			s.(*netStore).p.onFull = func() { waiting <- struct{}{} }
			var wg sync.WaitGroup
			errs := make(chan error, calls)
			for range calls {
				wg.Go(func() {
					if _, err := s.Stat(t.Context(), "k"); err != nil {
						errs <- err
					}
				})
			}
			// Every call either reaches the server (and is held there) or
			// waits for a slot; only then are the held ones let go.
			nArrived, nWaiting := 0, 0
			for nArrived+nWaiting < calls {
				select {
				case <-arrived:
					nArrived++
				case <-waiting:
					nWaiting++
				}
			}
			close(gate)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if nArrived != limit || nWaiting != calls-limit {
				t.Fatalf("%d calls reached the server and %d waited, want %d and %d", nArrived, nWaiting, limit, calls-limit)
			}
			if maxSeen > limit {
				t.Fatalf("%d requests in flight at once, MaxConcurrency %d", maxSeen, limit)
			}
		})
	}
}

func TestDeleteRetriesAndNamesFailedKeys(t *testing.T) {
	forEachBackend(t, fastRetries, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 0 {
			s3Error(w, r, http.StatusServiceUnavailable, "SlowDown")
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
			`<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`+
			`<Error><Key>locked/key</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`+
			`</DeleteResult>`)
	}, func(t *testing.T, s Store, f *fakeS3) {
		err := s.Delete(t.Context(), "a", "locked/key", "b")
		if err == nil || !strings.Contains(err.Error(), `"locked/key"`) || !strings.Contains(err.Error(), "AccessDenied") {
			t.Fatalf("Delete with a refused key: %v", err)
		}
		if strings.Contains(err.Error(), `"a"`) {
			t.Fatalf("the error names a deleted key: %v", err)
		}
		if got := f.count(http.MethodPost); got != 2 {
			t.Fatalf("%d DeleteObjects requests, want 2 (a 503, then the answer)", got)
		}
	})
}

func TestBackoffBounded(t *testing.T) {
	opts, err := Options{RetryBaseDelay: 100 * time.Millisecond, RetryMaxDelay: 5 * time.Second}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	p := newPolicy(opts, func(error) remoteFailure { return remoteFailure{} })
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for n := range 100 {
		b := p.backoff(n)
		if n < len(want) && b != want[n]*time.Millisecond {
			t.Fatalf("backoff(%d) = %v, want %v", n, b, want[n]*time.Millisecond)
		}
		if b > opts.RetryMaxDelay || b <= 0 {
			t.Fatalf("backoff(%d) = %v outside (0, %v]", n, b, opts.RetryMaxDelay)
		}
		for range 50 {
			if j := p.jitter(n); j < 0 || j >= b {
				t.Fatalf("jitter(%d) = %v outside [0, %v)", n, j, b)
			}
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.MaxRetries != DefaultMaxRetries || o.RetryBaseDelay != DefaultRetryBaseDelay || o.RetryMaxDelay != DefaultRetryMaxDelay ||
		o.OpTimeout != DefaultOpTimeout || o.MaxConcurrency != DefaultMaxConcurrency || o.PartSize != DefaultPartSize ||
		o.PartConcurrency != DefaultPartConcurrency {
		t.Fatalf("defaults: %+v", o)
	}
	for _, bad := range []Options{
		{PartSize: MinPartSize - 1},
		{RetryBaseDelay: time.Second, RetryMaxDelay: time.Millisecond},
		{MaxConcurrency: -1},
		{OpTimeout: -time.Second},
		{Credentials: Credentials{AccessKey: "only-half"}},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
}
