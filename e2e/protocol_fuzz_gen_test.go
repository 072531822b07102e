package e2e

// The request generator of TestProtocolFuzz (protocol_fuzz_test.go): kmsg request structs filled
// by reflection with random and hostile values, encoded by kmsg, optionally mutated byte by byte,
// framed by hand, and classified the way the broker will see them (decodes, or does not).
//
// Everything here is driven by one *rand.Rand (PCG) per connection, so a connection's requests
// are a function of (seed, phase, worker, connection number), of the pools learnt at start, and
// of the values learnt from the broker's responses (fuzzLearned), which never change how the
// random stream is drawn.

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fuzzAPI is one API the broker advertises in ApiVersions.
type fuzzAPI struct{ key, min, max int16 }

// fuzzPools are the names the generator uses besides random ones, so that requests reach past
// "unknown topic" into deeper code: topics and groups the test created for the fuzzer (never the
// steady client's), the topic ids the broker gave them, and the config names it describes.
// Read-only once the fuzzers start.
type fuzzPools struct {
	topics       []string
	topicIDs     [][16]byte
	groups       []string
	configNames  []string
	configValues []string
	avoid        string // the steady client's topic: never generated
}

// Bounds on what a well-formed request may legitimately wait for in the broker; a generated
// request above them is changed or not sent (fuzzGen.next), so that a request left unanswered
// longer than its allowance is a hang, never a long poll. The group bounds hold together with the
// broker flags TestProtocolFuzz passes (group.max.session.timeout.ms).
const (
	fuzzMaxFetchWait = 2 * time.Second
	fuzzMaxRebalance = 5 * time.Second
	// The broker's group.min/max.session.timeout.ms in the test: a join outside is refused at
	// once; one inside has a rebalance timeout (v0: its session timeout) within fuzzMaxRebalance.
	fuzzMinSession = 100 * time.Millisecond
	fuzzMaxSession = fuzzMaxRebalance
)

// fuzzClass is what the broker must do with a request, judged from its bytes exactly as
// broker.decodeRequest judges them.
type fuzzClass int

const (
	fuzzWellFormed fuzzClass = iota // header and body decode: it must be answered (but Produce acks=0)
	fuzzV0Answer                    // ApiVersions above the maximum: answered in v0 with UNSUPPORTED_VERSION
	fuzzMalformed                   // does not decode: the broker may close the connection
	fuzzFrameLie                    // the frame's size prefix lies: the connection must close, unanswered
)

func (c fuzzClass) String() string {
	return [...]string{"well-formed", "ApiVersions-v0-answer", "malformed", "frame-lie"}[c]
}

// fuzzRequest is one generated request and what the broker must do with it.
type fuzzRequest struct {
	frame    []byte // size prefix + header + body, as written
	key      int16  // from the header bytes as sent (after mutation)
	version  int16
	corr     int32
	class    fuzzClass
	noAnswer bool          // well-formed Produce with acks=0: no response; the broker may close
	wait     time.Duration // the longest the broker may legitimately hold the answer (long poll, rebalance)
	desc     string        // how it was made: intended API/version and the mutations applied
	decoded  kmsg.Request  // the body as the broker decodes it (well-formed requests only)
}

// mayClose reports whether this request allows the broker to close the connection.
func (r *fuzzRequest) mayClose() bool {
	return r.class == fuzzMalformed || r.class == fuzzFrameLie || r.noAnswer
}

// String names the request for a failure message: API, version, class, mutations, the frame in
// hex (its first 96 bytes if it is longer than 256) and, for a well-formed request, the start of
// its decoded body.
func (r *fuzzRequest) String() string {
	n := len(r.frame)
	if n > 256 {
		n = 96
	}
	s := fmt.Sprintf("%s v%d corr %d (%s; %s), %d-byte frame %s", kmsg.NameForKey(r.key), r.version, r.corr,
		r.class, r.desc, len(r.frame), hex.EncodeToString(r.frame[:n]))
	if n < len(r.frame) {
		s += "…"
	}
	if r.decoded != nil {
		d, err := json.Marshal(r.decoded)
		if err != nil {
			d = fmt.Appendf(nil, "%+v", r.decoded)
		}
		if len(d) > 1500 {
			d = append(d[:1500], "…"...)
		}
		s += "; decoded: " + string(d)
	}
	return s
}

// fuzzLearned holds values the broker handed out in responses — member ids,
// generations, producer ids and epochs, fetch session ids — so that later requests can use them
// and get past "unknown member" into joins, syncs, heartbeats and commits. One store for all
// connections: readers add, generators pick. A generator draws from its rng the same way whether
// a value is known or not, so a connection's random stream stays a function of the seed (the
// learned values themselves come from the broker).
type fuzzLearned struct {
	mu     sync.Mutex
	values map[string][]any // by field name: string or int64, the last few seen
}

