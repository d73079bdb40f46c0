package cache_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/cache"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
	"github.com/kisfeed/kisfeed/krx"
)

// wtBase is the REST quote the fake upstream answers for 005930 at
// 10:00:00 on 2026-03-10: 1,000 shares traded so far.
func wtBase(asOf time.Time) *kisfeed.Quote {
	return &kisfeed.Quote{Code: "005930", Name: "삼성전자", Market: kisfeed.MarketKOSPI, Price: 70000,
		Open: 69500, High: 70100, Low: 69400, PrevClose: 69000, BasePrice: 69000, Change: 1000, ChangeRate: 1.45,
		Volume: 1000, TradingValue: 70_000_000, UpperLimit: 89700, LowerLimit: 48300, TickSize: 100,
		Meta: kisfeed.Meta{AsOf: asOf, Source: "kis", Origin: kisfeed.OriginSource}}
}

// wtTrade is a trade of 005930 at hh:mm:ss on 2026-03-10 at price with the
// day's cumulative volume cum.
func wtTrade(hh, mm, ss int, price, cum int64) kisfeed.Trade {
	return kisfeed.Trade{Code: "005930", Time: time.Date(2026, 3, 10, hh, mm, ss, 0, kisfeed.KST),
		Price: price, Change: price - 69000, ChangeRate: float64(price-69000) / 690, Volume: 10, CumVolume: cum,
		CumValue: cum * price, Open: 69500, High: max(70100, price), Low: 69400}
}

// wtEnv is a cache over a fake upstream counting its quote and book calls.
type wtEnv struct {
	clk          *clock
	c            *cache.Cache
	obs          *countObserver
	quotes       atomic.Int64
	books        atomic.Int64
	quoteErr     atomic.Pointer[error]
	restQuote    func() *kisfeed.Quote
	restBookTime time.Time
}

func newWTEnv(t *testing.T, store func(now func() time.Time) cache.Store, opts ...cache.Option) *wtEnv {
	t.Helper()
	e := &wtEnv{clk: newClock(kst(10, 0)), obs: &countObserver{}}
	e.restQuote = func() *kisfeed.Quote { return wtBase(e.clk.Now()) }
	e.restBookTime = kst(10, 0)
	up := &sourcetest.Func{
		QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
			e.quotes.Add(1)
			if p := e.quoteErr.Load(); p != nil {
				return nil, *p
			}
			return e.restQuote(), nil
		},
		OrderBookFn: func(ctx context.Context, code string) (*kisfeed.OrderBook, error) {
			e.books.Add(1)
			b := &kisfeed.OrderBook{Code: code, TotalAskQty: 1, Meta: kisfeed.Meta{AsOf: e.restBookTime, Source: "kis", Origin: kisfeed.OriginSource}}
			b.Asks[0] = kisfeed.Level{Price: 70100, Quantity: 1}
			return b, nil
		},
	}
	st := cache.Store(cache.NewMemory(100, e.clk.Now))
	if store != nil {
		st = store(e.clk.Now)
	}
	opts = append([]cache.Option{cache.WithClock(kisfeed.NewClock(e.clk.Now, nil)), sessions,
		cache.WithObserver(e.obs), cache.WithTickSize(krx.TickSize), cache.WithStaleBudget(0)}, opts...)
	c, err := cache.New(up, st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	e.c = c
	return e
}

func mustQuote(t *testing.T, c *cache.Cache) *kisfeed.Quote {
	t.Helper()
	q, err := c.Quote(t.Context(), kisfeed.MustParseCode("005930"))
	if err != nil {
		t.Fatalf("Quote: %v", err)
	}
	return q
}

