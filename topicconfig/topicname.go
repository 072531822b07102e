package topicconfig

// Kafka's rules for topic names, which the broker (Metadata,
// DescribeConfigs, topics found on disk) and the controller (CreateTopics)
// both apply.

import (
	"errors"
	"fmt"
	"strings"
)

// MaxTopicNameLen is Kafka's limit: 249 = 255 (a file name) less room for
// "-<partition>" and Kafka's ".deleted"-style suffixes.
const MaxTopicNameLen = 249

// ValidateTopicName applies Kafka's rules (Topic.validate): 1–249
// characters of [a-zA-Z0-9._-], and not "." or "..". The error says
// "illegal", as Kafka's does, and names the rule broken (and the name, cut
// short); it is a plain error, not an *Error (an invalid name is
// INVALID_TOPIC_EXCEPTION, not INVALID_CONFIG), for the caller to wrap.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("the topic name is illegal: it is empty")
	case name == "." || name == "..":
		return fmt.Errorf("the topic name %q is illegal", name)
	case len(name) > MaxTopicNameLen:
		return fmt.Errorf("the topic name %.40q… is illegal: it is %d characters long, at most %d are allowed", name, len(name), MaxTopicNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("the topic name %q is illegal: it has a character other than ASCII letters, digits, '.', '_' and '-'", name)
		}
	}
	return nil
}

// NormalizeTopicName is name with '.' read as '_'. Two different names
// whose normalized forms are equal collide: Kafka's metric names replace
// '.' with '_', so it refuses a topic that collides with an existing one.
func NormalizeTopicName(name string) string { return strings.ReplaceAll(name, ".", "_") }
