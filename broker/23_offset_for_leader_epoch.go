package broker

import "errors"

// handleOffsetForLeaderEpoch is a stub; the real handler is being written (H5).
func handleOffsetForLeaderEpoch(b *Broker, r *request) (*reply, error) {
	return nil, errors.New("not implemented")
}
