package broker

// AlterConfigs (key 33), versions 0–2.
//
// For a topic resource the request's config list replaces the topic's whole
// override set (keys left out return to the broker default), as Kafka's
// legacy AlterConfigs does. The new set is validated with topicconfig.Parse
// (INVALID_CONFIG naming key and value); a null value or a key given twice
// is INVALID_REQUEST. validate_only checks and changes nothing. Otherwise the
// overrides are persisted in topics.json and applied to the live partitions
// (Partition.SetLogConfig) before the response.
//
// Errors: an invalid topic name is INVALID_TOPIC_EXCEPTION, an unknown one
// UNKNOWN_TOPIC_OR_PARTITION; a resource named twice is INVALID_REQUEST for
// each mention. Broker resources are INVALID_REQUEST, with a message: Strata
// has no dynamic broker configs (Kafka answers INVALID_REQUEST for static
// configs it "cannot update dynamically"). Other resource types are
// INVALID_REQUEST too.

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/topicconfig"
	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleAlterConfigs(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.AlterConfigsRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	dups := duplicateResources(len(req.Resources), func(i int) (kmsg.ConfigResourceType, string) {
		return req.Resources[i].ResourceType, req.Resources[i].ResourceName
	})
	for i, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		err := checkAlterResource(b, rr.ResourceType, rr.ResourceName, dups[i])
		if err == nil {
			err = b.topics.alterConfig(rr.ResourceName, req.ValidateOnly, func(_ topicconfig.Config, overrides map[string]string) error {
				clear(overrides)
				for _, c := range rr.Configs {
					if c.Value == nil {
						return newAdminError(kerr.InvalidRequest, "Null value not supported for : %s", c.Name)
					}
					if _, dup := overrides[c.Name]; dup {
						return newAdminError(kerr.InvalidRequest, "Error due to duplicate config keys: %s", c.Name)
					}
					overrides[c.Name] = *c.Value
				}
				return nil
			})
		}
		sr.ErrorCode, sr.ErrorMessage = adminErrorCode(err)
		if sr.ErrorCode == kerr.UnknownServerError.Code {
			b.log.Error("alter configs", "resource", rr.ResourceName, "err", err)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return wire.Completed(resp), nil
}

// duplicateResources marks resources named more than once in a request.
func duplicateResources(n int, at func(i int) (kmsg.ConfigResourceType, string)) []bool {
	type key struct {
		t    kmsg.ConfigResourceType
		name string
	}
	count := map[key]int{}
	for i := 0; i < n; i++ {
		t, name := at(i)
		count[key{t, name}]++
	}
	dups := make([]bool, n)
	for i := 0; i < n; i++ {
		t, name := at(i)
		dups[i] = count[key{t, name}] > 1
	}
	return dups
}

// checkAlterResource accepts only an existing topic named once.
func checkAlterResource(b *Broker, typ kmsg.ConfigResourceType, name string, dup bool) error {
	if dup {
		return newAdminError(kerr.InvalidRequest, "Resource %s '%s' is named more than once in the request.", typ, name)
	}
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if err := validateTopicName(name); err != nil {
			return err
		}
		if b.topics.get(name) == nil {
			return newAdminError(kerr.UnknownTopicOrPartition, "Topic '%s' does not exist.", name)
		}
		return nil
	case kmsg.ConfigResourceTypeBroker:
		if name != "" && name != strconv.Itoa(int(b.cfg.NodeID)) {
			return newAdminError(kerr.InvalidRequest, "Unexpected broker id, expected %d or empty string, but received %s", b.cfg.NodeID, name)
		}
		return newAdminError(kerr.InvalidRequest, "Strata has no dynamic broker configs: set broker configs with flags, the YAML file or the environment and restart.")
	default:
		return newAdminError(kerr.InvalidRequest, "Unsupported resource type %s for altering configs.", typ)
	}
}
