package main

import (
	"context"
	"fmt"
	"github.com/kisfeed/kisfeed/internal/ingest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/postgres"
	"github.com/kisfeed/kisfeed/internal/pricestore/pricestoretest"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
	"github.com/kisfeed/kisfeed/internal/sqlite"
	"github.com/kisfeed/kisfeed/internal/synthetic"
)

// TestLatestRunOfADeadProcess: /metrics' last-run figures never show a
// run whose process died as running, marked abandoned or not yet.
func TestLatestRunOfADeadProcess(t *testing.T) {
	t.Parallel()
	day := kisfeed.Date(2025, 6, 4)
	tests := []struct {
		name         string
		heartbeatAge time.Duration
		abandon      bool
		wantRunning  bool
		deadOwner    bool
	}{
		{"beating", 0, false, true, false},
		{"silent past the lease, not yet marked", time.Hour, false, false, false},
		{"marked abandoned", time.Hour, true, false, false},
		{"beating, but its process is gone from this host", 0, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			hb := time.Now().Add(-tt.heartbeatAge)
			run := &kisfeed.IngestionRun{StartedAt: ingestNow, From: day, To: day, HeartbeatAt: hb}
			if tt.deadOwner {
				// A process of this host that has exited (and been reaped).
				cmd := exec.Command("true")
				if err := cmd.Run(); err != nil {
					t.Skipf("cannot run a child process: %v", err)
				}
				host, _, _ := strings.Cut(ingest.ProcessOwner(), "/")
				run.Owner = fmt.Sprintf("%s/%d", host, cmd.Process.Pid)
			}
			if err := db.StartRun(ctx, run); err != nil {
				t.Fatal(err)
			}
			if tt.abandon {
				if _, err := db.AbandonRuns(ctx, time.Now().Add(-time.Minute), nil); err != nil {
					t.Fatal(err)
				}
			}
			f, ok := latestRun(db)()
			if !ok {
				t.Fatal("latestRun: no figures")
			}
			if running := f.Finished.IsZero(); running != tt.wantRunning {
				t.Errorf("reported running = %v (finished %v), want %v", running, f.Finished, tt.wantRunning)
			}
			// The status gauge agrees: a dead run is never "running".
			wantStatus := string(kisfeed.RunAbandoned)
			if tt.wantRunning {
				wantStatus = string(kisfeed.RunRunning)
			}
			if f.Status != wantStatus {
				t.Errorf("reported status %q, want %q", f.Status, wantStatus)
			}
			if !f.LastSuccess.IsZero() {
				t.Errorf("last success %v, want none (no run succeeded)", f.LastSuccess)
			}
		})
	}
}

// TestIngestInterruptedWithPostgres: SIGINT/SIGTERM (ctx cancelled, as
// signal.NotifyContext does) mid-run on PostgreSQL exits 130 and records
// the run interrupted; the rerun completes, and the rows equal a clean
// reference run's, none missing, none duplicated.
func TestIngestInterruptedWithPostgres(t *testing.T) {
	t.Parallel()
	refURL, url := pricestoretest.PostgresURL(t), pricestoretest.PostgresURL(t)
	base := synthetic.NewSource(ingestMarket(), kisfeed.Clock{Market: func() time.Time { return ingestNow }})
	args := func(db string) []string {
		return []string{"ingest", "--db", db, "--json", "--workers", "2", "--market", "kosdaq", "--path", "candles", "--date", "2025-06-02"}
	}
	if code, _, errOut := ingestExec(t.Context(), ingestApp(base, ingestNow), args(refURL)...); code != 0 {
		t.Fatalf("reference run exit %d; stderr:\n%s", code, errOut)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var calls atomic.Int64
	src := &sourcetest.Func{
		UniverseFn: base.Universe,
		CandlesFn: func(cctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
			if calls.Add(1) == 300 {
				cancel()
			}
			return base.Candles(cctx, q)
		},
	}
	code, out, errOut := ingestExec(ctx, ingestApp(src, ingestNow), args(url)...)
	if code != exitInterrupted {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitInterrupted, errOut)
	}
	if s := decodeSummary(t, out); s.Status != "interrupted" || s.Written == 0 || s.Pending == 0 {
		t.Fatalf("summary = %+v, want interrupted with some written and some pending", s)
	}
	if code, _, errOut := ingestExec(t.Context(), ingestApp(base, ingestNow), args(url)...); code != 0 {
		t.Fatalf("rerun exit %d; stderr:\n%s", code, errOut)
	}
	db, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runs, err := db.Runs(t.Context(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[1].Status != kisfeed.RunInterrupted || runs[0].Status != kisfeed.RunSucceeded ||
		runs[1].Unwritten == 0 {
		t.Errorf("runs = %+v, want the interrupted run (with its unwritten count) then a succeeded one", runs)
	}
	got, want := tableDigest(t, url), tableDigest(t, refURL)
	t.Logf("after interrupt + rerun: %s", got)
	if strings.HasPrefix(want, "0 ") || got != want {
		t.Errorf("rows after interrupt + rerun: %s; reference: %s", got, want)
	}
}

// tableDigest is the count and an md5 of daily_prices' values, ordered.
func tableDigest(t *testing.T, url string) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	var n int64
	var sum string
	err = conn.QueryRow(t.Context(), `SELECT count(*), coalesce(md5(string_agg(concat_ws(',', code, trade_date, open, high, low,
close, volume, value), ';' ORDER BY code, trade_date)), '') FROM daily_prices`).Scan(&n, &sum)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows, md5 %s", n, sum)
}
