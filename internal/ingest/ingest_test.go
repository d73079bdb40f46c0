package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/ingest"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
	"github.com/kisfeed/kisfeed/internal/sqlite"
	"github.com/kisfeed/kisfeed/internal/synthetic"
	"github.com/kisfeed/kisfeed/krx"
)

// afterClose is 16:10 KST on Wednesday 2025-06-04, when the DAG runs: the
// latest session has closed and the next has not opened.
var (
	afterClose = time.Date(2025, 6, 4, 16, 10, 0, 0, kisfeed.KST)
	day        = kisfeed.Date(2025, 6, 4)
)

var (
	marketOnce sync.Once
	market     *sim.Market
)

// simMarket shares one synthetic market (seed 1) across tests: building
// and memoising series is the costly part and the market is read-only.
func simMarket() *sim.Market {
	marketOnce.Do(func() { market = sim.New(1) })
	return market
}

func openStore(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "kisfeed.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// counting wraps a source and counts its calls.
type counting struct {
	kisfeed.Source
	quotes, candles atomic.Int64
}

func (c *counting) Quotes(ctx context.Context, codes []kisfeed.Code) ([]*kisfeed.Quote, error) {
	c.quotes.Add(1)
	return c.Source.Quotes(ctx, codes)
}

func (c *counting) Candles(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
	c.candles.Add(1)
	return c.Source.Candles(ctx, q)
}

func newIngester(src kisfeed.Source, store kisfeed.PriceStore, now time.Time) *ingest.Ingester {
	return &ingest.Ingester{Source: src, Store: store, Clock: kisfeed.Clock{Market: func() time.Time { return now }}, DB: "test.db"}
}

func commonStocks(t *testing.T, asOf time.Time) int {
	t.Helper()
	return commonStocksIn(t, asOf, "")
}

// commonStocksIn counts the common stocks listed by asOf in market (all
// markets when "").
func commonStocksIn(t *testing.T, asOf time.Time, market kisfeed.Market) int {
	t.Helper()
	n := 0
	for _, s := range simMarket().Universe() {
		if s.IsCommonStock() && (s.ListingDate.IsZero() || !s.ListingDate.After(asOf)) && (market == "" || s.Market == market) {
			n++
		}
	}
	return n
}

func TestRunWholeMarketQuotesPath(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := openStore(t)
	src := &counting{Source: synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }})}
	in := newIngester(src, store, afterClose)

	sum, err := in.Run(ctx, ingest.Options{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := commonStocks(t, day)
	if want < 2400 {
		t.Fatalf("common stocks listed on %s = %d, want >= 2400", day.Format(time.DateOnly), want)
	}
	if sum.Path != ingest.PathQuotes {
		t.Errorf("path = %s, want quotes (%s)", sum.Path, sum.PathReason)
	}
	if !sum.From.Equal(day) || !sum.To.Equal(day) {
		t.Errorf("window = %v..%v, want %v", sum.From, sum.To, day)
	}
	if sum.Universe != want || sum.Written != want || sum.Inserted != want || sum.Rejected != 0 || sum.Failed != 0 {
		t.Errorf("universe %d written %d inserted %d rejected %d failed %d; want %d written, 0 rejected, 0 failed",
			sum.Universe, sum.Written, sum.Inserted, sum.Rejected, sum.Failed, want)
	}
	if got, wantCalls := src.quotes.Load(), int64((want+ingest.BatchSize-1)/ingest.BatchSize); got != wantCalls {
		t.Errorf("Quotes calls = %d, want %d (batches of %d)", got, wantCalls, ingest.BatchSize)
	}
	if src.candles.Load() != 0 {
		t.Errorf("Candles calls = %d, want 0 on the quotes path", src.candles.Load())
	}
	if sum.Status != kisfeed.RunSucceeded {
		t.Errorf("status = %s, want succeeded", sum.Status)
	}
	n, _ := store.CountBars(ctx, day, day)
	if n != want {
		t.Errorf("stored bars = %d, want %d", n, want)
	}
	// The stored bars are the synthetic market's day bars.
	for _, code := range []string{"005930", "000660", "035720"} {
		bars, _ := store.Bars(ctx, code, day, day)
		simBar, ok := simMarket().DailyBar(code, day)
		if len(bars) != 1 || !ok {
			t.Fatalf("%s: stored %d bars, sim ok %v; want 1 and true", code, len(bars), ok)
		}
		b := bars[0]
		if b.Open != simBar.Open || b.High != simBar.High || b.Low != simBar.Low || b.Close != simBar.Close ||
			b.Volume != simBar.Volume || b.Value != simBar.Value {
			t.Errorf("%s: stored %+v, want the sim bar %+v", code, b, simBar)
		}
		if b.Source != "mock/quotes" {
			t.Errorf("%s: source %q, want mock/quotes", code, b.Source)
		}
	}

	// Again: everything is complete, nothing is fetched or written.
	calls := src.quotes.Load()
	again, err := in.Run(ctx, ingest.Options{})
	if err != nil {
		t.Fatalf("second Run: %v", err)
	}
	if again.Skipped != want || again.Fetched != 0 || again.Written != 0 || src.quotes.Load() != calls {
		t.Errorf("second run: skipped %d fetched %d written %d calls %d; want %d skipped, nothing fetched",
			again.Skipped, again.Fetched, again.Written, src.quotes.Load()-calls, want)
	}
	// Forced: everything refetched, every row unchanged.
	forced, err := in.Run(ctx, ingest.Options{Force: true})
	if err != nil {
		t.Fatalf("forced Run: %v", err)
	}
	if forced.Fetched != want || forced.Written != 0 || forced.Unchanged != want {
		t.Errorf("forced run: fetched %d written %d unchanged %d; want %d fetched, 0 written, all unchanged",
			forced.Fetched, forced.Written, forced.Unchanged, want)
	}
	if n, _ := store.CountBars(ctx, day, day); n != want {
		t.Errorf("stored bars after 3 runs = %d, want %d", n, want)
	}
	runs, err := store.Runs(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 || runs[2].Status != kisfeed.RunSucceeded || runs[2].Written != want || runs[0].Unchanged != want {
		t.Errorf("runs = %+v, want 3 succeeded runs recording the counts", runs)
	}
}

func TestRunCandlesPathMatchesQuotesPath(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := openStore(t)
	src := &counting{Source: synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }})}
	in := newIngester(src, store, afterClose)
	codes := []string{"005930", "000660", "035420", "005935", "068270"}

	if _, err := in.Run(ctx, ingest.Options{Codes: kisfeed.MustParseCodes(codes...)}); err != nil {
		t.Fatal(err)
	}
	sum, err := in.Run(ctx, ingest.Options{Codes: kisfeed.MustParseCodes(codes...), Force: true, Path: ingest.PathCandles})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Path != ingest.PathCandles || sum.Unchanged != len(codes) || sum.Written != 0 {
		t.Errorf("candles over quotes: path %s unchanged %d written %d; want candles, %d unchanged, 0 written",
			sum.Path, sum.Unchanged, sum.Written, len(codes))
	}
	if got := src.candles.Load(); got != int64(len(codes)) {
		t.Errorf("Candles calls = %d, want %d (one per code)", got, len(codes))
	}
}

