package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Server is the operational HTTP endpoint:
//
//	GET /healthz        200 "ok" while the process runs (liveness)
//	GET /readyz         200 "ready" when Endpoints.Ready is true and
//	                    Endpoints.NotReady lists nothing, else 503
//	                    "not ready" followed by NotReady's lines
//	GET /metrics        Prometheus text exposition
//	GET /debug/pprof/…  Go runtime profiles, only with Endpoints.Pprof
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// Endpoints is what the server serves besides /healthz.
type Endpoints struct {
	Metrics http.Handler // /metrics
	// Ready is called on every /readyz request; it must be safe for
	// concurrent use.
	Ready func() bool
	// NotReady, if set, is called on every /readyz request once Ready is
	// true; any line it returns makes /readyz answer 503 with the lines
	// in the body (a degraded state, such as offline partitions, that
	// the operator should see). Safe for concurrent use.
	NotReady func() []string
	// Pprof mounts net/http/pprof under /debug/pprof/ (http.pprof.enable).
	// Off by default: profiles reveal internals and cost CPU while taken.
	Pprof bool
	// Admin, when set, serves /v1/… (the broker's status endpoints, such
	// as /v1/tiering/status).
	Admin http.Handler
}

// Listen binds addr and serves in a new goroutine until Shutdown.
func Listen(addr string, e Endpoints, logger *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http-listen %s: %w", addr, err)
	}
	return Serve(ln, e, logger), nil
}

// Serve is Listen on an existing listener (which it takes over).
func Serve(ln net.Listener, e Endpoints, logger *slog.Logger) *Server {
	ready, notReady := e.Ready, e.NotReady
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		ok := ready()
		var why []string
		if ok && notReady != nil {
			why = notReady()
		}
		if ok && len(why) == 0 {
			io.WriteString(w, "ready\n")
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready\n")
		for _, l := range why {
			io.WriteString(w, l+"\n")
		}
	})
	mux.Handle("GET /metrics", e.Metrics)
	if e.Admin != nil {
		mux.Handle("/v1/", e.Admin)
	}
	if e.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	s := &Server{
		ln: ln,
		srv: &http.Server{
			Handler: mux,
			// Bounded so a slow or hostile client cannot pin connections.
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return s
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops accepting, waits for active requests up to ctx, then
// closes everything and waits for the serving goroutine.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	<-s.done
	return err
}
