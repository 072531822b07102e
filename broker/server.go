package broker

import (
	"context"
	"net"
)

// Serve accepts connections on ln until Shutdown. (stub; implementation follows)
func (b *Broker) Serve(ln net.Listener) error { b.ln = ln; <-b.stopCtx.Done(); return nil }

// Shutdown stops the broker. (stub)
func (b *Broker) Shutdown(ctx context.Context) error { b.stop(); return nil }

// Addr is the listener's address, or nil before Serve.
func (b *Broker) Addr() net.Addr {
	if b.ln == nil {
		return nil
	}
	return b.ln.Addr()
}

// ClusterID is the persisted cluster id.
func (b *Broker) ClusterID() string { return b.clusterID }
