package metadata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The log's encoding: a batch is a JSON object with a format version and
// its records, each {"type": name, "data": fields}; a snapshot is a JSON
// object with the image's state. JSON keeps the log readable with ordinary
// tools, maps are written sorted (so encoding is deterministic), and
// decoding costs time linear in the input. Both decoders refuse unknown
// versions, unknown record types and unknown fields, so a newer log is
// never half-understood.

// batchVersion and imageVersion are the encodings this code writes and
// reads.
const (
	batchVersion = 1
	imageVersion = 1
)

// MaxBatchBytes bounds an encoded batch (one Raft entry): a CreateTopic of
// 10,000 partitions with three replicas each takes about 1 MiB.
const MaxBatchBytes = 32 << 20

// recordTypes lists every record type by its Type name.
var recordTypes = map[string]func() Record{
	(*Bootstrap)(nil).Type():           func() Record { return new(Bootstrap) },
	(*RegisterBroker)(nil).Type():      func() Record { return new(RegisterBroker) },
	(*ChangeBroker)(nil).Type():        func() Record { return new(ChangeBroker) },
	(*UnregisterBroker)(nil).Type():    func() Record { return new(UnregisterBroker) },
	(*CreateTopic)(nil).Type():         func() Record { return new(CreateTopic) },
	(*AddPartitions)(nil).Type():       func() Record { return new(AddPartitions) },
	(*DeleteTopic)(nil).Type():         func() Record { return new(DeleteTopic) },
	(*ChangeTopicConfigs)(nil).Type():  func() Record { return new(ChangeTopicConfigs) },
	(*ChangePartition)(nil).Type():     func() Record { return new(ChangePartition) },
	(*AllocateProducerIDs)(nil).Type(): func() Record { return new(AllocateProducerIDs) },
}

type envelope struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

type encodedBatch struct {
	Version int        `json:"version"`
	Records []envelope `json:"records"`
}

// EncodeBatch encodes a batch for the log.
func EncodeBatch(batch []Record) ([]byte, error) {
	eb := encodedBatch{Version: batchVersion, Records: make([]envelope, len(batch))}
	for i, r := range batch {
		if r == nil || recordTypes[r.Type()] == nil {
			return nil, fmt.Errorf("encode batch: record %d: unknown type", i)
		}
		data, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("encode batch: record %d (%s): %w", i, r.Type(), err)
		}
		eb.Records[i] = envelope{Type: r.Type(), Data: data}
	}
	out, err := json.Marshal(eb)
	if err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	if len(out) > MaxBatchBytes {
		return nil, fmt.Errorf("encode batch: %d bytes, more than %d", len(out), MaxBatchBytes)
	}
	return out, nil
}

// ErrCorrupt wraps every decoding failure: the bytes are not a batch or
// snapshot this code wrote.
var ErrCorrupt = errors.New("corrupt metadata encoding")

// DecodeBatch decodes a batch written by EncodeBatch.
func DecodeBatch(data []byte) ([]Record, error) {
	if len(data) > MaxBatchBytes {
		return nil, fmt.Errorf("%w: batch of %d bytes, more than %d", ErrCorrupt, len(data), MaxBatchBytes)
	}
	var eb encodedBatch
	if err := strictUnmarshal(data, &eb); err != nil {
		return nil, fmt.Errorf("%w: batch: %v", ErrCorrupt, err)
	}
	if eb.Version != batchVersion {
		return nil, fmt.Errorf("%w: batch version %d, this build reads %d", ErrCorrupt, eb.Version, batchVersion)
	}
	out := make([]Record, len(eb.Records))
	for i, e := range eb.Records {
		mk := recordTypes[e.Type]
		if mk == nil {
			return nil, fmt.Errorf("%w: record %d: unknown type %q", ErrCorrupt, i, truncate([]byte(e.Type)))
		}
		r := mk()
		if err := strictUnmarshal(e.Data, r); err != nil {
			return nil, fmt.Errorf("%w: record %d (%s): %v", ErrCorrupt, i, e.Type, err)
		}
		out[i] = r
	}
	return out, nil
}

