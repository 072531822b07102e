package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	tel, err := Setup("strata-test", "v9.9.9")
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())

	// Instruments come from the global provider, as the broker creates them.
	ctr, err := otel.Meter("github.com/stratalog/strata/telemetrytest").Int64Counter("strata.test.requests")
	if err != nil {
		t.Fatal(err)
	}
	ctr.Add(context.Background(), 42)

	var ready atomic.Bool
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := Listen("127.0.0.1:0", Endpoints{Metrics: tel.Handler(), Ready: ready.Load}, lg)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr().String()

	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || body != "not ready\n" {
		t.Errorf("/readyz before ready = %d %q", code, body)
	}
	ready.Store(true)
	if code, body := get(t, base+"/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz when ready = %d %q", code, body)
	}
	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		"strata_test_requests_total{",
		"} 42",
		"go_goroutines",
		"process_resident_memory_bytes",
		`service_name="strata-test"`,
		`service_version="v9.9.9"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if code, _ := get(t, base+"/nope"); code != http.StatusNotFound {
		t.Errorf("/nope = %d, want 404", code)
	}

	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("server still answering after Shutdown")
	}
}

func TestListenError(t *testing.T) {
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := Listen("256.0.0.1:bad", Endpoints{Metrics: http.NotFoundHandler(), Ready: func() bool { return true }}, lg); err == nil || !strings.Contains(err.Error(), "http-listen") {
		t.Errorf("Listen on a bad address: err = %v", err)
	}
}

func TestPprofOnlyWhenEnabled(t *testing.T) {
	lg := slog.New(slog.DiscardHandler)
	for _, enabled := range []bool{false, true} {
		s, err := Listen("127.0.0.1:0", Endpoints{Metrics: http.NotFoundHandler(), Ready: func() bool { return true }, Pprof: enabled}, lg)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get("http://" + s.Addr().String() + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusNotFound
		if enabled {
			want = http.StatusOK
		}
		if resp.StatusCode != want {
			t.Fatalf("pprof enabled=%v: GET /debug/pprof/ = %d, want %d", enabled, resp.StatusCode, want)
		}
		s.Shutdown(context.Background())
	}
}

// A degraded state that NotReady reports makes /readyz answer 503 with its
// lines, and only while it lasts.
func TestReadyzNotReadyDetail(t *testing.T) {
	var lines atomic.Pointer[[]string]
	lines.Store(&[]string{})
	lg := slog.New(slog.DiscardHandler)
	s, err := Listen("127.0.0.1:0", Endpoints{Metrics: http.NotFoundHandler(), Ready: func() bool { return true },
		NotReady: func() []string { return *lines.Load() }}, lg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr().String()
	if code, body := get(t, base+"/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz = %d %q", code, body)
	}
	lines.Store(&[]string{"partition a-0 offline for 3s, 1 recovery attempts: disk on fire", "partition b-2 offline"})
	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || body != "not ready\npartition a-0 offline for 3s, 1 recovery attempts: disk on fire\npartition b-2 offline\n" {
		t.Fatalf("/readyz with offline partitions = %d %q", code, body)
	}
	lines.Store(&[]string{})
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz after recovery = %d", code)
	}
}
