package wire

import "golang.org/x/sys/unix"

// arrived is how many bytes wait in the connection's socket receive queue
// (FIONREAD): bytes the peer has really sent, which a frame may take
// memory for at once (readFrame). 0 if it cannot tell.
func (c *Conn) arrived() int {
	if c.raw == nil {
		return 0
	}
	n := 0
	_ = c.raw.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ); err == nil && v > 0 {
			n = v
		}
	})
	return n
}
