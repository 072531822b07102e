package broker

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/topicconfig"
	"github.com/stratalog/strata/wire"
)

// admTestConfig is a broker config over dir for the admin handler tests.
func admTestConfig(dir string) Config {
	return Config{
		NodeID:                      1,
		Listen:                      "127.0.0.1:9092",
		Advertise:                   "broker.example:19092",
		DataDir:                     dir,
		NumPartitions:               2,
		DefaultReplicationFactor:    1,
		AutoCreateTopics:            true,
		MaxIncrementalFetchSessions: 10,
		SocketRequestMaxBytes:       100 << 20,
		ConnectionsMaxIdle:          10 * time.Minute,
		MaxInFlightPerConnection:    100,
		RetentionCheckInterval:      5 * time.Minute,
		TopicDefaults:               topicconfig.Default(),
		Logger:                      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// admOpen opens a broker with New and closes it when the test ends (unless
// the test closed it first with admClose).
func admOpen(t *testing.T, cfg Config) *Broker {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { admClose(t, b) })
	return b
}

func admNew(t *testing.T) *Broker { return admOpen(t, admTestConfig(t.TempDir())) }

// admClose shuts the broker's storage down as Shutdown does (without a
// listener). Idempotent.
func admClose(t *testing.T, b *Broker) {
	t.Helper()
	if b.topics == nil {
		return
	}
	if err := b.closeStorage(); err != nil {
		t.Errorf("closeStorage: %v", err)
	}
	b.topics = nil
}

// admCall runs req at version through the handler as the connection layer
// would: the request is encoded and decoded at that version first (so
// version-dependent nullability applies), and the response is encoded and
// decoded at that version, proving it is representable.
func admCall[R kmsg.Response](t *testing.T, b *Broker, req kmsg.Request, version int16) R {
	t.Helper()
	req.SetVersion(version)
	encoded := req.AppendTo(nil)
	decoded := kmsg.RequestForKey(req.Key())
	decoded.SetVersion(version)
	if err := decoded.ReadFrom(encoded); err != nil {
		t.Fatalf("decode request v%d: %v", version, err)
	}
	a := apiFor(t, b, req.Key())
	if version < a.MinVersion || version > a.MaxVersion {
		t.Fatalf("api %d v%d not advertised", req.Key(), version)
	}
	rep, err := a.Handle(&wire.Request{
		Ctx:    context.Background(),
		Header: wire.Header{APIKey: req.Key(), APIVersion: version},
		Body:   decoded,
	})
	if err != nil {
		t.Fatalf("handler: %v", err)
	}
	if rep == nil || rep.Msg == nil || rep.Done != nil {
		t.Fatalf("handler returned an incomplete reply: %+v", rep)
	}
	rep.Msg.SetVersion(version)
	out := decoded.ResponseKind()
	out.SetVersion(version)
	if err := out.ReadFrom(rep.Msg.AppendTo(nil)); err != nil {
		t.Fatalf("decode response v%d: %v", version, err)
	}
	resp, ok := out.(R)
	if !ok {
		t.Fatalf("response type %T", out)
	}
	return resp
}

// admBatch builds a valid magic-v2 batch of n small records (offsets and
// CRC as a producer would send them).
func admBatch(n int) []byte {
	var records []byte
	for i := 0; i < n; i++ {
		var body []byte
		body = append(body, 0)                     // attributes
		body = binary.AppendVarint(body, 0)        // timestamp delta
		body = binary.AppendVarint(body, int64(i)) // offset delta
		body = binary.AppendVarint(body, -1)       // key: null
		body = binary.AppendVarint(body, 5)        // value length
		body = append(body, "value"...)            //
		body = binary.AppendVarint(body, 0)        // headers
		records = binary.AppendVarint(records, int64(len(body)))
		records = append(records, body...)
	}
	now := time.Now().UnixMilli() // recent: retention.ms must not apply
	b := make([]byte, 61, 61+len(records))
	binary.BigEndian.PutUint64(b[0:], 0)                       // base offset
	binary.BigEndian.PutUint32(b[8:], uint32(49+len(records))) // length: everything after this field
	binary.BigEndian.PutUint32(b[12:], 0)                      // partition leader epoch
	b[16] = 2                                                  // magic
	binary.BigEndian.PutUint16(b[21:], 0)                      // attributes
	binary.BigEndian.PutUint32(b[23:], uint32(n-1))            // last offset delta
	binary.BigEndian.PutUint64(b[27:], uint64(now))            // base timestamp
	binary.BigEndian.PutUint64(b[35:], uint64(now))            // max timestamp
	binary.BigEndian.PutUint64(b[43:], ^uint64(0))             // producer id -1
	binary.BigEndian.PutUint16(b[51:], 0xffff)                 // producer epoch -1
	binary.BigEndian.PutUint32(b[53:], 0xffffffff)             // base sequence -1
	binary.BigEndian.PutUint32(b[57:], uint32(n))              // record count
	b = append(b, records...)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// admProduce appends batches of n records to a partition and waits until
// they are durable.
func admProduce(t *testing.T, b *Broker, topicName string, partition int32, batches, n int) {
	t.Helper()
	p := b.topics.get(topicName).partition(partition)
	for i := 0; i < batches; i++ {
		res, err := p.Append(admBatch(n))
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		if err := <-res.Durable; err != nil {
			t.Fatalf("durable: %v", err)
		}
	}
}

func TestTopicRegistryPersistsAcrossRestart(t *testing.T) {
	cfg := admTestConfig(t.TempDir())
	b := admOpen(t, cfg)
	retention := "3600000"
	created, err := b.topics.create("orders", 3, map[string]*string{"retention.ms": &retention})
	if err != nil {
		t.Fatal(err)
	}
	if created.id == ([16]byte{}) {
		t.Fatal("zero topic id")
	}
	if _, err := b.topics.create("other", 1, nil); err != nil {
		t.Fatal(err)
	}
	admProduce(t, b, "orders", 2, 2, 3)
	if err := b.topics.deleteTopic(b.topics.get("other")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "other-0")); !os.IsNotExist(err) {
		t.Fatalf("deleted topic's directory still there: %v", err)
	}
	admClose(t, b)

	// A directory the metadata image does not list is left alone (never
	// delete on absence of evidence) and not served.
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "gone-0"), 0o755); err != nil {
		t.Fatal(err)
	}
	b = admOpen(t, cfg)
	got := b.topics.get("orders")
	if got == nil || got.id != created.id || len(got.partitions) != 3 {
		t.Fatalf("after restart: %+v", got)
	}
	if got.config.RetentionAge.Milliseconds() != 3600000 || got.overrides["retention.ms"] != "3600000" {
		t.Fatalf("override lost: %+v %v", got.config, got.overrides)
	}
	if b.topics.getByID(created.id) != got {
		t.Fatal("getByID after restart")
	}
	if b.topics.get("other") != nil {
		t.Fatal("deleted topic came back")
	}
	if hw := got.partition(2).HighWatermark(); hw != 6 {
		t.Fatalf("high watermark after restart = %d, want 6", hw)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "gone-0")); err != nil || b.topics.get("gone") != nil {
		t.Fatalf("stray directory: %v, served: %v", err, b.topics.get("gone") != nil)
	}
}

