package shape

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// kind is the wire form of a field.
type kind uint8

const (
	kindInt8   kind = iota + 1 // also bool and kmsg's int8 enums
	kindInt16                  //
	kindInt32                  //
	kindInt64                  //
	kindUUID                   // 16 bytes
	kindString                 // int16 length (uvarint length+1 when flexible), then the bytes; negative: null
	kindBytes                  // int32 length (uvarint length+1 when flexible), then the bytes; negative: null
	kindArray                  // int32 count (uvarint count+1 when flexible), then the elements; negative: null
)

// last as a field's upper version: on the wire in every later version.
const last = math.MaxInt16

// field is one field of a request struct on the wire.
type field struct {
	name     string // kmsg's struct field name
	kind     kind
	from, to int16   // versions that carry the field
	elem     []field // kindArray of structs: the element's fields
	prim     kind    // kindArray of primitives: the element's kind (elem is nil)

	// elemSize is the decoded size of one array element (kmsg's struct
	// or the Go primitive), set by compile from kmsg's types.
	elemSize int64
}

func fixed(name string, k kind) field { return field{name: name, kind: k, to: last} }
func i8(name string) field            { return fixed(name, kindInt8) }
func i16(name string) field           { return fixed(name, kindInt16) }
func i32(name string) field           { return fixed(name, kindInt32) }
func i64(name string) field           { return fixed(name, kindInt64) }
func uuid(name string) field          { return fixed(name, kindUUID) }
func str(name string) field           { return fixed(name, kindString) }
func byts(name string) field          { return fixed(name, kindBytes) }

// array is an array of structs with the given fields.
func array(name string, elem ...field) field {
	return field{name: name, kind: kindArray, to: last, elem: elem}
}

// arrayOf is an array of primitives (kindInt32, kindUUID or kindString).
func arrayOf(name string, prim kind) field {
	return field{name: name, kind: kindArray, to: last, prim: prim}
}

// v limits f to versions from..to.
func (f field) v(from, to int16) field { f.from, f.to = from, to; return f }

func (f *field) in(version int16) bool { return version >= f.from && version <= f.to }

// schemas is requestSchemas with element sizes filled in from kmsg's types.
var schemas = func() map[int16][]field {
	out := make(map[int16][]field, len(requestSchemas))
	for key, fs := range requestSchemas {
		req := kmsg.RequestForKey(key)
		if req == nil {
			panic(fmt.Sprintf("shape: kmsg has no request for API key %d", key))
		}
		out[key] = compile(fs, reflect.TypeOf(req).Elem(), kmsg.NameForKey(key))
	}
	return out
}()

// compile copies fs, checking each name against the struct type t and
// recording element sizes. A mismatch is a bug in the schema: it panics
// at init, which every test of the package would show.
func compile(fs []field, t reflect.Type, path string) []field {
	out := make([]field, len(fs))
	for i, f := range fs {
		sf, ok := t.FieldByName(f.name)
		if !ok {
			panic(fmt.Sprintf("shape: %s has no field %s", path, f.name))
		}
		ft := sf.Type
		if !goKindFits(f.kind, ft) {
			panic(fmt.Sprintf("shape: %s.%s is a %s, not wire kind %d", path, f.name, ft, f.kind))
		}
		if f.kind == kindArray {
			et := ft.Elem()
			f.elemSize = int64(et.Size())
			if f.elem != nil {
				if et.Kind() != reflect.Struct {
					panic(fmt.Sprintf("shape: %s.%s holds %s, not structs", path, f.name, et))
				}
				f.elem = compile(f.elem, et, path+"."+f.name)
			} else if !goKindFits(f.prim, et) {
				panic(fmt.Sprintf("shape: %s.%s holds %s, not wire kind %d", path, f.name, et, f.prim))
			}
		}
		out[i] = f
	}
	return out
}

func goKindFits(k kind, t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem() // nullable strings
	}
	switch k {
	case kindInt8:
		return t.Kind() == reflect.Int8 || t.Kind() == reflect.Bool
	case kindInt16:
		return t.Kind() == reflect.Int16 || t.Kind() == reflect.Uint16 // a listener's port
	case kindInt32:
		return t.Kind() == reflect.Int32
	case kindInt64:
		return t.Kind() == reflect.Int64
	case kindUUID:
		return t.Kind() == reflect.Array && t.Len() == 16
	case kindString:
		return t.Kind() == reflect.String
	case kindBytes:
		return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8
	case kindArray:
		return t.Kind() == reflect.Slice
	}
	return false
}