func strictUnmarshal(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("data after the value")
	}
	return nil
}

type encodedImage struct {
	Version        int       `json:"version"`
	Offset         int64     `json:"offset"`
	ClusterID      string    `json:"clusterId"`
	NextProducerID int64     `json:"nextProducerId"`
	Brokers        []*Broker `json:"brokers"`
	Topics         []*Topic  `json:"topics"`
}

// WriteImage writes im as a snapshot.
func WriteImage(w io.Writer, im *Image) error {
	enc := json.NewEncoder(w)
	return enc.Encode(encodedImage{
		Version: imageVersion, Offset: im.offset, ClusterID: im.clusterID, NextProducerID: im.nextProducerID,
		Brokers: im.Brokers(), Topics: im.Topics(),
	})
}

// ReadImage reads a snapshot written by WriteImage and checks every
// invariant an Image keeps, so a damaged snapshot is refused rather than
// believed.
func ReadImage(r io.Reader) (*Image, error) {
	d := json.NewDecoder(r)
	d.DisallowUnknownFields()
	var ei encodedImage
	if err := d.Decode(&ei); err != nil {
		return nil, fmt.Errorf("%w: snapshot: %v", ErrCorrupt, err)
	}
	if ei.Version != imageVersion {
		return nil, fmt.Errorf("%w: snapshot version %d, this build reads %d", ErrCorrupt, ei.Version, imageVersion)
	}
	if ei.Offset < 0 || ei.NextProducerID < 0 {
		return nil, fmt.Errorf("%w: snapshot offset %d, next producer id %d", ErrCorrupt, ei.Offset, ei.NextProducerID)
	}
	im := Empty()
	im.offset, im.clusterID, im.nextProducerID = ei.Offset, ei.ClusterID, ei.NextProducerID
	for _, br := range ei.Brokers {
		if br == nil || br.ID < 0 || im.brokers[br.ID] != nil {
			return nil, fmt.Errorf("%w: snapshot: a broker missing, negative or listed twice", ErrCorrupt)
		}
		im.brokers[br.ID] = br
	}
	for _, t := range ei.Topics {
		if t == nil || t.Name == "" || t.ID.IsZero() || im.topics[t.ID] != nil {
			return nil, fmt.Errorf("%w: snapshot: a topic missing, unnamed or listed twice", ErrCorrupt)
		}
		if _, dup := im.byName[t.Name]; dup {
			return nil, fmt.Errorf("%w: snapshot: topic %q listed twice", ErrCorrupt, t.Name)
		}
		for i, p := range t.Partitions {
			if p == nil {
				return nil, fmt.Errorf("%w: snapshot: %s-%d missing", ErrCorrupt, t.Name, i)
			}
			if err := checkReplicaSet(p); err != nil {
				return nil, fmt.Errorf("%w: snapshot: %s-%d: %v", ErrCorrupt, t.Name, i, err)
			}
			if l := p.Leader; l != NoLeader && (im.brokers[l] == nil || im.brokers[l].Fenced) {
				return nil, fmt.Errorf("%w: snapshot: %s-%d led by broker %d, fenced or not registered", ErrCorrupt, t.Name, i, l)
			}
		}
		im.topics[t.ID] = t
		im.byName[t.Name] = t.ID
	}
	return im, nil
}

// Equal reports whether two images hold the same metadata: their
// snapshots are the same bytes. For tests (the controller's check that
// every node applied the same log among them): it encodes both images,
// O(size) each, unless they are the same Image.
func Equal(a, b *Image) bool {
	if a == b {
		return true
	}
	var ab, bb bytes.Buffer
	if WriteImage(&ab, a) != nil || WriteImage(&bb, b) != nil {
		return false
	}
	return bytes.Equal(ab.Bytes(), bb.Bytes())
}
