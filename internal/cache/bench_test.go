package cache_test

import (
	"github.com/kisfeed/kisfeed"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed/internal/cache"
)

// BenchmarkQuoteHit measures a fresh hit: the path most gateway requests
// take.
func BenchmarkQuoteHit(b *testing.B) {
	run := func(b *testing.B, store cache.Store, opts ...cache.Option) {
		clk := newClock(kst(10, 0))
		up := &fakeUpstream{now: clk.Now}
		c, err := cache.New(up.source(), store, append([]cache.Option{sessions, cache.WithClock(kisfeed.Clock{Wall: clk.Now})}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Quote(b.Context(), kisfeed.MustParseCode("005930")); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Quote(b.Context(), kisfeed.MustParseCode("005930")); err != nil {
					b.Error(err)
					return
				}
			}
		})
		if up.calls.Load() != 1 {
			b.Errorf("upstream calls: got %d, want 1", up.calls.Load())
		}
	}
	b.Run("memory", func(b *testing.B) { run(b, cache.NewMemory(1000, nil)) })
	// With refresh-ahead on, every Quote also counts its code (the loop
	// itself never ticks here: its tick channel stays silent).
	b.Run("memory+refresh", func(b *testing.B) {
		run(b, cache.NewMemory(1000, nil), cache.WithRefreshAhead(cache.Refresh{Rate: 1, Tick: make(chan time.Time)}))
	})
	b.Run("redis", func(b *testing.B) {
		rdb, prefix := testRedisB(b)
		run(b, prefixed{cache.NewRedis(rdb), prefix})
	})
}
