package synthetic_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/emulator"
	"github.com/kisfeed/kisfeed/emulator/emulatortest"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/internal/synthetic"
	"github.com/kisfeed/kisfeed/kis"
)

func at(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, kisfeed.KST)
}

// emulatorSource is the KIS source over an emulator pinned at instant t.
func emulatorSource(t *testing.T, seed int64, now time.Time) kisfeed.Source {
	t.Helper()
	_, base := emulatortest.Start(t, emulator.WithSeed(seed), emulator.WithMarketClock(func() time.Time { return now }),
		emulator.WithRate(0))
	c, err := kis.NewClient(kis.WithBaseURL(base), kis.WithMasterURL(base), kis.WithAppKey("k", "s"),
		kis.WithRateLimit(1000), kis.WithTokenStore(kis.NewMemoryTokenStore()))
	if err != nil {
		t.Fatal(err)
	}
	return kis.NewSource(c)
}

// TestMatchesEmulator: the mock source and the KIS source over the
// emulator report the same numbers for the same seed and instant.
func TestMatchesEmulator(t *testing.T) {
	t.Parallel()
	const seed = 7
	m := sim.New(seed)
	instants := []time.Time{
		at(2026, 3, 10, 10, 17), // mid-session
		at(2026, 3, 10, 15, 45), // after the close
		at(2026, 3, 10, 8, 30),  // before the open
		at(2026, 3, 14, 12, 0),  // Saturday
	}
	codes := []string{"005930", "035720"}
	for _, now := range instants {
		t.Run(now.Format("2006-01-02T15:04"), func(t *testing.T) {
			t.Parallel()
			ms := synthetic.NewSource(m, kisfeed.Clock{Market: func() time.Time { return now }})
			es := emulatorSource(t, seed, now)
			ctx := t.Context()
			for _, code := range codes {
				mq, err := ms.Quote(ctx, kisfeed.MustParseCode(code))
				if err != nil {
					t.Fatal(err)
				}
				eq, err := es.Quote(ctx, kisfeed.MustParseCode(code))
				if err != nil {
					t.Fatal(err)
				}
				type qv struct{ P, O, H, L, PC, V, TV, U, Lo, Chg int64 }
				got := qv{mq.Price, mq.Open, mq.High, mq.Low, mq.PrevClose, mq.Volume, mq.TradingValue, mq.UpperLimit, mq.LowerLimit, mq.Change}
				want := qv{eq.Price, eq.Open, eq.High, eq.Low, eq.PrevClose, eq.Volume, eq.TradingValue, eq.UpperLimit, eq.LowerLimit, eq.Change}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Quote(%s) mock vs emulator (-emulator +mock):\n%s", code, diff)
				}
				if mq.Meta.Source != "mock" {
					t.Errorf("Meta.Source: got %q, want mock", mq.Meta.Source)
				}

				mb, err := ms.OrderBook(ctx, kisfeed.MustParseCode(code))
				if err != nil {
					t.Fatal(err)
				}
				eb, err := es.OrderBook(ctx, kisfeed.MustParseCode(code))
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(eb.Asks, mb.Asks); diff != "" {
					t.Errorf("OrderBook(%s) asks (-emulator +mock):\n%s", code, diff)
				}
				if diff := cmp.Diff(eb.Bids, mb.Bids); diff != "" {
					t.Errorf("OrderBook(%s) bids (-emulator +mock):\n%s", code, diff)
				}

				day := kisfeed.Day(now)
				for _, q := range []kisfeed.CandleQuery{
					{Code: kisfeed.MustParseCode(code), Interval: kisfeed.IntervalDay, From: day.AddDate(0, 0, -20), To: day},
					{Code: kisfeed.MustParseCode(code), Interval: kisfeed.IntervalWeek, From: day.AddDate(0, 0, -40), To: day},
					{Code: kisfeed.MustParseCode(code), Interval: kisfeed.IntervalMonth, From: day.AddDate(0, -4, 3), To: day},
					{Code: kisfeed.MustParseCode(code), Interval: kisfeed.IntervalMinute, From: day},
				} {
					mc, err := ms.Candles(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if len(mc.Bars) == 0 && q.Interval != kisfeed.IntervalMinute {
						t.Errorf("mock Candles(%s %s): no bars", code, q.Interval)
					}
					ec, err := es.Candles(ctx, q)
					if err != nil {
						if errors.Is(err, kisfeed.ErrNotFound) && len(mc.Bars) == 0 {
							continue
						}
						t.Fatalf("emulator Candles %s: %v", q.Interval, err)
					}
					if diff := cmp.Diff(bars(ec.Bars), bars(mc.Bars)); diff != "" {
						t.Errorf("Candles(%s %s) (-emulator +mock):\n%s", code, q.Interval, diff)
					}
				}
			}
		})
	}
}

