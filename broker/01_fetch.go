package broker

import "errors"

// handleFetch is a stub; the real handler is being written (H5).
func handleFetch(b *Broker, r *request) (*reply, error) {
	return nil, errors.New("not implemented")
}
