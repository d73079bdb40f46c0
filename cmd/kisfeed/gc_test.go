package main

import (
	"math"
	"runtime/debug"
	"strings"
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

// TestTuneMemory: serve sets a soft memory limit of memLimit unless the
// user set GOMEMLIMIT. Not parallel: the limit is process-wide.
func TestTuneMemory(t *testing.T) {
	orig := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetMemoryLimit(orig) })

	tests := []struct {
		name    string
		environ []string
		want    int64
	}{
		{"unset", nil, memLimit},
		{"empty", []string{"GOMEMLIMIT="}, memLimit},
		{"set", []string{"GOMEMLIMIT=1GiB"}, math.MaxInt64}, // the runtime's, left alone
		{"off", []string{"GOMEMLIMIT=off"}, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			(&app{environ: tt.environ}).tuneMemory()
			if got := debug.SetMemoryLimit(-1); got != tt.want {
				t.Errorf("memory limit %d, want %d", got, tt.want)
			}
		})
	}
}

// TestMemoryHelp: serve --help states the memory limit and how to change
// it, and loadtest --help says it reports the target's memory.
func TestMemoryHelp(t *testing.T) {
	t.Parallel()
	a := &app{}
	for _, tc := range []struct {
		cmd  string
		want []string
	}{
		{"serve", []string{"soft memory limit of 128 MiB", "GOMEMLIMIT"}},
		{"loadtest", []string{"process_resident_memory_bytes"}},
	} {
		found := false
		for _, c := range newRootCmd(a).Commands() {
			if c.Name() != tc.cmd {
				continue
			}
			found = true
			for _, w := range tc.want {
				if !strings.Contains(c.Long, w) {
					t.Errorf("%s --help lacks %q", tc.cmd, w)
				}
			}
		}
		if !found {
			t.Errorf("no %s command", tc.cmd)
		}
	}
}