func TestRunBackfillWindow(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := openStore(t)
	src := &counting{Source: synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }})}
	in := newIngester(src, store, afterClose)
	from, to := kisfeed.Date(2025, 5, 1), kisfeed.Date(2025, 5, 31)
	codes := []string{"005930", "000660", "035420"}
	sum, err := in.Run(ctx, ingest.Options{From: from, To: to, Codes: kisfeed.MustParseCodes(codes...)})
	if err != nil {
		t.Fatal(err)
	}
	days := krx.TradingDays(from, to)
	if sum.Path != ingest.PathCandles || sum.Days != len(days) || sum.Written != len(days)*len(codes) {
		t.Errorf("path %s days %d written %d; want candles, %d days, %d bars", sum.Path, sum.Days, sum.Written,
			len(days), len(days)*len(codes))
	}
	for _, code := range codes {
		got, _ := store.Bars(ctx, code, from, to)
		want := simMarket().DailyBars(code, from, to)
		if len(got) != len(want) {
			t.Fatalf("%s: %d bars stored, want %d", code, len(got), len(want))
		}
		for i := range want {
			if !got[i].Date.Equal(kisfeed.Day(want[i].Time)) || got[i].Close != want[i].Close {
				t.Errorf("%s bar %d = %v close %d, want %v close %d", code, i, got[i].Date, got[i].Close, want[i].Time, want[i].Close)
			}
		}
	}
	// A wider window resumes: only what is missing is fetched, but a
	// code lacking any day of the window is fetched whole.
	sum2, err := in.Run(ctx, ingest.Options{From: from, To: kisfeed.Date(2025, 6, 4), Codes: kisfeed.MustParseCodes(codes...)})
	if err != nil {
		t.Fatal(err)
	}
	// June 2 and 4 are new (June 3 was a holiday).
	if sum2.Skipped != 0 || sum2.Inserted != 2*len(codes) || sum2.Unchanged != len(days)*len(codes) {
		t.Errorf("wider window: skipped %d inserted %d unchanged %d; want 0, %d, %d", sum2.Skipped, sum2.Inserted,
			sum2.Unchanged, 2*len(codes), len(days)*len(codes))
	}
}