// fuzzLearnedFields are the response fields worth feeding back, by name.
var fuzzLearnedFields = map[string]bool{"MemberID": true, "LeaderID": true, "Generation": true,
	"ProducerID": true, "ProducerEpoch": true, "SessionID": true, "InstanceID": true}

// learn records the learnable fields of a decoded response (recursively).
func (l *fuzzLearned) learn(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			l.learn(v.Elem())
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			for i := range min(v.Len(), 8) {
				l.learn(v.Index(i))
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			if fuzzLearnedFields[f.Name] {
				switch fv.Kind() {
				case reflect.String:
					if fv.String() != "" {
						l.add(f.Name, fv.String())
					}
				case reflect.Int16, reflect.Int32, reflect.Int64:
					l.add(f.Name, fv.Int())
				case reflect.Pointer:
					if !fv.IsNil() && fv.Elem().Kind() == reflect.String {
						l.add(f.Name, fv.Elem().String())
					}
				}
				continue
			}
			l.learn(fv)
		}
	}
}

func (l *fuzzLearned) add(name string, v any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.values == nil {
		l.values = map[string][]any{}
	}
	vs := l.values[name]
	if len(vs) > 0 && vs[len(vs)-1] == v {
		return
	}
	if len(vs) >= 8 {
		vs = vs[1:]
	}
	l.values[name] = append(vs, v)
}

// pick returns the learned value number r (mod how many there are) for name, if any.
func (l *fuzzLearned) pick(name string, r uint64) (any, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	vs := l.values[name]
	if len(vs) == 0 {
		return nil, false
	}
	return vs[r%uint64(len(vs))], true
}

// learnedString and learnedInt use a learned value half of the time, drawing from the rng
// the same way whether one is known or not.
func (g *fuzzGen) learnedString(name string) (string, bool) {
	use, r := g.rng.IntN(2) == 0, g.rng.Uint64()
	if !fuzzLearnedFields[name] || !use {
		return "", false
	}
	if v, ok := g.learned.pick(name, r); ok {
		if s, ok := v.(string); ok {
			return s, true
		}
	}
	return "", false
}

func (g *fuzzGen) learnedInt(name string) (int64, bool) {
	use, r := g.rng.IntN(2) == 0, g.rng.Uint64()
	if !fuzzLearnedFields[name] || !use {
		return 0, false
	}
	if v, ok := g.learned.pick(name, r); ok {
		if n, ok := v.(int64); ok {
			return n, true
		}
	}
	return 0, false
}

// fuzzGen generates the requests of one connection.
type fuzzGen struct {
	rng    *rand.Rand
	apis   []fuzzAPI
	byKey  map[int16]fuzzAPI
	pools  *fuzzPools
	budget int // bytes the request being filled may still grow by
	stats  *fuzzStats
	// mutatePct is the share of this connection's requests mutated after encoding: some
	// connections send only well-formed requests (long pipelines whose every answer is
	// checked), others mostly broken ones.
	mutatePct int
	// rejectOnly makes next return only requests the broker cannot decode.
	rejectOnly bool
	learned    *fuzzLearned // shared by all connections
}

func newFuzzGen(rng *rand.Rand, apis []fuzzAPI, pools *fuzzPools, stats *fuzzStats) *fuzzGen {
	g := &fuzzGen{rng: rng, apis: apis, byKey: map[int16]fuzzAPI{}, pools: pools, stats: stats}
	g.mutatePct = int(g.pick64(0, 0, 10, 40, 80))
	for _, a := range apis {
		g.byKey[a.key] = a
	}
	return g
}

// next returns a new request with correlation id corr. Well-formed requests that could
// legitimately wait longer than the fuzz bounds (a Fetch's max wait, a JoinGroup's rebalance
// timeout) are first made not to wait (min_bytes ≤ 0, a short rebalance timeout); if a
// mutation makes one wait long again, it is regenerated (and counted).
func (g *fuzzGen) next(corr int32) *fuzzRequest {
	for {
		r := g.build(corr)
		if g.rejectOnly && r.class != fuzzMalformed {
			continue
		}
		if r.class == fuzzWellFormed && r.wait < 0 {
			g.stats.skippedLongWait.Add(1)
			continue
		}
		return r
	}
}

