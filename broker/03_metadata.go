package broker

import "errors"

func handleMetadata(b *Broker, r *request) (*reply, error) {
	return nil, errors.New("not implemented")
}
