package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kisfeed/kisfeed/internal/cache"
	"github.com/kisfeed/kisfeed/kis"
)

// Metrics is the observer of the KIS client and of the cache.
var (
	_ kis.Observer   = (*Metrics)(nil)
	_ cache.Observer = (*Metrics)(nil)
)

func TestObservers(t *testing.T) {
	t.Parallel()
	m := New(prometheus.NewRegistry())
	m.ObserveHTTP("GET", "/v1/stocks/{code}/quote", 200, 3*time.Millisecond)
	m.ObserveHTTP("GET", "/v1/stocks/{code}/quote", 200, time.Millisecond)
	m.ObserveHTTP("GET", "/v1/quotes", 418, time.Millisecond)
	m.Request("FHKST01010100", 200, "MCA00000", 20*time.Millisecond, nil)
	m.Request("FHKST01010100", 500, "EGW00201", 5*time.Millisecond, errors.New("rate"))
	m.Request("FHKST01010100", 0, "", time.Second, errors.New("dial"))
	m.Retry("FHKST01010100", "rate limited")
	m.LimiterWait(30 * time.Millisecond)
	m.TokenIssued()
	m.Hit("quote")
	m.Hit("quote")
	m.Miss("quote")
	m.Stale("orderbook")

	tests := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"http 200", m.httpRequests.WithLabelValues("GET", "/v1/stocks/{code}/quote", "200"), 2},
		{"http 418", m.httpRequests.WithLabelValues("GET", "/v1/quotes", "418"), 1},
		{"upstream 200", m.upstreamRequests.WithLabelValues("FHKST01010100", "200"), 1},
		{"upstream no status", m.upstreamRequests.WithLabelValues("FHKST01010100", "0"), 1},
		{"kis error EGW00201", m.kisErrors.WithLabelValues("EGW00201"), 1},
		{"kis error none", m.kisErrors.WithLabelValues("none"), 1},
		{"kis success not an error", m.kisErrors.WithLabelValues("MCA00000"), 0},
		{"retry", m.retries.WithLabelValues("FHKST01010100", "rate limited"), 1},
		{"tokens", m.tokens, 1},
		{"hits", m.cacheHits.WithLabelValues("quote"), 2},
		{"misses", m.cacheMisses.WithLabelValues("quote"), 1},
		{"stale", m.cacheStale.WithLabelValues("orderbook"), 1},
	}
	for _, tt := range tests {
		if got := testutil.ToFloat64(tt.c); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := testutil.CollectAndCount(m.limiterWait); got != 1 {
		t.Errorf("limiter wait series: got %d, want 1", got)
	}
}

func TestBreakerState(t *testing.T) {
	t.Parallel()
	m := New(prometheus.NewRegistry())
	for _, state := range []string{"open", "half-open", "closed", "open"} {
		m.SetBreakerState(state)
		for _, s := range BreakerStates {
			want := 0.0
			if s == state {
				want = 1
			}
			if got := testutil.ToFloat64(m.breakerState.WithLabelValues(s)); got != want {
				t.Errorf("after %s: breaker_state{state=%q}: got %v, want %v", state, s, got, want)
			}
		}
	}
}

func TestIngestFigures(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := New(reg)
	names := func() string {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, mf := range mfs {
			if strings.Contains(mf.GetName(), "ingest") {
				out = append(out, mf.GetName())
			}
		}
		return strings.Join(out, ",")
	}
	if got := names(); got != "" {
		t.Errorf("without a func: got %s, want no ingest series", got)
	}
	start := time.Date(2025, 3, 11, 16, 0, 0, 0, time.UTC)
	m.SetIngestFunc(func() (RunFigures, bool) {
		return RunFigures{Started: start, Finished: start.Add(90 * time.Second), Stocks: 2600, Succeeded: 2598, Failed: 2, Rows: 2598}, true
	})
	want := `
# HELP kisfeed_ingest_last_run_duration_seconds Duration of the latest ingestion run (so far, while running).
# TYPE kisfeed_ingest_last_run_duration_seconds gauge
kisfeed_ingest_last_run_duration_seconds 90
# HELP kisfeed_ingest_last_run_stocks Stocks of the latest ingestion run, by result: total, succeeded, failed.
# TYPE kisfeed_ingest_last_run_stocks gauge
kisfeed_ingest_last_run_stocks{result="failed"} 2
kisfeed_ingest_last_run_stocks{result="succeeded"} 2598
kisfeed_ingest_last_run_stocks{result="total"} 2600
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"kisfeed_ingest_last_run_duration_seconds", "kisfeed_ingest_last_run_stocks"); err != nil {
		t.Error(err)
	}
	if got := names(); !strings.Contains(got, "kisfeed_ingest_last_run_rows") || !strings.Contains(got, "end_timestamp") {
		t.Errorf("ingest series: got %s, want rows and end timestamp too", got)
	}
}
