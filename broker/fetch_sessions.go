package broker

// fetchSessionCache holds incremental fetch sessions (KIP-227). Stub.
type fetchSessionCache struct {
	max int
}

// newFetchSessionCache returns a cache holding at most max sessions.
func newFetchSessionCache(max int) *fetchSessionCache {
	return &fetchSessionCache{max: max}
}
