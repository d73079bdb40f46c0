package cache_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/cache"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
)

// batchUpstream answers Quote and Quotes, recording each Quotes batch.
type batchUpstream struct {
	mu      sync.Mutex
	batches []string // "A,B" per Quotes call
	singles int
	block   bool // Quotes waits for its context's end
}

func (u *batchUpstream) source(universe []string) *sourcetest.Func {
	return &sourcetest.Func{
		QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
			u.mu.Lock()
			u.singles++
			u.mu.Unlock()
			return &kisfeed.Quote{Code: code, Price: 1}, nil
		},
		QuotesFn: func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
			u.mu.Lock()
			u.batches = append(u.batches, strings.Join(codes, ","))
			block := u.block
			u.mu.Unlock()
			if block {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			out := make([]*kisfeed.Quote, len(codes))
			for i, c := range codes {
				out[i] = &kisfeed.Quote{Code: c, Price: 2}
			}
			return out, nil
		},
		UniverseFn: func(ctx context.Context) ([]kisfeed.Stock, error) {
			var out []kisfeed.Stock
			for _, c := range universe {
				out = append(out, kisfeed.Stock{Code: c})
			}
			return out, nil
		},
	}
}

func (u *batchUpstream) take() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	b := u.batches
	u.batches = nil
	return b
}

// TestRefreshAhead drives the refresh-ahead loop round by round (an
// injected tick, the freshness clock set by hand): the most-requested
// codes are fetched in batches shortly before their TTL ends, so they are
// still hits after it; codes outside the hot set are not; a price that
// would end at the next session boundary anyway is not fetched again; the
// universe option warms codes never asked for; Close stops the loop even
// mid-call.
func TestRefreshAhead(t *testing.T) {
	t.Parallel()
	const (
		A = "000001"
		B = "000002"
		C = "000003"
		D = "000004"
		E = "000005"
	)
	type step struct {
		advance  time.Duration // freshness clock, before the ticks
		ticks    int
		want     []string // Quotes batches made by those ticks
		hits     []string // codes then answered from the cache
		misses   []string // codes then fetched by a Quote
		requests map[string]int
	}
	tests := []struct {
		name     string
		start    time.Time
		cfg      cache.Refresh
		universe []string
		steps    []step
	}{
		{
			name:  "hot codes refreshed before their TTL ends, most requested first",
			start: kst(10, 0),
			cfg:   cache.Refresh{Rate: 1, Codes: 3, Batch: 2},
			steps: []step{
				{requests: map[string]int{A: 5, B: 3, C: 2, D: 1}, ticks: 2},          // all fresh for 10m: nothing to do
				{advance: 8*time.Minute + 59*time.Second, ticks: 1},                   // 1m01s left; the lead is min(TTL/4, 1m) = 1m: not yet
				{advance: 30 * time.Second, ticks: 3, want: []string{A + "," + B, C}}, // 31s left: within the lead
				{advance: time.Minute, hits: []string{A, B, C}, misses: []string{D}},
			},
		},
		{
			name:  "no refresh that would end at the open anyway",
			start: time.Date(2026, 3, 10, 8, 50, 0, 0, kisfeed.KST),
			cfg:   cache.Refresh{Rate: 1, Codes: 3},
			steps: []step{
				{requests: map[string]int{A: 8}},                    // counts halve every minute
				{advance: 9*time.Minute + 30*time.Second, ticks: 2}, // 08:59:30: fresh until 09:00 either way
				{advance: 30 * time.Second, ticks: 1, want: []string{A}, hits: []string{A}},
			},
		},
		{
			name:     "universe warmed after the requested codes",
			start:    kst(10, 0),
			cfg:      cache.Refresh{Rate: 1, Codes: 4, Batch: 2, Universe: true},
			universe: []string{A, B, C, D, E},
			steps: []step{
				{requests: map[string]int{C: 2}, ticks: 3, want: []string{A + "," + B, D}, hits: []string{A, B, C, D}, misses: []string{E}},
			},
		},
		{
			name:     "idle: no quote asked, no call",
			start:    kst(10, 0),
			cfg:      cache.Refresh{Rate: 1, Universe: true},
			universe: []string{A, B},
			steps:    []step{{ticks: 2, misses: []string{A}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				clk := newClock(tt.start)
				up := &batchUpstream{}
				tick := make(chan time.Time)
				cfg := tt.cfg
				cfg.Tick = tick
				c, err := cache.New(up.source(tt.universe), cache.NewMemory(100, clk.Now), sessions, cache.WithClock(kisfeed.Clock{Wall: clk.Now}),
					cache.WithTTLs(cache.TTLs{Price: 10 * time.Minute}), cache.WithRefreshAhead(cfg))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				for i, st := range tt.steps {
					for code, n := range st.requests {
						for range n {
							if _, err := c.Quote(t.Context(), kisfeed.MustParseCode(code)); err != nil {
								t.Fatal(err)
							}
						}
					}
					clk.Advance(st.advance)
					for range st.ticks {
						tick <- clk.Now()
						synctest.Wait()
					}
					if got := up.take(); !slices.Equal(got, st.want) {
						t.Errorf("step %d: Quotes batches: got %q, want %q", i, got, st.want)
					}
					for _, code := range st.hits {
						if q, err := c.Quote(t.Context(), kisfeed.MustParseCode(code)); err != nil || q.Meta.Origin != kisfeed.OriginCache {
							t.Errorf("step %d: %s: got %+v, %v; want a cache hit", i, code, q, err)
						}
					}
					for _, code := range st.misses {
						if q, err := c.Quote(t.Context(), kisfeed.MustParseCode(code)); err != nil || q.Meta.Origin != kisfeed.OriginSource {
							t.Errorf("step %d: %s: got %+v, %v; want a miss fetched now", i, code, q, err)
						}
					}
				}
			})
		})
	}
}

// TestRefreshCloseMidCall: Close stops the loop while its upstream call
// hangs, and waits for it (the bubble fails if a goroutine is left).
func TestRefreshCloseMidCall(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		clk := newClock(kst(10, 0))
		up := &batchUpstream{block: true}
		tick := make(chan time.Time)
		c, err := cache.New(up.source([]string{"005930"}), cache.NewMemory(100, clk.Now), sessions, cache.WithClock(kisfeed.Clock{Wall: clk.Now}),
			cache.WithRefreshAhead(cache.Refresh{Rate: 1, Universe: true, Tick: tick}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Quote(t.Context(), kisfeed.MustParseCode("000660")); err != nil {
			t.Fatal(err)
		}
		tick <- clk.Now()
		synctest.Wait() // the loop now waits in Quotes for the universe's 005930
		if got := up.take(); len(got) != 1 {
			t.Fatalf("Quotes calls: got %q, want one", got)
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// TestRefreshConfig: bad refresh settings are refused with the values.
func TestRefreshConfig(t *testing.T) {
	t.Parallel()
	for _, r := range []cache.Refresh{{Rate: -1}, {Rate: 1, Batch: 31}, {Rate: 1, Codes: -1}, {Rate: 1, Ahead: -time.Second}} {
		_, err := cache.New(&sourcetest.Func{}, cache.NewMemory(1, nil), cache.WithRefreshAhead(r))
		if err == nil || !strings.Contains(err.Error(), "refresh ahead") {
			t.Errorf("%+v: got %v, want a refresh-ahead error", r, err)
		}
	}
}
