package wiring

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/emulator"
	"github.com/kisfeed/kisfeed/internal/breaker"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/kis"
)

// TestLoneCallerOpensBreakerFast: when every lookup is a fresh cache hit,
// the only call reaching KIS in an outage is refresh-ahead's multi-quote,
// one at a time — scripts/breaker-outage.sh saw a single
// intstock-multprice call fail through its retries for 2.4 s before the
// circuit opened. With the factory's defaults (BREAKER_FAILURES,
// KIS_RETRY_ATTEMPTS and its backoff) such a lone caller must still open
// the circuit within 2 s of the outage's start (issue 13's bar): 5 failed
// attempts of one call span 4 backoffs, 3 s ± 25 %, so at least 2.25 s.
func TestLoneCallerOpensBreakerFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		begin := time.Now()
		base := time.Date(2025, time.March, 11, 10, 0, 0, 0, kisfeed.KST)
		market := func() time.Time { return base.Add(time.Since(begin)) }
		emu, err := emulator.New(emulator.WithSeed(1), emulator.WithServerKind(emulator.KindReal),
			emulator.WithMarketClock(market),
			emulator.WithRate(EmbeddedRate), emulator.WithAppKey(DemoAppKey, DemoAppSecret))
		if err != nil {
			t.Fatal(err)
		}
		var down atomic.Bool
		reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
		tr := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if down.Load() {
				return nil, reset
			}
			rec := httptest.NewRecorder()
			emu.ServeHTTP(rec, r)
			return rec.Result(), nil
		})
		gate := &breakerGate{}
		c, err := kis.NewClient(
			kis.WithServer(kis.Real), kis.WithBaseURL("http://kis.test"), kis.WithMasterURL("http://kis.test"),
			kis.WithAppKey(DemoAppKey, DemoAppSecret), kis.WithRateLimit(EmbeddedRate),
			kis.WithTokenStore(kis.NewMemoryTokenStore()), kis.WithHTTPClient(&http.Client{Transport: tr}),
			kis.WithRetry(cfg.RetryAttempts+1, retryBase, retryMax), kis.WithRetryGate(gate),
			kis.WithMarketClock(market))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var mu sync.Mutex
		var openedAt time.Time
		b, err := breaker.New(kis.NewSource(c), breaker.WithNeutral(neutral),
			breaker.WithFailures(cfg.BreakerFailures), breaker.WithDelay(cfg.BreakerDelay),
			breaker.WithOnStateChange(func(_, to breaker.State) {
				mu.Lock()
				defer mu.Unlock()
				if to == breaker.Open && openedAt.IsZero() {
					openedAt = time.Now()
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		gate.b.Store(b)
		var codes []string
		for _, s := range sim.New(1).Universe()[:30] {
			codes = append(codes, s.Code)
		}
		ctx := context.Background()
		if _, err := b.Quotes(ctx, kisfeed.MustParseCodes(codes...)); err != nil {
			t.Fatalf("before the outage: %v", err)
		}

		down.Store(true)
		start := time.Now()
		// One call at a time, the next half a second after the last ended,
		// as refresh-ahead's loop makes them; bounded at 20 s.
		for b.State() == breaker.Closed && time.Since(start) < 20*time.Second {
			_, _ = b.Quotes(ctx, kisfeed.MustParseCodes(codes...))
			time.Sleep(500 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if openedAt.IsZero() {
			t.Fatalf("circuit never opened in 20 s of outage (BREAKER_FAILURES=%d)", cfg.BreakerFailures)
		}
		if got := openedAt.Sub(start); got > 2*time.Second {
			t.Errorf("lone caller, BREAKER_FAILURES=%d: circuit opened %s into the outage, want within 2s", cfg.BreakerFailures, got)
		}
	})
}
