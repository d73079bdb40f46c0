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
	} {
		if !strings.Contains(metricsBody, want) {
			t.Errorf("/metrics: missing %q", want)
		}
	}
	if err := stop(); err != nil {
		t.Errorf("serve: %v", err)
	}
}
