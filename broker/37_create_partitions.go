package broker

import "errors"

func handleCreatePartitions(b *Broker, r *request) (*reply, error) {
	return nil, errors.New("not implemented")
}
