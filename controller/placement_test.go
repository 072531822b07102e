package controller

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stratalog/strata/controller/metadata"
)

// placementBrokers makes b brokers with ids 1..b spread over k racks
// (rack "" when k is 0), as evenly as b and k allow.
func placementBrokers(b, k int) []placementBroker {
	out := make([]placementBroker, b)
	for i := range out {
		out[i].id = metadata.BrokerID(i + 1)
		if k > 0 {
			out[i].rack = fmt.Sprintf("rack-%c", 'a'+i%k)
		}
	}
	return out
}

func spread(counts map[metadata.BrokerID]int, brokers []placementBroker) (lo, hi int) {
	lo, hi = -1, -1
	for _, b := range brokers {
		c := counts[b.id]
		if lo < 0 || c < lo {
			lo = c
		}
		hi = max(hi, c)
	}
	return lo, hi
}

// TestPlacementEven: with racks of equal size (or none), after every
// partition placed, each broker leads ⌊N/B⌋ or ⌈N/B⌉ partitions and
// holds ⌊N·RF/B⌋ or ⌈N·RF/B⌉ replicas; a partition's replicas are on
// distinct brokers, and on distinct racks while RF ≤ racks (else spread
// over them within one).
func TestPlacementEven(t *testing.T) {
	const most = 100 // partitions
	for b := 1; b <= 12; b++ {
		for _, k := range []int{0, 1, 2, 3, 4, 6} {
			if k > 0 && b%k != 0 {
				continue // racks of unequal size: racks come first (TestPlacementUnevenRacks)
			}
			brokers := placementBrokers(b, k)
			rackOf := map[metadata.BrokerID]string{}
			for _, pb := range brokers {
				rackOf[pb.id] = pb.rack
			}
			racks := max(k, 1)
			for rf := 1; rf <= b; rf++ {
				for seed := range uint64(3) {
					p := newPlacer(brokers, rand.New(rand.NewPCG(seed, 7)))
					leaders, replicas := map[metadata.BrokerID]int{}, map[metadata.BrokerID]int{}
					for n := 1; n <= most; n++ {
						reps := p.place(rf)
						name := fmt.Sprintf("B=%d racks=%d RF=%d seed=%d partition %d", b, k, rf, seed, n-1)
						if len(reps) != rf || hasDup(reps) {
							t.Fatalf("%s: replicas %v", name, reps)
						}
						perRack := map[string]int{}
						for _, id := range reps {
							perRack[rackOf[id]]++
							replicas[id]++
						}
						leaders[reps[0]]++
						lo, hi := rf/racks, (rf+racks-1)/racks
						for r, c := range perRack {
							if c < lo || c > hi {
								t.Fatalf("%s: %v puts %d replicas in rack %q, want %d to %d", name, reps, c, r, lo, hi)
							}
						}
						if lo, hi := spread(leaders, brokers); hi-lo > 1 {
							t.Fatalf("%s: leader counts from %d to %d: %v", name, lo, hi, leaders)
						}
						if lo, hi := spread(replicas, brokers); hi-lo > 1 {
							t.Fatalf("%s: replica counts from %d to %d: %v", name, lo, hi, replicas)
						}
					}
				}
			}
		}
	}
}

func hasDup(ids []metadata.BrokerID) bool {
	for i := range ids {
		if slices.Contains(ids[i+1:], ids[i]) {
			return true
		}
	}
	return false
}

// TestPlacementUnevenRacks: rack diversity comes before evenness, as in
// Kafka: with 3 brokers in rack a and 1 in rack b, every partition of RF 2
// has a replica in b.
func TestPlacementUnevenRacks(t *testing.T) {
	brokers := []placementBroker{{1, "a"}, {2, "a"}, {3, "a"}, {4, "b"}}
	p := newPlacer(brokers, rand.New(rand.NewPCG(1, 2)))
	leaders := map[metadata.BrokerID]int{}
	for range 12 {
		reps := p.place(2)
		if !slices.Contains(reps, 4) {
			t.Fatalf("replicas %v: none in rack b", reps)
		}
		leaders[reps[0]]++
	}
	// Leaders still spread over all four brokers.
	if lo, hi := spread(leaders, brokers); hi-lo > 1 {
		t.Errorf("leader counts %v", leaders)
	}
}

// TestPlacementDeterministic: the same seed places the same way; seeds
// rotate where topics start.
func TestPlacementDeterministic(t *testing.T) {
	brokers := placementBrokers(6, 3)
	place := func(seed uint64) [][]metadata.BrokerID {
		p := newPlacer(slices.Clone(brokers), rand.New(rand.NewPCG(seed, 0)))
		var out [][]metadata.BrokerID
		for range 10 {
			out = append(out, p.place(3))
		}
		return out
	}
	a, b := place(42), place(42)
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("seed 42 placed partition %d on %v, then on %v", i, a[i], b[i])
		}
	}
	firsts := map[metadata.BrokerID]bool{}
	for seed := range uint64(20) {
		firsts[place(seed)[0][0]] = true
	}
	if len(firsts) < 3 {
		t.Errorf("20 seeds started topics on only %v", firsts)
	}
}

// TestPlacementCountsExisting: CreatePartitions balances the topic as a
// whole; a broker that joined after the topic was created gets the new
// partitions first.
func TestPlacementCountsExisting(t *testing.T) {
	p := newPlacer(placementBrokers(4, 0), rand.New(rand.NewPCG(3, 3)))
	for _, reps := range [][]metadata.BrokerID{{1, 2}, {2, 3}, {3, 1}} {
		p.count(reps)
	}
	p.count([]metadata.BrokerID{9, 1}) // a broker not in the ring is ignored
	reps := p.place(2)
	if reps[0] != 4 {
		t.Errorf("the new partition is led by %d, want the idle broker 4 (replicas %v)", reps[0], reps)
	}
}

func TestRotate(t *testing.T) {
	s := []int{1, 2, 3, 4, 5}
	rotate(s, 2)
	if !slices.Equal(s, []int{3, 4, 5, 1, 2}) {
		t.Errorf("rotate by 2: %v", s)
	}
	rotate(s, 0)
	if !slices.Equal(s, []int{3, 4, 5, 1, 2}) {
		t.Errorf("rotate by 0: %v", s)
	}
}
