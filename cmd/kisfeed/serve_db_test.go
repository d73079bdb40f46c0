package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/internal/sqlite"
	"github.com/kisfeed/kisfeed/internal/synthetic"
	"github.com/kisfeed/kisfeed/kis"
)

// TestServeReportsDatabase: with DATABASE_URL set, /readyz checks the
// database and /metrics carries the latest ingestion run's figures.
func TestServeReportsDatabase(t *testing.T) {
	t.Parallel()
	now := func() time.Time { return time.Date(2025, time.March, 11, 16, 0, 0, 0, kisfeed.KST) }
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	run := &kisfeed.IngestionRun{StartedAt: now().Add(-time.Minute), From: kisfeed.Date(2025, 3, 11), To: kisfeed.Date(2025, 3, 11), Path: "quotes"}
	if err := db.StartRun(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	run.Status, run.FinishedAt, run.Universe, run.Written, run.Fetched, run.Failed = kisfeed.RunSucceeded, now(), 2600, 2598, 2598, 2
	if err := db.FinishRun(t.Context(), *run); err != nil {
		t.Fatal(err)
	}
	db.Close()

	a := &app{
		environ: []string{"LOG_LEVEL=warn", "DATABASE_URL=sqlite:" + path}, stdin: strings.NewReader(""), stderr: io.Discard, clock: kisfeed.Clock{Wall: now},
		newUpstream: func(context.Context, config.Config, *slog.Logger) (*upstream, error) {
			return &upstream{Source: synthetic.NewSource(sim.New(1), kisfeed.Clock{Market: now}), Close: func() error { return nil }}, nil
		},
	}
	base, stop := startServe(t, a)
	get := func(p string) (int, string) { return httpGet(t, base+p) }
	code, body := get("/readyz")
	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal([]byte(body), &ready); err != nil || code != 200 || ready.Checks["database"] != "ok" {
		t.Errorf("/readyz: got %d %s, want 200 with checks.database ok", code, body)
	}
	_, metricsBody := get("/metrics")
	for _, want := range []string{
		`kisfeed_ingest_last_run_rows 2598`,
		`kisfeed_ingest_last_run_stocks{result="failed"} 2`,
		`kisfeed_ingest_last_run_stocks{result="total"} 2600`,
		`kisfeed_ingest_last_run_status{status="succeeded"} 1`,
		`kisfeed_ingest_last_run_status{status="failed"} 0`,
		// 2025-03-11 16:00 KST is 07:00 UTC.
		`kisfeed_ingest_last_success_timestamp_seconds 1.7416764e+09`,
		// The calendar gauges on the app's clock: a Tuesday, after the close.
		`kisfeed_krx_trading_day 1`,
		`kisfeed_krx_market_open 0`,
	} {
		if !strings.Contains(metricsBody, want) {
			t.Errorf("/metrics: missing %q", want)
		}
	}
	if err := stop(); err != nil {
		t.Errorf("serve: %v", err)
	}
}

// TestKeyRates: the rate gauges name clients key1, key2, ... (never by
// app key), with the configured limit and the rate each paces at.
func TestKeyRates(t *testing.T) {
	t.Parallel()
	var clients []*kis.Client
	for _, k := range []string{"first-app-key", "second-app-key"} {
		c, err := kis.NewClient(kis.WithAppKey(k, "secret"), kis.WithRateLimit(10))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		clients = append(clients, c)
	}
	got := keyRates(&upstream{Clients: clients, RateLimit: 10})()
	if len(got) != 2 || got[0].Key != "key1" || got[1].Key != "key2" {
		t.Fatalf("keys: got %+v, want key1 and key2", got)
	}
	for _, r := range got {
		if r.Limit != 10 || r.Pacing <= 0 || r.Pacing > r.Limit {
			t.Errorf("%s: limit %v, pacing %v; want 10 and a pacing rate in (0, 10]", r.Key, r.Limit, r.Pacing)
		}
	}
}

// TestMarketState: the calendar gauges follow the KRX calendar on the
// clock handed in.
func TestMarketState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		at               time.Time
		tradingDay, open bool
	}{
		{time.Date(2025, 3, 11, 10, 0, 0, 0, kisfeed.KST), true, true},   // a Tuesday in session
		{time.Date(2025, 3, 11, 15, 30, 0, 0, kisfeed.KST), true, false}, // at the close
		{time.Date(2025, 3, 15, 10, 0, 0, 0, kisfeed.KST), false, false}, // a Saturday
		{time.Date(2025, 3, 3, 10, 0, 0, 0, kisfeed.KST), false, false},  // a substitute holiday (Monday)
	}
	for _, tt := range tests {
		day, open := marketState(func() time.Time { return tt.at })()
		if day != tt.tradingDay || open != tt.open {
			t.Errorf("%s: got trading day %v, open %v; want %v, %v", tt.at, day, open, tt.tradingDay, tt.open)
		}
	}
}
