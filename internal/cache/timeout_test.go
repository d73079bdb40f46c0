package cache_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/cache"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
)

// TestFlightTimeoutNamed checks that a shared upstream call cut off by the
// flight timeout (a caller without a deadline, as the CLI is) fails with
// an error naming the lookup and the bound, not a bare "context deadline
// exceeded", and still matches both ErrUnavailable and DeadlineExceeded.
func TestFlightTimeoutNamed(t *testing.T) {
	t.Parallel()
	block := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	src := &sourcetest.Func{
		QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) { return nil, block(ctx) },
		QuotesFn: func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
			return nil, block(ctx)
		},
		OrderBookFn: func(ctx context.Context, code string) (*kisfeed.OrderBook, error) { return nil, block(ctx) },
		CandlesFn: func(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
			return nil, block(ctx)
		},
		StockInfoFn:    func(ctx context.Context, code string) (*kisfeed.StockInfo, error) { return nil, block(ctx) },
		UniverseFn:     func(ctx context.Context) ([]kisfeed.Stock, error) { return nil, block(ctx) },
		IsTradingDayFn: func(ctx context.Context, date time.Time) (bool, error) { return false, block(ctx) },
	}
	day := kisfeed.Date(2026, time.March, 10)
	tests := []struct {
		name string
		call func(ctx context.Context, c *cache.Cache) error
		want string
	}{
		{"quote", func(ctx context.Context, c *cache.Cache) error {
			_, err := c.Quote(ctx, kisfeed.MustParseCode("005930"))
			return err
		},
			"quote 005930: upstream did not answer within 45s: context deadline exceeded"},
		{"quotes", func(ctx context.Context, c *cache.Cache) error {
			_, err := c.Quotes(ctx, kisfeed.MustParseCodes("005930", "000660"))
			return err
		}, "quotes 005930,000660: upstream did not answer within 45s: context deadline exceeded"},
		{"order book", func(ctx context.Context, c *cache.Cache) error {
			_, err := c.OrderBook(ctx, kisfeed.MustParseCode("005930"))
			return err
		},
			"order book 005930: upstream did not answer within 45s: context deadline exceeded"},
		{"candles", func(ctx context.Context, c *cache.Cache) error {
			_, err := c.Candles(ctx, kisfeed.CandleQuery{Code: kisfeed.MustParseCode("005930"), Interval: kisfeed.IntervalDay, From: day.AddDate(0, 0, -7), To: day})
			return err
		}, "candles 005930 day 2026-03-03..2026-03-10: upstream did not answer within 45s: context deadline exceeded"},
		{"info", func(ctx context.Context, c *cache.Cache) error {
			_, err := c.StockInfo(ctx, kisfeed.MustParseCode("005930"))
			return err
		},
			"stock info 005930: upstream did not answer within 45s: context deadline exceeded"},
		{"universe", func(ctx context.Context, c *cache.Cache) error { _, err := c.Universe(ctx); return err },
			"universe: upstream did not answer within 45s: context deadline exceeded"},
		{"calendar", func(ctx context.Context, c *cache.Cache) error { _, err := c.IsTradingDay(ctx, day); return err },
			"calendar 2026-03-10: upstream did not answer within 45s: context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				now := func() time.Time { return kst(10, 0) }
				c, err := cache.New(src, cache.NewMemory(100, now), sessions, cache.WithClock(kisfeed.Clock{Wall: now}), cache.WithFlightTimeout(45*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				err = tt.call(context.Background(), c)
				if err == nil || err.Error() != tt.want {
					t.Errorf("error: got %v, want %q", err, tt.want)
				}
				if !errors.Is(err, kisfeed.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("error %v: want it to match ErrUnavailable and context.DeadlineExceeded", err)
				}
				if d := time.Since(start); d != 45*time.Second {
					t.Errorf("time to fail: got %s, want the 45s flight timeout", d)
				}
			})
		})
	}
}
