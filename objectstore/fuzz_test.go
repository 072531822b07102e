package objectstore

import (
	"path/filepath"
	"strings"
	"testing"
)

// A key that ValidateKey accepts maps to a file strictly inside the file
// store's root, and to the same path after cleaning: no key escapes the
// directory or aliases another key.
func FuzzValidateKey(f *testing.F) {
	for _, k := range []string{"a", "a/b", "../x", "a/../../b", "/abs", "a//b", "a/", ".", "x/..y", "ü/\x00", ".strata-tmp/x"} {
		f.Add(k)
	}
	const root = "/srv/objects"
	f.Fuzz(func(t *testing.T, key string) {
		if ValidateKey(key) != nil {
			return
		}
		p := filepath.Join(root, filepath.FromSlash(key))
		if !strings.HasPrefix(p, root+"/") {
			t.Fatalf("key %q maps to %q, outside %s", key, p, root)
		}
		if rel, _ := filepath.Rel(root, p); filepath.ToSlash(rel) != key {
			t.Fatalf("key %q maps to %q, which names key %q", key, p, rel)
		}
	})
}

// ParseURL never panics, and what it accepts prints back to itself.
func FuzzParseURL(f *testing.F) {
	for _, u := range []string{"file:///a/b", "mem://", "s3://bucket/p?region=r&endpoint=http://h:1",
		"minio://h:9000/b/p?secure=false", "s3://u:p@b", "file://x", "%zz", "minio://[::1]:9000/bkt"} {
		f.Add(u)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		loc, err := ParseURL(raw)
		if err != nil {
			return
		}
		again, err := ParseURL(loc.String())
		if err != nil || again != loc {
			t.Fatalf("ParseURL(%q) = %+v; its String %q parses to %+v, %v", raw, loc, loc.String(), again, err)
		}
	})
}
