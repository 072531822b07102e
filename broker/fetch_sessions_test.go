package broker

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/stratalog/strata/segments"
)

func fsPart(topic string, p int32, off int64) fetchRequestPart {
	return fetchRequestPart{key: sessionKey{topic: topic, partition: p}, fetchOffset: segments.Offset(off), maxBytes: 1 << 20, currentLeaderEpoch: -1, lastFetchedEpoch: -1}
}

// okOutcomes returns outcomes with the given high watermarks, log start 0,
// no records and no error.
func okOutcomes(hws ...int64) []fetchPartOutcome {
	out := make([]fetchPartOutcome, len(hws))
	for i, hw := range hws {
		out[i] = fetchPartOutcome{highWatermark: segments.Offset(hw)}
	}
	return out
}

func partKeys(parts []fetchRequestPart) []string {
	var ks []string
	for _, p := range parts {
		ks = append(ks, p.key.topic+"-"+string(rune('0'+p.key.partition)))
	}
	return ks
}

// fsNewSession runs a full fetch for parts with the given outcomes and
// returns the new session id (failing the test if none was created).
func fsNewSession(t *testing.T, c *fetchSessionCache, now time.Time, parts []fetchRequestPart, outcomes []fetchPartOutcome) int32 {
	t.Helper()
	fc := c.newContext(now, false, 0, 0, parts, nil)
	if fc.kind != fetchFull {
		t.Fatalf("kind = %d, want full", fc.kind)
	}
	id, include := c.finish(now, &fc, outcomes)
	if id == 0 {
		t.Fatal("no session created")
	}
	for i, in := range include {
		if !in {
			t.Fatalf("full fetch left out partition %d", i)
		}
	}
	return id
}

func TestFetchSessionSessionless(t *testing.T) {
	c := newFetchSessionCache(10)
	now := time.Unix(1000, 0)
	parts := []fetchRequestPart{fsPart("a", 0, 0), fsPart("a", 1, 5)}
	fc := c.newContext(now, false, 0, -1, parts, nil)
	if fc.kind != fetchSessionless {
		t.Fatalf("kind = %d, want sessionless", fc.kind)
	}
	id, include := c.finish(now, &fc, okOutcomes(3, 4))
	if id != 0 || !include[0] || !include[1] {
		t.Fatalf("id %d include %v", id, include)
	}
	if c.len() != 0 {
		t.Fatalf("sessionless fetch created a session")
	}
}

func TestFetchSessionDisabled(t *testing.T) {
	c := newFetchSessionCache(0)
	fc := c.newContext(time.Unix(1, 0), false, 0, 0, []fetchRequestPart{fsPart("a", 0, 0)}, nil)
	if fc.kind != fetchSessionless {
		t.Fatalf("kind = %d, want sessionless with no slots", fc.kind)
	}
	if id, _ := c.finish(time.Unix(1, 0), &fc, okOutcomes(1)); id != 0 {
		t.Fatalf("session %d created with zero slots", id)
	}
}

