package objectstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want Location
	}{
		{"file:///var/lib/strata/objects", Location{Scheme: "file", Dir: "/var/lib/strata/objects"}},
		{"file://localhost/data/../objects/", Location{Scheme: "file", Dir: "/objects"}},
		{"mem://", Location{Scheme: "mem"}},
		{"s3://my-bucket", Location{Scheme: "s3", Bucket: "my-bucket"}},
		{"s3://my-bucket/", Location{Scheme: "s3", Bucket: "my-bucket"}},
		{"s3://my-bucket/cluster-1/strata?region=eu-west-1",
			Location{Scheme: "s3", Bucket: "my-bucket", Prefix: "cluster-1/strata/", Region: "eu-west-1"}},
		{"s3://b.example/p?region=auto&endpoint=https://acct.r2.cloudflarestorage.com",
			Location{Scheme: "s3", Bucket: "b.example", Prefix: "p/", Region: "auto", Endpoint: "https://acct.r2.cloudflarestorage.com"}},
		{"minio://127.0.0.1:9000/strata/test?secure=false",
			Location{Scheme: "minio", Host: "127.0.0.1:9000", Bucket: "strata", Prefix: "test/", Secure: false}},
		{"minio://minio.internal:443/strata",
			Location{Scheme: "minio", Host: "minio.internal:443", Bucket: "strata", Secure: true}},
	} {
		got, err := ParseURL(tc.url)
		if err != nil {
			t.Fatalf("ParseURL(%q): %v", tc.url, err)
		}
		if got != tc.want {
			t.Fatalf("ParseURL(%q) = %+v, want %+v", tc.url, got, tc.want)
		}
		// String round-trips.
		again, err := ParseURL(got.String())
		if err != nil || again != got {
			t.Fatalf("ParseURL(%q.String() = %q) = %+v, %v", tc.url, got.String(), again, err)
		}
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, tc := range []struct{ url, wantInErr string }{
		{"", "no scheme"},
		{"/var/lib/objects", "no scheme"},
		{"gs://bucket", "unknown scheme"},
		{"file://relative/path", "absolute path"},
		{"file:relative", "want scheme://"},
		{"file:///x?sync=false", "unknown parameter"},
		{"mem://name", "exactly mem://"},
		{"s3://", "no bucket"},
		{"s3://Bad_Bucket/p", "only a-z"},
		{"s3://ab/p", "3 to 63"},
		{"s3://bucket/p?regoin=x", "unknown parameter \"regoin\""},
		{"s3://bucket/p?endpoint=localhost:9000", "want http(s)"},
		{"s3://bucket/a//b", "empty path segment"},
		{"s3://bucket/a/../b", "\"..\" path segment"},
		{"minio://host/bucket", "want host:port"},
		{"minio://host:9000", "no bucket"},
		{"minio://host:9000/", "no bucket"},
		{"minio://host:9000/bucket?secure=maybe", "want true or false"},
		{"s3://AKIAEXAMPLE:topsecret@bucket/p", "credentials do not belong"},
		{"minio://user:topsecret@host:9000/bucket", "credentials do not belong"},
	} {
		_, err := ParseURL(tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.wantInErr) {
			t.Fatalf("ParseURL(%q): %v, want an error containing %q", tc.url, err, tc.wantInErr)
		}
		if strings.Contains(err.Error(), "topsecret") {
			t.Fatalf("the error repeats the secret: %v", err)
		}
	}
}

func TestOpen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, err := Open(ctx, "file://"+dir, Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	putString(t, s, "k", "v")
	s.Close()
	s, err = Open(ctx, "file://"+dir+"/", Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, s, "k"); got != "v" {
		t.Fatalf("reopened file store: %q", got)
	}
	m, err := Open(ctx, "mem://", Credentials{})
	if err != nil || m.Capabilities() != (Capabilities{PutIfAbsent: true, PutIfMatch: true}) {
		t.Fatalf("mem: %v", err)
	}
	// The network backends open without a request; their String shows
	// the location and never the keys.
	for _, u := range []string{"s3://bucket/prefix?region=us-east-1", "minio://127.0.0.1:9000/bucket/prefix?secure=false"} {
		s, err := Open(ctx, u, Credentials{AccessKey: "a", SecretKey: "topsecret"})
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		if str := fmt.Sprintf("%v %+v %#v %s", s, s, s, s); strings.Contains(str, "topsecret") || !strings.Contains(str, "bucket") {
			t.Fatalf("Open(%q) prints as %q", u, str)
		}
		if c := s.Capabilities(); !c.PutIfAbsent || !c.PutIfMatch || c.PutIfMatchProcessLocal {
			t.Fatalf("Open(%q): capabilities %+v", u, c)
		}
		s.Close()
	}
	if _, err := Open(ctx, "mem://", Credentials{AccessKey: "only-half"}); err == nil {
		t.Fatal("half a key pair accepted")
	}
}

func TestCredentialsRedacted(t *testing.T) {
	t.Setenv(EnvAccessKey, "AKIAIOSFODNN7EXAMPLE")
	t.Setenv(EnvSecretKey, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	c := CredentialsFromEnv()
	if c.AccessKey != "AKIAIOSFODNN7EXAMPLE" || c.SecretKey != "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" {
		t.Fatal("CredentialsFromEnv did not read the environment")
	}
	type config struct {
		URL   string
		Creds Credentials
		Ptr   *Credentials
	}
	cfg := config{URL: "s3://b/p", Creds: c, Ptr: &c}
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		outputs = append(outputs, fmt.Sprintf(verb, c), fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &c))
	}
	outputs = append(outputs, fmt.Sprint(c), fmt.Sprintln(cfg), c.String(), c.GoString())
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "creds", c, "cfg", cfg)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "creds", c)
	outputs = append(outputs, logs.String())
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(js))
	for _, out := range outputs {
		for _, secret := range []string{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI", "414b4941", "774a616c"} {
			if strings.Contains(strings.ToLower(out), strings.ToLower(secret)) {
				t.Fatalf("output shows a credential: %s", out)
			}
		}
	}
	if !strings.Contains(c.String(), "REDACTED") || (Credentials{}).String() != "Credentials{none}" {
		t.Fatalf("String: %q, %q", c.String(), (Credentials{}).String())
	}
}
