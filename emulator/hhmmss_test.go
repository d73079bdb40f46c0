package emulator

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

// hhmmssCase is one row of ../testdata/hhmmss.json, the table the kis
// client's parseClock runs too: the two sides cannot share a parser (the
// emulator never imports kis), so they share the cases.
type hhmmssCase struct {
	In   string `json:"in"`
	Want string `json:"want"` // a Go duration; "" = must be rejected
	Why  string `json:"why"`
}

// TestParseHMSSharedTable: the emulator reads HHMMSS as kis does; in
// particular 240000 and anything past it are rejected.
func TestParseHMSSharedTable(t *testing.T) {
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
		got, ok := parseHMS(c.In)
		if c.Want == "" {
			if ok {
				t.Errorf("parseHMS(%q) = %v, want rejected (%s)", c.In, got, c.Why)
			}
			continue
		}
		want, perr := time.ParseDuration(c.Want)
		if perr != nil {
			t.Fatalf("table row %q: want %q: %v", c.In, c.Want, perr)
		}
		if !ok || got != want {
			t.Errorf("parseHMS(%q) = %v, %v; want %v", c.In, got, ok, want)
		}
	}
}
