package broker

// Incremental fetch sessions (KIP-227).
//
// A client that fetches many partitions can ask the broker to remember the
// partitions it fetches (a session), so later requests carry only what
// changed and responses carry only partitions with something new. The
// rules follow Kafka's FetchManager:
//
//   - session id 0, epoch 0: a full fetch; a new session is created if the
//     cache has room (or can evict one), otherwise the response carries
//     session id 0 and the client keeps sending full fetches.
//   - session id 0, epoch -1: a sessionless full fetch.
//   - session id S, epoch 0 or -1: session S is closed; then as above.
//   - session id S, epoch N > 0: an incremental fetch. Unknown S →
//     FETCH_SESSION_ID_NOT_FOUND; N not the session's next epoch →
//     INVALID_FETCH_SESSION_EPOCH; a session created with topic ids (v13+)
//     used by a v≤12 request or vice versa → FETCH_SESSION_TOPIC_ID_ERROR.
//     Otherwise the request's partitions are added or updated, its
//     forgotten topics removed, the epoch advanced, and the session's whole
//     partition set is fetched; the response carries only partitions with
//     records, a changed high watermark or log start offset, or an error.
//     A session left with no partitions is closed (response session id 0).
//
// The cache is bounded by max.incremental.fetch.session.cache.slots. When
// it is full, a new session may evict (1) the least recently used session
// idle for at least sessionEvictionIdle, else (2) the session with the
// fewest partitions if the new one has more (Kafka keeps the sessions that
// save the most work); else no session is created.
//
// Locking: cache.mu guards the session map and each session's lastUsed and
// size; session.mu guards the session's epoch and partitions. Order:
// cache.mu → session.mu. Neither is held during I/O.

import (
	"container/list"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/stratalog/strata/segments"
)

// sessionEvictionIdle is how long a session must be unused before any new
// session may evict it (Kafka's MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS,
// 120 000 ms).
const sessionEvictionIdle = 2 * time.Minute

// sessionKey identifies one partition of a fetch: by topic id for Fetch
// v13+ (topic is then empty), by topic name before (topicID is zero).
type sessionKey struct {
	topicID   [16]byte
	topic     string
	partition int32
}

// fetchRequestPart is one partition as a Fetch request names it.
type fetchRequestPart struct {
	key                sessionKey
	fetchOffset        segments.Offset
	maxBytes           int32
	currentLeaderEpoch segments.LeaderEpoch // -1: not given
	lastFetchedEpoch   segments.LeaderEpoch // -1: not given
}

// sessionPartition is the broker's memory of one partition in a session:
// the client's last request parameters and the values last sent back
// (highWatermark -1 means "send this partition next time").
type sessionPartition struct {
	req            fetchRequestPart
	highWatermark  segments.Offset
	logStartOffset segments.Offset
}

// fetchSession is one cached session.
type fetchSession struct {
	id       int32
	topicIDs bool // created by a v13+ request: partitions keyed by topic id

	mu    sync.Mutex
	epoch int32                        // the epoch the next incremental request must carry
	parts map[sessionKey]*list.Element // of *sessionPartition, in order
	order list.List                    // fetch order; partitions sent back move to the back

	// Guarded by fetchSessionCache.mu.
	lastUsed time.Time
	size     int // len(parts) as of the last request, for eviction
}

// fetchSessionCache holds the incremental fetch sessions, at most max.
type fetchSessionCache struct {
	max int
	mu  struct {
		sync.Mutex
		sessions map[int32]*fetchSession
	}
}

// newFetchSessionCache returns a cache holding at most max sessions; max
// <= 0 disables sessions (every fetch is then answered as sessionless).
func newFetchSessionCache(max int) *fetchSessionCache {
	c := &fetchSessionCache{max: max}
	c.mu.sessions = make(map[int32]*fetchSession)
	return c
}

// len returns the number of cached sessions.
func (c *fetchSessionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.mu.sessions)
}

// fetchContextKind says how a Fetch request relates to the session cache.
type fetchContextKind uint8

const (
	fetchSessionless  fetchContextKind = iota // answer every requested partition; session id 0
	fetchFull                                 // answer every requested partition; try to create a session
	fetchIncremental                          // fetch the session's partitions; answer only changes
	fetchSessionError                         // answer with errCode only
)

