package cache_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/cache"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
)

var errBadSecret = errors.New("kis: invalid app key or secret")

// TestConfigErrors checks an error WithConfigError marks (credentials the
// upstream refuses) reaches the caller as it is: no stale copy stands in,
// and it is not wrapped as unavailable.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, withStale := range []bool{false, true} {
		t.Run(fmt.Sprintf("stale copy %v", withStale), func(t *testing.T) {
			t.Parallel()
			clk := newClock(kst(10, 0))
			var refuse bool
			q := func(code string) (*kisfeed.Quote, error) {
				if refuse {
					return nil, fmt.Errorf("quote %s: get access token: %w", code, errBadSecret)
				}
				return &kisfeed.Quote{Code: code, Price: 1, Meta: kisfeed.Meta{AsOf: clk.Now()}}, nil
			}
			src := &sourcetest.Func{
				QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) { return q(code) },
				QuotesFn: func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
					out := make([]*kisfeed.Quote, len(codes))
					for i, c := range codes {
						v, err := q(c)
						if err != nil {
							return nil, err
						}
						out[i] = v
					}
					return out, nil
				},
			}
			c, err := cache.New(src, cache.NewMemory(100, clk.Now), sessions, cache.WithClock(kisfeed.Clock{Wall: clk.Now}),
				cache.WithConfigError(func(err error) bool { return errors.Is(err, errBadSecret) }))
			if err != nil {
				t.Fatal(err)
			}
			if withStale {
				if _, err := c.Quotes(t.Context(), kisfeed.MustParseCodes("005930", "000660")); err != nil {
					t.Fatal(err)
				}
				clk.Advance(time.Hour)
			}
			refuse = true
			_, qerr := c.Quote(t.Context(), kisfeed.MustParseCode("005930"))
			_, qserr := c.Quotes(t.Context(), kisfeed.MustParseCodes("005930", "000660"))
			for name, err := range map[string]error{"Quote": qerr, "Quotes": qserr} {
				if !errors.Is(err, errBadSecret) || errors.Is(err, kisfeed.ErrUnavailable) {
					t.Errorf("%s: got %v, want the credentials error as it is, not unavailable nor a stale copy", name, err)
				}
			}
		})
	}
}
