package broker

// clientConn is one client connection. (stub)
type clientConn struct {
	remote   string
	clientID string
}

// connTracker tracks open connections. (stub)
type connTracker struct{}

func newConnTracker() *connTracker { return &connTracker{} }