// Known reports whether Check has a schema for API key.
func Known(key int16) bool { _, ok := schemas[key]; return ok }

// Error is a body whose shape does not hold: it claims more than it has.
type Error struct {
	API     string // kmsg's request name, e.g. "ProduceRequest"
	Version int16
	Path    string // field path, e.g. "Topics[2].Partitions"
	Offset  int    // byte offset in the body where the claim was read
	Msg     string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s v%d: %s: %s (at body byte %d)", e.API, e.Version, e.Path, e.Msg, e.Offset)
}

// Decoded-memory estimates for what kmsg allocates beyond array elements.
const (
	// allocSlack covers the allocator rounding an allocation up to its
	// size class (at most 1/8 above 32 KiB, less below) plus a header.
	allocSlackDiv  = 8
	allocSlackBase = 16
	// tagEntryBytes is one unknown tagged field kept by kmsg in a map: a
	// 4-byte key and a 24-byte slice header in a slot, slots 7/8 full at
	// most, and the tables outgrown on the way (doubling: as much again);
	// the value aliases the body.
	tagEntryBytes = 96
	// tagMapBytes is the map itself, once per struct with unknown tags: its
	// header and first group of 8 slots.
	tagMapBytes = 320
)

// Check walks body as the request req (its key and version set) without
// allocating, and returns the bytes kmsg will allocate to decode it
// (an upper bound: array elements at kmsg's struct sizes, copied strings,
// unknown tagged fields). It fails with *Error if body claims more
// elements, bytes or tagged fields than it holds. Bytes after the body are
// ignored, as kmsg ignores them. The walk costs O(len(body)) whatever the
// body claims. An API without a schema is an error: a server must not
// hand kmsg a body it cannot bound.
func Check(req kmsg.Request, body []byte) (decodedBytes int64, err error) {
	decodedBytes, _, err = walk(req, body)
	if err != nil {
		return 0, err
	}
	return decodedBytes, nil
}

// walk is Check, also returning how many bytes of body the request took
// (for tests: an encoded request is walked exactly).
func walk(req kmsg.Request, body []byte) (decodedBytes int64, used int, err error) {
	w := walker{src: body, version: req.GetVersion(), flexible: req.IsFlexible(), req: req}
	fs, ok := schemas[req.Key()]
	if !ok {
		return 0, 0, &Error{API: kmsg.NameForKey(req.Key()), Version: w.version, Msg: "no schema for this API"}
	}
	err = w.structure(fs)
	return w.cost, w.pos, err
}

// walker reads src from pos. path is the field stack, rendered only for
// errors (the walk itself does not allocate).
type walker struct {
	src      []byte
	pos      int
	version  int16
	flexible bool
	req      kmsg.Request
	cost     int64
	path     [8]pathElem
	depth    int
}

type pathElem struct {
	name  string
	index int // -1: the field itself, not an element
}

func (w *walker) left() int { return len(w.src) - w.pos }

func (w *walker) fail(at int, format string, args ...any) error {
	var sb strings.Builder
	for i := 0; i < w.depth; i++ {
		if i > 0 {
			sb.WriteByte('.')
		}
		p := w.path[i]
		sb.WriteString(p.name)
		if p.index >= 0 {
			fmt.Fprintf(&sb, "[%d]", p.index)
		}
	}
	if sb.Len() == 0 {
		sb.WriteString("body")
	}
	return &Error{API: kmsg.NameForKey(w.req.Key()), Version: w.version, Path: sb.String(), Offset: at, Msg: fmt.Sprintf(format, args...)}
}

func (w *walker) push(name string) {
	if w.depth < len(w.path) {
		w.path[w.depth] = pathElem{name, -1}
	}
	w.depth++
}

func (w *walker) pop() { w.depth-- }

func (w *walker) setIndex(i int) {
	if d := w.depth - 1; d >= 0 && d < len(w.path) {
		w.path[d].index = i
	}
}

// skip consumes n bytes.
func (w *walker) skip(n int64, what string) error {
	if n > int64(w.left()) {
		return w.fail(w.pos, "%s of %d bytes with %d bytes left", what, n, w.left())
	}
	w.pos += int(n)
	return nil
}

