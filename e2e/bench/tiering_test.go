package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stratalog/strata/internal/harness"
	"github.com/stratalog/strata/internal/miniotest"
	"github.com/stratalog/strata/objectstore"
	"github.com/stratalog/strata/tiering"
)

// Targets of issue 4 ("Tiered storage") for the 2-core development
// machine, as ratios to a figure measured in the same run.
const (
	// targetUploadRatio: uploads keep up with the producer (see
	// BenchmarkTiering for how the upload rate is measured).
	targetUploadRatio = 1.0
	// targetColdRatio: a consumer reading tiered history through an empty
	// remote cache gets at least this share of the store's raw ranged-GET
	// rate.
	targetColdRatio = 0.6
	// targetWarmRatio: re-reading tiered history from a warm cache is at
	// least this share of reading the same amount from local segments.
	targetWarmRatio = 0.8
)

const (
	envTierMiB = "STRATA_BENCH_TIER_MIB" // MiB of record values produced to each topic, default 1024

	tierTopic      = "strata-bench-tier"       // tiered, local.retention.bytes=0
	tierLocalTopic = "strata-bench-tier-local" // remote.storage.enable=false, for the local reference
	// tierPartitions: one partition, so that each pipeline being measured
	// is one stream — one upload at a time, one remote read path with its
	// read-ahead — and the raw store figures beside them (one PUT stream;
	// one GET stream and the read-ahead's parallelism) are its limits.
	tierPartitions   = 1
	tierSegmentBytes = 64 << 20

	tierDefaultMiB = 1024
	// With less free disk than tierLowDiskBytes the default shrinks to
	// tierLowDiskMiB: the run holds the data about four times at its peak
	// (bucket, remote cache, local reference topic, the tiered topic's
	// local segments before retention removes them) plus the limit files.
	tierLowDiskBytes = 8 << 30
	tierLowDiskMiB   = 512

	// tierCheckIntervalMs is the broker's tiering task interval and
	// retention check interval: short, so that the figures measure the
	// work, not a timer (uploads also start as soon as a segment rolls).
	tierCheckIntervalMs = 200
)

// Hang guards: how long each phase may take at most. They bound waits and
// are never what the benchmark measures or asserts.
const (
	tierPhaseGuard = 10 * time.Minute
	tierWaitGuard  = 5 * time.Minute
	tierSetupGuard = 30 * time.Second
)

