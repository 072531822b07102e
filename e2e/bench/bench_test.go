package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/stratalog/strata/internal/harness"
)

// Targets from issue 2 ("Speed") for the 2-core development machine.
const (
	targetProduceMiBps = 400.0
	targetConsumeMiBps = 700.0
	targetPacedP99     = 5 * time.Millisecond
	targetRSSMiB       = 200.0
)

// Environment knobs; the defaults are what `make bench` runs.
const (
	envSeconds  = "STRATA_BENCH_SECONDS"   // duration of each produce phase, default 15
	envRate     = "STRATA_BENCH_RATE"      // records/s of the paced phase, default 20000
	envLimitMiB = "STRATA_BENCH_LIMIT_MIB" // file size of each machine-limit test, default 512
	envArgs     = "STRATA_BENCH_ARGS"      // extra `strata serve` arguments, space separated
	envEnv      = "STRATA_BENCH_ENV"       // extra environment for the broker only, e.g. "GOGC=400"
)

const mib = 1 << 20

func TestMain(m *testing.M) { harness.Main(m) }

// BenchmarkStrata is the whole `make bench` run: machine limits, a broker,
// produce at full speed, produce at a fixed rate, consume everything, peak
// RSS, then the table. One iteration is the measurement (b.N is not used;
// run with -benchtime 1x). Targets that are missed are reported, never
// failed; the benchmark fails only if the broker or a client errors.
func BenchmarkStrata(b *testing.B) {
	seconds := envInt(b, envSeconds, 15)
	rate := envInt(b, envRate, 20000)
	limitSize := int64(envInt(b, envLimitMiB, 512)) * mib
	dur := time.Duration(seconds) * time.Second

	loadAtStart := loadAvg()
	work := b.TempDir()
	dataDir := filepath.Join(work, "data")

	// Incompressible record values and limit-file contents: windows of one
	// random pool (64 MiB, so the data is not a short repeating pattern).
	pool := make([]byte, 64*mib)
	rand.Read(pool)

	// Machine limits first, while no broker competes for disk or CPU.
	fsyncMiBps, err := measureFsyncWrite(limitFileDir(dataDir), limitSize, pool)
	if err != nil {
		b.Fatalf("fsync-write limit: %v", err)
	}
	sendfileMiBps, err := measureSendfile(limitFileDir(dataDir), limitSize, pool)
	if err != nil {
		b.Fatalf("sendfile limit: %v", err)
	}
	syncLat, err := measureSyncLatency(limitFileDir(dataDir), pool, 1, 1)
	if err != nil {
		b.Fatalf("sync-latency limit: %v", err)
	}
	syncQ, _ := syncLat.quantiles(0.5, 0.99)
	roundLat, err := measureSyncLatency(limitFileDir(dataDir), pool, benchPartitions, commitRoundWorkers)
	if err != nil {
		b.Fatalf("commit-round latency limit: %v", err)
	}
	roundQ, _ := roundLat.quantiles(0.5, 0.99)
	b.Logf("limits: fsync write %.0f MiB/s, sendfile loopback %.0f MiB/s, sync latency p50/p99 %s/%s (1 file), %s/%s (%d files)",
		fsyncMiBps, sendfileMiBps, ms(syncQ[0]), ms(syncQ[1]), ms(roundQ[0]), ms(roundQ[1]), benchPartitions)

	br, ctx, brokerFailed := startBenchBroker(b, dataDir)
	setupCtx, setupCancel := context.WithTimeout(ctx, 30*time.Second)
	err = createTopic(setupCtx, br.Addr())
	setupCancel()
	if err != nil {
		brokerFailed("create topic: %v", err)
	}

	hook := &produceHook{}
	prod, err := newProducer(br.Addr(), hook)
	if err != nil {
		b.Fatal(err)
	}
	cpu := newCPUMeter(br)
	phaseCtx, phaseCancel := context.WithTimeout(ctx, dur+2*time.Minute)
	full, err := produce(phaseCtx, prod, hook, pool, dur, 0)
	phaseCancel()
	fullCPU := cpu.lap()
	if err != nil {
		prod.Close()
		brokerFailed("produce at full speed: %v", err)
	}
	phaseCtx, phaseCancel = context.WithTimeout(ctx, dur+2*time.Minute)
	paced, err := produce(phaseCtx, prod, hook, pool, dur, rate)
	phaseCancel()
	pacedCPU := cpu.lap()
	prod.Close()
	if err != nil {
		brokerFailed("produce at %d records/s: %v", rate, err)
	}

	setupCtx, setupCancel = context.WithTimeout(ctx, 30*time.Second)
	ends, err := endOffsets(setupCtx, br.Addr())
	setupCancel()
	if err != nil {
		brokerFailed("%v", err)
	}
	var total int64
	for _, e := range ends {
		total += e
	}
	if want := full.records + paced.records; total != want {
		brokerFailed("end offsets sum to %d records, but %d were acknowledged (%v)", total, want, ends)
	}
	consumeCtx, consumeCancel := context.WithTimeout(ctx, 10*time.Minute)
	cpu.lap()
	cons, err := consume(consumeCtx, br.Addr(), ends)
	consumeCancel()
	consCPU := cpu.lap()
	if err != nil {
		brokerFailed("consume: %v", err)
	}

	rss, err := br.PeakRSS()
	if err != nil {
		brokerFailed("peak RSS: %v", err)
	}
	rssMiB := float64(rss) / mib
	if err := br.Stop(); err != nil {
		brokerFailed("stop: %v", err)
	}
	if n := hook.ioErrs.Load(); n > 0 {
		b.Logf("note: %d produce requests hit connection errors (last: %v); kgo retried them", n, *hook.lastErr.Load())
	}

	fullQ, _ := full.reqLat.quantiles(0.5, 0.99, 1)
	pacedQ, _ := paced.reqLat.quantiles(0.5, 0.99, 1)
	recQ, _ := paced.recLat.quantiles(0.5, 0.99)

	w := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintf(w, "\nStrata benchmark — %d CPUs (GOMAXPROCS %d), %s, %d s per produce phase, data dir %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOARCH, seconds, dataDir)
	fmt.Fprintln(w, "figure\tvalue\tmachine limit\tratio\ttarget\tverdict")
	fmt.Fprintf(w, "write limit (1 MiB writes, fdatasync every 4 MiB)\t%.0f MiB/s\t\t\t\t\n", fsyncMiBps)
	fmt.Fprintf(w, "sendfile limit (file→loopback TCP)\t%.0f MiB/s\t\t\t\t\n", sendfileMiBps)
	fmt.Fprintf(w, "sync latency limit p50 / p99 (16 KiB append + fdatasync)\t%s / %s\t\t\t\t\n", ms(syncQ[0]), ms(syncQ[1]))
	fmt.Fprintf(w, "  same, %d files, %d fdatasyncs in parallel (a commit round)\t%s / %s\t\t\t\t\n",
		benchPartitions, commitRoundWorkers, ms(roundQ[0]), ms(roundQ[1]))
	fmt.Fprintf(w, "produce, acks=all, full speed\t%.1f MiB/s\t%.0f MiB/s\t%.2f\t≥ %.0f MiB/s\t%s\n",
		full.mibps(), fsyncMiBps, full.mibps()/fsyncMiBps, targetProduceMiBps, verdict(full.mibps() >= targetProduceMiBps))
	fmt.Fprintf(w, "produce request p50 / p99, full speed\t%s / %s\t\t\t\t\n", ms(fullQ[0]), ms(fullQ[1]))
	fmt.Fprintf(w, "produce request p50 / p99, %d rec/s\t%s / %s\t%s / %s\t%.1f / %.1f\tp99 ≤ %s\t%s\n",
		rate, ms(pacedQ[0]), ms(pacedQ[1]), ms(syncQ[0]), ms(syncQ[1]), ratio(pacedQ[0], syncQ[0]), ratio(pacedQ[1], syncQ[1]),
		ms(targetPacedP99), verdict(pacedQ[1] <= targetPacedP99))
	fmt.Fprintf(w, "consume from offset 0\t%.1f MiB/s\t%.0f MiB/s\t%.2f\t≥ %.0f MiB/s\t%s\n",
		cons.mibps(), sendfileMiBps, cons.mibps()/sendfileMiBps, targetConsumeMiBps, verdict(cons.mibps() >= targetConsumeMiBps))
	fmt.Fprintf(w, "broker peak RSS (VmHWM)\t%.0f MiB\t\t\t≤ %.0f MiB\t%s\n",
		rssMiB, targetRSSMiB, verdict(rssMiB <= targetRSSMiB))
	w.Flush()
	fmt.Printf("full speed: %d records in %d produce requests (%.2f MiB each on average, slowest %s) over %.1f s\n",
		full.records, full.requests, perRequestMiB(full), ms(fullQ[2]), full.elapsed.Seconds())
	fmt.Printf("paced: %d records (%.0f rec/s achieved) in %d requests (slowest %s); per-record latency (Produce call → ack, includes the %v linger) p50 %s, p99 %s\n",
		paced.records, float64(paced.records)/dur.Seconds(), paced.requests, ms(pacedQ[2]),
		producerLinger, ms(recQ[0]), ms(recQ[1]))
	fmt.Printf("consume: %d records in %.1f s\n", cons.records, cons.elapsed.Seconds())
	fmt.Printf("CPU in cores (broker + benchmark clients / whole machine busy, of %d): full speed %s, paced %s, consume %s\n",
		runtime.NumCPU(), fullCPU, pacedCPU, consCPU)
	fmt.Printf("broker CPU per MiB of record values: produce at full speed %.2f ms, paced %.2f ms, consume %.2f ms\n",
		fullCPU.msPerMiB(full.bytes), pacedCPU.msPerMiB(paced.bytes), consCPU.msPerMiB(cons.bytes))
	printRunFooter(br, loadAtStart)

	b.ReportMetric(0, "ns/op") // the run's wall time is not a figure of merit
	b.ReportMetric(fsyncMiBps, "fsync-MiB/s")
	b.ReportMetric(sendfileMiBps, "sendfile-MiB/s")
	b.ReportMetric(msf(syncQ[1]), "sync-p99-ms")
	b.ReportMetric(msf(roundQ[1]), "round-p99-ms")
	b.ReportMetric(full.mibps(), "produce-MiB/s")
	b.ReportMetric(msf(fullQ[1]), "produce-p99-ms")
	b.ReportMetric(msf(pacedQ[1]), "paced-p99-ms")
	b.ReportMetric(cons.mibps(), "consume-MiB/s")
	b.ReportMetric(rssMiB, "rss-MiB")
}

func (c consumeResult) mibps() float64 { return mibPerSec(c.bytes, c.elapsed) }

type warnings struct {
	first []string // the first few WARN/ERROR lines
	more  int      // how many more there were
}

// brokerWarnings collects the broker's WARN and ERROR log lines (slog text
// or JSON format), keeping the first max.
func brokerWarnings(path string, max int) warnings {
	var w warnings
	data, err := os.ReadFile(path)
	if err != nil {
		w.first = append(w.first, fmt.Sprintf("(cannot read the log: %v)", err))
		return w
	}
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.Contains(l, "level=WARN") && !strings.Contains(l, "level=ERROR") &&
			!strings.Contains(l, `"level":"WARN"`) && !strings.Contains(l, `"level":"ERROR"`) {
			continue
		}
		if len(w.first) < max {
			w.first = append(w.first, l)
		} else {
			w.more++
		}
	}
	return w
}

