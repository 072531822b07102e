package broker

// loadOrCreateClusterID (stub)
func loadOrCreateClusterID(dataDir string) (string, error) { return "AAAAAAAAAAAAAAAAAAAAAA", nil }
