package miniotest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

// The pinned version is written twice, here and in the install script.
func TestVersionMatchesInstallScript(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("..", "..", "scripts", "install-minio.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `MINIO_VERSION="` + Version + `"`; !strings.Contains(string(script), want) {
		t.Fatalf("scripts/install-minio.sh does not pin %s (want a line %s)", Version, want)
	}
}

// fatalTB records Fatalf and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = strings.TrimSpace(fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func TestMissingBinaryFailsWithInstallCommand(t *testing.T) {
	t.Setenv(EnvBinary, filepath.Join(t.TempDir(), "no-minio-here"))
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(f)
		t.Error("Start returned without a binary")
	}()
	<-done
	if !strings.Contains(f.msg, InstallCommand) || !strings.Contains(f.msg, "no-minio-here") {
		t.Fatalf("Start without a binary failed with %q; want the path and %q", f.msg, InstallCommand)
	}
}

func TestServerStopStart(t *testing.T) {
	s := Start(t)
	bucket := s.NewBucket(t)
	if other := s.NewBucket(t); other == bucket {
		t.Fatalf("NewBucket returned %s twice", bucket)
	}
	c := s.Client(t)
	ctx := t.Context()
	data := []byte("kept across a restart")
	if _, err := c.PutObject(ctx, bucket, "k", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	s.Stop()
	if resp, err := http.Get(s.Endpoint() + "/minio/health/live"); err == nil {
		resp.Body.Close()
		t.Fatalf("a stopped server answered: %s", resp.Status)
	}

	s.Start()
	obj, err := c.GetObject(ctx, bucket, "k", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	got, err := io.ReadAll(obj)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after a restart: %q, %v", got, err)
	}
	if !strings.HasPrefix(s.Endpoint(), "http://127.0.0.1:") || s.AccessKey() == "" || len(s.SecretKey()) < 8 {
		t.Fatalf("endpoint %s, access key %q", s.Endpoint(), s.AccessKey())
	}
}
