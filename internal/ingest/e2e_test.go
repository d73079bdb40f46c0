package ingest_test

// End-to-end tests: the ingestion job against the KIS emulator through the
// real KIS client, the way `kisfeed ingest` runs in embedded mode. The
// emulator's rate limit is off here so they stay fast; the timed figures
// (20 req/s) are in TestTimedAgainstEmulator, run with KISFEED_E2E_TIMED=1.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/emulator"
	"github.com/kisfeed/kisfeed/emulator/emulatortest"
	"github.com/kisfeed/kisfeed/internal/ingest"
	"github.com/kisfeed/kisfeed/internal/postgres"
	"github.com/kisfeed/kisfeed/internal/pricestore/pricestoretest"
	"github.com/kisfeed/kisfeed/internal/synthetic"
	"github.com/kisfeed/kisfeed/kis"
	"github.com/kisfeed/kisfeed/krx"
)

// kisSource starts an emulator over the shared market pinned at now and
// returns it with a KIS client (at rate req/s; 0 = unlimited) and the
// Source over that client.
func kisSource(t testing.TB, now time.Time, rate float64, emuOpts ...emulator.Option) (*emulator.Server, *kis.Client, kisfeed.Source) {
	t.Helper()
	clock := func() time.Time { return now }
	opts := append([]emulator.Option{emulator.WithMarket(simMarket()), emulator.WithRate(0),
		emulator.WithMarketClock(clock)}, emuOpts...)
	srv, base := emulatortest.Start(t, opts...)
	if rate <= 0 {
		rate = 10000
	}
	c, err := kis.NewClient(kis.WithBaseURL(base), kis.WithMasterURL(base), kis.WithAppKey("e2e-key", "e2e-secret"),
		kis.WithTokenStore(kis.NewMemoryTokenStore()), kis.WithRateLimit(rate), kis.WithClock(clock),
		kis.WithRetry(3, time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return srv, c, kis.NewSource(c)
}

func statsOf(c *kis.Client) func() ingest.ClientStats {
	return func() ingest.ClientStats {
		s := c.Stats()
		return ingest.ClientStats{Requests: s.Requests, Retries: s.Retries, RateLimited: s.RateLimited, LimiterWait: s.LimiterWait}
	}
}

func TestEmulatorWholeMarket(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv, c, src := kisSource(t, afterClose, 0)
	store := openStore(t)
	in := newIngester(src, store, afterClose)
	in.Stats = statsOf(c)
	sum, err := in.Run(ctx, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := commonStocks(t, day)
	if sum.Path != ingest.PathQuotes || sum.Written != want || sum.Rejected != 0 || sum.Failed != 0 {
		t.Errorf("path %s written %d rejected %d failed %d; want quotes, %d, 0, 0", sum.Path, sum.Written,
			sum.Rejected, sum.Failed, want)
	}
	batches := int64((want + ingest.BatchSize - 1) / ingest.BatchSize)
	st := srv.Stats()
	t.Logf("whole market via emulator: %d bars, %d HTTP requests (%d multprice batches), %s", sum.Written, sum.Requests, batches, sum.Elapsed)
	if sum.Requests < batches || sum.Requests > batches+10 {
		t.Errorf("requests = %d, want about %d batches (+ token and master files)", sum.Requests, batches)
	}
	if st.RateLimitRejections != 0 {
		t.Errorf("emulator rate-limit rejections = %d, want 0", st.RateLimitRejections)
	}
	// The same numbers as the synthetic market (and so the mock source).
	stored, _ := store.BarsOn(ctx, day)
	if len(stored) != want {
		t.Fatalf("emulator run stored %d bars, want %d", len(stored), want)
	}
	for _, b := range stored {
		m, ok := simMarket().DailyBar(b.Code, day)
		if !ok || m.Open != b.Open || m.High != b.High || m.Low != b.Low || m.Close != b.Close || m.Volume != b.Volume || m.Value != b.Value {
			t.Fatalf("stored %+v, market has %+v", b, m)
		}
	}
	// verify cross-checks the quotes with the daily chart.
	rep, err := in.Verify(ctx, ingest.VerifyOptions{Sample: 100})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Sample != 100 {
		t.Errorf("verify: %+v, want 100 sampled, no mismatch", rep)
	}
}

// barField reports whether an emulator-corrupted field feeds a bar on the
// path: intstock-multprice's inter2_* prices, acml_vol and acml_tr_pbmn,
// or the daily chart's output2 rows.
func barField(c emulator.Corruption) bool {
	switch c.Field {
	case "inter2_prpr", "inter2_oprc", "inter2_hgpr", "inter2_lwpr", "acml_vol", "acml_tr_pbmn",
		"stck_clpr", "stck_oprc", "stck_hgpr", "stck_lwpr":
		return !strings.HasPrefix(c.Block, "output1")
	}
	return false
}

func TestEmulatorCorruptedResponses(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// At 2 %, seed 2 corrupts 3 of ~88 quote responses: 2 parsable bars
	// (high below low, negative) and 1 non-numeric; both kinds must end in
	// rejected_bars, neither in daily_prices.
	seed := int64(2)
	if v := os.Getenv("KISFEED_E2E_SEED"); v != "" {
		fmt.Sscan(v, &seed)
	}
	tests := []struct {
		name string
		opts ingest.Options
	}{
		{"quotes", ingest.Options{}},
		// The daily chart of 250 stocks over two weeks: more responses,
		// so more corruptions.
		{"candles", ingest.Options{From: kisfeed.Date(2025, 5, 19), To: kisfeed.Date(2025, 5, 30), Path: ingest.PathCandles}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, c, src := kisSource(t, afterClose, 0, emulator.WithFaults(emulator.Faults{Corrupt: 0.02, Seed: seed}))
			store := openStore(t)
			in := newIngester(src, store, afterClose)
			in.Stats = statsOf(c)
			opts := tt.opts
			if tt.name == "candles" {
				for _, s := range simMarket().Universe()[:250] {
					if s.IsCommonStock() && (s.ListingDate.IsZero() || s.ListingDate.Before(opts.From)) {
						opts.Codes = append(opts.Codes, kisfeed.MustParseCode(s.Code))
					}
				}
			}
			sum, err := in.Run(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			st := srv.Stats()
			if st.CorruptedResponses == 0 {
				t.Fatalf("the emulator corrupted nothing; the test proves nothing")
			}
			if int(st.CorruptedResponses) > len(st.Corrupted) {
				t.Fatalf("%d corruptions, only %d listed: shrink the test", st.CorruptedResponses, len(st.Corrupted))
			}
			rejected, _ := store.Rejected(ctx, time.Time{}, time.Time{})
			rejectedCodes := map[string]bool{}
			for _, r := range rejected {
				rejectedCodes[r.Code] = true
			}
			kinds := map[string]int{}
			barHits, unreadable := 0, 0
			for _, cr := range st.Corrupted {
				kinds[cr.Kind]++
				if !barField(cr) {
					continue // other fields do not make a bar
				}
				if cr.Kind != "non_numeric" && cr.Date != "" && cr.Date < tt.opts.From.Format("20060102") {
					continue // a readable lookback row is only a reference, never stored
				}
				barHits++
				if cr.Code != "" && !rejectedCodes[cr.Code] {
					t.Errorf("corruption %+v: code %s not in rejected_bars", cr, cr.Code)
				}
				if cr.Kind != "non_numeric" {
					continue
				}
				// An unreadable value is rejected by the client and lands
				// in rejected_bars with its field, its value and the raw
				// row (which holds the value).
				unreadable++
				want := fmt.Sprintf("malformed upstream field %s.%s: %q", cr.Block, cr.Field, cr.Value)
				found := false
				for _, r := range rejected {
					if r.Reason == want && (cr.Code == "" || r.Code == cr.Code) && strings.Contains(string(r.Payload), cr.Value) {
						found = true
					}
				}
				if !found {
					t.Errorf("corruption %+v: no rejected row %q with the raw row", cr, want)
				}
			}
			// The emulator does not name the code of a corrupted
			// multprice element, so count: one rejected bar per corrupted
			// bar, both kinds, and nothing else rejected.
			if len(rejected) != barHits || sum.Rejected != barHits || sum.Malformed != unreadable {
				t.Errorf("rejected_bars has %d rows (summary %d, %d malformed); the emulator corrupted %d bars, %d unreadable",
					len(rejected), sum.Rejected, sum.Malformed, barHits, unreadable)
			}
			if sum.Failed != 0 {
				t.Errorf("failed codes %v, want none: a corrupted response is a rejected bar, not a failure", sum.FailedCodes)
			}
			t.Logf("%s: %d responses corrupted %v, %d in bar fields; %d bars rejected; written %d; requests %d",
				tt.name, st.CorruptedResponses, kinds, barHits, sum.Rejected, sum.Written, sum.Requests)
			// No stored bar breaks a rule, and every stored bar is the
			// market's own.
			n, _ := store.CountBars(ctx, sum.From, sum.To)
			if sum.Incomplete != 0 {
				t.Errorf("incomplete codes = %d (%v %v), want 0 after the retry pass", sum.Incomplete, sum.FailedCodes, sum.RejectedCodes)
			}
			var all []kisfeed.DailyBar
			if tt.name == "quotes" {
				all, _ = store.BarsOn(ctx, day)
			}
			for _, code := range opts.Codes {
				bars, _ := store.Bars(ctx, code.String(), sum.From, sum.To)
				all = append(all, bars...)
			}
			var checked int
			for _, b := range all {
				want, ok := simMarket().DailyBar(b.Code, b.Date)
				if !ok || want.Open != b.Open || want.Close != b.Close || want.High != b.High || want.Low != b.Low ||
					want.Volume != b.Volume || want.Value != b.Value {
					t.Errorf("stored %+v, market has %+v", b, want)
				}
				checked++
			}
			t.Logf("%s: %d bars stored, %d compared with the market", tt.name, n, checked)
			// verify with the corruption still on reports 0 mismatches:
			// a bad answer is refetched before it counts.
			rep, err := in.Verify(ctx, ingest.VerifyOptions{Date: sum.To, Sample: 100})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Errorf("verify: %d mismatches %v, %d errors %v; want none", len(rep.Mismatches), rep.Mismatches, len(rep.Errors), rep.Errors)
			}
			t.Logf("%s: verify sample %d matched %d (transient %d)", tt.name, rep.Sample, rep.Matched, rep.Transient)
		})
	}
}

func TestEmulatorInterruptedThenResumed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, c, src := kisSource(t, afterClose, 0)
	store := openStore(t)
	// KOSPI only (~950 stocks) keeps it quick; the whole market is the
	// same code path.
	opts := ingest.Options{Workers: 4, Markets: []kisfeed.Market{kisfeed.MarketKOSPI}}
	want := commonStocksIn(t, day, kisfeed.MarketKOSPI)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	half := &cancelAfter{Source: src, n: int64(want / ingest.BatchSize / 2), cancel: cancel}
	in := newIngester(half, store, afterClose)
	in.Stats = statsOf(c)
	first, err := in.Run(runCtx, opts)
	if first == nil || first.Status != kisfeed.RunInterrupted {
		t.Fatalf("first run: %+v, %v; want interrupted", first, err)
	}
	second, err := in.Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := store.CountBars(ctx, day, day)
	if n != want || second.Skipped != first.Written {
		t.Errorf("after resume: %d rows (want %d), skipped %d (want %d)", n, want, second.Skipped, first.Written)
	}
	full := int64((want + ingest.BatchSize - 1) / ingest.BatchSize)
	t.Logf("interrupted run: %d written, %d requests; resumed: %d written, %d requests; a full run needs %d batches",
		first.Written, first.Requests, second.Written, second.Requests, full)
	if second.Requests >= full {
		t.Errorf("resumed run made %d requests, want fewer than a full run's %d", second.Requests, full)
	}
}

// cancelAfter cancels the run's context when the n-th Quotes call starts,
// as SIGINT does through signal.NotifyContext.
type cancelAfter struct {
	kisfeed.Source
	n      int64
	calls  atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Quotes(ctx context.Context, codes []kisfeed.Code) ([]*kisfeed.Quote, error) {
	if c.calls.Add(1) == c.n {
		c.cancel()
	}
	return c.Source.Quotes(ctx, codes)
}

func TestPostgresSameCountsAsSQLite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pg, err := postgres.Open(ctx, pricestoretest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	lite := openStore(t)
	// The forced rerun (all unchanged) is in the conformance suite and
	// TestRunWholeMarketQuotesPath; here one whole-market run per store.
	src := synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }})
	var sums []*ingest.Summary
	for _, st := range []kisfeed.PriceStore{lite, pg} {
		s, err := newIngester(src, st, afterClose).Run(ctx, ingest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, s)
	}
	if a, b := sums[0], sums[1]; a.Universe != b.Universe || a.Written != b.Written || a.Inserted != b.Inserted ||
		a.Unchanged != b.Unchanged || a.Rejected != b.Rejected || a.Failed != b.Failed {
		t.Errorf("sqlite %+v\npostgres %+v\nwant the same counts", a, b)
	}
	la, _ := lite.BarsOn(ctx, day)
	pa, _ := pg.BarsOn(ctx, day)
	if len(la) != len(pa) || len(la) < 2400 {
		t.Fatalf("sqlite %d rows, postgres %d rows; want the same, >= 2400", len(la), len(pa))
	}
	for i := range la {
		if !la[i].SameValues(pa[i]) {
			t.Fatalf("row %d: sqlite %+v, postgres %+v", i, la[i], pa[i])
		}
	}
	t.Logf("sqlite and postgres: %d rows each, identical", len(la))
}

