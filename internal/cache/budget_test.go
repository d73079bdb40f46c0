package cache_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/cache"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
)

// notifyStore is a Store that reports every Set on stored after passing
// it on: used as a fallback, it tells a test that a background flight has
// filled the cache, without sleeping.
type notifyStore struct {
	cache.Store
	stored chan struct{}
}

func (n notifyStore) Set(ctx context.Context, items ...cache.Item) error {
	err := n.Store.Set(ctx, items...)
	n.stored <- struct{}{}
	return err
}

// sharedStore hides a Memory's type, so the cache treats it as a shared
// store (like Redis): decoded local copies in front, JSON behind.
type sharedStore struct{ cache.Store }

// gatedUpstream answers quotes with price 1000 × call number; while gate
// is set, calls block until a value is sent on it, and hand their context
// to entered first.
type gatedUpstream struct {
	calls   atomic.Int64
	gate    atomic.Pointer[chan struct{}]
	entered chan context.Context
}

func (g *gatedUpstream) wait(ctx context.Context) {
	if ch := g.gate.Load(); ch != nil {
		g.entered <- ctx
		<-*ch
	}
}

func (g *gatedUpstream) source() *sourcetest.Func {
	return &sourcetest.Func{
		QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
			n := g.calls.Add(1)
			g.wait(ctx)
			return &kisfeed.Quote{Code: code, Price: 1000 * n}, nil
		},
		QuotesFn: func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
			n := g.calls.Add(1)
			g.wait(ctx)
			out := make([]*kisfeed.Quote, len(codes))
			for i, c := range codes {
				out[i] = &kisfeed.Quote{Code: c, Price: 1000 * n}
			}
			return out, nil
		},
	}
}

