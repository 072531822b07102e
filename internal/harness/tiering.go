package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u.String(), err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s\n%s", u.String(), resp.Status, body)
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
