package replica

import (
	"os"
	"path/filepath"
	"testing"
)

// The tier checkpoint: absent means never tiered; written values read
// back; a damaged file still proves the partition tiered (generation 1).
func TestTierCheckpoint(t *testing.T) {
	p := &Partition{topic: "orders", index: 3, dir: t.TempDir()}
	if c, err := p.TierCheckpoint(); err != nil || c != (TierCheckpoint{}) {
		t.Fatalf("no checkpoint: %+v, %v; want the zero value", c, err)
	}
	want := TierCheckpoint{Generation: 42, EndOffset: 123456}
	if err := p.SetTierCheckpoint(want); err != nil {
		t.Fatal(err)
	}
	if c, err := p.TierCheckpoint(); err != nil || c != want {
		t.Fatalf("read back %+v, %v; want %+v", c, err, want)
	}
	path := filepath.Join(p.dir, TierCheckpointFile)
	if b, _ := os.ReadFile(path); string(b) != "0\n1\n42 123456\n" {
		t.Fatalf("file holds %q", b)
	}
	for _, bad := range []string{"", "0\n1\n", "1\n1\n4 5\n", "0\n1\n4\n", "0\n1\n-4 5\n", "0\n1\n4 -5\n", "0\n2\n4 5\n5 6\n", "garbage"} {
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := p.TierCheckpoint()
		if err == nil || c.Generation != 1 {
			t.Errorf("checkpoint %q: %+v, %v; want an error and generation 1", bad, c, err)
		}
	}
}
