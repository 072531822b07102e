package broker

// IncrementalAlterConfigs (key 44), versions 0–1.
//
// Operations on a topic's override set, applied in request order:
//   - SET (0): set the override (a null value is INVALID_REQUEST);
//   - DELETE (1): drop the override, returning the key to the broker default;
//   - APPEND (2) / SUBTRACT (3): for list-typed keys (cleanup.policy), add
//     or remove comma-separated items to or from the current effective
//     value; on other keys INVALID_CONFIG, as Kafka does.
//
// Every key must be a supported topic config (INVALID_CONFIG otherwise); a
// key named twice in one resource is INVALID_REQUEST; an unknown operation is
// INVALID_REQUEST. The resulting set is validated as a whole with
// topicconfig.Parse; validate_only changes nothing; otherwise the overrides
// are persisted and applied to the live partitions before the response.
// Resource checks (unknown topic, broker resources, duplicates) are those of
// AlterConfigs (33_alter_configs.go).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/topicconfig"
	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleIncrementalAlterConfigs(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.IncrementalAlterConfigsRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	dups := duplicateResources(len(req.Resources), func(i int) (kmsg.ConfigResourceType, string) {
		return req.Resources[i].ResourceType, req.Resources[i].ResourceName
	})
	for i, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		err := checkAlterResource(b, rr.ResourceType, rr.ResourceName, dups[i])
		if err == nil {
			err = checkIncrementalKeys(rr.Configs)
		}
		if err == nil {
			err = b.topics.alterConfig(rr.ResourceName, req.ValidateOnly, func(cur topicconfig.Config, overrides map[string]string) error {
				return applyIncrementalOps(cur, overrides, rr.Configs)
			})
		}
		sr.ErrorCode, sr.ErrorMessage = adminErrorCode(err)
		if sr.ErrorCode == kerr.UnknownServerError.Code {
			b.log.Error("incremental alter configs", "resource", rr.ResourceName, "err", err)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return wire.Completed(resp), nil
}

// checkIncrementalKeys refuses duplicate and unsupported keys.
func checkIncrementalKeys(ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) error {
	seen := map[string]bool{}
	for _, op := range ops {
		if seen[op.Name] {
			return newAdminError(kerr.InvalidRequest, "Error due to duplicate config keys: %s", op.Name)
		}
		seen[op.Name] = true
		if _, ok := topicconfig.Lookup(op.Name); !ok {
			return topicconfig.UnknownKeyError(op.Name, deref(op.Value))
		}
	}
	return nil
}

// applyIncrementalOps applies ops to overrides; cur is the topic's current
// effective config (the base APPEND and SUBTRACT work from when the key is
// not overridden).
func applyIncrementalOps(cur topicconfig.Config, overrides map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) error {
	for _, op := range ops {
		def, _ := topicconfig.Lookup(op.Name) // checkIncrementalKeys refused unknown keys
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if op.Value == nil {
				return newAdminError(kerr.InvalidRequest, "Null value not supported for : %s", op.Name)
			}
			overrides[op.Name] = *op.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(overrides, op.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if def.Type != kmsg.ConfigTypeList {
				verb := "append"
				if op.Op == kmsg.IncrementalAlterConfigOpSubtract {
					verb = "subtract"
				}
				return &topicconfig.Error{Key: op.Name, Value: deref(op.Value), Reason: "config value " + verb + " is not allowed for a config that is not a list"}
			}
			if op.Value == nil {
				return newAdminError(kerr.InvalidRequest, "Null value not supported for : %s", op.Name)
			}
			current, ok := overrides[op.Name]
			if !ok {
				current = def.Value(cur)
			}
			overrides[op.Name] = topicconfig.EditList(current, *op.Value, op.Op == kmsg.IncrementalAlterConfigOpAppend)
		default:
			return newAdminError(kerr.InvalidRequest, "Unknown config operation %d for %s.", op.Op, op.Name)
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}
