package broker

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/stratalog/strata/broker/replica"
	"github.com/stratalog/strata/broker/txn"
	"github.com/stratalog/strata/controller/rpc"
	"github.com/stratalog/strata/segments"
	"github.com/stratalog/strata/topicconfig"
)

// errRemoteStorage marks a failure of the remote tier (tiering.go,
// tiering_read.go): the object store down, the manifest not loaded, or
// corrupt bucket data. KAFKA_STORAGE_ERROR, which clients retry.
var errRemoteStorage = errors.New("remote storage unavailable")

// errorCode is the one translation from domain errors to Kafka error codes.
// nil maps to 0; anything unrecognised is UNKNOWN_SERVER_ERROR (and should
// be logged by the caller).
func errorCode(err error) int16 {
	var corrupt *segments.CorruptError
	var invalidConfig *topicconfig.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &invalidConfig):
		return kerr.InvalidConfig.Code
	case errors.Is(err, errRemoteStorage):
		// Before the corrupt case: damaged bucket data is a failure of
		// the remote storage, not a client's corrupt message.
		return kerr.KafkaStorageError.Code
	case errors.As(err, &corrupt):
		return kerr.CorruptMessage.Code
	case errors.Is(err, segments.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, segments.ErrRecordTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, segments.ErrInvalidTimestamp):
		return kerr.InvalidTimestamp.Code
	case errors.Is(err, segments.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, replica.ErrStorage),
		errors.Is(err, segments.ErrNotWritten): // ErrRollFailed too: retriable, nothing written
		return kerr.KafkaStorageError.Code
	case errors.Is(err, segments.ErrClosed), errors.Is(err, replica.ErrNotLeader):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, txn.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, txn.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, txn.ErrUnknownProducerID):
		return kerr.UnknownProducerID.Code
	default:
		// The controller's decisions (admin requests the Driver answered
		// in-process) map as on the controller listener; anything else is
		// UNKNOWN_SERVER_ERROR there too.
		return rpc.ErrorCode(err)
	}
}