func (g *fuzzGen) build(corr int32) *fuzzRequest {
	a := g.apis[g.rng.IntN(len(g.apis))]
	key := a.key
	version := a.min + int16(g.rng.IntN(int(a.max-a.min)+1))
	var desc []string
	switch r := g.rng.IntN(100); {
	case g.mutatePct == 0: // a well-formed connection
	case r < 2: // a version outside the advertised range
		version = g.pick16(a.min-1, a.max+1, math.MaxInt16, -1, int16(g.rng.Uint32()))
		desc = append(desc, "version-out-of-range")
	case r < 3: // an API the broker does not advertise
		key = g.pick16(-1, 9999, math.MaxInt16, math.MinInt16, int16(g.rng.IntN(100)))
		desc = append(desc, "unadvertised-api")
	}

	g.budget = g.requestBudget()
	var body []byte
	flexible := false
	req := kmsg.RequestForKey(key)
	if req != nil {
		req.SetVersion(version)
		flexible = req.IsFlexible()
	}
	if req == nil || g.mutatePct > 0 && g.rng.IntN(100) < 4 {
		body = g.randBytes(g.rng.IntN(300))
		desc = append(desc, fmt.Sprintf("random-body(%d)", len(body)))
	} else {
		g.fill(reflect.ValueOf(req).Elem(), "")
		req.SetVersion(version) // fill leaves Version alone; be explicit
		g.tame(req)
		body = req.AppendTo(nil)
	}

	msg := binary.BigEndian.AppendUint16(nil, uint16(key))
	msg = binary.BigEndian.AppendUint16(msg, uint16(version))
	msg = binary.BigEndian.AppendUint32(msg, uint32(corr))
	if g.rng.IntN(10) == 0 {
		msg = binary.BigEndian.AppendUint16(msg, 0xffff) // null client id
	} else {
		id := g.randString(g.rng.IntN(40), "")
		if g.rng.IntN(50) == 0 {
			id = strings.Repeat("c", int(g.pick64(20000, 32730, 32767))) // the longest a header can carry
		}
		msg = binary.BigEndian.AppendUint16(msg, uint16(len(id)))
		msg = append(msg, id...)
	}
	if flexible {
		msg = append(msg, 0) // header tagged fields
	}
	hdrLen := len(msg)
	msg = append(msg, body...)

	if g.rng.IntN(100) < g.mutatePct {
		for n := 1 + g.rng.IntN(3); n > 0; n-- {
			var d string
			msg, d = g.mutate(msg, hdrLen, flexible)
			desc = append(desc, d)
		}
	}
	r := fuzzClassify(msg, g.byKey)
	r.frame = binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(msg)), uint32(len(msg)))
	r.frame = append(r.frame, msg...)
	r.desc = fmt.Sprintf("generated as %s v%d", kmsg.NameForKey(key), version)
	if len(desc) > 0 {
		r.desc += "; " + strings.Join(desc, ", ")
	}
	return r
}

// frameLie turns r into the last request of a connection whose size prefix lies: it promises
// more bytes than follow (the client then half-closes), is negative, zero, or above
// socket.request.max.bytes (100 MiB), or is shorter than a request header.
func (g *fuzzGen) frameLie(r *fuzzRequest) {
	n := uint32(len(r.frame) - 4)
	var size uint32
	switch g.rng.IntN(4) {
	case 0:
		size = n + 1 + uint32(g.rng.IntN(1<<20))
	case 1:
		size = g.pick32u(0, 0xffffffff, 0x80000000, 0x7fffffff, 200<<20, 100<<20+1)
	case 2:
		size = 1 + uint32(g.rng.IntN(9))
	default:
		size = n + 1
	}
	binary.BigEndian.PutUint32(r.frame, size)
	r.class, r.noAnswer, r.wait = fuzzFrameLie, false, 0
	r.desc += fmt.Sprintf(", frame size prefix %d for %d bytes", int32(size), n)
}

// requestBudget is roughly how many bytes a request may be filled with: mostly small, sometimes
// a few hundred KiB, rarely several MiB.
func (g *fuzzGen) requestBudget() int {
	switch r := g.rng.IntN(1000); {
	case r < 5:
		return 4 << 20
	case r < 60:
		return 256 << 10
	default:
		return 8 << 10
	}
}

var (
	fuzzTagsType = reflect.TypeFor[kmsg.Tags]()
	fuzzUUIDType = reflect.TypeFor[[16]byte]()
)

// fill sets every exported field of the struct v (recursively) to a random or hostile value.
// The field name guides the choice (topic names from the pool for "Topic", acks, timestamps…).
func (g *fuzzGen) fill(v reflect.Value, parent string) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || f.Name == "Version" {
			continue
		}
		g.fillValue(v.Field(i), f.Name, parent)
	}
}

