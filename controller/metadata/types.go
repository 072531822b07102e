package metadata

import (
	crand "crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
)

// BrokerID is a node's node.id.
type BrokerID int32

// NoLeader is the leader of a partition that has none (offline).
const NoLeader BrokerID = -1

// LeaderEpoch numbers a partition's leaderships: it grows by one each time
// the leader changes, and every leader action carries it (fencing).
type LeaderEpoch int32

// PartitionEpoch numbers every change of a partition's state (leader, ISR,
// replicas); AlterPartition requests name the one they were based on.
type PartitionEpoch int32

// UUID is Kafka's 16-byte id (topic ids, broker incarnations), written as
// Kafka writes it: 22 characters of unpadded URL-safe base64.
type UUID [16]byte

func (u UUID) String() string { return base64.RawURLEncoding.EncodeToString(u[:]) }

// IsZero reports whether u is the all-zero UUID (none).
func (u UUID) IsZero() bool { return u == UUID{} }

// RandomUUID returns a random version-4 UUID that is not zero and whose
// text does not start with '-' (Kafka's Uuid.randomUuid avoids those: they
// read as command-line flags).
func RandomUUID() UUID {
	for {
		var u UUID
		_, _ = crand.Read(u[:]) // never fails (crypto/rand documents it)
		u[6] = u[6]&0x0f | 0x40 // version 4
		u[8] = u[8]&0x3f | 0x80 // variant RFC 4122
		if !u.IsZero() && !strings.HasPrefix(u.String(), "-") {
			return u
		}
	}
}

func (u UUID) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

func (u *UUID) UnmarshalText(b []byte) error {
	if base64.RawURLEncoding.DecodedLen(len(b)) != len(u) {
		return fmt.Errorf("uuid %q: not 22 characters of base64", truncate(b))
	}
	if _, err := base64.RawURLEncoding.Decode(u[:], b); err != nil {
		return fmt.Errorf("uuid %q: %w", truncate(b), err)
	}
	return nil
}

// truncate keeps error messages about hostile input short.
func truncate(b []byte) string {
	const most = 64
	if len(b) > most {
		return string(b[:most]) + "…"
	}
	return string(b)
}

// Endpoint is one listener a broker advertises.
type Endpoint struct {
	Name             string `json:"name"` // listener name, e.g. PLAINTEXT
	Host             string `json:"host"`
	Port             int32  `json:"port"`
	SecurityProtocol int16  `json:"securityProtocol"` // Kafka's numbering: 0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL
}

// Broker is a registered broker. Immutable once in an Image.
type Broker struct {
	ID BrokerID `json:"id"`
	// Epoch is the offset of the batch that registered this incarnation:
	// requests from an older registration of the same id name an older
	// epoch and are refused.
	Epoch       int64      `json:"epoch"`
	Incarnation UUID       `json:"incarnation"` // new at every process start
	Listeners   []Endpoint `json:"listeners"`
	Rack        string     `json:"rack,omitempty"`
	// Fenced: the broker may lead nothing and is not offered to clients.
	// A broker registers fenced and is unfenced once it has caught up.
	Fenced bool `json:"fenced"`
	// ShuttingDown: a controlled shutdown is under way; leadership moves
	// away and nothing new is placed on the broker.
	ShuttingDown bool `json:"shuttingDown,omitempty"`
}

// Partition is one partition's replica state. Immutable once in an Image.
type Partition struct {
	Replicas       []BrokerID     `json:"replicas"`
	ISR            []BrokerID     `json:"isr"`
	Leader         BrokerID       `json:"leader"`
	LeaderEpoch    LeaderEpoch    `json:"leaderEpoch"`
	PartitionEpoch PartitionEpoch `json:"partitionEpoch"`
	// AddingReplicas and RemovingReplicas are a reassignment under way:
	// Replicas holds both old and new until it completes.
	AddingReplicas   []BrokerID `json:"addingReplicas,omitempty"`
	RemovingReplicas []BrokerID `json:"removingReplicas,omitempty"`
}

// Has reports whether id is one of p's replicas.
func (p *Partition) Has(id BrokerID) bool { return slices.Contains(p.Replicas, id) }

// InSync reports whether id is in p's ISR.
func (p *Partition) InSync(id BrokerID) bool { return slices.Contains(p.ISR, id) }

// Topic is one topic. Immutable once in an Image.
type Topic struct {
	Name string `json:"name"`
	ID   UUID   `json:"id"`
	// Configs are the topic's overrides of the broker defaults, by Kafka
	// name (topicconfig parses them).
	Configs    map[string]string `json:"configs,omitempty"`
	Partitions []*Partition      `json:"partitions"`
}

// Partition returns partition p, nil if out of range.
func (t *Topic) Partition(p int32) *Partition {
	if t == nil || p < 0 || int(p) >= len(t.Partitions) {
		return nil
	}
	return t.Partitions[p]
}

// checkReplicaSet checks a partition's sets: no duplicates, ISR and the
// reassignment lists within the replicas, the leader -1 or in the ISR.
func checkReplicaSet(p *Partition) error {
	if len(p.Replicas) == 0 {
		return fmt.Errorf("no replicas")
	}
	if hasDuplicates(p.Replicas) || hasDuplicates(p.ISR) || hasDuplicates(p.AddingReplicas) || hasDuplicates(p.RemovingReplicas) {
		return fmt.Errorf("a broker listed twice (replicas %v, isr %v)", p.Replicas, p.ISR)
	}
	for _, set := range [][]BrokerID{p.ISR, p.AddingReplicas, p.RemovingReplicas} {
		for _, id := range set {
			if !p.Has(id) {
				return fmt.Errorf("broker %d is not a replica (replicas %v, isr %v, adding %v, removing %v)",
					id, p.Replicas, p.ISR, p.AddingReplicas, p.RemovingReplicas)
			}
		}
	}
	for _, id := range p.Replicas {
		if id < 0 {
			return fmt.Errorf("replica id %d", id)
		}
	}
	if p.Leader != NoLeader && !p.InSync(p.Leader) {
		return fmt.Errorf("leader %d is not in the ISR %v", p.Leader, p.ISR)
	}
	if p.LeaderEpoch < 0 || p.PartitionEpoch < 0 {
		return fmt.Errorf("negative epoch (leader epoch %d, partition epoch %d)", p.LeaderEpoch, p.PartitionEpoch)
	}
	return nil
}

func hasDuplicates(ids []BrokerID) bool {
	for i := range ids {
		if slices.Contains(ids[i+1:], ids[i]) {
			return true
		}
	}
	return false
}