// TestPutTrade: a trade updates the cached quote (price, cumulative
// volume and value, OHLC, AsOf = the trade's time); a hit afterwards is
// served from the cache with the trade's price and no upstream call; an
// older trade never overwrites it; a trade with no cached quote fetches the
// base once.
func TestPutTrade(t *testing.T) {
	t.Parallel()
	stores := map[string]func(now func() time.Time) cache.Store{
		"memory": nil,
		"redis": func(now func() time.Time) cache.Store {
			rdb, prefix := testRedis(t)
			return cache.Tiered(cache.NewMemory(10, now), prefixed{cache.NewRedis(rdb), prefix}, time.Second)
		},
	}
	for name, store := range stores {
		t.Run(name, func(t *testing.T) {
			if name == "redis" {
				testRedis(t) // skips without KISFEED_TEST_REDIS_URL
			}
			e := newWTEnv(t, store)
			ctx := t.Context()

			// No quote cached: the base is fetched once, the trade applied.
			ok, err := e.c.PutTrade(ctx, wtTrade(10, 0, 1, 70200, 1010))
			if err != nil || !ok {
				t.Fatalf("first trade: written %v err %v, want written", ok, err)
			}
			if n := e.quotes.Load(); n != 1 {
				t.Fatalf("base fetches: got %d, want 1", n)
			}
			steps := []struct {
				name      string
				trade     kisfeed.Trade
				written   bool
				price     int64
				volume    int64
				asOf      time.Time
				wantTicks int64
			}{
				{"newer", wtTrade(10, 0, 5, 70300, 1030), true, 70300, 1030, kst(10, 0).Add(5 * time.Second), 100},
				{"older trade", wtTrade(10, 0, 3, 70000, 1020), false, 70300, 1030, kst(10, 0).Add(5 * time.Second), 100},
				{"same volume", wtTrade(10, 0, 6, 70000, 1030), false, 70300, 1030, kst(10, 0).Add(5 * time.Second), 100},
				{"expected price", func() kisfeed.Trade { tr := wtTrade(10, 0, 7, 71000, 1040); tr.Expected = true; return tr }(), false, 70300, 1030, kst(10, 0).Add(5 * time.Second), 100},
				{"yesterday", func() kisfeed.Trade {
					tr := wtTrade(10, 0, 8, 71000, 5000)
					tr.Time = tr.Time.AddDate(0, 0, -1)
					return tr
				}(), false, 70300, 1030, kst(10, 0).Add(5 * time.Second), 100},
			}
			for _, s := range steps {
				ok, err := e.c.PutTrade(ctx, s.trade)
				if err != nil || ok != s.written {
					t.Fatalf("%s: written %v err %v, want %v", s.name, ok, err, s.written)
				}
				q := mustQuote(t, e.c)
				if q.Price != s.price || q.Volume != s.volume || !q.Meta.AsOf.Equal(s.asOf) || q.TickSize != s.wantTicks {
					t.Fatalf("%s: quote price %d volume %d as of %s tick %d, want %d %d %s %d",
						s.name, q.Price, q.Volume, q.Meta.AsOf, q.TickSize, s.price, s.volume, s.asOf, s.wantTicks)
				}
				if q.Meta.Origin != kisfeed.OriginCache || q.Name != "삼성전자" || q.UpperLimit != 89700 {
					t.Fatalf("%s: origin %q name %q upper %d, want a cache hit keeping the base's name and limits", s.name, q.Meta.Origin, q.Name, q.UpperLimit)
				}
			}
			if n := e.quotes.Load(); n != 1 {
				t.Errorf("upstream quote calls after the trades and hits: got %d, want 1 (the base)", n)
			}
			if h := e.obs.get("hit:" + cache.KindPrice); h != len(steps) {
				t.Errorf("price hits: got %d, want %d", h, len(steps))
			}
			q := mustQuote(t, e.c)
			if q.TradingValue != 1030*70300 || q.High != 70300 || q.Change != 1300 {
				t.Errorf("value %d high %d change %d, want %d %d %d", q.TradingValue, q.High, q.Change, 1030*70300, 70300, 1300)
			}
		})
	}
}

// TestPutTradeFreshness: a written-through quote is fresh for the price
// TTL, cut at the session boundary like a fetched one.
func TestPutTradeFreshness(t *testing.T) {
	t.Parallel()
	e := newWTEnv(t, nil, cache.WithTTLs(cache.TTLs{Price: 30 * time.Minute}))
	e.clk.Set(kst(15, 20))
	e.restQuote = func() *kisfeed.Quote { return wtBase(kst(15, 20)) }
	if _, err := e.c.PutTrade(t.Context(), wtTrade(15, 20, 0, 70500, 2000)); err != nil {
		t.Fatal(err)
	}
	q := mustQuote(t, e.c)
	if want := kst(15, 30); !q.Meta.Expires.Equal(want) {
		t.Errorf("Expires %s, want the close %s", q.Meta.Expires, want)
	}
	e.clk.Set(kst(15, 31))
	before := e.quotes.Load()
	q = mustQuote(t, e.c)
	if q.Meta.Origin != kisfeed.OriginSource || e.quotes.Load() != before+1 {
		t.Errorf("after the close: origin %q, upstream calls +%d; want a miss", q.Meta.Origin, e.quotes.Load()-before)
	}
}

// TestPutTradeNoBase: when the base quote cannot be fetched the trade is
// refused with ErrNoBase and nothing is cached.
func TestPutTradeNoBase(t *testing.T) {
	t.Parallel()
	e := newWTEnv(t, nil)
	down := error(&kisfeed.UnavailableError{Err: errDown})
	e.quoteErr.Store(&down)
	ok, err := e.c.PutTrade(t.Context(), wtTrade(10, 0, 1, 70200, 1010))
	if ok || !errors.Is(err, cache.ErrNoBase) {
		t.Fatalf("got written %v err %v, want ErrNoBase", ok, err)
	}
}

