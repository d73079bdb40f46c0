//go:build !unix

package loadtest

import "syscall"

// setRcvBuf leaves the buffer alone where the unix call does not exist:
// slow consumers then fill the kernel's buffers before the server's queue.
func setRcvBuf(syscall.RawConn, int) error { return nil }
