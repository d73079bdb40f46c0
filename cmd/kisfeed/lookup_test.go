package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/emulator"
	"github.com/kisfeed/kisfeed/emulator/emulatortest"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/internal/synthetic"
	"github.com/kisfeed/kisfeed/kis"
)

var (
	lookupSimOnce sync.Once
	lookupSim     *sim.Market
)

func lookupMarket() *sim.Market {
	lookupSimOnce.Do(func() { lookupSim = sim.New(1) })
	return lookupSim
}

// lookupNow is a trading day after the close.
var lookupNow = time.Date(2026, 5, 20, 15, 40, 0, 0, kisfeed.KST)

// lookupApp is an app whose upstream is the mock source (and clients, if
// given); closed reports whether the upstream was closed.
func lookupApp(clients []*kis.Client, closed *bool) *app {
	now := func() time.Time { return lookupNow }
	return &app{
		environ: []string{"LOG_LEVEL=warn"},
		clock:   kisfeed.Clock{Wall: now},
		newUpstream: func(context.Context, config.Config, *slog.Logger) (*upstream, error) {
			return &upstream{Source: synthetic.NewSource(lookupMarket(), kisfeed.Clock{Market: now}), Clients: clients,
				Close: func() error {
					if closed != nil {
						*closed = true
					}
					return nil
				}}, nil
		},
	}
}

// lookupExec runs a command line as run() does: exit code and outputs.
func lookupExec(t *testing.T, a *app, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a.stdout, a.stderr, a.stdin = &stdout, &stderr, strings.NewReader("")
	code := a.exec(t.Context(), args)
	return code, stdout.String(), stderr.String()
}

func TestLookupUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"quote no code", []string{"quote"}, "requires at least 1 arg"},
		{"quote bad code", []string{"quote", "005930", "59"}, `stock code "59": want 6 characters`},
		{"orderbook two codes", []string{"orderbook", "005930", "000660"}, "accepts 1 arg"},
		{"candles bad interval", []string{"candles", "005930", "--interval", "hour"}, `--interval "hour": want day, week, month or minute`},
		{"candles bad from", []string{"candles", "005930", "--from", "2020/01/01"}, `--from "2020/01/01": want a date YYYY-MM-DD`},
		{"candles bad to", []string{"candles", "005930", "--to", "x"}, `--to "x": want a date YYYY-MM-DD`},
		{"candles reversed", []string{"candles", "005930", "--from", "2024-02-01", "--to", "2024-01-01"}, "want from <= to"},
		{"candles minute to", []string{"candles", "005930", "--interval", "minute", "--to", "2024-01-01"}, "minute candles cover one day"},
		{"candles future from", []string{"candles", "005930", "--from", "2030-01-01"}, "--from 2030-01-01 is after today (2026-05-20 KST)"},
		{"candles future minute", []string{"candles", "005930", "--interval", "minute", "--from", "2026-05-21"}, "--from 2026-05-21 is after today"},
		{"info bad code", []string{"info", "abc"}, "want 6 characters"},
		{"token args", []string{"token", "x"}, `token takes no arguments, got "x"`},
		{"token mock mode", []string{"token"}, "no KIS client"},
		{"bench calls", []string{"bench", "quotes", "--calls", "0"}, "--calls 0: want 1 to 1000000"},
		{"bench workers", []string{"bench", "quotes", "--workers", "0"}, "--workers 0: want 1 to 1024"},
		{"bench mock mode", []string{"bench", "quotes"}, "needs a KIS client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := lookupExec(t, lookupApp(nil, nil), tt.args...)
			if code != 2 {
				t.Errorf("exit: got %d, want 2 (stderr %s)", code, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr: got %q, want it to contain %q", stderr, tt.want)
			}
		})
	}
}