// bars renders candles comparably (time as KST text).
func bars(cs []kisfeed.Candle) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = fmt.Sprintf("%s O%d H%d L%d C%d V%d", c.Time.In(kisfeed.KST).Format("2006-01-02 15:04"), c.Open, c.High, c.Low, c.Close, c.Volume)
	}
	return out
}

func TestErrors(t *testing.T) {
	t.Parallel()
	now := at(2026, 3, 10, 10, 0)
	s := synthetic.NewSource(sim.New(1), kisfeed.Clock{Market: func() time.Time { return now }})
	ctx := t.Context()
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"unknown code", func() error { _, err := s.Quote(ctx, kisfeed.MustParseCode("999990")); return err }, kisfeed.ErrNotFound},
		{"book unknown", func() error { _, err := s.OrderBook(ctx, kisfeed.MustParseCode("999990")); return err }, kisfeed.ErrNotFound},
		{"info unknown", func() error { _, err := s.StockInfo(ctx, kisfeed.MustParseCode("999990")); return err }, kisfeed.ErrNotFound},
		{"bad interval", func() error {
			_, err := s.Candles(ctx, kisfeed.CandleQuery{Code: kisfeed.MustParseCode("005930"), Interval: "hour"})
			return err
		}, kisfeed.ErrInvalid},
		{"from after to", func() error {
			_, err := s.Candles(ctx, kisfeed.CandleQuery{Code: kisfeed.MustParseCode("005930"), Interval: kisfeed.IntervalDay, From: now, To: now.AddDate(0, 0, -3)})
			return err
		}, kisfeed.ErrInvalid},
		{"future minutes", func() error {
			_, err := s.Candles(ctx, kisfeed.CandleQuery{Code: kisfeed.MustParseCode("005930"), Interval: kisfeed.IntervalMinute, From: now.AddDate(0, 0, 1)})
			return err
		}, kisfeed.ErrInvalid},
		{"cancelled", func() error {
			c, cancel := context.WithCancel(ctx)
			cancel()
			_, err := s.Quote(c, kisfeed.MustParseCode("005930"))
			return err
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestQuotesBatch(t *testing.T) {
	t.Parallel()
	s := synthetic.NewSource(sim.New(1), kisfeed.Clock{Market: func() time.Time { return at(2026, 3, 10, 10, 0) }})
	qs, err := s.Quotes(t.Context(), kisfeed.MustParseCodes("005930", "999990", "000660"))
	var be *kisfeed.BatchError
	if !errors.As(err, &be) || len(be.Errs) != 1 || !errors.Is(be.Errs["999990"], kisfeed.ErrNotFound) {
		t.Fatalf("err: got %v, want a BatchError with 999990 not found", err)
	}
	if qs[0] == nil || qs[0].Code != "005930" || qs[1] != nil || qs[2] == nil || qs[2].Code != "000660" {
		t.Errorf("quotes: got %v, want [005930 nil 000660]", qs)
	}
}

func TestUniverseAndCalendar(t *testing.T) {
	t.Parallel()
	m := sim.New(1)
	s := synthetic.NewSource(m, kisfeed.Clock{})
	u, err := s.Universe(t.Context())
	if err != nil || len(u) != len(m.Universe()) || len(u) < 2000 {
		t.Fatalf("Universe: got %d stocks, %v; want the sim's %d", len(u), err, len(m.Universe()))
	}
	u[0].Name = "changed"
	if m.Universe()[0].Name == "changed" {
		t.Errorf("Universe returned the shared slice; want a copy")
	}
	for _, tt := range []struct {
		day  time.Time
		want bool
	}{{at(2026, 3, 10, 0, 0), true}, {at(2026, 3, 14, 0, 0), false}, {at(2026, 3, 2, 0, 0), false}} {
		if got, err := s.IsTradingDay(t.Context(), tt.day); err != nil || got != tt.want {
			t.Errorf("IsTradingDay(%s): got %v, %v; want %v", tt.day.Format(time.DateOnly), got, err, tt.want)
		}
	}
	info, err := s.StockInfo(t.Context(), kisfeed.MustParseCode("005930"))
	if err != nil || info.Code != "005930" || info.Name == "" || info.Meta.Source != "mock" {
		t.Errorf("StockInfo: got %+v, %v", info, err)
	}
}
