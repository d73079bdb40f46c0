package kis

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

// hhmmssCase is one row of ../testdata/hhmmss.json, the table the
// emulator's parseHMS runs too: the two sides cannot share a parser (the
// emulator never imports kis), so they share the cases.
type hhmmssCase struct {
	In   string `json:"in"`
	Want string `json:"want"` // a Go duration; "" = must be rejected
	Why  string `json:"why"`
}

// TestParseClockSharedTable: kis reads HHMMSS as the emulator does; in
// particular 240000 and anything past it are rejected.
func TestParseClockSharedTable(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../testdata/hhmmss.json")
	if err != nil {
		t.Fatal(err)
	}
	var table struct{ Cases []hhmmssCase }
	if err := json.Unmarshal(raw, &table); err != nil || len(table.Cases) == 0 {
		t.Fatalf("../testdata/hhmmss.json: %v (%d cases)", err, len(table.Cases))
	}
	for _, c := range table.Cases {
		got, err := parseClock(c.In)
		if c.Want == "" {
			if err == nil {
				t.Errorf("parseClock(%q) = %v, want an error (%s)", c.In, got, c.Why)
			}
			continue
		}
		want, perr := time.ParseDuration(c.Want)
		if perr != nil {
			t.Fatalf("table row %q: want %q: %v", c.In, c.Want, perr)
		}
		if err != nil || got != want {
			t.Errorf("parseClock(%q) = %v, %v; want %v", c.In, got, err, want)
		}
	}
}
