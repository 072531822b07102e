package e2e

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/internal/harness"
)

// Knobs of TestProtocolFuzz, read from the environment.
const (
	fuzzSeedEnv     = "STRATA_FUZZ_SEED"     // uint64; default: random, printed
	fuzzDurationEnv = "STRATA_FUZZ_DURATION" // Go duration of the fuzzing phase; default fuzzDefaultDuration
	fuzzConnsEnv    = "STRATA_FUZZ_CONNS"    // parallel connections; default fuzzDefaultConns
	// fuzzOnlyEnv replays one connection ("phase:worker/number", as failures name them) of
	// the seed's run, alone, and nothing else: a failure's reproduction.
	fuzzOnlyEnv = "STRATA_FUZZ_CONN"
)

const (
	fuzzDefaultDuration = 35 * time.Second
	fuzzDefaultConns    = 6
	// fuzzMaxPartitions is the broker's max.broker.partitions in the test: __consumer_offsets
	// (50), the steady and fuzz-owned topics, and a few hundred for the fuzzer to create.
	fuzzMaxPartitions = 500
	// fuzzAnswerWait is how long the broker has to answer a request (beyond the wait the
	// request itself allows, fuzzRequest.wait) or to close the connection, counted from when
	// the request was sent or the previous response arrived, whichever is later. Generous: the
	// machine is a loaded 2-core one, and a hang is forever.
	fuzzAnswerWait = 15 * time.Second
	// fuzzSteadyStall is the longest the steady client may go without producing or consuming.
	fuzzSteadyStall = 15 * time.Second
	// fuzzMaxRSS bounds the broker's peak RSS. It idles at ~60 MiB; request memory is bounded by
	// queued.max.request.bytes (512 MiB) but the fuzzer's requests are at most a few MiB each.
	fuzzMaxRSS = 768 << 20
	// fuzzMaxDecode bounds the decoding of any one request body (the bug guarded against: a
	// 22-byte ApiVersions v3 body whose tag count was 2^32-1 cost 53 s of CPU in kmsg v1.15.0).
	fuzzMaxDecode = 0.25 // seconds; checked to the histogram's resolution (checkFuzzDecodeTimes)
	// The broker's CPU time during the fuzzing phase, less what the steady client costs alone
	// (measured over fuzzCPUBaseline first), may be at most a fixed allowance plus a cost per
	// request and per byte sent. This is a loose backstop: well-formed requests legitimately
	// create and delete topics (a dozen fsyncs a partition, mostly system time), so the phase
	// can keep a core busy. The tight check is the rejection phase's below, and a decode that
	// hangs is caught by fuzzAnswerWait.
	fuzzCPUBaseline   = 3 * time.Second
	fuzzCPUFixed      = 10 * time.Second
	fuzzCPUPerRequest = 3 * time.Millisecond // creating and deleting topics (fsyncs) is most of it
	fuzzCPUPerByte    = 100 * time.Nanosecond
	// The rejection phase sends only requests that do not decode, each on a fresh connection
	// the broker closes: its CPU cost (beyond the steady client's) must stay near that of
	// accepting and closing connections.
	fuzzRejectPhase         = 4 * time.Second
	fuzzRejectCPUFixed      = 1 * time.Second
	fuzzRejectCPUPerRequest = 200 * time.Microsecond
	fuzzRejectCPUPerByte    = 20 * time.Nanosecond
)

