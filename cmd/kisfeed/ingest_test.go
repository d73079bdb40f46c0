package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
	"github.com/kisfeed/kisfeed/internal/sqlite"
	"github.com/kisfeed/kisfeed/internal/synthetic"
)

// ingestNow is when the DAG runs: 16:10 KST on Wednesday 2025-06-04.
var ingestNow = time.Date(2025, 6, 4, 16, 10, 0, 0, kisfeed.KST)

var (
	ingestSimOnce sync.Once
	ingestSim     *sim.Market
)

func ingestMarket() *sim.Market {
	ingestSimOnce.Do(func() { ingestSim = sim.New(1) })
	return ingestSim
}

// testApp returns an app whose data source is src (synthetic.NewSource over
// the synthetic market when nil) and whose clock reads now.
func ingestApp(src kisfeed.Source, now time.Time) *app {
	if src == nil {
		src = synthetic.NewSource(ingestMarket(), kisfeed.Clock{Market: func() time.Time { return now }})
	}
	return &app{
		environ: []string{"LOG_LEVEL=warn"},
		clock:   kisfeed.Clock{Wall: func() time.Time { return now }},
		newUpstream: func(context.Context, config.Config, *slog.Logger) (*upstream, error) {
			return &upstream{Source: src, Close: func() error { return nil }}, nil
		},
	}
}

// ingestExec runs the command line as run() does and returns the exit
// code and outputs.
func ingestExec(ctx context.Context, a *app, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	a.stdout, a.stderr, a.stdin = &stdout, &stderr, strings.NewReader("")
	code := a.exec(ctx, args)
	return code, stdout.String(), stderr.String()
}

type ingestSummary struct {
	Status      string   `json:"status"`
	From        string   `json:"from"`
	Path        string   `json:"path"`
	Universe    int      `json:"universe"`
	Skipped     int      `json:"skipped"`
	Fetched     int      `json:"fetched"`
	Written     int      `json:"written"`
	Unchanged   int      `json:"unchanged"`
	Rejected    int      `json:"rejected"`
	Failed      int      `json:"failed"`
	FailedCodes []string `json:"failed_codes"`
	Pending     int      `json:"pending"`
	SourceCalls int      `json:"source_calls"`
	Requests    int      `json:"requests"`
	DB          string   `json:"db"`
}

func decodeSummary(t *testing.T, out string) ingestSummary {
	t.Helper()
	var s ingestSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, out)
	}
	return s
}

