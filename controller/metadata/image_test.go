package metadata

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func uuidOf(n byte) UUID { var u UUID; u[15] = n; u[0] = 1; return u }

func ids(v ...BrokerID) *[]BrokerID { return &v }

func leader(id BrokerID) *BrokerID { return &id }

func endpoint(id BrokerID) []Endpoint {
	return []Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9090 + int32(id)}}
}

// applyOK applies batches one offset after another, failing on a refusal.
func applyOK(t *testing.T, im *Image, batches ...[]Record) *Image {
	t.Helper()
	for _, b := range batches {
		next, err := im.Apply(im.Offset()+1, b)
		if err != nil {
			t.Fatalf("apply at %d: %v", im.Offset()+1, err)
		}
		im = next
	}
	return im
}

// threeBrokers is a bootstrapped image with brokers 1–3 registered and
// unfenced.
func threeBrokers(t *testing.T) *Image {
	im := applyOK(t, Empty(), []Record{&Bootstrap{ClusterID: "c1", NextProducerID: 1000}})
	for id := BrokerID(1); id <= 3; id++ {
		im = applyOK(t, im, []Record{&RegisterBroker{ID: id, Incarnation: uuidOf(byte(id)), Listeners: endpoint(id)}})
		im = applyOK(t, im, []Record{&ChangeBroker{ID: id, Epoch: im.Broker(id).Epoch, Fenced: false}})
	}
	return im
}

func TestApplyTopicLifecycle(t *testing.T) {
	im := threeBrokers(t)
	topic := uuidOf(100)
	im = applyOK(t, im, []Record{&CreateTopic{Name: "orders", ID: topic, Configs: map[string]string{"retention.ms": "1000"},
		Partitions: []Partition{
			{Replicas: []BrokerID{1, 2}, ISR: []BrokerID{1, 2}, Leader: 1},
			{Replicas: []BrokerID{2, 3}, ISR: []BrokerID{2, 3}, Leader: 2},
		}}})
	before := im
	im = applyOK(t, im, []Record{&ChangePartition{Topic: topic, Partition: 0, Leader: leader(2), ISR: ids(2)}})
	p := im.Topic("orders").Partition(0)
	if p.Leader != 2 || p.LeaderEpoch != 1 || p.PartitionEpoch != 1 || !slices.Equal(p.ISR, []BrokerID{2}) {
		t.Fatalf("after the leader change: %+v", p)
	}
	// Copy-on-write: the earlier image and the untouched partition are as
	// they were, and the untouched partition is shared.
	if bp := before.Topic("orders").Partition(0); bp.Leader != 1 || bp.LeaderEpoch != 0 {
		t.Fatalf("the earlier image changed: %+v", bp)
	}
	if before.Topic("orders").Partition(1) != im.Topic("orders").Partition(1) {
		t.Errorf("an unchanged partition was copied")
	}
	// An ISR change alone bumps the partition epoch, not the leader epoch.
	im = applyOK(t, im, []Record{&ChangePartition{Topic: topic, Partition: 0, ISR: ids(2, 1)}})
	if p := im.Topic("orders").Partition(0); p.LeaderEpoch != 1 || p.PartitionEpoch != 2 {
		t.Fatalf("after an ISR change: %+v", p)
	}
	im = applyOK(t, im, []Record{&AddPartitions{Topic: topic, Partitions: []Partition{{Replicas: []BrokerID{3}, ISR: []BrokerID{3}, Leader: 3}}}},
		[]Record{&ChangeTopicConfigs{Topic: topic, Set: map[string]string{"segment.ms": "5"}, Delete: []string{"retention.ms"}}})
	tp := im.Topic("orders")
	if len(tp.Partitions) != 3 || tp.Configs["segment.ms"] != "5" || tp.Configs["retention.ms"] != "" {
		t.Fatalf("after adding partitions and configs: %d partitions, configs %v", len(tp.Partitions), tp.Configs)
	}
	im = applyOK(t, im, []Record{&DeleteTopic{Topic: topic}})
	if im.Topic("orders") != nil || im.TopicByID(topic) != nil || im.NumTopics() != 0 {
		t.Fatal("topic still there after DeleteTopic")
	}
	im = applyOK(t, im, []Record{&AllocateProducerIDs{Broker: 2, BrokerEpoch: im.Broker(2).Epoch, Size: 1000}})
	if im.NextProducerID() != 2000 {
		t.Fatalf("next producer id %d, want 2000", im.NextProducerID())
	}
}

