package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/breaker"
	"github.com/kisfeed/kisfeed/internal/cache"
	"github.com/kisfeed/kisfeed/internal/httpapi"
	"github.com/kisfeed/kisfeed/internal/metrics"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/internal/synthetic"
)

// outage is an upstream that can be switched off: while down, every call
// fails as a refused connection to the emulator would.
type outage struct {
	kisfeed.Source
	down atomic.Bool
}

func (o *outage) fail() error {
	return fmt.Errorf("kis: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
}

func (o *outage) Quote(ctx context.Context, code kisfeed.Code) (*kisfeed.Quote, error) {
	if o.down.Load() {
		return nil, o.fail()
	}
	return o.Source.Quote(ctx, code)
}

// TestUpstreamOutage runs the production stack (cache over breaker over
// the upstream) through an outage, on a fake clock: cached codes keep
// answering 200 with X-Cache: STALE, uncached ones 503 with Retry-After;
// once the upstream is back and the breaker delay has passed, the breaker
// closes and fresh data flows. No other 5xx.
func TestUpstreamOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bubble's clock starts in 2000; shift it onto a trading
		// morning the synthetic market covers.
		start := time.Now()
		base := time.Date(2025, time.March, 11, 10, 0, 0, 0, kisfeed.KST)
		now := func() time.Time { return base.Add(time.Since(start)) }

		const delay = 30 * time.Second
		reg := prometheus.NewRegistry()
		m := metrics.New(reg)
		up := &outage{Source: synthetic.NewSource(sim.New(1), kisfeed.Clock{Market: now})}
		br, err := breaker.New(up, breaker.WithFailures(3), breaker.WithDelay(delay), breaker.WithSuccesses(1),
			breaker.WithOnStateChange(func(_, to breaker.State) { m.SetBreakerState(string(to)) }))
		if err != nil {
			t.Fatal(err)
		}
		c, err := cache.New(br, cache.NewMemory(1000, now), cache.WithClock(kisfeed.Clock{Wall: now}), cache.WithObserver(m),
			cache.WithTTLs(cache.TTLs{Price: 5 * time.Second}))
		if err != nil {
			t.Fatal(err)
		}
		srv := httpapi.New(httpapi.Options{
			Source: c, Clock: kisfeed.Clock{Wall: now}, Observer: m, Logger: slog.New(slog.DiscardHandler),
			Checks: []httpapi.Check{httpapi.BreakerCheck(func() string { return string(br.State()) }, br.RetryAfter)},
		})
		get := func(path string) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			return rec
		}
		type want struct {
			status int
			xcache string
		}
		expect := func(step, code string, w want) *httptest.ResponseRecorder {
			t.Helper()
			rec := get("/v1/stocks/" + code + "/quote")
			if rec.Code != w.status || rec.Header().Get("X-Cache") != w.xcache {
				t.Errorf("%s: %s: got %d X-Cache %q, want %d %q; body %s", step, code,
					rec.Code, rec.Header().Get("X-Cache"), w.status, w.xcache, rec.Body)
			}
			if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
				t.Errorf("%s: %s: got %d, want no 5xx but 503", step, code, rec.Code)
			}
			return rec
		}

		// Warm two codes, then let their TTL lapse.
		cached := []string{"005930", "000660"}
		for _, code := range cached {
			expect("warm", code, want{200, "MISS"})
			expect("warm again", code, want{200, "HIT"})
		}
		time.Sleep(10 * time.Second)

		// Outage: cached codes are served stale, uncached ones refused.
		up.down.Store(true)
		for i := range 3 {
			for _, code := range cached {
				rec := expect("outage "+strconv.Itoa(i), code, want{200, "STALE"})
				var body map[string]any
				_ = json.Unmarshal(rec.Body.Bytes(), &body)
				if body["stale"] != true || body["origin"] != "stale" || rec.Header().Get("Cache-Control") != "max-age=0" {
					t.Errorf("stale body: got stale %v origin %v Cache-Control %q, want true, stale, max-age=0",
						body["stale"], body["origin"], rec.Header().Get("Cache-Control"))
				}
			}
		}
		if got := br.State(); got != breaker.Open {
			t.Fatalf("breaker after 6 failures: got %s, want open", got)
		}
		rec := expect("outage, uncached", "035420", want{503, ""})
		ra, _ := strconv.Atoi(rec.Header().Get("Retry-After"))
		if ra < 1 || ra > int(delay/time.Second) {
			t.Errorf("Retry-After: got %q, want 1..%d seconds", rec.Header().Get("Retry-After"), int(delay/time.Second))
		}
		if rec := get("/readyz"); rec.Code != http.StatusServiceUnavailable {
			t.Errorf("/readyz during outage: got %d, want 503; body %s", rec.Code, rec.Body)
		}
		if got := testutil.ToFloat64(mustGauge(t, reg, "open")); got != 1 {
			t.Errorf("breaker_state{state=open}: got %v, want 1", got)
		}

		// Upstream back: still refused until the delay passes.
		up.down.Store(false)
		expect("back, breaker still open", cached[0], want{200, "STALE"})
		time.Sleep(delay)
		expect("back, trial call", cached[0], want{200, "MISS"})
		if got := br.State(); got != breaker.Closed {
			t.Errorf("breaker after a successful trial: got %s, want closed", got)
		}
		expect("back", cached[1], want{200, "MISS"})
		expect("back, uncached", "035420", want{200, "MISS"})
		expect("back, cached again", "035420", want{200, "HIT"})
		if rec := get("/readyz"); rec.Code != http.StatusOK {
			t.Errorf("/readyz after recovery: got %d, want 200; body %s", rec.Code, rec.Body)
		}
		synctest.Wait()
	})
}

