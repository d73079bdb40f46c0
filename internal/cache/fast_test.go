package cache_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/cache"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
)

// shared is a Store that is not a *cache.Memory, so the cache treats it
// like Redis (a store other replicas write too) and keeps local copies.
type shared struct{ m *cache.Memory }

func (s shared) Get(ctx context.Context, keys ...string) ([][]byte, error) {
	return s.m.Get(ctx, keys...)
}
func (s shared) Set(ctx context.Context, items ...cache.Item) error { return s.m.Set(ctx, items...) }

// TestHitAllocations: a fresh hit allocates only the caller's copy.
func TestHitAllocations(t *testing.T) {
	for _, tt := range []struct {
		name  string
		store func(now func() time.Time) cache.Store
	}{
		{"memory", func(now func() time.Time) cache.Store { return cache.NewMemory(100, now) }},
		{"shared store, local copy", func(now func() time.Time) cache.Store { return shared{cache.NewMemory(100, now)} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock(kst(10, 0))
			up := &fakeUpstream{now: clk.Now}
			c, err := cache.New(up.source(), tt.store(clk.Now), sessions, cache.WithClock(kisfeed.Clock{Wall: clk.Now}),
				cache.WithUpstreamHealth(func(context.Context) error { return nil }))
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			if _, err := c.Quote(ctx, kisfeed.MustParseCode("005930")); err != nil {
				t.Fatal(err)
			}
			allocs := testing.AllocsPerRun(200, func() {
				if q, err := c.Quote(ctx, kisfeed.MustParseCode("005930")); err != nil || q.Meta.Origin != kisfeed.OriginCache {
					t.Fatalf("Quote: got %v, %v; want a cache hit", q, err)
				}
			})
			if allocs > 1 {
				t.Errorf("allocations per hit: got %.1f, want <= 1 (the returned copy)", allocs)
			}
		})
	}
}

