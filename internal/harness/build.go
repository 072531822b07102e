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

// Environment variables read by Binary, once per test process.
const (
	// BinaryEnv names a prebuilt strata binary to use instead of building
	// one (e.g. a release build).
	BinaryEnv = "STRATA_BINARY"
	// E2EBinaryEnv is the e2e suite's name for BinaryEnv, honoured the same
	// way; if both are set they must name the same file.
	E2EBinaryEnv = "STRATA_E2E_BINARY"
	// RaceEnv, when non-empty (e.g. STRATA_E2E_RACE=1), builds the binary
	// with the race detector; a race it reports then fails the test (see
	// New). It has no effect on a prebuilt binary.
	RaceEnv = "STRATA_E2E_RACE"
)

// built is the process-wide result of the one build; guarded by once.
var built struct {
	once sync.Once
	dir  string // temporary directory holding the binary; "" if prebuilt
	path string
	err  error
}

// Binary returns the absolute path of the strata binary, building it on the
// first call in this process with `go build [-race] -o <tmpdir>/strata
// ./cmd/strata` run in the module root (the directory of `go env GOMOD`).
// Later calls, from any goroutine, return the same path or the same error: a
// broken build is reported to every test rather than rebuilt each time.
//
// If $STRATA_BINARY or $STRATA_E2E_BINARY is set, that file is used and
// nothing is built; $STRATA_E2E_RACE non-empty adds -race to the build.
func Binary() (string, error) {
	built.once.Do(func() {
		p, err := prebuilt()
		switch {
		case err != nil:
			built.err = err
		case p != "":
			built.path = p
		default:
			built.dir, built.path, built.err = buildBinary(os.Getenv(RaceEnv) != "")
		}
	})
	return built.path, built.err
}

// prebuilt returns the absolute path named by BinaryEnv or E2EBinaryEnv, or
// "" if neither is set.
func prebuilt() (string, error) {
	p, e2e := os.Getenv(BinaryEnv), os.Getenv(E2EBinaryEnv)
	if p != "" && e2e != "" && p != e2e {
		return "", fmt.Errorf("harness: $%s=%s and $%s=%s name different binaries", BinaryEnv, p, E2EBinaryEnv, e2e)
	}
	if p == "" {
		p = e2e
	}
	if p == "" {
		return "", nil
	}
	// Absolute, so that it does not depend on the directory a process runs in.
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("harness: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("harness: prebuilt strata binary: %w", err)
	}
	return abs, nil
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

func buildBinary(race bool) (dir, path string, err error) {
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
	args := []string{"build", "-o", path}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command(goBin, append(args, "./cmd/strata")...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("harness: go %s in %s: %w\n%s", strings.Join(cmd.Args[1:], " "), root, err, out.Bytes())
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