func (g *fuzzGen) fillValue(v reflect.Value, name, parent string) {
	switch {
	case v.Type() == fuzzTagsType:
		if g.rng.IntN(10) == 0 {
			tags := v.Addr().Interface().(*kmsg.Tags)
			for n := 1 + g.rng.IntN(3); n > 0; n-- {
				tags.Set(g.pick32u(0, 1, 2, 3, 100, 0x7fffffff, 0xffffffff, g.rng.Uint32()), g.randBytes(g.rng.IntN(24)))
			}
		}
		return
	case v.Type() == fuzzUUIDType:
		v.Set(reflect.ValueOf(g.uuid(name)))
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(g.rng.IntN(2) == 0)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(g.intFor(name, parent, v.Type().Bits()))
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(g.rng.Uint64() >> (64 - v.Type().Bits()))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(g.pickF(0, -1, math.Inf(1), math.NaN(), g.rng.Float64()*1e6))
	case reflect.String:
		v.SetString(g.stringFor(name, parent))
	case reflect.Pointer:
		nullPct := 15
		if strings.HasPrefix(name, "Transaction") {
			nullPct = 90 // a transactional request is refused at once: mostly not
		}
		if g.rng.IntN(100) < nullPct {
			v.SetZero() // null
			return
		}
		p := reflect.New(v.Type().Elem())
		g.fillValue(p.Elem(), name, parent)
		v.Set(p)
	case reflect.Struct:
		g.fill(v, parent+"."+name)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes(g.bytesFor(name))
			return
		}
		n := g.sliceLen(v.Type().Elem().Kind() == reflect.Struct)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			g.fillValue(s.Index(i), name, parent)
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			g.fillValue(v.Index(i), name, parent)
		}
	default:
		panic(fmt.Sprintf("protocol fuzz: no generator for %s field %s.%s", v.Type(), parent, name))
	}
}

// sliceLen picks an array length within the budget: mostly 0–3, sometimes up to 20, rarely
// hundreds (of structs) or thousands (of scalars).
func (g *fuzzGen) sliceLen(structs bool) int {
	var n int
	switch r := g.rng.IntN(100); {
	case r < 20:
		n = 0
	case r < 80:
		n = 1 + g.rng.IntN(3)
	case r < 97:
		n = 4 + g.rng.IntN(17)
	case structs:
		n = 100 + g.rng.IntN(400)
	default:
		n = 1000 + g.rng.IntN(20000)
	}
	per := 8
	if structs {
		per = 64
	}
	n = min(n, max(g.budget/per, 0))
	g.budget -= n * per
	return n
}

// intFor returns a value for an integer field of the given width.
func (g *fuzzGen) intFor(name, parent string, bits int) int64 {
	x := g.randIntFor(name, bits)
	if fuzzLearnedFields[name] {
		if v, ok := g.learnedInt(name); ok {
			return fuzzTruncInt(v, bits)
		}
	}
	return x
}

func (g *fuzzGen) randIntFor(name string, bits int) int64 {
	switch {
	case (name == "Partition" || name == "Partitions" || name == "PartitionIndex") && g.rng.IntN(100) < 70:
		return g.pick64(0, 0, 0, 1, 2, 3) // the fuzz-owned topics have 1 to 3 partitions
	case strings.Contains(name, "Offset") && g.rng.IntN(100) < 50:
		return g.rng.Int64N(100)
	case name == "Acks" && g.rng.IntN(100) < 85:
		return g.pick64(-1, 0, 1)
	case name == "ReplicaID" && g.rng.IntN(100) < 70:
		return -1
	case (name == "ResourceType") && g.rng.IntN(100) < 70:
		return g.pick64(2, 4, 3, 1, 0) // topic, broker, group, unknown, any
	case (name == "SessionTimeoutMillis" || name == "RebalanceTimeoutMillis") && g.rng.IntN(100) < 60:
		return g.rng.Int64N(int64(fuzzMaxSession/time.Millisecond)) + 1
	case name == "ReplicationFactor" && g.rng.IntN(100) < 60:
		return g.pick64(-1, 1)
	case (name == "SessionEpoch" || name == "SessionID") && g.rng.IntN(100) < 60:
		return g.pick64(0, -1)
	case strings.Contains(name, "Timestamp") && g.rng.IntN(100) < 40:
		now := time.Now().UnixMilli()
		return fuzzTruncInt(g.pick64(now, -1, -2, -3, 0, now+int64(time.Hour/time.Millisecond), now-int64(365*24*time.Hour/time.Millisecond)), bits)
	}
	var x int64
	switch r := g.rng.IntN(100); {
	case r < 35:
		x = g.rng.Int64N(12) - 3
	case r < 65:
		x = g.pick64(0, -1, 1, -2, math.MaxInt64, math.MinInt64, math.MaxInt64-1, math.MinInt64+1,
			math.MaxInt32, math.MinInt32, math.MaxInt32+1, math.MaxInt16, math.MinInt16, math.MaxInt16+1, math.MaxInt8, math.MinInt8,
			255, 256, 1023, 1024, 1<<20, 1<<24, 100<<20, 1<<31-1, 1<<62)
	case r < 85:
		x = int64(g.rng.Uint64())
	default:
		x = g.rng.Int64N(100000)
	}
	return fuzzTruncInt(x, bits)
}

