package e2e

// Regression tests for the wire-layer defects of issue 9 (hostile testing):
// a few bytes that claimed billions of tagged fields or array elements cost
// a minute of CPU each, and six 4-byte size prefixes stalled every client
// for ten minutes.

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDecodeBombs: request bodies of a few bytes that claim 2^32-1 tagged
// fields or 2^31 array elements are refused at once, cost the broker next to
// no CPU, and disturb no other client. Before the fix the 22-byte
// ApiVersions request below took 53 s of CPU to decode, and four of them
// slowed every client 40×.
func TestDecodeBombs(t *testing.T) {
	b := startStrata(t)
	const steady = "bombs-steady"
	b.createTopic(t, steady, 2, nil)
	sc := runSteadyClient(t, b, steady)
	sc.waitProgress(t, "start")

	bombs := []struct {
		name  string
		frame []byte
	}{
		// The request from the issue, byte for byte: ApiVersions v3, empty
		// client software name and version, then a tag count of 2^32-1.
		{"ApiVersions v3 tag count 2^32-1", []byte("\x00\x00\x00\x12\x00\x12\x00\x03\x00\x00\x00\x01\xff\xff\x00\x01\x01\xff\xff\xff\xff\x0f")},
		// Produce v7: null transactional id, acks 1, timeout, then 2^31-1 topics.
		{"Produce v7 topic count 2^31-1", rawFrame(0, 7, "\xff\xff\x00\x01\x00\x00\x75\x30\x7f\xff\xff\xff\x00\x00")},
		// Fetch v12 (flexible): one topic, one partition whose tagged-field
		// section claims 2^32-1 fields: the tag loop sits two arrays deep.
		{"Fetch v12 partition tag count 2^32-1", fetchTagBomb()},
		// DeleteTopics v5 (flexible): 10^8 topic names in six bytes.
		{"DeleteTopics v5 10^8 names", rawFrame(20, 5, "\x81\xc2\xd7\x2f\x01\x01")},
	}
	user0, sys0, err := b.CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	var conns []*rawConn
	for range 4 {
		for _, bomb := range bombs {
			rc := dialRaw(t, b.Addr())
			if err := rc.writeRaw(bomb.frame); err != nil && !isConnDropped(err) {
				t.Fatalf("%s: write: %v", bomb.name, err)
			}
			conns = append(conns, rc)
		}
	}
	for i, rc := range conns {
		got, err := rc.expectClosed(closeWait)
		if err != nil {
			t.Errorf("%s: %v", bombs[i%len(bombs)].name, err)
		}
		if len(got) > 0 {
			t.Errorf("%s: the broker answered %d bytes instead of closing", bombs[i%len(bombs)].name, len(got))
		}
	}
	sc.waitProgress(t, "the bombs")
	user1, sys1, err := b.CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	// The steady client's traffic is in this too; the bug cost ~50 s per bomb.
	if cpu := user1 - user0 + sys1 - sys0; cpu > 5*time.Second {
		t.Errorf("%d bombs of at most %d bytes cost the broker %v of CPU", len(conns), 80, cpu)
	} else {
		t.Logf("%d bombs: broker CPU %v (steady client included)", len(conns), cpu)
	}
	m := b.Metrics()
	if got, _ := promValue(m, "strata_broker_bad_input_total", `kind="shape"`); got < float64(len(conns)) {
		t.Errorf("bad-input counter for kind shape is %v, want at least %d", got, len(conns))
	}
	// Bad input is logged once per kind per 10 s (the metric counts every
	// one): the first bomb's line explains its refusal, naming the claim.
	explained := false
	for _, l := range b.LogOfStart(1) {
		if strings.Contains(l, "kind=shape") && strings.Contains(l, "claims") && strings.Contains(l, "left") {
			explained = true
			t.Logf("logged: %s", l)
		}
	}
	if !explained {
		t.Errorf("no log line explains a refusal (kind=shape, what the body claims and the bytes left)")
	}
	if _, _, err := sc.stop(); err != nil {
		t.Fatal(err)
	}
}

// fetchTagBomb is a Fetch v12 request for one partition whose tagged-field
// section claims 2^32-1 fields, and ends there.
func fetchTagBomb() []byte {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	topic := kmsg.NewFetchRequestTopic()
	topic.Topic = "t"
	topic.Partitions = append(topic.Partitions, kmsg.NewFetchRequestTopicPartition())
	req.Topics = append(req.Topics, topic)
	body := req.AppendTo(nil)
	// The body ends with the partition's empty tag section, the topic's,
	// no forgotten topics, an empty rack and the request's tag section.
	if !strings.HasSuffix(string(body), "\x00\x00\x01\x01\x00") {
		panic(fmt.Sprintf("unexpected Fetch v12 encoding % x", body))
	}
	body = append(body[:len(body)-5], 0xff, 0xff, 0xff, 0xff, 0x0f)
	return rawFrame(1, 12, string(body))
}