// TestProtocolFuzz: a seeded, time-bounded protocol fuzzer. It asks the broker which APIs and
// versions it advertises (ApiVersions, so a new API is fuzzed as soon as it is advertised),
// then, over several raw TCP connections in parallel, sends requests for every one of them:
// kmsg request structs filled by reflection with random and hostile values (empty, huge and
// negative counts and sizes, nulls, very long strings, random record bytes and lying record
// batches, random and fuzz-owned topic and group names, negative partitions and offsets, integer
// extremes, and member ids, generations and producer ids the broker handed out earlier), encoded
// by kmsg, and on most connections mutated after encoding (bit flips, truncation, junk, hostile
// int32/int16 lengths and uvarint counts such as 0xffffffff, tag counts, header fields), framed
// by hand (header v1/v2 with client id, pipelined); some connections end with a lying frame size
// or an abrupt close. A janitor deletes the topics the fuzzer creates every couple of seconds.
// Then a short rejection phase sends only requests that do not decode. Meanwhile a well-behaved
// franz-go producer and consumer (runSteadyClient) keep working on a topic the fuzzer never names.
//
// It checks: the broker never crashes, panics (even recovered: "handler panicked"), races or dies
// with a fatal error; every response that arrives decodes with kmsg at its request's version,
// re-encodes to the very bytes sent (kmsg's decoding alone forgives a corrupt length), and
// carries that request's correlation id, in request order; a request that decodes is answered (a
// Produce with acks=0 is not, and may close the connection, as in Kafka), while one that does not
// may close the connection, and one whose frame lies must; nothing hangs (fuzzAnswerWait per
// request, plus its legitimate long poll or rebalance wait; a hang logs the broker's goroutines);
// the broker's peak RSS stays under fuzzMaxRSS; no request body took longer than fuzzMaxDecode to
// decode (strata_broker_request_decode_seconds); the broker's CPU time stays within a bound linear
// in the requests and bytes sent (loose while well-formed requests create topics, tight in the
// rejection phase); every advertised API version was answered at least once; and the steady
// client never stalls for fuzzSteadyStall and loses nothing.
//
// The seed is printed, and a failure names it, the connection ("phase:worker/number") and the
// request: API, version, how it was made, the hex of its first bytes and, if it decodes, its
// fields. STRATA_FUZZ_SEED=<seed> replays the run: each connection's requests are a function of
// the seed (but for values learnt from the broker: topic ids, member ids…); adding
// STRATA_FUZZ_CONN=<phase:worker/number> replays just that connection. STRATA_FUZZ_DURATION
// lengthens the fuzzing (default 35 s), STRATA_FUZZ_CONNS sets the connections (default 6).
func TestProtocolFuzz(t *testing.T) {
	seed := rand.Uint64()
	if s := os.Getenv(fuzzSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", fuzzSeedEnv, s, err)
		}
	}
	duration := fuzzDefaultDuration
	if s := os.Getenv(fuzzDurationEnv); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive Go duration (%v)", fuzzDurationEnv, s, err)
		}
		duration = d
	}
	conns := fuzzDefaultConns
	if s := os.Getenv(fuzzConnsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive integer", fuzzConnsEnv, s)
		}
		conns = n
	}
	var only *fuzzConnID
	if s := os.Getenv(fuzzOnlyEnv); s != "" {
		only = new(fuzzConnID)
		if _, err := fmt.Sscanf(s, "%d:%d/%d", &only.phase, &only.worker, &only.conn); err != nil || only.phase < 0 || only.phase > 1 {
			t.Fatalf("%s=%q: want phase:worker/connection, e.g. 0:3/17", fuzzOnlyEnv, s)
		}
		t.Logf("protocol fuzz: seed %d, replaying connection %s only", seed, s)
	} else {
		t.Logf("protocol fuzz: seed %d (%s=%d replays it), %v of fuzzing on %d connections", seed, fuzzSeedEnv, seed, duration, conns)
	}
	var f *protoFuzzer
	defer func() {
		if !t.Failed() {
			return
		}
		t.Logf("protocol fuzz: to reproduce: %s=%d go test ./e2e -run '^TestProtocolFuzz$' -count=1 -v", fuzzSeedEnv, seed)
		if c := f.firstFailedConn(); f != nil && c != "" {
			t.Logf("protocol fuzz: to replay the first failing connection alone: %s=%d %s=%s go test ./e2e -run '^TestProtocolFuzz$' -count=1 -v",
				fuzzSeedEnv, seed, fuzzOnlyEnv, c)
		}
	}()

	// Session timeouts bounded so that no join or sync can legitimately wait longer than the
	// fuzzer allows (fuzzMaxRebalance; see fuzzGen.tame). Partitions bounded well below the
	// default: CreateTopics and CreatePartitions get random partition counts, and each new
	// partition costs a dozen fsyncs under the topic registry's lock (1,000 of them took more
	// than fuzzAnswerWait on a loaded 2-core machine, and Metadata requests that auto-create a
	// topic wait for that lock). pprof, for the goroutine dump of a hang.
	b := startStrata(t, "--http.pprof.enable",
		"--max.broker.partitions", strconv.Itoa(fuzzMaxPartitions),
		"--group.min.session.timeout.ms", strconv.Itoa(int(fuzzMinSession/time.Millisecond)),
		"--group.max.session.timeout.ms", strconv.Itoa(int(fuzzMaxSession/time.Millisecond)))
	const steady = "steady"
	b.createTopic(t, steady, 2, nil)
	pools := &fuzzPools{
		// The pre-created topics twice (more requests reach them); fuzz-t3 exists only when
		// the fuzzer creates it; fuzz.t2 collides with fuzz_t2.
		topics: []string{"fuzz-t0", "fuzz-t1", "fuzz_t2", "fuzz-t0", "fuzz-t1", "fuzz_t2", "fuzz-t3", "fuzz.t2"},
		groups: []string{"fuzz-g0", "fuzz-g1", "fuzz-g2"},
		avoid:  steady,
	}
	compact := "compact"
	precreated := []fuzzTopic{
		{"fuzz-t0", 3, nil},
		{"fuzz-t1", 1, map[string]*string{"cleanup.policy": &compact}},
		{"fuzz_t2", 1, nil},
	}
	for _, p := range precreated {
		b.createTopic(t, p.name, p.partitions, p.configs)
	}
	apis := learnFuzzPools(t, b, pools)
	pairs := 0
	for _, a := range apis {
		pairs += int(a.max-a.min) + 1
	}
	t.Logf("protocol fuzz: the broker advertises %d APIs, %d API versions; pools: %d topics (%d ids), %d groups, %d config names",
		len(apis), pairs, len(pools.topics), len(pools.topicIDs), len(pools.groups), len(pools.configNames))

	sc := runSteadyClient(t, b, steady)
	sc.waitProgress(t, "start")

	// The steady client's own CPU cost, to set apart from the fuzzer's.
	cpuBase0 := fuzzBrokerCPU(t, b)
	time.Sleep(fuzzCPUBaseline)
	cpu0 := fuzzBrokerCPU(t, b)
	baseRate := float64(cpu0-cpuBase0) / float64(fuzzCPUBaseline)

	f = &protoFuzzer{b: b, seed: seed, apis: apis, pools: pools, failed: make(chan struct{}), only: only}
	f.mu.answered, f.mu.codes = map[[2]int16]int{}, map[int16]map[int16]int{}
	watchStop, steadyDone, janitorDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() { defer close(steadyDone); f.watchSteady(sc, watchStop) }()
	janitor := &fuzzJanitor{keep: steady, pool: precreated}
	go func() { defer close(janitorDone); janitor.run(t, b, watchStop) }()

	elapsed := f.runPhase(0, conns, duration)
	cpu := fuzzBrokerCPU(t, b) - cpu0
	requests, requestBytes := f.stats.requests.Load(), f.stats.bytes.Load()
	// The rejection phase: only requests that do not decode, whose cost must be tiny.
	var rejected, rejectedBytes int64
	var rejectElapsed, rejectCPU time.Duration
	if len(f.failures()) == 0 && b.Running() {
		cpu1, n0, b0 := fuzzBrokerCPU(t, b), f.stats.requests.Load(), f.stats.bytes.Load()
		rejectElapsed = f.runPhase(1, conns, fuzzRejectPhase)
		rejectCPU = fuzzBrokerCPU(t, b) - cpu1
		rejected, rejectedBytes = f.stats.requests.Load()-n0, f.stats.bytes.Load()-b0
	}
	close(watchStop)
	<-steadyDone
	<-janitorDone

	if !b.Running() {
		<-b.Exited()
		t.Fatalf("seed %d: the broker exited during the fuzzing: %v\n%s", seed, b.ExitErr(), f.report())
	}
	st := &f.stats
	t.Logf("protocol fuzz: %s", f.summary(elapsed+rejectElapsed))
	t.Logf("protocol fuzz: janitor: %s", janitor.summary())
	t.Logf("protocol fuzz: error codes answered (code×count): %s", f.codeSummary())
	for _, msg := range f.failures() {
		t.Errorf("seed %d: %s", seed, msg)
	}
	if g := f.goroutines(); g != "" {
		t.Logf("protocol fuzz: the broker's goroutines at the first hang:\n%s", g)
	}

	// Every advertised API version got at least one well-formed request answered.
	var missing []string
	answered := f.answeredCounts()
	for _, a := range apis {
		for v := a.min; v <= a.max; v++ {
			if answered[[2]int16{a.key, v}] == 0 {
				missing = append(missing, fmt.Sprintf("%s v%d", kmsg.NameForKey(a.key), v))
			}
		}
	}
	if only != nil {
		t.Logf("protocol fuzz: one connection replayed: API coverage not checked")
	} else if len(missing) > 0 && len(f.failures()) == 0 {
		t.Errorf("seed %d: no well-formed request was answered for %d advertised API versions in %v (%d requests sent): %s",
			seed, len(missing), elapsed, st.requests.Load(), strings.Join(missing, ", "))
	}

	// Memory and CPU.
	peak := b.PeakRSS()
	steadyCPU := time.Duration(baseRate * float64(elapsed))
	cpuBound := fuzzCPUFixed + time.Duration(requests)*fuzzCPUPerRequest + time.Duration(requestBytes)*fuzzCPUPerByte
	t.Logf("protocol fuzz: broker peak RSS %d MiB; CPU %v in %v, of which the steady client's share is about %v (%.0f%% of a core when alone); the fuzz requests' %v, bound %v",
		peak>>20, cpu.Round(time.Millisecond), elapsed.Round(time.Millisecond), steadyCPU.Round(time.Millisecond), 100*baseRate,
		(cpu - steadyCPU).Round(time.Millisecond), cpuBound.Round(time.Millisecond))
	maxRSS := int64(fuzzMaxRSS)
	if os.Getenv(harness.RaceEnv) != "" {
		maxRSS *= 4 // the race detector's shadow memory (a race build peaked at 554 MiB)
	}
	if peak > maxRSS {
		t.Errorf("seed %d: the broker's peak RSS reached %d MiB, above %d MiB", seed, peak>>20, maxRSS>>20)
	}
	if cpu-steadyCPU > cpuBound {
		t.Errorf("seed %d: the broker used %v of CPU beyond the steady client's for %d requests (%d bytes) in %v, above %v (%v + %v/request + %v/byte)",
			seed, cpu-steadyCPU, requests, requestBytes, elapsed, cpuBound, fuzzCPUFixed, fuzzCPUPerRequest, fuzzCPUPerByte)
	}
	if rejectElapsed > 0 {
		steadyCPU := time.Duration(baseRate * float64(rejectElapsed))
		bound := fuzzRejectCPUFixed + time.Duration(rejected)*fuzzRejectCPUPerRequest + time.Duration(rejectedBytes)*fuzzRejectCPUPerByte
		t.Logf("protocol fuzz: rejection phase: %d requests that do not decode (%d bytes) in %v cost %v of CPU beyond the steady client's (bound %v)",
			rejected, rejectedBytes, rejectElapsed.Round(time.Millisecond), (rejectCPU - steadyCPU).Round(time.Millisecond), bound.Round(time.Millisecond))
		if rejectCPU-steadyCPU > bound {
			t.Errorf("seed %d: rejecting %d requests that do not decode (%d bytes) cost the broker %v of CPU beyond the steady client's, above %v (%v + %v/request + %v/byte)",
				seed, rejected, rejectedBytes, rejectCPU-steadyCPU, bound, fuzzRejectCPUFixed, fuzzRejectCPUPerRequest, fuzzRejectCPUPerByte)
		}
	}
	checkFuzzDecodeTimes(t, seed, b.Metrics())

	// Nothing in the log that must never happen. (The harness's cleanup also fails the test on
	// "panic" and "DATA RACE"; this names the seed and looks for more.)
	lines := b.LogOfStart(1)
	t.Logf("protocol fuzz: broker log: %s", fuzzLogSummary(lines))
	checkFuzzLog(t, seed, lines)

	// The steady client lost nothing. (consumeAll stops the test at once if it has failed
	// already, hence last.)
	produced, consumed, serr := sc.stop()
	switch {
	case serr != nil:
		t.Errorf("seed %d: the well-behaved client failed during the fuzzing: %v", seed, serr)
	case t.Failed():
		t.Logf("protocol fuzz: well-behaved client produced %d and consumed %d records meanwhile; not read back, the test has failed already", produced, consumed)
	default:
		t.Logf("protocol fuzz: well-behaved client produced %d and consumed %d records meanwhile", produced, consumed)
		checkRecValues(t, steady, "steady", produced, b.consumeAll(t, steady))
	}
}

