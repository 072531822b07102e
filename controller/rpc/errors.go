package rpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/stratalog/strata/controller"
	"github.com/stratalog/strata/topicconfig"
	"github.com/stratalog/strata/wire"
)

// ErrorCode is errorCode, for a broker that calls the Driver in-process.
func ErrorCode(err error) int16 { return errorCode(err) }

// sentinelCodes maps each controller sentinel to its Kafka code (the
// codes errors.go of package controller names), both ways.
var sentinelCodes = []struct {
	err  error
	code *kerr.Error
}{
	{controller.ErrNotLeader, kerr.NotController},
	{controller.ErrLeadershipLost, kerr.NotController},
	{controller.ErrClosed, kerr.NotController},
	{controller.ErrInvalidRequest, kerr.InvalidRequest},
	{controller.ErrInvalidTopic, kerr.InvalidTopicException},
	{controller.ErrTopicExists, kerr.TopicAlreadyExists},
	{controller.ErrUnknownTopic, kerr.UnknownTopicOrPartition},
	{controller.ErrUnknownTopicID, kerr.UnknownTopicID},
	{controller.ErrInvalidPartitions, kerr.InvalidPartitions},
	{controller.ErrInvalidReplicationFactor, kerr.InvalidReplicationFactor},
	{controller.ErrInvalidReplicaAssignment, kerr.InvalidReplicaAssignment},
	{controller.ErrInvalidConfig, kerr.InvalidConfig},
	{controller.ErrPolicyViolation, kerr.PolicyViolation},
	{controller.ErrUnknownBroker, kerr.BrokerIDNotRegistered},
	{controller.ErrStaleBrokerEpoch, kerr.StaleBrokerEpoch},
	{controller.ErrDuplicateBrokerRegistration, kerr.DuplicateBrokerRegistration},
	{controller.ErrInvalidRegistration, kerr.InvalidRegistration},
	{controller.ErrInconsistentClusterID, kerr.InconsistentClusterID},
	{controller.ErrElectionNotNeeded, kerr.ElectionNotNeeded},
	{controller.ErrPreferredLeaderNotAvailable, kerr.PreferredLeaderNotAvailable},
}

// errorCode is the one translation from controller errors to Kafka error
// codes: each sentinel of package controller maps to the code its
// documentation names (sentinelCodes); a *topicconfig.Error is
// INVALID_CONFIG; a wait that ended (the batch may still commit) is
// REQUEST_TIMED_OUT, as Kafka's controller answers; nil maps to 0 and
// anything else (a refused batch, ErrBusy, ErrProducerIDsExhausted) to
// UNKNOWN_SERVER_ERROR. A batch whose fate is unknown is NOT_CONTROLLER
// or REQUEST_TIMED_OUT, which clients retry; the metadata log then
// settles whether it took effect.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var formErr *requestError
	if errors.As(err, &formErr) {
		return formErr.code.Code
	}
	for _, sc := range sentinelCodes {
		if errors.Is(err, sc.err) {
			return sc.code.Code
		}
	}
	var cfgErr *topicconfig.Error
	switch {
	case errors.As(err, &cfgErr):
		return kerr.InvalidConfig.Code
	case errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}

// ErrorFor is the inverse of errorCode, for an answer from the controller
// listener: the controller sentinel of code (errors.Is finds it), with
// msg as the error's text; a code with no sentinel keeps the code. Nil
// for code 0.
func ErrorFor(code int16, msg *string) error {
	if code == 0 {
		return nil
	}
	text := kerr.ErrorForCode(code).Error()
	if msg != nil && *msg != "" {
		text = *msg
	}
	for _, sc := range sentinelCodes {
		if sc.code.Code == code {
			return &answeredError{kind: sc.err, msg: text}
		}
	}
	kind, ok := kerr.ErrorForCode(code).(*kerr.Error)
	if !ok {
		kind = kerr.UnknownServerError
	}
	return &requestError{code: kind, msg: text}
}

// answeredError is a controller sentinel decoded from an answer.
type answeredError struct {
	kind error
	msg  string
}

func (e *answeredError) Error() string { return e.msg }
func (e *answeredError) Unwrap() error { return e.kind }

// errorOf returns err's code and its message, bounded
// (wire.ErrorMessage); nil message for success.
func errorOf(err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	return errorCode(err), wire.ErrorMessage(err.Error())
}

// requestError is an error in a request's form, found by a handler before
// the Driver is asked.
type requestError struct {
	code *kerr.Error
	msg  string
}

func (e *requestError) Error() string { return e.msg }

func refuse(code *kerr.Error, format string, args ...any) error {
	return &requestError{code: code, msg: fmt.Sprintf(format, args...)}
}
