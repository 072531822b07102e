package tiering

// The cluster metadata snapshot: what a cluster started on an empty disk
// needs to find every topic's tiered history in the bucket (DESIGN.md
// invariant 4, "the bucket describes itself").

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stratalog/strata/objectstore"
)

// MetadataVersion is the cluster metadata format this code writes and
// reads.
const MetadataVersion = 1

// Bounds on cluster metadata, so a corrupt or hostile object cannot make
// the decoder allocate without limit.
const (
	// MaxMetadataBytes bounds the encoded snapshot.
	MaxMetadataBytes = 64 << 20 // 64 MiB
	// MaxTopics bounds the topics of a snapshot; a topic without configs
	// encodes to at least 55 bytes, so 64 MiB could not hold many more.
	MaxTopics = 1_000_000
	// MaxPartitionsPerTopic bounds one topic's partition count (Kafka has
	// no hard limit; clusters hold a few hundred thousand in all).
	MaxPartitionsPerTopic = 1_000_000
	// MaxConfigsPerTopic bounds one topic's config overrides (Kafka has
	// under a hundred topic configs).
	MaxConfigsPerTopic = 1000
	// MaxConfigNameBytes and MaxConfigValueBytes bound one override.
	MaxConfigNameBytes  = 255
	MaxConfigValueBytes = 64 << 10 // 64 KiB: a long replica-throttle list fits
	// MaxClusterIDBytes bounds the cluster id (Kafka's are 22 characters).
	MaxClusterIDBytes = 255
)

var (
	// ErrInvalidMetadata: cluster metadata that breaks the format or an
	// invariant; the message names the field and value.
	ErrInvalidMetadata = errors.New("tiering: invalid cluster metadata")
	// ErrClusterMismatch: the bucket's metadata belongs to another
	// cluster id. Two clusters writing one bucket prefix would overwrite
	// each other's snapshot, so WriteMetadata refuses; a cluster that
	// takes over a bucket (a restore) adopts the id ReadMetadata returns.
	ErrClusterMismatch = errors.New("tiering: bucket belongs to another cluster")
)

// ClusterMetadata is the snapshot of the cluster's topics kept at
// MetadataKey. Invariants (Validate, and every decoded snapshot): version
// MetadataVersion; a cluster id of 1–255 printable ASCII characters
// without spaces; UpdatedAtMs ≥ 0; topics sorted by name, names unique
// and Kafka-legal, ids non-zero and unique, 1–MaxPartitionsPerTopic
// partitions; config names of [a-zA-Z0-9._-] up to MaxConfigNameBytes,
// values valid UTF-8 up to MaxConfigValueBytes, at most
// MaxConfigsPerTopic of them; at most MaxTopics topics.
type ClusterMetadata struct {
	Version   int    `json:"version"`
	ClusterID string `json:"clusterId"`
	// UpdatedAtMs is when the snapshot was taken, Unix milliseconds.
	UpdatedAtMs int64           `json:"updatedAtMs"`
	Topics      []TopicMetadata `json:"topics"`
}

// TopicMetadata describes one topic in the snapshot.
type TopicMetadata struct {
	Name       string  `json:"name"`
	ID         TopicID `json:"id"`
	Partitions int32   `json:"partitions"`
	// Configs are the topic's config overrides (Kafka names, such as
	// retention.ms), not the defaults they override.
	Configs map[string]string `json:"configs,omitempty"`
}

// Partition returns the TopicPartition of partition p of t.
func (t *TopicMetadata) Partition(p int32) TopicPartition {
	return TopicPartition{Topic: t.Name, TopicID: t.ID, Partition: p}
}

// NewClusterMetadata returns a snapshot of topics taken at now, with the
// topics in the sorted order Validate requires. topics is copied (the
// config maps are shared).
func NewClusterMetadata(clusterID string, now time.Time, topics []TopicMetadata) *ClusterMetadata {
	ts := slices.Clone(topics)
	slices.SortFunc(ts, func(a, b TopicMetadata) int { return strings.Compare(a.Name, b.Name) })
	if len(ts) == 0 {
		ts = nil
	}
	return &ClusterMetadata{Version: MetadataVersion, ClusterID: clusterID, UpdatedAtMs: now.UnixMilli(), Topics: ts}
}

