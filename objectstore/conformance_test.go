package objectstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stratalog/strata/internal/miniotest"
	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/objectstore/objectstoretest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

func TestMemConformance(t *testing.T) {
	objectstoretest.Run(t, func(t *testing.T) objectstore.Store { return objectstore.NewMem() })
}

func newFile(t *testing.T) objectstore.Store {
	s, err := objectstore.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFileConformance(t *testing.T) {
	objectstoretest.Run(t, newFile)
}

// The wrappers with nothing to inject are transparent.
func TestFaultyConformance(t *testing.T) {
	t.Run("mem", func(t *testing.T) {
		objectstoretest.Run(t, func(t *testing.T) objectstore.Store { return objectstore.NewFaulty(objectstore.NewMem(), 1) })
	})
	t.Run("file", func(t *testing.T) {
		objectstoretest.Run(t, func(t *testing.T) objectstore.Store { return objectstore.NewFaulty(newFile(t), 1) })
	})
	// A backend without conditional puts: the suite checks ErrUnsupported.
	t.Run("no-conditional", func(t *testing.T) {
		objectstoretest.Run(t, func(t *testing.T) objectstore.Store {
			f := objectstore.NewFaulty(objectstore.NewMem(), 1)
			f.DisableConditional(true)
			return f
		})
	})
}

func TestInstrumentedConformance(t *testing.T) {
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	t.Cleanup(func() { _ = provider.Shutdown(t.Context()) })
	objectstoretest.Run(t, func(t *testing.T) objectstore.Store {
		return objectstore.InstrumentedWith(newFile(t), "test", provider)
	})
}

// minioStores opens stores of both network backends on a real MinIO
// server, each in a fresh bucket, with prefix under it.
type minioBackend struct {
	name string
	url  func(srv *miniotest.Server, bucket, prefix string) string
}

var minioBackends = []minioBackend{
	{"s3", func(srv *miniotest.Server, bucket, prefix string) string {
		return "s3://" + bucket + "/" + prefix + "?region=us-east-1&endpoint=" + url.QueryEscape(srv.Endpoint())
	}},
	{"minio", func(srv *miniotest.Server, bucket, prefix string) string {
		return "minio://" + srv.Addr() + "/" + bucket + "/" + prefix + "?secure=false"
	}},
}

func serverOptions(srv *miniotest.Server) objectstore.Options {
	return objectstore.Options{Credentials: objectstore.Credentials{AccessKey: srv.AccessKey(), SecretKey: srv.SecretKey()}}
}

func openURL(t *testing.T, rawURL string, opts objectstore.Options) objectstore.Store {
	t.Helper()
	s, err := objectstore.OpenWith(t.Context(), rawURL, opts)
	if err != nil {
		t.Fatalf("OpenWith(%s): %v", rawURL, err)
	}
	return s
}

// The network backends against a real MinIO server. Without the minio
// binary this fails, naming the command that installs it.
func TestMinIOConformance(t *testing.T) {
	srv := miniotest.Start(t)
	for _, b := range minioBackends {
		t.Run(b.name, func(t *testing.T) {
			objectstoretest.Run(t, func(t *testing.T) objectstore.Store {
				return openURL(t, b.url(srv, srv.NewBucket(t), ""), serverOptions(srv))
			})
		})
	}
}

// Stores with a prefix share a bucket without seeing each other's keys.
func TestMinIOPrefixes(t *testing.T) {
	srv := miniotest.Start(t)
	for _, b := range minioBackends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			bucket := srv.NewBucket(t)
			root := openURL(t, b.url(srv, bucket, ""), serverOptions(srv))
			one := openURL(t, b.url(srv, bucket, "tenant/one"), serverOptions(srv))
			two := openURL(t, b.url(srv, bucket, "tenant/two"), serverOptions(srv))
			for _, s := range []objectstore.Store{root, one, two} {
				t.Cleanup(func() { s.Close() })
			}
			for s, content := range map[objectstore.Store]string{one: "one", two: "two"} {
				if _, err := s.Put(ctx, "k", strings.NewReader(content), int64(len(content))); err != nil {
					t.Fatal(err)
				}
			}
			if got := readAll(t, one, "k"); got != "one" {
				t.Fatalf("tenant one reads %q", got)
			}
			if got := readAll(t, root, "tenant/two/k"); got != "two" {
				t.Fatalf("the bucket's root reads %q at tenant/two/k", got)
			}
			if keys := listKeys(t, one, ""); !slices.Equal(keys, []string{"k"}) {
				t.Fatalf("tenant one lists %q", keys)
			}
			if keys := listKeys(t, root, "tenant/"); !slices.Equal(keys, []string{"tenant/one/k", "tenant/two/k"}) {
				t.Fatalf("the root lists %q", keys)
			}
			if err := one.Delete(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			if _, err := one.Stat(ctx, "k"); !errors.Is(err, objectstore.ErrNotExist) {
				t.Fatalf("Stat after Delete: %v", err)
			}
			if got := readAll(t, two, "k"); got != "two" {
				t.Fatalf("tenant one's Delete reached tenant two: %q", got)
			}
			// A prefix takes its length from the key's 1024 bytes.
			// (Segments of at most 255 bytes, MinIO's limit.)
			long := strings.Repeat(strings.Repeat("x", 200)+"/", 4)
			long += strings.Repeat("y", objectstore.MaxKeyBytes-len("tenant/one/")-len(long))
			if _, err := one.Put(ctx, long, strings.NewReader("x"), 1); err != nil {
				t.Fatalf("a key of the longest length the prefix leaves: %v", err)
			}
			if _, err := one.Put(ctx, long+"x", strings.NewReader("x"), 1); !errors.Is(err, objectstore.ErrInvalidKey) {
				t.Fatalf("a key one byte too long with the prefix: %v", err)
			}
		})
	}
}

