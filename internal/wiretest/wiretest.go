// Package wiretest holds the test tables both sides of the KIS wire run:
// the kis client and the emulator each keep their own parsers (the
// emulator never imports kis, so a misread spec cannot hide on both
// sides at once), and these tables keep the two readings the same.
// Only tests import it.
package wiretest

import (
	_ "embed"
	"encoding/json"
	"testing"
	"time"
)

//go:embed hhmmss.json
var hhmmssJSON []byte

// HHMMSSCase is one row of hhmmss.json.
type HHMMSSCase struct {
	In   string `json:"in"`
	Want string `json:"want"` // a Go duration after midnight; "" = must be rejected
	Why  string `json:"why"`  // why a rejected input is rejected
}

// HHMMSSCases returns the shared HHMMSS table.
func HHMMSSCases() ([]HHMMSSCase, error) {
	var table struct{ Cases []HHMMSSCase }
	if err := json.Unmarshal(hhmmssJSON, &table); err != nil {
		return nil, err
	}
	return table.Cases, nil
}

// HHMMSS runs parse, a side's HHMMSS parser (ok false = rejected),
// against every row of the shared table.
func HHMMSS(t testing.TB, parse func(string) (time.Duration, bool)) {
	t.Helper()
	cases, err := HHMMSSCases()
	if err != nil || len(cases) == 0 {
		t.Fatalf("wiretest: hhmmss.json: %v (%d cases)", err, len(cases))
	}
	for _, c := range cases {
		got, ok := parse(c.In)
		if c.Want == "" {
			if ok {
				t.Errorf("parse(%q) = %v, want rejected (%s)", c.In, got, c.Why)
			}
			continue
		}
		want, err := time.ParseDuration(c.Want)
		if err != nil {
			t.Fatalf("wiretest: hhmmss.json row %q: want %q: %v", c.In, c.Want, err)
		}
		if !ok || got != want {
			t.Errorf("parse(%q) = %v, %v; want %v, true", c.In, got, ok, want)
		}
	}
}
