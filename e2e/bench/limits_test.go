package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// limitWriteBytes is the size of one write(2) in the fsync-write limit:
	// 1 MiB, the size of the producer's batches.
	limitWriteBytes = 1 << 20
	// limitSyncEveryBytes: fsync after every 4 MiB written. At full speed a
	// group-commit round of the broker covers roughly one produce request's
	// worth of batches (a few MiB across the 6 partitions), so this is the
	// cadence the broker's committer can at best achieve on one disk.
	limitSyncEveryBytes = 4 << 20
	// sendfilePasses: the loopback copy sends the file this many times over
	// one connection, so the figure is not dominated by connection warm-up.
	sendfilePasses = 4
	// limitTrials: each limit is measured this many times and the best is
	// kept. The machine is shared (other processes, a virtual disk), and
	// interference only ever slows a trial down, so the best trial is the
	// closest to what the hardware can do.
	limitTrials = 3
)

// bestOf runs trial limitTrials times and returns the highest rate.
func bestOf(trial func() (float64, error)) (float64, error) {
	best := 0.0
	for range limitTrials {
		r, err := trial()
		if err != nil {
			return 0, err
		}
		best = max(best, r)
	}
	return best, nil
}

// measureFsyncWrite is the best of limitTrials runs of fsyncWriteTrial.
func measureFsyncWrite(dir string, size int64, pool []byte) (float64, error) {
	return bestOf(func() (float64, error) { return fsyncWriteTrial(dir, size, pool) })
}

// fsyncWriteTrial writes size bytes of incompressible data to a new file
// in dir, limitWriteBytes per write(2), with fdatasync(2) (what the broker's
// segments use) after every limitSyncEveryBytes and at the end, and returns
// the rate in MiB/s. dir should be on the disk that holds the broker's data
// directory. The file is removed afterwards.
func fsyncWriteTrial(dir string, size int64, pool []byte) (float64, error) {
	f, err := os.CreateTemp(dir, "limit-fsync-*.dat")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()

	start := time.Now()
	var written, unsynced int64
	for written < size {
		n := min(int64(limitWriteBytes), size-written)
		// A different window of the pool each time: no two blocks equal.
		off := (written / 7) % int64(len(pool)-limitWriteBytes)
		if _, err := f.Write(pool[off : off+n]); err != nil {
			return 0, err
		}
		written += n
		unsynced += n
		if unsynced >= limitSyncEveryBytes {
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				return 0, err
			}
			unsynced = 0
		}
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return 0, err
	}
	return mibPerSec(written, time.Since(start)), nil
}

const (
	// syncLatencyWriteBytes is the append to each file before its
	// fdatasync in one round: at 20,000 records/s of 1 KiB over 6
	// partitions, a commit round every few milliseconds finds about this
	// much new data per partition.
	syncLatencyWriteBytes = 16 << 10
	// syncLatencyRounds / syncLatencyBudget bound each latency limit test:
	// this many rounds, or fewer if the budget runs out.
	syncLatencyRounds = 1000
	syncLatencyBudget = 3 * time.Second
	// commitRoundWorkers: fdatasyncs in parallel in the 6-file round, as
	// broker/replica's committer does (maxSyncWorkers = 4 when written).
	commitRoundWorkers = 4
)