func fuzzTruncInt(x int64, bits int) int64 {
	switch bits {
	case 8:
		return int64(int8(x))
	case 16:
		return int64(int16(x))
	case 32:
		return int64(int32(x))
	}
	return x
}

// stringFor returns a value for a string field: pool names for topics, groups and config keys,
// hostile names, or random strings of any length (a non-flexible string longer than 32767 bytes
// cannot be encoded: its request is malformed, which is fine).
func (g *fuzzGen) stringFor(name, parent string) string {
	var s string
	learned, isLearned := "", false
	if fuzzLearnedFields[name] {
		learned, isLearned = g.learnedString(name)
	}
	switch {
	case strings.Contains(name, "Topic") || name == "ResourceName" && g.rng.IntN(2) == 0:
		s = g.nameFrom(g.pools.topics)
	case strings.Contains(name, "Group") || name == "ResourceName":
		s = g.nameFrom(g.pools.groups)
	case name == "Name" && strings.Contains(parent, "Config"):
		s = g.nameFrom(g.pools.configNames)
	case name == "Value" && strings.Contains(parent, "Config"):
		s = g.nameFrom(g.pools.configValues)
	case name == "ProtocolType" && g.rng.IntN(2) == 0:
		s = "consumer"
	case name == "Name" && strings.Contains(parent, "Protocol") && g.rng.IntN(2) == 0:
		s = g.pickS("range", "roundrobin", "sticky", "cooperative-sticky")
	case name == "MemberID" && g.rng.IntN(2) == 0:
		s = ""
	default:
		s = g.randString(g.strLen(), "")
	}
	if isLearned { // after the random draws, so that the stream does not depend on the broker
		s = learned
	}
	if s == g.pools.avoid { // the steady client's topic is never named
		s += "-not"
	}
	g.budget -= len(s)
	return s
}

// nameFrom returns a pool name (60%), a hostile name (10%) or a random one.
func (g *fuzzGen) nameFrom(pool []string) string {
	switch r := g.rng.IntN(100); {
	case r < 60 && len(pool) > 0:
		return pool[g.rng.IntN(len(pool))]
	case r < 70:
		// Names longer than 32767 bytes fit only flexible requests (compact strings).
		return g.pickS("", ".", "..", "__consumer_offsets", "a/b", "a b", "é", "\x00", strings.Repeat("x", 249),
			strings.Repeat("y", 250), strings.Repeat("z", 256), strings.Repeat("w", 32767), strings.Repeat("v", 32768),
			strings.Repeat("u", 40000), "fuzz.t2", "-1", "1", "0")
	default:
		return g.randString(1+g.rng.IntN(20), "abcdefghijklmnopqrstuvwxyz0123456789._-")
	}
}

func (g *fuzzGen) strLen() int {
	n := 0
	switch r := g.rng.IntN(100); {
	case r < 15:
		n = 0
	case r < 75:
		n = 1 + g.rng.IntN(16)
	case r < 90:
		n = 17 + g.rng.IntN(300)
	case r < 98:
		n = 300 + g.rng.IntN(5000)
	default:
		n = int(g.pick64(32767, 32768, 65535, 65536, 100000))
	}
	return min(n, max(g.budget, 0))
}

// randString returns n random characters from alphabet, or (alphabet "") mostly from a name
// alphabet, sometimes any printable ASCII, sometimes arbitrary bytes (not UTF-8).
func (g *fuzzGen) randString(n int, alphabet string) string {
	if alphabet == "" {
		switch r := g.rng.IntN(100); {
		case r < 70:
			alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
		case r < 90:
			alphabet = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"
		default:
			return string(g.randBytes(n))
		}
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.rng.IntN(len(alphabet))]
	}
	return string(b)
}

func (g *fuzzGen) randBytes(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], g.rng.Uint64())
		copy(b[i:], w[:])
	}
	return b
}

// uuid returns a topic id from the pool, the zero id, or a random one.
func (g *fuzzGen) uuid(name string) [16]byte {
	var u [16]byte
	switch r := g.rng.IntN(100); {
	case r < 50 && name == "TopicID" && len(g.pools.topicIDs) > 0:
		u = g.pools.topicIDs[g.rng.IntN(len(g.pools.topicIDs))]
	case r < 70:
	default:
		copy(u[:], g.randBytes(16))
	}
	return u
}