// TestMemoryKeepsDecodedValues: the cache stores Go values in a Memory,
// which still answers Get with the documented JSON envelope.
func TestMemoryKeepsDecodedValues(t *testing.T) {
	t.Parallel()
	clk := newClock(kst(10, 0))
	mem := cache.NewMemory(10, clk.Now)
	e := newEnv(t, kst(10, 0), mem, cache.WithClock(kisfeed.Clock{Wall: clk.Now}))
	e.up.now = clk.Now
	q := e.quote(t, "005930")
	raws, err := mem.Get(t.Context(), "stock:005930:price")
	if err != nil || raws[0] == nil {
		t.Fatalf("Get: got %q, %v; want the stored envelope", raws, err)
	}
	var env struct {
		FetchedAt  time.Time     `json:"fetched_at"`
		FreshUntil time.Time     `json:"fresh_until"`
		Value      kisfeed.Quote `json:"value"`
	}
	if err := json.Unmarshal(raws[0], &env); err != nil {
		t.Fatalf("stored JSON: %v", err)
	}
	if env.Value.Price != q.Price || !env.FreshUntil.Equal(kst(10, 30)) {
		t.Errorf("envelope: got price %d fresh until %v, want %d and %v", env.Value.Price, env.FreshUntil, q.Price, kst(10, 30))
	}
	// Values set from outside (bytes) are decoded on read.
	mem2 := cache.NewMemory(10, clk.Now)
	if err := mem2.Set(t.Context(), cache.Item{Key: "stock:000660:price", Value: raws[0], TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	c2, _ := cache.New(e.up.source(), mem2, sessions, cache.WithClock(kisfeed.Clock{Wall: clk.Now}))
	got, err := c2.Quote(t.Context(), kisfeed.MustParseCode("000660"))
	if err != nil || got.Meta.Origin != kisfeed.OriginCache || got.Price != q.Price {
		t.Errorf("hit on a byte value: got %+v, %v; want a cache hit with price %d", got, err, q.Price)
	}
}

// TestLocalCopies: in front of a shared store, a decoded local copy is used
// for at most the local TTL (so a value another replica wrote is seen
// within it) and never past its own freshness end.
func TestLocalCopies(t *testing.T) {
	t.Parallel()
	clk := newClock(kst(10, 0))
	store := shared{cache.NewMemory(100, clk.Now)}
	upA, upB := &fakeUpstream{now: clk.Now}, &fakeUpstream{now: clk.Now}
	mk := func(up *fakeUpstream) *cache.Cache {
		c, err := cache.New(up.source(), store, sessions, cache.WithClock(kisfeed.Clock{Wall: clk.Now}), cache.WithLocalCopies(100, time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := mk(upA), mk(upB)
	ctx := t.Context()
	quote := func(c *cache.Cache) *kisfeed.Quote {
		t.Helper()
		q, err := c.Quote(ctx, kisfeed.MustParseCode("005930"))
		if err != nil {
			t.Fatalf("Quote at %s: %v", clk.Now().Format("15:04:05.000"), err)
		}
		return q
	}
	first := quote(a) // price 1000 from A's upstream, in the store
	if q := quote(b); q.Price != first.Price || q.Meta.Origin != kisfeed.OriginCache {
		t.Fatalf("B's first read: got %d %q, want %d from the store", q.Price, q.Meta.Origin, first.Price)
	}
	// Another replica rewrites the stored value.
	raw, _ := json.Marshal(map[string]any{"fetched_at": clk.Now(), "fresh_until": kst(10, 30),
		"value": kisfeed.Quote{Code: "005930", Price: 777, Meta: kisfeed.Meta{AsOf: clk.Now()}}})
	if err := store.Set(ctx, cache.Item{Key: "stock:005930:price", Value: raw, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(999 * time.Millisecond)
	if q := quote(b); q.Price != first.Price {
		t.Errorf("within the local TTL: got price %d, want the local copy's %d", q.Price, first.Price)
	}
	clk.Advance(time.Millisecond)
	if q := quote(b); q.Price != 777 {
		t.Errorf("after the local TTL: got price %d, want the store's 777", q.Price)
	}
	// A copy never outlives its freshness: fetched 08:59:59.5, fresh until
	// the 09:00 open, read 09:00:00.2 → refetched, not the local copy.
	clk.Set(kst(9, 0).Add(-500 * time.Millisecond))
	if _, err := a.Quote(ctx, kisfeed.MustParseCode("000660")); err != nil {
		t.Fatal(err)
	}
	if q, _ := b.Quote(ctx, kisfeed.MustParseCode("000660")); q.Meta.Origin != kisfeed.OriginCache {
		t.Fatalf("B before the open: got %q, want cache", q.Meta.Origin)
	}
	calls := upB.calls.Load()
	clk.Set(kst(9, 0).Add(200 * time.Millisecond))
	if q, _ := b.Quote(ctx, kisfeed.MustParseCode("000660")); q.Meta.Origin != kisfeed.OriginSource {
		t.Errorf("B after the open: got %q, want source (refetched)", q.Meta.Origin)
	}
	if got := upB.calls.Load() - calls; got != 1 {
		t.Errorf("B's upstream calls after the open: got %d, want 1", got)
	}
	// Local copies off: every read goes to the store.
	if _, err := cache.New(upB.source(), store, cache.WithLocalCopies(0, time.Second)); err == nil {
		t.Errorf("WithLocalCopies(0 entries): got nil error, want one")
	}
}

// TestMarketClock: with a market clock, the close invalidation follows
// market time, not the freshness clock.
func TestMarketClock(t *testing.T) {
	t.Parallel()
	// The wall clock reads 03:00 (the middle of the night); the market
	// clock runs alongside it from 15:29.
	offset := kst(15, 29).Sub(kst(3, 0))
	tests := []struct {
		name   string
		market bool
		want   kisfeed.Origin
	}{
		{"wall clock only: 03:02 is within the ttl", false, kisfeed.OriginCache},
		{"market clock: 15:31 is past the close", true, kisfeed.OriginSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock(kst(3, 0))
			both := kisfeed.Clock{Wall: clk.Now}
			if tt.market {
				both.Market = func() time.Time { return clk.Now().Add(offset) }
			}
			e := newEnv(t, kst(3, 0), cache.NewMemory(10, clk.Now), cache.WithClock(both))
			e.up.now = clk.Now
			e.quote(t, "005930")
			clk.Advance(2 * time.Minute)
			if q := e.quote(t, "005930"); q.Meta.Origin != tt.want {
				t.Errorf("origin: got %q, want %q", q.Meta.Origin, tt.want)
			}
		})
	}
}

// limited is how package kis reports a rate-limiter wait that would end
// past the context's deadline (x/time/rate fails such a wait at once).
func limited(ctx context.Context, lim *rate.Limiter) error {
	if err := lim.Wait(ctx); err != nil {
		return fmt.Errorf("FHKST01010100: rate limiter: %w", err)
	}
	return nil
}

// TestDeadlineServesStale: an upstream call that cannot finish before the
// caller's deadline (a limiter wait beyond it, or a slow upstream) ends
// inside the flight early enough for the caller to get the stale copy
// instead of a timeout; with nothing cached the caller gets a fast
// UnavailableError.
func TestDeadlineServesStale(t *testing.T) {
	t.Parallel()
	// setup caches a quote at 10:00 and moves the freshness clock past its
	// TTL; quote is the upstream from then on.
	setup := func(t *testing.T, quote func(ctx context.Context, code string) (*kisfeed.Quote, error)) (*cache.Cache, *kisfeed.Quote) {
		clk := newClock(kst(10, 0))
		var n atomic.Int64
		c, err := cache.New(&sourcetest.Func{QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
			if n.Add(1) == 1 {
				return &kisfeed.Quote{Code: code, Price: 1234, Meta: kisfeed.Meta{AsOf: clk.Now()}}, nil
			}
			return quote(ctx, code)
		}}, cache.NewMemory(10, clk.Now), cache.WithClock(kisfeed.Clock{Wall: clk.Now}))
		if err != nil {
			t.Fatal(err)
		}
		first, err := c.Quote(t.Context(), kisfeed.MustParseCode("005930"))
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour)
		return c, first
	}
	wantStale := func(t *testing.T, q *kisfeed.Quote, err error, want int64) {
		t.Helper()
		if err != nil {
			t.Fatalf("Quote: got error %v, want the stale copy", err)
		}
		if !q.Meta.Stale || q.Meta.Origin != kisfeed.OriginStale || q.Price != want {
			t.Errorf("Quote: got price %d origin %q stale %v, want %d stale", q.Price, q.Meta.Origin, q.Meta.Stale, want)
		}
	}

	t.Run("limiter wait beyond the deadline", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			lim := rate.NewLimiter(rate.Every(10*time.Second), 1)
			lim.Allow() // the next slot is 10 s away
			c, first := setup(t, func(ctx context.Context, code string) (*kisfeed.Quote, error) {
				if err := limited(ctx, lim); err != nil {
					return nil, err
				}
				return &kisfeed.Quote{Code: code, Price: 1}, nil
			})
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			start := time.Now()
			q, err := c.Quote(ctx, kisfeed.MustParseCode("005930"))
			wantStale(t, q, err, first.Price)
			if d := time.Since(start); d != 0 {
				t.Errorf("time to the stale answer: got %s, want 0 (the limiter refuses at once)", d)
			}
			_, err = c.Quote(ctx, kisfeed.MustParseCode("000660"))
			var ue *kisfeed.UnavailableError
			if !errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("uncached code: got %v, want an UnavailableError at once, not a timeout", err)
			}
		})
	})
	t.Run("slow upstream", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			ended := make(chan time.Time, 1)
			c, first := setup(t, func(ctx context.Context, code string) (*kisfeed.Quote, error) {
				<-ctx.Done()
				ended <- time.Now()
				return nil, ctx.Err()
			})
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			start := time.Now()
			q, err := c.Quote(ctx, kisfeed.MustParseCode("005930"))
			wantStale(t, q, err, first.Price)
			if d := time.Since(start); d >= 2*time.Second {
				t.Errorf("time to the stale answer: got %s, want before the 2s deadline", d)
			}
			// The flight outlives the caller by a grace (a quarter of the
			// 2 s it had, 0.5 s), not by the flight timeout.
			if d := (<-ended).Sub(start); d != 2500*time.Millisecond {
				t.Errorf("upstream call cut off after %s, want 2.5s (the caller's deadline plus the grace)", d)
			}
		})
	})
	t.Run("joined a flight that outlives my deadline", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			c, first := setup(t, func(ctx context.Context, code string) (*kisfeed.Quote, error) {
				<-release
				return &kisfeed.Quote{Code: code, Price: 99}, nil
			})
			done := make(chan error)
			go func() { // starts the flight with a long deadline
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				_, err := c.Quote(ctx, kisfeed.MustParseCode("005930"))
				done <- err
			}()
			synctest.Wait()
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			q, err := c.Quote(ctx, kisfeed.MustParseCode("005930"))
			wantStale(t, q, err, first.Price)
			close(release)
			if err := <-done; err != nil {
				t.Errorf("the flight's starter: got %v, want the fresh quote", err)
			}
		})
	})
}

