package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/stratalog/strata/broker"
)

// TieringStatus returns the partitions of topic (every topic if "") as the
// broker at httpAddr (its http-listen address) reports them on
// GET broker.TieringStatusPath.
func TieringStatus(ctx context.Context, httpAddr, topic string) ([]broker.TieringPartitionStatus, error) {
	u := url.URL{Scheme: "http", Host: httpAddr, Path: broker.TieringStatusPath}
	if topic != "" {
		u.RawQuery = url.Values{"topic": {topic}}.Encode()
	}
	body, err := httpGet(ctx, u.String())
	if err != nil {
		return nil, err
	}
	var reply broker.TieringStatusReply
	if err := json.Unmarshal(body, &reply); err != nil {
		return nil, fmt.Errorf("GET %s: %w in %q", u.String(), err, body)
	}
	return reply.Partitions, nil
}

// TieringStatus is the package function for this broker.
func (b *Broker) TieringStatus(ctx context.Context, topic string) ([]broker.TieringPartitionStatus, error) {
	return TieringStatus(ctx, b.httpAddr, topic)
}