// TestStaleBudget: with a stale copy at hand, a lookup whose upstream call
// has not answered within the stale budget is answered from the copy while
// the call goes on (its context still live), and the call's answer fills
// the cache when it comes. Before the budget existed the caller waited for
// the upstream until its own deadline.
func TestStaleBudget(t *testing.T) {
	t.Parallel()
	quote := func(ctx context.Context, c *cache.Cache) (int64, kisfeed.Origin, error) {
		q, err := c.Quote(ctx, kisfeed.MustParseCode("005930"))
		if err != nil {
			return 0, "", err
		}
		return q.Price, q.Meta.Origin, nil
	}
	quotes := func(ctx context.Context, c *cache.Cache) (int64, kisfeed.Origin, error) {
		qs, err := c.Quotes(ctx, kisfeed.MustParseCodes("005930", "000660"))
		if err != nil {
			return 0, "", err
		}
		if qs[0].Price != qs[1].Price || qs[0].Meta.Origin != qs[1].Meta.Origin {
			return 0, "", errors.New("the two codes differ")
		}
		return qs[0].Price, qs[0].Meta.Origin, nil
	}
	tests := []struct {
		name   string
		store  func(t *testing.T, now func() time.Time) cache.Store
		lookup func(ctx context.Context, c *cache.Cache) (int64, kisfeed.Origin, error)
	}{
		{"quote, memory store", func(t *testing.T, now func() time.Time) cache.Store { return cache.NewMemory(10, now) }, quote},
		{"quote, shared store", func(t *testing.T, now func() time.Time) cache.Store {
			return sharedStore{cache.NewMemory(10, now)}
		}, quote},
		{"quote, redis", func(t *testing.T, now func() time.Time) cache.Store {
			rdb, prefix := testRedis(t)
			return prefixed{cache.NewRedis(rdb), prefix}
		}, quote},
		{"quotes, memory store", func(t *testing.T, now func() time.Time) cache.Store { return cache.NewMemory(10, now) }, quotes},
		{"quotes, shared store", func(t *testing.T, now func() time.Time) cache.Store {
			return sharedStore{cache.NewMemory(10, now)}
		}, quotes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock(kst(10, 0))
			up := &gatedUpstream{entered: make(chan context.Context, 1)}
			stored := make(chan struct{}, 10)
			primaryStore := tt.store(t, clk.Now)
			// The shared primary is written after the in-process fallback:
			// wait for both, or a slow Redis write could still be on its
			// way when the next lookup reads (no stale copy to answer with).
			var primary chan struct{}
			if _, mem := primaryStore.(*cache.Memory); !mem {
				primary = make(chan struct{}, 10)
				primaryStore = notifyStore{primaryStore, primary}
			}
			waitStored := func() {
				<-stored
				if primary != nil {
					<-primary
				}
			}
			store := cache.Failover(primaryStore, notifyStore{cache.NewMemory(10, clk.Now), stored}, cache.FailoverConfig{Clock: clk.Now})
			c, err := cache.New(up.source(), store, sessions, cache.WithClock(kisfeed.Clock{Wall: clk.Now}), cache.WithStaleBudget(time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			// Generous bound: the test never waits for it unless broken.
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			first, _, err := tt.lookup(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			waitStored()
			clk.Advance(time.Hour) // past the 30m price TTL

			gate := make(chan struct{})
			up.gate.Store(&gate)
			price, origin, err := tt.lookup(ctx, c)
			if err != nil || origin != kisfeed.OriginStale || price != first {
				t.Fatalf("while the upstream hangs: got price %d origin %q err %v, want the stale %d", price, origin, err, first)
			}
			upCtx := <-up.entered
			if err := upCtx.Err(); err != nil {
				t.Errorf("upstream call context after the stale answer: %v, want it still running", err)
			}
			up.gate.Store(nil)
			close(gate) // the upstream answers now
			waitStored()
			price, origin, err = tt.lookup(ctx, c)
			if err != nil || origin != kisfeed.OriginCache || price != 2000 {
				t.Errorf("after the late answer: got price %d origin %q err %v, want the cached 2000", price, origin, err)
			}
			if n := up.calls.Load(); n != 2 {
				t.Errorf("upstream calls: got %d, want 2", n)
			}
		})
	}
}

// lateGetStore is a shared store whose first Get after armed is set
// blocks until release is closed: the flight's read of the store still
// on its way when the stale budget passes.
type lateGetStore struct {
	cache.Store
	armed   atomic.Bool
	release chan struct{}
}

func (l *lateGetStore) Get(ctx context.Context, keys ...string) ([][]byte, error) {
	if l.armed.CompareAndSwap(true, false) {
		<-l.release
	}
	return l.Store.Get(ctx, keys...)
}

// TestStaleBudgetStoreReadLate: with a shared store, a lookup whose
// stale budget passes before the flight has read the store (the flight's
// goroutine not yet run, or a Redis round trip longer than the budget, as
// on a loaded machine) still answers from the stale copy in the store. It
// used to wait for the flight instead, and so for an upstream that may
// hang until the caller's deadline (TestStaleBudget's intermittent
// failure with "context deadline exceeded" after 30 s). In a synctest
// bubble the flight runs first and blocks in its store read, so the
// order is fixed.
func TestStaleBudgetStoreReadLate(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		clk := newClock(kst(10, 0))
		up := &gatedUpstream{entered: make(chan context.Context, 1)}
		store := &lateGetStore{Store: cache.NewMemory(10, clk.Now), release: make(chan struct{})}
		c, err := cache.New(up.source(), store, sessions, cache.WithClock(kisfeed.Clock{Wall: clk.Now}))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		code := kisfeed.MustParseCode("005930")
		if _, err := c.Quote(ctx, code); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour) // past the 30m price TTL

		store.armed.Store(true)
		start := time.Now()
		q, err := c.Quote(ctx, code)
		if err != nil || q.Meta.Origin != kisfeed.OriginStale || q.Price != 1000 || time.Since(start) != cache.DefaultStaleBudget {
			t.Errorf("with the flight's store read late: got %+v, %v after %s; want the stale 1000 after %s",
				q, err, time.Since(start), cache.DefaultStaleBudget)
		}
		close(store.release)
		synctest.Wait() // the flight reads, asks the upstream, stores
		q, err = c.Quote(ctx, code)
		if err != nil || q.Meta.Origin != kisfeed.OriginCache || q.Price != 2000 {
			t.Errorf("after the flight: got %+v, %v; want the cached 2000", q, err)
		}
	})
}

