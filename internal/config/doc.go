// Package config builds the validated configuration of `strata serve`.
//
// What belongs here: the table of every knob the server accepts (its key,
// default, help text and parser), the layering of the four sources, and
// validation. What does not: the meaning of the knobs (the broker,
// topicconfig and the segments layer own that) and topic-config parsing,
// which is delegated to topicconfig.Parse so the server's topic defaults and
// per-topic overrides (CreateTopics, AlterConfigs) are validated by the same
// code.
//
// Every knob has one key, used three ways:
//
//	flag      --num.partitions=3   --data-dir=/var/lib/strata
//	YAML      num.partitions: 3    data-dir: /var/lib/strata   (file named by --config)
//	env       STRATA_NUM_PARTITIONS=3  STRATA_DATA_DIR=/var/lib/strata
//
// The environment name is STRATA_ followed by the key upper-cased with
// dots and dashes turned into underscores. Precedence is flag > env >
// YAML > default, decided per key.
//
// Invariants: Load either returns a Config in which every field is valid,
// or an error that names the offending key, the value and where the value
// came from; defaults go through the same parsers as user values (a test
// checks they parse). Load has no side effects besides reading the YAML
// file, and is safe to call concurrently (the knob table is immutable).
package config