// Topic returns the topic called name, or false.
func (m *ClusterMetadata) Topic(name string) (TopicMetadata, bool) {
	i, ok := slices.BinarySearchFunc(m.Topics, name, func(t TopicMetadata, n string) int { return strings.Compare(t.Name, n) })
	if !ok {
		return TopicMetadata{}, false
	}
	return m.Topics[i], true
}

// Validate checks the invariants listed on ClusterMetadata. Errors match
// ErrInvalidMetadata and name the field and value.
func (m *ClusterMetadata) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidMetadata}, args...)...)
	}
	if m.Version != MetadataVersion {
		return bad("version %d is not %d", m.Version, MetadataVersion)
	}
	if err := validateClusterID(m.ClusterID); err != nil {
		return bad("clusterId %q: %v", clip(m.ClusterID), err)
	}
	if m.UpdatedAtMs < 0 {
		return bad("updatedAtMs %d is negative", m.UpdatedAtMs)
	}
	if len(m.Topics) > MaxTopics {
		return bad("%d topics, more than %d", len(m.Topics), MaxTopics)
	}
	ids := make(map[TopicID]int, len(m.Topics))
	for i := range m.Topics {
		t := &m.Topics[i]
		if err := ValidateTopicName(t.Name); err != nil {
			return bad("topics[%d].name: %v", i, err)
		}
		if i > 0 && t.Name <= m.Topics[i-1].Name {
			return bad("topics[%d].name %q is not after topics[%d].name %q (sorted, unique)", i, t.Name, i-1, m.Topics[i-1].Name)
		}
		if t.ID == (TopicID{}) {
			return bad("topics[%d] (%q).id is zero", i, t.Name)
		}
		if j, dup := ids[t.ID]; dup {
			return bad("topics[%d] (%q).id %s is also topics[%d]'s (%q)", i, t.Name, t.ID, j, m.Topics[j].Name)
		}
		ids[t.ID] = i
		if t.Partitions < 1 || t.Partitions > MaxPartitionsPerTopic {
			return bad("topics[%d] (%q).partitions %d is outside [1, %d]", i, t.Name, t.Partitions, MaxPartitionsPerTopic)
		}
		if len(t.Configs) > MaxConfigsPerTopic {
			return bad("topics[%d] (%q) has %d configs, more than %d", i, t.Name, len(t.Configs), MaxConfigsPerTopic)
		}
		for k, v := range t.Configs {
			if err := validateConfigName(k); err != nil {
				return bad("topics[%d] (%q).configs: name %q: %v", i, t.Name, clip(k), err)
			}
			if len(v) > MaxConfigValueBytes {
				return bad("topics[%d] (%q).configs[%q] is %d bytes, more than %d", i, t.Name, k, len(v), MaxConfigValueBytes)
			}
			if !utf8.ValidString(v) {
				return bad("topics[%d] (%q).configs[%q] is not valid UTF-8", i, t.Name, k)
			}
		}
	}
	return nil
}

func validateClusterID(id string) error {
	if id == "" || len(id) > MaxClusterIDBytes {
		return fmt.Errorf("length %d is outside [1, %d]", len(id), MaxClusterIDBytes)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("character %q is not printable ASCII", c)
		}
	}
	return nil
}

func validateConfigName(k string) error {
	if k == "" || len(k) > MaxConfigNameBytes {
		return fmt.Errorf("length %d is outside [1, %d]", len(k), MaxConfigNameBytes)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("character %q is not one of [a-zA-Z0-9._-]", c)
		}
	}
	return nil
}

// Encode validates m and returns its JSON encoding (compact, canonical:
// equal snapshots encode to equal bytes; an empty topic list is written
// as []).
func (m *ClusterMetadata) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	c := *m
	if c.Topics == nil {
		c.Topics = []TopicMetadata{}
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("tiering: encoding cluster metadata: %w", err)
	}
	if len(b) > MaxMetadataBytes {
		return nil, fmt.Errorf("%w: encodes to %d bytes, more than %d", ErrInvalidMetadata, len(b), MaxMetadataBytes)
	}
	return b, nil
}