// bytesFor returns a value for a []byte field. Produce's records are mostly one record batch
// (valid, or lying about its count, CRC, attributes or producer; Kafka allows one batch per
// partition, so sometimes more), else null, empty or random bytes — which rarely have the
// transactional bit, since one transactional batch makes the broker refuse the whole request.
func (g *fuzzGen) bytesFor(name string) []byte {
	if name == "Records" {
		switch r := g.rng.IntN(100); {
		case r < 8:
			return nil
		case r < 13:
			return []byte{}
		case r < 25:
			b := g.randBytes(min(g.rng.IntN(200), max(g.budget, 0)))
			if len(b) > 22 && g.rng.IntN(10) > 0 {
				b[22] &^= 0x10
			}
			g.budget -= len(b)
			return b
		}
		n := 1
		if g.rng.IntN(100) < 15 {
			n = 2 + g.rng.IntN(2)
		}
		var out []byte
		for ; n > 0 && g.budget > 0; n-- {
			b := g.batch()
			g.budget -= len(b)
			out = append(out, b...)
		}
		return out
	}
	switch r := g.rng.IntN(100); {
	case r < 12:
		return nil
	case r < 20:
		return []byte{}
	}
	n := g.rng.IntN(64)
	if g.rng.IntN(20) == 0 {
		n = g.rng.IntN(64 << 10)
	}
	n = min(n, max(g.budget, 0))
	g.budget -= n
	return g.randBytes(n)
}

// batch returns a magic-v2 record batch (rawproto_test.go's encodeBatch) with random records,
// uncompressed, gzip or zstd, which may lie.
func (g *fuzzGen) batch() []byte {
	now := time.Now().UnixMilli()
	recs := make([]rawRecord, 1+g.rng.IntN(5))
	for i := range recs {
		recs[i].Timestamp = now
		if g.rng.IntN(10) == 0 {
			recs[i].Timestamp = g.pick64(-1, 0, math.MaxInt64, math.MinInt64, now+int64(time.Hour/time.Millisecond)*24*365)
		}
		if g.rng.IntN(3) > 0 {
			recs[i].Key = g.randBytes(g.rng.IntN(20))
		}
		n := g.rng.IntN(200)
		if g.rng.IntN(30) == 0 {
			n = g.rng.IntN(64 << 10)
		}
		recs[i].Value = g.randBytes(n)
	}
	var opts batchOpts
	switch g.rng.IntN(4) {
	case 1:
		opts.codec, opts.compress = 1, gzipBytes
	case 2:
		opts.codec, opts.compress = 4, fuzzZstd
	}
	if g.rng.IntN(10) == 0 {
		opts.countDelta = int(g.pick64(1, -1, 1000, -int64(len(recs)), math.MaxInt32))
	}
	if g.rng.IntN(20) == 0 {
		opts.badCRC = true
	}
	if g.rng.IntN(20) == 0 {
		opts.recordsOverride = g.randBytes(g.rng.IntN(200))
	}
	b := encodeBatch(recs, opts)
	if g.rng.IntN(5) == 0 {
		// Attributes (transactional, control, timestamp type, codec bits) and producer fields,
		// with the CRC recomputed so the lie gets past it.
		attrs := uint16(g.rng.IntN(1<<7)) | uint16(opts.codec)
		if g.rng.IntN(10) > 0 {
			attrs &^= 0x10 // transactional: one such batch makes the broker refuse the whole request
		}
		binary.BigEndian.PutUint16(b[21:], attrs)
		binary.BigEndian.PutUint64(b[43:], uint64(g.pick64(-1, 0, 1, g.rng.Int64N(1000), math.MaxInt64)))
		binary.BigEndian.PutUint16(b[51:], uint16(g.pick64(-1, 0, 1, math.MaxInt16)))
		binary.BigEndian.PutUint32(b[53:], uint32(g.pick64(-1, 0, 1, math.MaxInt32)))
		if g.rng.IntN(5) > 0 {
			binary.BigEndian.PutUint32(b[17:], fuzzCRC(b[21:]))
		}
	}
	return b
}

var fuzzZstdEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))

func fuzzZstd(p []byte) []byte { return fuzzZstdEnc.EncodeAll(p, nil) }

// tame bounds what a request may make the broker wait for (see fuzzMaxFetchWait): a Fetch that
// may long-poll longer gets min_bytes ≤ 0 (answered at once, so its hostile max wait is still
// sent) or a short max wait; a JoinGroup gets a rebalance timeout and, for v0 (which has none
// and uses the session timeout), a session timeout within fuzzMaxRebalance.
func (g *fuzzGen) tame(req kmsg.Request) {
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		if r.MinBytes > 0 && time.Duration(r.MaxWaitMillis)*time.Millisecond > fuzzMaxFetchWait {
			if g.rng.IntN(2) == 0 {
				r.MinBytes = int32(g.pick64(0, -1, math.MinInt32))
			} else {
				r.MaxWaitMillis = int32(g.rng.IntN(int(fuzzMaxFetchWait / time.Millisecond)))
			}
		}
	case *kmsg.JoinGroupRequest:
		if fuzzRebalanceWait(r) > fuzzMaxRebalance {
			ms := int32(fuzzMaxRebalance / time.Millisecond)
			r.RebalanceTimeoutMillis = 1 + g.rng.Int32N(ms)
			if r.Version == 0 {
				r.SessionTimeoutMillis = 1 + g.rng.Int32N(ms)
			}
		}
	}
}

