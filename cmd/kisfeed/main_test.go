package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestUsageErrors: every usage mistake exits 2, names the command and
// what was wrong, and points at the command's --help; none prints help
// and exits 0 as cobra does for command groups by default.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		want     string
		wantHelp string
	}{
		{"unknown command", []string{"bogus"}, `unknown command "bogus" for "kisfeed"`, "kisfeed --help"},
		{"unknown root flag", []string{"--bogus"}, "unknown flag: --bogus", "kisfeed --help"},
		{"unknown bench command", []string{"bench", "bogus"}, `unknown command "bogus" for "kisfeed bench"`, "kisfeed bench --help"},
		{"calendar typo", []string{"calendar", "is-tradingday"}, `unknown command "is-tradingday" for "kisfeed calendar"; did you mean is-trading-day?`, "kisfeed calendar --help"},
		{"unknown flag", []string{"quote", "--bogus", "005930"}, "quote: unknown flag: --bogus", "kisfeed quote --help"},
		{"bad bool", []string{"quote", "005930", "--json=maybe"}, `quote: invalid argument "maybe" for "--json" flag`, "kisfeed quote --help"},
		{"missing flag value", []string{"candles", "005930", "--from"}, "candles: flag needs an argument: --from", "kisfeed candles --help"},
		{"no code", []string{"quote"}, "quote: requires at least 1 arg(s), only received 0 (usage: kisfeed quote CODE... [flags])", "kisfeed quote --help"},
		{"two codes", []string{"orderbook", "005930", "000660"}, "orderbook: accepts 1 arg(s), received 2", "kisfeed orderbook --help"},
		{"no arguments", []string{"migrate", "extra"}, `migrate takes no arguments, got "extra"`, "kisfeed migrate --help"},
		{"calendar two dates", []string{"calendar", "is-trading-day", "2026-11-27", "2026-11-28"}, "calendar is-trading-day: accepts at most 1 arg(s)", "kisfeed calendar is-trading-day --help"},
		{"bad duration flag", []string{"emulator", "--token-ttl", "soon"}, `emulator: invalid argument "soon" for "--token-ttl"`, "kisfeed emulator --help"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tt.args, []string{"ENABLE_KIS_API=false"}, strings.NewReader(""), &stdout, &stderr)
			if code != 2 {
				t.Errorf("exit: got %d, want 2 (stderr %q)", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr: got %q, want it to contain %q", stderr.String(), tt.want)
			}
			if hint := "Run '" + tt.wantHelp + "' for usage."; !strings.Contains(stderr.String(), hint) {
				t.Errorf("stderr: got %q, want the hint %q", stderr.String(), hint)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: got %q, want nothing (no help on a usage error)", stdout.String())
			}
		})
	}
}

// TestGroupWithoutArgsPrintsHelp: a bare command group still shows its
// help and exits 0.
func TestGroupWithoutArgsPrintsHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{nil, {"bench"}, {"calendar"}} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), args, nil, strings.NewReader(""), &stdout, &stderr); code != 0 {
			t.Errorf("%v: exit got %d, want 0 (stderr %q)", args, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), "Available Commands:") {
			t.Errorf("%v: stdout got %q, want the help", args, stdout.String())
		}
	}
}