// corrupting wraps a source and damages chosen codes' answers, the first
// `times` times each is asked (forever when times < 0).
type corrupting struct {
	kisfeed.Source
	mu      sync.Mutex
	bad     map[string]func(*kisfeed.Quote) // guarded by mu
	times   int
	seen    map[string]int // guarded by mu
	candles int            // Candles calls, guarded by mu
}

func (c *corrupting) Quotes(ctx context.Context, codes []kisfeed.Code) ([]*kisfeed.Quote, error) {
	qs, err := c.Source.Quotes(ctx, codes)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, q := range qs {
		if q == nil {
			continue
		}
		if f, ok := c.bad[q.Code]; ok && (c.times < 0 || c.seen[q.Code] < c.times) {
			c.seen[q.Code]++
			f(q)
		}
	}
	return qs, err
}

// Candles damages the daily chart of the bad codes too when the
// corruption is persistent (bad data, not a bad response).
func (c *corrupting) Candles(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
	cs, err := c.Source.Candles(ctx, q)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.candles++
	if _, ok := c.bad[q.Code.String()]; ok && c.times < 0 && err == nil {
		cp := *cs
		cp.Bars = slices.Clone(cs.Bars)
		for i := range cp.Bars {
			cp.Bars[i].High = cp.Bars[i].Low - 1
		}
		return &cp, nil
	}
	return cs, err
}

