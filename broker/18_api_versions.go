package broker

// ApiVersions (key 18), versions 0–4.
//
// The response lists every API in the apis table with its version range;
// that table is also what dispatch accepts, so we never advertise a version
// we cannot serve. v3+ requests carry ClientSoftwareName/Version, which we
// accept without validation; v3+ responses carry SupportedFeatures and
// FinalizedFeatures, which are empty (FinalizedFeaturesEpoch -1): Strata has
// no feature flags yet. ThrottleMillis is always 0.
//
// A request above our maximum version cannot be decoded, but clients rely on
// getting an answer to it (KIP-511): the connection layer replies with a
// v0-format response carrying UNSUPPORTED_VERSION and our ApiVersions range
// (apiVersionsUnsupported below), and the client retries with a version we
// support. ApiVersions responses always use response header v0.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// advertisedAPIs is the ApiKeys list of our responses, sorted by key. It is
// filled in init rather than by an initializer: apis refers to
// handleAPIVersions, which would make an initializer an initialisation
// cycle.
var advertisedAPIs []kmsg.ApiVersionsResponseApiKey

func init() {
	for _, a := range apis {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.minVersion, a.maxVersion
		advertisedAPIs = append(advertisedAPIs, k)
	}
	slices.SortFunc(advertisedAPIs, func(a, b kmsg.ApiVersionsResponseApiKey) int { return int(a.ApiKey) - int(b.ApiKey) })
}

func handleAPIVersions(b *Broker, r *request) (*reply, error) {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(r.header.APIVersion)
	resp.ApiKeys = advertisedAPIs // read-only, shared: the writer only encodes it
	return completed(resp), nil
}

// apiVersionsUnsupported is the answer to an ApiVersions request above our
// maximum version: v0 format, UNSUPPORTED_VERSION, and only our ApiVersions
// range (as Kafka does), so the client can pick a version and ask again.
func apiVersionsUnsupported(a *api) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.minVersion, a.maxVersion
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{k}
	return resp
}
