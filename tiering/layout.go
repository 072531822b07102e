package tiering

// The bucket's key layout. This file is the only code in Strata that builds
// or parses object keys; everything else asks it. Keys are relative to the
// store, which applies its own URL prefix.
//
//	cluster/metadata.json                                  ClusterMetadata
//	topics/<topic>/<topic id>/<partition>/manifest.json    Manifest
//	topics/<topic>/<topic id>/<partition>/segments/<base>-<epoch>-<uid>.seg
//
// <topic id> is 32 lowercase hex digits, <partition> decimal without
// leading zeros, <base> the segment's base offset in 20 digits and <epoch>
// the uploader's leader epoch in 10 digits (zero-padded, as Kafka names its
// segment files, so keys sort by offset), <uid> 16 lowercase hex digits.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/stratalog/strata/segments"
)

// Layout constants. Exported so tools and tests can recognise the shapes;
// build keys with the functions below, never by hand.
const (
	// MetadataKey holds the cluster metadata snapshot.
	MetadataKey = "cluster/metadata.json"
	// TopicsPrefix begins every partition's keys.
	TopicsPrefix = "topics/"
	// manifestName is the manifest's name under the partition prefix.
	manifestName = "manifest.json"
	// segmentsDir is the directory of segment objects under the
	// partition prefix.
	segmentsDir = "segments/"
	// segmentSuffix ends every segment object's key.
	segmentSuffix = ".seg"
)

// MaxTopicNameBytes is Kafka's topic-name limit: 249 = 255 (a file name)
// minus room for "-<partition>" and Kafka's own suffixes.
const MaxTopicNameBytes = 249

// ErrInvalidKey: a key (or a part of one: topic, id, partition) that the
// layout does not produce.
var ErrInvalidKey = errors.New("tiering: not a key of the bucket layout")

// TopicID is a Kafka topic id (a UUID). In keys and JSON it is 32
// lowercase hex digits; Kafka's tools print the same 16 bytes as unpadded
// base64url. The zero id is Kafka's "no id" and is never valid here.
type TopicID [16]byte

// String returns the id as 32 lowercase hex digits.
func (id TopicID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText implements encoding.TextMarshaler (32 lowercase hex digits).
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts only what
// MarshalText produces.
func (id *TopicID) UnmarshalText(b []byte) error {
	v, err := ParseTopicID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseTopicID parses 32 lowercase hex digits. The zero id parses (so
// decoders can name the field that holds it); Validate rejects it.
func ParseTopicID(s string) (TopicID, error) {
	var id TopicID
	if !isLowerHex(s, 2*len(id)) {
		return id, fmt.Errorf("%w: topic id %q is not %d lowercase hex digits", ErrInvalidKey, clip(s), 2*len(id))
	}
	_, _ = hex.Decode(id[:], []byte(s))
	return id, nil
}

// UID makes a segment object's key unique: every upload attempt draws a
// fresh one (NewUID), so two uploads of the same segment — a retry, or a
// deposed leader's late upload — never write the same key. 64 random bits:
// with base offset and epoch also in the key, a collision would need two
// uploads of the same segment at the same epoch drawing the same value
// (probability 2^-64 per pair), and uploaders write segments with
// PutIfAbsent where the store has it, which turns even that into an error.
type UID [8]byte

// NewUID returns a fresh random, non-zero UID from crypto/rand (which
// never fails on supported platforms; Go 1.24+ crashes the program rather
// than return predictable bytes).
func NewUID() UID {
	var u UID
	for u == (UID{}) {
		_, _ = rand.Read(u[:])
	}
	return u
}

// String returns the UID as 16 lowercase hex digits.
func (u UID) String() string { return hex.EncodeToString(u[:]) }

// MarshalText implements encoding.TextMarshaler (16 lowercase hex digits).
func (u UID) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts only what
// MarshalText produces.
func (u *UID) UnmarshalText(b []byte) error {
	v, err := ParseUID(string(b))
	if err != nil {
		return err
	}
	*u = v
	return nil
}

// ParseUID parses 16 lowercase hex digits. The zero UID parses; Validate
// rejects it.
func ParseUID(s string) (UID, error) {
	var u UID
	if !isLowerHex(s, 2*len(u)) {
		return u, fmt.Errorf("%w: uid %q is not %d lowercase hex digits", ErrInvalidKey, clip(s), 2*len(u))
	}
	_, _ = hex.Decode(u[:], []byte(s))
	return u, nil
}

// TopicPartition names one partition of one incarnation of a topic: the
// topic id is part of every key, so a topic deleted and re-created under
// the same name never shares objects with its predecessor.
type TopicPartition struct {
	Topic     string
	TopicID   TopicID
	Partition int32
}

// String renders tp for messages: "name-partition (id)".
func (tp TopicPartition) String() string {
	return fmt.Sprintf("%s-%d (topic id %s)", tp.Topic, tp.Partition, tp.TopicID)
}

// Validate checks that tp can name keys: a Kafka-legal topic name (1–249
// characters of [a-zA-Z0-9._-], not "." or ".."; such names are safe as a
// key path segment and within a filesystem's 255-byte name limit), a
// non-zero topic id and a non-negative partition. Errors match
// ErrInvalidKey.
func (tp TopicPartition) Validate() error {
	if err := ValidateTopicName(tp.Topic); err != nil {
		return err
	}
	if tp.TopicID == (TopicID{}) {
		return fmt.Errorf("%w: topic %q has the zero topic id", ErrInvalidKey, tp.Topic)
	}
	if tp.Partition < 0 {
		return fmt.Errorf("%w: topic %q partition %d is negative", ErrInvalidKey, tp.Topic, tp.Partition)
	}
	return nil
}

// ValidateTopicName applies Kafka's topic-name rules (see
// TopicPartition.Validate). Errors match ErrInvalidKey.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty topic name", ErrInvalidKey)
	case name == "." || name == "..":
		return fmt.Errorf("%w: topic name %q", ErrInvalidKey, name)
	case len(name) > MaxTopicNameBytes:
		return fmt.Errorf("%w: topic name %q is %d bytes, more than %d", ErrInvalidKey, clip(name), len(name), MaxTopicNameBytes)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: topic name %q has character %q (allowed: ASCII letters, digits, '.', '_', '-')", ErrInvalidKey, clip(name), c)
		}
	}
	return nil
}

