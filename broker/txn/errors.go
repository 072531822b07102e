package txn

import "errors"

// Sentinel errors of the idempotent-producer checks; the broker maps each
// to its Kafka error code.
var (
	ErrOutOfOrderSequence   = errors.New("txn: out of order sequence number") // OUT_OF_ORDER_SEQUENCE_NUMBER
	ErrInvalidProducerEpoch = errors.New("txn: stale producer epoch")         // INVALID_PRODUCER_EPOCH
	ErrUnknownProducerID    = errors.New("txn: unknown producer id")          // UNKNOWN_PRODUCER_ID
)
