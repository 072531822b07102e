package broker

import (
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

func init() { sendfileFunc = sendfileLinux }

// maxSendfileChunk bounds one sendfile call: Linux transfers at most
// 0x7ffff000 bytes per call anyway (MAX_RW_COUNT).
const maxSendfileChunk = 0x7ffff000

// sendfileLinux copies n bytes of file, starting at off, to the socket with
// sendfile(2). The offset is passed explicitly, so the file's shared
// position is never read or moved (many connections send from the same
// segment file at once). The socket is non-blocking: on EAGAIN the callback
// returns false and the runtime poller waits for writability (honouring the
// connection's write deadline) before calling it again; partial writes just
// loop. The file descriptor is used inside file.SyscallConn().Control so it
// cannot be closed underneath us, and Fd() (which would switch the file to
// blocking mode) is never called.
//
// It returns the bytes sent; fewer than n with a nil error never happens: a
// file shorter than off+n gives errShortChunk.
func sendfileLinux(sock syscall.RawConn, file *os.File, off, n int64) (int64, error) {
	frc, err := file.SyscallConn()
	if err != nil {
		return 0, err
	}
	var sent int64
	var serr error
	cerr := frc.Control(func(ffd uintptr) {
		werr := sock.Write(func(sfd uintptr) bool {
			for sent < n {
				chunk := n - sent
				if chunk > maxSendfileChunk {
					chunk = maxSendfileChunk
				}
				m, err := unix.Sendfile(int(sfd), int(ffd), &off, int(chunk))
				if m > 0 {
					sent += int64(m)
				}
				switch {
				case err == unix.EAGAIN:
					return false // wait until the socket is writable
				case err == unix.EINTR:
					continue
				case err != nil:
					serr = os.NewSyscallError("sendfile", err)
					return true
				case m == 0:
					serr = errShortChunk // EOF before n bytes
					return true
				}
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
	})
	if serr == nil {
		serr = cerr
	}
	if serr == nil && sent != n {
		serr = io.ErrShortWrite
	}
	return sent, serr
}
