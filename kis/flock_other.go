//go:build !unix

package kis

import "os"

// tryLockFile is a no-op where flock is unavailable: the in-process lock
// still serialises issuance, sibling processes are not covered.
func tryLockFile(*os.File) (bool, error) { return true, nil }

func unlockFile(*os.File) {}
