package shape

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// keys returns the API keys with a schema, in order.
func keys() []int16 {
	var ks []int16
	for k := range schemas {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// fill sets every field of the struct v points to at random: numbers
// (extremes included), strings and bytes of 0–24 bytes, nulls, arrays of
// 0–3 elements, and unknown tagged fields. kmsg then encodes at the
// request's version whichever fields that version carries.
func fill(r *rand.Rand, v reflect.Value, depth int) {
	tagsType := reflect.TypeOf(kmsg.Tags{})
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == tagsType {
			if r.IntN(4) == 0 {
				tags := v.Addr().Interface().(*kmsg.Tags)
				for range 1 + r.IntN(3) {
					tags.Set(uint32(100+r.IntN(1000)), randBytes(r))
				}
			}
			return
		}
		for i := range v.NumField() {
			f := v.Field(i)
			if !f.CanSet() || v.Type().Field(i).Name == "Version" {
				continue
			}
			fill(r, f, depth)
		}
	case reflect.Pointer:
		if r.IntN(3) == 0 {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(r, p.Elem(), depth)
		v.Set(p)
	case reflect.String:
		v.SetString(string(randBytes(r)))
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := v.Type().Bits()
		switch r.IntN(4) {
		case 0:
			v.SetInt(-1)
		case 1:
			v.SetInt(int64(1)<<(bits-1) - 1)
		default:
			v.SetInt(r.Int64N(1 << (bits - 2)))
		}
	case reflect.Float64:
		v.SetFloat(r.Float64())
	case reflect.Array:
		for i := range v.Len() {
			fill(r, v.Index(i), depth)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if r.IntN(4) == 0 {
				v.SetZero() // null bytes
				return
			}
			v.SetBytes(randBytes(r))
			return
		}
		n := 0
		if depth < 4 {
			n = r.IntN(4)
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(r, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(r.Uint64N(1 << 7))
	}
}

func randBytes(r *rand.Rand) []byte {
	b := make([]byte, r.IntN(25))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// randomRequest returns a randomly filled request of key at version.
func randomRequest(r *rand.Rand, key, version int16) kmsg.Request {
	req := kmsg.RequestForKey(key)
	fill(r, reflect.ValueOf(req).Elem(), 0)
	req.SetVersion(version)
	return req
}

// heapAllocs is the bytes allocated by the process so far, exactly
// (ReadMemStats flushes the per-P caches that runtime/metrics reads late).
func heapAllocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// decodeAllocs decodes body as a fresh request of req's key and version
// and returns the bytes that allocated and kmsg's error. The process-wide
// count also catches other goroutines' allocations now and then, so the
// least of three decodes is taken.
func decodeAllocs(req kmsg.Request, body []byte) (uint64, error) {
	least := uint64(math.MaxUint64)
	var err error
	for range 3 {
		into := kmsg.RequestForKey(req.Key())
		into.SetVersion(req.GetVersion())
		before := heapAllocs()
		err = into.ReadFrom(body)
		after := heapAllocs()
		runtime.KeepAlive(into)
		least = min(least, after-before)
	}
	return least, err
}

// TestRoundTrip encodes random requests of every API at every version kmsg
// knows and requires Check to walk exactly their bytes, and kmsg's decode
// of them to allocate no more than Check said.
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, key := range keys() {
		maxV := kmsg.RequestForKey(key).MaxVersion()
		for version := int16(0); version <= maxV; version++ {
			for i := range 200 {
				req := randomRequest(r, key, version)
				body := req.AppendTo(nil)
				cost, used, err := walk(req, body)
				if err != nil {
					t.Fatalf("%s v%d #%d: %v\nbody % x", kmsg.NameForKey(key), version, i, err, body)
				}
				if used != len(body) {
					t.Fatalf("%s v%d #%d: walked %d of %d bytes\nbody % x", kmsg.NameForKey(key), version, i, used, len(body), body)
				}
				if i%20 == 0 {
					got, err := decodeAllocs(req, body)
					if err != nil {
						t.Fatalf("%s v%d: kmsg cannot decode its own encoding: %v", kmsg.NameForKey(key), version, err)
					}
					if int64(got) > cost+decodeSlack {
						t.Errorf("%s v%d: decode allocated %d bytes, Check said %d", kmsg.NameForKey(key), version, got, cost)
					}
				}
			}
		}
	}
}

// decodeSlack is what a decode may allocate beyond Check's count: small
// fixed costs (the reader, error values) that do not grow with the body.
const decodeSlack = 512

// TestHostileCounts is the class of body that used to cost seconds of CPU
// or gigabytes: a few bytes claiming 2^32-1 tagged fields or huge arrays.
// Each is refused with the claim and the bytes left named.
func TestHostileCounts(t *testing.T) {
	apiVersions := kmsg.NewPtrApiVersionsRequest()
	apiVersions.SetVersion(3)
	produce := kmsg.NewPtrProduceRequest()
	produce.SetVersion(7)
	deleteTopics := kmsg.NewPtrDeleteTopicsRequest()
	deleteTopics.SetVersion(5)
	for _, tc := range []struct {
		name string
		req  kmsg.Request
		body []byte
		path string
	}{
		// The 22-byte request of issue 9: client software name and version
		// empty, then a tag count of 2^32-1.
		{"tag count", apiVersions, []byte{0x01, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f}, "body"},
		// null transactional id, acks, timeout, then 2^31-1 topics.
		{"array count", produce, []byte{0xff, 0xff, 0, 1, 0, 0, 0x75, 0x30, 0x7f, 0xff, 0xff, 0xff, 0, 0}, "Topics"},
		// 10^8 names claimed compactly.
		{"compact array", deleteTopics, []byte{0x81, 0xc2, 0xd7, 0x2f, 0x01, 0x01}, "TopicNames"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Check(tc.req, tc.body)
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("Check accepted or failed oddly: %v", err)
			}
			if se.Path != tc.path {
				t.Errorf("path %q, want %q (%v)", se.Path, tc.path, err)
			}
			t.Log(err)
		})
	}
}

// TestCompactCountsAsKmsgReadsThem: a flexible array count from 2^31+1 up
// is negative in kmsg's int32 arithmetic, a null array it accepts, so
// Check must accept it too (the protocol fuzzer found DeleteGroups v3 with
// count 0xffffffff refused); 2^31 wraps to MaxInt32 and both refuse it.
func TestCompactCountsAsKmsgReadsThem(t *testing.T) {
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.SetVersion(3)
	for _, tc := range []struct {
		body []byte
		ok   bool
	}{
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x00}, true},  // 2^32-1: -2, null
		{[]byte{0x81, 0x80, 0x80, 0x80, 0x08, 0x00}, true},  // 2^31+1: MinInt32, null
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x08, 0x00}, false}, // 2^31: wraps to MaxInt32
		{[]byte{0x00, 0x00}, true},                          // 0: null
	} {
		_, checkErr := Check(req, tc.body)
		_, decodeErr := decodeAllocs(req, tc.body)
		if (checkErr == nil) != tc.ok || (decodeErr == nil) != tc.ok {
			t.Errorf("% x: Check %v, kmsg %v; want ok=%v for both", tc.body, checkErr, decodeErr, tc.ok)
		}
	}
}

