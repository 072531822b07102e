package e2e

import (
	"strconv"
	"testing"
)

// TestKafkaJS: kafkajs (npm, e2e/js) creates a topic through its admin client, produces with acks
// -1 (plain and gzip batches) and reads the high watermarks with admin.fetchTopicOffsets; then
// franz-go reads every record back and checks it byte for byte.
func TestKafkaJS(t *testing.T) {
	node := requireKafkaJS(t)
	b := startStrata(t)
	const topic, tag, n = "kafkajs-roundtrip", "js", 5000
	out := runTool(t, nil, node, "e2e/js/roundtrip.js", b.Addr(), topic, strconv.Itoa(n), tag)
	t.Logf("roundtrip.js: %s", out)
	b.logRequestVersions(t)
	checkRecValues(t, topic, tag, n, b.consumeAll(t, topic))
}