// TestSessionBoundaries: intraday freshness ends at the boundary the
// wiring's function names; without one, a price lives its TTL.
func TestSessionBoundaries(t *testing.T) {
	t.Parallel()
	closeAt := kst(15, 30)
	tests := []struct {
		name string
		opts []cache.Option
		want kisfeed.Origin
	}{
		{"no boundaries: within the ttl", nil, kisfeed.OriginCache},
		{"a close at 15:30", []cache.Option{cache.WithSessionBoundaries(func(time.Time) time.Time { return closeAt })}, kisfeed.OriginSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock(kst(15, 29))
			c, err := cache.New((&fakeUpstream{now: clk.Now}).source(), cache.NewMemory(10, clk.Now), append(tt.opts, cache.WithClock(kisfeed.Clock{Wall: clk.Now}))...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Quote(t.Context(), kisfeed.MustParseCode("005930")); err != nil {
				t.Fatal(err)
			}
			clk.Advance(2 * time.Minute)
			q, err := c.Quote(t.Context(), kisfeed.MustParseCode("005930"))
			if err != nil || q.Meta.Origin != tt.want {
				t.Errorf("quote at 15:31: got %v, %v; want origin %q", q, err, tt.want)
			}
		})
	}
	if _, err := cache.New(&sourcetest.Func{}, cache.NewMemory(1, nil), cache.WithSessionBoundaries(nil)); err == nil {
		t.Errorf("WithSessionBoundaries(nil): got nil error, want one")
	}
}
