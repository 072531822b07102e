package broker

import "errors"

func handleDescribeCluster(b *Broker, r *request) (*reply, error) {
	return nil, errors.New("not implemented")
}