// fetchContext is the outcome of newContext for one request.
type fetchContext struct {
	kind     fetchContextKind
	errCode  int16 // fetchSessionError
	topicIDs bool  // request version ≥ 13
	session  *fetchSession
	// parts are the partitions to read, in response order. For an
	// incremental fetch this is a snapshot of the whole session.
	parts []fetchRequestPart
}

// nextSessionEpoch is Kafka's FetchMetadata.nextEpoch.
func nextSessionEpoch(e int32) int32 {
	switch {
	case e < 0:
		return -1
	case e == math.MaxInt32:
		return 1
	default:
		return e + 1
	}
}

// dedupeFetchParts collapses repeated partitions the way Kafka's
// LinkedHashMap does: the first occurrence keeps its position, the last
// one's parameters win.
func dedupeFetchParts(parts []fetchRequestPart) []fetchRequestPart {
	seen := make(map[sessionKey]int, len(parts))
	out := parts[:0:0]
	for _, p := range parts {
		if i, ok := seen[p.key]; ok {
			out[i] = p
			continue
		}
		seen[p.key] = len(out)
		out = append(out, p)
	}
	return out
}

// newContext applies the request's session fields (sessionID, epoch, its
// partitions and forgotten topics) to the cache and says what to fetch.
// Requests below v7 have no session fields: pass sessionID 0, epoch -1.
// parts must be deduplicated.
func (c *fetchSessionCache) newContext(now time.Time, topicIDs bool, sessionID, epoch int32, parts []fetchRequestPart, forgotten []sessionKey) fetchContext {
	if epoch == 0 || epoch == -1 { // a full fetch
		if sessionID != 0 {
			c.remove(sessionID)
		}
		kind := fetchFull
		if epoch == -1 || c.max <= 0 {
			kind = fetchSessionless
		}
		return fetchContext{kind: kind, topicIDs: topicIDs, parts: parts}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.mu.sessions[sessionID]
	if s == nil {
		return fetchContext{kind: fetchSessionError, errCode: kerr.FetchSessionIDNotFound.Code, topicIDs: topicIDs}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.epoch != epoch:
		return fetchContext{kind: fetchSessionError, errCode: kerr.InvalidFetchSessionEpoch.Code, topicIDs: topicIDs}
	case s.topicIDs != topicIDs:
		return fetchContext{kind: fetchSessionError, errCode: kerr.FetchSessionTopicIDError.Code, topicIDs: topicIDs}
	}
	s.updateLocked(parts, forgotten)
	if len(s.parts) == 0 {
		delete(c.mu.sessions, s.id)
		return fetchContext{kind: fetchSessionless, topicIDs: topicIDs, parts: parts}
	}
	s.epoch = nextSessionEpoch(s.epoch)
	s.lastUsed = now
	s.size = len(s.parts)
	snapshot := make([]fetchRequestPart, 0, len(s.parts))
	for e := s.order.Front(); e != nil; e = e.Next() {
		snapshot = append(snapshot, e.Value.(*sessionPartition).req)
	}
	return fetchContext{kind: fetchIncremental, topicIDs: topicIDs, session: s, parts: snapshot}
}

// updateLocked merges an incremental request into the session: new
// partitions are appended (and will be sent back at least once), known
// ones get the new request parameters, forgotten ones are dropped.
func (s *fetchSession) updateLocked(parts []fetchRequestPart, forgotten []sessionKey) {
	for _, p := range parts {
		if e, ok := s.parts[p.key]; ok {
			e.Value.(*sessionPartition).req = p
			continue
		}
		s.parts[p.key] = s.order.PushBack(&sessionPartition{req: p, highWatermark: -1, logStartOffset: -1})
	}
	for _, k := range forgotten {
		if e, ok := s.parts[k]; ok {
			s.order.Remove(e)
			delete(s.parts, k)
		}
	}
}

// fetchPartOutcome summarises what a Fetch response says about one
// partition, as far as the session cares.
type fetchPartOutcome struct {
	errCode        int16
	highWatermark  segments.Offset
	logStartOffset segments.Offset
	recordBytes    int64
	diverging      bool // a diverging epoch is reported
}

// finish is called once the partitions of fc.parts have been read, with
// one outcome per part in the same order. It returns the session id for
// the response and which parts the response includes: for a full fetch it
// tries to create the session (remembering what is sent back); for an
// incremental fetch it keeps only partitions with news, records what was
// sent and moves those partitions to the back of the session's order, so
// that the next fetch starts with the ones that got nothing this time.
func (c *fetchSessionCache) finish(now time.Time, fc *fetchContext, outcomes []fetchPartOutcome) (sessionID int32, include []bool) {
	include = make([]bool, len(outcomes))
	switch fc.kind {
	case fetchSessionless:
		for i := range include {
			include[i] = true
		}
		return 0, include
	case fetchFull:
		for i := range include {
			include[i] = true
		}
		return c.create(now, fc.topicIDs, fc.parts, outcomes), include
	case fetchIncremental:
		s := fc.session
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, o := range outcomes {
			e, ok := s.parts[fc.parts[i].key]
			if !ok {
				// Forgotten by a later request (a misbehaving client
				// running two fetches on one session): skip it.
				continue
			}
			sp := e.Value.(*sessionPartition)
			must := o.recordBytes > 0 || o.diverging
			if sp.highWatermark != o.highWatermark {
				sp.highWatermark = o.highWatermark
				must = true
			}
			if sp.logStartOffset != o.logStartOffset {
				sp.logStartOffset = o.logStartOffset
				must = true
			}
			if o.errCode != 0 {
				// Resend once the error clears.
				sp.highWatermark = -1
				must = true
			}
			if must {
				include[i] = true
				s.order.MoveToBack(e)
			}
		}
		return s.id, include
	default:
		return 0, include
	}
}

// create makes a new session from a full fetch if there is room (or a
// session can be evicted) and returns its id, or 0.
func (c *fetchSessionCache) create(now time.Time, topicIDs bool, parts []fetchRequestPart, outcomes []fetchPartOutcome) int32 {
	if c.max <= 0 {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.mu.sessions) >= c.max && !c.evictLocked(now, len(parts)) {
		return 0
	}
	s := &fetchSession{
		id:       c.newIDLocked(),
		topicIDs: topicIDs,
		epoch:    nextSessionEpoch(0),
		parts:    make(map[sessionKey]*list.Element, len(parts)),
		lastUsed: now,
		size:     len(parts),
	}
	for i, p := range parts {
		sp := &sessionPartition{req: p, highWatermark: outcomes[i].highWatermark, logStartOffset: outcomes[i].logStartOffset}
		if outcomes[i].errCode != 0 {
			sp.highWatermark = -1
		}
		s.parts[p.key] = s.order.PushBack(sp)
	}
	c.mu.sessions[s.id] = s
	return s.id
}

// evictLocked frees one slot for a new session of newSize partitions, if
// the eviction rules allow; it reports whether it did.
func (c *fetchSessionCache) evictLocked(now time.Time, newSize int) bool {
	var stale, smallest *fetchSession
	for _, s := range c.mu.sessions {
		if now.Sub(s.lastUsed) >= sessionEvictionIdle && (stale == nil || s.lastUsed.Before(stale.lastUsed)) {
			stale = s
		}
		if smallest == nil || s.size < smallest.size || (s.size == smallest.size && s.lastUsed.Before(smallest.lastUsed)) {
			smallest = s
		}
	}
	switch {
	case stale != nil:
		delete(c.mu.sessions, stale.id)
		return true
	case smallest != nil && smallest.size < newSize:
		delete(c.mu.sessions, smallest.id)
		return true
	default:
		return false
	}
}

// newIDLocked picks an unused positive session id.
func (c *fetchSessionCache) newIDLocked() int32 {
	for {
		id := rand.Int32N(math.MaxInt32) + 1 // 1 … MaxInt32
		if _, used := c.mu.sessions[id]; !used {
			return id
		}
	}
}

// remove closes a session; unknown ids are ignored.
func (c *fetchSessionCache) remove(id int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.mu.sessions, id)
}