func TestRunRejectsCorruptBars(t *testing.T) {
	t.Parallel()
	bad := map[string]func(*kisfeed.Quote){
		"005930": func(q *kisfeed.Quote) { q.High, q.Low = q.Low-100, q.High },               // high below low
		"000660": func(q *kisfeed.Quote) { q.Volume = -q.Volume },                            // negative volume
		"035420": func(q *kisfeed.Quote) { q.Price++ },                                       // off tick
		"005380": func(q *kisfeed.Quote) { q.Open = 0 },                                      // missing
		"068270": func(q *kisfeed.Quote) { q.High = q.PrevClose * 2; q.Price = q.High },      // beyond the limit
		"035720": func(q *kisfeed.Quote) { q.Meta.AsOf = afterClose.Add(-70 * time.Minute) }, // a pre-close snapshot
	}
	codes := []string{"005930", "000660", "035420", "005380", "068270", "035720", "005935", "207940"}
	tests := []struct {
		name         string
		times        int
		wantRejected int
		wantWritten  int
		wantRetried  bool
	}{
		{"bad quote: the daily chart stores the good bar", 1, len(bad), len(codes), true},
		{"bad data: rejected twice, never stored", -1, 2 * len(bad), len(codes) - len(bad), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			store := openStore(t)
			src := &corrupting{Source: synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }}),
				bad: bad, times: tt.times, seen: map[string]int{}}
			sum, err := newIngester(src, store, afterClose).Run(ctx, ingest.Options{Codes: kisfeed.MustParseCodes(codes...)})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Rejected != tt.wantRejected || sum.Written != tt.wantWritten {
				t.Errorf("rejected %d written %d, want %d and %d", sum.Rejected, sum.Written, tt.wantRejected, tt.wantWritten)
			}
			rej, err := store.Rejected(ctx, day, day)
			if err != nil {
				t.Fatal(err)
			}
			if len(rej) != tt.wantRejected {
				t.Fatalf("rejected_bars rows = %d, want %d", len(rej), tt.wantRejected)
			}
			for _, r := range rej {
				if _, ok := bad[r.Code]; !ok {
					t.Errorf("rejected %s (%s), which was not corrupted", r.Code, r.Reason)
				}
				var q kisfeed.Quote
				if err := json.Unmarshal(r.Payload, &q); err != nil || q.Code != r.Code {
					t.Errorf("payload of %s = %s, want the fetched quote", r.Code, r.Payload)
				}
				if r.RunID != sum.RunID || r.Reason == "" {
					t.Errorf("rejected row %+v: want run %d and a reason", r, sum.RunID)
				}
				// A corrupted bar never reaches daily_prices.
				stored, _ := store.Bars(ctx, r.Code, day, day)
				for _, b := range stored {
					if b.Volume < 0 || b.High < b.Low || b.Open == 0 || !krx.OnTick(b.Close) {
						t.Errorf("corrupt bar stored: %+v", b)
					}
				}
			}
			if src.candles != len(bad) {
				t.Errorf("Candles calls = %d, want %d (one re-check per rejected quote)", src.candles, len(bad))
			}
			if tt.times < 0 {
				if sum.Incomplete != len(bad) || len(sum.RejectedCodes) != len(bad) {
					t.Errorf("incomplete %d rejected codes %v, want %d", sum.Incomplete, sum.RejectedCodes, len(bad))
				}
			} else if sum.Incomplete != 0 {
				t.Errorf("incomplete = %d, want 0 after the retry", sum.Incomplete)
			}
		})
	}
}

func TestRunAboveMaxFailureRatioIsRecordedFailed(t *testing.T) {
	t.Parallel()
	base := synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }})
	src := &sourcetest.Func{
		UniverseFn: base.Universe,
		CandlesFn: func(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
			return nil, errors.New("upstream 500")
		},
	}
	codes := []string{"005930", "000660"}
	tests := []struct {
		name     string
		maxRatio float64
		want     kisfeed.RunStatus
	}{
		{"above the ratio", 0.001, kisfeed.RunFailed},
		{"no ratio given", 0, kisfeed.RunSucceeded},
		{"within the ratio", 1, kisfeed.RunSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := openStore(t)
			sum, err := newIngester(src, store, afterClose).Run(t.Context(),
				ingest.Options{Codes: kisfeed.MustParseCodes(codes...), Path: ingest.PathCandles, MaxFailureRatio: tt.maxRatio})
			if err != nil {
				t.Fatalf("Run: %v (per-code failures return a summary, not an error)", err)
			}
			if sum.Status != tt.want {
				t.Errorf("summary status: got %s, want %s", sum.Status, tt.want)
			}
			runs, err := store.Runs(t.Context(), 1)
			if err != nil || len(runs) != 1 || runs[0].Status != tt.want {
				t.Fatalf("recorded run: got %v, %v; want status %s", runs, err, tt.want)
			}
			if tt.want == kisfeed.RunFailed && !strings.Contains(runs[0].Error, "2 of 2 codes") {
				t.Errorf("recorded error: got %q, want it to say 2 of 2 codes were left without bars", runs[0].Error)
			}
		})
	}
}