// mustValid panics on a TopicPartition that fails Validate. Key builders
// call it: every caller holds a validated partition (the store and the
// decoders check theirs), so an invalid one here is a bug, and a key built
// from it ("a/b" as a topic) would silently name the wrong object.
func (tp TopicPartition) mustValid() {
	if err := tp.Validate(); err != nil {
		panic(fmt.Sprintf("tiering: building a key for an invalid partition: %v", err))
	}
}

// TopicPrefix is the prefix of every key of every incarnation of topic,
// "topics/<topic>/". It panics if the name is invalid.
func TopicPrefix(topic string) string {
	if err := ValidateTopicName(topic); err != nil {
		panic(fmt.Sprintf("tiering: building a key for an invalid topic: %v", err))
	}
	return TopicsPrefix + topic + "/"
}

// PartitionPrefix is the prefix of every key of tp,
// "topics/<topic>/<topic id>/<partition>/". It panics if tp fails Validate.
func PartitionPrefix(tp TopicPartition) string {
	tp.mustValid()
	return TopicsPrefix + tp.Topic + "/" + tp.TopicID.String() + "/" + strconv.FormatInt(int64(tp.Partition), 10) + "/"
}

// ManifestKey is the key of tp's manifest. It panics if tp fails Validate.
func ManifestKey(tp TopicPartition) string { return PartitionPrefix(tp) + manifestName }

// SegmentsPrefix is the prefix of every segment object of tp. It panics
// if tp fails Validate.
func SegmentsPrefix(tp TopicPartition) string { return PartitionPrefix(tp) + segmentsDir }

// SegmentKey is the key of the segment object of tp with the given base
// offset, uploader's leader epoch and uid. It panics if tp fails Validate
// or base or epoch is negative (callers build keys from validated
// manifests and their own upload state, so either is a bug).
func SegmentKey(tp TopicPartition, base segments.Offset, epoch segments.LeaderEpoch, uid UID) string {
	if base < 0 || epoch < 0 {
		panic(fmt.Sprintf("tiering: segment key for %v with base offset %d, leader epoch %d", tp, base, epoch))
	}
	return fmt.Sprintf("%s%020d-%010d-%s%s", SegmentsPrefix(tp), int64(base), int32(epoch), uid, segmentSuffix)
}

// SegmentRef is what a segment object's key says about it.
type SegmentRef struct {
	TopicPartition
	BaseOffset  segments.Offset
	LeaderEpoch segments.LeaderEpoch // of the leader that uploaded it
	UID         UID
}

