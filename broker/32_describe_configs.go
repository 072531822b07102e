package broker

// DescribeConfigs (key 32), versions 0–4.
//
// Topic resources list every supported topic key (or those named in the
// request; unknown names are skipped, as Kafka does) with its effective
// value and source: DYNAMIC_TOPIC_CONFIG for a per-topic override,
// STATIC_BROKER_CONFIG when the broker's configured default differs from
// Kafka's, else DEFAULT_CONFIG. Nothing is read-only; is_default (v0) is
// source == DEFAULT_CONFIG. With include_synonyms (v1+) each entry carries
// Kafka's synonym chain, most specific first: the override, the broker's
// static default under its broker name (log.retention.ms …), Kafka's
// default. config_type (v3+) is always set; documentation (v3+) only when
// include_documentation is set, else null.
//
// The broker resource named by this node id lists the broker-level keys
// (node.id, listeners, num.partitions, auto.create.topics.enable, the topic
// defaults under their broker names …) as read-only STATIC_BROKER_CONFIG:
// Strata has no dynamic broker configs. The empty name (Kafka's "cluster-wide
// dynamic defaults") therefore lists nothing; another broker id is
// INVALID_REQUEST. Other resource types are INVALID_REQUEST.

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/topicconfig"
	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleDescribeConfigs(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.DescribeConfigsRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	v := req.Version
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	synonyms := v >= 1 && req.IncludeSynonyms
	docs := v >= 3 && req.IncludeDocumentation

	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		sr.Configs = []kmsg.DescribeConfigsResponseResourceConfig{}
		var entries []kmsg.DescribeConfigsResponseResourceConfig
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			entries, err = b.describeTopicConfigs(rr.ResourceName, synonyms)
		case kmsg.ConfigResourceTypeBroker:
			entries, err = b.describeBrokerConfigs(rr.ResourceName, synonyms)
		default:
			err = newAdminError(kerr.InvalidRequest, "Unsupported resource type %s for DescribeConfigs.", rr.ResourceType)
		}
		if err != nil {
			sr.ErrorCode, sr.ErrorMessage = adminErrorCode(err)
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		for _, e := range entries {
			if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, e.Name) {
				continue
			}
			if !docs {
				e.Documentation = nil
			}
			sr.Configs = append(sr.Configs, e)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return wire.Completed(resp), nil
}

func (b *Broker) describeTopicConfigs(name string, synonyms bool) ([]kmsg.DescribeConfigsResponseResourceConfig, error) {
	if err := validateTopicName(name); err != nil {
		return nil, err
	}
	t := b.topics.get(name)
	if t == nil {
		return nil, newAdminError(kerr.UnknownTopicOrPartition, "Topic '%s' does not exist.", name)
	}
	return b.topicConfigEntries(t, synonyms), nil
}

// topicConfigEntries describes every supported key of t, sorted by name,
// with documentation filled in (callers drop it when not requested).
func (b *Broker) topicConfigEntries(t *topic, synonyms bool) []kmsg.DescribeConfigsResponseResourceConfig {
	defaults := b.topicDefaults()
	kafka := topicconfig.Default()
	defs := topicconfig.Defs()
	out := make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(defs))
	for _, d := range defs {
		value := d.Value(t.config)
		if d.Internal && value == "" {
			continue // a test-only key is listed only while set
		}
		e := kmsg.NewDescribeConfigsResponseResourceConfig()
		e.Name = d.Key
		e.Value = strPtr(value)
		e.ConfigType = d.Type
		e.Documentation = strPtr(d.Doc)

		override, overridden := t.overrides[d.Key]
		brokerValue, kafkaValue := d.Value(defaults), d.Value(kafka)
		switch {
		case overridden:
			e.Source = kmsg.ConfigSourceDynamicTopicConfig
		case brokerValue != kafkaValue:
			e.Source = kmsg.ConfigSourceStaticBrokerConfig
		default:
			e.Source = kmsg.ConfigSourceDefaultConfig
		}
		e.IsDefault = e.Source == kmsg.ConfigSourceDefaultConfig
		if synonyms {
			if overridden {
				e.ConfigSynonyms = append(e.ConfigSynonyms, configSynonym(d.Key, override, kmsg.ConfigSourceDynamicTopicConfig))
			}
			if brokerValue != kafkaValue {
				e.ConfigSynonyms = append(e.ConfigSynonyms, configSynonym(d.BrokerKey, brokerValue, kmsg.ConfigSourceStaticBrokerConfig))
			}
			e.ConfigSynonyms = append(e.ConfigSynonyms, configSynonym(d.BrokerKey, kafkaValue, kmsg.ConfigSourceDefaultConfig))
		}
		out = append(out, e)
	}
	return out
}

