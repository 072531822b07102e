package controller

// Replica placement: where the partitions of a new topic (CreateTopics)
// or the new partitions of a topic (CreatePartitions) go.
//
// Goals, in Kafka's order of priority (its StripedReplicaPlacer):
//  1. a partition's replicas sit in distinct racks where there are enough
//     racks, and are spread over the racks as evenly as possible where
//     there are not (racks first, as Kafka: ten brokers in racks a and b
//     and one in rack c put a replica of most partitions on the one
//     broker in c; racks of unequal size are an operator's choice);
//  2. replicas, and leaders (replica 0, the preferred leader), spread
//     evenly over the brokers: with racks of equal size (or none), for N
//     partitions over B brokers every broker leads ⌊N/B⌋ or ⌈N/B⌉ of them
//     and holds ⌊N·RF/B⌋ or ⌈N·RF/B⌉ replicas (placement_test.go checks
//     this for B ≤ 12, every RF and N ≤ 100);
//  3. different topics do not all start on the same broker: the order is
//     rotated by the Machine's seeded random source, so placement is
//     reproducible from MachineConfig.Seed.
//
// Only brokers that can take a replica now are used: registered,
// unfenced and not shutting down (Kafka also places followers on fenced
// brokers when it must; Strata refuses instead, INVALID_REPLICATION_FACTOR).
//
// Balance is per topic, counting the topic's existing partitions (for
// CreatePartitions), not the whole cluster's load: a topic's throughput
// depends on its own partitions being spread, and a broker that joined
// after __consumer_offsets was created must not collect every leader of
// the next topic. Existing partitions are never moved here (that is
// reassignment).
//
// The method: the brokers are laid out on a ring that alternates racks
// (racks sorted by name, brokers within a rack by id, both rotated by a
// random offset, then interleaved: a0 b0 c0 a1 b1 c1 …, as Kafka's
// rack-aware assignment builds its broker list). For each partition, the
// leader is the broker with the fewest of this topic's leaders, the first
// such at or after a cursor that moves past each leader chosen; each
// follower is the broker whose rack this partition uses least, then with
// the fewest of this topic's replicas, looking backwards round the ring
// from the leader (the brokers the cursor reaches last, so that the
// brokers about to lead are not loaded with followers first).

import (
	"cmp"
	"math/rand/v2"
	"slices"

	"github.com/stratalog/strata/controller/metadata"
)

// placementBroker is a broker that can take a replica.
type placementBroker struct {
	id   metadata.BrokerID
	rack string
}

// placer places the new partitions of one topic. Not safe for concurrent
// use (it belongs to one decision).
type placer struct {
	ring     []metadata.BrokerID // rack-alternated order
	rackOf   []int               // ring index → rack index
	racks    int
	index    map[metadata.BrokerID]int // broker → ring index
	leaders  []int                     // ring index → this topic's (preferred) leaders
	replicas []int                     // ring index → this topic's replicas
	cursor   int
	// scratch, per partition
	rackUse []int
	chosen  []int
}

// newPlacer lays brokers (at least one; ids distinct) out on the ring,
// rotating racks and brokers with rng.
func newPlacer(brokers []placementBroker, rng *rand.Rand) *placer {
	byRack := map[string][]metadata.BrokerID{}
	for _, b := range brokers {
		byRack[b.rack] = append(byRack[b.rack], b.id)
	}
	rackNames := make([]string, 0, len(byRack))
	for r := range byRack {
		rackNames = append(rackNames, r)
	}
	slices.Sort(rackNames)
	rotate(rackNames, rng.IntN(len(rackNames)))
	members := make([][]metadata.BrokerID, len(rackNames))
	most := 0
	for i, r := range rackNames {
		ids := byRack[r]
		slices.SortFunc(ids, func(a, b metadata.BrokerID) int { return cmp.Compare(a, b) })
		rotate(ids, rng.IntN(len(ids)))
		members[i] = ids
		most = max(most, len(ids))
	}
	p := &placer{
		racks:   len(rackNames),
		index:   make(map[metadata.BrokerID]int, len(brokers)),
		rackUse: make([]int, len(rackNames)),
	}
	for round := range most {
		for r, ids := range members {
			if round < len(ids) {
				p.index[ids[round]] = len(p.ring)
				p.ring = append(p.ring, ids[round])
				p.rackOf = append(p.rackOf, r)
			}
		}
	}
	p.leaders = make([]int, len(p.ring))
	p.replicas = make([]int, len(p.ring))
	return p
}

// rotate moves s[k:] to the front.
func rotate[T any](s []T, k int) {
	slices.Reverse(s[:k])
	slices.Reverse(s[k:])
	slices.Reverse(s)
}

// count adds an existing partition of the topic to the balance; brokers
// not on the ring are ignored.
func (p *placer) count(replicas []metadata.BrokerID) {
	for j, id := range replicas {
		i, ok := p.index[id]
		if !ok {
			continue
		}
		p.replicas[i]++
		if j == 0 {
			p.leaders[i]++
		}
	}
}

// place returns the replicas of the next partition, leader first. rf must
// be between 1 and the number of brokers.
func (p *placer) place(rf int) []metadata.BrokerID {
	n := len(p.ring)
	leader := -1
	for d := range n {
		i := (p.cursor + d) % n
		if leader < 0 || p.leaders[i] < p.leaders[leader] {
			leader = i
		}
	}
	p.cursor = (leader + 1) % n
	p.chosen = append(p.chosen[:0], leader)
	clear(p.rackUse)
	p.rackUse[p.rackOf[leader]]++
	for len(p.chosen) < rf {
		best := -1
		for d := n - 1; d >= 1; d-- {
			i := (leader + d) % n
			if slices.Contains(p.chosen, i) {
				continue
			}
			if best < 0 || p.better(i, best) {
				best = i
			}
		}
		p.chosen = append(p.chosen, best)
		p.rackUse[p.rackOf[best]]++
	}
	out := make([]metadata.BrokerID, len(p.chosen))
	for j, i := range p.chosen {
		out[j] = p.ring[i]
		p.replicas[i]++
	}
	p.leaders[leader]++
	return out
}

// better reports whether ring index i is a better follower than j: its
// rack is used less by this partition, or equally and it holds fewer of
// the topic's replicas.
func (p *placer) better(i, j int) bool {
	if ri, rj := p.rackUse[p.rackOf[i]], p.rackUse[p.rackOf[j]]; ri != rj {
		return ri < rj
	}
	return p.replicas[i] < p.replicas[j]
}