func perRequestMiB(p phaseResult) float64 {
	if p.requests == 0 {
		return 0
	}
	return float64(p.bytes) / mib / float64(p.requests)
}

func mibPerSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / mib / d.Seconds()
}

// ratio of two durations; for latencies the ratio to the limit is ≥ 1.
func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func verdict(ok bool) string {
	if ok {
		return "meets target"
	}
	return "below target"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", msf(d)) }

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func envInt(tb testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		tb.Fatalf("$%s=%q: want a positive integer", name, s)
	}
	return v
}

// startBenchBroker starts the broker under test on dataDir (with
// STRATA_BENCH_ARGS and STRATA_BENCH_ENV). The returned context is
// cancelled when the broker exits, so client operations stop at once
// rather than retry against a dead port; brokerFailed fails the benchmark,
// saying whether the broker had exited (the harness prints its log tail).
func startBenchBroker(b *testing.B, dataDir string) (*harness.Broker, context.Context, func(format string, args ...any)) {
	br := harness.Start(b, harness.Options{
		DataDir: dataDir,
		Args:    strings.Fields(os.Getenv(envArgs)),
		Env:     strings.Fields(os.Getenv(envEnv)),
	})
	brokerFailed := func(format string, args ...any) {
		b.Helper()
		exited := ""
		if !br.Running() {
			exited = fmt.Sprintf(" (broker exited: %v)", br.ExitErr())
		}
		b.Fatalf("%s%s", fmt.Sprintf(format, args...), exited)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go func() {
		select {
		case <-br.Exited():
			cancel()
		case <-ctx.Done():
		}
	}()
	return br, ctx, brokerFailed
}

// printRunFooter prints the machine's load average over the run and the
// broker's first warning and error log lines, the context every figure of
// a benchmark run is read in.
func printRunFooter(br *harness.Broker, loadAtStart string) {
	fmt.Printf("load average (1, 5, 15 min): %s at the start, %s at the end\n", loadAtStart, loadAvg())
	warn := brokerWarnings(br.LogPath(), 10)
	fmt.Printf("broker log %s: %d warning/error lines\n", br.LogPath(), len(warn.first)+warn.more)
	for _, l := range warn.first {
		fmt.Printf("  %s\n", l)
	}
	fmt.Println()
}
