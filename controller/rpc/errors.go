package rpc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/stratalog/strata/controller"
	"github.com/stratalog/strata/topicconfig"
)

// errorCode is the one translation from controller errors to Kafka error
// codes: each sentinel of package controller maps to the code its
// documentation names. nil maps to 0; anything unrecognised (a refused
// batch) is UNKNOWN_SERVER_ERROR. A batch whose fate is unknown is
// NOT_CONTROLLER or REQUEST_TIMED_OUT, which clients retry; the metadata
// log then settles whether it took effect.
func errorCode(err error) int16 {
	var cfgErr *topicconfig.Error
	var formErr *requestError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &formErr):
		return formErr.code.Code
	case errors.Is(err, controller.ErrNotLeader), errors.Is(err, controller.ErrLeadershipLost), errors.Is(err, controller.ErrClosed):
		return kerr.NotController.Code
	case errors.Is(err, controller.ErrInvalidRequest):
		return kerr.InvalidRequest.Code
	case errors.Is(err, controller.ErrInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, controller.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, controller.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, controller.ErrUnknownTopicID):
		return kerr.UnknownTopicID.Code
	case errors.Is(err, controller.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, controller.ErrInvalidReplicationFactor):
		return kerr.InvalidReplicationFactor.Code
	case errors.Is(err, controller.ErrInvalidReplicaAssignment):
		return kerr.InvalidReplicaAssignment.Code
	case errors.Is(err, controller.ErrInvalidConfig), errors.As(err, &cfgErr):
		return kerr.InvalidConfig.Code
	case errors.Is(err, controller.ErrPolicyViolation):
		return kerr.PolicyViolation.Code
	case errors.Is(err, controller.ErrUnknownBroker):
		return kerr.BrokerIDNotRegistered.Code
	case errors.Is(err, controller.ErrStaleBrokerEpoch):
		return kerr.StaleBrokerEpoch.Code
	case errors.Is(err, controller.ErrDuplicateBrokerRegistration):
		return kerr.DuplicateBrokerRegistration.Code
	case errors.Is(err, controller.ErrInvalidRegistration):
		return kerr.InvalidRegistration.Code
	case errors.Is(err, controller.ErrInconsistentClusterID):
		return kerr.InconsistentClusterID.Code
	case errors.Is(err, controller.ErrElectionNotNeeded):
		return kerr.ElectionNotNeeded.Code
	case errors.Is(err, controller.ErrPreferredLeaderNotAvailable):
		return kerr.PreferredLeaderNotAvailable.Code
	case errors.Is(err, context.DeadlineExceeded):
		// The batch was not known to be committed in time; it may still
		// be (Kafka's controller answers the same).
		return kerr.RequestTimedOut.Code
	default: // metadata.ErrRefused, controller.ErrBusy, ErrProducerIDsExhausted, …
		return kerr.UnknownServerError.Code
	}
}

// maxErrorMessageBytes bounds response error messages: non-flexible
// versions carry strings with an int16 length, and a message may quote
// request content.
const maxErrorMessageBytes = 1024

// errorOf returns err's code and message (nil message for success).
func errorOf(err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	msg := err.Error()
	if len(msg) > maxErrorMessageBytes {
		msg = strings.ToValidUTF8(msg[:maxErrorMessageBytes-len("…")], "") + "…"
	}
	return errorCode(err), &msg
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
