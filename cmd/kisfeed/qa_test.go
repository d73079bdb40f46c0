package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// qaSecret is set as KIS_APP_SECRET (and in URLs) in every run below; it
// must never come out on stdout or stderr.
const qaSecret = "S3CRETVALUE123"

// qaRun runs a command line through run() with environ (plus the secret
// and debug logging) and returns the exit code and outputs.
func qaRun(t *testing.T, environ []string, args ...string) (int, string, string) {
	t.Helper()
	env := append([]string{"KIS_APP_SECRET=" + qaSecret, "LOG_LEVEL=debug",
		"KIS_TOKEN_FILE=" + filepath.Join(t.TempDir(), "tokens.json")}, environ...)
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, env, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// qaClean fails the test when an output shows a panic, a Go stack trace
// or the secret.
func qaClean(t *testing.T, stdout, stderr string) {
	t.Helper()
	for _, bad := range []string{"panic:", "goroutine ", ".go:", qaSecret} {
		if strings.Contains(stdout, bad) || strings.Contains(stderr, bad) {
			t.Errorf("output contains %q:\nstdout: %s\nstderr: %s", bad, stdout, stderr)
		}
	}
}

// TestQABadInput is the bad-input table of the QA pass: settings, flags,
// arguments and dates a user gets wrong. Each must exit with the documented
// code, name what was wrong, and show no panic, stack trace or secret.
func TestQABadInput(t *testing.T) {
	t.Parallel()
	mock := []string{"ENABLE_KIS_API=false"}
	long := strings.Repeat("1", 10<<10)
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		want     []string // each must appear on stderr
	}{
		// Settings: one message naming every bad one, exit 2.
		{"every bad setting at once",
			[]string{"KIS_RATE_LIMIT=-1", "KIS_TIMEOUT=soon", "ENABLE_KIS_API=maybe", "REDIS_URL=http://u:" + qaSecret + "@x", "DATABASE_URL=mysql://u:" + qaSecret + "@h/db"},
			[]string{"quote", "005930"}, 2,
			[]string{"KIS_RATE_LIMIT=-1", `KIS_TIMEOUT="soon"`, `ENABLE_KIS_API="maybe"`, "REDIS_URL=", "DATABASE_URL="}},
		{"unparsable redis url", []string{"REDIS_URL=redis://:" + qaSecret + "%zz@h:6379/0"}, []string{"quote", "005930"}, 2, []string{"REDIS_URL"}},
		{"keys without secret", []string{"ENABLE_KIS_API=true", "KIS_APP_SECRET="}, []string{"info", "005930"}, 2, []string{"KIS_APP_KEY required"}},
		{"bad app keys", []string{"KIS_APP_KEYS=k1:" + qaSecret + ",k2"}, []string{"quote", "005930"}, 2, []string{"KIS_APP_KEYS entry 2"}},
		{"bad base url", []string{"KIS_BASE_URL=ftp://u:" + qaSecret + "@h", "KIS_APP_KEY=k"}, []string{"quote", "005930"}, 2, []string{"KIS_BASE_URL"}},
		{"bad log level", []string{"LOG_LEVEL=loud"}, []string{"ingest"}, 2, []string{`LOG_LEVEL="loud"`}},
		{"bad market time", []string{"KISFEED_MARKET_TIME=yesterday"}, []string{"quote", "005930"}, 2, []string{"KISFEED_MARKET_TIME"}},

		// Codes.
		{"five digits", mock, []string{"quote", "12345"}, 2, []string{`stock code "12345"`}},
		{"seven digits", mock, []string{"orderbook", "1234567"}, 2, []string{`stock code "1234567"`}},
		{"letters", mock, []string{"info", "abcdef"}, 2, []string{`stock code "abcdef"`}},
		{"sql", mock, []string{"quote", "'; DROP TABLE daily_prices;--"}, 2, []string{"stock code"}},
		{"html", mock, []string{"candles", "<script>"}, 2, []string{"stock code"}},
		{"unicode", mock, []string{"quote", "삼성전자"}, 2, []string{"stock code"}},
		{"fullwidth digit", mock, []string{"quote", "0059３0"}, 2, []string{"stock code"}},
		{"empty", mock, []string{"quote", ""}, 2, []string{`stock code ""`}},
		{"10 KB", mock, []string{"quote", long}, 2, []string{"stock code", "…"}},
		{"unknown code", mock, []string{"quote", "999999"}, 1, []string{"999999"}},
		{"one unknown of two", mock, []string{"quote", "005930", "999999"}, 1, []string{"1 of 2 codes failed", "999999"}},

		// Dates and intervals.
		{"bad interval", mock, []string{"candles", "005930", "--interval", "hour"}, 2, []string{`--interval "hour"`}},
		{"month 13", mock, []string{"candles", "005930", "--from", "2025-13-01"}, 2, []string{`--from "2025-13-01"`}},
		{"february 30", mock, []string{"candles", "005930", "--to", "2025-02-30"}, 2, []string{`--to "2025-02-30"`}},
		{"from after to", mock, []string{"candles", "005930", "--from", "2025-02-01", "--to", "2025-01-01"}, 2, []string{"want from <= to"}},
		{"future from", mock, []string{"candles", "005930", "--from", "9999-12-31"}, 2, []string{"--from 9999-12-31 is after today"}},
		{"ingest weekend", mock, []string{"ingest", "--date", "2025-06-07"}, 2, []string{"2025-06-07 is not a trading day: a weekend"}},
		{"ingest holiday", mock, []string{"ingest", "--date", "2025-06-06"}, 2, []string{"market holiday (현충일)"}},
		{"ingest future", mock, []string{"ingest", "--date", "9999-01-04"}, 2, []string{"has no completed session yet"}},
		{"ingest before 2020", mock, []string{"ingest", "--date", "2019-12-30"}, 2, []string{"before 2020-01-01"}},
		{"ingest from after to", mock, []string{"ingest", "--from", "2025-06-05", "--to", "2025-06-02"}, 2, []string{"--to 2025-06-02 is before --from 2025-06-05"}},
		{"ingest bad codes", mock, []string{"ingest", "--codes", "005930,12"}, 2, []string{`stock code "12"`}},
		{"ingest empty codes", mock, []string{"ingest", "--codes", ","}, 2, []string{"--codes"}},
		{"ingest bogus market", mock, []string{"ingest", "--market", "bogus"}, 2, []string{`--market "bogus"`}},
		{"ingest foreign db", mock, []string{"ingest", "--db", "mysql://u:" + qaSecret + "@h/db"}, 2, []string{"--db"}},
		{"verify sample", mock, []string{"verify", "--sample", "0"}, 2, []string{"--sample 0"}},
		{"calendar garbage", nil, []string{"calendar", "is-trading-day", "garbage"}, 2, []string{`DATE "garbage"`}},
		{"calendar outside", nil, []string{"calendar", "is-trading-day", "2031-01-01"}, 3, []string{"outside the built-in KRX calendar"}},

		// Commands and flags.
		{"unknown command", nil, []string{"quotes"}, 2, []string{`unknown command "quotes"`}},
		{"unknown subcommand", nil, []string{"calendar", "bogus"}, 2, []string{`unknown command "bogus" for "kisfeed calendar"`}},
		{"unknown flag", nil, []string{"ingest", "--dry-run"}, 2, []string{"ingest: unknown flag: --dry-run"}},
		{"emulator port", nil, []string{"emulator", "--addr", "127.0.0.1:99999"}, 2, []string{"--addr"}},
		{"emulator ttl", nil, []string{"emulator", "--token-ttl", "-1s"}, 2, []string{"--token-ttl -1s"}},
		{"emulator server", nil, []string{"emulator", "--server", "bogus"}, 2, []string{`--server "bogus"`}},
		{"emulator speed", nil, []string{"emulator", "--speed", "0"}, 2, []string{"--speed 0"}},
		{"emulator ping", nil, []string{"emulator", "--ping-interval", "0s"}, 2, []string{"--ping-interval 0s"}},
		{"emulator ws fault", nil, []string{"emulator", "--ws-fault", "extra-fields=H0STCNT0"}, 2, []string{"--ws-fault", "TR:N"}},
		{"emulator market time", []string{"KISFEED_MARKET_TIME=soon"}, []string{"emulator"}, 2, []string{"KISFEED_MARKET_TIME"}},
		{"token in mock mode", mock, []string{"token"}, 2, []string{"no KIS client"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := append([]string{"DATABASE_URL=" + filepath.Join(t.TempDir(), "k.db")}, tt.env...)
			code, stdout, stderr := qaRun(t, env, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit: got %d, want %d\nstderr: %s", code, tt.wantCode, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr: got %q, want it to name %q", stderr, w)
				}
			}
			qaClean(t, stdout, stderr)
		})
	}
}