func TestQuoteCommand(t *testing.T) {
	t.Parallel()
	closed := false
	code, out, stderr := lookupExec(t, lookupApp(nil, &closed), "quote", "005930", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !closed {
		t.Error("upstream not closed")
	}
	var q map[string]any
	if err := json.Unmarshal([]byte(out), &q); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	for _, k := range []string{"code", "name", "price", "open", "high", "low", "prev_close", "change", "change_rate",
		"volume", "trading_value", "upper_limit", "lower_limit", "as_of", "source", "origin", "stale"} {
		if _, ok := q[k]; !ok {
			t.Errorf("quote JSON lacks %q: %s", k, out)
		}
	}
	want, _ := lookupMarket().QuoteAt("005930", lookupNow)
	if q["code"] != "005930" || q["price"] != float64(want.Price) || q["name"] != "삼성전자" {
		t.Errorf("got %v, want price %d", q, want.Price)
	}
	if asOf, _ := q["as_of"].(string); !strings.HasSuffix(asOf, "+09:00") {
		t.Errorf("as_of: got %q, want RFC 3339 in +09:00", asOf)
	}

	code, out, _ = lookupExec(t, lookupApp(nil, nil), "quote", "005930", "000660", "--json")
	var qs []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &qs) != nil || len(qs) != 2 || qs[1]["code"] != "000660" {
		t.Errorf("two codes: exit %d, got %s", code, out)
	}

	code, out, _ = lookupExec(t, lookupApp(nil, nil), "quote", "005930", "000660")
	if code != 0 || !strings.Contains(out, "PRICE") || !strings.Contains(out, "SK하이닉스") {
		t.Errorf("table: exit %d, got %s", code, out)
	}

	code, out, stderr = lookupExec(t, lookupApp(nil, nil), "quote", "005930", "999999")
	if code != 1 || !strings.Contains(out, "005930") || !strings.Contains(stderr, "1 of 2 codes failed") {
		t.Errorf("unknown in batch: exit %d, out %s, stderr %s", code, out, stderr)
	}
	code, _, stderr = lookupExec(t, lookupApp(nil, nil), "quote", "999999")
	if code != 1 || !strings.Contains(stderr, "not found") {
		t.Errorf("unknown: exit %d, stderr %s", code, stderr)
	}
}

