package controller

import (
	"context"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/stratalog/strata/internal/logutil"
)

// hcLogger carries raft's hclog lines into the node's slog.Logger. Raft is
// chatty at info (every state entered, every pipeline, every snapshot
// step): those lines go to debug except the few an operator wants, and a
// few routine warnings go down too (raftLevel). Other warnings and errors
// stay as they are but repeat at most once per raftRepeatEvery per message
// and peer, since raft retries an unreachable peer with a backoff that
// starts at milliseconds.
type hcLogger struct {
	base    *slog.Logger // the node's logger
	log     *slog.Logger // base with the component name and the implied args
	name    string
	implied []any
	limiter *logutil.Limiter
}

var _ hclog.Logger = (*hcLogger)(nil)

// raftLevel sets the level of raft's lines by message; other info lines
// go to debug, other warnings and errors stay.
var raftLevel = map[string]slog.Level{
	// Leadership, membership and snapshots: what an operator follows.
	"entering leader state":                      slog.LevelInfo,
	"election won":                               slog.LevelInfo,
	"updating configuration":                     slog.LevelInfo,
	"added peer, starting replication":           slog.LevelInfo,
	"removed peer, stopping replication":         slog.LevelInfo,
	"Installed remote snapshot":                  slog.LevelInfo,
	"snapshot complete up to":                    slog.LevelInfo,
	"restored user snapshot":                     slog.LevelInfo,
	"removed ourself, shutting down":             slog.LevelInfo,
	"removed ourself, transitioning to follower": slog.LevelInfo,
	// Warnings that are routine: an election starting, a non-voter not
	// yet added, a follower being brought up to date.
	"heartbeat timeout reached, starting election":        slog.LevelInfo,
	"no known peers, aborting election":                   slog.LevelInfo,
	"not part of stable configuration, aborting election": slog.LevelInfo,
	"rejecting pre-vote request since we have a leader":   slog.LevelDebug,
	"rejecting vote request since we have a leader":       slog.LevelDebug,
	"failed to get previous log":                          slog.LevelDebug,
	"appendEntries rejected, sending older logs":          slog.LevelDebug,
	"skipping application of old log":                     slog.LevelDebug,
}

const raftRepeatEvery = 30 * time.Second

func newHCLogger(log *slog.Logger, name string) *hcLogger {
	return &hcLogger{base: log, log: log.With("component", name), name: name, limiter: logutil.NewLimiter(log, raftRepeatEvery, nil)}
}

func (h *hcLogger) Log(level hclog.Level, msg string, args ...any) {
	var l slog.Level
	switch level {
	case hclog.Trace:
		l = slog.LevelDebug - 4
	case hclog.Debug:
		l = slog.LevelDebug
	case hclog.Warn:
		l = slog.LevelWarn
	case hclog.Error:
		l = slog.LevelError
	default: // Info, NoLevel
		l = slog.LevelDebug
	}
	if set, ok := raftLevel[msg]; ok {
		l = set
	}
	if !h.log.Enabled(context.Background(), l) {
		return
	}
	if l >= slog.LevelWarn {
		// The key names the condition: the message and the peer it is
		// about, never the error text (it changes between retries).
		key := h.name + "\x00" + msg
		for i := 0; i+1 < len(args); i += 2 {
			switch args[i] {
			case "peer", "id", "address", "target":
				key += fmt.Sprintf("\x00%v", args[i+1])
			}
		}
		h.limiter.Log(l, key, msg, append([]any{"component", h.name}, append(slices.Clone(h.implied), args...)...)...)
		return
	}
	h.log.Log(context.Background(), l, msg, args...)
}

func (h *hcLogger) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hcLogger) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hcLogger) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hcLogger) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hcLogger) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *hcLogger) IsTrace() bool { return h.log.Enabled(context.Background(), slog.LevelDebug-4) }
func (h *hcLogger) IsDebug() bool { return h.log.Enabled(context.Background(), slog.LevelDebug) }
func (h *hcLogger) IsInfo() bool  { return h.IsDebug() } // raft's info lines mostly go to debug
func (h *hcLogger) IsWarn() bool  { return h.log.Enabled(context.Background(), slog.LevelWarn) }
func (h *hcLogger) IsError() bool { return h.log.Enabled(context.Background(), slog.LevelError) }

func (h *hcLogger) ImpliedArgs() []any { return slices.Clone(h.implied) }

func (h *hcLogger) With(args ...any) hclog.Logger {
	c := *h
	c.log = h.log.With(args...)
	c.implied = append(slices.Clone(h.implied), args...)
	return &c
}

func (h *hcLogger) Name() string { return h.name }

func (h *hcLogger) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return h.ResetNamed(name)
}

func (h *hcLogger) ResetNamed(name string) hclog.Logger {
	return &hcLogger{base: h.base, log: h.base.With("component", name).With(h.implied...), name: name,
		implied: slices.Clone(h.implied), limiter: h.limiter}
}

// SetLevel is ignored: the slog.Logger's handler decides.
func (h *hcLogger) SetLevel(hclog.Level) {}

func (h *hcLogger) GetLevel() hclog.Level {
	switch {
	case h.IsTrace():
		return hclog.Trace
	case h.IsDebug():
		return hclog.Debug
	case h.IsWarn():
		return hclog.Warn
	}
	return hclog.Error
}

func (h *hcLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *stdlog.Logger {
	return stdlog.New(h.StandardWriter(opts), "", 0)
}

// StandardWriter logs each line written at info (so mostly at debug, see
// Log), or at opts.ForceLevel.
func (h *hcLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return lineWriter(func(line string) { h.Log(level, line) })
}

type lineWriter func(string)

func (w lineWriter) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		w(line)
	}
	return len(p), nil
}