// Key returns the object key of r.
func (r SegmentRef) Key() string {
	return SegmentKey(r.TopicPartition, r.BaseOffset, r.LeaderEpoch, r.UID)
}

// ParseSegmentKey parses a key made by SegmentKey and nothing else: any
// other key — another layout's, a manifest, a temporary file, a key with
// upper-case hex or unpadded numbers — fails with ErrInvalidKey. Orphan
// cleanup relies on this to never delete what it does not understand.
func ParseSegmentKey(key string) (SegmentRef, error) {
	bad := func(why string) (SegmentRef, error) {
		return SegmentRef{}, fmt.Errorf("%w: %q is not a segment key: %s", ErrInvalidKey, clip(key), why)
	}
	tp, rest, err := parsePartitionPrefix(key)
	if err != nil {
		return SegmentRef{}, err
	}
	name, ok := strings.CutPrefix(rest, segmentsDir)
	if !ok {
		return bad("no " + segmentsDir + " after the partition")
	}
	name, ok = strings.CutSuffix(name, segmentSuffix)
	if !ok {
		return bad("no " + segmentSuffix + " suffix")
	}
	// <20 digits>-<10 digits>-<16 hex>
	const want = 20 + 1 + 10 + 1 + 16
	if len(name) != want || name[20] != '-' || name[31] != '-' {
		return bad("name is not <20-digit base offset>-<10-digit epoch>-<16 hex uid>")
	}
	base, err1 := parseDigits(name[:20])
	epoch, err2 := parseDigits(name[21:31])
	uid, err3 := ParseUID(name[32:])
	switch {
	case err1 != nil || base > maxOffset:
		return bad("base offset out of range")
	case err2 != nil || epoch > maxEpoch:
		return bad("leader epoch out of range")
	case err3 != nil:
		return bad("uid is not 16 lowercase hex digits")
	}
	return SegmentRef{TopicPartition: tp, BaseOffset: segments.Offset(base), LeaderEpoch: segments.LeaderEpoch(epoch), UID: uid}, nil
}

// ParseManifestKey returns the partition whose manifest key is key, or
// fails with ErrInvalidKey.
func ParseManifestKey(key string) (TopicPartition, error) {
	tp, rest, err := parsePartitionPrefix(key)
	if err != nil {
		return TopicPartition{}, err
	}
	if rest != manifestName {
		return TopicPartition{}, fmt.Errorf("%w: %q is not a manifest key", ErrInvalidKey, clip(key))
	}
	return tp, nil
}

const (
	maxOffset    = math.MaxInt64
	maxEpoch     = math.MaxInt32
	maxPartition = math.MaxInt32
)

// parsePartitionPrefix splits a key under TopicsPrefix into its partition
// and the rest. The prefix must be exactly as PartitionPrefix writes it.
func parsePartitionPrefix(key string) (TopicPartition, string, error) {
	bad := func(why string) (TopicPartition, string, error) {
		return TopicPartition{}, "", fmt.Errorf("%w: %q: %s", ErrInvalidKey, clip(key), why)
	}
	rest, ok := strings.CutPrefix(key, TopicsPrefix)
	if !ok {
		return bad("not under " + TopicsPrefix)
	}
	parts := strings.SplitN(rest, "/", 4)
	if len(parts) != 4 {
		return bad("want " + TopicsPrefix + "<topic>/<topic id>/<partition>/…")
	}
	var tp TopicPartition
	tp.Topic = parts[0]
	id, err := ParseTopicID(parts[1])
	if err != nil {
		return bad(err.Error())
	}
	tp.TopicID = id
	p, err := parseDigits(parts[2])
	if err != nil || p > maxPartition || strconv.FormatInt(p, 10) != parts[2] {
		return bad(fmt.Sprintf("partition %q is not a decimal int32 without leading zeros", clip(parts[2])))
	}
	tp.Partition = int32(p)
	if err := tp.Validate(); err != nil {
		return bad(err.Error())
	}
	return tp, parts[3], nil
}

// parseDigits parses a non-empty run of ASCII digits (no sign) into a
// non-negative int64.
func parseDigits(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not digits", s)
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// clip shortens s for an error message.
func clip(s string) string {
	const maxShown = 120
	if len(s) <= maxShown {
		return s
	}
	return s[:maxShown] + "…"
}
