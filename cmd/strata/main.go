package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v0.1.0".
var version = "dev"

const usage = `strata — a Kafka-compatible broker

Usage:
  strata serve [flags]            run a broker (strata serve --help lists every key)
  strata topic <command> [flags]  manage topics on a running cluster:
        create NAME [--partitions N] [--replication-factor N] [--config k=v ...]
        list
        describe NAME ...
        delete NAME ...
        alter-config NAME [--set k=v ...] [--delete k ...]
      (strata topic <command> --help for details; --bootstrap host:port, default 127.0.0.1:9092)
  strata tiering status [TOPIC]   per partition: local and remote offset ranges, bytes, upload lag
        (--http host:port, the broker's http-listen, default 127.0.0.1:9644)
  strata version                  print the version
  strata help                     this text
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(args[1:], stdout, stderr)
	case "topic", "topics":
		return runTopic(args[1:], stdout, stderr)
	case "tiering":
		return runTiering(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "strata: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return fmt.Sprintf("strata %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
