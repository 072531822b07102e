package topicconfig

import "github.com/twmb/franz-go/pkg/kmsg"

// Entry is one key of a topic's effective configuration and where its
// value comes from, as DescribeConfigs and CreateTopics (v5+) answer it.
type Entry struct {
	Def
	Value  string
	Source kmsg.ConfigSource
	// Synonyms is Kafka's synonym chain, most specific first: the topic's
	// override, the brokers' default under its broker-level name when it
	// differs from Kafka's, and Kafka's default.
	Synonyms []Synonym
}

// Synonym is one link of an Entry's synonym chain.
type Synonym struct {
	Key, Value string
	Source     kmsg.ConfigSource
}

// Describe lists every supported key of a topic, sorted by key: its
// effective value (effective is the topic's config: brokerDefaults with
// overrides parsed onto it), and its source: DYNAMIC_TOPIC_CONFIG for an
// override, STATIC_BROKER_CONFIG where the brokers' default differs from
// Kafka's, else DEFAULT_CONFIG. A test-only key is listed only while set.
func Describe(effective Config, overrides map[string]string, brokerDefaults Config) []Entry {
	kafka := Default()
	out := make([]Entry, 0, len(defs))
	for _, d := range defs {
		value := d.Value(effective)
		if d.Internal && value == "" {
			continue
		}
		e := Entry{Def: d, Value: value}
		override, overridden := overrides[d.Key]
		brokerValue, kafkaValue := d.Value(brokerDefaults), d.Value(kafka)
		switch {
		case overridden:
			e.Source = kmsg.ConfigSourceDynamicTopicConfig
		case brokerValue != kafkaValue:
			e.Source = kmsg.ConfigSourceStaticBrokerConfig
		default:
			e.Source = kmsg.ConfigSourceDefaultConfig
		}
		if overridden {
			e.Synonyms = append(e.Synonyms, Synonym{d.Key, override, kmsg.ConfigSourceDynamicTopicConfig})
		}
		if brokerValue != kafkaValue {
			e.Synonyms = append(e.Synonyms, Synonym{d.BrokerKey, brokerValue, kmsg.ConfigSourceStaticBrokerConfig})
		}
		e.Synonyms = append(e.Synonyms, Synonym{d.BrokerKey, kafkaValue, kmsg.ConfigSourceDefaultConfig})
		out = append(out, e)
	}
	return out
}
