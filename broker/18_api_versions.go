package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// handleAPIVersions (stub)
func handleAPIVersions(b *Broker, r *request) (*reply, error) {
	return completed(kmsg.NewPtrApiVersionsResponse()), nil
}