// fuzzRebalanceWait is how long a JoinGroup may make its group's rebalances wait (the broker's
// rule in broker/group/join.go: v0 or a non-positive rebalance timeout use the session timeout).
func fuzzRebalanceWait(r *kmsg.JoinGroupRequest) time.Duration {
	ms := r.RebalanceTimeoutMillis
	if r.Version == 0 || ms <= 0 {
		ms = r.SessionTimeoutMillis
	}
	return time.Duration(ms) * time.Millisecond
}

// mutate applies one byte-level mutation to msg (header + body) and says which.
func (g *fuzzGen) mutate(msg []byte, hdrLen int, flexible bool) ([]byte, string) {
	bodyPos := func(width int) int { // a position in the body (or anywhere, if the body is short)
		if len(msg)-width <= hdrLen {
			return g.rng.IntN(max(len(msg)-width, 0) + 1)
		}
		return hdrLen + g.rng.IntN(len(msg)-width-hdrLen+1)
	}
	hostile32 := func() uint32 {
		return g.pick32u(0xffffffff, 0x7fffffff, 0x80000000, 0x00ffffff, 0xfffffffe, 0x10000, uint32(len(msg)+1))
	}
	hostileUvarint := func() []byte {
		return binary.AppendUvarint(nil, uint64(g.pick32u(0xffffffff, 0x7fffffff, 0x80000000, 1<<28, 1<<21, 1000, uint32(len(msg)))))
	}
	switch k := g.rng.IntN(13); k {
	case 0: // bit flips
		n := 1 + g.rng.IntN(4)
		for range n {
			if len(msg) > 0 {
				p := bodyPos(1)
				if p < len(msg) {
					msg[p] ^= 1 << g.rng.IntN(8)
				}
			}
		}
		return msg, fmt.Sprintf("%d bit flips", n)
	case 1: // truncation
		n := bodyPos(0)
		return msg[:n], fmt.Sprintf("truncated to %d of %d bytes", n, len(msg))
	case 2: // junk appended
		n := 1 + g.rng.IntN(64)
		return append(msg, g.randBytes(n)...), fmt.Sprintf("%d junk bytes appended", n)
	case 3: // a hostile int32 (array count, bytes length)
		if len(msg) < 4 {
			return msg, "no room for int32"
		}
		p, v := bodyPos(4), hostile32()
		binary.BigEndian.PutUint32(msg[p:], v)
		return msg, fmt.Sprintf("int32 %#x at %d", v, p)
	case 4: // a hostile int16 (string length)
		if len(msg) < 2 {
			return msg, "no room for int16"
		}
		p, v := bodyPos(2), uint16(g.pick32u(0xffff, 0x7fff, 0x8000, 0xfffe, 0x1000))
		binary.BigEndian.PutUint16(msg[p:], v)
		return msg, fmt.Sprintf("int16 %#x at %d", v, p)
	case 5: // a hostile uvarint replacing one byte (compact lengths, tag counts)
		if len(msg) == 0 {
			return msg, "no room for uvarint"
		}
		p, u := bodyPos(1), hostileUvarint()
		return append(msg[:p:p], append(u, msg[p+1:]...)...), fmt.Sprintf("uvarint %x at %d", u, p)
	case 6: // the body's trailing tag count (flexible versions end with it)
		if !flexible || len(msg) <= hdrLen {
			return msg, "no trailing tags"
		}
		u := hostileUvarint()
		return append(msg[:len(msg)-1:len(msg)-1], u...), fmt.Sprintf("trailing tag count %x", u)
	case 7: // the header's tag count
		if !flexible || hdrLen > len(msg) {
			return msg, "no header tags"
		}
		u := hostileUvarint()
		return append(msg[:hdrLen-1:hdrLen-1], append(u, msg[hdrLen:]...)...), fmt.Sprintf("header tag count %x", u)
	case 8: // the client id length
		if len(msg) < 10 {
			return msg, "no client id"
		}
		v := uint16(g.pick32u(0x7fff, 0xfffe, 0x8000, uint32(len(msg)), 0))
		binary.BigEndian.PutUint16(msg[8:], v)
		return msg, fmt.Sprintf("client id length %#x", v)
	case 9: // a range duplicated
		if len(msg) == 0 {
			return msg, "nothing to duplicate"
		}
		i := g.rng.IntN(len(msg))
		j := i + 1 + g.rng.IntN(min(len(msg)-i, 64))
		return append(msg[:j:j], append(bytes.Clone(msg[i:j]), msg[j:]...)...), fmt.Sprintf("bytes %d:%d duplicated", i, j)
	case 10: // a range deleted
		if len(msg) <= hdrLen {
			return msg, "nothing to delete"
		}
		i := bodyPos(1)
		j := i + 1 + g.rng.IntN(min(len(msg)-i, 16))
		return append(msg[:i:i], msg[min(j, len(msg)):]...), fmt.Sprintf("bytes %d:%d deleted", i, j)
	case 11: // the API key or version
		if len(msg) < 4 {
			return msg, "no header"
		}
		if g.rng.IntN(2) == 0 {
			a := g.apis[g.rng.IntN(len(g.apis))]
			binary.BigEndian.PutUint16(msg, uint16(a.key))
			return msg, fmt.Sprintf("api key set to %d", a.key)
		}
		v := g.pick16(-1, math.MaxInt16, 0, 1, int16(g.rng.IntN(20)))
		binary.BigEndian.PutUint16(msg[2:], uint16(v))
		return msg, fmt.Sprintf("version set to %d", v)
	default: // random bytes overwritten
		if len(msg) == 0 {
			return msg, "nothing to overwrite"
		}
		p := bodyPos(1)
		n := copy(msg[p:], g.randBytes(1+g.rng.IntN(8)))
		return msg, fmt.Sprintf("%d bytes overwritten at %d", n, p)
	}
}

