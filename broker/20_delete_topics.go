package broker

// DeleteTopics (key 20), versions 0–6.
//
// v0–v5 name topics; v6 names each by name or by id (both set:
// INVALID_REQUEST). An unknown name is UNKNOWN_TOPIC_OR_PARTITION, an
// unknown id UNKNOWN_TOPIC_ID; a topic given twice is INVALID_REQUEST for
// each mention, as Kafka's controller does. Deletion is synchronous: the
// topic leaves topics.json and the registry first (so no new request finds
// it), then its partition directories are removed. Responses carry the name
// and (v6) the id of what was deleted; error messages from v5.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/wire"
)

func (b *Broker) handleDeleteTopics(r *wire.Request) (*wire.Reply, error) {
	req, ok := r.Body.(*kmsg.DeleteTopicsRequest)
	if !ok {
		return nil, errUnexpectedBody(r)
	}
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)

	// Normalise both request shapes to (name, id) pairs.
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for _, n := range req.TopicNames {
			targets = append(targets, target{name: &n})
		}
	}

	// Resolve each target to a topic before deleting anything, so that
	// duplicates (by name or by id) are found across both forms.
	type resolved struct {
		st  kmsg.DeleteTopicsResponseTopic
		t   *topic
		err error
	}
	res := make([]resolved, len(targets))
	mentions := map[[16]byte]int{}
	for i, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		var t *topic
		var err error
		switch {
		case tg.name != nil && tg.id != ([16]byte{}):
			err = newAdminError(kerr.InvalidRequest, "You may not specify both topic name and topic id.")
		case tg.name != nil:
			if t = b.topics.get(*tg.name); t == nil {
				err = newAdminError(kerr.UnknownTopicOrPartition, "This server does not host topic '%s'.", *tg.name)
			}
		default:
			if t = b.topics.getByID(tg.id); t == nil {
				err = newAdminError(kerr.UnknownTopicID, "This server does not host a topic with id %s.", topicIDString(tg.id))
			}
		}
		if t != nil {
			name := t.name
			st.Topic, st.TopicID = &name, t.id
			mentions[t.id]++
		}
		res[i] = resolved{st, t, err}
	}

	for i := range res {
		rs := &res[i]
		if rs.err == nil && mentions[rs.t.id] > 1 {
			rs.err = newAdminError(kerr.InvalidRequest, "Topic '%s' is named more than once in the request.", rs.t.name)
		}
		if rs.err == nil {
			rs.err = b.topics.deleteTopic(rs.t)
		}
		if rs.err != nil {
			rs.st.ErrorCode, rs.st.ErrorMessage = adminErrorCode(rs.err)
			if rs.st.ErrorCode == kerr.UnknownServerError.Code {
				b.log.Error("delete topic", "topic", deref(rs.st.Topic), "err", rs.err)
			}
		}
		if req.Version < 6 {
			rs.st.TopicID = [16]byte{}
		}
		resp.Topics = append(resp.Topics, rs.st)
	}
	return wire.Completed(resp), nil
}
