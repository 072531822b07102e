package rpc

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/wire"
)

// APIs is the controller listener's table for wire.NewServer (which
// serves ApiVersions from it). Every handler answers with a deferred
// reply: it may wait for a commit, and the connection goes on reading
// meanwhile (replies still leave in request order).
func (s *Server) APIs() []wire.API {
	return []wire.API{
		{Key: kmsg.CreateTopics.Int16(), MinVersion: 0, MaxVersion: 7, Handle: deferred(s.log, s.createTopics)},
		{Key: kmsg.DeleteTopics.Int16(), MinVersion: 0, MaxVersion: 6, Handle: deferred(s.log, s.deleteTopics)},
		{Key: kmsg.AlterConfigs.Int16(), MinVersion: 0, MaxVersion: 2, Handle: deferred(s.log, s.alterConfigs)},
		{Key: kmsg.CreatePartitions.Int16(), MinVersion: 0, MaxVersion: 3, Handle: deferred(s.log, s.createPartitions)},
		{Key: kmsg.ElectLeaders.Int16(), MinVersion: 0, MaxVersion: 2, Handle: deferred(s.log, s.electLeaders)},
		{Key: kmsg.IncrementalAlterConfigs.Int16(), MinVersion: 0, MaxVersion: 1, Handle: deferred(s.log, s.incrementalAlterConfigs)},
		{Key: kmsg.BrokerRegistration.Int16(), MinVersion: 0, MaxVersion: 4, Handle: deferred(s.log, s.brokerRegistration)},
		{Key: kmsg.BrokerHeartbeat.Int16(), MinVersion: 0, MaxVersion: 2, Handle: deferred(s.log, s.brokerHeartbeat)},
		{Key: kmsg.AllocateProducerIDs.Int16(), MinVersion: 0, MaxVersion: 0, Handle: deferred(s.log, s.allocateProducerIDs)},
	}
}

// deferred adapts a handler to wire: it runs in its own goroutine and
// completes the reply when it returns. A panic is logged with its stack
// and leaves the reply empty, which closes that connection only.
func deferred[Req kmsg.Request](log *slog.Logger, fn func(ctx context.Context, c conn, req Req) kmsg.Response) wire.Handler {
	return func(r *wire.Request) (*wire.Reply, error) {
		req, ok := r.Body.(Req)
		if !ok {
			return nil, fmt.Errorf("controller: %s handler got a %T body", kmsg.NameForKey(r.Header.APIKey), r.Body)
		}
		done := make(chan struct{})
		rep := &wire.Reply{Done: done}
		go func() {
			defer close(done)
			defer func() {
				if p := recover(); p != nil {
					log.Error("controller: handler panicked", "api", kmsg.NameForKey(r.Header.APIKey), "version", r.Header.APIVersion,
						"client_id", r.Conn.ClientID(), "panic", p, "stack", string(debug.Stack()))
					rep.Msg = nil
				}
			}()
			rep.Msg = fn(r.Ctx, r.Conn, req)
		}()
		return rep, nil
	}
}
