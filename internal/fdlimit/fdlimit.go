package fdlimit

import (
	"os"
	"strconv"
	"syscall"
	"testing"
)

// With runs fn with the soft RLIMIT_NOFILE set so that exactly spare more
// files can be opened (0: none), and restores the limit afterwards.
func With(t testing.TB, spare int, fn func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = leaving(t, spare)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("setrlimit: %v", err)
	}
	defer func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
			t.Fatalf("restoring RLIMIT_NOFILE: %v", err)
		}
	}()
	fn()
}

// leaving returns the RLIMIT_NOFILE value below which exactly spare
// descriptor numbers are free now (the limit bounds descriptor numbers, so
// holes in the table count as free).
func leaving(t testing.TB, spare int) uint64 {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("listing /proc/self/fd: %v", err)
	}
	open := map[int]bool{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		open[n] = true
	}
	// The descriptor ReadDir listed the directory with is closed again.
	for n := range open {
		if _, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(n)); err != nil {
			delete(open, n)
		}
	}
	for n, free := 0, 0; ; n++ {
		if open[n] {
			continue
		}
		if free == spare {
			return uint64(n)
		}
		free++
	}
}