func TestIngestFreshDefaultDatabase(t *testing.T) {
	// No --db and no DATABASE_URL: ./kisfeed.db in the working directory.
	dir := t.TempDir()
	t.Chdir(dir)
	ctx := t.Context()
	a := ingestApp(nil, ingestNow)
	code, out, errOut := ingestExec(ctx, a, "ingest")
	if code != 0 {
		t.Fatalf("ingest exit %d, want 0; stderr:\n%s", code, errOut)
	}
	for _, want := range []string{"quotes", "universe", "written", "sqlite:kisfeed.db"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "kisfeed.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	day := kisfeed.Date(2025, 6, 4)
	n, err := db.CountBars(ctx, day, day)
	if err != nil {
		t.Fatal(err)
	}
	if n < 2400 {
		t.Errorf("rows for %s = %d, want >= 2400", day.Format(time.DateOnly), n)
	}
	t.Logf("fresh ingest: %d rows", n)

	code, out, errOut = ingestExec(ctx, ingestApp(nil, ingestNow), "ingest", "--json")
	if code != 0 {
		t.Fatalf("second ingest exit %d, want 0; stderr:\n%s", code, errOut)
	}
	s := decodeSummary(t, out)
	if s.Written != 0 || s.Skipped != n || s.Status != "succeeded" {
		t.Errorf("second run: written %d skipped %d status %s; want 0 written, %d skipped", s.Written, s.Skipped, s.Status, n)
	}
	code, out, _ = ingestExec(ctx, ingestApp(nil, ingestNow), "ingest", "--json", "--force")
	if s := decodeSummary(t, out); code != 0 || s.Written != 0 || s.Unchanged != n {
		t.Errorf("forced run: exit %d written %d unchanged %d; want 0, 0, %d", code, s.Written, s.Unchanged, n)
	}
	if m, _ := db.CountBars(ctx, day, day); m != n {
		t.Errorf("rows after three runs = %d, want %d", m, n)
	}
}

func TestIngestUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad date", []string{"--date", "2025-13-01"}, `--date "2025-13-01": want a date like 2025-06-02`},
		{"date and from", []string{"--date", "2025-06-02", "--from", "2025-06-01"}, "--date cannot be combined with --from/--to"},
		{"to without from", []string{"--to", "2025-06-02"}, "--to needs --from"},
		{"reversed window", []string{"--from", "2025-06-04", "--to", "2025-06-02"}, "--to 2025-06-02 is before --from 2025-06-04"},
		{"bad market", []string{"--market", "nyse"}, `--market "nyse": want kospi or kosdaq`},
		{"bad code", []string{"--codes", "005930,12"}, `stock code "12": want 6 characters`},
		{"unknown code", []string{"--codes", "999999"}, "999999 (not listed)"},
		{"ETF code", []string{"--codes", "069500"}, "not a common stock"},
		{"ratio", []string{"--max-failure-ratio", "2"}, "--max-failure-ratio 2: want a fraction from 0 to 1"},
		{"workers", []string{"--workers", "0"}, "--workers 0: want 1 to 256"},
		{"path", []string{"--path", "fast"}, `--path "fast": want auto, quotes or candles`},
		{"holiday", []string{"--date", "2025-06-03"}, "2025-06-03 is not a trading day: a market holiday"},
		{"future", []string{"--date", "2025-06-05"}, "2025-06-05 has no completed session yet"},
		{"quotes for an old day", []string{"--date", "2025-06-02", "--path", "quotes"}, "path quotes needs the latest session"},
		{"argument", []string{"extra"}, "takes no arguments"},
		{"empty codes", []string{"--codes", ",,"}, `--codes ",,": an empty list`},
		{"empty codes flag", []string{"--codes", ""}, `--codes "": an empty list`},
		{"empty market", []string{"--market", " "}, `--market " ": an empty list`},
		{"konex", []string{"--market", "konex"}, `--market "konex": want kospi or kosdaq`},
		{"before the calendar", []string{"--date", "2019-12-30"}, "2019-12-30 is before 2020-01-01, the start of the built-in KRX calendar"},
		{"foreign database", []string{"--db", "mysql://u:S3CRET@h/db"}, `--db "mysql://u:***@h/db": want postgres://`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"ingest", "--db", filepath.Join(t.TempDir(), "k.db")}, tt.args...)
			code, _, errOut := ingestExec(t.Context(), ingestApp(nil, ingestNow), args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr: %s", code, errOut)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", errOut, tt.want)
			}
			if strings.Contains(errOut, "S3CRET") {
				t.Errorf("stderr = %q prints the password", errOut)
			}
		})
	}
}

func TestIngestFailureRatio(t *testing.T) {
	t.Parallel()
	base := synthetic.NewSource(ingestMarket(), kisfeed.Clock{Market: func() time.Time { return ingestNow }})
	src := &sourcetest.Func{
		UniverseFn: base.Universe,
		CandlesFn: func(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
			if q.Code.String() == "000660" {
				return nil, errors.New("upstream 500")
			}
			return base.Candles(ctx, q)
		},
	}
	db := filepath.Join(t.TempDir(), "k.db")
	args := []string{"ingest", "--db", db, "--json", "--date", "2025-06-02", "--codes", "005930,000660,035420"}
	code, out, errOut := ingestExec(t.Context(), ingestApp(src, ingestNow), args...)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (1 of 3 failed > 0.001); stderr:\n%s", code, errOut)
	}
	s := decodeSummary(t, out)
	if s.Failed != 1 || len(s.FailedCodes) != 1 || s.FailedCodes[0] != "000660" || s.Written != 2 || s.Path != "candles" {
		t.Errorf("summary = %+v, want 000660 failed, 2 written, candles path", s)
	}
	// The summary and the runs table agree with the exit status.
	if s.Status != "failed" {
		t.Errorf("summary status: got %q, want failed (exit 1 above --max-failure-ratio)", s.Status)
	}
	if !strings.Contains(errOut, "1 of 3 codes") {
		t.Errorf("stderr = %q, want the failure ratio explained", errOut)
	}
	// Tolerated when the ratio allows it.
	code, out, errOut = ingestExec(t.Context(), ingestApp(src, ingestNow), append(args, "--max-failure-ratio", "0.5", "--force")...)
	if code != 0 {
		t.Errorf("exit %d with --max-failure-ratio 0.5, want 0; stderr:\n%s", code, errOut)
	}
	if s := decodeSummary(t, out); s.Status != "succeeded" {
		t.Errorf("summary status with --max-failure-ratio 0.5: got %q, want succeeded", s.Status)
	}
}