// Conditional puts of objects large enough for multipart upload commit
// atomically too: the condition is checked when the upload completes.
func TestMinIOMultipartConditional(t *testing.T) {
	srv := miniotest.Start(t)
	opts := serverOptions(srv)
	opts.PartSize = objectstore.MinPartSize
	opts.PartConcurrency = 2
	const size = 3*objectstore.MinPartSize + 12345 // four parts
	body := func(seed byte) io.Reader { return bytes.NewReader(bytes.Repeat([]byte{seed}, size)) }
	for _, b := range minioBackends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			bucket := srv.NewBucket(t)
			s := openURL(t, b.url(srv, bucket, ""), opts)
			t.Cleanup(func() { s.Close() })
			v1, err := s.PutIfAbsent(ctx, "big", body('a'), objectstore.SizeUnknown)
			if err != nil || v1.Size != size {
				t.Fatalf("PutIfAbsent of a new key: %+v, %v", v1, err)
			}
			if _, err := s.PutIfAbsent(ctx, "big", body('b'), size); !errors.Is(err, objectstore.ErrPreconditionFailed) {
				t.Fatalf("PutIfAbsent of an existing key: %v", err)
			}
			v2, err := s.PutIfMatch(ctx, "big", v1.ETag, body('c'), size)
			if err != nil || v2.ETag == v1.ETag {
				t.Fatalf("PutIfMatch with the current ETag: %+v, %v", v2, err)
			}
			if _, err := s.PutIfMatch(ctx, "big", v1.ETag, body('d'), size); !errors.Is(err, objectstore.ErrPreconditionFailed) {
				t.Fatalf("PutIfMatch with a stale ETag: %v", err)
			}
			_, err = s.PutIfMatch(ctx, "missing", v1.ETag, body('e'), size)
			if !errors.Is(err, objectstore.ErrPreconditionFailed) || !errors.Is(err, objectstore.ErrNotExist) {
				t.Fatalf("PutIfMatch of a missing key: %v", err)
			}
			st, err := s.Stat(ctx, "big")
			if err != nil || st.ETag != v2.ETag || st.Size != size {
				t.Fatalf("Stat %+v, %v; the last successful put returned %+v", st, err, v2)
			}
			if got := readAll(t, s, "big"); got != strings.Repeat("c", size) {
				t.Fatal("the object is not the winning put's")
			}
			if _, err := s.Stat(ctx, "missing"); !errors.Is(err, objectstore.ErrNotExist) {
				t.Fatalf("a refused multipart put left an object: %v", err)
			}
			// A body that fails after two parts: nothing is stored.
			boom := errors.New("reader broke")
			failing := io.MultiReader(io.LimitReader(body('f'), 2*objectstore.MinPartSize+1), iotest.ErrReader(boom))
			if _, err := s.Put(ctx, "broken", failing, objectstore.SizeUnknown); !errors.Is(err, boom) {
				t.Fatalf("Put from a reader that fails after two parts: %v", err)
			}
			if _, err := s.Stat(ctx, "broken"); !errors.Is(err, objectstore.ErrNotExist) {
				t.Fatalf("a failed multipart put left an object: %v", err)
			}
			// Every refused or failed upload was aborted.
			for u := range srv.Client(t).ListIncompleteUploads(ctx, bucket, "", true) {
				t.Fatalf("an upload was left behind: %+v", u)
			}
		})
	}
}

