package emulator

import (
	"testing"

	"github.com/kisfeed/kisfeed/internal/wiretest"
)

// TestParseHMSSharedTable: the emulator reads HHMMSS exactly as kis does
// (the same table runs in kis/hhmmss_test.go); in particular 240000 and
// anything past it are rejected.
func TestParseHMSSharedTable(t *testing.T) {
	t.Parallel()
	wiretest.HHMMSS(t, parseHMS)
}