func TestIngestInterruptedThenResumed(t *testing.T) {
	t.Parallel()
	base := synthetic.NewSource(ingestMarket(), kisfeed.Clock{Market: func() time.Time { return ingestNow }})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var calls atomic.Int64
	src := &sourcetest.Func{
		UniverseFn: base.Universe,
		QuotesFn: func(qctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
			if calls.Add(1) == 15 {
				cancel() // what SIGINT does through signal.NotifyContext
			}
			return base.Quotes(qctx, kisfeed.MustParseCodes(codes...))
		},
	}
	db := filepath.Join(t.TempDir(), "k.db")
	code, out, _ := ingestExec(ctx, ingestApp(src, ingestNow), "ingest", "--db", db, "--json", "--workers", "2", "--market", "kospi")
	if code != exitInterrupted {
		t.Fatalf("exit %d, want %d", code, exitInterrupted)
	}
	first := decodeSummary(t, out)
	if first.Status != "interrupted" || first.Written == 0 || first.Pending == 0 {
		t.Fatalf("interrupted ingestSummary = %+v, want status interrupted, some written, some pending", first)
	}
	firstCalls := calls.Load()
	code, out, errOut := ingestExec(t.Context(), ingestApp(src, ingestNow), "ingest", "--db", db, "--json", "--market", "kospi")
	if code != 0 {
		t.Fatalf("resumed exit %d, want 0; stderr:\n%s", code, errOut)
	}
	second := decodeSummary(t, out)
	if second.Skipped != first.Written || second.Written != second.Universe-first.Written {
		t.Errorf("resumed: skipped %d written %d; want %d skipped, %d written", second.Skipped, second.Written,
			first.Written, second.Universe-first.Written)
	}
	full := int64((second.Universe + 29) / 30)
	if got := calls.Load() - firstCalls; got >= full {
		t.Errorf("resumed run made %d calls, want fewer than a full run's %d", got, full)
	}
}