func TestRunFailuresAreCollected(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := openStore(t)
	base := synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }})
	var calls atomic.Int64
	boom := errors.New("upstream 500")
	var mu sync.Mutex
	var asked []time.Time // From of each 000660 call, guarded by mu
	src := &sourcetest.Func{
		UniverseFn: base.Universe,
		CandlesFn: func(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
			calls.Add(1)
			if q.Code.String() == "000660" {
				mu.Lock()
				asked = append(asked, q.From)
				mu.Unlock()
				return nil, boom
			}
			return base.Candles(ctx, q)
		},
	}
	codes := []string{"005930", "000660", "035420"}
	sum, err := newIngester(src, store, afterClose).Run(ctx, ingest.Options{Codes: kisfeed.MustParseCodes(codes...), Path: ingest.PathCandles})
	if err != nil {
		t.Fatalf("Run: %v (per-code failures must not fail the run)", err)
	}
	if sum.Failed != 1 || len(sum.FailedCodes) != 1 || sum.FailedCodes[0] != "000660" || sum.Written != 2 {
		t.Errorf("failed %d %v written %d; want [000660] and 2 written", sum.Failed, sum.FailedCodes, sum.Written)
	}
	if got := calls.Load(); got != 4 {
		t.Errorf("Candles calls = %d, want 4 (3 + one retry of the failure)", got)
	}
	// The retry asks one trading day further back: a different question,
	// so a cache in front cannot answer it with what it kept.
	if len(asked) != 2 || !asked[1].Equal(krx.PrevTradingDay(asked[0])) {
		t.Errorf("000660 asked from %v, want twice, the retry one trading day earlier", asked)
	}
	if r := sum.FailureRatio(); r < 0.33 || r > 0.34 {
		t.Errorf("FailureRatio = %v, want 1/3", r)
	}
}

func TestRunInterruptedThenResumed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := openStore(t)
	base := synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }})
	// KOSPI only (~950 stocks): the whole market adds time, not coverage.
	opts := ingest.Options{Workers: 4, Markets: []kisfeed.Market{kisfeed.MarketKOSPI}}
	want := commonStocksIn(t, day, kisfeed.MarketKOSPI)
	full := int64((want + ingest.BatchSize - 1) / ingest.BatchSize)

	// Cancel when about half the batches have been asked for, as SIGINT
	// would: run() turns the signal into ctx cancellation.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var calls atomic.Int64
	src := &sourcetest.Func{
		UniverseFn: base.Universe,
		QuotesFn: func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
			if calls.Add(1) == full/2 {
				cancel()
			}
			return base.Quotes(ctx, kisfeed.MustParseCodes(codes...))
		},
	}
	in := newIngester(src, store, afterClose)
	sum, err := in.Run(runCtx, opts)
	if !errors.Is(err, ingest.ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run error = %v, want ErrInterrupted wrapping context.Canceled", err)
	}
	if sum == nil || sum.Status != kisfeed.RunInterrupted {
		t.Fatalf("summary = %+v, want status interrupted", sum)
	}
	stored, _ := store.CountBars(ctx, day, day)
	if stored == 0 || stored >= want {
		t.Fatalf("stored after interrupt = %d, want part of %d", stored, want)
	}
	if sum.Written != stored {
		t.Errorf("summary written %d, stored %d: want what was fetched flushed", sum.Written, stored)
	}
	if sum.Pending == 0 || sum.Pending+stored != want {
		t.Errorf("pending %d + stored %d, want %d", sum.Pending, stored, want)
	}
	runs, _ := store.Runs(ctx, 1)
	if len(runs) != 1 || runs[0].Status != kisfeed.RunInterrupted || runs[0].FinishedAt.IsZero() {
		t.Errorf("run record = %+v, want interrupted and finished", runs)
	}
	first := calls.Load()

	// Started again: only the missing codes are fetched.
	sum2, err := in.Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	second := calls.Load() - first
	if sum2.Skipped != stored || sum2.Written != want-stored || sum2.Unchanged != 0 {
		t.Errorf("resumed: skipped %d written %d unchanged %d; want %d, %d, 0", sum2.Skipped, sum2.Written,
			sum2.Unchanged, stored, want-stored)
	}
	if second >= full {
		t.Errorf("resumed run made %d calls, want fewer than a full run's %d", second, full)
	}
	if n, _ := store.CountBars(ctx, day, day); n != want {
		t.Errorf("stored after resume = %d, want %d (complete, no duplicates)", n, want)
	}
}

