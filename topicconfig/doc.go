// Package topicconfig holds Kafka's topic-level configuration as Strata
// implements it: the names, defaults, parsing and validation of topic
// configs, and what a config means for a partition's log.
//
// What belongs here: Config (a topic's effective configuration) and
// Default (Kafka's defaults); Parse, which applies key/value overrides on
// top of a base config; Keys, Entries and the definition table (Defs,
// Lookup: each key's type, broker-level synonym and documentation); Error,
// the one error type for an unknown key (UnknownKeyError) or an invalid
// value; APPEND and SUBTRACT on a list value (EditList); the rewrite of
// overrides persisted by older releases (MigrateLegacySegmentBytes); the
// projections of a config onto the log (LogConfig for package segments,
// Tiered, Compact); and Kafka's topic-name rules (ValidateTopicName, and
// NormalizeTopicName for names that collide), one copy for the broker and
// the controller. Both the server's broker-level defaults
// (internal/config) and per-topic overrides (CreateTopics, AlterConfigs)
// go through Parse, so they are validated by the same code.
//
// What does not: Kafka error codes (the broker's errors.go maps Error to
// INVALID_CONFIG), the framing of DescribeConfigs responses (config sources
// and synonym chains are built by broker/32_describe_configs.go from Defs),
// where overrides are stored, and the broker's own adjustments (forcing
// remote.storage.enable off without an object store, refusing to turn
// tiering off for a tiered topic). The package imports only segments and
// franz-go's kmsg (for Kafka's config types), so the broker and the
// controller can both use it.
//
// Parsing follows Kafka's ConfigDef: surrounding white space is trimmed,
// numbers are decimal, enumerations are case-sensitive, and each key's
// minimum is Kafka's (segment.bytes ≥ 1 MiB, as Kafka 4.0). Keys Strata
// does not implement are rejected, as Kafka rejects unknown keys, so a
// topic never silently runs with a setting that has no effect. Entries
// renders durations in milliseconds, as Kafka prints them, and Parse
// accepts what Entries renders.
//
// Everything here is pure and safe for concurrent use: the definition
// table is never modified, and Defs and Lookup return copies.
package topicconfig