// TestStaleBudgetTiming runs the budget on a fake clock: the stale answer
// comes exactly when the budget has passed; a code with no copy waits for
// the upstream however long it takes; budget 0 waits too.
func TestStaleBudgetTiming(t *testing.T) {
	t.Parallel()
	const upstreamTakes = 3 * time.Second
	tests := []struct {
		name       string
		budget     []cache.Option
		cached     bool
		wantOrigin kisfeed.Origin
		wantAfter  time.Duration
	}{
		{"default budget, stale copy", nil, true, kisfeed.OriginStale, cache.DefaultStaleBudget},
		{"budget 400ms, stale copy", []cache.Option{cache.WithStaleBudget(400 * time.Millisecond)}, true, kisfeed.OriginStale, 400 * time.Millisecond},
		{"no copy waits for the upstream", nil, false, kisfeed.OriginSource, upstreamTakes},
		{"budget 0 waits for the upstream", []cache.Option{cache.WithStaleBudget(0)}, true, kisfeed.OriginSource, upstreamTakes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				clk := newClock(kst(10, 0))
				var calls atomic.Int64
				answered := make(chan struct{}, 1)
				src := &sourcetest.Func{QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
					if calls.Add(1) > 1 {
						select {
						case <-time.After(upstreamTakes):
							answered <- struct{}{}
						case <-ctx.Done():
							return nil, ctx.Err()
						}
					}
					return &kisfeed.Quote{Code: code, Price: 1000 * calls.Load()}, nil
				}}
				opts := append([]cache.Option{cache.WithClock(kisfeed.Clock{Wall: clk.Now})}, tt.budget...)
				c, err := cache.New(src, cache.NewMemory(10, clk.Now), opts...)
				if err != nil {
					t.Fatal(err)
				}
				if tt.cached {
					if _, err := c.Quote(t.Context(), kisfeed.MustParseCode("005930")); err != nil {
						t.Fatal(err)
					}
					clk.Advance(time.Hour)
				} else {
					calls.Store(1)
				}
				ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
				defer cancel()
				start := time.Now()
				q, err := c.Quote(ctx, kisfeed.MustParseCode("005930"))
				if err != nil {
					t.Fatal(err)
				}
				if q.Meta.Origin != tt.wantOrigin || time.Since(start) != tt.wantAfter {
					t.Errorf("got origin %q after %s, want %q after %s", q.Meta.Origin, time.Since(start), tt.wantOrigin, tt.wantAfter)
				}
				<-answered
				synctest.Wait() // the flight stores the answer
				q, err = c.Quote(ctx, kisfeed.MustParseCode("005930"))
				if err != nil || q.Meta.Origin != kisfeed.OriginCache || q.Price != 2000 {
					t.Errorf("after the upstream answered: got %+v, %v; want the cached 2000", q, err)
				}
			})
		})
	}
}

// TestLateAnswerFills: an upstream answer that arrives after the caller
// that started the flight gave up (its deadline passed, nothing cached:
// it gets a timeout) is still stored, so the next caller gets it from the
// cache. Before, the flight was cut off shortly before that caller's
// deadline and KIS's answer was thrown away.
func TestLateAnswerFills(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		clk := newClock(kst(10, 0))
		outcome := make(chan error, 1)
		src := &sourcetest.Func{QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
			select {
			case <-time.After(2200 * time.Millisecond): // 200 ms after the caller's deadline
				outcome <- nil
				return &kisfeed.Quote{Code: code, Price: 4321}, nil
			case <-ctx.Done():
				outcome <- ctx.Err()
				return nil, ctx.Err()
			}
		}}
		c, err := cache.New(src, cache.NewMemory(10, clk.Now), sessions, cache.WithClock(kisfeed.Clock{Wall: clk.Now}))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		if _, err := c.Quote(ctx, kisfeed.MustParseCode("005930")); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("first caller: got %v, want its deadline exceeded", err)
		}
		if err := <-outcome; err != nil {
			t.Fatalf("upstream call: cut off with %v, want it to run to its answer", err)
		}
		synctest.Wait() // the flight stores the answer
		q, err := c.Quote(t.Context(), kisfeed.MustParseCode("005930"))
		if err != nil || q.Price != 4321 || q.Meta.Origin != kisfeed.OriginCache {
			t.Errorf("next caller: got %+v, %v; want the late answer from the cache", q, err)
		}
	})
}

// TestFlightDeadline checks the context a flight hands the upstream: its
// Deadline (what the kis client's rate limiter plans with) is the starting
// caller's deadline minus a margin (a quarter of its time left, at most
// 250 ms), so a rate slot is taken only for a call that can answer that
// caller; but it is cancelled only at that caller's deadline plus a grace
// (a quarter, at most 1 s), so a call already sent may still answer and
// fill the cache. Both are capped by the flight timeout, which is both for
// a caller without a deadline.
func TestFlightDeadline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		deadline   time.Duration // 0 = none
		wantBy     time.Duration
		wantCancel time.Duration
	}{
		{"no deadline", 0, 45 * time.Second, 45 * time.Second},
		{"100ms", 100 * time.Millisecond, 75 * time.Millisecond, 125 * time.Millisecond},
		{"2s", 2 * time.Second, 1750 * time.Millisecond, 2500 * time.Millisecond},
		{"15s request", 15 * time.Second, 14750 * time.Millisecond, 16 * time.Second},
		{"beyond the flight timeout", time.Minute, 45 * time.Second, 45 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var by, cancelled time.Duration
				ended := make(chan struct{})
				start := time.Now()
				src := &sourcetest.Func{QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
					dl, ok := ctx.Deadline()
					if !ok {
						return nil, errors.New("flight context without a deadline")
					}
					by = dl.Sub(start)
					<-ctx.Done()
					cancelled = time.Since(start)
					close(ended)
					return nil, ctx.Err()
				}}
				c, err := cache.New(src, cache.NewMemory(10, nil), cache.WithFlightTimeout(45*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				ctx := t.Context()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				if _, err := c.Quote(ctx, kisfeed.MustParseCode("005930")); err == nil {
					t.Fatal("Quote: got no error from a hanging upstream")
				}
				<-ended
				if by != tt.wantBy || cancelled != tt.wantCancel {
					t.Errorf("flight context: deadline %s, cancelled at %s; want %s and %s", by, cancelled, tt.wantBy, tt.wantCancel)
				}
			})
		})
	}
}

