package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/kisfeed/kisfeed"
)

// TestServeStreamCodes: serve in embedded mode with STREAM_CODES starts
// the stream over the cache and reports it in its own registry: the
// codes' registrations (trade and book each) on key1 at /metrics as soon
// as it listens; shutdown closes it.
func TestServeStreamCodes(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	a := &app{
		environ: []string{"LOG_LEVEL=warn", "STREAM_CODES=005930,000660", "KISFEED_MARKET_TIME=2026-11-25 10:00",
			"KIS_TOKEN_FILE=" + t.TempDir() + "/tokens.json"},
		stdin: strings.NewReader(""), stderr: &stderr, clock: kisfeed.NewClock(nil, nil),
	}
	base, stop := startServe(t, a, "--access-log=false")
	code, body := httpGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	// Two codes' trades and books: 4 registrations over the built-in
	// emulator's demo keys (a code's kinds on one key).
	total := 0
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, `kisfeed_stream_registrations{key="`); ok {
			var n int
			if _, err := fmt.Sscanf(v[strings.Index(v, " ")+1:], "%d", &n); err == nil {
				total += n
			}
		}
	}
	if total != 4 {
		t.Errorf("/metrics: kisfeed_stream_registrations sum %d, want 4", total)
	}
	if err := stop(); err != nil {
		t.Errorf("serve: %v (stderr %s)", err, stderr.String())
	}
}