// TestRefreshKeepsNewer: a REST quote behind the stream (a smaller
// cumulative volume) does not replace the written-through quote, through
// RefreshQuote and through a miss's flight; a newer one does.
func TestRefreshKeepsNewer(t *testing.T) {
	t.Parallel()
	e := newWTEnv(t, nil, cache.WithTTLs(cache.TTLs{Price: time.Minute}))
	ctx := t.Context()
	if _, err := e.c.PutTrade(ctx, wtTrade(10, 0, 30, 70500, 1500)); err != nil {
		t.Fatal(err)
	}
	// REST lags: 1,000 shares.
	if err := e.c.RefreshQuote(ctx, kisfeed.MustParseCode("005930")); err != nil {
		t.Fatal(err)
	}
	if q := mustQuote(t, e.c); q.Volume != 1500 || q.Price != 70500 {
		t.Fatalf("after a lagging refresh: volume %d price %d, want 1500 70500", q.Volume, q.Price)
	}
	// The copy expires; the miss's answer lags too: the newer value stays.
	e.clk.Advance(2 * time.Minute)
	q := mustQuote(t, e.c)
	if q.Volume != 1500 || q.Meta.Origin != kisfeed.OriginSource {
		t.Fatalf("miss with a lagging answer: volume %d origin %q, want 1500 source", q.Volume, q.Meta.Origin)
	}
	// REST moves ahead of the stream: it wins.
	e.restQuote = func() *kisfeed.Quote { q := wtBase(e.clk.Now()); q.Volume, q.Price = 2000, 70600; return q }
	if err := e.c.RefreshQuote(ctx, kisfeed.MustParseCode("005930")); err != nil {
		t.Fatal(err)
	}
	if q := mustQuote(t, e.c); q.Volume != 2000 || q.Price != 70600 {
		t.Errorf("after a newer refresh: volume %d price %d, want 2000 70600", q.Volume, q.Price)
	}
}

// TestPutBook: a book replaces the cached book (a hit afterwards), an
// older book does not, and RefreshOrderBook bypasses a fresh copy.
func TestPutBook(t *testing.T) {
	t.Parallel()
	e := newWTEnv(t, nil)
	ctx := t.Context()
	book := func(ss int, ask int64) kisfeed.Book {
		b := kisfeed.Book{Code: "005930", Time: kst(10, 0).Add(time.Duration(ss) * time.Second), TotalAskQty: 500, TotalBidQty: 400}
		b.Asks[0] = kisfeed.Level{Price: ask, Quantity: 5}
		b.Bids[0] = kisfeed.Level{Price: ask - 100, Quantity: 7}
		return b
	}
	for _, s := range []struct {
		name    string
		book    kisfeed.Book
		written bool
		ask     int64
	}{
		{"first", book(10, 70200), true, 70200},
		{"newer", book(12, 70300), true, 70300},
		{"older", book(11, 70000), false, 70300},
	} {
		ok, err := e.c.PutBook(ctx, s.book, "kis")
		if err != nil || ok != s.written {
			t.Fatalf("%s: written %v err %v, want %v", s.name, ok, err, s.written)
		}
		b, err := e.c.OrderBook(ctx, kisfeed.MustParseCode("005930"))
		if err != nil {
			t.Fatal(err)
		}
		if b.Asks[0].Price != s.ask || b.Meta.Origin != kisfeed.OriginCache || b.Meta.Source != "kis" || b.TotalBidQty != 400 {
			t.Fatalf("%s: ask %d origin %q source %q bid qty %d, want %d cache kis 400", s.name, b.Asks[0].Price, b.Meta.Origin, b.Meta.Source, b.TotalBidQty, s.ask)
		}
	}
	if n := e.books.Load(); n != 0 {
		t.Errorf("upstream book calls: %d, want 0", n)
	}
	e.restBookTime = kst(10, 1)
	if err := e.c.RefreshOrderBook(ctx, kisfeed.MustParseCode("005930")); err != nil {
		t.Fatal(err)
	}
	b, _ := e.c.OrderBook(ctx, kisfeed.MustParseCode("005930"))
	if e.books.Load() != 1 || b.Asks[0].Price != 70100 {
		t.Errorf("after RefreshOrderBook: %d calls, ask %d; want 1 call and the REST book's 70100", e.books.Load(), b.Asks[0].Price)
	}
}
