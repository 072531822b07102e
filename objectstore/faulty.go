package objectstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"path"
	"strconv"
	"sync"
	"time"
)

// Op names a Store operation, for fault rules and metrics. Ops combine as
// a bit set.
type Op uint8

const (
	OpPut Op = 1 << iota
	OpPutIfAbsent
	OpPutIfMatch
	OpGet
	OpStat
	OpList
	OpDelete

	OpAllPuts = OpPut | OpPutIfAbsent | OpPutIfMatch
	OpWrites  = OpAllPuts | OpDelete
	OpReads   = OpGet | OpStat | OpList
	OpAll     = OpWrites | OpReads
)

var opNames = [...]string{"put", "put_if_absent", "put_if_match", "get", "stat", "list", "delete"}

// String names a single Op ("put", "get" …); a set prints as Op(bits).
func (o Op) String() string {
	for i, n := range opNames {
		if o == 1<<i {
			return n
		}
	}
	return fmt.Sprintf("Op(%#x)", uint8(o))
}

// FaultKind says what an injected fault does.
type FaultKind int

const (
	// FaultError fails the call with Fault.Err before it reaches the
	// store: nothing happens.
	FaultError FaultKind = iota
	// FaultErrorAfter lets the call reach the store and succeed, then
	// returns Fault.Err: the lost reply, where a write happened but the
	// caller cannot know. For Get, the reader is closed and discarded.
	FaultErrorAfter
	// FaultPartial fails part-way, after Fault.N units:
	//   puts:   N bytes of the body are read, nothing is stored, Err;
	//   Get:    the reader yields N bytes of the range, then Err;
	//   List:   N entries are yielded, then Err;
	//   Delete: the first N keys are deleted, then Err;
	//   Stat:   as FaultError.
	FaultPartial
)

// ErrInjected is the default error of an injected fault.
var ErrInjected = errors.New("objectstore: injected fault")

// Fault is one rule of a Faulty store.
type Fault struct {
	// Ops the rule applies to; 0 means OpAll.
	Ops Op
	// Key is a path.Match pattern ("*" does not cross "/"); "" matches
	// every key. A Delete matches if any of its keys does, a List if its
	// prefix does.
	Key string
	// Kind of fault, and the error it returns (ErrInjected when nil).
	Kind FaultKind
	Err  error
	// N: see FaultPartial.
	N int64
	// Latency is added before the call (ending early if its context is
	// done). A rule with only Latency set delays and does not fail: set
	// Err, or Kind other than FaultError, to fail too.
	Latency time.Duration
	// Probability in (0, 1] that a matching call is hit; 0 means 1.
	// Draws come from the Faulty store's seeded generator.
	Probability float64
	// Times limits how often the rule fires; 0 means without limit.
	Times int
}

// fails reports whether the rule fails calls (rather than only delaying).
func (f Fault) fails() bool { return f.Err != nil || f.Kind != FaultError || f.Latency == 0 }

func (f Fault) err() error {
	if f.Err != nil {
		return f.Err
	}
	return ErrInjected
}

// Faulty wraps a Store and injects faults by operation and key, for tests.
// Which calls are hit is deterministic for a given seed and sequence of
// calls (concurrent calls draw in whatever order they arrive). With no
// rules it is a transparent pass-through. Safe for concurrent use; rules
// may be changed while calls run.
type Faulty struct {
	inner Store
	mu    struct {
		sync.Mutex
		rules    []*faultRule
		rng      *rand.Rand
		injected int
		noCond   bool
	}
}

type faultRule struct {
	Fault
	fired int
}

var _ Store = (*Faulty)(nil)

// NewFaulty wraps inner; seed fixes the sequence of probabilistic draws.
func NewFaulty(inner Store, seed uint64) *Faulty {
	f := &Faulty{inner: inner}
	f.mu.rng = rand.New(rand.NewPCG(seed, 0x5eed))
	return f
}

