package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/segments"
)

// framedResponse is a Fetch response body with record bytes taken from files. (stub)
type framedResponse struct{}

// newFramedFetch: see contract in CONTRACTS.md. (stub)
func newFramedFetch(version int16, resp *kmsg.FetchResponse, records [][][]segments.FileChunk, release func()) *framedResponse {
	return &framedResponse{}
}