// Wrong keys fail every call with an error that shows neither key and is
// not mistaken for a missing object.
func TestMinIOWrongCredentials(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.NewBucket(t)
	const secret = "not-the-secret-strata-test"
	for _, b := range minioBackends {
		t.Run(b.name, func(t *testing.T) {
			for _, creds := range []objectstore.Credentials{
				{AccessKey: srv.AccessKey(), SecretKey: secret},
				{AccessKey: "unknown-strata-test", SecretKey: secret},
			} {
				s := openURL(t, b.url(srv, bucket, ""), objectstore.Options{Credentials: creds, MaxRetries: -1})
				_, err := s.Stat(t.Context(), "k")
				if err == nil || errors.Is(err, objectstore.ErrNotExist) {
					t.Fatalf("Stat with wrong keys: %v", err)
				}
				_, perr := s.Put(t.Context(), "k", strings.NewReader("x"), 1)
				if perr == nil {
					t.Fatal("Put with wrong keys succeeded")
				}
				for _, out := range []string{err.Error(), perr.Error(), fmt.Sprintf("%v %+v %#v", s, s, s)} {
					if strings.Contains(out, secret) || strings.Contains(out, srv.SecretKey()) || strings.Contains(out, "unknown-strata-test") {
						t.Fatalf("credentials shown: %s", out)
					}
				}
				s.Close()
			}
		})
	}
}

// While the server is down calls fail after their retries; once it is
// back they work again, on the same store.
func TestMinIOOutage(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.NewBucket(t)
	opts := serverOptions(srv)
	opts.MaxRetries = 2
	opts.RetryBaseDelay, opts.RetryMaxDelay = time.Millisecond, 10*time.Millisecond
	stores := map[string]objectstore.Store{}
	for _, b := range minioBackends {
		s := openURL(t, b.url(srv, bucket, b.name), opts)
		t.Cleanup(func() { s.Close() })
		if _, err := s.Put(t.Context(), "k", strings.NewReader("before"), 6); err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		stores[b.name] = s
	}
	srv.Stop()
	for name, s := range stores {
		_, err := s.Stat(t.Context(), "k")
		if err == nil || errors.Is(err, objectstore.ErrNotExist) || !strings.Contains(err.Error(), "after 3 attempts") {
			t.Fatalf("%s: Stat while the server is down: %v", name, err)
		}
	}
	srv.Start()
	for name, s := range stores {
		if got := readAll(t, s, "k"); got != "before" {
			t.Fatalf("%s: after the restart: %q", name, got)
		}
	}
}

func readAll(t *testing.T, s objectstore.Store, key string) string {
	t.Helper()
	rc, _, err := s.Get(t.Context(), key, 0, objectstore.ToEnd)
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	return string(b)
}

func listKeys(t *testing.T, s objectstore.Store, prefix string) []string {
	t.Helper()
	var keys []string
	for info, err := range s.List(t.Context(), prefix) {
		if err != nil {
			t.Fatalf("List %q: %v", prefix, err)
		}
		keys = append(keys, info.Key)
	}
	return keys
}
