package wire

import "testing"

func TestFramePoolClasses(t *testing.T) {
	for _, tc := range []struct{ n, wantCap int }{
		{1, 4096}, {4096, 4096}, {4097, 8192}, {1 << 20, 1 << 20}, {1<<20 + 1, 2 << 20}, {100 << 20, 128 << 20},
	} {
		b := getFrame(tc.n)
		if len(b) != tc.n || cap(b) != tc.wantCap {
			t.Fatalf("getFrame(%d): len %d cap %d, want len %d cap %d", tc.n, len(b), cap(b), tc.n, tc.wantCap)
		}
		putFrame(b)
	}
	if b := getFrame(200 << 20); len(b) != 200<<20 {
		t.Fatalf("oversized frame: len %d", len(b))
	}
	putFrame(make([]byte, 5000)) // a foreign capacity is ignored, not pooled under the wrong class
	if b := getFrame(5000); cap(b) != 8192 {
		t.Fatalf("foreign buffer came back from the pool: cap %d", cap(b))
	}
}
