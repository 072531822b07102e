package broker

// The data directory's identity file, <data-dir>/meta.properties, in
// Kafka's format (a Java properties file) so that operators recognise it:
//
//	#Written by strata; do not edit.
//	version=1
//	cluster.id=<22 characters: 16 random bytes, unpadded base64url>
//	node.id=<node id>
//
// It is created on first start and only read afterwards: the cluster id
// never changes for a data directory. A node.id that disagrees with the
// configured one stops the start (Kafka does the same), since the directory
// belongs to another broker.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/stratalog/strata/internal/fsutil"
)

const metaPropertiesFile = "meta.properties"

// loadOrCreateMeta returns the cluster id stored in dataDir's meta.properties
// (creating it on first start) and records nodeID (when
// >= 0) and refuses a directory whose stored node.id differs. A stored file
// without node.id gets it added.
//
// adopt, when not empty, is the cluster id a new directory takes (the
// object store's cluster, tiering.go) instead of a random one.
func loadOrCreateMeta(dataDir string, nodeID int32, adopt string) (string, error) {
	path := filepath.Join(dataDir, metaPropertiesFile)
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return "", fmt.Errorf("data dir: %w", err)
		}
		id := adopt
		if id == "" {
			if id, err = newClusterID(); err != nil {
				return "", err
			}
		}
		props := map[string]string{"version": "1", "cluster.id": id}
		if nodeID >= 0 {
			props["node.id"] = strconv.Itoa(int(nodeID))
		}
		if err := writeMetaProperties(path, props); err != nil {
			return "", err
		}
		return id, nil
	case err != nil:
		return "", fmt.Errorf("read %s: %w", path, err)
	}

	props := parseProperties(raw)
	if v := props["version"]; v != "0" && v != "1" {
		return "", fmt.Errorf("%s: unsupported version %q (want 0 or 1)", path, v)
	}
	id := props["cluster.id"]
	if !validClusterID(id) {
		return "", fmt.Errorf("%s: invalid cluster.id %q (want 22 characters of base64url encoding 16 bytes)", path, id)
	}
	if nodeID >= 0 {
		stored, ok := props["node.id"]
		switch {
		case !ok:
			props["node.id"] = strconv.Itoa(int(nodeID))
			if err := writeMetaProperties(path, props); err != nil {
				return "", err
			}
		case stored != strconv.Itoa(int(nodeID)):
			return "", fmt.Errorf("%s: stored node.id %s does not match the configured node id %d; this data directory belongs to another broker", path, stored, nodeID)
		}
	}
	return id, nil
}

// newClusterID returns 16 random bytes in unpadded base64url: 22 characters,
// like Kafka's Uuid.toString. Like Kafka, it never starts with '-', which a
// command line would take for a flag.
func newClusterID() (string, error) {
	for {
		var u [16]byte
		if _, err := rand.Read(u[:]); err != nil {
			return "", fmt.Errorf("cluster id: %w", err)
		}
		if id := base64.RawURLEncoding.EncodeToString(u[:]); id[0] != '-' {
			return id, nil
		}
	}
}

func validClusterID(id string) bool {
	if len(id) != 22 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil && len(b) == 16
}

// parseProperties reads key=value lines, skipping blank lines and # or !
// comments (the subset of the Java properties format Kafka writes).
func parseProperties(raw []byte) map[string]string {
	props := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		props[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return props
}

// writeMetaProperties replaces path atomically: write a temporary file,
// fsync it, rename it over path, fsync the directory. A crash leaves either
// the old file or the new one, never a torn one.
func writeMetaProperties(path string, props map[string]string) error {
	var buf bytes.Buffer
	buf.WriteString("#Written by strata; do not edit.\n")
	for _, k := range []string{"version", "cluster.id", "node.id"} {
		if v, ok := props[k]; ok {
			fmt.Fprintf(&buf, "%s=%s\n", k, v)
		}
	}
	for k, v := range props { // keys we do not know are kept, after ours
		switch k {
		case "version", "cluster.id", "node.id":
		default:
			fmt.Fprintf(&buf, "%s=%s\n", k, v)
		}
	}
	return fsutil.WriteFileAtomic(path, buf.Bytes())
}