// Losing the metadata log (its directory wiped) loses no partition: the
// broker starts as a new cluster of one and leaves the partition
// directories it no longer knows untouched.
func TestTopicRegistryKeepsDataWithoutMetadataLog(t *testing.T) {
	cfg := admTestConfig(t.TempDir())
	b := admOpen(t, cfg)
	if _, err := b.topics.create("orders", 1, nil); err != nil {
		t.Fatal(err)
	}
	admProduce(t, b, "orders", 0, 1, 3)
	admClose(t, b)
	if err := os.RemoveAll(filepath.Join(cfg.DataDir, "metadata")); err != nil {
		t.Fatal(err)
	}
	b = admOpen(t, cfg)
	if b.topics.get("orders") != nil {
		t.Fatal("orders served without being in the metadata log")
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "orders-0", "00000000000000000000.log")); err != nil {
		t.Fatalf("partition data touched: %v", err)
	}
}

func TestTopicRegistryCreateErrors(t *testing.T) {
	b := admNew(t)
	if _, err := b.topics.create("a.b", 1, nil); err != nil {
		t.Fatal(err)
	}
	bad := "shred"
	cases := []struct {
		name       string
		partitions int32
		overrides  map[string]*string
		code       int16
	}{
		{"a.b", 1, nil, 36},        // TOPIC_ALREADY_EXISTS
		{"a_b", 1, nil, 17},        // collides: INVALID_TOPIC_EXCEPTION
		{"bad/name", 1, nil, 17},   // INVALID_TOPIC_EXCEPTION
		{"zero", 0, nil, 37},       // INVALID_PARTITIONS
		{"huge", 1 << 30, nil, 37}, // INVALID_PARTITIONS (bounded)
		{"cfg", 1, map[string]*string{"cleanup.policy": &bad}, 40},
		{"null", 1, map[string]*string{"retention.ms": nil}, 40},
	}
	for _, tc := range cases {
		_, err := b.topics.create(tc.name, tc.partitions, tc.overrides)
		if code, msg := adminErrorCode(err); code != tc.code || msg == nil || *msg == "" {
			t.Errorf("create(%q, %d): %v (code %d), want code %d", tc.name, tc.partitions, err, code, tc.code)
		}
	}
	if got := len(b.topics.all()); got != 2 { // the one created and __consumer_offsets
		t.Fatalf("%d topics after failed creates", got)
	}
}

