package group

import "unicode/utf16"

// PartitionFor is the __consumer_offsets partition that coordinates
// groupID, computed exactly as Kafka does:
// Utils.abs(groupId.hashCode()) % numPartitions, where String.hashCode is
// Java's (s[0]·31^(n−1) + … + s[n−1] over UTF-16 code units, in int32
// arithmetic that wraps) and Utils.abs maps math.MinInt32 to 0 rather than
// leaving it negative. numPartitions must be positive.
func PartitionFor(groupID string, numPartitions int32) int32 {
	if numPartitions <= 0 {
		panic("group: PartitionFor with a non-positive partition count")
	}
	return kafkaAbs(javaStringHash(groupID)) % numPartitions
}

func javaStringHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			h = 31*h + hi
			h = 31*h + lo
			continue
		}
		// Invalid UTF-8 decodes as U+FFFD here; Kafka receives strings
		// already decoded by Java, which does the same replacement.
		h = 31*h + r
	}
	return h
}

func kafkaAbs(n int32) int32 {
	if n == -1<<31 {
		return 0
	}
	if n < 0 {
		return -n
	}
	return n
}