// TestKnown: Known answers from the schema table.
func TestKnown(t *testing.T) {
	for _, key := range keys() {
		if !Known(key) {
			t.Errorf("%s: not known", kmsg.NameForKey(key))
		}
	}
	if Known(kmsg.EndTxn.Int16()) {
		t.Errorf("EndTxn has no schema but Known says it has")
	}
}

// FuzzCheck: whatever kmsg can decode, Check accepts (no client is refused
// for a body kmsg takes); whatever Check accepts, kmsg decodes within the
// memory Check said.
func FuzzCheck(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	ks := keys()
	for i, key := range ks {
		maxV := kmsg.RequestForKey(key).MaxVersion()
		for version := int16(0); version <= maxV; version += 3 {
			f.Add(uint8(i), uint8(version), randomRequest(r, key, version).AppendTo(nil))
		}
	}
	f.Add(uint8(slices.Index(ks, kmsg.DeleteGroups.Int16())), uint8(3), []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x00})
	f.Fuzz(func(t *testing.T, keyIndex, version uint8, body []byte) {
		key := ks[int(keyIndex)%len(ks)]
		req := kmsg.RequestForKey(key)
		req.SetVersion(int16(version) % (req.MaxVersion() + 1))
		cost, checkErr := Check(req, body)
		allocated, decodeErr := decodeAllocs(req, body)
		if decodeErr == nil && checkErr != nil {
			t.Fatalf("%s v%d: kmsg decodes the body but Check refuses it: %v", kmsg.NameForKey(key), req.GetVersion(), checkErr)
		}
		if checkErr == nil && int64(allocated) > cost+decodeSlack {
			t.Fatalf("%s v%d: decode allocated %d bytes, Check said %d", kmsg.NameForKey(key), req.GetVersion(), allocated, cost)
		}
	})
}
