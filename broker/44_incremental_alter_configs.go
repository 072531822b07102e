package broker

import "errors"

func handleIncrementalAlterConfigs(b *Broker, r *request) (*reply, error) {
	return nil, errors.New("not implemented")
}
