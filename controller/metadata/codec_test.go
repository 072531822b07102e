package metadata

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// everyRecord holds one record of each type.
func everyRecord() []Record {
	return []Record{
		&Bootstrap{ClusterID: "c", NextProducerID: 7},
		&RegisterBroker{ID: 1, Incarnation: uuidOf(1), Listeners: endpoint(1), Rack: "a"},
		&ChangeBroker{ID: 1, Epoch: 3, Fenced: false, ShuttingDown: true},
		&UnregisterBroker{ID: 1, Epoch: 3},
		&CreateTopic{Name: "t", ID: uuidOf(2), Configs: map[string]string{"b": "1", "a": "2"},
			Partitions: []Partition{{Replicas: []BrokerID{1, 2}, ISR: []BrokerID{1}, Leader: 1, AddingReplicas: []BrokerID{2}}}},
		&AddPartitions{Topic: uuidOf(2), Partitions: []Partition{{Replicas: []BrokerID{3}, ISR: []BrokerID{}, Leader: NoLeader}}},
		&DeleteTopic{Topic: uuidOf(2)},
		&ChangeTopicConfigs{Topic: uuidOf(2), Set: map[string]string{"x": "y"}, Delete: []string{"z"}},
		&ChangePartition{Topic: uuidOf(2), Partition: 4, Leader: leader(NoLeader), ISR: ids(), Replicas: ids(1, 2)},
		&AllocateProducerIDs{Broker: 1, BrokerEpoch: 3, Size: 1000},
	}
}

func TestBatchRoundTrip(t *testing.T) {
	batch := everyRecord()
	if len(batch) != len(recordTypes) {
		t.Fatalf("the test covers %d record types of %d", len(batch), len(recordTypes))
	}
	enc, err := EncodeBatch(batch)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := DecodeBatch(enc)
	if err != nil {
		t.Fatalf("decode %s: %v", enc, err)
	}
	// An ISR set to nothing (a nil list) reads back as an empty one, the
	// same change; everything else reads back as it was.
	cp := batch[8].(*ChangePartition)
	if got := dec[8].(*ChangePartition); got.ISR == nil || len(*got.ISR) != 0 {
		t.Fatalf("an emptied ISR read back as %v", got.ISR)
	}
	dec[8].(*ChangePartition).ISR = cp.ISR
	if !reflect.DeepEqual(dec, batch) {
		t.Fatalf("round trip changed the batch:\n%s", enc)
	}
	again, _ := EncodeBatch(dec)
	if !bytes.Equal(enc, again) {
		t.Fatalf("encoding is not deterministic:\n%s\n%s", enc, again)
	}
}

func TestDecodeBatchRefuses(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"not json", `{`, "unexpected EOF"},
		{"newer version", `{"version":2,"records":[]}`, "version 2"},
		{"unknown type", `{"version":1,"records":[{"type":"launchMissiles","data":{}}]}`, "unknown type"},
		{"unknown field", `{"version":1,"records":[{"type":"deleteTopic","data":{"topic":"AQAAAAAAAAAAAAAAAAAAAg","force":true}}]}`, "unknown field"},
		{"bad uuid", `{"version":1,"records":[{"type":"deleteTopic","data":{"topic":"short"}}]}`, "uuid"},
		{"trailing data", `{"version":1,"records":[]} {}`, "after the value"},
	} {
		_, err := DecodeBatch([]byte(tc.in))
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrCorrupt mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := DecodeBatch(make([]byte, MaxBatchBytes+1)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("oversized batch: %v", err)
	}
}

func TestReadImageRefusesBrokenInvariants(t *testing.T) {
	im := threeBrokers(t)
	im = applyOK(t, im, []Record{&CreateTopic{Name: "t", ID: uuidOf(9), Partitions: []Partition{{Replicas: []BrokerID{1}, ISR: []BrokerID{1}, Leader: 1}}}})
	var buf bytes.Buffer
	if err := WriteImage(&buf, im); err != nil {
		t.Fatal(err)
	}
	good := buf.String()
	for _, tc := range []struct{ name, from, to string }{
		{"leader outside the ISR", `"isr":[1],"leader":1`, `"isr":[1],"leader":2`},
		{"unknown field", `"clusterId"`, `"bogus":1,"clusterId"`},
		{"newer version", `"version":1`, `"version":9`},
	} {
		bad := strings.Replace(good, tc.from, tc.to, 1)
		if bad == good {
			t.Fatalf("%s: the fixture did not change (%q not in %s)", tc.name, tc.from, good)
		}
		if _, err := ReadImage(strings.NewReader(bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", tc.name, err)
		}
	}
}

// FuzzDecodeBatch: decoding never panics and costs time linear in the
// input; what decodes encodes back to something that decodes the same.
func FuzzDecodeBatch(f *testing.F) {
	enc, _ := EncodeBatch(everyRecord())
	f.Add(enc)
	f.Add([]byte(`{"version":1,"records":[{"type":"changePartition","data":{"topic":"AQAAAAAAAAAAAAAAAAAAAg","partition":-1,"isr":null}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		batch, err := DecodeBatch(data)
		if err != nil {
			return
		}
		again, err := EncodeBatch(batch)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := DecodeBatch(again)
		if err != nil || !reflect.DeepEqual(back, batch) {
			t.Fatalf("re-decode: %v", err)
		}
		// Whatever the batch says, applying it cannot break an image.
		im := Empty()
		if next, err := im.Apply(1, batch); err == nil {
			checkInvariants(t, next)
		}
	})
}

// FuzzReadImage: reading never panics, and what reads keeps the invariants
// and writes back to an image that reads the same.
func FuzzReadImage(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 1))
	im := Empty()
	for range 200 {
		if next, err := im.Apply(im.Offset()+1, randomBatch(r, im)); err == nil {
			im = next
		}
	}
	var buf bytes.Buffer
	_ = WriteImage(&buf, im)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := ReadImage(bytes.NewReader(data))
		if err != nil {
			return
		}
		checkInvariants(t, im)
		snapshotRoundTrip(t, im)
	})
}
