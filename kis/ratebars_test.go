package kis

import (
	"sync"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed/emulator"
	"github.com/kisfeed/kisfeed/emulator/emulatortest"
)

// BenchmarkRateBars measures the rate bars against an in-process
// emulator on the real clock. A benchmark, not a test: it takes about three
// minutes on the real clock, so it runs only with -bench. Each case runs
// once; KISFEED_RATE_BARS_CALLS overrides the 1,000 calls.
//
//	go test -run '^$' -bench BenchmarkRateBars -benchtime 1x -v ./kis
func BenchmarkRateBars(b *testing.B) {
	calls := envInt("KISFEED_RATE_BARS_CALLS", 1000)
	tests := []struct {
		name             string
		server, client   float64
		calls            int
		maxElapsed       time.Duration // 0 = no bound
		wantRejectionsOK bool          // rejections allowed (adaptive case)
	}{
		{"emulator 18, client 18", 18, 18, calls, time.Duration(float64(calls) / (0.95 * 18) * float64(time.Second)), false},
		{"emulator 20, client 20", 20, 20, calls, time.Duration(float64(calls) / (0.95 * 20) * float64(time.Second)), false},
		{"emulator 12, client 18", 12, 18, calls / 2, 0, true},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			srv, base := emulatortest.Start(b, emulator.WithMarket(simMarket()), emulator.WithRate(tt.server))
			c, err := NewClient(WithBaseURL(base), WithAppKey(testKey, testSecret),
				WithTokenStore(NewMemoryTokenStore()), WithRateLimit(tt.client))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Token(b.Context()); err != nil {
				b.Fatal(err)
			}
			codes := []string{"005930", "000660", "035420", "005380", "035720"}
			var next sync.Mutex
			i, failed := 0, 0
			var wg sync.WaitGroup
			start := time.Now()
			for range 16 {
				wg.Go(func() {
					for {
						next.Lock()
						n := i
						i++
						next.Unlock()
						if n >= tt.calls {
							return
						}
						if _, _, err := c.Price(b.Context(), codes[n%len(codes)]); err != nil {
							next.Lock()
							failed++
							next.Unlock()
							b.Errorf("call %d: %v", n, err)
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			st := srv.Stats()
			rate := float64(tt.calls) / elapsed.Seconds()
			b.ReportMetric(rate, "calls/s")
			b.ReportMetric(float64(st.RateLimitRejections), "rejections")
			b.ReportMetric(float64(st.MaxRequestsPerSecondWindow), "max-1s-window")
			b.Logf("%d calls in %.2f s = %.2f/s; rejections %d, max 1-s window %d, retries %d, client rate at end %.2f",
				tt.calls, elapsed.Seconds(), rate, st.RateLimitRejections, st.MaxRequestsPerSecondWindow, c.Stats().Retries, c.RateLimit())
			if failed > 0 {
				b.Errorf("failed calls: got %d, want 0", failed)
			}
			if st.MaxRequestsPerSecondWindow > int(tt.server) {
				b.Errorf("max 1-s window: got %d, want <= %v", st.MaxRequestsPerSecondWindow, tt.server)
			}
			if !tt.wantRejectionsOK && st.RateLimitRejections != 0 {
				b.Errorf("rejections: got %d, want 0", st.RateLimitRejections)
			}
			if tt.maxElapsed > 0 && elapsed > tt.maxElapsed {
				b.Errorf("elapsed: got %s, want <= %s", elapsed, tt.maxElapsed)
			}
		})
	}
}
