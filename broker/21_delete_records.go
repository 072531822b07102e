package broker

import "errors"

func handleDeleteRecords(b *Broker, r *request) (*reply, error) {
	return nil, errors.New("not implemented")
}
