package config

import (
	"errors"
	"strings"
	"testing"
)

// The limits that keep a broker within its file handles: max.broker.partitions
// (KIP-578's name) and Kafka 4.0's 1 MiB minimum of segment.bytes, also for
// __consumer_offsets; internal.segment.bytes (tests only) goes below it.
func TestPartitionAndSegmentLimits(t *testing.T) {
	c := mustLoad(t, nil, env{})
	if c.MaxBrokerPartitions != 10000 || c.Broker("", nil).MaxBrokerPartitions != 10000 {
		t.Fatalf("max.broker.partitions default %d", c.MaxBrokerPartitions)
	}
	c = mustLoad(t, []string{"--max.broker.partitions=6", "--internal.segment.bytes=400"}, env{})
	bc := c.Broker("", nil)
	if bc.MaxBrokerPartitions != 6 || bc.TopicDefaults.LogConfig().SegmentBytes != 400 {
		t.Fatalf("max.broker.partitions %d, roll size %d", bc.MaxBrokerPartitions, bc.TopicDefaults.LogConfig().SegmentBytes)
	}
	for _, tc := range []struct {
		args      []string
		key, want string
	}{
		{[]string{"--segment.bytes=65536"}, "segment.bytes", "at least 1048576"},
		{[]string{"--offsets.topic.segment.bytes=65536"}, "offsets.topic.segment.bytes", "between 1048576"},
		{[]string{"--max.broker.partitions=0"}, "max.broker.partitions", "between 1"},
		{[]string{"--internal.segment.bytes=13"}, "internal.segment.bytes", "at least 14"},
	} {
		_, err := load(t, tc.args, env{})
		var ve *ValueError
		if !errors.As(err, &ve) || ve.Key != tc.key || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error for %s saying %q", tc.args, err, tc.key, tc.want)
		}
	}
}