// fuzzTopic is a topic the test creates for the fuzzer.
type fuzzTopic struct {
	name       string
	partitions int32
	configs    map[string]*string
}

// fuzzJanitor keeps the broker's partition count below max.broker.partitions while the fuzzer
// creates topics: every fuzzJanitorInterval it deletes every topic the fuzzer created (all but
// the steady client's, the internal ones and the pool's pre-created ones) and re-creates a
// pre-created topic the fuzzer deleted, so that creation and deletion go on all along, as
// another well-behaved admin client. Its errors are counted, not failures: the fuzzer's own
// requests race with it.
type fuzzJanitor struct {
	keep string      // the steady client's topic: never deleted
	pool []fuzzTopic // re-created when missing

	mu struct {
		sync.Mutex
		deleted, recreated, errs int
		lastErr                  error
	}
}

const fuzzJanitorInterval = 2 * time.Second

func (j *fuzzJanitor) run(t *testing.T, b *strataProc, stop <-chan struct{}) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ClientID("e2e-fuzz-janitor"))
	if err != nil {
		t.Errorf("janitor: %v", err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tick := time.NewTicker(fuzzJanitorInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		j.pass(adm)
	}
}

func (j *fuzzJanitor) pass(adm *kadm.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*fuzzAnswerWait)
	defer cancel()
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		j.fail(err)
		return
	}
	var del []string
	present := map[string]bool{}
	for _, td := range topics.Sorted() {
		present[td.Topic] = true
		if td.Topic == j.keep || td.IsInternal || strings.HasPrefix(td.Topic, "__") ||
			slices.ContainsFunc(j.pool, func(p fuzzTopic) bool { return p.name == td.Topic }) {
			continue
		}
		del = append(del, td.Topic)
	}
	if len(del) > 0 {
		resps, err := adm.DeleteTopics(ctx, del...)
		if err != nil {
			j.fail(err)
		}
		for _, r := range resps.Sorted() {
			if r.Err == nil {
				j.count(&j.mu.deleted)
			}
		}
	}
	for _, p := range j.pool {
		if present[p.name] {
			continue
		}
		if resps, err := adm.CreateTopics(ctx, p.partitions, 1, p.configs, p.name); err != nil {
			j.fail(err)
		} else if r, ok := resps[p.name]; ok && r.Err == nil {
			j.count(&j.mu.recreated)
		}
	}
}

func (j *fuzzJanitor) count(n *int) {
	j.mu.Lock()
	*n++
	j.mu.Unlock()
}

func (j *fuzzJanitor) fail(err error) {
	j.mu.Lock()
	j.mu.errs++
	j.mu.lastErr = err
	j.mu.Unlock()
}

func (j *fuzzJanitor) summary() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := fmt.Sprintf("deleted %d topics the fuzzer created, re-created %d pre-created ones it deleted", j.mu.deleted, j.mu.recreated)
	if j.mu.errs > 0 {
		s += fmt.Sprintf("; %d request errors, the last: %v", j.mu.errs, j.mu.lastErr)
	}
	return s
}