// DecodeMetadata parses and validates an encoded snapshot, as strictly as
// DecodeManifest parses manifests: errors match ErrInvalidMetadata, and it
// never panics.
func DecodeMetadata(b []byte) (*ClusterMetadata, error) {
	if len(b) > MaxMetadataBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidMetadata, len(b), MaxMetadataBytes)
	}
	var m ClusterMetadata
	if err := decodeStrict(b, &m); err != nil {
		if v, ok := probeVersion(b); ok && v != MetadataVersion {
			return nil, fmt.Errorf("%w: unsupported version %d (this code reads %d)", ErrInvalidMetadata, v, MetadataVersion)
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidMetadata, err)
	}
	if len(m.Topics) == 0 {
		m.Topics = nil
	}
	for i := range m.Topics {
		if len(m.Topics[i].Configs) == 0 {
			m.Topics[i].Configs = nil
		}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// ReadMetadata returns the bucket's cluster metadata and its ETag (for
// WriteMetadata). A bucket without one fails with an error matching
// objectstore.ErrNotExist; a corrupt one with ErrInvalidMetadata.
func ReadMetadata(ctx context.Context, store objectstore.Store) (*ClusterMetadata, string, error) {
	m, etag, _, err := readMetadata(ctx, store)
	return m, etag, err
}

func readMetadata(ctx context.Context, store objectstore.Store) (*ClusterMetadata, string, []byte, error) {
	raw, info, err := readObject(ctx, store, MetadataKey, MaxMetadataBytes, ErrInvalidMetadata)
	if err != nil {
		return nil, "", nil, fmt.Errorf("tiering: reading cluster metadata: %w", err)
	}
	m, err := DecodeMetadata(raw)
	if err != nil {
		return nil, "", nil, fmt.Errorf("tiering: %q: %w", MetadataKey, err)
	}
	return m, info.ETag, raw, nil
}

// WriteMetadata stores m as the bucket's cluster metadata, replacing the
// snapshot read with ETag prevETag ("" if there was none), and returns
// the new ETag. It reads the stored snapshot first and refuses with
// ErrClusterMismatch if it belongs to another cluster id, and with
// ErrConflict if its ETag is not prevETag (someone wrote since the
// caller read: read again and merge). The write is PutIfAbsent /
// PutIfMatch where the store has them, so concurrent writers cannot
// overwrite each other (the loser gets ErrConflict); without them it is
// a plain Put after the check, and the last of two racing writers wins —
// acceptable for a snapshot that every change rewrites whole, and the
// reason the controller (later) is its only writer. A write whose reply
// is lost is recognised when the stored bytes equal m's encoding, as in
// ManifestStore.Commit. A stored snapshot that does not decode (corrupt,
// or written by a newer version of the format) is reported with
// ErrInvalidMetadata and never overwritten: replacing a newer format
// with an older one would lose what the newer version recorded.
func WriteMetadata(ctx context.Context, store objectstore.Store, prevETag string, m *ClusterMetadata) (string, error) {
	data, err := m.Encode()
	if err != nil {
		return "", err
	}
	cur, curETag, raw, err := readMetadata(ctx, store)
	switch {
	case errors.Is(err, objectstore.ErrNotExist):
		cur, curETag, raw = nil, "", nil
	case err != nil:
		return "", err
	}
	if curETag != "" && bytes.Equal(raw, data) {
		return curETag, nil
	}
	if cur != nil && cur.ClusterID != m.ClusterID {
		return "", fmt.Errorf("%w: %q holds cluster %q, this is cluster %q", ErrClusterMismatch, MetadataKey, cur.ClusterID, m.ClusterID)
	}
	if curETag != prevETag {
		return "", fmt.Errorf("%w: cluster metadata was read with ETag %q, it now has ETag %q", ErrConflict, prevETag, curETag)
	}
	caps := store.Capabilities()
	size := int64(len(data))
	var info objectstore.ObjectInfo
	switch {
	case curETag == "" && caps.PutIfAbsent:
		info, err = store.PutIfAbsent(ctx, MetadataKey, bytes.NewReader(data), size)
	case curETag != "" && caps.PutIfMatch:
		info, err = store.PutIfMatch(ctx, MetadataKey, curETag, bytes.NewReader(data), size)
	default:
		info, err = store.Put(ctx, MetadataKey, bytes.NewReader(data), size)
	}
	if err == nil {
		return info.ETag, nil
	}
	// Read back: the write may have landed with its reply lost.
	_, backETag, back, rerr := readMetadata(ctx, store)
	if rerr == nil && bytes.Equal(back, data) {
		return backETag, nil
	}
	if errors.Is(err, objectstore.ErrPreconditionFailed) {
		return "", fmt.Errorf("%w: a concurrent write of the cluster metadata got in first", ErrConflict)
	}
	return "", fmt.Errorf("tiering: writing cluster metadata: %w", err)
}