func TestRunStoreFailureFailsRun(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	src := synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }})
	fs := &failingStore{PriceStore: store}
	sum, err := newIngester(src, fs, afterClose).Run(t.Context(), ingest.Options{Codes: kisfeed.MustParseCodes("005930")})
	if err == nil || !errors.Is(err, errDisk) {
		t.Fatalf("Run error = %v, want the store's error", err)
	}
	if sum == nil || sum.Status != kisfeed.RunFailed {
		t.Fatalf("summary %+v, want status failed", sum)
	}
	runs, _ := store.Runs(t.Context(), 1)
	if len(runs) != 1 || runs[0].Status != kisfeed.RunFailed || runs[0].Error == "" {
		t.Errorf("run record = %+v, want failed with the error", runs)
	}
}

var errDisk = errors.New("disk full")

type failingStore struct{ kisfeed.PriceStore }

func (failingStore) UpsertBars(context.Context, []kisfeed.DailyBar) (kisfeed.WriteResult, error) {
	return kisfeed.WriteResult{}, errDisk
}

func TestRunBadOptions(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	in := newIngester(synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }}), store, afterClose)
	tests := []struct {
		name string
		opts ingest.Options
		want error
	}{
		{"holiday", ingest.Options{From: kisfeed.Date(2025, 6, 3)}, kisfeed.ErrInvalid},
		{"weekend", ingest.Options{From: kisfeed.Date(2025, 6, 1)}, kisfeed.ErrInvalid},
		{"future", ingest.Options{From: kisfeed.Date(2025, 6, 5)}, kisfeed.ErrInvalid},
		{"reversed", ingest.Options{From: kisfeed.Date(2025, 6, 4), To: kisfeed.Date(2025, 6, 2)}, kisfeed.ErrInvalid},
		{"quotes for an old day", ingest.Options{From: kisfeed.Date(2025, 6, 2), Path: ingest.PathQuotes}, kisfeed.ErrInvalid},
		{"unknown code", ingest.Options{Codes: kisfeed.MustParseCodes("999999")}, kisfeed.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := in.Run(t.Context(), tt.opts)
			if !errors.Is(err, tt.want) {
				t.Errorf("Run(%+v) error = %v, want %v", tt.opts, err, tt.want)
			}
		})
	}
	if runs, _ := store.Runs(t.Context(), 10); len(runs) != 0 {
		t.Errorf("runs recorded for bad options: %d, want 0", len(runs))
	}
}

// badListing is a source whose universe is a few common stocks and one
// listing with a malformed code.
type badListing struct{ kisfeed.Source }

func (b badListing) Universe(ctx context.Context) ([]kisfeed.Stock, error) {
	all, err := b.Source.Universe(ctx)
	if err != nil {
		return nil, err
	}
	var out []kisfeed.Stock
	for _, s := range all {
		if s.IsCommonStock() && len(out) < 3 {
			out = append(out, s)
		}
	}
	bad := out[0]
	bad.Code = "12345"
	return append(out, bad), nil
}

