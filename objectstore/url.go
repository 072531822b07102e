package objectstore

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
)

// Location is a parsed object-store URL. It holds no credentials: those
// never come from the URL.
type Location struct {
	// Scheme is "file", "mem", "s3" or "minio".
	Scheme string
	// Dir is the root directory of a file store (absolute, clean).
	Dir string
	// Bucket and Prefix locate an s3 or minio store; Prefix is "" or ends
	// in "/", and every key is stored under it.
	Bucket, Prefix string
	// Region and Endpoint (s3): the AWS region, and a custom endpoint URL
	// for S3-compatible services; both optional.
	Region, Endpoint string
	// Host is minio's "host:port"; Secure says whether to use TLS
	// (default true, "?secure=false" turns it off).
	Host   string
	Secure bool
}

// String gives the location back as a URL, suitable for logs.
func (l Location) String() string {
	switch l.Scheme {
	case "file":
		return (&url.URL{Scheme: "file", Path: l.Dir}).String()
	case "mem":
		return "mem://"
	case "s3":
		u := url.URL{Scheme: "s3", Host: l.Bucket, Path: "/" + l.Prefix}
		q := url.Values{}
		if l.Region != "" {
			q.Set("region", l.Region)
		}
		if l.Endpoint != "" {
			q.Set("endpoint", l.Endpoint)
		}
		u.RawQuery = q.Encode()
		return u.String()
	case "minio":
		u := url.URL{Scheme: "minio", Host: l.Host, Path: "/" + l.Bucket + "/" + l.Prefix}
		if !l.Secure {
			u.RawQuery = "secure=false"
		}
		return u.String()
	}
	return l.Scheme + "://?"
}

// ParseURL parses an object-store URL:
//
//	file:///abs/path                       a local directory
//	mem://                                 an empty in-memory store (tests)
//	s3://bucket[/prefix][?region=R][&endpoint=https://host:port]
//	minio://host:port/bucket[/prefix][?secure=false]
//
// User information (credentials) in the URL is refused, as are unknown
// query parameters, so that a typo does not pass silently.
func ParseURL(rawURL string) (Location, error) {
	bad := func(format string, args ...any) (Location, error) {
		return Location{}, fmt.Errorf("object store URL %q: %s", redactURL(rawURL), fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return bad("does not parse")
	}
	if u.User != nil {
		return bad("credentials do not belong in the URL; set %s and %s", EnvAccessKey, EnvSecretKey)
	}
	if u.Opaque != "" {
		return bad("want scheme://…")
	}
	q := u.Query()
	allow := func(names ...string) error {
		for k := range q {
			if !containsString(names, k) {
				return fmt.Errorf("unknown parameter %q", k)
			}
		}
		return nil
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return bad("a file URL needs an absolute path, file:///abs/path (host %q given)", u.Host)
		}
		if u.Path == "" || !path.IsAbs(u.Path) {
			return bad("a file URL needs an absolute path, file:///abs/path")
		}
		if err := allow(); err != nil {
			return bad("%v", err)
		}
		return Location{Scheme: "file", Dir: path.Clean(u.Path)}, nil
	case "mem":
		if u.Host != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return bad("want exactly mem://")
		}
		return Location{Scheme: "mem"}, nil
	case "s3":
		if err := allow("region", "endpoint"); err != nil {
			return bad("%v", err)
		}
		if u.Host == "" {
			return bad("no bucket: want s3://bucket/prefix")
		}
		if err := validBucket(u.Host); err != nil {
			return bad("%v", err)
		}
		prefix, err := keyPrefix(u.Path)
		if err != nil {
			return bad("%v", err)
		}
		loc := Location{Scheme: "s3", Bucket: u.Host, Prefix: prefix, Region: q.Get("region"), Endpoint: q.Get("endpoint")}
		if loc.Endpoint != "" {
			e, err := url.Parse(loc.Endpoint)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return bad("endpoint %q: want http(s)://host[:port]", loc.Endpoint)
			}
			if e.User != nil {
				return bad("credentials do not belong in the endpoint")
			}
		}
		return loc, nil
	case "minio":
		if err := allow("secure"); err != nil {
			return bad("%v", err)
		}
		if u.Host == "" {
			return bad("no host: want minio://host:port/bucket/prefix")
		}
		if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
			return bad("host %q: want host:port", u.Host)
		}
		bucket, rest, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		if bucket == "" {
			return bad("no bucket: want minio://host:port/bucket/prefix")
		}
		if err := validBucket(bucket); err != nil {
			return bad("%v", err)
		}
		prefix, err := keyPrefix(rest)
		if err != nil {
			return bad("%v", err)
		}
		loc := Location{Scheme: "minio", Host: u.Host, Bucket: bucket, Prefix: prefix, Secure: true}
		if v := q.Get("secure"); v != "" {
			if loc.Secure, err = strconv.ParseBool(v); err != nil {
				return bad("secure=%q: want true or false", v)
			}
		}
		return loc, nil
	case "":
		return bad("no scheme: want file://, mem://, s3:// or minio://")
	default:
		return bad("unknown scheme %q: want file://, mem://, s3:// or minio://", u.Scheme)
	}
}

