package e2e

import (
	"strconv"
	"testing"
)

var pyCodecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// pyCount records per codec: enough for many batches per partition with linger and compression,
// small enough that the pure-Python client stays quick.
const pyCount = 5000

// TestKafkaPython: kafka-python (Debian python3-kafka, /usr/bin/python3) produces with a batching
// producer (linger_ms, batch_size) in every codec and consumes by assigned partitions without a
// group; the script checks byte-exact values and offsets, then franz-go reads the same topics
// and checks them again.
func TestKafkaPython(t *testing.T) {
	requirePythonModules(t, "kafka", "snappy", "lz4.frame", "zstandard")
	b := startStrata(t)
	for _, c := range pyCodecs {
		b.createTopic(t, "kafka-python-"+c, 3, nil)
	}
	out := runTool(t, nil, debianPython, "e2e/py/kafka_python_roundtrip.py",
		"--bootstrap", b.Addr(), "--topic-prefix", "kafka-python", "--count", strconv.Itoa(pyCount))
	t.Logf("kafka_python_roundtrip.py: %s", out)
	b.logRequestVersions(t)
	for _, c := range pyCodecs {
		topic := "kafka-python-" + c
		checkRecValues(t, topic, "kp-"+c, pyCount, b.consumeAll(t, topic))
	}
}

// TestConfluentKafkaPython: confluent-kafka-python (Debian python3-confluent-kafka, librdkafka)
// produces with compression.type in every codec and consumes with assign() at explicit offsets;
// franz-go then checks the topics too.
func TestConfluentKafkaPython(t *testing.T) {
	requirePythonModules(t, "confluent_kafka")
	b := startStrata(t)
	for _, c := range pyCodecs {
		b.createTopic(t, "confluent-"+c, 3, nil)
	}
	out := runTool(t, nil, debianPython, "e2e/py/confluent_roundtrip.py",
		"--bootstrap", b.Addr(), "--topic-prefix", "confluent", "--count", strconv.Itoa(pyCount))
	t.Logf("confluent_roundtrip.py: %s", out)
	b.logRequestVersions(t)
	for _, c := range pyCodecs {
		topic := "confluent-" + c
		checkRecValues(t, topic, "ck-"+c, pyCount, b.consumeAll(t, topic))
	}
}
