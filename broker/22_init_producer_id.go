package broker

import "errors"

// handleInitProducerID is a stub; the real handler is being written (H5).
func handleInitProducerID(b *Broker, r *request) (*reply, error) {
	return nil, errors.New("not implemented")
}