// rfc3339KST matches an RFC 3339 time in +09:00.
var rfc3339KST = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+09:00$`)

// snake matches a snake_case JSON key.
var snake = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// checkJSON walks a decoded JSON value: every key snake_case, every time
// (keys as_of, time, expires, issued_at, listing_date) in +09:00.
func checkJSON(t *testing.T, v any, path string) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if !snake.MatchString(k) {
				t.Errorf("%s.%s: key is not snake_case", path, k)
			}
			switch k {
			case "as_of", "time", "expires", "issued_at", "listing_date":
				if s, _ := e.(string); s != "" && !rfc3339KST.MatchString(s) {
					t.Errorf("%s.%s = %q: want RFC 3339 in +09:00", path, k, s)
				}
			}
			checkJSON(t, e, path+"."+k)
		}
	case []any:
		for i, e := range x {
			checkJSON(t, e, path+"["+string(rune('0'+i%10))+"]")
		}
	}
}

// TestQAJSONOutputs: every --json output of the lookups (mock and embedded
// emulator modes) is valid JSON with snake_case keys and +09:00 times.
func TestQAJSONOutputs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  []string
		args []string
	}{
		{"quote", []string{"ENABLE_KIS_API=false"}, []string{"quote", "005930", "--json"}},
		{"quotes", []string{"ENABLE_KIS_API=false"}, []string{"quote", "005930", "000660", "--json"}},
		{"orderbook", []string{"ENABLE_KIS_API=false"}, []string{"orderbook", "005930", "--json"}},
		{"day candles", []string{"ENABLE_KIS_API=false"}, []string{"candles", "005930", "--from", "2025-05-01", "--to", "2025-05-31", "--json"}},
		{"week candles", []string{"ENABLE_KIS_API=false"}, []string{"candles", "005930", "--interval", "week", "--from", "20250101", "--to", "20250331", "--json"}},
		{"info", []string{"ENABLE_KIS_API=false"}, []string{"info", "005930", "--json"}},
		{"calendar", nil, []string{"calendar", "list", "--from", "2025-06-02", "--to", "2025-06-06", "--json"}},
		{"embedded quote", nil, []string{"quote", "005930", "--json"}},
		{"embedded token", nil, []string{"token", "--json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := qaRun(t, tt.env, tt.args...)
			if code != 0 {
				t.Fatalf("exit: got %d, want 0\nstderr: %s", code, stderr)
			}
			var v any
			if err := json.Unmarshal([]byte(stdout), &v); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
			}
			checkJSON(t, v, "$")
			qaClean(t, stdout, stderr)
		})
	}
}
