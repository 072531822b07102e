package broker

import "errors"

// handleListOffsets is a stub; the real handler is being written (H5).
func handleListOffsets(b *Broker, r *request) (*reply, error) {
	return nil, errors.New("not implemented")
}