func TestFetchSessionIncremental(t *testing.T) {
	c := newFetchSessionCache(10)
	now := time.Unix(1000, 0)
	a0, a1 := fsPart("a", 0, 0), fsPart("a", 1, 0)
	id := fsNewSession(t, c, now, []fetchRequestPart{a0, a1}, okOutcomes(10, 20))

	// Epoch 1, nothing new: nothing to send.
	fc := c.newContext(now, false, id, 1, nil, nil)
	if fc.kind != fetchIncremental {
		t.Fatalf("kind = %d errCode %d, want incremental", fc.kind, fc.errCode)
	}
	if got := partKeys(fc.parts); !slices.Equal(got, []string{"a-0", "a-1"}) {
		t.Fatalf("parts %v", got)
	}
	sid, include := c.finish(now, &fc, okOutcomes(10, 20))
	if sid != id || include[0] || include[1] {
		t.Fatalf("unchanged session: id %d include %v", sid, include)
	}

	// Epoch 2: a1's high watermark moved, a0 has records.
	fc = c.newContext(now, false, id, 2, nil, nil)
	outs := okOutcomes(10, 21)
	outs[0].recordBytes = 100
	_, include = c.finish(now, &fc, outs)
	if !include[0] || !include[1] {
		t.Fatalf("include %v, want both", include)
	}

	// Epoch 3: the client updates a0's offset and adds b0; a1 unchanged.
	b0 := fsPart("b", 0, 7)
	a0.fetchOffset = 50
	fc = c.newContext(now, false, id, 3, []fetchRequestPart{a0, b0}, nil)
	if got := partKeys(fc.parts); len(got) != 3 || got[2] != "b-0" {
		t.Fatalf("parts after add %v", got)
	}
	for _, p := range fc.parts {
		if p.key.topic == "a" && p.key.partition == 0 && p.fetchOffset != 50 {
			t.Fatalf("a0 offset not updated: %d", p.fetchOffset)
		}
	}
	// b0 is new: sent even though it has nothing (its HW was never sent).
	outs = make([]fetchPartOutcome, len(fc.parts))
	for i, p := range fc.parts {
		outs[i].highWatermark = map[string]segments.Offset{"a-0": 10, "a-1": 21, "b-0": 0}[partKeys([]fetchRequestPart{p})[0]]
	}
	_, include = c.finish(now, &fc, outs)
	for i, p := range fc.parts {
		if want := p.key.topic == "b"; include[i] != want {
			t.Fatalf("%v include %v", partKeys(fc.parts), include)
		}
	}

	// Epoch 4: an error is always sent, and the partition is sent again
	// once the error clears even with an unchanged high watermark.
	fc = c.newContext(now, false, id, 4, nil, nil)
	outs = make([]fetchPartOutcome, len(fc.parts))
	errAt := -1
	for i, p := range fc.parts {
		k := partKeys([]fetchRequestPart{p})[0]
		outs[i].highWatermark = map[string]segments.Offset{"a-0": 10, "a-1": 21, "b-0": 0}[k]
		if k == "a-1" {
			errAt = i
			outs[i] = fetchPartOutcome{errCode: kerr.OffsetOutOfRange.Code, highWatermark: -1, logStartOffset: -1}
		}
	}
	_, include = c.finish(now, &fc, outs)
	for i := range include {
		if include[i] != (i == errAt) {
			t.Fatalf("error round include %v (error at %d)", include, errAt)
		}
	}
	fc = c.newContext(now, false, id, 5, nil, nil)
	outs = make([]fetchPartOutcome, len(fc.parts))
	for i, p := range fc.parts {
		k := partKeys([]fetchRequestPart{p})[0]
		outs[i].highWatermark = map[string]segments.Offset{"a-0": 10, "a-1": 21, "b-0": 0}[k]
	}
	_, include = c.finish(now, &fc, outs)
	for i, p := range fc.parts {
		if want := partKeys([]fetchRequestPart{p})[0] == "a-1"; include[i] != want {
			t.Fatalf("after error cleared: %v include %v", partKeys(fc.parts), include)
		}
	}
}

func TestFetchSessionRotation(t *testing.T) {
	c := newFetchSessionCache(10)
	now := time.Unix(1000, 0)
	parts := []fetchRequestPart{fsPart("a", 0, 0), fsPart("a", 1, 0), fsPart("a", 2, 0)}
	id := fsNewSession(t, c, now, parts, okOutcomes(1, 1, 1))
	fc := c.newContext(now, false, id, 1, nil, nil)
	outs := okOutcomes(1, 1, 1)
	outs[0].recordBytes = 10 // a-0 gets data: it moves to the back
	c.finish(now, &fc, outs)
	fc = c.newContext(now, false, id, 2, nil, nil)
	if got := partKeys(fc.parts); !slices.Equal(got, []string{"a-1", "a-2", "a-0"}) {
		t.Fatalf("order after a-0 was sent: %v", got)
	}
}

func TestFetchSessionErrors(t *testing.T) {
	c := newFetchSessionCache(10)
	now := time.Unix(1000, 0)
	id := fsNewSession(t, c, now, []fetchRequestPart{fsPart("a", 0, 0)}, okOutcomes(1))

	for _, tc := range []struct {
		name     string
		id, ep   int32
		topicIDs bool
		want     int16
	}{
		{"unknown id", id + 1, 1, false, kerr.FetchSessionIDNotFound.Code},
		{"id zero incremental", 0, 1, false, kerr.FetchSessionIDNotFound.Code},
		{"epoch ahead", id, 2, false, kerr.InvalidFetchSessionEpoch.Code},
		{"topic ids on a name session", id, 1, true, kerr.FetchSessionTopicIDError.Code},
	} {
		fc := c.newContext(now, tc.topicIDs, tc.id, tc.ep, nil, nil)
		if fc.kind != fetchSessionError || fc.errCode != tc.want {
			t.Errorf("%s: kind %d code %d, want error %d", tc.name, fc.kind, fc.errCode, tc.want)
		}
	}
	// The failed attempts did not advance the epoch.
	if fc := c.newContext(now, false, id, 1, nil, nil); fc.kind != fetchIncremental {
		t.Fatalf("epoch 1 after errors: kind %d code %d", fc.kind, fc.errCode)
	}
	// Replaying epoch 1 is now stale.
	if fc := c.newContext(now, false, id, 1, nil, nil); fc.errCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("replayed epoch: kind %d code %d", fc.kind, fc.errCode)
	}
}

