package broker

import "errors"

func handleDeleteTopics(b *Broker, r *request) (*reply, error) {
	return nil, errors.New("not implemented")
}
