package broker

import "errors"

// handleProduce is a stub; the real handler is being written (H5).
func handleProduce(b *Broker, r *request) (*reply, error) {
	return nil, errors.New("not implemented")
}
