package objectstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

const (
	leakAccessKey = "AKIDSTRATALEAKCHECK"
	leakSecretKey = "secret-strata-leak-check-0123456789"
)

// Keys never show: not in a store's String or any fmt verb, not in the
// errors of a server that refuses them.
func TestCredentialsDoNotLeak(t *testing.T) {
	opts := fastRetries
	opts.Credentials = Credentials{AccessKey: leakAccessKey, SecretKey: leakSecretKey}
	f := newFakeS3(t, func(w http.ResponseWriter, r *http.Request, n int) {
		s3Error(w, r, http.StatusForbidden, "SignatureDoesNotMatch")
	})
	for name, s := range backendsOn(t, f, opts) {
		t.Run(name, func(t *testing.T) {
			var shown []string
			shown = append(shown, fmt.Sprintf("%v|%+v|%#v|%s", s, s, s, s))
			_, err := s.Stat(t.Context(), "k")
			if err == nil {
				t.Fatal("Stat succeeded against a refusing server")
			}
			shown = append(shown, err.Error(), fmt.Sprintf("%+v", err))
			_, err = s.Put(t.Context(), "k", strings.NewReader("x"), 1)
			shown = append(shown, fmt.Sprint(err))
			for _, err := range s.List(t.Context(), "") {
				shown = append(shown, fmt.Sprint(err))
			}
			shown = append(shown, fmt.Sprint(s.Delete(t.Context(), "k")))
			for _, out := range shown {
				if strings.Contains(out, leakSecretKey) || strings.Contains(out, leakAccessKey) {
					t.Fatalf("credentials shown: %s", out)
				}
			}
			if !strings.Contains(shown[0], "bucket") {
				t.Fatalf("String does not name the location: %s", shown[0])
			}
		})
	}
}

// The key pair may come from the environment; half of one is refused.
func TestCredentialsFromEnvironment(t *testing.T) {
	t.Setenv(EnvAccessKey, "")
	t.Setenv(EnvSecretKey, "")
	loc, err := ParseURL("minio://127.0.0.1:9000/bucket?secure=false")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMinIO(loc, Options{}); err == nil || !strings.Contains(err.Error(), EnvAccessKey) {
		t.Fatalf("minio without credentials: %v", err)
	}
	t.Setenv(EnvAccessKey, leakAccessKey)
	if _, err := NewMinIO(loc, Options{}); err == nil || strings.Contains(err.Error(), leakAccessKey) {
		t.Fatalf("minio with half a key pair in the environment: %v", err)
	}
	t.Setenv(EnvSecretKey, leakSecretKey)
	s, err := NewMinIO(loc, Options{})
	if err != nil {
		t.Fatalf("minio with credentials in the environment: %v", err)
	}
	s.Close()
}

func TestS3NeedsRegion(t *testing.T) {
	// Keep the machine's AWS configuration out of it.
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	opts := Options{Credentials: Credentials{AccessKey: "a", SecretKey: "b"}}
	if _, err := OpenWith(t.Context(), "s3://bucket/p", opts); err == nil || !strings.Contains(err.Error(), "region") {
		t.Fatalf("s3 without a region: %v", err)
	}
	// An endpoint defaults the region to us-east-1.
	s, err := OpenWith(t.Context(), "s3://bucket/p?endpoint=http://127.0.0.1:1", opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Without any keys, the default chain is used (resolved lazily, so
	// opening makes no request).
	t.Setenv(EnvAccessKey, "")
	t.Setenv(EnvSecretKey, "")
	s, err = OpenWith(t.Context(), "s3://bucket/p?region=eu-west-1", Options{})
	if err != nil {
		t.Fatalf("s3 with the default credential chain: %v", err)
	}
	s.Close()
}

func TestKeyLimitWithPrefix(t *testing.T) {
	s, err := OpenWith(t.Context(), "s3://bucket/some/prefix?region=us-east-1", Options{Credentials: Credentials{AccessKey: "a", SecretKey: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	long := strings.Repeat("k", MaxKeyBytes-len("some/prefix/")+1)
	_, err = s.Put(t.Context(), long, strings.NewReader("x"), 1)
	if !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), "prefix") {
		t.Fatalf("a key too long for the prefix: %v", err)
	}
	if _, err := s.Stat(t.Context(), long); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("Stat of a key too long for the prefix: %v", err)
	}
}

func TestReadPart(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100_000) // 1,000,000 bytes
	for _, tc := range []struct {
		name  string
		limit int64
		n     int
		eof   bool
	}{
		{"all", 2 << 20, len(data), true},
		{"exactly", int64(len(data)), len(data), false}, // full: the end is not seen yet
		{"part", 300_000, 300_000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One byte per read, half the time: readPart must keep reading.
			src := iotest.HalfReader(bytes.NewReader(data))
			got, eof, err := readPart(src, tc.limit, nil)
			if err != nil || len(got) != tc.n || eof != tc.eof || !bytes.Equal(got, data[:tc.n]) {
				t.Fatalf("readPart: %d bytes, eof %v, %v; want %d, %v", len(got), eof, err, tc.n, tc.eof)
			}
			if int64(cap(got)) > max(tc.limit, copyChunkBytes) {
				t.Fatalf("buffer grew to %d for a %d-byte part", cap(got), tc.limit)
			}
		})
	}
	boom := errors.New("boom")
	if _, _, err := readPart(io.MultiReader(bytes.NewReader(data[:10]), iotest.ErrReader(boom)), 100, nil); !errors.Is(err, boom) {
		t.Fatalf("a failing reader: %v", err)
	}
}

func TestCheckTotal(t *testing.T) {
	for _, tc := range []struct {
		size, total int64
		ok          bool
	}{
		{SizeUnknown, 7, true}, {7, 7, true}, {7, 8, false}, {7, 6, false}, {0, 0, true},
	} {
		err := checkTotal(tc.size, tc.total)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrSizeMismatch)) {
			t.Fatalf("checkTotal(%d, %d) = %v", tc.size, tc.total, err)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	for v, want := range map[string]int64{"bytes 0-9/1000": 1000, "bytes 5-5/6": 6, "bytes */0": 0} {
		if n, ok := parseContentRange(v); !ok || n != want {
			t.Fatalf("parseContentRange(%q) = %d, %v", v, n, ok)
		}
	}
	for _, v := range []string{"bytes 0-9/*", "bytes 0-9", "bytes 0-9/-1", "bytes 0-9/x"} {
		if _, ok := parseContentRange(v); ok {
			t.Fatalf("parseContentRange(%q) accepted", v)
		}
	}
	if unquoteETag(`"abc"`) != "abc" || unquoteETag("abc") != "abc" || unquoteETag(`"`) != `"` {
		t.Fatal("unquoteETag")
	}
}