// Open parses rawURL (see ParseURL) and opens the store it names. creds
// are for the network backends; when zero, those read EnvAccessKey and
// EnvSecretKey, and when those are unset too, s3 uses the AWS default
// chain (environment, shared config, instance profile) while minio fails.
// The network backends get the default Options otherwise; see OpenWith.
func Open(ctx context.Context, rawURL string, creds Credentials) (Store, error) {
	return OpenWith(ctx, rawURL, Options{Credentials: creds})
}

// OpenWith is Open with Options for the network backends (retries,
// timeouts, concurrency, part size). file and mem ignore them, except that
// half a key pair is an error for every scheme.
func OpenWith(ctx context.Context, rawURL string, opts Options) (Store, error) {
	loc, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return OpenLocation(ctx, loc, opts)
}

// OpenLocation opens the store at a parsed location.
func OpenLocation(ctx context.Context, loc Location, opts Options) (Store, error) {
	if err := opts.Credentials.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch loc.Scheme {
	case "file":
		return NewFile(loc.Dir)
	case "mem":
		return NewMem(), nil
	case "s3":
		return NewS3(ctx, loc, opts)
	case "minio":
		return NewMinIO(loc, opts)
	}
	return nil, fmt.Errorf("object store %s: unknown scheme %q", loc, loc.Scheme)
}

// validBucket applies S3's bucket naming rules loosely: 3–63 characters of
// lower-case letters, digits, dots and hyphens.
func validBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket %q: want 3 to 63 characters", b)
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return fmt.Errorf("bucket %q: only a-z, 0-9, '.' and '-' allowed", b)
		}
	}
	return nil
}

// keyPrefix turns a URL path into a key prefix: "" or valid segments
// ending in "/".
func keyPrefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	if err := ValidateKey(p); err != nil {
		return "", fmt.Errorf("prefix: %w", err)
	}
	return p + "/", nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// redactURL drops user information from a URL that failed to parse or
// carried some, for the error message.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if u.User != nil {
			u.User = url.User("REDACTED")
		}
		return u.String()
	}
	if i := strings.LastIndex(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			return raw[:j+3] + "REDACTED" + raw[i:]
		}
	}
	return raw
}

// Environment variables holding object-store credentials.
const (
	EnvAccessKey = "STRATA_OBJECT_STORE_ACCESS_KEY"
	EnvSecretKey = "STRATA_OBJECT_STORE_SECRET_KEY"
)

// Credentials are a static access key pair for the network backends. They
// never appear in output: String, GoString, every fmt verb, slog and JSON
// encoding all print a redacted form. (fmt cannot be stopped from printing
// a Credentials held in an unexported field of another struct printed with
// %v, so keep them in exported fields or pass them by value.)
type Credentials struct {
	AccessKey string
	SecretKey string
}

// CredentialsFromEnv reads EnvAccessKey and EnvSecretKey; unset variables
// leave the fields empty.
func CredentialsFromEnv() Credentials {
	return Credentials{AccessKey: os.Getenv(EnvAccessKey), SecretKey: os.Getenv(EnvSecretKey)}
}

// IsZero reports whether no credentials are set (use the default chain).
func (c Credentials) IsZero() bool { return c.AccessKey == "" && c.SecretKey == "" }

func (c Credentials) validate() error {
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return fmt.Errorf("object store credentials: set both %s and %s, or neither", EnvAccessKey, EnvSecretKey)
	}
	return nil
}

// String redacts: it says only whether credentials are set.
func (c Credentials) String() string {
	if c.IsZero() {
		return "Credentials{none}"
	}
	return "Credentials{REDACTED}"
}

// GoString redacts too (%#v).
func (c Credentials) GoString() string { return c.String() }

// Format makes every fmt verb (%v, %+v, %#v, %s, %q, %x …) print String.
func (c Credentials) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue redacts in log/slog.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON redacts in JSON.
func (c Credentials) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }
