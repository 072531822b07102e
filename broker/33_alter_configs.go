package broker

import "errors"

func handleAlterConfigs(b *Broker, r *request) (*reply, error) {
	return nil, errors.New("not implemented")
}