// uvarint reads an unsigned varint of at most 32 bits.
func (w *walker) uvarint() (uint32, error) {
	at := w.pos
	v, n := binary.Uvarint(w.src[w.pos:])
	if n <= 0 || n > 5 || v > math.MaxUint32 {
		return 0, w.fail(at, "malformed uvarint")
	}
	w.pos += n
	return uint32(v), nil
}

// length reads a length or count in kind k's form; negative means null.
func (w *walker) length(k kind) (int64, error) {
	if w.flexible {
		u, err := w.uvarint()
		if k == kindArray {
			// kmsg reads a compact array count as int32(u)-1 in int32
			// arithmetic: counts from 2^31+1 up are negative (null), and
			// 2^31 wraps to MaxInt32 (refused below as too many).
			return int64(int32(u) - 1), err
		}
		return int64(u) - 1, err
	}
	at := w.pos
	if k == kindString {
		if w.left() < 2 {
			return 0, w.fail(at, "string length with %d bytes left", w.left())
		}
		w.pos += 2
		return int64(int16(binary.BigEndian.Uint16(w.src[at:]))), nil
	}
	if w.left() < 4 {
		return 0, w.fail(at, "length with %d bytes left", w.left())
	}
	w.pos += 4
	return int64(int32(binary.BigEndian.Uint32(w.src[at:]))), nil
}

// fixedSize is the wire size of a fixed-width kind, 0 for others.
func fixedSize(k kind) int64 {
	switch k {
	case kindInt8:
		return 1
	case kindInt16:
		return 2
	case kindInt32:
		return 4
	case kindInt64:
		return 8
	case kindUUID:
		return 16
	}
	return 0
}

// value reads one value of primitive kind k.
func (w *walker) value(k kind) error {
	if n := fixedSize(k); n > 0 {
		return w.skip(n, "field")
	}
	at := w.pos
	n, err := w.length(k)
	if err != nil || n < 0 {
		return err
	}
	if n > int64(w.left()) {
		return w.fail(at, "claims %d bytes with %d bytes left", n, w.left())
	}
	w.pos += int(n)
	if k == kindString {
		w.cost += n // kmsg copies strings out of the body; bytes alias it
	}
	return nil
}

// structure walks the fields of one struct present at the version, then
// its tagged-field section when flexible.
func (w *walker) structure(fs []field) error {
	for i := range fs {
		f := &fs[i]
		if !f.in(w.version) {
			continue
		}
		w.push(f.name)
		var err error
		if f.kind == kindArray {
			err = w.array(f)
		} else {
			err = w.value(f.kind)
		}
		w.pop()
		if err != nil {
			return err
		}
	}
	if w.flexible {
		return w.tags()
	}
	return nil
}

// array walks every element of an array. Each element takes at least one
// byte, so a count above the bytes left is refused before any element.
func (w *walker) array(f *field) error {
	at := w.pos
	n, err := w.length(kindArray)
	if err != nil || n < 0 {
		return err
	}
	if n > int64(w.left()) {
		return w.fail(at, "claims %d elements with %d bytes left", n, w.left())
	}
	if n == 0 {
		return nil
	}
	size := n * f.elemSize
	w.cost += size + size/allocSlackDiv + allocSlackBase
	for i := range n {
		w.setIndex(int(i))
		if f.elem != nil {
			err = w.structure(f.elem)
		} else {
			err = w.value(f.prim)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// tags walks a tagged-field section: a count, then each field's tag, size
// and bytes. Each field takes at least two bytes, which bounds the count.
func (w *walker) tags() error {
	at := w.pos
	n, err := w.uvarint()
	if err != nil || n == 0 {
		return err
	}
	if int64(n) > int64(w.left())/2 {
		return w.fail(at, "claims %d tagged fields with %d bytes left", n, w.left())
	}
	w.cost += tagMapBytes
	for range n {
		if _, err := w.uvarint(); err != nil {
			return err
		}
		at := w.pos
		size, err := w.uvarint()
		if err != nil {
			return err
		}
		if int64(size) > int64(w.left()) {
			return w.fail(at, "tagged field of %d bytes with %d bytes left", size, w.left())
		}
		w.pos += int(size)
		w.cost += tagEntryBytes + int64(size) // a known tag may decode to a copied string
	}
	return nil
}