// fuzzBrokerCPU is the broker's CPU time so far (user + system).
func fuzzBrokerCPU(t *testing.T, b *strataProc) time.Duration {
	t.Helper()
	user, sys, err := b.CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	return user + sys
}

// learnFuzzPools asks the broker for its APIs (ApiVersions), the ids of the fuzz-owned topics
// (Metadata v12) and its topic config names (DescribeConfigs), and fills pools.
func learnFuzzPools(t *testing.T, b *strataProc, pools *fuzzPools) []fuzzAPI {
	t.Helper()
	rc := dialRaw(t, b.Addr())
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(0)
	avResp := kmsg.NewPtrApiVersionsResponse()
	if err := rc.roundTrip(av, avResp); err != nil || avResp.ErrorCode != 0 {
		t.Fatalf("ApiVersions: %v (error code %d)", err, avResp.ErrorCode)
	}
	var apis []fuzzAPI
	for _, k := range avResp.ApiKeys {
		if k.MinVersion < 0 || k.MaxVersion < k.MinVersion {
			t.Fatalf("ApiVersions advertises %s v%d–v%d", kmsg.NameForKey(k.ApiKey), k.MinVersion, k.MaxVersion)
		}
		if req := kmsg.RequestForKey(k.ApiKey); req == nil || k.MaxVersion > req.MaxVersion() {
			// The fuzzer would send random bodies only: say so rather than pretend.
			t.Logf("protocol fuzz: kmsg cannot encode %s (key %d) up to v%d; those versions get random bodies", kmsg.NameForKey(k.ApiKey), k.ApiKey, k.MaxVersion)
		}
		apis = append(apis, fuzzAPI{k.ApiKey, k.MinVersion, k.MaxVersion})
	}
	if len(apis) == 0 {
		t.Fatal("ApiVersions advertises no API")
	}

	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	seen := map[string]bool{}
	for _, name := range pools.topics {
		if seen[name] {
			continue
		}
		seen[name] = true
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		md.Topics = append(md.Topics, mt)
	}
	mdResp := kmsg.NewPtrMetadataResponse()
	if err := rc.roundTrip(md, mdResp); err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	for _, mt := range mdResp.Topics {
		if mt.ErrorCode == 0 && mt.TopicID != [16]byte{} {
			pools.topicIDs = append(pools.topicIDs, mt.TopicID)
		}
	}

	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.SetVersion(4)
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeTopic, pools.topics[0]
	dc.Resources = append(dc.Resources, dr)
	dcResp := kmsg.NewPtrDescribeConfigsResponse()
	if err := rc.roundTrip(dc, dcResp); err != nil || len(dcResp.Resources) != 1 || dcResp.Resources[0].ErrorCode != 0 {
		t.Fatalf("DescribeConfigs %s: %v %+v", pools.topics[0], err, dcResp.Resources)
	}
	for _, c := range dcResp.Resources[0].Configs {
		pools.configNames = append(pools.configNames, c.Name)
		if c.Value != nil {
			pools.configValues = append(pools.configValues, *c.Value)
		}
	}
	pools.configValues = append(pools.configValues, "-1", "-2", "0", "1", "9223372036854775807", "-9223372036854775808",
		"9223372036854775808", "compact", "delete", "compact,delete", "delete,,compact", "", " ", "1e3", "0x10", "producer",
		"lz4", "zstd", "gzip", "snappy", "uncompressed", "CreateTime", "LogAppendTime", "true", "false", "2147483648")
	rc.c.Close()
	return apis
}

// fuzzStats are the fuzzer's counters, shared by all connections.
type fuzzStats struct {
	requests, bytes, connections              atomic.Int64
	wellFormed, malformed, v0Answers, lies    atomic.Int64
	mutated, noAnswer, answered, closedByPeer atomic.Int64
	abrupt, skippedLongWait                   atomic.Int64
}

// protoFuzzer runs the fuzzing connections and collects failures.
type protoFuzzer struct {
	b     *strataProc
	seed  uint64
	apis  []fuzzAPI
	pools *fuzzPools
	stats fuzzStats

	failed     chan struct{} // closed at the first failure
	failOnce   sync.Once
	stop       chan struct{} // closed when the current phase ends (or at a failure)
	stopOnce   *sync.Once
	rejectOnly bool        // the current phase sends only requests that do not decode
	only       *fuzzConnID // replay this connection alone (STRATA_FUZZ_CONN), or nil
	learned    fuzzLearned // values from responses, for later requests

	mu struct {
		sync.Mutex
		failures   []string
		answered   map[[2]int16]int        // well-formed requests answered, per (key, version)
		codes      map[int16]map[int16]int // error codes in the responses, per API key
		goroutines string                  // the broker's goroutines at the first hang
		firstConn  string                  // the connection of the first failure ("0:3/17")
	}
}

// runPhase runs conns fuzzing connections at a time for d (less if something fails) and
// returns once every connection has finished its checks.
func (f *protoFuzzer) runPhase(phase, conns int, d time.Duration) time.Duration {
	f.stop, f.stopOnce, f.rejectOnly = make(chan struct{}), new(sync.Once), phase == 1
	start := time.Now()
	var wg sync.WaitGroup
	allDone := make(chan struct{})
	switch {
	case f.only == nil:
		for w := range conns {
			wg.Add(1)
			go func() { defer wg.Done(); f.worker(phase, w) }()
		}
	case f.only.phase == phase:
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := f.only
			f.runConn(o.String(), rand.New(rand.NewPCG(f.seed, o.stream())))
			close(allDone)
		}()
	default:
		return 0
	}
	select {
	case <-time.After(d):
	case <-allDone:
	case <-f.failed:
	case <-f.b.Exited():
	}
	f.halt()
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(fuzzAnswerWait + 4*fuzzMaxRebalance + 3*time.Second + 15*time.Second):
		// Each connection enforces its own deadlines; getting here is a bug in those checks or
		// a write that blocks forever.
		f.failf("phase %d: fuzz connections still running %v after the phase ended", phase, time.Since(start)-d)
	}
	return time.Since(start)
}

func (f *protoFuzzer) halt() { f.stopOnce.Do(func() { close(f.stop) }) }

func (f *protoFuzzer) stopped() bool {
	select {
	case <-f.stop:
		return true
	case <-f.failed:
		return true
	default:
		return false
	}
}

// failf records a failure and stops the fuzzing (the first failures are the interesting ones;
// the connections still running finish their checks).
func (f *protoFuzzer) failf(format string, args ...any) { f.failConn("", format, args...) }

