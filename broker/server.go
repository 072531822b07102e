package broker

// The accept loop and the broker's lifecycle: Serve, Shutdown, Addr,
// ClusterID. Connections themselves are in conn.go.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/stratalog/strata/internal/backoff"
)

// errBrokerClosed is returned by Serve once Shutdown has begun.
var errBrokerClosed = errors.New("broker: shut down")

// Serve accepts connections on ln and serves each until Shutdown. It may be
// called once. It returns nil after a Shutdown, and only once that Shutdown
// has finished (storage closed), so a main goroutine blocked in Serve does
// not exit while segments are still being flushed. Other accept errors are
// retried with backoff (EMFILE and friends are transient); a listener closed
// by someone else ends Serve with that error.
func (b *Broker) Serve(ln net.Listener) error {
	t := b.conns
	t.mu.Lock()
	switch {
	case t.mu.shutdown:
		t.mu.Unlock()
		ln.Close()
		return errBrokerClosed
	case t.mu.serving:
		t.mu.Unlock()
		return errors.New("broker: Serve called twice")
	}
	t.mu.serving = true
	b.ln = ln
	t.mu.Unlock()

	b.log.Info("serving the Kafka protocol", "addr", ln.Addr().String(), "cluster_id", b.clusterID, "node_id", b.cfg.NodeID)
	retry := backoff.Backoff{Min: 5 * time.Millisecond, Max: time.Second} // as net/http
	for {
		// max.connections: as in Kafka, at the limit the broker stops
		// accepting (new connections wait in the listen backlog) until a
		// connection closes.
		if !t.waitSlot(b.stopCtx, b.log) {
			<-b.done
			return nil
		}
		nc, err := ln.Accept()
		if err != nil {
			t.freeSlot()
			if t.stopping.Load() {
				<-b.done
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("broker: listener closed: %w", err)
			}
			// Transient (too many open files, …): log and retry.
			wait := retry.Next()
			b.log.Warn("accept failed; retrying", "err", err, "backoff", wait)
			time.Sleep(wait)
			continue
		}
		retry.Reset()
		b.serveConn(nc)
	}
}

// Shutdown stops the broker gracefully:
//  1. stop accepting (the listener is closed) and stop reading requests;
//  2. cancel request contexts, so that long-poll fetches answer now;
//  3. wait — bounded by ctx — until every request already read has been
//     handled and its response written, then close the connections; if ctx
//     ends first, the remaining connections are closed at once (their
//     handlers still run to completion before the next step);
//  4. stop the group coordinator's timer and loader, then close the topics (segments synced, clean-shutdown markers), the
//     committer and the producer-id allocator.
//
// It returns ctx.Err() if connections had to be cut, joined with any error
// from closing storage. Calling it again waits for the first call.
func (b *Broker) Shutdown(ctx context.Context) error {
	t := b.conns
	t.mu.Lock()
	first := !t.mu.shutdown
	t.mu.shutdown = true
	ln := b.ln
	t.mu.Unlock()
	if !first {
		select {
		case <-b.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	t.stopping.Store(true)
	if ln != nil {
		ln.Close()
	}
	conns := t.snapshot() // no connection is added after shutdown was set
	for _, c := range conns {
		c.stopReading()
	}
	b.stop()
	b.log.Info("shutting down: finishing in-flight requests", "connections", len(conns))

	var err error
	drained := make(chan struct{})
	go func() { t.wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
		err = ctx.Err()
		left := t.snapshot()
		b.log.Warn("shutdown: closing connections with requests in flight", "connections", len(left), "err", err)
		for _, c := range left {
			c.close()
		}
		<-drained
	}

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
	close(b.done)
	b.log.Info("shut down", "err", err)
	return err
}

// Addr is the address Serve listens on, or nil before Serve.
func (b *Broker) Addr() net.Addr {
	b.conns.mu.Lock()
	defer b.conns.mu.Unlock()
	if b.ln == nil {
		return nil
	}
	return b.ln.Addr()
}

// ClusterID is the cluster id stored in the data directory's
// meta.properties.
func (b *Broker) ClusterID() string { return b.clusterID }
