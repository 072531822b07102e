package fdlimit

import (
	"errors"
	"os"
	"syscall"
	"testing"
)

// With leaves exactly spare handles: the next open after them fails with
// EMFILE, and the limit is restored afterwards.
func TestWith(t *testing.T) {
	for _, spare := range []int{0, 1, 3} {
		With(t, spare, func() {
			var files []*os.File
			defer func() {
				for _, f := range files {
					f.Close()
				}
			}()
			for i := range spare {
				f, err := os.Open(os.DevNull)
				if err != nil {
					t.Fatalf("spare %d: open %d: %v", spare, i+1, err)
				}
				files = append(files, f)
			}
			if f, err := os.Open(os.DevNull); !errors.Is(err, syscall.EMFILE) {
				f.Close()
				t.Fatalf("spare %d: open %d = %v, want EMFILE", spare, spare+1, err)
			}
		})
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatalf("after With: %v", err)
	}
	f.Close()
}