// Add appends rules; the first matching rule that fires decides a call.
func (f *Faulty) Add(faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ft := range faults {
		if ft.Probability < 0 || ft.Probability > 1 {
			panic(fmt.Sprintf("objectstore: fault probability %v outside [0, 1]", ft.Probability))
		}
		f.mu.rules = append(f.mu.rules, &faultRule{Fault: ft})
	}
}

// Clear removes every rule.
func (f *Faulty) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.rules = nil
}

// Injected counts the faults injected so far (delays included).
func (f *Faulty) Injected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.injected
}

// DisableConditional makes the wrapper behave like a backend without
// conditional puts: Capabilities reports none and PutIfAbsent and
// PutIfMatch fail with ErrUnsupported.
func (f *Faulty) DisableConditional(disable bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.noCond = disable
}

// Inner returns the wrapped store.
func (f *Faulty) Inner() Store { return f.inner }

// pick returns the rule that fires for this call, if any.
func (f *Faulty) pick(op Op, keys ...string) (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.mu.rules {
		if r.Ops != 0 && r.Ops&op == 0 {
			continue
		}
		if r.Times > 0 && r.fired >= r.Times {
			continue
		}
		if !matchAny(r.Key, keys) {
			continue
		}
		if r.Probability > 0 && r.Probability < 1 && f.mu.rng.Float64() >= r.Probability {
			continue
		}
		r.fired++
		f.mu.injected++
		return r.Fault, true
	}
	return Fault{}, false
}

func matchAny(pattern string, keys []string) bool {
	if pattern == "" {
		return true
	}
	for _, k := range keys {
		if ok, _ := path.Match(pattern, k); ok {
			return true
		}
	}
	return false
}

// describeKeys names the keys of a call for an error message, briefly.
func describeKeys(keys []string) string {
	switch len(keys) {
	case 0:
		return "(no keys)"
	case 1:
		return strconv.Quote(keys[0])
	}
	return fmt.Sprintf("%q and %d more keys", keys[0], len(keys)-1)
}

// delay sleeps for the rule's latency, returning early with ctx's error.
func delay(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// before applies the rule's latency and reports the error a FaultError
// (or FaultPartial on Stat) returns, if any.
func (f *Faulty) before(ctx context.Context, op Op, keys ...string) (Fault, bool, error) {
	ft, ok := f.pick(op, keys...)
	if !ok {
		return Fault{}, false, nil
	}
	if err := delay(ctx, ft.Latency); err != nil {
		return ft, true, fmt.Errorf("%s: %w", op, err)
	}
	if !ft.fails() {
		return Fault{}, false, nil
	}
	if ft.Kind == FaultError || (ft.Kind == FaultPartial && op == OpStat) {
		return ft, true, fmt.Errorf("%s %s: %w", op, describeKeys(keys), ft.err())
	}
	return ft, true, nil
}

func (f *Faulty) Capabilities() Capabilities {
	f.mu.Lock()
	noCond := f.mu.noCond
	f.mu.Unlock()
	if noCond {
		return Capabilities{}
	}
	return f.inner.Capabilities()
}

func (f *Faulty) Put(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error) {
	return f.put(ctx, OpPut, key, r, func(r io.Reader) (ObjectInfo, error) { return f.inner.Put(ctx, key, r, size) })
}

func (f *Faulty) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error) {
	if !f.Capabilities().PutIfAbsent {
		return ObjectInfo{}, fmt.Errorf("put if absent %q: %w", key, ErrUnsupported)
	}
	return f.put(ctx, OpPutIfAbsent, key, r, func(r io.Reader) (ObjectInfo, error) { return f.inner.PutIfAbsent(ctx, key, r, size) })
}