// TestApplyRefuses: each batch breaks an invariant; it is refused whole
// and the image is unchanged.
func TestApplyRefuses(t *testing.T) {
	im := threeBrokers(t)
	topic := uuidOf(100)
	im = applyOK(t, im, []Record{&CreateTopic{Name: "t", ID: topic, Partitions: []Partition{{Replicas: []BrokerID{1, 2}, ISR: []BrokerID{1, 2}, Leader: 1}}}})
	b1 := im.Broker(1)
	for _, tc := range []struct {
		name  string
		batch []Record
		want  string
	}{
		{"second bootstrap", []Record{&Bootstrap{ClusterID: "c2"}}, "already bootstrapped"},
		{"leader outside the ISR", []Record{&ChangePartition{Topic: topic, Partition: 0, Leader: leader(3)}}, "not in the ISR"},
		{"ISR outside the replicas", []Record{&ChangePartition{Topic: topic, Partition: 0, ISR: ids(1, 3)}}, "not a replica"},
		{"duplicate replica", []Record{&ChangePartition{Topic: topic, Partition: 0, Replicas: ids(1, 1)}}, "listed twice"},
		{"fenced broker left leading", []Record{&ChangeBroker{ID: 1, Epoch: b1.Epoch, Fenced: true}}, "still leads"},
		{"re-registered broker left leading", []Record{&RegisterBroker{ID: 1, Incarnation: uuidOf(9), Listeners: endpoint(1)}}, "still leads"},
		{"leader not registered", []Record{&CreateTopic{Name: "u", ID: uuidOf(101), Partitions: []Partition{{Replicas: []BrokerID{7}, ISR: []BrokerID{7}, Leader: 7}}}}, "not registered"},
		{"duplicate name", []Record{&CreateTopic{Name: "t", ID: uuidOf(102), Partitions: []Partition{{Replicas: []BrokerID{1}, ISR: []BrokerID{1}, Leader: 1}}}}, "exists"},
		{"stale broker epoch", []Record{&ChangeBroker{ID: 2, Epoch: 1, Fenced: true}}, "not registered"},
		{"unregister unfenced", []Record{&UnregisterBroker{ID: 3, Epoch: im.Broker(3).Epoch}}, "not fenced"},
		{"no such partition", []Record{&ChangePartition{Topic: topic, Partition: 5, ISR: ids(1)}}, "no partition 5"},
		{"huge producer-id block", []Record{&AllocateProducerIDs{Broker: 1, BrokerEpoch: b1.Epoch, Size: MaxProducerIDBlock + 1}}, "block"},
		// A good record followed by a bad one: the good one is undone too.
		{"half good", []Record{&ChangeTopicConfigs{Topic: topic, Set: map[string]string{"a": "b"}}, &DeleteTopic{Topic: uuidOf(55)}}, "no topic"},
	} {
		got, err := im.Apply(im.Offset()+1, tc.batch)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a refusal mentioning %q", tc.name, err, tc.want)
		}
		if got != im || len(im.Topic("t").Configs) != 0 {
			t.Errorf("%s: the image changed", tc.name)
		}
	}
	if _, err := im.Apply(im.Offset(), nil); !errors.Is(err, ErrRefused) {
		t.Errorf("an offset not after the image's: %v", err)
	}
	// Fencing works once leadership moves away in the same batch.
	applyOK(t, im, []Record{&ChangePartition{Topic: topic, Partition: 0, Leader: leader(2), ISR: ids(2)},
		&ChangeBroker{ID: 1, Epoch: b1.Epoch, Fenced: true}})
}

// topicSeq makes topic ids in random batches unique, so a deleted topic's
// epochs never meet a new topic's.
var topicSeq uint16