// BenchmarkTiering measures tiered storage of a real `strata serve` against
// a real MinIO server (internal/miniotest, path-style minio:// store,
// remote.log.manager.task.interval.ms and log.retention.check.interval.ms
// 200 ms, --remote-cache-size twice the data) and prints one table. One
// iteration is the measurement (run with -benchtime 1x). Missed targets
// are reported, never failed; the benchmark fails when the broker, MinIO or
// a client errors, or a consumer reads wrong data (every record's offset,
// number and length are checked, the bytes of one in spotCheckEvery, and
// the count must match).
//
// Limits first, on the same MinIO, before the broker runs:
//
//   - raw PUT: STRATA_BENCH_LIMIT_MIB (default 512) of incompressible data
//     stored as 64 MiB objects (a segment each) one after another with
//     objectstore.Store.Put — the client, part size and part concurrency
//     the broker's uploader uses. Best of 3 trials.
//
// Then one topic, 1 partition, segment.bytes 64 MiB, local.retention.bytes
// 0, max.message.bytes 2 MiB:
//
//  1. Upload: STRATA_BENCH_TIER_MIB (default 1024, 512 with less than
//     8 GiB free disk) of 1 KiB records produced at full speed (acks=all,
//     idempotent, 1 MiB batches, no compression; each record keyed by its
//     number, its value a window of a random pool). Produce MiB/s counts
//     record values acknowledged. Uploads cannot start before the first
//     segment rolls, so the upload rate is the record values of every
//     closed segment over the time from that first roll (seen in the
//     partition directory) until every segment below the active one is
//     committed to the bucket (GET /v1/tiering/status: remote end offset
//     at the active segment's base, no upload lag). If each segment
//     uploads in no more time than the next takes to fill, the ratio to
//     the produce rate is ≥ 1: uploads keep up. Shown also beside the
//     raw PUT rate (which counts object bytes: log, indexes and batch
//     overhead, a few percent more than record values).
//  2. Cold read: segment.ms is set to 1 ms and one more record produced,
//     which rolls the last data segment; once the remote tier reaches it
//     and local retention has deleted the local copies (local start
//     offset at that record), the broker is stopped, its remote cache
//     (<data-dir>/remote-cache) removed, and — broker down — the raw
//     ranged-GET rate of the tiered segment objects measured: 8 MiB
//     ranges (the cache's chunk) in key order, up to
//     STRATA_BENCH_LIMIT_MIB per trial, one GET at a time and with
//     tiering.DefaultReadAheadChunks in flight (the cache's read-ahead
//     parallelism), best of 3 trials each. The broker is restarted and
//     every record before the marker consumed from offset 0 (64 MiB
//     fetches, 16 MiB per partition): all of it is served from the
//     bucket. The target is judged against the better of the two raw GET
//     rates; the ratio to the local read (below) is shown for context, as
//     no remote read can beat the consumer's own ceiling.
//  3. Warm re-read: the same records again, now from the cache, beside the
//     local reference: the same number of records produced to a topic
//     with remote.storage.enable=false and consumed from offset 0 from
//     local segments (both page-cached, as they were just written). Each
//     read runs readRepeats times and the best is kept.
//
// Below the table: the upload lag (closed segments not yet committed,
// polled every 50 ms), the upload rate while the producer ran and while
// the backlog drained after it, the broker's cache counters and remote
// reads (count, size, mean duration) per read pass, CPU shares per phase
// (as in BenchmarkStrata, and the MinIO server's), and the broker's
// WARN/ERROR lines. STRATA_BENCH_ARGS and STRATA_BENCH_ENV
// apply, after the tiering flags (so they can override them), e.g.
// STRATA_BENCH_ARGS=--http.pprof.enable to profile a phase.
func BenchmarkTiering(b *testing.B) {
	loadAtStart := loadAvg()
	work := b.TempDir()
	dataDir := filepath.Join(work, "data")
	limitSize := int64(envInt(b, envLimitMiB, 512)) * mib

	defMiB, diskNote := tierDefaultMiB, ""
	if free, err := freeDiskBytes(work); err != nil {
		b.Fatal(err)
	} else if free < tierLowDiskBytes && os.Getenv(envTierMiB) == "" {
		defMiB = tierLowDiskMiB
		diskNote = fmt.Sprintf("only %.1f GiB free on the file system of %s (< %d GiB): %d MiB per topic instead of %d (set %s to override)",
			float64(free)/(1<<30), work, tierLowDiskBytes>>30, tierLowDiskMiB, tierDefaultMiB, envTierMiB)
	}
	dataMiB := envInt(b, envTierMiB, defMiB)
	if int64(dataMiB)*mib < 2*tierSegmentBytes {
		b.Fatalf("$%s=%d: want at least %d MiB (two segments), or no upload rate can be measured", envTierMiB, dataMiB, 2*tierSegmentBytes/mib)
	}
	total := int64(dataMiB) * mib / recordBytes // records per topic

	pool := make([]byte, 64*mib)
	rand.Read(pool)

	// The object store, and its raw PUT rate while nothing else uses it.
	srv := miniotest.Start(b)
	bucket := srv.NewBucket(b)
	storeURL := fmt.Sprintf("minio://%s/%s?secure=false", srv.Addr(), bucket)
	setup, setupCancel := context.WithTimeout(context.Background(), tierPhaseGuard)
	defer setupCancel()
	store, err := objectstore.Open(setup, storeURL, objectstore.Credentials{AccessKey: srv.AccessKey(), SecretKey: srv.SecretKey()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	putMiBps, err := measurePut(setup, store, limitSize, pool)
	if err != nil {
		b.Fatalf("raw PUT limit: %v", err)
	}
	b.Logf("limit: raw PUT of %d MiB objects %.0f MiB/s", putObjectSize/mib, putMiBps)

	// startBenchBroker takes extra arguments and environment from
	// STRATA_BENCH_ARGS and STRATA_BENCH_ENV; the tiering flags go first,
	// so that the caller's can override them.
	cacheBytes := 2 * int64(dataMiB) * mib
	b.Setenv(envArgs, strings.Join([]string{
		"--object-store=" + storeURL,
		fmt.Sprintf("--remote-cache-size=%d", cacheBytes),
		fmt.Sprintf("--remote.log.manager.task.interval.ms=%d", tierCheckIntervalMs),
		fmt.Sprintf("--log.retention.check.interval.ms=%d", tierCheckIntervalMs),
		os.Getenv(envArgs),
	}, " "))
	b.Setenv(envEnv, strings.Join([]string{
		objectstore.EnvAccessKey + "=" + srv.AccessKey(),
		objectstore.EnvSecretKey + "=" + srv.SecretKey(),
		os.Getenv(envEnv),
	}, " "))

	// 1. Produce and upload.
	br, ctx, brokerFailed := startBenchBroker(b, dataDir)
	sctx, scancel := context.WithTimeout(ctx, tierSetupGuard)
	err = createTierTopic(sctx, br.Addr(), tierTopic, tierPartitions, map[string]string{
		"segment.bytes":         fmt.Sprint(tierSegmentBytes),
		"local.retention.bytes": "0",
	})
	scancel()
	if err != nil {
		brokerFailed("%v", err)
	}
	hook := &produceHook{}
	prod, err := newProducer(br.Addr(), hook)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { prod.Close() }() // the last producer; the first is closed below
	cpu := newCPUMeter(br)
	minioCPU := newProcMeter(findProcess("--address", srv.Addr()))
	watch := startUploadWatch(ctx, br.HTTPAddr(), dataDir, tierTopic, tierPartitions)
	pctx, pcancel := context.WithTimeout(ctx, tierPhaseGuard)
	produceStart := time.Now()
	produced, err := produceRecords(pctx, prod, tierTopic, pool, 0, total)
	pcancel()
	produceEnd := time.Now()
	produceCPU := cpu.lap()
	if err != nil {
		watch.finish()
		brokerFailed("%v", err)
	}
	produceMinIO := minioCPU.lap()
	var up uploadState
	wctx, wcancel := context.WithTimeout(ctx, tierWaitGuard)
	err = waitFor(wctx, "every closed segment of "+tierTopic+" uploaded", func() (bool, string, error) {
		s, err := pollUploads(wctx, br.HTTPAddr(), dataDir, tierTopic, tierPartitions)
		up = s
		return s.uploaded, fmt.Sprintf("%+v", s), err
	})
	wcancel()
	watched := watch.finish()
	firstRoll := watched.firstRoll
	uploadCPU, uploadMinIO := cpu.lap(), minioCPU.lap()
	if err != nil {
		brokerFailed("%v", err)
	}
	if firstRoll.IsZero() {
		brokerFailed("no segment of %s rolled while %d MiB were produced with segment.bytes %d MiB", tierTopic, dataMiB, tierSegmentBytes/mib)
	}
	var uploadedRecords int64
	for _, e := range up.remoteEnd {
		uploadedRecords += e
	}
	uploadBytes := uploadedRecords * recordBytes
	uploadWindow := up.at.Sub(firstRoll)
	uploadMiBps := mibPerSec(uploadBytes, uploadWindow)

	// 2. Roll the last data segment with one more record per partition,
	// and wait until every data record is remote only.
	sctx, scancel = context.WithTimeout(ctx, tierSetupGuard)
	err = setTopicConfig(sctx, br.Addr(), tierTopic, "segment.ms", "1")
	var ends map[int32]int64
	if err == nil {
		ends, err = produceMarkers(sctx, br.Addr(), tierTopic, tierPartitions)
	}
	scancel()
	if err != nil {
		brokerFailed("rolling the last segment: %v", err)
	}
	if n := sumOffsets(ends); n != total {
		brokerFailed("%s: the roll records landed at offsets %v, so the topic holds %d data records, but %d were acknowledged", tierTopic, ends, n, total)
	}
	rollAt := time.Now()
	wctx, wcancel = context.WithTimeout(ctx, tierWaitGuard)
	err = waitFor(wctx, "every record of "+tierTopic+" uploaded and deleted locally", func() (bool, string, error) {
		s, err := pollUploads(wctx, br.HTTPAddr(), dataDir, tierTopic, tierPartitions)
		return remoteOnly(s, ends), fmt.Sprintf("%+v", s), err
	})
	wcancel()
	remoteOnlyAfter := time.Since(rollAt)
	if err != nil {
		brokerFailed("%v", err)
	}
	if err := br.Stop(); err != nil {
		brokerFailed("stop: %v", err)
	}
	firstLog := br.LogPath()

	// Raw GET rates of the tiered objects, broker down.
	cacheDir := filepath.Join(dataDir, "remote-cache")
	if err := os.RemoveAll(cacheDir); err != nil {
		b.Fatal(err)
	}
	gctx, gcancel := context.WithTimeout(context.Background(), tierPhaseGuard)
	defer gcancel()
	objs, err := segmentObjects(gctx, store, tierTopic)
	if err != nil {
		b.Fatal(err)
	}
	var objBytes int64
	for _, o := range objs {
		objBytes += o.size
	}
	getSize := min(limitSize, objBytes)
	get1MiBps, err := measureGet(gctx, store, objs, getSize, tiering.DefaultChunkBytes, 1)
	if err != nil {
		b.Fatalf("raw GET limit: %v", err)
	}
	getNMiBps, err := measureGet(gctx, store, objs, getSize, tiering.DefaultChunkBytes, tiering.DefaultReadAheadChunks)
	if err != nil {
		b.Fatalf("raw GET limit: %v", err)
	}
	getBest := max(get1MiBps, getNMiBps)
	b.Logf("limits: raw GET of %d MiB ranges %.0f MiB/s (1 stream), %.0f MiB/s (%d streams)",
		tiering.DefaultChunkBytes/mib, get1MiBps, getNMiBps, tiering.DefaultReadAheadChunks)

	// Cold and warm reads on a restarted broker with an empty cache.
	br, ctx, brokerFailed = startBenchBroker(b, dataDir)
	// The partitions' loops load their manifests in the background; until
	// then a fetch at offset 0 would be out of range.
	wctx, wcancel = context.WithTimeout(ctx, tierSetupGuard)
	err = waitFor(wctx, "the restarted broker to serve "+tierTopic+" from the bucket", func() (bool, string, error) {
		s, err := pollUploads(wctx, br.HTTPAddr(), dataDir, tierTopic, tierPartitions)
		return remoteOnly(s, ends), fmt.Sprintf("%+v", s), err
	})
	wcancel()
	if err != nil {
		brokerFailed("%v", err)
	}
	if n, err := cacheFiles(cacheDir); err != nil || n > 0 {
		brokerFailed("the remote cache %s is not empty before the cold read (%d files, %v)", cacheDir, n, err)
	}
	cpu = newCPUMeter(br)
	minioCPU.lap()
	before := brokerCacheCounters(br)
	rctx, rcancel := context.WithTimeout(ctx, tierPhaseGuard)
	cold, err := consumeRecords(rctx, br.Addr(), tierTopic, ends, pool, total)
	rcancel()
	coldCPU, coldMinIO := cpu.lap(), minioCPU.lap()
	if err != nil {
		brokerFailed("cold read: %v", err)
	}
	afterCold := brokerCacheCounters(br)
	warm, warmCPU, warmRuns, err := bestRead(ctx, cpu, br.Addr(), tierTopic, ends, pool, total)
	if err != nil {
		brokerFailed("warm read: %v", err)
	}
	afterWarm := brokerCacheCounters(br)

	// 3. The local reference: the same records in local segments.
	sctx, scancel = context.WithTimeout(ctx, tierSetupGuard)
	err = createTierTopic(sctx, br.Addr(), tierLocalTopic, tierPartitions, map[string]string{
		"segment.bytes":         fmt.Sprint(tierSegmentBytes),
		"remote.storage.enable": "false",
	})
	scancel()
	if err != nil {
		brokerFailed("%v", err)
	}
	prod.Close()
	prod, err = newProducer(br.Addr(), hook)
	if err != nil {
		b.Fatal(err)
	}
	cpu.lap()
	pctx, pcancel = context.WithTimeout(ctx, tierPhaseGuard)
	localProduced, err := produceRecords(pctx, prod, tierLocalTopic, pool, 0, total)
	pcancel()
	localProduceCPU := cpu.lap()
	if err != nil {
		brokerFailed("%v", err)
	}
	sctx, scancel = context.WithTimeout(ctx, tierSetupGuard)
	_, localEnds, err := listOffsets(sctx, br.Addr(), tierLocalTopic)
	scancel()
	if err != nil {
		brokerFailed("%v", err)
	}
	cpu.lap()
	local, localCPU, localRuns, err := bestRead(ctx, cpu, br.Addr(), tierLocalTopic, localEnds, pool, total)
	if err != nil {
		brokerFailed("local read: %v", err)
	}
	if err := br.Stop(); err != nil {
		brokerFailed("stop: %v", err)
	}

	uploadRatio := uploadMiBps / produced.mibps()
	coldRatio := cold.mibps() / getBest
	warmRatio := warm.mibps() / local.mibps()

	w := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintf(w, "\nStrata tiering benchmark — %d CPUs (GOMAXPROCS %d), %s, %d MiB of 1 KiB records, %d partition, segment.bytes %d MiB, MinIO at %s, data dir %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOARCH, dataMiB, tierPartitions, tierSegmentBytes/mib, srv.Addr(), dataDir)
	if diskNote != "" {
		fmt.Fprintf(w, "note: %s\n", diskNote)
	}
	fmt.Fprintln(w, "figure\tvalue\tcompared with\tratio\ttarget\tverdict")
	fmt.Fprintf(w, "raw PUT limit (%d MiB objects, 1 stream)\t%.0f MiB/s\t\t\t\t\n", putObjectSize/mib, putMiBps)
	fmt.Fprintf(w, "raw GET limit (%d MiB ranges, 1 stream)\t%.0f MiB/s\t\t\t\t\n", tiering.DefaultChunkBytes/mib, get1MiBps)
	fmt.Fprintf(w, "raw GET limit (%d MiB ranges, %d streams)\t%.0f MiB/s\t\t\t\t\n", tiering.DefaultChunkBytes/mib, tiering.DefaultReadAheadChunks, getNMiBps)
	fmt.Fprintf(w, "produce, acks=all, full speed\t%.1f MiB/s\t\t\t\t\n", produced.mibps())
	fmt.Fprintf(w, "upload (first roll → all closed segments committed)\t%.1f MiB/s\t%.1f MiB/s produce\t%.2f\t≥ %.2f\t%s\n",
		uploadMiBps, produced.mibps(), uploadRatio, targetUploadRatio, verdict(uploadRatio >= targetUploadRatio))
	fmt.Fprintf(w, "  same, beside raw PUT\t%.1f MiB/s\t%.0f MiB/s raw PUT\t%.2f\t\t\n", uploadMiBps, putMiBps, uploadMiBps/putMiBps)
	fmt.Fprintf(w, "cold read from offset 0 (empty remote cache)\t%.1f MiB/s\t%.0f MiB/s raw GET\t%.2f\t≥ %.2f\t%s\n",
		cold.mibps(), getBest, coldRatio, targetColdRatio, verdict(coldRatio >= targetColdRatio))
	fmt.Fprintf(w, "  same, beside the local read\t%.1f MiB/s\t%.1f MiB/s local\t%.2f\t\t\n", cold.mibps(), local.mibps(), cold.mibps()/local.mibps())
	fmt.Fprintf(w, "warm re-read (cached)\t%.1f MiB/s\t%.1f MiB/s local\t%.2f\t≥ %.2f\t%s\n",
		warm.mibps(), local.mibps(), warmRatio, targetWarmRatio, verdict(warmRatio >= targetWarmRatio))
	fmt.Fprintf(w, "local read (tiering off, same records)\t%.1f MiB/s\t\t\t\t\n", local.mibps())
	w.Flush()
	fmt.Printf("produce: %d records in %.1f s, first segment rolled after %.1f s; upload: %d closed segments, %d records (%.0f MiB of object bytes) committed %.1f s after the first roll, %.2f s after the producer finished; upload lag (closed, not committed) at most %.0f MiB, %.0f MiB when the producer finished\n",
		produced.records, produced.elapsed.Seconds(), firstRoll.Sub(produceStart).Seconds(), up.segs, uploadedRecords, float64(up.remote)/mib,
		uploadWindow.Seconds(), up.at.Sub(produceEnd).Seconds(), float64(watched.maxLag())/mib, float64(watched.lagAt(produceEnd))/mib)
	lagAtEnd := watched.lagAt(produceEnd)
	fmt.Printf("upload rate while the producer ran (first roll → producer done) %.1f MiB/s, after it finished (drain) %.1f MiB/s\n",
		mibPerSec(uploadBytes-lagAtEnd, produceEnd.Sub(firstRoll)), mibPerSec(lagAtEnd, up.at.Sub(produceEnd)))
	fmt.Printf("last segment rolled with segment.ms=1 and one record; remote-only %.1f s later (uploaded, local copies deleted); %d segment objects, %.0f MiB; raw GET trials of %.0f MiB\n",
		remoteOnlyAfter.Seconds(), len(objs), float64(objBytes)/mib, float64(getSize)/mib)
	fmt.Printf("cold read: %d records in %.1f s (%s); warm, best of %d: %d records in %.1f s (%s, all runs: %s); local, best of %d: %d records in %.1f s (all runs: %s; produced at %.1f MiB/s)\n",
		cold.records, cold.elapsed.Seconds(), afterCold.since(before),
		len(warmRuns), warm.records, warm.elapsed.Seconds(), afterWarm.since(afterCold), rates(warmRuns),
		len(localRuns), local.records, local.elapsed.Seconds(), rates(localRuns), localProduced.mibps())
	fmt.Printf("CPU in cores (broker + benchmark clients / whole machine busy, of %d): produce %s, upload drain %s, cold read %s, warm read %s, local produce %s, local read %s\n",
		runtime.NumCPU(), produceCPU, uploadCPU, coldCPU, warmCPU, localProduceCPU, localCPU)
	if minioCPU.pid > 0 {
		fmt.Printf("MinIO server CPU in cores: produce %.2f, upload drain %.2f, cold read %.2f\n", produceMinIO, uploadMinIO, coldMinIO)
	}
	fmt.Printf("broker CPU per MiB of record values: cold read %.2f ms, warm read %.2f ms, local read %.2f ms\n",
		coldCPU.msPerMiB(cold.bytes), warmCPU.msPerMiB(warm.bytes), localCPU.msPerMiB(local.bytes))
	if watched.err != nil {
		fmt.Printf("note: polling the tiering status during the produce phase failed at times: %v\n", watched.err)
	}
	if len(up.lastErrors) > 0 {
		fmt.Printf("note: the tiering status showed errors: %s\n", strings.Join(up.lastErrors, "; "))
	}
	if n := hook.ioErrs.Load(); n > 0 {
		fmt.Printf("note: %d produce requests hit connection errors (last: %v); kgo retried them\n", n, *hook.lastErr.Load())
	}
	warn := brokerWarnings(firstLog, 10)
	fmt.Printf("broker log before the restart %s: %d warning/error lines\n", firstLog, len(warn.first)+warn.more)
	for _, l := range warn.first {
		fmt.Printf("  %s\n", l)
	}
	printRunFooter(br, loadAtStart)

	b.ReportMetric(0, "ns/op") // the run's wall time is not a figure of merit
	b.ReportMetric(putMiBps, "put-MiB/s")
	b.ReportMetric(getBest, "get-MiB/s")
	b.ReportMetric(produced.mibps(), "produce-MiB/s")
	b.ReportMetric(uploadMiBps, "upload-MiB/s")
	b.ReportMetric(uploadRatio, "upload/produce")
	b.ReportMetric(cold.mibps(), "cold-MiB/s")
	b.ReportMetric(coldRatio, "cold/get")
	b.ReportMetric(warm.mibps(), "warm-MiB/s")
	b.ReportMetric(warmRatio, "warm/local")
	b.ReportMetric(local.mibps(), "local-MiB/s")
}

// readRepeats: the warm and the local read are each run this often and the
// best kept, as the limits are: on a shared machine interference only ever
// slows a run down. (The cold read cannot be repeated without a restart.)
const readRepeats = 2

// bestRead runs consumeRecords readRepeats times and returns the fastest
// run, the CPU shares of the whole series (cpu lapped at its end) and
// every run's result.
func bestRead(ctx context.Context, cpu *cpuMeter, addr, topic string, ends map[int32]int64, pool []byte, total int64) (consumeResult, cpuShare, []consumeResult, error) {
	var best consumeResult
	var runs []consumeResult
	for range readRepeats {
		rctx, rcancel := context.WithTimeout(ctx, tierPhaseGuard)
		r, err := consumeRecords(rctx, addr, topic, ends, pool, total)
		rcancel()
		if err != nil {
			return best, cpu.lap(), runs, err
		}
		runs = append(runs, r)
		if best.elapsed == 0 || r.elapsed < best.elapsed {
			best = r
		}
	}
	return best, cpu.lap(), runs, nil
}

// rates lists the runs' rates, "x, y MiB/s".
func rates(runs []consumeResult) string {
	var parts []string
	for _, r := range runs {
		parts = append(parts, fmt.Sprintf("%.1f", r.mibps()))
	}
	return strings.Join(parts, ", ") + " MiB/s"
}

// produceMarkers produces one small record to every partition of topic
// (explicitly partitioned, acks=all) and returns each one's offset: the
// partitions' data records end there. With segment.ms set low it rolls
// the active segment, closing the last data segment.
func produceMarkers(ctx context.Context, addr, topic string, partitions int32) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	offs := make(map[int32]int64, partitions)
	for p := range partitions {
		r := &kgo.Record{Topic: topic, Partition: p, Value: []byte("roll")}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			return nil, fmt.Errorf("produce the roll record to %s/%d: %w", topic, p, err)
		}
		offs[p] = r.Offset
	}
	return offs, nil
}

// remoteOnly reports whether every partition's records below ends[p] are
// in the remote tier and no longer local.
func remoteOnly(s uploadState, ends map[int32]int64) bool {
	for p, end := range ends {
		if s.remoteEnd[p] < end || s.localStart[p] < end {
			return false
		}
	}
	return true
}

func sumOffsets(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// cacheFiles counts the chunk files (*.chunk, *.tmp) in the remote cache
// directory; a missing directory has none.
func cacheFiles(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".chunk") || strings.HasSuffix(e.Name(), ".tmp") {
			n++
		}
	}
	return n, nil
}

// brokerCacheCounters reads the remote-cache counters from the broker's
// /metrics; unreadable metrics give counters marked not exported (they
// explain the table, they decide nothing).
func brokerCacheCounters(br *harness.Broker) cacheCounters {
	m, err := br.Metrics()
	if err != nil {
		return cacheCounters{}
	}
	return readCacheCounters(m)
}
