package broker

import "errors"

func handleCreateTopics(b *Broker, r *request) (*reply, error) {
	return nil, errors.New("not implemented")
}
