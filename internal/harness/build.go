package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// BinaryEnv names an environment variable that, when set, is used as the
// path of a prebuilt strata binary instead of building one.
const BinaryEnv = "STRATA_BINARY"

// built is the process-wide result of the one build; guarded by once.
var built struct {
	once sync.Once
	dir  string // temporary directory holding the binary; "" if prebuilt
	path string
	err  error
}

// Binary returns the path of the strata binary, building it on the first call
// in this process with `go build -o <tmpdir>/strata ./cmd/strata` run in the
// module root (the directory of `go env GOMOD`). Later calls, from any
// goroutine, return the same path or the same error: a broken build is
// reported to every test rather than rebuilt each time.
//
// If $STRATA_BINARY is set, that file is used and nothing is built.
func Binary() (string, error) {
	built.once.Do(func() {
		if p := os.Getenv(BinaryEnv); p != "" {
			if _, err := os.Stat(p); err != nil {
				built.err = fmt.Errorf("harness: $%s: %w", BinaryEnv, err)
				return
			}
			built.path = p
			return
		}
		built.dir, built.path, built.err = buildBinary()
	})
	return built.path, built.err
}

// MustBinary is Binary for tests: it fails tb if the binary cannot be built.
func MustBinary(tb testing.TB) string {
	tb.Helper()
	p, err := Binary()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// ModuleRoot returns the directory holding the go.mod of the module the
// current working directory belongs to (`go env GOMOD`).
func ModuleRoot() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("harness: the go command is needed to build strata: %w", err)
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("harness: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("harness: not inside a Go module (go env GOMOD is empty); run from the strata repository")
	}
	return filepath.Dir(gomod), nil
}

func buildBinary() (dir, path string, err error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", "", err
	}
	dir, err = os.MkdirTemp("", "strata-harness-bin-")
	if err != nil {
		return "", "", fmt.Errorf("harness: %w", err)
	}
	path = filepath.Join(dir, "strata")
	goBin, err := exec.LookPath("go")
	if err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("harness: %w", err)
	}
	cmd := exec.Command(goBin, "build", "-o", path, "./cmd/strata")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("harness: go build ./cmd/strata in %s: %w\n%s", root, err, out.Bytes())
	}
	return dir, path, nil
}

// Main runs the tests of a package (call it from TestMain) and then removes
// the binary built by Binary, if any, before exiting with the tests' status.
func Main(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}
