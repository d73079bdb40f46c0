package main

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/httpapi"
	"github.com/kisfeed/kisfeed/internal/metrics"
	"github.com/kisfeed/kisfeed/internal/sqlite"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// TestStatusFeed reads /v1/status's figures from a registry the real
// metrics fill (so a renamed metric fails here), measures the upstream
// rate over the window, and lists the database's runs.
func TestStatusFeed(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, kisfeed.KST)
	now := func() time.Time { return at }
	requests := func(n int) {
		for range n {
			m.Request("FHKST01010100", 200, "", time.Millisecond, nil)
		}
	}
	requests(4) // before serve's feed starts: not in the rate
	db, err := sqlite.Open(t.Context(), seedRunsDB(t, filepath.Join(t.TempDir(), "k.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := newStatusFeed(reg, now, 36, 2, db)

	for range 3 {
		m.Hit("price")
	}
	m.Miss("price")
	m.Stale("orderbook")
	m.SetBreakerState("open")
	s := f.report(t.Context())
	if s.Breaker != "open" || s.Cache.Hits != 3 || s.Cache.Misses != 1 || s.Cache.Stale != 1 || s.Cache.HitRatio == nil || *s.Cache.HitRatio != 0.75 {
		t.Errorf("breaker and cache: got %s %+v, want open, 3 hits, 1 miss, 1 stale, ratio 0.75", s.Breaker, s.Cache)
	}
	if s.Upstream.Requests != 4 || s.Upstream.PerSecond != nil || s.Upstream.Limit == nil || *s.Upstream.Limit != 36 || s.Upstream.Keys != 2 {
		t.Errorf("upstream at start: got %+v, want 4 requests, no rate yet, limit 36, 2 keys", s.Upstream)
	}
	if len(s.Stream.Keys) != 2 || s.Stream.Available || s.Stream.Keys[1] != (httpapi.StatusStreamKey{Key: 2}) {
		t.Errorf("stream: got %+v, want keys 1 and 2 with nothing open", s.Stream)
	}
	if !s.Ingestion.Database || len(s.Ingestion.Runs) != 1 || s.Ingestion.Runs[0].Status != "succeeded" || s.Ingestion.Runs[0].From != "2026-11-26" {
		t.Errorf("ingestion: got %+v, want the seeded run", s.Ingestion)
	}

	steps := []struct {
		after    time.Duration
		requests int
		want     float64
	}{
		{10 * time.Second, 20, 2}, // 20 over the 10 s since the start
		{10 * time.Second, 40, 3}, // 60 over 20 s
		{20 * time.Second, 20, 2}, // the start left the window: 60 over the 30 s since the reading at 10 s
	}
	for i, st := range steps {
		at = at.Add(st.after)
		requests(st.requests)
		got := f.report(t.Context()).Upstream.PerSecond
		if got == nil || *got != st.want {
			t.Errorf("step %d: rate %v, want %v req/s", i, deref(got), st.want)
		}
	}

	none := newStatusFeed(reg, now, 0, 0, nil).report(t.Context())
	if none.Ingestion.Database || none.Upstream.Limit != nil || len(none.Stream.Keys) != 0 {
		t.Errorf("without database or KIS: got %+v %+v, want no database, no limit, no keys", none.Ingestion, none.Upstream)
	}
}

// TestUpstreamLimit: the limit shown is what the wiring paces the keys at.
func TestUpstreamLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  func(*config.Config)
		keys int
		want float64
	}{
		{"embedded", func(*config.Config) {}, 1, 18},
		{"real server, two keys", func(c *config.Config) { c.AppKey, c.AppSecret, c.UseRealServer = "k", "s", true }, 2, 36},
		{"configured rate", func(c *config.Config) { c.AppKey, c.AppSecret, c.RateLimit = "k", "s", 5 }, 1, 5},
		{"mock", func(c *config.Config) { c.EnableKISAPI = "false" }, 0, 0},
	}
	for _, tt := range tests {
		cfg := config.Default()
		tt.cfg(&cfg)
		if got := upstreamLimit(cfg, tt.keys); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestStatusStream: with a stream, each key's session and registrations
// come from the live client, by position, never by app key.
func TestStatusStream(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.New(reg)
	f := newStatusFeed(reg, time.Now, 18, 2, nil)
	f.stream = func() stream.Stats {
		return stream.Stats{Keys: []stream.KeyStats{{ID: "key1", Connected: true, Registrations: 41}, {ID: "key2", Registrations: 3}}}
	}
	got := f.report(t.Context()).Stream
	want := httpapi.StatusStream{Available: true, Keys: []httpapi.StatusStreamKey{{Key: 1, Sessions: 1, Registrations: 41}, {Key: 2, Registrations: 3}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stream status = %+v, want %+v", got, want)
	}
}