// rawFrame frames a request of key and version with a null client id and
// the given body (request header v2, with its empty tag section, for
// flexible versions).
func rawFrame(key, version int16, body string) []byte {
	h := binary.BigEndian.AppendUint16(nil, uint16(key))
	h = binary.BigEndian.AppendUint16(h, uint16(version))
	h = binary.BigEndian.AppendUint32(h, 1)
	h = binary.BigEndian.AppendUint16(h, 0xffff)
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	if req.IsFlexible() {
		h = append(h, 0)
	}
	h = append(h, body...)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(h))), h...)
}

// TestLyingSizePrefixes: six connections that send only a 100 MiB size
// prefix, and six that send half of a 1 MiB frame and stop, hold almost
// nothing: a producer's acks=all requests keep their usual latency, and
// the stalled frames are cut after socket.request.read.timeout.ms. Before
// the fix the prefixes reserved 600 MiB of the 512 MiB request budget and
// every later request waited behind them for the idle timeout (10 min).
// Also: max.connections.per.ip refuses one connection too many from an
// address without affecting other addresses.
func TestLyingSizePrefixes(t *testing.T) {
	const readTimeout = 3 * time.Second
	b := startStrata(t, fmt.Sprintf("--socket.request.read.timeout.ms=%d", readTimeout.Milliseconds()), "--max.connections.per.ip=20")
	const topic = "liars-steady"
	b.createTopic(t, topic, 1, nil)
	prod := b.kgoClient(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
	produce := func(n int) []time.Duration {
		var lat []time.Duration
		for i := range n {
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			start := time.Now()
			err := prod.ProduceSync(ctx, &kgo.Record{Value: recValue("liars", i)}).FirstErr()
			cancel()
			if err != nil {
				t.Fatalf("produce: %v", err)
			}
			lat = append(lat, time.Since(start))
		}
		return lat
	}
	before := produce(20)

	// The attackers come from 127.0.0.2, so the per-IP limit below is
	// theirs alone.
	dialFrom := func(ip string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatalf("dial from %s: %v", ip, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var liars []net.Conn
	for range 6 {
		c := dialFrom("127.0.0.2")
		if _, err := c.Write([]byte("\x06\x40\x00\x00")); err != nil {
			t.Fatal(err)
		}
		liars = append(liars, c)
	}
	for range 6 {
		c := dialFrom("127.0.0.2")
		half := append(binary.BigEndian.AppendUint32(nil, 1<<20), make([]byte, 512<<10)...)
		if _, err := c.Write(half); err != nil {
			t.Fatal(err)
		}
		liars = append(liars, c)
	}
	attackStart := time.Now()
	during := produce(20)
	worst := func(lat []time.Duration) time.Duration {
		var w time.Duration
		for _, l := range lat {
			w = max(w, l)
		}
		return w
	}
	t.Logf("acks=all produce latency: worst %v before the attack, %v during it", worst(before), worst(during))
	// A hang guard with a wide margin, not a speed target: the defect made
	// these wait ten minutes.
	if w := worst(during); w > readTimeout {
		t.Errorf("a produce took %v while lying connections were open (worst before: %v)", w, worst(before))
	}

	// The stalled frames are cut once the read timeout passes.
	for i, c := range liars {
		c.SetReadDeadline(attackStart.Add(readTimeout + closeWait))
		var one [1]byte
		if n, err := c.Read(one[:]); n > 0 || !isConnDropped(err) {
			t.Errorf("stalled connection %d: read %d bytes, %v; want it closed", i, n, err)
		}
	}
	if got, _ := promValue(b.Metrics(), "strata_broker_bad_input_total", `kind="slow_frame"`); got < float64(len(liars)) {
		t.Errorf("slow_frame bad-input count %v, want %d", got, len(liars))
	}

	// max.connections.per.ip: 20 from 127.0.0.3 are served, the 21st is
	// closed at once, and 127.0.0.1's clients never notice.
	var held []*rawConn
	for range 20 {
		held = append(held, rawConnOver(t, dialFrom("127.0.0.3")))
	}
	for i, rc := range held {
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(3)
		if _, err := rc.send(req); err != nil {
			t.Fatal(err)
		}
		if _, err := rc.readFrame(closeWait); err != nil {
			t.Fatalf("connection %d of 20 from one address: %v", i+1, err)
		}
	}
	// The harness's readiness probes from 127.0.0.1 may have queued in the
	// accept backlog and been refused together at start: count from here.
	rejectedBefore, _ := promValue(b.Metrics(), "strata_broker_connections_rejected_total", `reason="max_connections_per_ip"`)
	over := rawConnOver(t, dialFrom("127.0.0.3"))
	if got, err := over.expectClosed(closeWait); err != nil || len(got) > 0 {
		t.Errorf("the 21st connection from one address: %d bytes, %v; want it closed at once", len(got), err)
	}
	if got, _ := promValue(b.Metrics(), "strata_broker_connections_rejected_total", `reason="max_connections_per_ip"`); got-rejectedBefore != 1 {
		t.Errorf("connections rejected for max.connections.per.ip: %v more, want 1 more", got-rejectedBefore)
	}
	produce(5)
}
