package group

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testDriver is the thinnest driver the package contract allows: one mutex
// around the Coordinator, a channel per Ticket, and a goroutine that sleeps
// until NextDeadline and Ticks. The records go to a slice instead of a
// partition. Under synctest its clock is virtual, so the test checks the
// real timing of rebalances and session expiry without waiting.
type testDriver struct {
	mu      sync.Mutex
	c       *Coordinator
	log     []Record
	waiters map[Ticket]chan Completion
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func startDriver(cfg Config) *testDriver {
	cfg.NumPartitions = 1
	d := &testDriver{c: New(cfg), waiters: map[Ticket]chan Completion{}, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if err := d.c.Load(time.Now(), 0, nil); err != nil {
		panic(err)
	}
	go d.timers()
	return d
}

func (d *testDriver) timers() {
	defer close(d.done)
	for {
		d.mu.Lock()
		d.deliverLocked(d.c.Tick(time.Now()))
		next := d.c.NextDeadline()
		d.mu.Unlock()
		select {
		case <-time.After(time.Until(next)):
		case <-d.wake:
		case <-d.stop:
			return
		}
	}
}

func (d *testDriver) close() { close(d.stop); <-d.done }

// deliverLocked "appends" the records, then answers completions: records
// first, as the contract requires.
func (d *testDriver) deliverLocked(res Result) {
	d.log = append(d.log, res.Records...)
	for _, c := range res.Completions {
		ch := d.waiters[c.Ticket]
		delete(d.waiters, c.Ticket)
		ch <- c
	}
}

// call runs one input under the lock and, for a Ticket, waits for its
// completion; it wakes the timer goroutine since deadlines may have moved.
func (d *testDriver) call(f func(now time.Time) (Ticket, Result)) Completion {
	d.mu.Lock()
	t, res := f(time.Now())
	var ch chan Completion
	if t != 0 {
		ch = make(chan Completion, 1)
		d.waiters[t] = ch
	}
	d.deliverLocked(res)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	if ch == nil {
		return Completion{}
	}
	return <-ch
}

func (d *testDriver) join(req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	var resp *kmsg.JoinGroupResponse
	c := d.call(func(now time.Time) (Ticket, Result) {
		r, t, res := d.c.JoinGroup(now, req, Client{ID: "c"})
		resp = r
		return t, res
	})
	if resp == nil {
		resp = c.Join
	}
	return resp
}

func (d *testDriver) sync(req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	var resp *kmsg.SyncGroupResponse
	c := d.call(func(now time.Time) (Ticket, Result) {
		r, t, res := d.c.SyncGroup(now, req)
		resp = r
		return t, res
	})
	if resp == nil {
		resp = c.Sync
	}
	return resp
}

func (d *testDriver) heartbeat(req *kmsg.HeartbeatRequest) int16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.c.Heartbeat(time.Now(), req).ErrorCode
}

func TestDriverTimingWithSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := startDriver(Config{})
		defer d.close()
		start := time.Now()

		// Three v3 consumers start together. The initial rebalance delay
		// (3 s) holds the first generation; as members joined during it,
		// Kafka's InitialDelayedJoin waits one more delay: 6 s.
		type member struct {
			id  string
			gen int32
		}
		members := make([]member, 3)
		var wg sync.WaitGroup
		for i := range members {
			wg.Go(func() {
				req := kmsg.NewPtrJoinGroupRequest()
				req.Version, req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 3, "g", 10000, 30000
				req.ProtocolType, req.Protocols = "consumer", rangeProtocols("t")
				resp := d.join(req)
				if resp.ErrorCode != 0 {
					t.Errorf("join: %d", resp.ErrorCode)
				}
				members[i] = member{resp.MemberID, resp.Generation}
				sr := kmsg.NewPtrSyncGroupRequest()
				sr.Version, sr.Group, sr.MemberID, sr.Generation = 3, "g", resp.MemberID, resp.Generation
				if resp.LeaderID == resp.MemberID {
					for _, m := range resp.Members {
						sr.GroupAssignment = append(sr.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m.MemberID, MemberAssignment: []byte("x")})
					}
				}
				if s := d.sync(sr); s.ErrorCode != 0 || string(s.MemberAssignment) != "x" {
					t.Errorf("sync: %+v", s)
				}
			})
		}
		wg.Wait()
		if took := time.Since(start); took != 6*time.Second {
			t.Fatalf("first generation after %v, want twice the 3s initial delay", took)
		}

		// Two keep heartbeating every 3 s; the third goes silent and is
		// expired after its 10 s session, which starts a rebalance.
		hb := func(m member) int16 {
			return d.heartbeat(&kmsg.HeartbeatRequest{Version: 3, Group: "g", MemberID: m.id, Generation: m.gen})
		}
		silentSince := time.Now()
		for {
			time.Sleep(3 * time.Second)
			synctest.Wait()
			c0, c1 := hb(members[0]), hb(members[1])
			if c0 == kerr.RebalanceInProgress.Code && c1 == c0 {
				break
			}
			if c0 != 0 || c1 != 0 {
				t.Fatalf("heartbeats: %d %d", c0, c1)
			}
		}
		if since := time.Since(silentSince); since != 12*time.Second {
			t.Fatalf("rebalance noticed after %v, want at the first heartbeat after the 10s session", since)
		}
		if code := hb(members[2]); code != kerr.UnknownMemberID.Code {
			t.Fatalf("silent member: %d", code)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if len(d.waiters) != 0 {
			t.Fatalf("requests left waiting: %d", len(d.waiters))
		}
	})
}
