package kis

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/emulator"
	"github.com/kisfeed/kisfeed/emulator/emulatortest"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/krx"
)

// marketDay is a trading day the emulator tests pin the market at, after
// the close so every bar of the day is complete.
var marketDay = time.Date(2026, 5, 20, 15, 40, 0, 0, kisfeed.KST)

var (
	simOnce sync.Once
	simMkt  *sim.Market
)

// simMarket is the synthetic market the emulator serves (seed 1).
func simMarket() *sim.Market {
	simOnce.Do(func() { simMkt = sim.New(1) })
	return simMkt
}

// startEmulator runs an emulator pinned at marketDay, rate limit off
// unless opts say otherwise, and a client for it.
func startEmulator(t testing.TB, emuOpts []emulator.Option, opts ...Option) (*emulator.Server, *Client) {
	t.Helper()
	clock := func() time.Time { return marketDay }
	all := append([]emulator.Option{emulator.WithMarket(simMarket()), emulator.WithRate(0),
		emulator.WithMarketClock(clock)}, emuOpts...)
	srv, base := emulatortest.Start(t, all...)
	c := testClient(t, base, append([]Option{WithClock(clock)}, opts...)...)
	return srv, c
}

func TestEmulatorEndpoints(t *testing.T) {
	t.Parallel()
	_, c := startEmulator(t, nil)
	m := simMarket()
	ctx := t.Context()

	t.Run("price", func(t *testing.T) {
		q, _, err := c.Price(ctx, "005930")
		if err != nil {
			t.Fatal(err)
		}
		want, _ := m.QuoteAt("005930", marketDay)
		if q.Price != want.Price || q.Volume != want.Volume || q.PrevClose != want.PrevClose ||
			q.UpperLimit != want.UpperLimit || q.TradingValue != want.TradingValue {
			t.Errorf("got %+v\nwant %+v", *q, want)
		}
		if _, _, err := c.Price(ctx, "999999"); !errors.Is(err, kisfeed.ErrNotFound) {
			t.Errorf("unknown: got %v, want ErrNotFound", err)
		}
	})
	t.Run("order book", func(t *testing.T) {
		b, _, err := c.OrderBook(ctx, "005930")
		if err != nil {
			t.Fatal(err)
		}
		want, _ := m.OrderBookAt("005930", marketDay)
		if b.Asks != want.Asks || b.Bids != want.Bids {
			t.Errorf("got %+v\nwant %+v", b, want)
		}
		if _, _, err := c.OrderBook(ctx, "999999"); !errors.Is(err, kisfeed.ErrNotFound) {
			t.Errorf("unknown: got %v, want ErrNotFound", err)
		}
	})
	t.Run("daily candles since 2020 equal the sim series", func(t *testing.T) {
		from := kisfeed.Date(2020, 1, 1)
		got, err := c.DailyCandles(ctx, "005930", PeriodDay, from, marketDay, true)
		if err != nil {
			t.Fatal(err)
		}
		want := m.DailyBars("005930", from, marketDay)
		if len(got) < 1500 {
			t.Fatalf("got %d bars, want every trading day since 2020 (%d)", len(got), len(want))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("bars differ (-sim +client):\n%s", diff)
		}
	})
	t.Run("weekly and monthly", func(t *testing.T) {
		for _, p := range []Period{PeriodWeek, PeriodMonth} {
			bars, err := c.DailyCandles(ctx, "000660", p, kisfeed.Date(2024, 1, 1), marketDay, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(bars) < 12 {
				t.Errorf("%s: got %d bars", p, len(bars))
			}
		}
	})
	t.Run("minute candles today", func(t *testing.T) {
		got, err := c.MinuteCandles(ctx, "005930", marketDay)
		if err != nil {
			t.Fatal(err)
		}
		want := m.MinuteBars("005930", marketDay)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("minute bars differ (-sim +client):\n%s", diff)
		}
	})
	t.Run("minute candles past day", func(t *testing.T) {
		day := kisfeed.Date(2026, 5, 19)
		got, err := c.MinuteCandles(ctx, "000660", day)
		if err != nil {
			t.Fatal(err)
		}
		want := m.MinuteBars("000660", day)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("minute bars differ (-sim +client):\n%s", diff)
		}
	})
	t.Run("prices in batches", func(t *testing.T) {
		u := m.Universe()
		var codes []string
		for i := 0; i < 70; i++ {
			codes = append(codes, u[i*7].Code)
		}
		codes = append(codes[:35], append([]string{"999999", "bad"}, codes[35:]...)...)
		qs, err := c.Prices(ctx, codes)
		be, ok := err.(*kisfeed.BatchError)
		if !ok || len(be.Errs) != 2 || !errors.Is(be.Errs["999999"], kisfeed.ErrNotFound) || !errors.Is(be.Errs["bad"], kisfeed.ErrInvalid) {
			t.Fatalf("got %v, want a BatchError for 999999 and bad", err)
		}
		for i, code := range codes {
			if code == "999999" || code == "bad" {
				if qs[i] != nil {
					t.Errorf("%s: got a quote, want nil", code)
				}
				continue
			}
			want, _ := m.QuoteAt(code, marketDay)
			if qs[i] == nil || qs[i].Code != code || qs[i].Price != want.Price || qs[i].Name != want.Name {
				t.Errorf("position %d (%s): got %+v, want price %d", i, code, qs[i], want.Price)
			}
		}
	})
	t.Run("stock info", func(t *testing.T) {
		info, err := c.StockInfo(ctx, "005930")
		if err != nil {
			t.Fatal(err)
		}
		want, _ := m.Info("005930")
		if info.Name != want.Name || info.ISIN != want.ISIN || info.Market != want.Market || info.ListedShares != want.ListedShares {
			t.Errorf("got %+v\nwant %+v", info, want)
		}
		if _, err := c.StockInfo(ctx, "999999"); !errors.Is(err, kisfeed.ErrNotFound) {
			t.Errorf("unknown: got %v, want ErrNotFound", err)
		}
	})
	t.Run("calendar over several queries", func(t *testing.T) {
		from, to := kisfeed.Date(2025, 9, 1), kisfeed.Date(2025, 12, 31)
		days, err := c.Calendar(ctx, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if len(days) != 122 {
			t.Fatalf("got %d days, want 122", len(days))
		}
		for _, d := range days {
			if want := isTradingKRX(d.Date); d.Open != want {
				t.Errorf("%s: got open=%v, want %v", ymd(d.Date), d.Open, want)
			}
		}
		hol, err := c.Holidays(ctx, kisfeed.Date(2025, 10, 1), kisfeed.Date(2025, 10, 10))
		if err != nil || len(hol) != 5 { // 3, 6, 7, 8, 9 October
			t.Errorf("holidays: got %v %v, want the 5 Chuseok weekdays", hol, err)
		}
		open, err := c.IsTradingDay(ctx, kisfeed.Date(2025, 10, 3))
		if err != nil || open {
			t.Errorf("2025-10-03: got %v %v, want closed", open, err)
		}
	})
	t.Run("masters equal the sim universe", func(t *testing.T) {
		got, err := c.Masters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := m.Universe()
		if len(got) != len(want) {
			t.Fatalf("got %d stocks, want %d", len(got), len(want))
		}
		for i := range want {
			w := want[i]
			w.ListedShares = w.ListedShares / 1000 * 1000 // the file carries thousands
			if diff := cmp.Diff(w, got[i]); diff != "" {
				t.Fatalf("stock %d differs (-sim +client):\n%s", i, diff)
			}
		}
	})
}

