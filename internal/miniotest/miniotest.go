package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Version is the MinIO server release the tests run, as a Go module
// version of github.com/minio/minio; scripts/install-minio.sh installs the
// same one.
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

// InstallCommand installs the binary, from the repository root.
const InstallCommand = "bash scripts/install-minio.sh"

// Environment variables that locate the binary.
const (
	// EnvBinary names the minio binary to run, overriding the cache.
	EnvBinary = "STRATA_MINIO_BINARY"
	// EnvDir overrides the directory install-minio.sh installs into.
	EnvDir = "STRATA_MINIO_DIR"
)

// Hang guards: how long a server may take to come up or go down. They
// bound waits for events and are never what a test asserts.
const (
	startTimeout = 90 * time.Second
	stopTimeout  = 30 * time.Second
)

// Server is one MinIO server process (or, between Stop and Start, its
// data and address).
type Server struct {
	tb          testing.TB
	bin         string
	dataDir     string
	addr        string // 127.0.0.1:port of the S3 API
	consoleAddr string
	accessKey   string
	secretKey   string
	log         *syncBuffer
	buckets     atomic.Int64

	mu struct {
		sync.Mutex
		cmd  *exec.Cmd
		done chan struct{} // closed when cmd has exited
	}
}

// BinaryPath returns where the minio binary is looked for: $EnvBinary,
// else $EnvDir/minio, else the cache directory install-minio.sh uses,
// ${XDG_CACHE_HOME:-$HOME/.cache}/strata/minio-<Version>/minio.
func BinaryPath() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		return p, nil
	}
	if d := os.Getenv(EnvDir); d != "" {
		return filepath.Join(d, "minio"), nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory to find minio in (set %s): %w", EnvBinary, err)
	}
	return filepath.Join(cache, "strata", "minio-"+Version, "minio"), nil
}

// Start launches a MinIO server and waits until it is live. The server is
// killed when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := BinaryPath()
	if err != nil {
		tb.Fatalf("miniotest: %v", err)
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		tb.Fatalf("miniotest: no MinIO server binary at %s; install it from the repository root with\n\t%s\n"+
			"(a go install of github.com/minio/minio@%s, several minutes), or set %s to a minio binary",
			bin, InstallCommand, Version, EnvBinary)
	}
	s := &Server{
		tb:          tb,
		bin:         bin,
		dataDir:     tb.TempDir(),
		addr:        freeAddr(tb),
		consoleAddr: freeAddr(tb),
		accessKey:   "strata-" + randomHex(tb, 6),
		secretKey:   randomHex(tb, 20),
		log:         &syncBuffer{},
	}
	tb.Cleanup(func() {
		s.kill()
		if tb.Failed() {
			tb.Logf("miniotest: log of the MinIO server at %s:\n%s", s.addr, s.log.String())
		}
	})
	s.Start()
	return s
}

// Endpoint is the server's S3 API URL, http://127.0.0.1:port.
func (s *Server) Endpoint() string { return "http://" + s.addr }

// Addr is the server's S3 API address, 127.0.0.1:port.
func (s *Server) Addr() string { return s.addr }

// AccessKey and SecretKey are the server's root credentials.
func (s *Server) AccessKey() string { return s.accessKey }

// SecretKey: see AccessKey.
func (s *Server) SecretKey() string { return s.secretKey }

// Log returns what the server has printed so far.
func (s *Server) Log() string { return s.log.String() }

// Client returns a minio-go client with the root credentials.
func (s *Server) Client(tb testing.TB) *minio.Client {
	tb.Helper()
	c, err := minio.New(s.addr, &minio.Options{
		Creds:        credentials.NewStaticV4(s.accessKey, s.secretKey, ""),
		Secure:       false,
		BucketLookup: minio.BucketLookupPath,
		Region:       "us-east-1",
	})
	if err != nil {
		tb.Fatalf("miniotest: client: %v", err)
	}
	return c
}

// NewBucket creates a bucket no one else uses and returns its name.
func (s *Server) NewBucket(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("test-%d-%s", s.buckets.Add(1), randomHex(tb, 4))
	c := s.Client(tb)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: "us-east-1"})
		if err == nil {
			return name
		}
		// A server that has just come up may not have initialised
		// its object layer yet.
		if minio.ToErrorResponse(err).Code != "XMinioServerNotInitialized" || ctx.Err() != nil {
			tb.Fatalf("miniotest: creating bucket %s: %v", name, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Start (re)starts a stopped server on the same address and data. It
// returns when the server is live; it fails the test if it does not come
// up.
func (s *Server) Start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.cmd != nil {
		s.tb.Fatalf("miniotest: Start: the server at %s is running", s.addr)
	}
	cmd := exec.Command(s.bin, "server", s.dataDir,
		"--address", s.addr,
		"--console-address", s.consoleAddr,
		"--certs-dir", filepath.Join(s.dataDir, ".certs"))
	cmd.Env = append(withoutMinIOEnv(os.Environ()),
		"MINIO_ROOT_USER="+s.accessKey,
		"MINIO_ROOT_PASSWORD="+s.secretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CALLHOME_ENABLE=off",
	)
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	// Its own process group, so a signal to the test's group (^C)
	// reaches the test first and cleanup stops the server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	fmt.Fprintf(s.log, "--- miniotest: starting %s server %s on %s\n", s.bin, s.dataDir, s.addr)
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("miniotest: starting %s: %v", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(s.log, "--- miniotest: server exited: %v\n", err)
		close(done)
	}()
	s.mu.cmd, s.mu.done = cmd, done
	if err := waitLive(s.Endpoint(), done); err != nil {
		s.killLocked()
		s.tb.Fatalf("miniotest: the MinIO server at %s did not come up: %v\n%s", s.addr, err, s.log.String())
	}
}

// Stop shuts the server down (SIGTERM, then SIGKILL after a while) and
// waits for it to exit. Its data and address are kept for Start.
func (s *Server) Stop() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.cmd == nil {
		s.tb.Fatalf("miniotest: Stop: the server at %s is not running", s.addr)
	}
	s.stopLocked(syscall.SIGTERM)
}

// kill stops the server if it runs; for cleanup.
func (s *Server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

func (s *Server) killLocked() {
	if s.mu.cmd != nil {
		s.stopLocked(syscall.SIGKILL)
	}
}

func (s *Server) stopLocked(sig syscall.Signal) {
	_ = s.mu.cmd.Process.Signal(sig)
	select {
	case <-s.mu.done:
	case <-time.After(stopTimeout):
		_ = s.mu.cmd.Process.Kill()
		<-s.mu.done
	}
	s.mu.cmd, s.mu.done = nil, nil
}

// waitLive polls the liveness endpoint until it answers 200, the process
// exits, or startTimeout passes.
func waitLive(endpoint string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.After(startTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		resp, err := client.Get(endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health check: %s", resp.Status)
		}
		last = err
		select {
		case <-exited:
			return errors.New("the server exited")
		case <-deadline:
			return fmt.Errorf("not live after %v: %w", startTimeout, last)
		case <-tick.C:
		}
	}
}

// freeAddr returns a 127.0.0.1 address with a port free right now.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("miniotest: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func randomHex(tb testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("miniotest: %v", err)
	}
	return hex.EncodeToString(b)
}

// withoutMinIOEnv drops MINIO_* variables, so that the caller's
// environment cannot reconfigure the test server.
func withoutMinIOEnv(env []string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, "MINIO_") {
			out = append(out, e)
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for the process's writers and the
// test's readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
