package broker

import "errors"

func handleDescribeConfigs(b *Broker, r *request) (*reply, error) {
	return nil, errors.New("not implemented")
}