func TestEmulatorMockFallbacks(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	srv, c := startEmulator(t, []emulator.Option{emulator.WithServerKind("mock")}, WithLogger(logs.logger()))
	ctx := t.Context()
	m := simMarket()
	for range 2 {
		qs, err := c.Prices(ctx, []string{"005930", "000660", "999999"})
		if _, ok := err.(*kisfeed.BatchError); !ok || qs[0] == nil || qs[1] == nil || qs[2] != nil {
			t.Fatalf("prices: got %v %v", qs, err)
		}
		info, err := c.StockInfo(ctx, "005930")
		if err != nil || info.Name != "삼성전자" {
			t.Fatalf("stock info: got %+v %v", info, err)
		}
		open, err := c.IsTradingDay(ctx, kisfeed.Date(2025, 10, 3))
		if err != nil || open {
			t.Fatalf("calendar: got %v %v", open, err)
		}
	}
	if _, err := c.MinuteCandles(ctx, "005930", kisfeed.Date(2026, 5, 19)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("past minutes on mock: got %v, want ErrUnsupported", err)
	}
	// The client learned from EGW00213 (it was configured as real): no
	// second attempt at the missing TRs, and one log line each.
	st := srv.Stats()
	for _, tr := range []string{TrMultPrice, TrStockInfo, TrHoliday} {
		if n := st.RequestsByTrID[tr]; n != 1 {
			t.Errorf("%s requests: got %d, want 1", tr, n)
		}
	}
	for _, msg := range []string{"no intstock-multprice", "no search-stock-info", "no chk-holiday"} {
		if n := strings.Count(logs.String(), msg); n != 1 {
			t.Errorf("log %q: got %d times, want once", msg, n)
		}
	}
	_ = m
	// Configured as mock: no attempt at all.
	_, c2 := startEmulator(t, []emulator.Option{emulator.WithServerKind("mock")}, WithServer(Mock), WithRateLimit(10000))
	if _, err := c2.Prices(ctx, []string{"005930"}); err != nil {
		t.Fatal(err)
	}
}

