package main

// `strata tiering status [TOPIC]`: per partition, the local and remote
// offset ranges, sizes and upload lag, from a running broker's HTTP
// server (GET /v1/tiering/status, served by adminHandler).

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/stratalog/strata/broker"
)

const tieringUsage = `Usage: strata tiering status [TOPIC] [--http host:port]

Prints, for every partition (of TOPIC, or of all topics), the log start,
the local log's offsets and bytes, the offsets, bytes and segment count the
object store holds, and how far uploads are behind, as the broker reports
them on its HTTP server (GET /v1/tiering/status[?topic=TOPIC]).

Flags:
  --http host:port     the broker's http-listen address (default 127.0.0.1:9644; env STRATA_HTTP)
  --json               print the broker's JSON answer instead of a table
  --timeout duration   give up after this long (default 10s)
`

// adminHandler serves the broker's /v1/ endpoints once the broker is
// open (503 before).
func adminHandler(running *atomic.Pointer[broker.Broker]) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+broker.TieringStatusPath, func(w http.ResponseWriter, r *http.Request) {
		b := running.Load()
		if b == nil {
			http.Error(w, "the broker is not serving yet", http.StatusServiceUnavailable)
			return
		}
		topic := r.URL.Query().Get("topic")
		parts, found := b.TieringStatus(topic)
		if topic != "" && !found {
			http.Error(w, fmt.Sprintf("unknown topic %q", topic), http.StatusNotFound)
			return
		}
		if parts == nil {
			parts = []broker.TieringPartitionStatus{}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(broker.TieringStatusReply{Partitions: parts})
	})
	return mux
}

func runTiering(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || wantsHelp(args) {
		fmt.Fprint(stdout, tieringUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] != "status" {
		fmt.Fprintf(stderr, "strata tiering: unknown command %q\n\n%s", args[0], tieringUsage)
		return 2
	}
	fs := flag.NewFlagSet("strata tiering status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, tieringUsage) }
	addr := "127.0.0.1:9644"
	if v, ok := os.LookupEnv("STRATA_HTTP"); ok && v != "" {
		addr = v
	}
	fs.StringVar(&addr, "http", addr, "")
	asJSON := fs.Bool("json", false, "")
	timeout := fs.Duration("timeout", 10*time.Second, "")
	// Flags may come before or after the topic.
	var topic string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		if topic != "" {
			fmt.Fprintf(stderr, "strata tiering status: more than one topic given (%q, %q)\n", topic, fs.Arg(0))
			return 2
		}
		topic, rest = fs.Arg(0), fs.Args()[1:]
	}

	u := url.URL{Scheme: "http", Host: addr, Path: broker.TieringStatusPath}
	if topic != "" {
		u.RawQuery = url.Values{"topic": {topic}}.Encode()
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	body, err := httpGet(ctx, u.String())
	if err != nil {
		fmt.Fprintf(stderr, "strata tiering status: %v\n", err)
		return 1
	}
	if *asJSON {
		stdout.Write(body)
		return 0
	}
	var reply broker.TieringStatusReply
	if err := json.Unmarshal(body, &reply); err != nil {
		fmt.Fprintf(stderr, "strata tiering status: %s answered with something that is not the status JSON: %v\n", u.String(), err)
		return 1
	}
	printTieringStatus(stdout, reply.Partitions)
	return 0
}

func httpGet(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the broker's HTTP server (--http): %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(u + ": " + resp.Status + ": " + string(body))
	}
	return body, nil
}

func printTieringStatus(w io.Writer, parts []broker.TieringPartitionStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tTIERED\tLOG-START\tLOCAL-START\tLOCAL-END\tLOCAL-BYTES\tREMOTE-START\tREMOTE-END\tREMOTE-BYTES\tREMOTE-SEGMENTS\tLAG-BYTES\tLAG-SEGMENTS\tLAG-SECONDS\t")
	off := func(o int64) string {
		if o < 0 {
			return "-"
		}
		return fmt.Sprint(o)
	}
	for _, p := range parts {
		fmt.Fprintf(tw, "%s\t%d\t%t\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%.0f\t\n",
			p.Topic, p.Partition, p.Tiered, p.LogStartOffset, p.LocalStartOffset, p.LocalEndOffset, p.LocalBytes,
			off(p.RemoteStartOffset), off(p.RemoteEndOffset), p.RemoteBytes, p.RemoteSegments,
			p.UploadLagBytes, p.UploadLagSegments, p.UploadLagSeconds)
	}
	tw.Flush()
	for _, p := range parts {
		if p.LastError != "" {
			fmt.Fprintf(w, "%s-%d: uploads failing: %s\n", p.Topic, p.Partition, p.LastError)
		}
	}
}