func TestFetchSessionForgetAndClose(t *testing.T) {
	c := newFetchSessionCache(10)
	now := time.Unix(1000, 0)
	a0, a1 := fsPart("a", 0, 0), fsPart("a", 1, 0)
	id := fsNewSession(t, c, now, []fetchRequestPart{a0, a1}, okOutcomes(1, 1))

	fc := c.newContext(now, false, id, 1, nil, []sessionKey{a0.key})
	if got := partKeys(fc.parts); !slices.Equal(got, []string{"a-1"}) {
		t.Fatalf("after forgetting a-0: %v", got)
	}
	c.finish(now, &fc, okOutcomes(1))
	// Forgetting the last partition closes the session.
	fc = c.newContext(now, false, id, 2, nil, []sessionKey{a1.key})
	if fc.kind != fetchSessionless || c.len() != 0 {
		t.Fatalf("empty session: kind %d, %d sessions", fc.kind, c.len())
	}

	// Epoch -1 closes a session; epoch 0 replaces it with a new one.
	id = fsNewSession(t, c, now, []fetchRequestPart{a0}, okOutcomes(1))
	fc = c.newContext(now, false, id, 0, []fetchRequestPart{a0}, nil)
	if fc.kind != fetchFull || c.len() != 0 {
		t.Fatalf("epoch 0 on a session: kind %d, %d sessions", fc.kind, c.len())
	}
	id2, _ := c.finish(now, &fc, okOutcomes(1))
	if id2 == 0 || id2 == id {
		t.Fatalf("new session id %d (old %d)", id2, id)
	}
	fc = c.newContext(now, false, id2, -1, []fetchRequestPart{a0}, nil)
	if fc.kind != fetchSessionless || c.len() != 0 {
		t.Fatalf("epoch -1: kind %d, %d sessions", fc.kind, c.len())
	}
}

func TestFetchSessionEviction(t *testing.T) {
	c := newFetchSessionCache(2)
	t0 := time.Unix(1000, 0)
	one := []fetchRequestPart{fsPart("a", 0, 0)}
	two := []fetchRequestPart{fsPart("a", 0, 0), fsPart("a", 1, 0)}
	three := []fetchRequestPart{fsPart("a", 0, 0), fsPart("a", 1, 0), fsPart("a", 2, 0)}

	s1 := fsNewSession(t, c, t0, two, okOutcomes(1, 1))
	s2 := fsNewSession(t, c, t0.Add(time.Second), two, okOutcomes(1, 1))

	// Full, nobody idle long enough, nobody smaller: no session.
	fc := c.newContext(t0.Add(time.Minute), false, 0, 0, two, nil)
	if id, _ := c.finish(t0.Add(time.Minute), &fc, okOutcomes(1, 1)); id != 0 {
		t.Fatalf("created session %d in a full cache", id)
	}
	// A bigger session evicts the smallest (oldest on a tie): s1.
	now := t0.Add(time.Minute)
	fc = c.newContext(now, false, 0, 0, three, nil)
	s3, _ := c.finish(now, &fc, okOutcomes(1, 1, 1))
	if s3 == 0 {
		t.Fatal("bigger session not created")
	}
	if fc := c.newContext(now, false, s1, 1, nil, nil); fc.errCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("s1 still there (code %d)", fc.errCode)
	}
	// Keep s3 in use; s2 goes idle. Two minutes later a small session
	// evicts the stale s2.
	later := now.Add(sessionEvictionIdle)
	if fc := c.newContext(later.Add(-time.Second), false, s3, 1, nil, nil); fc.kind != fetchIncremental {
		t.Fatalf("s3: kind %d code %d", fc.kind, fc.errCode)
	}
	fc = c.newContext(later, false, 0, 0, one, nil)
	if s4, _ := c.finish(later, &fc, okOutcomes(1)); s4 == 0 {
		t.Fatal("stale session not evicted")
	}
	if fc := c.newContext(later, false, s2, 1, nil, nil); fc.errCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("s2 still there (code %d)", fc.errCode)
	}
	if fc := c.newContext(later, false, s3, 2, nil, nil); fc.kind != fetchIncremental {
		t.Fatalf("s3 evicted instead: kind %d code %d", fc.kind, fc.errCode)
	}
	if c.len() != 2 {
		t.Fatalf("%d sessions, want 2", c.len())
	}
}

func TestNextSessionEpoch(t *testing.T) {
	for _, tc := range [][2]int32{{0, 1}, {1, 2}, {math.MaxInt32, 1}, {-1, -1}} {
		if got := nextSessionEpoch(tc[0]); got != tc[1] {
			t.Errorf("nextSessionEpoch(%d) = %d, want %d", tc[0], got, tc[1])
		}
	}
}

func TestDedupeFetchParts(t *testing.T) {
	a0 := fsPart("a", 0, 1)
	b0 := fsPart("b", 0, 2)
	a0again := fsPart("a", 0, 9)
	got := dedupeFetchParts([]fetchRequestPart{a0, b0, a0again})
	if len(got) != 2 || got[0].key != a0.key || got[0].fetchOffset != 9 || got[1].key != b0.key {
		t.Fatalf("dedupe: %+v", got)
	}
}
