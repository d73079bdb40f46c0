package kis

import (
	"testing"
	"time"

	"github.com/kisfeed/kisfeed/internal/wiretest"
)

// TestParseClockSharedTable: kis reads HHMMSS exactly as the emulator
// does (the same table runs in emulator/hhmmss_test.go); in particular
// 240000 and anything past it are rejected.
func TestParseClockSharedTable(t *testing.T) {
	t.Parallel()
	wiretest.HHMMSS(t, func(s string) (time.Duration, bool) {
		d, err := parseClock(s)
		return d, err == nil
	})
}
