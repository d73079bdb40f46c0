//go:build unix

package ingest

import (
	"errors"
	"syscall"
)

// processGone reports whether process pid (> 0) is gone: no process has
// the pid (ESRCH), or /proc shows it a zombie or one started at another
// time than start (when start is known). EPERM (a process of another
// user) is alive.
func processGone(pid int, start string) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	state, now, ok := procStat(pid)
	if !ok {
		return false
	}
	// A zombie has exited (killed, not yet reaped by its parent); X is
	// a process being torn down.
	if state == 'Z' || state == 'X' {
		return true
	}
	return start != "" && now != start
}
