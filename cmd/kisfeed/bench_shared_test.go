package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kisfeed/kisfeed/emulator"
	"github.com/kisfeed/kisfeed/emulator/emulatortest"
)

func TestBenchShared(t *testing.T) {
	emu, base := emulatortest.Start(t, emulator.WithRate(18))
	environ := []string{
		"ENABLE_KIS_API=true", "KIS_BASE_URL=" + base, "KIS_USE_REAL_SERVER=true",
		"KIS_APP_KEY=bench-key", "KIS_APP_SECRET=bench-secret", "KIS_RATE_LIMIT=18",
		"KIS_TOKEN_FILE=" + filepath.Join(t.TempDir(), "tokens.json"), "LOG_LEVEL=warn",
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"bench", "shared", "--duration", "1s", "--workers", "4", "--json"},
		environ, strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code: got %d, want 0; stderr: %s", code, stderr.String())
	}
	var res sharedResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("output: %v\n%s", err, stdout.String())
	}
	st := emu.Stats()
	if res.Calls == 0 || res.Errors != 0 {
		t.Errorf("calls: got %d with %d errors, want some and none (first error %q)", res.Calls, res.Errors, res.FirstError)
	}
	if res.TokensIssued != 1 || st.TokensIssued != 1 {
		t.Errorf("tokens: bench says %d, emulator %d; want 1 and 1", res.TokensIssued, st.TokensIssued)
	}
	if res.Calls > st.Requests {
		t.Errorf("calls %d exceed the emulator's %d requests: the cache must be bypassed", res.Calls, st.Requests)
	}
	if res.Rate > 18 {
		t.Errorf("rate: got %.1f/s, want ≤ 18", res.Rate)
	}
}

func TestBenchSharedBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--duration", "0s"},
		{"--workers", "0"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), append([]string{"bench", "shared"}, args...), nil, strings.NewReader(""), &stdout, &stderr)
		if code != 2 {
			t.Errorf("%v: exit code %d, want 2 (stderr %s)", args, code, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"bench", "shared", "--duration", "1s"}, []string{"ENABLE_KIS_API=false"},
		strings.NewReader(""), &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "needs KIS clients") {
		t.Errorf("mock mode: exit %d, stderr %q; want 2 and a hint", code, stderr.String())
	}
}