func TestOrderBookCommand(t *testing.T) {
	t.Parallel()
	code, out, stderr := lookupExec(t, lookupApp(nil, nil), "orderbook", "005930", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var b struct {
		Code string `json:"code"`
		Asks []struct {
			Price    int64 `json:"price"`
			Quantity int64 `json:"quantity"`
		} `json:"asks"`
		Bids []struct {
			Price int64 `json:"price"`
		} `json:"bids"`
		AsOf string `json:"as_of"`
	}
	if err := json.Unmarshal([]byte(out), &b); err != nil || len(b.Asks) != 10 || len(b.Bids) != 10 || b.Asks[0].Price <= b.Bids[0].Price {
		t.Errorf("got %+v %v", b, err)
	}
	code, out, _ = lookupExec(t, lookupApp(nil, nil), "orderbook", "005930")
	if code != 0 || !strings.Contains(out, "ask 10") || !strings.Contains(out, "bid 1") {
		t.Errorf("table: got %s", out)
	}
	if code, _, _ := lookupExec(t, lookupApp(nil, nil), "orderbook", "999999"); code != 1 {
		t.Errorf("unknown: exit %d, want 1", code)
	}
}

func TestCandlesCommand(t *testing.T) {
	t.Parallel()
	code, out, stderr := lookupExec(t, lookupApp(nil, nil), "candles", "005930", "--interval", "day", "--from", "2026-01-01", "--to", "2026-05-20", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var cs struct {
		Interval string `json:"interval"`
		Bars     []struct {
			Time  string `json:"time"`
			Close int64  `json:"close"`
		} `json:"bars"`
	}
	if err := json.Unmarshal([]byte(out), &cs); err != nil {
		t.Fatal(err)
	}
	want := lookupMarket().DailyBars("005930", kisfeed.Date(2026, 1, 1), kisfeed.Date(2026, 5, 20))
	if len(cs.Bars) != len(want) || cs.Bars[0].Time != "2026-01-02T00:00:00+09:00" || cs.Bars[len(want)-1].Close != want[len(want)-1].Close {
		t.Errorf("got %d bars (first %+v), want %d", len(cs.Bars), cs.Bars[0], len(want))
	}
	code, out, _ = lookupExec(t, lookupApp(nil, nil), "candles", "005930", "--interval", "minute", "--from", "2026-05-20")
	if code != 0 || !strings.Contains(out, "2026-05-20 09:00") || !strings.Contains(out, "381 minute candles") {
		t.Errorf("minute table: exit %d: %s", code, out)
	}
}

func TestInfoCommand(t *testing.T) {
	t.Parallel()
	code, out, stderr := lookupExec(t, lookupApp(nil, nil), "info", "005930", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(out), &info); err != nil || info["name"] != "삼성전자" || info["market"] != "KOSPI" || info["isin"] == "" {
		t.Errorf("got %v %v", info, err)
	}
	code, out, _ = lookupExec(t, lookupApp(nil, nil), "info", "005930")
	if code != 0 || !strings.Contains(out, "listed shares") {
		t.Errorf("table: got %s", out)
	}
}

func TestTokenCommand(t *testing.T) {
	t.Parallel()
	srv, base := emulatortest.Start(t, emulator.WithMarket(lookupMarket()), emulator.WithRate(0))
	c, err := kis.NewClient(kis.WithBaseURL(base), kis.WithAppKey("PSKEY", "SECRET-never-printed"),
		kis.WithTokenStore(kis.NewMemoryTokenStore()))
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr := lookupExec(t, lookupApp([]*kis.Client{c}, nil), "token", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var tok map[string]any
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok["type"] != "Bearer" || tok["base_url"] != base {
		t.Errorf("got %v %v", tok, err)
	}
	if exp, _ := tok["expires"].(string); !strings.HasSuffix(exp, "+09:00") {
		t.Errorf("expires: got %q", exp)
	}
	current, _ := c.Token(t.Context())
	code, out, _ = lookupExec(t, lookupApp([]*kis.Client{c}, nil), "token")
	if code != 0 || !strings.Contains(out, "Bearer token, expires") {
		t.Errorf("table: got %s", out)
	}
	if strings.Contains(out+stderr, current.Value) || strings.Contains(out+stderr, "SECRET-never-printed") {
		t.Error("the token value or secret was printed")
	}
	code, out, _ = lookupExec(t, lookupApp([]*kis.Client{c}, nil), "token", "--revoke")
	if code != 0 || !strings.Contains(out, "token revoked") {
		t.Errorf("revoke: exit %d: %s", code, out)
	}
	// Nothing left: say so instead of claiming another revocation.
	code, out, _ = lookupExec(t, lookupApp([]*kis.Client{c}, nil), "token", "--revoke", "--json")
	var again map[string]any
	if err := json.Unmarshal([]byte(out), &again); err != nil || code != 0 || again["revoked"] != false || again["no_token"] != true {
		t.Errorf("second revoke: got exit %d, %s (%v); want 0, revoked false, no_token true", code, out, err)
	}
	code, out, _ = lookupExec(t, lookupApp([]*kis.Client{c}, nil), "token", "--revoke")
	if code != 0 || !strings.Contains(out, "no token stored, nothing to revoke") {
		t.Errorf("second revoke: got exit %d, %q; want 0 and nothing to revoke", code, out)
	}
	if st := srv.Stats(); st.TokensIssued != 1 {
		t.Errorf("tokens issued: got %d, want 1", st.TokensIssued)
	}
}

func TestRefusedCredentials(t *testing.T) {
	t.Parallel()
	_, base := emulatortest.Start(t, emulator.WithMarket(lookupMarket()), emulator.WithRate(0),
		emulator.WithAppKey("PSKEY", "right-secret"))
	c, err := kis.NewClient(kis.WithBaseURL(base), kis.WithAppKey("PSKEY", "S3CRETVALUE123"),
		kis.WithTokenStore(kis.NewMemoryTokenStore()))
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr := lookupExec(t, lookupApp([]*kis.Client{c}, nil), "token")
	if code != 2 || !strings.Contains(stderr, "check KIS_APP_KEY and KIS_APP_SECRET") {
		t.Errorf("got exit %d, stderr %q; want 2 and a pointer to KIS_APP_KEY and KIS_APP_SECRET", code, stderr)
	}
	if strings.Contains(out+stderr, "S3CRETVALUE123") {
		t.Errorf("the secret was printed: %s%s", out, stderr)
	}
}

func TestBenchQuotesCommand(t *testing.T) {
	t.Parallel()
	_, base := emulatortest.Start(t, emulator.WithMarket(lookupMarket()), emulator.WithRate(18))
	c, err := kis.NewClient(kis.WithBaseURL(base), kis.WithAppKey("PSKEY", "SECRET"),
		kis.WithTokenStore(kis.NewMemoryTokenStore()), kis.WithRateLimit(200))
	if err != nil {
		t.Fatal(err)
	}
	_ = c
	// The emulator allows 18/s; the client asks for 200/s and must adapt:
	// a short run still ends with every call answered.
	code, out, stderr := lookupExec(t, lookupApp([]*kis.Client{c}, nil), "bench", "quotes", "--calls", "30", "--workers", "4", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r benchQuotesResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Calls != 30 || r.Errors != 0 || r.MaxWindow > 18 || r.MaxWindow < 1 || r.Rate <= 0 {
		t.Errorf("got %+v", r)
	}
	code, out, _ = lookupExec(t, lookupApp([]*kis.Client{c}, nil), "bench", "quotes", "--calls", "5", "--workers", "2")
	if code != 0 || !strings.Contains(out, "achieved rate") || !strings.Contains(out, "max 1-s window") {
		t.Errorf("table: got %s", out)
	}
}

func TestQuoteTableAlignsKoreanNames(t *testing.T) {
	t.Parallel()
	code, out, stderr := lookupExec(t, lookupApp(nil, nil), "quote", "005930", "000660")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want a header and 2 rows:\n%s", len(lines), out)
	}
	// The PRICE column ends at the same terminal column on every line,
	// although 삼성전자 and SK하이닉스 differ in runes and in columns.
	header := strings.Fields(lines[0])
	end := func(line, cell string) int {
		i := strings.Index(line, cell)
		if i < 0 {
			t.Fatalf("%q not in %q", cell, line)
		}
		return displayWidth(line[:i+len(cell)])
	}
	want := end(lines[0], header[2])
	for _, line := range lines[1:] {
		if got := end(line, strings.Fields(line)[2]); got != want {
			t.Errorf("PRICE ends at column %d in %q, want %d as in the header", got, line, want)
		}
	}
}

func TestDisplayWidth(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]int{"": 0, "005930": 6, "삼성전자": 8, "SK하이닉스": 10, "ＡＢ": 4} {
		if got := displayWidth(s); got != want {
			t.Errorf("displayWidth(%q): got %d, want %d", s, got, want)
		}
	}
}

// TestRefusedCredentialsThroughFactory drives the lookups through the real
// data-source stack (cache and breaker over the kis client) against an
// emulator that refuses the secret: a configuration error, exit 2 with a
// pointer to the settings, not "upstream unavailable".
func TestRefusedCredentialsThroughFactory(t *testing.T) {
	t.Parallel()
	_, base := emulatortest.Start(t, emulator.WithMarket(lookupMarket()), emulator.WithAppKey("k", "right"))
	env := []string{"ENABLE_KIS_API=true", "KIS_APP_KEY=k", "KIS_APP_SECRET=wrong", "KIS_BASE_URL=" + base,
		"KIS_TOKEN_FILE=" + t.TempDir() + "/tokens.json", "LOG_LEVEL=error"}
	for _, args := range [][]string{{"quote", "005930"}, {"quote", "005930", "000660"}, {"orderbook", "005930"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), args, env, strings.NewReader(""), &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), "check KIS_APP_KEY and KIS_APP_SECRET") ||
				strings.Contains(stderr.String(), "unavailable") {
				t.Errorf("got exit %d, stderr %q; want 2 and a pointer to KIS_APP_KEY and KIS_APP_SECRET, no 'unavailable'", code, stderr.String())
			}
		})
	}
}