// randomBatch makes a batch of plausible and implausible records for im.
func randomBatch(r *rand.Rand, im *Image) []Record {
	randIDs := func(n int) []BrokerID {
		var out []BrokerID
		for range n {
			out = append(out, BrokerID(r.IntN(5)))
		}
		return out
	}
	var batch []Record
	for range 1 + r.IntN(4) {
		topics := im.Topics()
		switch k := r.IntN(8); {
		case k == 0:
			batch = append(batch, &RegisterBroker{ID: BrokerID(r.IntN(5)), Incarnation: uuidOf(byte(r.IntN(250) + 1)), Listeners: endpoint(1)})
		case k == 1 && len(im.Brokers()) > 0:
			br := im.Brokers()[r.IntN(len(im.Brokers()))]
			batch = append(batch, &ChangeBroker{ID: br.ID, Epoch: br.Epoch, Fenced: r.IntN(2) == 0})
		case k == 2:
			reps := randIDs(1 + r.IntN(3))
			topicSeq++
			id := uuidOf(0)
			id[1], id[2] = byte(topicSeq>>8), byte(topicSeq)
			batch = append(batch, &CreateTopic{Name: string(rune('a' + r.IntN(6))), ID: id,
				Partitions: []Partition{{Replicas: reps, ISR: reps[:1+r.IntN(len(reps))], Leader: reps[0]}}})
		case k == 3 && len(topics) > 0:
			batch = append(batch, &DeleteTopic{Topic: topics[r.IntN(len(topics))].ID})
		case k >= 4 && len(topics) > 0:
			t := topics[r.IntN(len(topics))]
			p := int32(r.IntN(len(t.Partitions) + 1))
			c := &ChangePartition{Topic: t.ID, Partition: p}
			if r.IntN(2) == 0 {
				c.Leader = leader(BrokerID(r.IntN(6) - 1))
			}
			if r.IntN(2) == 0 {
				c.ISR = ids(randIDs(r.IntN(3))...)
			}
			batch = append(batch, c)
		}
	}
	return batch
}

// checkInvariants checks what every image must hold.
// snapshotRoundTrip writes im as a snapshot and fails the test unless it
// reads back as an Equal image.
func snapshotRoundTrip(t testing.TB, im *Image) {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteImage(&buf, im); err != nil {
		t.Fatal(err)
	}
	back, err := ReadImage(&buf)
	if err != nil || !Equal(back, im) {
		t.Fatalf("snapshot round trip: %v", err)
	}
}

func checkInvariants(t *testing.T, im *Image) {
	t.Helper()
	for _, tp := range im.Topics() {
		for i, p := range tp.Partitions {
			if err := checkReplicaSet(p); err != nil {
				t.Fatalf("%s-%d: %v", tp.Name, i, err)
			}
			if p.Leader != NoLeader {
				if br := im.Broker(p.Leader); br == nil || br.Fenced {
					t.Fatalf("%s-%d led by fenced or unregistered broker %d", tp.Name, i, p.Leader)
				}
			}
		}
	}
}

// TestApplyRandomSequences applies random batches; whatever is accepted or
// refused, the invariants hold, epochs never go back, refused batches
// change nothing, and a snapshot of every image reads back equal.
func TestApplyRandomSequences(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	im := threeBrokers(t)
	accepted := 0
	type key struct {
		topic UUID
		p     int
	}
	epochs := map[key][2]int32{}
	for i := range 5000 {
		batch := randomBatch(r, im)
		next, err := im.Apply(im.Offset()+1, batch)
		if err != nil {
			if next != im {
				t.Fatal("a refused batch returned another image")
			}
			continue
		}
		accepted++
		im = next
		checkInvariants(t, im)
		for _, tp := range im.Topics() {
			for pi, p := range tp.Partitions {
				k := key{tp.ID, pi}
				if old, ok := epochs[k]; ok && (int32(p.LeaderEpoch) < old[0] || int32(p.PartitionEpoch) < old[1]) {
					t.Fatalf("%s-%d: epochs went back from %v to %d/%d", tp.Name, pi, old, p.LeaderEpoch, p.PartitionEpoch)
				}
				epochs[k] = [2]int32{int32(p.LeaderEpoch), int32(p.PartitionEpoch)}
			}
		}
		if i%100 == 0 {
			snapshotRoundTrip(t, im)
		}
	}
	if accepted < 500 {
		t.Fatalf("only %d of 5000 random batches accepted: the generator is too far off", accepted)
	}
	t.Logf("%d of 5000 random batches accepted", accepted)
}