func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := filepath.Join(t.TempDir(), "k.db")
	if code, _, errOut := ingestExec(ctx, ingestApp(nil, ingestNow), "ingest", "--db", db, "--codes", "005930,000660,035420"); code != 0 {
		t.Fatalf("ingest exit %d; stderr:\n%s", code, errOut)
	}
	code, out, errOut := ingestExec(ctx, ingestApp(nil, ingestNow), "verify", "--db", db, "--json")
	if code != 0 {
		t.Fatalf("verify exit %d, want 0; stderr:\n%s", code, errOut)
	}
	var rep struct {
		OK         bool  `json:"ok"`
		Sample     int   `json:"sample"`
		Matched    int   `json:"matched"`
		Mismatches []any `json:"mismatches"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Sample != 3 || rep.Matched != 3 || len(rep.Mismatches) != 0 {
		t.Errorf("verify report = %+v, want 3 matched, no mismatch", rep)
	}
	// Tamper with one row: verify must fail and name it.
	store, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	day := kisfeed.Date(2025, 6, 4)
	bars, _ := store.Bars(ctx, "035420", day, day)
	bars[0].Volume++
	if _, err := store.UpsertBars(ctx, bars); err != nil {
		t.Fatal(err)
	}
	store.Close()
	code, out, _ = ingestExec(ctx, ingestApp(nil, ingestNow), "verify", "--db", db)
	if code != 1 || !strings.Contains(out, "MISMATCH 035420 2025-06-04: values differ: volume stored") {
		t.Errorf("verify after tampering: exit %d, output:\n%s\nwant exit 1 and the mismatch", code, out)
	}
	if code, _, errOut := ingestExec(ctx, ingestApp(nil, ingestNow), "verify", "--db", db, "--sample", "0"); code != 2 {
		t.Errorf("verify --sample 0: exit %d, want 2; stderr %s", code, errOut)
	}
}

func TestCalendarCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		{[]string{"calendar", "is-trading-day", "2025-06-04"}, 0, "yes\n"},
		{[]string{"calendar", "is-trading-day", "2025-06-03"}, 1, "no\n"},
		{[]string{"calendar", "is-trading-day", "2025-06-07"}, 1, "no\n"},
		{[]string{"calendar", "is-trading-day"}, 0, "yes\n"}, // the clock's day, 2025-06-04
		{[]string{"calendar", "is-trading-day", "--source", "2025-10-06"}, 1, "no\n"},
		{[]string{"calendar", "is-trading-day", "June 4"}, 2, ""},
		{[]string{"calendar", "list", "--from", "2025-06-02", "--to", "2025-06-06"}, 0,
			"2025-06-02\n2025-06-03 closed (대통령 선거)\n2025-06-04\n2025-06-05\n2025-06-06 closed (현충일)\n"},
		// Outside the built-in calendar weekdays are not known to trade:
		// 2019-12-31 and 2031-01-01 were/are holidays.
		{[]string{"calendar", "is-trading-day", "2019-12-31"}, 3, ""},
		{[]string{"calendar", "is-trading-day", "2031-01-01"}, 3, ""},
		{[]string{"calendar", "is-trading-day", "--source", "2019-12-31"}, 0, "yes\n"}, // the mock source knows no holidays there either, but it answers
		{[]string{"calendar", "list", "--from", "2019-12-30", "--to", "2020-01-03"}, 2, ""},
		{[]string{"calendar", "list", "--from", "2027-12-30", "--to", "2028-01-03"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[1:], " "), func(t *testing.T) {
			t.Parallel()
			code, out, errOut := ingestExec(t.Context(), ingestApp(nil, ingestNow), tt.args...)
			if code != tt.wantCode || out != tt.wantOut {
				t.Errorf("exit %d, stdout %q (stderr %q); want %d, %q", code, out, errOut, tt.wantCode, tt.wantOut)
			}
		})
	}
}

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "k.db")
	for range 2 {
		code, out, errOut := ingestExec(t.Context(), ingestApp(nil, ingestNow), "migrate", "--db", "sqlite:"+db)
		if code != 0 || !strings.Contains(out, "schema at version 2") {
			t.Errorf("migrate: exit %d, stdout %q, stderr %q; want 0 and version 2", code, out, errOut)
		}
	}
}

// TestIngestFollowsTheMarketClock: with KISFEED_MARKET_TIME the market
// runs on its own clock; ingest judges the latest session by it, so a
// morning snapshot is never stored as the day's final bar.
func TestIngestFollowsTheMarketClock(t *testing.T) {
	t.Parallel()
	market := time.Date(2025, 6, 4, 10, 0, 0, 0, kisfeed.KST) // session running
	clock := func() time.Time { return market }
	a := ingestApp(synthetic.NewSource(ingestMarket(), kisfeed.Clock{Market: clock}), ingestNow) // wall clock: after the close
	inject := a.newUpstream
	a.newUpstream = func(ctx context.Context, cfg config.Config, log *slog.Logger) (*upstream, error) {
		up, err := inject(ctx, cfg, log)
		if err == nil {
			up.Clock.Market = clock
		}
		return up, err
	}
	db := filepath.Join(t.TempDir(), "k.db")
	code, out, errOut := ingestExec(t.Context(), a, "ingest", "--db", db, "--codes", "005930", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if s := decodeSummary(t, out); s.From != "2025-06-02" || s.Path != "candles" {
		t.Errorf("got day %s by %s, want 2025-06-02 (the last session completed at the market's 10:00) by candles", s.From, s.Path)
	}
}
