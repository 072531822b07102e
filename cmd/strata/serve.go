package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stratalog/strata/broker"
	"github.com/stratalog/strata/internal/config"
	"github.com/stratalog/strata/internal/telemetry"
)

// shutdownTimeout bounds a clean shutdown: in-flight requests (a Fetch
// long-poll waits at most its max_wait_ms, typically ≤ 10 s), the final
// fsyncs and closing every partition.
const shutdownTimeout = 30 * time.Second

// runServe implements `strata serve`. Configuration errors exit 2 before
// anything is opened.
func runServe(args []string, stdout, stderr io.Writer) int {
	if wantsHelp(args) {
		config.WriteUsage(stdout)
		return 0
	}
	cfg, err := config.Load(args, os.LookupEnv, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "strata serve: %v\n", err)
		return 2
	}
	logger := newLogger(cfg, stderr)
	slog.SetDefault(logger)

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	return serve(cfg, logger, sigs)
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs the broker until a signal arrives or Serve fails, and returns
// the exit code. Start order: telemetry (so /healthz answers during a long
// recovery and the broker's instruments land in the exporter), the Kafka
// listener (its bound address is needed to advertise a port-0 listener),
// broker.New (recovery), then Serve. Stop order is the reverse.
func serve(cfg *config.Config, logger *slog.Logger, sigs <-chan os.Signal) int {
	logger.Info("strata starting", "version", versionString(), "pid", os.Getpid())
	logger.Info("effective config", cfg.LogAttrs()...)

	tel, err := telemetry.Setup("strata", version)
	if err != nil {
		logger.Error("telemetry setup failed", "err", err)
		return 1
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(ctx); err != nil {
			logger.Warn("telemetry shutdown", "err", err)
		}
	}()

	// ready: the Kafka listener is bound and every topic is loaded; and
	// no partition is offline (NotReady lists them in the 503 body).
	var ready atomic.Bool
	var running atomic.Pointer[broker.Broker] // for the admin endpoints, once open
	notReady := func() []string {
		if b := running.Load(); b != nil {
			return b.NotReady()
		}
		return nil
	}
	if cfg.HTTPListen != "" {
		hs, err := telemetry.Listen(cfg.HTTPListen, telemetry.Endpoints{Metrics: tel.Handler(), Ready: ready.Load, NotReady: notReady, Pprof: cfg.HTTPPprof,
			Admin: adminHandler(&running)}, logger)
		if err != nil {
			logger.Error("cannot start the http server", "http-listen", cfg.HTTPListen, "err", err)
			return 1
		}
		logger.Info("http listener ready", "addr", hs.Addr().String(), "paths", "/healthz /readyz /metrics")
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := hs.Shutdown(ctx); err != nil {
				logger.Warn("http server shutdown", "err", err)
			}
		}()
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		logger.Error("cannot listen", "listen", cfg.Listen, "err", err)
		return 1
	}
	adv, err := advertisedAddr(cfg.Advertise, ln.Addr(), logger)
	if err != nil {
		ln.Close()
		logger.Error("cannot choose an advertised address", "err", err)
		return 1
	}

	b, err := broker.New(cfg.Broker(adv, logger))
	if err != nil {
		ln.Close()
		logger.Error("cannot open the broker", "data-dir", cfg.DataDir, "err", err)
		return 1
	}
	running.Store(b)
	serveErr := make(chan error, 1)
	go func() { serveErr <- b.Serve(ln) }()
	ready.Store(true)
	logger.Info("kafka listener ready", "addr", ln.Addr().String(), "advertise", adv,
		"cluster_id", b.ClusterID(), "node_id", cfg.NodeID, "data_dir", cfg.DataDir)

	code := 0
	select {
	case sig := <-sigs:
		logger.Info("shutting down", "signal", sig.String(), "timeout", shutdownTimeout.String())
	case err := <-serveErr:
		logger.Error("broker stopped serving unexpectedly; shutting down", "err", err)
		serveErr = nil
		code = 1
	}
	ready.Store(false)
	running.Store(nil)

	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	shutdownErr := make(chan error, 1)
	go func() { shutdownErr <- b.Shutdown(ctx) }()
	select {
	case err := <-shutdownErr:
		if err != nil {
			logger.Error("shutdown incomplete", "err", err)
			code = 1
		}
	case sig := <-sigs:
		// An operator pressing ^C twice wants out now. Data acknowledged so
		// far is fsynced already; the next start recovers the tail.
		logger.Error("second signal: exiting without a clean shutdown", "signal", sig.String())
		return 1
	}
	if serveErr != nil {
		select {
		case err := <-serveErr:
			if err != nil && !errors.Is(err, net.ErrClosed) {
				logger.Warn("serve returned", "err", err)
			}
		case <-ctx.Done():
			logger.Error("Serve did not return after Shutdown")
			code = 1
		}
	}
	if code == 0 {
		logger.Info("stopped cleanly")
	}
	return code
}

// advertisedAddr is what Metadata tells clients. An explicit --advertise
// wins; otherwise the bound listen address (so port 0 becomes the real
// port), with an unspecified host (0.0.0.0, ::) replaced by the host name,
// which clients on other machines can at least try to resolve.
func advertisedAddr(advertise string, bound net.Addr, logger *slog.Logger) (string, error) {
	if advertise != "" {
		return advertise, nil
	}
	host, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return "", fmt.Errorf("listen address %s has no specific host and the host name is unknown; set --advertise", bound)
		}
		logger.Warn("advertising the host name for a wildcard listener; set --advertise if clients cannot resolve it", "advertise", net.JoinHostPort(h, port))
		host = h
	}
	return net.JoinHostPort(host, port), nil
}

// wantsHelp reports whether -h/--help appears among the flags (before "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help", "--h":
			return true
		}
	}
	return false
}