// mustGauge finds kisfeed_breaker_state{state=...} through the registry.
func mustGauge(t *testing.T, reg *prometheus.Registry, state string) prometheus.Collector {
	t.Helper()
	return gaugeFromRegistry{reg: reg, state: state}
}

// gaugeFromRegistry is a Collector exposing one breaker_state series, so
// testutil.ToFloat64 can read it without access to the Metrics fields.
type gaugeFromRegistry struct {
	reg   *prometheus.Registry
	state string
}

func (g gaugeFromRegistry) Describe(ch chan<- *prometheus.Desc) {
	ch <- prometheus.NewDesc("kisfeed_breaker_state", "", nil, nil)
}

func (g gaugeFromRegistry) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "kisfeed_breaker_state" {
			continue
		}
		for _, mm := range mf.GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == "state" && l.GetValue() == g.state {
					ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("kisfeed_breaker_state", "", nil, nil),
						prometheus.GaugeValue, mm.GetGauge().GetValue())
				}
			}
		}
	}
}

// BenchmarkQuoteCacheStack measures the cached quote path through the
// production stack: handler, middleware, cache (memory store) and breaker,
// every request a fresh cache hit.
func BenchmarkQuoteCacheStack(b *testing.B) {
	now := func() time.Time { return time.Date(2025, time.March, 11, 10, 0, 0, 0, kisfeed.KST) }
	br, err := breaker.New(synthetic.NewSource(sim.New(1), kisfeed.Clock{Market: now}))
	if err != nil {
		b.Fatal(err)
	}
	c, err := cache.New(br, cache.NewMemory(1000, now), cache.WithClock(kisfeed.Clock{Wall: now}))
	if err != nil {
		b.Fatal(err)
	}
	srv := httpapi.New(httpapi.Options{Source: c, Clock: kisfeed.Clock{Wall: now}, Observer: metrics.New(prometheus.NewRegistry()),
		Logger: slog.New(slog.DiscardHandler)})
	req := httptest.NewRequest(http.MethodGet, "/v1/stocks/005930/quote", nil)
	srv.ServeHTTP(httptest.NewRecorder(), req) // warm the cache
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status: got %d, want 200", rec.Code)
			}
		}
	})
}
