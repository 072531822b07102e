package rpc

// AlterConfigs (key 33, v0–2) and IncrementalAlterConfigs (key 44, v0–1)
// for topic resources. AlterConfigs replaces a topic's whole override set
// (keys left out return to the default); IncrementalAlterConfigs applies
// SET, DELETE, APPEND and SUBTRACT in order (Machine.AlterTopicConfigs
// checks keys, operations and the resulting config). Here: a resource
// named twice is INVALID_REQUEST for each mention; an invalid topic name
// INVALID_TOPIC_EXCEPTION; a null value for SET (or any AlterConfigs key)
// INVALID_REQUEST. Broker resources are INVALID_REQUEST: Strata has no
// dynamic broker configs. Other resource types are INVALID_REQUEST.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/controller"
	"github.com/stratalog/strata/topicconfig"
)

func (s *Server) alterConfigs(ctx context.Context, _ conn, req *kmsg.AlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	changes := make([]controller.TopicConfigChange, len(req.Resources))
	errs := make([]error, len(req.Resources))
	for i, rr := range req.Resources {
		changes[i] = controller.TopicConfigChange{Topic: rr.ResourceName, Replace: true, ValidateOnly: req.ValidateOnly}
		for _, c := range rr.Configs {
			if c.Value == nil {
				errs[i] = refuse(kerr.InvalidRequest, "Null value not supported for : %s", c.Name)
				break
			}
			changes[i].Changes = append(changes[i].Changes, controller.ConfigChange{Key: c.Name, Op: controller.ConfigSet, Value: *c.Value})
		}
	}
	errs = s.alterTopicConfigs(ctx, changes, errs, func(i int) (kmsg.ConfigResourceType, string) {
		return req.Resources[i].ResourceType, req.Resources[i].ResourceName
	})
	for i, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		sr.ErrorCode, sr.ErrorMessage = errorOf(errs[i])
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

func (s *Server) incrementalAlterConfigs(ctx context.Context, _ conn, req *kmsg.IncrementalAlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	changes := make([]controller.TopicConfigChange, len(req.Resources))
	errs := make([]error, len(req.Resources))
	for i, rr := range req.Resources {
		changes[i] = controller.TopicConfigChange{Topic: rr.ResourceName, ValidateOnly: req.ValidateOnly}
		for _, c := range rr.Configs {
			ch := controller.ConfigChange{Key: c.Name, Op: controller.ConfigOp(c.Op)}
			switch {
			case c.Value != nil:
				ch.Value = *c.Value
			case c.Op != kmsg.IncrementalAlterConfigOpDelete:
				errs[i] = refuse(kerr.InvalidRequest, "Null value not supported for : %s", c.Name)
			}
			changes[i].Changes = append(changes[i].Changes, ch)
		}
	}
	errs = s.alterTopicConfigs(ctx, changes, errs, func(i int) (kmsg.ConfigResourceType, string) {
		return req.Resources[i].ResourceType, req.Resources[i].ResourceName
	})
	for i, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		sr.ErrorCode, sr.ErrorMessage = errorOf(errs[i])
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

// alterTopicConfigs checks each resource (at gives its type and name),
// asks the Driver for the topic resources that passed, and returns every
// resource's error; errs holds the errors already found in the requests.
func (s *Server) alterTopicConfigs(ctx context.Context, changes []controller.TopicConfigChange, errs []error, at func(i int) (kmsg.ConfigResourceType, string)) []error {
	type resource struct {
		typ  kmsg.ConfigResourceType
		name string
	}
	count := map[resource]int{}
	for i := range changes {
		t, name := at(i)
		count[resource{t, name}]++
	}
	var asks []controller.TopicConfigChange
	var askIdx []int
	for i := range changes {
		t, name := at(i)
		switch {
		case count[resource{t, name}] > 1:
			errs[i] = refuse(kerr.InvalidRequest, "Resource %s '%s' is named more than once in the request.", t, name)
		case errs[i] != nil:
		case t == kmsg.ConfigResourceTypeBroker:
			errs[i] = refuse(kerr.InvalidRequest, "Strata has no dynamic broker configs: set broker configs with flags, the YAML file or the environment and restart.")
		case t != kmsg.ConfigResourceTypeTopic:
			errs[i] = refuse(kerr.InvalidRequest, "Unsupported resource type %s for altering configs.", t)
		default:
			if err := topicconfig.ValidateTopicName(name); err != nil {
				errs[i] = refuse(kerr.InvalidTopicException, "%v", err)
				continue
			}
			asks = append(asks, changes[i])
			askIdx = append(askIdx, i)
		}
	}
	if len(asks) == 0 {
		return errs
	}
	results, err := s.d.AlterTopicConfigs(ctx, asks)
	for j, i := range askIdx {
		if err != nil {
			errs[i] = err
		} else {
			errs[i] = results[j].Err
		}
	}
	return errs
}