func (b *Broker) describeBrokerConfigs(name string, synonyms bool) ([]kmsg.DescribeConfigsResponseResourceConfig, error) {
	if name == "" {
		return nil, nil // no dynamic cluster-wide defaults in Strata
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return nil, newAdminError(kerr.InvalidRequest, "Broker id must be an integer, but it is: %s", name)
	}
	if int32(id) != b.cfg.NodeID {
		return nil, newAdminError(kerr.InvalidRequest, "Unexpected broker id, expected %d or empty string, but received %s", b.cfg.NodeID, name)
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, bc := range b.brokerConfigs() {
		e := kmsg.NewDescribeConfigsResponseResourceConfig()
		e.Name = bc.name
		e.Value = strPtr(bc.value)
		e.ReadOnly = true
		e.Source = kmsg.ConfigSourceStaticBrokerConfig
		e.ConfigType = bc.typ
		e.Documentation = strPtr(bc.doc)
		if synonyms {
			e.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{
				configSynonym(bc.name, bc.value, kmsg.ConfigSourceStaticBrokerConfig),
			}
		}
		out = append(out, e)
	}
	return out, nil
}

type brokerConfig struct {
	name, value string
	typ         kmsg.ConfigType
	doc         string
}

// brokerConfigs lists the broker-level configuration as Kafka names it,
// the topic defaults under their broker-level names included.
func (b *Broker) brokerConfigs() []brokerConfig {
	c := &b.cfg
	host, port := b.advertisedHostPort()
	rf := c.DefaultReplicationFactor
	if rf <= 0 {
		rf = 1
	}
	interval := c.RetentionCheckInterval
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	out := []brokerConfig{
		{"advertised.listeners", "PLAINTEXT://" + host + ":" + itoa(int64(port)), kmsg.ConfigTypeString, "The address clients are told to connect to."},
		{"auto.create.topics.enable", strconv.FormatBool(c.AutoCreateTopics), kmsg.ConfigTypeBoolean, "Create a topic when Metadata names an unknown one and allows auto-creation."},
		{"broker.id", itoa(int64(c.NodeID)), kmsg.ConfigTypeInt, "Synonym of node.id."},
		{"connections.max.idle.ms", itoa(c.ConnectionsMaxIdle.Milliseconds()), kmsg.ConfigTypeLong, "Idle connections are closed after this long."},
		{"default.replication.factor", itoa(int64(rf)), kmsg.ConfigTypeInt, "The replication factor of topics created with -1 or auto-created."},
		{"listeners", "PLAINTEXT://" + c.Listen, kmsg.ConfigTypeString, "The address the broker listens on."},
		{"log.dirs", c.DataDir, kmsg.ConfigTypeString, "The data directory."},
		{"log.retention.check.interval.ms", itoa(interval.Milliseconds()), kmsg.ConfigTypeLong, "How often retention is applied to every partition."},
		{"max.incremental.fetch.session.cache.slots", itoa(int64(c.MaxIncrementalFetchSessions)), kmsg.ConfigTypeInt, "The maximum number of incremental fetch sessions."},
		{"node.id", itoa(int64(c.NodeID)), kmsg.ConfigTypeInt, "This broker's id."},
		{"num.partitions", itoa(int64(b.defaultNumPartitions())), kmsg.ConfigTypeInt, "The partition count of auto-created topics and of topics created with -1."},
		{"queued.max.requests", itoa(int64(c.MaxInFlightPerConnection)), kmsg.ConfigTypeInt, "The maximum number of requests in flight per connection."},
		{"socket.request.max.bytes", itoa(int64(c.SocketRequestMaxBytes)), kmsg.ConfigTypeInt, "The largest request accepted."},
		{"queued.max.request.bytes", itoa(c.QueuedMaxRequestBytes), kmsg.ConfigTypeLong, "Request bytes held in memory by all connections together; -1 is unlimited."},
	}
	defaults := b.topicDefaults()
	for _, d := range topicconfig.Defs() {
		value := d.Value(defaults)
		if d.Internal && value == "" {
			continue
		}
		out = append(out, brokerConfig{d.BrokerKey, value, d.Type, "Default for topic config " + d.Key + ": " + d.Doc})
	}
	slices.SortFunc(out, func(a, b brokerConfig) int { return strings.Compare(a.name, b.name) })
	return out
}

func configSynonym(name, value string, src kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	s.Name, s.Value, s.Source = name, strPtr(value), src
	return s
}

func strPtr(s string) *string { return &s }