// BenchmarkTimedAgainstEmulator measures the bars at the emulator's
// real-server rate (20 req/s) on the real clock. A benchmark, not a test:
// it takes ~30 s, so it runs only with -bench:
//
//	go test -run '^$' -bench BenchmarkTimedAgainstEmulator -benchtime 1x -v ./internal/ingest/
func BenchmarkTimedAgainstEmulator(b *testing.B) {
	const rate = 20.0
	ctx := b.Context()

	b.Run("whole market, one day", func(b *testing.B) {
		srv, c, src := kisSource(b, afterClose, rate, emulator.WithRate(rate))
		in := newIngester(src, openStore(b), afterClose)
		in.Stats = statsOf(c)
		start := time.Now()
		sum, err := in.Run(ctx, ingest.Options{})
		if err != nil {
			b.Fatal(err)
		}
		wall := time.Since(start)
		st := srv.Stats()
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(float64(st.RateLimitRejections), "rejections")
		b.Logf("whole market: %d bars in %s wall (%s path), %d requests, limiter wait %s, emulator 201 rejections %d, max req in 1 s window %d",
			sum.Written, wall.Round(time.Millisecond), sum.Path, sum.Requests, sum.LimiterWait.Round(time.Millisecond),
			st.RateLimitRejections, st.MaxRequestsPerSecondWindow)
		if wall > 10*time.Second {
			b.Errorf("wall %s, want <= 10 s", wall)
		}
		if st.RateLimitRejections != 0 {
			b.Errorf("rate-limit rejections = %d, want 0", st.RateLimitRejections)
		}
	})

	b.Run("one year backfill, 100 stocks", func(b *testing.B) {
		srv, c, src := kisSource(b, afterClose, rate, emulator.WithRate(rate))
		in := newIngester(src, openStore(b), afterClose)
		in.Stats = statsOf(c)
		var codes []string
		from, to := kisfeed.Date(2024, 6, 4), kisfeed.Date(2025, 6, 4)
		for _, s := range simMarket().Universe() {
			if s.IsCommonStock() && (s.ListingDate.IsZero() || s.ListingDate.Before(from)) && len(codes) < 100 {
				codes = append(codes, s.Code)
			}
		}
		// Warm the token and master files so the timing is the charts'.
		if _, err := src.Universe(ctx); err != nil {
			b.Fatal(err)
		}
		before := c.Stats().Requests
		start := time.Now()
		sum, err := in.Run(ctx, ingest.Options{From: from, To: to, Codes: kisfeed.MustParseCodes(codes...)})
		if err != nil {
			b.Fatal(err)
		}
		wall := time.Since(start)
		reqs := c.Stats().Requests - before
		achieved := float64(reqs) / wall.Seconds()
		st := srv.Stats()
		b.ReportMetric(achieved, "req/s")
		b.ReportMetric(float64(st.RateLimitRejections), "rejections")
		b.Logf("backfill: %d bars for %d stocks over %d days in %s wall, %d requests = %.2f req/s (%.1f%% of %v), emulator 201 rejections %d",
			sum.Written, len(codes), len(krx.TradingDays(from, to)), wall.Round(time.Millisecond), reqs, achieved,
			100*achieved/rate, rate, st.RateLimitRejections)
		if achieved < 0.95*rate {
			b.Errorf("achieved %.2f req/s, want >= 95%% of %v", achieved, rate)
		}
		if st.RateLimitRejections != 0 {
			b.Errorf("rate-limit rejections = %d, want 0", st.RateLimitRejections)
		}
	})
}