// failConn is failf for a failure on connection id ("0:3/17"), which the message names.
func (f *protoFuzzer) failConn(id, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if id != "" {
		msg = "connection " + id + ": " + msg
	}
	f.mu.Lock()
	if len(f.mu.failures) < 20 {
		f.mu.failures = append(f.mu.failures, msg)
	}
	if f.mu.firstConn == "" {
		f.mu.firstConn = id
	}
	f.mu.Unlock()
	f.failOnce.Do(func() { close(f.failed) })
}

// hangConn records a hang on connection id, with the broker's goroutines (at the first hang)
// to show where it waits.
func (f *protoFuzzer) hangConn(id, format string, args ...any) {
	f.mu.Lock()
	first := f.mu.goroutines == ""
	if first {
		f.mu.goroutines = "(being fetched)"
	}
	f.mu.Unlock()
	if first {
		dump := fuzzGoroutines(f.b)
		f.mu.Lock()
		f.mu.goroutines = dump
		f.mu.Unlock()
	}
	f.failConn(id, format, args...)
}

func (f *protoFuzzer) firstFailedConn() string {
	if f == nil {
		return ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.firstConn
}

func (f *protoFuzzer) goroutines() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.goroutines
}

// fuzzGoroutines summarizes the broker's goroutines (GET /debug/pprof/goroutine?debug=2; the
// test enables http.pprof.enable): identical stacks merged with their count, idle ones (accept
// loops, connections waiting for a request, loops waiting for work) left out.
func fuzzGoroutines(b *strataProc) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.HTTPAddr()+"/debug/pprof/goroutine?debug=2", nil)
	if err != nil {
		return err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Sprintf("(goroutine dump: %v)", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Sprintf("(goroutine dump: %v)", err)
	}
	return fuzzSummarizeGoroutines(string(body))
}

func fuzzSummarizeGoroutines(dump string) string {
	idle := []string{"wire.readFrame(", "(*Conn).writeLoop(", "(*TCPListener).Accept(", "(*tieredPartition).run(",
		"(*tieredPartition).run.func1(", "net/http.(*conn).serve(", "(*topicRegistry).retentionLoop(", "(*tierManager).metadataLoop(",
		"(*groupDriver).timers(", "(*logCleaner).run(", "os/signal.signal_recv("}
	type group struct {
		n     int
		state string
		stack string
	}
	groups := map[string]*group{}
	var order []string
	for _, g := range strings.Split(dump, "\n\n") {
		head, stack, ok := strings.Cut(g, "\n")
		if !ok || !strings.HasPrefix(head, "goroutine ") {
			continue
		}
		var frames []string
		for _, l := range strings.Split(stack, "\n") {
			if strings.HasPrefix(l, "\t") {
				continue // file:line; the function names are enough to group, kept below
			}
			if i := strings.LastIndexByte(l, '('); i > 0 && !strings.HasPrefix(l, "created by") {
				l = l[:i+1] + ")"
			}
			frames = append(frames, l)
		}
		key := strings.Join(frames, "\n")
		skip := false
		for _, s := range idle {
			if strings.Contains(key, s) && !strings.Contains(key, "broker.(*Broker).handle") && !strings.Contains(key, "sync.") {
				skip = true
			}
		}
		if skip {
			continue
		}
		state := head[strings.IndexByte(head, '[')+1 : max(strings.IndexByte(head, ']'), strings.IndexByte(head, '[')+1)]
		if groups[key] == nil {
			groups[key] = &group{state: state, stack: stack}
			order = append(order, key)
		}
		groups[key].n++
	}
	var out strings.Builder
	for _, k := range order {
		g := groups[k]
		fmt.Fprintf(&out, "%d goroutine(s) [%s]:\n%s\n\n", g.n, g.state, g.stack)
		if out.Len() > 48<<10 {
			out.WriteString("…\n")
			break
		}
	}
	return out.String()
}

func (f *protoFuzzer) failures() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.mu.failures)
}

func (f *protoFuzzer) answeredCounts() map[[2]int16]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[[2]int16]int, len(f.mu.answered))
	for k, v := range f.mu.answered {
		out[k] = v
	}
	return out
}

func (f *protoFuzzer) report() string { return strings.Join(f.failures(), "\n") }

func (f *protoFuzzer) summary(elapsed time.Duration) string {
	s := &f.stats
	return fmt.Sprintf("%d requests (%.0f/s), %d bytes (%.1f MiB/s) on %d connections in %v: %d well-formed, %d malformed "+
		"(%d mutated in all), %d ApiVersions above the range, %d lying frame sizes, %d acks=0 produces; %d answered, "+
		"%d connections closed by the broker, %d closed abruptly by the fuzzer; %d long-waiting requests regenerated",
		s.requests.Load(), float64(s.requests.Load())/elapsed.Seconds(), s.bytes.Load(), float64(s.bytes.Load())/elapsed.Seconds()/(1<<20),
		s.connections.Load(), elapsed.Round(time.Millisecond), s.wellFormed.Load(), s.malformed.Load(), s.mutated.Load(),
		s.v0Answers.Load(), s.lies.Load(), s.noAnswer.Load(), s.answered.Load(), s.closedByPeer.Load(), s.abrupt.Load(),
		s.skippedLongWait.Load())
}

// watchSteady fails the fuzzing if the steady client fails or stops making progress for
// fuzzSteadyStall, until the fuzzing stops.
func (f *protoFuzzer) watchSteady(sc *steadyClient, stop <-chan struct{}) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	sc.mu.Lock()
	lastP, lastC := sc.produced, sc.consumed
	sc.mu.Unlock()
	pAt, cAt := time.Now(), time.Now()
	for {
		select {
		case <-stop:
			return
		case <-f.failed:
			return
		case <-tick.C:
		}
		sc.mu.Lock()
		p, c, err := sc.produced, sc.consumed, sc.err
		sc.mu.Unlock()
		now := time.Now()
		if p != lastP {
			lastP, pAt = p, now
		}
		if c != lastC {
			lastC, cAt = c, now
		}
		switch {
		case err != nil:
			f.failf("the well-behaved client failed: %v", err)
			return
		case now.Sub(pAt) > fuzzSteadyStall || now.Sub(cAt) > fuzzSteadyStall:
			f.failf("the well-behaved client made no progress for %v (produced %d, last change %v ago; consumed %d, last change %v ago)",
				fuzzSteadyStall, p, now.Sub(pAt).Round(time.Millisecond), c, now.Sub(cAt).Round(time.Millisecond))
			return
		}
	}
}

// fuzzConnID names one fuzzing connection: the c-th of worker w in phase p.
type fuzzConnID struct{ phase, worker, conn int }

func (id fuzzConnID) String() string { return fmt.Sprintf("%d:%d/%d", id.phase, id.worker, id.conn) }

