package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClusterIDPersisted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // does not exist yet
	id, err := loadOrCreateMeta(dir, -1, "")
	if err != nil {
		t.Fatal(err)
	}
	if !validClusterID(id) || id[0] == '-' {
		t.Fatalf("bad cluster id %q", id)
	}
	again, err := loadOrCreateMeta(dir, -1, "")
	if err != nil || again != id {
		t.Fatalf("second load: %q, %v; want %q", again, err, id)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "meta.properties"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "cluster.id="+id+"\n") || !strings.Contains(string(raw), "version=1\n") {
		t.Fatalf("meta.properties:\n%s", raw)
	}
	other, err := loadOrCreateMeta(t.TempDir(), -1, "")
	if err != nil || other == id {
		t.Fatalf("a second data dir got %q (%v)", other, err)
	}
}

func TestMetaNodeID(t *testing.T) {
	dir := t.TempDir()
	id, err := loadOrCreateMeta(dir, 3, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := loadOrCreateMeta(dir, 3, ""); err != nil || got != id {
		t.Fatalf("same node: %q, %v", got, err)
	}
	if _, err := loadOrCreateMeta(dir, 4, ""); err == nil || !strings.Contains(err.Error(), "node.id") {
		t.Fatalf("another node id accepted: %v", err)
	}
	if got, err := loadOrCreateMeta(dir, -1, ""); err != nil || got != id {
		t.Fatalf("without node id: %q, %v", got, err)
	}

	// A file written by Kafka (comments, no node.id yet) is read, and gets
	// the node id added.
	kafka := t.TempDir()
	const kid = "MkU3OEVBNTcwNTJENDM2Qg"
	os.WriteFile(filepath.Join(kafka, "meta.properties"), []byte("#\n#Tue Nov 21 05:00:00 UTC 2026\ncluster.id="+kid+"\nversion=1\ndirectory.id=abc\n"), 0o644)
	if got, err := loadOrCreateMeta(kafka, 1, ""); err != nil || got != kid {
		t.Fatalf("Kafka's file: %q, %v", got, err)
	}
	raw, _ := os.ReadFile(filepath.Join(kafka, "meta.properties"))
	if !strings.Contains(string(raw), "node.id=1\n") || !strings.Contains(string(raw), "directory.id=abc\n") {
		t.Fatalf("rewritten file:\n%s", raw)
	}
}

func TestMetaPropertiesRejectsBadFiles(t *testing.T) {
	for name, content := range map[string]string{
		"bad id":      "version=1\ncluster.id=short\n",
		"no id":       "version=1\n",
		"bad version": "version=7\ncluster.id=MkU3OEVBNTcwNTJENDM2Qg\n",
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "meta.properties"), []byte(content), 0o644)
		if _, err := loadOrCreateMeta(dir, -1, ""); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
}