func TestTopicRegistryRetention(t *testing.T) {
	b := admNew(t)
	// Tiny segments (one batch each) and a byte limit of about one batch:
	// a retention pass must delete the older closed segments.
	segBytes, retBytes := "100", "100"
	if _, err := b.topics.create("logs", 1, map[string]*string{"internal.segment.bytes": &segBytes, "retention.bytes": &retBytes}); err != nil {
		t.Fatal(err)
	}
	admProduce(t, b, "logs", 0, 5, 2)
	p := b.topics.get("logs").partition(0)
	if start := p.LogStartOffset(); start != 0 {
		t.Fatalf("log start before retention = %d", start)
	}
	b.topics.applyRetention(time.Now())
	if start := p.LogStartOffset(); start == 0 || start > p.HighWatermark() {
		t.Fatalf("log start after retention = %d (hw %d), want it advanced", start, p.HighWatermark())
	}
}

func TestValidateTopicName(t *testing.T) {
	valid := []string{"a", "A-b_c.d", "__consumer_offsets", "0", strings.Repeat("x", 249), "..."}
	for _, n := range valid {
		if err := validateTopicName(n); err != nil {
			t.Errorf("validateTopicName(%q) = %v", n, err)
		}
	}
	invalid := []string{"", ".", "..", strings.Repeat("x", 250), "a b", "a/b", "ü", "a\x00", "a:b", "a*"}
	for _, n := range invalid {
		err := validateTopicName(n)
		if code, _ := adminErrorCode(err); err == nil || code != 17 {
			t.Errorf("validateTopicName(%q) = %v, want INVALID_TOPIC_EXCEPTION", n, err)
		}
	}
}

func TestParsePartitionDir(t *testing.T) {
	cases := []struct {
		dir  string
		name string
		part int32
		ok   bool
	}{
		{"orders-0", "orders", 0, true},
		{"a-b-12", "a-b", 12, true},
		{"a-1-0", "a-1", 0, true},
		{"orders", "", 0, false},
		{"orders-", "", 0, false},
		{"-1", "", 0, false},
		{"orders-01", "", 0, false},
		{"orders--1", "orders-", 1, true}, // topic "orders-", partition 1
		{"orders-x", "", 0, false},
		{"bad name-0", "", 0, false},
	}
	for _, tc := range cases {
		name, part, ok := parsePartitionDir(tc.dir)
		if ok != tc.ok || name != tc.name || part != tc.part {
			t.Errorf("parsePartitionDir(%q) = %q, %d, %v", tc.dir, name, part, ok)
		}
	}
}

func TestTopicIDString(t *testing.T) {
	id := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	s := topicIDString(id)
	if len(s) != 22 {
		t.Fatalf("topicIDString = %q", s)
	}
	back, err := parseTopicID(s)
	if err != nil || back != id {
		t.Fatalf("parseTopicID(%q) = %v, %v", s, back, err)
	}
	if _, err := parseTopicID(topicIDString([16]byte{})); err == nil {
		t.Fatal("all-zero id accepted")
	}
}