// fuzzClassify judges msg (header + body, no size prefix) as broker.decodeRequest does: header
// fields, advertised key and version range, client id, header tags for flexible versions, then
// kmsg's decoding of the body. For a well-formed request it also notes Produce acks=0 and how
// long the broker may legitimately hold the answer (a negative wait: longer than the fuzz
// bounds).
func fuzzClassify(msg []byte, advertised map[int16]fuzzAPI) *fuzzRequest {
	r := &fuzzRequest{class: fuzzMalformed}
	if len(msg) >= 8 {
		r.key = int16(binary.BigEndian.Uint16(msg))
		r.version = int16(binary.BigEndian.Uint16(msg[2:]))
		r.corr = int32(binary.BigEndian.Uint32(msg[4:]))
	}
	const minHeader = 2 + 2 + 4 + 2
	if len(msg) < minHeader {
		return r
	}
	a, ok := advertised[r.key]
	if !ok {
		return r
	}
	if r.version < a.min || r.version > a.max {
		if r.key == kmsg.ApiVersions.Int16() && r.version > a.max {
			r.class = fuzzV0Answer
		}
		return r
	}
	req := kmsg.RequestForKey(r.key)
	if req == nil {
		return r
	}
	req.SetVersion(r.version)
	rd := kbin.Reader{Src: msg[8:]}
	rd.NullableString()
	if req.IsFlexible() {
		n := rd.Uvarint()
		for i := uint32(0); i < n && rd.Ok(); i++ {
			rd.Uvarint()
			rd.Span(int(rd.Uvarint()))
		}
	}
	if !rd.Ok() || req.ReadFrom(rd.Src) != nil {
		return r
	}
	r.class = fuzzWellFormed
	r.decoded = req
	switch q := req.(type) {
	case *kmsg.ProduceRequest:
		r.noAnswer = q.Acks == 0
	case *kmsg.FetchRequest:
		if q.MaxWaitMillis > 0 && q.MinBytes > 0 {
			r.wait = time.Duration(q.MaxWaitMillis) * time.Millisecond
			if r.wait > fuzzMaxFetchWait {
				r.wait = -1
			}
		}
	case *kmsg.JoinGroupRequest:
		// A join may wait for its group's rebalance, the leader's re-election and the
		// initial delay: a few rebalance timeouts in all. One whose session timeout the
		// broker refuses waits for nothing.
		session := time.Duration(q.SessionTimeoutMillis) * time.Millisecond
		if session < fuzzMinSession || session > fuzzMaxSession {
			break
		}
		if fuzzRebalanceWait(q) > fuzzMaxRebalance {
			r.wait = -1
		} else {
			r.wait = 4*fuzzMaxRebalance + 3*time.Second
		}
	case *kmsg.SyncGroupRequest:
		r.wait = 4*fuzzMaxRebalance + 3*time.Second
	}
	return r
}

func (g *fuzzGen) pick64(xs ...int64) int64    { return xs[g.rng.IntN(len(xs))] }
func (g *fuzzGen) pick16(xs ...int16) int16    { return xs[g.rng.IntN(len(xs))] }
func (g *fuzzGen) pick32u(xs ...uint32) uint32 { return xs[g.rng.IntN(len(xs))] }
func (g *fuzzGen) pickF(xs ...float64) float64 { return xs[g.rng.IntN(len(xs))] }
func (g *fuzzGen) pickS(xs ...string) string   { return xs[g.rng.IntN(len(xs))] }
func fuzzCRC(b []byte) uint32                  { return crc32.Checksum(b, castagnoli) }