// measureSyncLatency times rounds of: append syncLatencyWriteBytes to each
// of files files on the data directory's disk, then fdatasync(2) them, at
// most workers at a time, and wait for all. With one file this is the floor
// under any acks=all produce latency on this disk; with 6 files and the
// committer's parallelism it is the floor of the broker's design, which
// keeps one log per partition and fsyncs each partition a round touched.
func measureSyncLatency(dir string, pool []byte, files, workers int) (*latencies, error) {
	fs := make([]*os.File, files)
	for i := range fs {
		f, err := os.CreateTemp(dir, "limit-synclat-*.dat")
		if err != nil {
			return nil, err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		fs[i] = f
	}
	lat := &latencies{}
	sem := make(chan struct{}, workers)
	errs := make(chan error, files)
	deadline := time.Now().Add(syncLatencyBudget)
	for i := 0; i < syncLatencyRounds && time.Now().Before(deadline); i++ {
		t0 := time.Now()
		for j, f := range fs {
			off := ((i*files + j) * 7919) % (len(pool) - syncLatencyWriteBytes)
			if _, err := f.Write(pool[off : off+syncLatencyWriteBytes]); err != nil {
				return nil, err
			}
			sem <- struct{}{}
			go func() {
				errs <- unix.Fdatasync(int(f.Fd()))
				<-sem
			}()
		}
		var err error
		for range fs {
			err = errors.Join(err, <-errs)
		}
		if err != nil {
			return nil, fmt.Errorf("fdatasync: %w", err)
		}
		lat.add(time.Since(t0))
	}
	return lat, nil
}

// measureSendfile measures the raw file-to-socket copy the broker's Fetch
// path relies on: a file of size bytes (written and fsynced first, so it is
// in the page cache and writeback does not interfere) is sent
// sendfilePasses times with sendfile(2) at explicit offsets to a TCP
// listener on 127.0.0.1 that drains with a 4 MiB read buffer. The rate is
// bytes received / time from the first sendfile to the last byte read; the
// best of limitTrials connections is returned.
func measureSendfile(dir string, size int64, pool []byte) (float64, error) {
	f, err := os.CreateTemp(dir, "limit-sendfile-*.dat")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	for written := int64(0); written < size; {
		n := min(int64(len(pool)), size-written)
		if _, err := f.Write(pool[:n]); err != nil {
			return 0, err
		}
		written += n
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return bestOf(func() (float64, error) { return sendfileTrial(f, size) })
}

// sendfileTrial sends f (size bytes) sendfilePasses times over one new
// loopback connection and returns the rate seen by the reader.
func sendfileTrial(f *os.File, size int64) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	type result struct {
		n   int64
		end time.Time
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		buf := make([]byte, 4<<20)
		var n int64
		for {
			k, err := c.Read(buf)
			n += int64(k)
			if errors.Is(err, io.EOF) {
				got <- result{n: n, end: time.Now()}
				return
			}
			if err != nil {
				got <- result{n: n, err: err}
				return
			}
		}
	}()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	tcp := conn.(*net.TCPConn)
	defer tcp.Close()
	raw, err := tcp.SyscallConn()
	if err != nil {
		return 0, err
	}
	inFd := int(f.Fd())
	start := time.Now()
	for range sendfilePasses {
		if err := sendfileAll(raw, inFd, size); err != nil {
			return 0, fmt.Errorf("sendfile: %w", err)
		}
	}
	if err := tcp.CloseWrite(); err != nil {
		return 0, err
	}
	r := <-got
	if r.err != nil {
		return 0, fmt.Errorf("loopback reader: %w", r.err)
	}
	if want := size * sendfilePasses; r.n != want {
		return 0, fmt.Errorf("loopback reader got %d bytes, want %d", r.n, want)
	}
	return mibPerSec(r.n, r.end.Sub(start)), nil
}

// sendfileAll sends bytes [0, size) of inFd to the socket behind raw with
// sendfile(2) and an explicit offset (the file position is never used),
// waiting in the runtime poller whenever the socket buffer is full.
func sendfileAll(raw syscall.RawConn, inFd int, size int64) error {
	var off int64
	var opErr error
	err := raw.Write(func(outFd uintptr) bool {
		for off < size {
			// Linux sends at most 0x7ffff000 bytes per call anyway.
			n, err := unix.Sendfile(int(outFd), inFd, &off, int(min(size-off, 1<<30)))
			if err == unix.EAGAIN {
				return false // wait until writable, then call us again
			}
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				opErr = err
				return true
			}
			if n == 0 {
				opErr = io.ErrUnexpectedEOF
				return true
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return opErr
}

// limitFileDir is where limit files go: next to the data directory, so on
// the same file system.
func limitFileDir(dataDir string) string { return filepath.Dir(dataDir) }