// stream is the connection's PCG stream: its requests are a function of the seed and this.
func (id fuzzConnID) stream() uint64 {
	return uint64(id.phase)<<48 | uint64(id.worker)<<32 | uint64(id.conn)
}

// worker runs connections one after another until the phase stops.
func (f *protoFuzzer) worker(phase, w int) {
	for c := 0; !f.stopped(); c++ {
		id := fuzzConnID{phase, w, c}
		f.runConn(id.String(), rand.New(rand.NewPCG(f.seed, id.stream())))
	}
}

// How a connection ends once its requests are written.
const (
	fuzzEndHalfClose = iota // CloseWrite; the broker must answer what it owes, then close
	fuzzEndAbrupt           // close without reading the answers
	fuzzEndFrameLie         // the last request's size prefix lies, then CloseWrite
)

// fuzzConn is one fuzzing connection: a writer goroutine sends requests and records them in
// pending; the connection's goroutine reads responses, matches them to pending in order, and
// watches the deadlines.
type fuzzConn struct {
	f   *protoFuzzer
	id  string // "phase:worker/number"
	nc  net.Conn
	gen *fuzzGen

	abandoned atomic.Bool // the fuzzer closed the socket itself: nothing more to check

	mu struct {
		sync.Mutex
		pending    []*fuzzSent  // written, not yet answered, in order
		cause      *fuzzRequest // the first request written that allows the broker to close
		lastRecv   time.Time
		halfClosed time.Time // when the writer half-closed; zero before
	}
}

type fuzzSent struct {
	*fuzzRequest
	at     time.Time
	unsent bool // the write failed: the broker had closed the connection
}

func (f *protoFuzzer) runConn(name string, rng *rand.Rand) {
	nc, err := net.DialTimeout("tcp", f.b.Addr(), 10*time.Second)
	if err != nil {
		f.failConn(name, "dial: %v", err)
		return
	}
	f.stats.connections.Add(1)
	c := &fuzzConn{f: f, id: name, nc: nc}
	c.mu.lastRecv = time.Now()
	writerDone := make(chan struct{})
	defer func() {
		// Checked or failed: close (which unblocks a writer stuck on a broker that stopped
		// reading; that was reported by hung) and wait for the writer.
		c.abandoned.Store(true)
		nc.Close()
		<-writerDone
	}()

	gen := newFuzzGen(rng, f.apis, f.pools, &f.stats)
	gen.learned = &f.learned
	c.gen = gen
	n := 1 + rng.IntN(60)
	if f.rejectOnly {
		gen.rejectOnly, gen.mutatePct = true, 100
		n = 1 + rng.IntN(3)
	}
	ending := fuzzEndHalfClose
	switch r := rng.IntN(100); {
	case r < 8:
		ending = fuzzEndAbrupt
	case r < 20:
		ending = fuzzEndFrameLie
	}
	go func() { defer close(writerDone); c.write(gen, n, ending) }()

	type frameOrErr struct {
		b   []byte
		err error
	}
	frames := make(chan frameOrErr)
	readerDone := make(chan struct{})
	defer close(readerDone)
	go func() {
		br := bufio.NewReaderSize(nc, 64<<10)
		for {
			b, err := readFuzzResponse(br)
			select {
			case frames <- frameOrErr{b, err}:
			case <-readerDone:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case fe := <-frames:
			if fe.err != nil {
				c.closed(fe.err)
				return
			}
			if !c.match(fe.b) {
				return
			}
		case <-tick.C:
			if c.hung() {
				return
			}
		}
	}
}

// write sends n requests (fewer if the fuzzing stops or the broker closes) and ends the
// connection as planned.
func (c *fuzzConn) write(gen *fuzzGen, n, ending int) {
	st := &c.f.stats
	corr := gen.rng.Int32N(1 << 30)
	for i := 0; i < n && !c.f.stopped(); i++ {
		r := gen.next(corr)
		corr++
		if i == n-1 && ending == fuzzEndFrameLie {
			gen.frameLie(r)
		}
		s := &fuzzSent{fuzzRequest: r, at: time.Now()}
		c.mu.Lock()
		c.mu.pending = append(c.mu.pending, s)
		if c.mu.cause == nil && r.mayClose() {
			c.mu.cause = r
		}
		c.mu.Unlock()
		c.count(r)
		c.nc.SetWriteDeadline(time.Now().Add(fuzzAnswerWait + 15*time.Second))
		if _, err := c.nc.Write(r.frame); err != nil {
			c.mu.Lock()
			s.unsent = true
			cause := c.mu.cause
			c.mu.Unlock()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.failf("the broker stopped reading: a %d-byte write blocked for %v (request %s)", len(r.frame), fuzzAnswerWait+15*time.Second, r)
			} else if cause == nil && !c.abandoned.Load() {
				c.failf("writing a request failed (%v) though every request on the connection was well-formed; request %s", err, r)
			}
			return
		}
		st.requests.Add(1)
		st.bytes.Add(int64(len(r.frame)))
		if r.class == fuzzFrameLie {
			break
		}
		if r.class == fuzzMalformed && !gen.rejectOnly && gen.rng.IntN(5) > 0 {
			break // the broker will close the connection: usually stop here
		}
	}
	if ending == fuzzEndAbrupt {
		st.abrupt.Add(1)
		c.abandoned.Store(true)
		c.nc.Close()
		return
	}
	c.mu.Lock()
	c.mu.halfClosed = time.Now()
	c.mu.Unlock()
	c.nc.(*net.TCPConn).CloseWrite()
}

func (c *fuzzConn) failf(format string, args ...any) { c.f.failConn(c.id, format, args...) }
func (c *fuzzConn) hangf(format string, args ...any) { c.f.hangConn(c.id, format, args...) }

func (c *fuzzConn) count(r *fuzzRequest) {
	st := &c.f.stats
	if strings.Contains(r.desc, "; ") {
		st.mutated.Add(1)
	}
	switch r.class {
	case fuzzWellFormed:
		st.wellFormed.Add(1)
		if r.noAnswer {
			st.noAnswer.Add(1)
		}
	case fuzzMalformed:
		st.malformed.Add(1)
	case fuzzV0Answer:
		st.v0Answers.Add(1)
	case fuzzFrameLie:
		st.lies.Add(1)
	}
}