// TestMalformedUniverseCode: a malformed code in the upstream's universe
// is parsed once, when the universe is read, and becomes that code's
// failure with the reason; the others are ingested.
func TestMalformedUniverseCode(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	src := badListing{synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }})}
	sum, err := newIngester(src, store, afterClose).Run(t.Context(), ingest.Options{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if sum.Universe != 4 || sum.Failed != 1 || !slices.Equal(sum.FailedCodes, []string{"12345"}) {
		t.Errorf("summary: universe %d, failed %d %v; want 4, 1 [12345]", sum.Universe, sum.Failed, sum.FailedCodes)
	}
	if sum.Written != 3 {
		t.Errorf("written: got %d, want the 3 good codes", sum.Written)
	}
}

func TestChoosePath(t *testing.T) {
	t.Parallel()
	at := func(d, h, m int) time.Time { return time.Date(2025, 6, d, h, m, 0, 0, kisfeed.KST) }
	tests := []struct {
		name     string
		now      time.Time
		from, to time.Time
		want     ingest.Path
	}{
		{"after the close", at(4, 16, 10), day, day, ingest.PathQuotes},
		{"at the close", at(4, 15, 30), day, day, ingest.PathQuotes},
		{"next morning before the open", at(5, 8, 59), day, day, ingest.PathQuotes},
		{"next session running", at(5, 9, 0), day, day, ingest.PathCandles},
		{"older day", at(4, 16, 10), kisfeed.Date(2025, 6, 2), kisfeed.Date(2025, 6, 2), ingest.PathCandles},
		{"window", at(4, 16, 10), kisfeed.Date(2025, 6, 2), day, ingest.PathCandles},
		{"over a holiday weekend", time.Date(2025, 6, 7, 12, 0, 0, 0, kisfeed.KST), kisfeed.Date(2025, 6, 5), kisfeed.Date(2025, 6, 5), ingest.PathQuotes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why, err := ingest.ChoosePath(ingest.PathAuto, tt.now, tt.from, tt.to)
			if err != nil || got != tt.want {
				t.Errorf("ChoosePath = %s (%s), %v; want %s", got, why, err, tt.want)
			}
		})
	}
}

func TestWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		from, to, now time.Time
		wantFrom      time.Time
		wantDays      int
		wantErr       bool
	}{
		{"default after close", time.Time{}, time.Time{}, afterClose, day, 1, false},
		{"default before close", time.Time{}, time.Time{}, time.Date(2025, 6, 4, 15, 0, 0, 0, kisfeed.KST), kisfeed.Date(2025, 6, 2), 1, false},
		{"trimmed to trading days", kisfeed.Date(2025, 5, 31), kisfeed.Date(2025, 6, 4), afterClose, kisfeed.Date(2025, 6, 2), 2, false},
		{"holiday", kisfeed.Date(2025, 6, 6), time.Time{}, time.Date(2025, 6, 9, 16, 0, 0, 0, kisfeed.KST), time.Time{}, 0, true},
		{"today before close", day, day, time.Date(2025, 6, 4, 10, 0, 0, 0, kisfeed.KST), time.Time{}, 0, true},
		{"before the calendar", kisfeed.Date(2019, 12, 30), time.Time{}, afterClose, time.Time{}, 0, true},
		{"starts before the calendar", kisfeed.Date(2019, 12, 1), kisfeed.Date(2020, 1, 10), afterClose, time.Time{}, 0, true},
		{"first day of the calendar", kisfeed.Date(2020, 1, 1), kisfeed.Date(2020, 1, 3), afterClose, kisfeed.Date(2020, 1, 2), 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, _, days, err := ingest.Window(tt.from, tt.to, tt.now)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Window error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, kisfeed.ErrInvalid) {
					t.Errorf("error %v does not wrap ErrInvalid", err)
				}
				return
			}
			if !from.Equal(tt.wantFrom) || len(days) != tt.wantDays {
				t.Errorf("Window = %v, %d days; want %v, %d", from, len(days), tt.wantFrom, tt.wantDays)
			}
		})
	}
}

