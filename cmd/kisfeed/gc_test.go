package main

import (
	"runtime/debug"
	"testing"
)

// TestTuneGC: serve and loadtest raise GOGC to gcPercent unless the user set
// GOGC. Not parallel: the GC percent is process-wide.
func TestTuneGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })

	(&app{}).tuneGC()
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("without GOGC: GC percent %d, want %d", got, gcPercent)
	}
	(&app{environ: []string{"GOGC=50"}}).tuneGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC=50 set: GC percent changed to %d, want it left alone", got)
	}
}