// match checks one response frame (correlation id onwards) against the oldest outstanding
// request. It returns false, having recorded a failure, if the connection is to be abandoned.
func (c *fuzzConn) match(frame []byte) bool {
	corr := int32(binary.BigEndian.Uint32(frame))
	c.mu.Lock()
	var head *fuzzSent
	for len(c.mu.pending) > 0 {
		head = c.mu.pending[0]
		if head.corr == corr || !head.noAnswer {
			break
		}
		c.mu.pending = c.mu.pending[1:] // a Produce with acks=0: never answered
		head = nil
	}
	if head == nil {
		c.mu.Unlock()
		c.failf("a %d-byte response with correlation id %d to no outstanding request: %s", len(frame), corr, fuzzHex(frame))
		return false
	}
	if head.corr != corr {
		c.mu.Unlock()
		c.failf("a response with correlation id %d while the oldest outstanding request is %s (responses out of order, "+
			"or a request skipped without closing the connection): %s", corr, head, fuzzHex(frame))
		return false
	}
	c.mu.pending = c.mu.pending[1:]
	c.mu.lastRecv = time.Now()
	c.mu.Unlock()

	c.f.stats.answered.Add(1)
	switch head.class {
	case fuzzFrameLie:
		c.failf("the broker answered a frame whose size prefix lied: request %s; response %s", head, fuzzHex(frame))
		return false
	case fuzzMalformed:
		c.failf("the broker answered a request kmsg cannot decode (it should close the connection): request %s; response %s",
			head, fuzzHex(frame))
		return false
	}
	version := head.version
	if head.class == fuzzV0Answer {
		version = 0
	}
	resp := kmsg.ResponseForKey(head.key)
	if err := decodeResponse(frame, corr, head.key, version, resp); err != nil {
		c.failf("the response does not decode as %s v%d: %v; request %s; response (%d bytes) %s",
			kmsg.NameForKey(head.key), version, err, head, len(frame), fuzzHex(frame))
		return false
	}
	// kmsg's decoding is lenient (a negative length reads as null, trailing bytes are ignored),
	// so a corrupt response may decode; kmsg's encoding of what it decoded must give back the
	// very bytes the broker sent.
	if body, _ := responseBody(frame, head.key, version); !bytes.Equal(resp.AppendTo(nil), body) {
		re := resp.AppendTo(nil)
		i := 0
		for i < len(re) && i < len(body) && re[i] == body[i] {
			i++
		}
		c.failf("the %s v%d response decodes, but not to what the broker sent: re-encoded it is %d bytes, sent %d, first difference at body byte %d (sent %s, re-encoded %s); request %s",
			kmsg.NameForKey(head.key), version, len(re), len(body), i, fuzzHex(body[min(i, len(body)):]), fuzzHex(re[min(i, len(re)):]), head)
		return false
	}
	c.gen.learned.learn(reflect.ValueOf(resp))
	if head.class == fuzzV0Answer {
		if av := resp.(*kmsg.ApiVersionsResponse); av.ErrorCode != 35 {
			c.failf("ApiVersions above the advertised range answered with error code %d, want 35 (UNSUPPORTED_VERSION): request %s",
				av.ErrorCode, head)
			return false
		}
		return true
	}
	c.f.mu.Lock()
	c.f.mu.answered[[2]int16{head.key, head.version}]++
	if c.f.mu.codes[head.key] == nil {
		c.f.mu.codes[head.key] = map[int16]int{}
	}
	for _, code := range fuzzErrorCodes(reflect.ValueOf(resp).Elem(), nil) {
		c.f.mu.codes[head.key][code]++
	}
	c.f.mu.Unlock()
	return true
}

// fuzzErrorCodes appends every ErrorCode field in the response struct v (recursively).
func fuzzErrorCodes(v reflect.Value, out []int16) []int16 {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16 {
				out = append(out, int16(v.Field(i).Int()))
			} else if f.IsExported() {
				out = fuzzErrorCodes(v.Field(i), out)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			for i := range v.Len() {
				out = fuzzErrorCodes(v.Index(i), out)
			}
		}
	case reflect.Pointer:
		if !v.IsNil() {
			out = fuzzErrorCodes(v.Elem(), out)
		}
	}
	return out
}

// codeSummary says, per API, which error codes the responses carried and how often (0 is
// success): how deep the requests got.
func (f *protoFuzzer) codeSummary() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	keys := make([]int16, 0, len(f.mu.codes))
	for k := range f.mu.codes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		codes := make([]int16, 0, len(f.mu.codes[k]))
		for c := range f.mu.codes[k] {
			codes = append(codes, c)
		}
		slices.SortFunc(codes, func(a, b int16) int { return f.mu.codes[k][b] - f.mu.codes[k][a] })
		var cs []string
		for _, c := range codes[:min(len(codes), 6)] {
			cs = append(cs, fmt.Sprintf("%d×%d", c, f.mu.codes[k][c]))
		}
		if len(codes) > 6 {
			cs = append(cs, "…")
		}
		out = append(out, kmsg.NameForKey(k)+" "+strings.Join(cs, " "))
	}
	return strings.Join(out, "; ")
}

// closed checks the end of the connection (EOF, reset, or a broken response stream).
func (c *fuzzConn) closed(err error) {
	if c.abandoned.Load() {
		return
	}
	c.f.stats.closedByPeer.Add(1)
	c.mu.Lock()
	cause, halfClosed := c.mu.cause, !c.mu.halfClosed.IsZero()
	var owed []*fuzzSent
	for _, s := range c.mu.pending {
		if !s.unsent && !s.noAnswer {
			owed = append(owed, s)
		}
	}
	c.mu.Unlock()
	dropped := isConnDropped(err)
	switch {
	case !dropped && cause == nil:
		c.failf("the response stream broke: %v (every request on the connection was well-formed)", err)
	case !dropped && !errors.Is(err, errFuzzFrameCut):
		c.failf("the response stream broke: %v", err)
	case cause != nil:
		// A malformed request, a lying frame or an acks=0 produce: closing is allowed, and
		// replies still queued for earlier requests may go with the connection.
	case len(owed) > 0:
		// The request that made the broker close is one of them (replies queued for earlier
		// ones go with the connection): name them, the first and last three if there are more.
		var list []string
		for i, s := range owed {
			if i == 3 && len(owed) > 6 {
				list = append(list, fmt.Sprintf("… %d more …", len(owed)-6))
			}
			if i < 3 || i >= len(owed)-3 {
				list = append(list, fmt.Sprintf("(%d) %s", i+1, s))
			}
		}
		c.failf("the broker closed the connection (%v) with %d well-formed request(s) unanswered: %s",
			err, len(owed), strings.Join(list, "; "))
	case !halfClosed:
		c.failf("the broker closed a connection on which every request was well-formed and answered (%v)", err)
	}
}