func TestSummaryJSONAndText(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	src := synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }})
	sum, err := newIngester(src, store, afterClose).Run(t.Context(), ingest.Options{Codes: kisfeed.MustParseCodes("005930")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"status": "succeeded", "from": "2025-06-04", "path": "quotes", "universe": 1.0,
		"written": 1.0, "unchanged": 0.0, "rejected": 0.0, "malformed": 0.0, "failed": 0.0, "requests": 0.0, "db": "test.db",
		"workers": float64(ingest.DefaultWorkers), "rate_limit_wait_seconds": 0.0, "rate_limit_wait_avg_seconds": 0.0} {
		if m[k] != want {
			t.Errorf("json %q = %v, want %v", k, m[k], want)
		}
	}
	if codes, ok := m["failed_codes"].([]any); !ok || len(codes) != 0 {
		t.Errorf("failed_codes = %v, want []", m["failed_codes"])
	}
	var text bytesBuffer
	if err := sum.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"path", "quotes", "universe", "written", "unchanged", "rejected", "failed", "requests", "elapsed", "test.db"} {
		if !contains(text.String(), want) {
			t.Errorf("text summary lacks %q:\n%s", want, text.String())
		}
	}
}

type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *bytesBuffer) String() string              { return string(w.b) }

func contains(s, sub string) bool { return len(sub) == 0 || indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func ExampleSummary_WriteText() {
	s := &ingest.Summary{Status: kisfeed.RunSucceeded, From: day, To: day, Path: ingest.PathQuotes,
		PathReason: "latest session", Universe: 2, Fetched: 2, Written: 2, Inserted: 2, DB: "kisfeed.db", RunID: 1}
	_ = s.WriteText(stdout{})
	// Output:
	// run         1 (succeeded)
	// date        2025-06-04
	// path        quotes — latest session
	// universe    2 common stocks
	// skipped     0 already stored
	// fetched     2 bars
	// written     2 (2 new, 0 updated)
	// unchanged   0
	// rejected    0 bars; codes still rejected: -
	// failed      0 codes: -
	// requests    0 HTTP (0 source calls, 0 retries)
	// rate limit  0 EGW00201 answers; limiter wait: no HTTP requests
	// elapsed     0s
	// db          kisfeed.db
}

type stdout struct{}

func (stdout) Write(p []byte) (int, error) { fmt.Print(string(p)); return len(p), nil }

// TestSummaryRateLimitLine: the limiter wait is summed over requests that
// wait at the same time; the text leads with the mean per request and
// never reads like wall time, and the JSON carries both.
func TestSummaryRateLimitLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		sum      ingest.Summary
		wantText string
		wantAvg  float64
	}{
		{"busy run", ingest.Summary{RateLimited: 3, Requests: 480, LimiterWait: 20 * time.Minute, Workers: 8},
			"3 EGW00201 answers; limiter wait 2.5s per request on average (20m0s summed over 480 requests by 8 workers, not wall time)", 2.5},
		{"short waits", ingest.Summary{Requests: 88, LimiterWait: 3*time.Second + 300*time.Millisecond},
			"0 EGW00201 answers; limiter wait 38ms per request on average (3.3s summed over 88 requests, not wall time)", 0.0375},
		{"no HTTP", ingest.Summary{Workers: 8}, "0 EGW00201 answers; limiter wait: no HTTP requests", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var text bytesBuffer
			if err := tt.sum.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if !contains(text.String(), "rate limit  "+tt.wantText+"\n") {
				t.Errorf("got\n%s\nwant the line %q", text.String(), tt.wantText)
			}
			b, _ := json.Marshal(&tt.sum)
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if m["rate_limit_wait_avg_seconds"] != tt.wantAvg || m["rate_limit_wait_seconds"] != tt.sum.LimiterWait.Seconds() ||
				m["workers"] != float64(tt.sum.Workers) {
				t.Errorf("json avg %v sum %v workers %v; want %v, %v, %d", m["rate_limit_wait_avg_seconds"], m["rate_limit_wait_seconds"],
					m["workers"], tt.wantAvg, tt.sum.LimiterWait.Seconds(), tt.sum.Workers)
			}
		})
	}
}
