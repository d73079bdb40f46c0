package wiring_test

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed/emulator"
	"github.com/kisfeed/kisfeed/emulator/emulatortest"
	"github.com/kisfeed/kisfeed/internal/wiring"
)

// TestSharedBudget is the in-process version of scripts/shared-budget.sh:
// three upstreams built by the factory (three KIS clients, each with its
// own Redis connection pool, as three processes would have) share one app
// key against an emulator limited to 18 req/s. Together they must stay
// within 18 accepted requests in every 1-second window without drawing
// rate-limit rejections, and issue exactly one token.
func TestSharedBudget(t *testing.T) {
	t.Parallel()
	url, prefix := redisURL(t)
	const rate = 18
	emu, base := emulatortest.Start(t, emulator.WithRate(rate))
	cfg := kisConfig(t, base)
	cfg.RedisURL = url
	cfg.RateLimit = rate
	cfg.UseRealServer = true

	var ups []*wiring.Stack
	for range 3 {
		u := newUpstream(t, cfg, wiring.Deps{RedisPrefix: prefix})
		if len(u.Clients) != 1 || wiring.RedisOf(u) == nil {
			t.Fatalf("upstream: %d clients, redis %v; want 1 and a client", len(u.Clients), wiring.RedisOf(u))
		}
		ups = append(ups, u)
	}
	pacing := make([]float64, len(ups))
	for i, u := range ups {
		pacing[i] = u.Clients[0].RateLimit()
	}
	codes := []string{"005930", "000660", "035420", "005380", "035720", "068270", "207940", "373220"}
	const d = 3 * time.Second
	// Cancelled at d, not a deadline: the client's limiter refuses at once
	// any wait that would end after a deadline.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stop := time.AfterFunc(d, cancel)
	defer stop.Stop()
	var calls atomic.Int64
	var wg sync.WaitGroup
	for i, u := range ups {
		for w := range 4 {
			rng := rand.New(rand.NewPCG(uint64(i), uint64(w)))
			wg.Go(func() {
				for ctx.Err() == nil {
					if _, _, err := u.Clients[0].Price(ctx, codes[rng.IntN(len(codes))]); err != nil {
						if ctx.Err() == nil {
							t.Errorf("Price: %v", err)
						}
						return
					}
					calls.Add(1)
				}
			})
		}
	}
	wg.Wait()

	st := emu.Stats()
	t.Logf("%d calls in %s (%.1f/s); emulator: requests %d, max per 1 s window %d, rejections %d, tokens %d",
		calls.Load(), d, float64(calls.Load())/d.Seconds(), st.Requests, st.MaxRequestsPerSecondWindow,
		st.RateLimitRejections, st.TokensIssued)
	if st.MaxRequestsPerSecondWindow > rate {
		t.Errorf("max requests in a 1 s window: got %d, want ≤ %d", st.MaxRequestsPerSecondWindow, rate)
	}
	if st.TokensIssued != 1 {
		t.Errorf("tokens issued: got %d, want 1", st.TokensIssued)
	}
	// Unshared, three clients at 18/s would send ~52/s and draw hundreds
	// of rejections; shared, jitter may cost one now and then at most.
	if st.RateLimitRejections > 2 {
		t.Errorf("rate-limit rejections: got %d, want ≤ 2", st.RateLimitRejections)
	}
	// The budget is used, not just respected. Not checked by counting the
	// calls made in the 3 s: that measures the machine as much as the
	// limiter (on a loaded CI machine 28 calls instead of ≥ 37, the
	// limiter idle while the workers waited for a core). A limiter that
	// throttles far below the rate was either built with a lower rate (a
	// per-replica share, a unit slip, the headroom applied twice) or
	// lowered its rate while running (the client's adaptive pacing backs
	// off by 0.75 per EGW00201); both are checked exactly here: the
	// shared limiters' spacing, and each client's pacing, unchanged
	// unless that client drew one of the rejections allowed above (then
	// at most one step per rejection). That the shared limiter grants one
	// request per spacing is its own test's business (internal/shared
	// TestLimiterShared).
	perSecond := float64(rate)
	perSecond *= 0.97 // at run time, as the wiring computes it
	wantSpacing := time.Duration(float64(time.Second) / perSecond)
	for i, u := range ups {
		lims := wiring.SharedLimitersOf(u)
		if len(lims) != 1 || lims[0].Interval() != wantSpacing {
			var got []time.Duration
			for _, l := range lims {
				got = append(got, l.Interval())
			}
			t.Errorf("upstream %d: shared limiter spacing %v, want one at %v (97 %% of %d/s)", i, got, wantSpacing, rate)
		}
		c := u.Clients[0]
		refused := c.Stats().RateLimited
		want := pacing[i] * math.Pow(0.75, float64(refused))
		if got := c.RateLimit(); got < want*0.999 || pacing[i] < 0.9*rate {
			t.Errorf("upstream %d: client pacing %.2f/s after the run (refused %d times), started at %.2f/s; want ≥ %.2f/s and a start ≥ 90 %% of %d/s",
				i, got, refused, pacing[i], want, rate)
		}
	}
}