// hung reports (and records) whether the oldest outstanding request has waited beyond its
// allowance, or a half-closed connection was not closed in time.
func (c *fuzzConn) hung() bool {
	if c.abandoned.Load() {
		return false
	}
	now := time.Now()
	c.mu.Lock()
	var head *fuzzSent
	for _, s := range c.mu.pending {
		if !s.unsent && !s.noAnswer {
			head = s
			break
		}
	}
	lastRecv, halfClosed := c.mu.lastRecv, c.mu.halfClosed
	c.mu.Unlock()
	if head == nil {
		if !halfClosed.IsZero() && now.Sub(fuzzLater(lastRecv, halfClosed)) > fuzzAnswerWait {
			c.hangf("the broker neither closed the connection nor sent anything in %v after the client half-closed it", fuzzAnswerWait)
			return true
		}
		return false
	}
	allowed := fuzzAnswerWait + head.wait
	if waited := now.Sub(fuzzLater(head.at, lastRecv)); waited > allowed {
		what := "no answer"
		if head.class != fuzzWellFormed && head.class != fuzzV0Answer {
			what = "neither an answer nor a closed connection"
		}
		c.hangf("%s in %v (allowance %v) for request %s", what, waited.Round(time.Millisecond), allowed, head)
		return true
	}
	return false
}

func fuzzLater(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// errFuzzFrameCut is a response frame that ended early: the broker closed the connection in the
// middle of writing it, which it may do when it drops a connection.
var errFuzzFrameCut = errors.New("response frame cut short")

// readFuzzResponse reads one response frame and returns it from the correlation id on.
func readFuzzResponse(br *bufio.Reader) ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(br, sz[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: %d of 4 size bytes", errFuzzFrameCut, len(sz))
		}
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(sz[:]))
	if n < 4 || n > 256<<20 {
		return nil, fmt.Errorf("response frame size %d", n)
	}
	b := make([]byte, n)
	if m, err := io.ReadFull(br, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isConnDropped(err) {
			return nil, fmt.Errorf("%w: %d of %d bytes: %v", errFuzzFrameCut, m, n, err)
		}
		return nil, err
	}
	return b, nil
}

func fuzzHex(b []byte) string {
	n := min(len(b), 64)
	s := hex.EncodeToString(b[:n])
	if n < len(b) {
		s += "…"
	}
	return s
}

// checkFuzzDecodeTimes fails the test if any request decode the broker timed
// (strata_broker_request_decode_seconds, a histogram per API) took longer than fuzzMaxDecode, to
// the histogram's resolution: every observation must fall in the first bucket whose upper bound
// is at or above fuzzMaxDecode (0.262144 s with the broker's ×4 buckets).
func checkFuzzDecodeTimes(t *testing.T, seed uint64, exposition string) {
	t.Helper()
	type bucket struct{ le, n float64 }
	type series struct {
		count   float64
		buckets []bucket
	}
	all := map[string]*series{}
	for _, line := range strings.Split(exposition, "\n") {
		name, rest, ok := strings.Cut(line, "{")
		if !ok || !strings.HasPrefix(name, "strata_broker_request_decode_seconds") {
			continue
		}
		labels := "{" + rest
		fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		api := labelValue(labels, "api")
		if all[api] == nil {
			all[api] = &series{}
		}
		switch name {
		case "strata_broker_request_decode_seconds_count":
			all[api].count += v
		case "strata_broker_request_decode_seconds_bucket":
			if le, err := strconv.ParseFloat(strings.TrimPrefix(labelValue(labels, "le"), "+"), 64); err == nil {
				all[api].buckets = append(all[api].buckets, bucket{le, v})
			}
		}
	}
	if len(all) == 0 {
		t.Errorf("seed %d: /metrics has no strata_broker_request_decode_seconds histogram: the decode time of requests cannot be checked", seed)
		return
	}
	var lines []string
	for api, s := range all {
		slices.SortFunc(s.buckets, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
		limit := slices.IndexFunc(s.buckets, func(b bucket) bool { return b.le >= fuzzMaxDecode })
		slowest := slices.IndexFunc(s.buckets, func(b bucket) bool { return b.n >= s.count })
		if limit < 0 || slowest < 0 {
			t.Errorf("seed %d: strata_broker_request_decode_seconds{api=%q} has no bucket at or above %gs, or none holding all %.0f decodes: %+v",
				seed, api, fuzzMaxDecode, s.count, s.buckets)
			continue
		}
		lines = append(lines, fmt.Sprintf("%s %.0f ≤ %gs", api, s.count, s.buckets[slowest].le))
		if n := s.buckets[limit].n; n < s.count {
			t.Errorf("seed %d: %.0f of %.0f %s request bodies took longer than %gs to decode (all ≤ %gs)",
				seed, s.count-n, s.count, api, s.buckets[limit].le, s.buckets[slowest].le)
		}
	}
	slices.Sort(lines)
	t.Logf("protocol fuzz: decode times (decodes ≤ slowest bucket): %s", strings.Join(lines, ", "))
}

// fuzzLogSummary counts the broker's WARN and ERROR log lines by level and message.
func fuzzLogSummary(lines []string) string {
	counts := map[string]int{}
	for _, l := range lines {
		level := fuzzLogValue(l, "level")
		if level != "WARN" && level != "ERROR" {
			continue
		}
		msg := fuzzLogValue(l, "msg")
		if level == "WARN" && msg == "closing connection: bad request" {
			msg += " (" + fuzzLogValue(l, "kind") + ")"
		}
		counts[level+" "+msg]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return counts[b] - counts[a] })
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s ×%d", k, counts[k]))
	}
	if len(out) == 0 {
		return "no warnings or errors"
	}
	return strings.Join(out, "; ")
}

// fuzzLogValue returns the value of key in a slog text line (key=value or key="quoted value").
func fuzzLogValue(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	rest := line[i+len(key)+2:]
	if strings.HasPrefix(rest, `"`) {
		if v, err := strconv.QuotedPrefix(rest); err == nil {
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
		}
		return ""
	}
	if j := strings.IndexByte(rest, ' '); j >= 0 {
		return rest[:j]
	}
	return rest
}

// checkFuzzLog fails the test on broker log lines that must never appear, whatever the input: a
// panic (recovered ones are logged as "handler panicked" or "panic while encoding"), a fatal
// runtime error, a data race, a response the broker could not write, or a connection closed
// because a handler failed (for a request that decoded).
func checkFuzzLog(t *testing.T, seed uint64, lines []string) {
	t.Helper()
	bad := []string{"panic", "fatal error", "DATA RACE", "cannot write response", "handler failed"}
	shown := 0
	for _, l := range lines {
		if strings.Contains(l, "handler failed") && strings.Contains(l, "acks=0") {
			continue // Kafka's answer to a failed acks=0 produce: close the connection
		}
		for _, s := range bad {
			if strings.Contains(l, s) {
				if shown < 10 {
					t.Errorf("seed %d: broker log: %s", seed, l)
				}
				shown++
				break
			}
		}
	}
	if shown > 10 {
		t.Errorf("seed %d: … and %d more such log lines", seed, shown-10)
	}
}
