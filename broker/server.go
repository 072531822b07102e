package broker

// The broker's lifecycle: Serve, Shutdown, Addr, ClusterID. The listener and
// its connections are a wire.Server (package wire).

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// Serve accepts connections on ln and serves each until Shutdown. It may be
// called once. It returns nil after a Shutdown, and only once that Shutdown
// has finished (storage closed), so a main goroutine blocked in Serve does
// not exit while segments are still being flushed. Accept errors are
// retried with backoff (EMFILE and friends are transient); a listener
// closed by someone else ends Serve with that error, and Serve after
// Shutdown returns wire.ErrServerClosed.
func (b *Broker) Serve(ln net.Listener) error {
	if err := b.srv.Serve(ln); err != nil {
		return err
	}
	<-b.done
	return nil
}

// Shutdown stops the broker gracefully:
//  1. stop accepting (the listener is closed) and stop reading requests;
//  2. cancel request contexts, so that long-poll fetches and waiting
//     JoinGroup/SyncGroup requests answer now;
//  3. wait — bounded by ctx — until every request already read has been
//     handled and its response written, then close the connections; if ctx
//     ends first, the remaining connections are closed at once (their
//     handlers still run to completion before the next step);
//  4. stop the group coordinator's timer and loader, then close the topics
//     (segments synced, clean-shutdown markers), the committer and the
//     producer-id allocator.
//
// Steps 1–3 are the wire server's Shutdown. It returns ctx.Err() if
// connections had to be cut, joined with any error from closing storage.
// Calling it again waits for the first call.
func (b *Broker) Shutdown(ctx context.Context) error {
	if b.shuttingDown.Swap(true) {
		select {
		case <-b.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := b.srv.Shutdown(ctx)
	err = errors.Join(err, b.closeStorage())
	close(b.done)
	b.log.Info("shut down", "err", err)
	return err
}

// closeStorage is Shutdown's step 4, and leaves the metadata quorum.
// Tests that run handlers without a listener call it directly.
func (b *Broker) closeStorage() (err error) {
	if b.partitionGauges != nil {
		_ = b.partitionGauges.Unregister()
	}
	b.cleaner.close() // aborts a pass in progress; before the partitions close
	if b.groups != nil {
		b.groups.close() // before the partitions it appends to close
	}
	if b.tier != nil {
		b.tier.metrics.close()
		// Stops uploads and remote reads before the partitions close.
		if cerr := b.tier.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close tiered storage: %w", cerr))
		}
	}
	if b.topics != nil {
		if cerr := b.topics.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close topics: %w", cerr))
		}
	}
	if b.committer != nil {
		b.committer.Close()
	}
	if b.producers != nil {
		if cerr := b.producers.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close producer ids: %w", cerr))
		}
	}
	if cerr := b.leaveCluster(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("leave the metadata quorum: %w", cerr))
	}
	return err
}

// Addr is the address Serve listens on, or nil before Serve.
func (b *Broker) Addr() net.Addr { return b.srv.Addr() }

// ClusterID is the cluster id stored in the data directory's
// meta.properties.
func (b *Broker) ClusterID() string { return b.clusterID }
