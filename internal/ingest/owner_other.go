//go:build !unix

package ingest

// processGone cannot probe a process without unix signals: the run keeps
// the lease rule.
func processGone(int, string) bool { return false }
