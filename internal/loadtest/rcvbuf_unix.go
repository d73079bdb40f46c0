//go:build unix

package loadtest

import "syscall"

// setRcvBuf sets a socket's receive buffer before it connects, so that
// the TCP window scale is chosen for the small buffer (set after the
// handshake, a small buffer leaves the window stuck and a later read
// crawls at one segment per persist timer).
func setRcvBuf(c syscall.RawConn, n int) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
	})
	if err != nil {
		return err
	}
	return serr
}