func TestEmulatorFaults(t *testing.T) {
	t.Parallel()
	faults, err := emulator.ParseFaults("error=1%,rate-limit=1%,seed=7")
	if err != nil {
		t.Fatal(err)
	}
	srv, c := startEmulator(t, []emulator.Option{emulator.WithFaults(faults)})
	calls := envInt("KISFEED_FAULT_CALLS", 200) // the bar: 1000
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	work := make(chan string)
	for range 8 {
		wg.Go(func() {
			for code := range work {
				if _, _, err := c.Price(t.Context(), code); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range calls {
		work <- []string{"005930", "000660", "035720"}[i%3]
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("call failed: %v", err)
	}
	st := srv.Stats()
	injected := st.FaultsInjected[emulator.FaultError] + st.FaultsInjected[emulator.FaultRateLimit]
	if injected == 0 {
		t.Errorf("no faults injected: %+v", st.FaultsInjected)
	}
	if got := c.Stats().Retries; got != injected {
		t.Errorf("retries: got %d, want one per injected fault (%d)", got, injected)
	}
}

// TestEmulatorTokenExpiry expires every token each 100 calls while a
// shared fake clock advances 1 s per call: every call succeeds and tokens
// are issued at most once a minute (the emulator refuses quicker ones).
func TestEmulatorTokenExpiry(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(marketDay)
	srv, base := emulatortest.Start(t, emulator.WithMarket(simMarket()), emulator.WithRate(0),
		emulator.WithClock(clk.Now), emulator.WithMarketClock(func() time.Time { return marketDay }))
	c := testClient(t, base)
	clk.install(c)
	const calls = 1000
	for i := range calls {
		if i > 0 && i%100 == 0 {
			srv.ExpireTokens()
		}
		if _, _, err := c.Price(t.Context(), "005930"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		clk.Advance(time.Second)
	}
	st := srv.Stats()
	if st.TokenRejections != 0 {
		t.Errorf("token rejections (EGW00133): got %d, want 0", st.TokenRejections)
	}
	if st.TokensIssued != 10 || st.TokenRequests != 10 {
		t.Errorf("tokens: issued %d requests %d, want 10 and 10 (one per expiry)", st.TokensIssued, st.TokenRequests)
	}
}

// TestEmulatorTokenExpiryTooSoon expires the token 10 s after issuance:
// the client must wait out the minute rather than be refused.
func TestEmulatorTokenExpiryTooSoon(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(marketDay)
	srv, base := emulatortest.Start(t, emulator.WithMarket(simMarket()), emulator.WithRate(0),
		emulator.WithClock(clk.Now), emulator.WithTokenTTL(10*time.Second))
	c := testClient(t, base)
	clk.install(c)
	for i := range 30 {
		if _, _, err := c.Price(t.Context(), "005930"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		clk.Advance(time.Second)
	}
	st := srv.Stats()
	if st.TokenRejections != 0 || st.TokenRequests < 2 {
		t.Errorf("tokens: requests %d rejections %d, want >= 2 and 0", st.TokenRequests, st.TokenRejections)
	}
}

func isTradingKRX(d time.Time) bool { return krx.IsTradingDay(d) }

func envInt(name string, def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv(name), &n); err != nil || n <= 0 {
		return def
	}
	return n
}

// TestEmulatorCorruptedMultPrice corrupts every response: an unreadable
// value fails only the code of its row (a *MalformedError naming the
// emulator's field and value), a readable one passes to the caller's
// validation, and the other codes of the batch always come back.
func TestEmulatorCorruptedMultPrice(t *testing.T) {
	t.Parallel()
	srv, c := startEmulator(t, []emulator.Option{emulator.WithFaults(emulator.Faults{Corrupt: 1, Seed: 3})})
	var codes []string
	for _, s := range simMarket().Universe() {
		if s.IsCommonStock() && len(codes) < MaxBatch {
			codes = append(codes, s.Code)
		}
	}
	kinds := map[string]int{}
	for call := range 12 {
		qs, err := c.Prices(t.Context(), codes)
		st := srv.Stats()
		if len(st.Corrupted) != call+1 {
			t.Fatalf("call %d: the emulator lists %d corruptions, want %d", call, len(st.Corrupted), call+1)
		}
		cr := st.Corrupted[call]
		kinds[cr.Kind]++
		var be *kisfeed.BatchError
		if cr.Kind != "non_numeric" {
			if err != nil {
				t.Errorf("call %d: %s %s corruption: got %v, want every quote (validation is the caller's)", call, cr.Kind, cr.Field, err)
			}
			continue
		}
		if !errors.As(err, &be) || len(be.Errs) != 1 {
			t.Fatalf("call %d: non-numeric %s: got %v, want a BatchError for one code", call, cr.Field, err)
		}
		for code, e := range be.Errs {
			var me *MalformedError
			if !errors.As(e, &me) || me.Code != code || me.Field != cr.Block+"."+cr.Field || me.Value != cr.Value ||
				!strings.Contains(string(me.Raw), `"`+cr.Value+`"`) {
				t.Errorf("call %d: %s: got %v (%+v), want a *MalformedError for %s.%s = %q", call, code, e, me, cr.Block, cr.Field, cr.Value)
			}
		}
		returned := 0
		for _, q := range qs {
			if q != nil {
				returned++
			}
		}
		if returned != len(codes)-1 {
			t.Errorf("call %d: got %d quotes, want %d (all but the corrupted row)", call, returned, len(codes)-1)
		}
	}
	if kinds["non_numeric"] == 0 {
		t.Errorf("no non-numeric corruption in %v: pick another seed", kinds)
	}
	t.Logf("corruptions: %v", kinds)
}

// TestMarketClockSeparateFromTokens: a server simulating another instant
// (the emulator at a market time) is read with WithMarketClock: a quote is
// stamped with the market's day while tokens run on the wall clock.
func TestMarketClockSeparateFromTokens(t *testing.T) {
	t.Parallel()
	wall := time.Date(2026, 11, 29, 3, 0, 0, 0, kisfeed.KST) // a Sunday night
	market := func() time.Time { return marketDay }
	_, base := emulatortest.Start(t, emulator.WithMarket(simMarket()), emulator.WithRate(0),
		emulator.WithClock(func() time.Time { return wall }), emulator.WithMarketClock(market))
	c := testClient(t, base, WithClock(func() time.Time { return wall }), WithMarketClock(market))
	q, _, err := c.Price(t.Context(), "005930")
	if err != nil {
		t.Fatal(err)
	}
	if !q.Meta.AsOf.Equal(marketDay) {
		t.Errorf("AsOf: got %v, want the market clock %v", q.Meta.AsOf, marketDay)
	}
	tok, err := c.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !tok.IssuedAt.Equal(wall) {
		t.Errorf("token issued at %v, want the wall clock %v", tok.IssuedAt, wall)
	}
}
