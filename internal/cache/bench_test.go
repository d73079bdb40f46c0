package cache_test

import (
	"testing"

	"github.com/kisfeed/kisfeed/internal/cache"
)

// BenchmarkQuoteHit measures a fresh hit: the path most gateway requests
// take.
func BenchmarkQuoteHit(b *testing.B) {
	run := func(b *testing.B, store cache.Store) {
		clk := newClock(kst(10, 0))
		up := &fakeUpstream{now: clk.Now}
		c, err := cache.New(up.source(), store, cache.WithClock(clk.Now))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Quote(b.Context(), "005930"); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Quote(b.Context(), "005930"); err != nil {
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
	b.Run("redis", func(b *testing.B) {
		rdb, prefix := testRedisB(b)
		run(b, prefixed{cache.NewRedis(rdb), prefix})
	})
}
