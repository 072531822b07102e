package wire

// ApiVersions (key 18), versions 0–4, served by every Server itself.
//
// The response lists every API in the server's table, ApiVersions included,
// with its version range; that table is also what dispatch accepts, so a
// server never advertises a version it cannot serve. v3+ requests carry
// ClientSoftwareName/Version, which we accept without validation; v3+
// responses carry SupportedFeatures and FinalizedFeatures, which are empty
// (FinalizedFeaturesEpoch -1): Strata has no feature flags yet.
// ThrottleMillis is always 0.
//
// A request above our maximum version cannot be decoded, but clients rely on
// getting an answer to it (KIP-511): the connection replies with a
// v0-format response carrying UNSUPPORTED_VERSION and our ApiVersions range
// (apiVersionsUnsupported below), and the client retries with a version we
// support. ApiVersions responses always use response header v0.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The ApiVersions versions a server serves.
const (
	apiVersionsMinVersion = 0
	apiVersionsMaxVersion = 4
)

// advertise returns the ApiKeys list of a server's responses for table,
// sorted by key. The list is shared read-only by every response: the writer
// only encodes it.
func advertise(table map[int16]*API) []kmsg.ApiVersionsResponseApiKey {
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(table))
	for _, a := range table {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.Key, a.MinVersion, a.MaxVersion
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b kmsg.ApiVersionsResponseApiKey) int { return int(a.ApiKey) - int(b.ApiKey) })
	return out
}

func (s *Server) handleAPIVersions(r *Request) (*Reply, error) {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(r.Header.APIVersion)
	resp.ApiKeys = s.advertised // read-only, shared: the writer only encodes it
	return Completed(resp), nil
}

// apiVersionsUnsupported is the answer to an ApiVersions request above our
// maximum version: v0 format, UNSUPPORTED_VERSION, and only our ApiVersions
// range (as Kafka does), so the client can pick a version and ask again.
func apiVersionsUnsupported(a *API) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MinVersion, k.MaxVersion = a.Key, a.MinVersion, a.MaxVersion
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{k}
	return resp
}
