package broker

// DefaultTopicConfig returns Kafka's topic defaults.
func DefaultTopicConfig() TopicConfig { return TopicConfig{} }

// ParseTopicConfig applies kv on top of base.
func ParseTopicConfig(base TopicConfig, kv map[string]string) (TopicConfig, error) {
	return base, nil
}

// TopicConfigKeys lists the supported topic config keys.
func TopicConfigKeys() []string { return nil }

// TopicConfigEntries renders c as key → value.
func TopicConfigEntries(c TopicConfig) map[string]string { return nil }