// TestLimiterRefusesInTime: a rate-limiter wait that ends after the
// caller's answer-by instant (its deadline minus the margin) is refused at
// once, so a code with nothing cached gets a fast UnavailableError rather
// than a wait for its own deadline (a 504), even though the flight itself
// may run a grace past that deadline.
func TestLimiterRefusesInTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		nextSlot time.Duration // from now
	}{
		{"slot just before the deadline", 1900 * time.Millisecond},
		{"slot inside the grace", 2200 * time.Millisecond},
		{"slot far away", 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				lim := rate.NewLimiter(rate.Every(tt.nextSlot), 1)
				lim.Allow()
				src := &sourcetest.Func{QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
					if err := limited(ctx, lim); err != nil {
						return nil, err
					}
					return &kisfeed.Quote{Code: code, Price: 1}, nil
				}}
				c, err := cache.New(src, cache.NewMemory(10, nil))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
				defer cancel()
				start := time.Now()
				_, err = c.Quote(ctx, kisfeed.MustParseCode("005930"))
				var ue *kisfeed.UnavailableError
				if !errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 0 {
					t.Errorf("got %v after %s, want an UnavailableError at once", err, time.Since(start))
				}
			})
		})
	}
}

// TestKnownDownServesStaleAtOnce: while the upstream is known to be down
// (the breaker's health check fails), a lookup with a stale copy at hand
// is answered from it without a flight — not after the stale budget, and
// without asking the upstream. Before, every such lookup waited the
// budget (p95 ≈ 150 ms during an outage). With the budget off (0) the
// lookup still asks the upstream, as it always did. Quote and Quotes
// (GET /v1/quotes) alike.
func TestKnownDownServesStaleAtOnce(t *testing.T) {
	t.Parallel()
	quote := func(ctx context.Context, c *cache.Cache) (*kisfeed.Quote, error) {
		return c.Quote(ctx, kisfeed.MustParseCode("005930"))
	}
	quotes := func(ctx context.Context, c *cache.Cache) (*kisfeed.Quote, error) {
		qs, err := c.Quotes(ctx, kisfeed.MustParseCodes("005930", "000660"))
		if err != nil {
			return nil, err
		}
		if qs[0].Price != qs[1].Price || qs[0].Meta.Origin != qs[1].Meta.Origin {
			return nil, errors.New("the two codes differ")
		}
		return qs[0], nil
	}
	for _, tt := range []struct {
		name       string
		lookup     func(context.Context, *cache.Cache) (*kisfeed.Quote, error)
		budget     time.Duration
		wantCalls  int64
		wantOrigin kisfeed.Origin
		wantPrice  int64
	}{
		{"quote, budget on: no upstream call", quote, time.Hour, 1, kisfeed.OriginStale, 1000},
		{"quote, budget off: asks the upstream", quote, 0, 2, kisfeed.OriginSource, 2000},
		{"quotes, budget on: no upstream call", quotes, time.Hour, 1, kisfeed.OriginStale, 1000},
		{"quotes, budget off: asks the upstream", quotes, 0, 2, kisfeed.OriginSource, 2000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock(kst(10, 0))
			up := &gatedUpstream{entered: make(chan context.Context, 1)}
			var down atomic.Bool
			c, err := cache.New(up.source(), cache.NewMemory(10, clk.Now), sessions, cache.WithClock(kisfeed.Clock{Wall: clk.Now}),
				cache.WithStaleBudget(tt.budget),
				cache.WithUpstreamHealth(func(context.Context) error {
					if down.Load() {
						return errors.New("circuit open")
					}
					return nil
				}))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // a failure bound, not a wait
			defer cancel()
			if _, err := tt.lookup(ctx, c); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Hour) // past the 30m price TTL
			down.Store(true)
			q, err := tt.lookup(ctx, c)
			if err != nil || q.Meta.Origin != tt.wantOrigin || q.Price != tt.wantPrice {
				t.Fatalf("while known down: got %+v, %v; want %s %d", q, err, tt.wantOrigin, tt.wantPrice)
			}
			if got := up.calls.Load(); got != tt.wantCalls {
				t.Errorf("upstream calls: got %d, want %d", got, tt.wantCalls)
			}
		})
	}
}