func (f *Faulty) PutIfMatch(ctx context.Context, key, etag string, r io.Reader, size int64) (ObjectInfo, error) {
	if !f.Capabilities().PutIfMatch {
		return ObjectInfo{}, fmt.Errorf("put if match %q: %w", key, ErrUnsupported)
	}
	return f.put(ctx, OpPutIfMatch, key, r, func(r io.Reader) (ObjectInfo, error) { return f.inner.PutIfMatch(ctx, key, etag, r, size) })
}

func (f *Faulty) put(ctx context.Context, op Op, key string, r io.Reader, do func(io.Reader) (ObjectInfo, error)) (ObjectInfo, error) {
	ft, hit, err := f.before(ctx, op, key)
	if err != nil {
		return ObjectInfo{}, err
	}
	if !hit {
		return do(r)
	}
	switch ft.Kind {
	case FaultPartial:
		// Read (at most) N bytes of the body, as a connection dropped
		// mid-upload would, and store nothing.
		_, _ = io.CopyN(io.Discard, r, ft.N)
		return ObjectInfo{}, fmt.Errorf("%s %q: after %d bytes: %w", op, key, ft.N, ft.err())
	default: // FaultErrorAfter
		if _, err := do(r); err != nil {
			return ObjectInfo{}, err
		}
		return ObjectInfo{}, fmt.Errorf("%s %q: reply lost: %w", op, key, ft.err())
	}
}

func (f *Faulty) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, ObjectInfo, error) {
	ft, hit, err := f.before(ctx, OpGet, key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	rc, info, err := f.inner.Get(ctx, key, offset, length)
	if err != nil || !hit {
		return rc, info, err
	}
	if ft.Kind == FaultErrorAfter {
		rc.Close()
		return nil, ObjectInfo{}, fmt.Errorf("get %q: reply lost: %w", key, ft.err())
	}
	return &shortReader{rc: rc, left: ft.N, err: fmt.Errorf("get %q: short read after %d bytes: %w", key, ft.N, ft.err())}, info, nil
}

// shortReader yields left bytes of rc, then err.
type shortReader struct {
	rc   io.ReadCloser
	left int64
	err  error
}

func (s *shortReader) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, s.err
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.rc.Read(p)
	s.left -= int64(n)
	return n, err
}

func (s *shortReader) Close() error { return s.rc.Close() }

func (f *Faulty) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	ft, hit, err := f.before(ctx, OpStat, key)
	if err != nil {
		return ObjectInfo{}, err
	}
	info, err := f.inner.Stat(ctx, key)
	if err == nil && hit {
		return ObjectInfo{}, fmt.Errorf("stat %q: reply lost: %w", key, ft.err())
	}
	return info, err
}

func (f *Faulty) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		ft, hit, err := f.before(ctx, OpList, prefix)
		if err != nil {
			yield(ObjectInfo{}, err)
			return
		}
		var n int64
		for info, err := range f.inner.List(ctx, prefix) {
			if err == nil && hit && ft.Kind == FaultPartial && n >= ft.N {
				break
			}
			if !yield(info, err) || err != nil {
				return
			}
			n++
		}
		if hit {
			yield(ObjectInfo{}, fmt.Errorf("list %q: after %d entries: %w", prefix, n, ft.err()))
		}
	}
}

func (f *Faulty) Delete(ctx context.Context, keys ...string) error {
	ft, hit, err := f.before(ctx, OpDelete, keys...)
	if err != nil {
		return err
	}
	if !hit {
		return f.inner.Delete(ctx, keys...)
	}
	if ft.Kind == FaultPartial {
		n := min(max(ft.N, 0), int64(len(keys)))
		if err := f.inner.Delete(ctx, keys[:n]...); err != nil {
			return err
		}
		return fmt.Errorf("delete: after %d of %d keys: %w", n, len(keys), ft.err())
	}
	if err := f.inner.Delete(ctx, keys...); err != nil {
		return err
	}
	return fmt.Errorf("delete: reply lost: %w", ft.err())
}

func (f *Faulty) Close() error { return f.inner.Close() }
