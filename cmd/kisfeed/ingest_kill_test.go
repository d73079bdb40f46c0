package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/postgres"
	"github.com/kisfeed/kisfeed/internal/pricestore/pricestoretest"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
	"github.com/kisfeed/kisfeed/internal/sqlite"
	"github.com/kisfeed/kisfeed/internal/synthetic"
)

// killChildEnv, set, makes TestIngestKilledThenRerun the ingest child:
// its value is the --db to ingest into.
const killChildEnv = "KISFEED_TEST_KILL_CHILD_DB"

// killReady is the line the child prints once its run is recorded and
// fetching: the moment the parent SIGKILLs it.
const killReady = "ingest child: mid-run"

// TestIngestKilledThenRerun: an ingest process SIGKILLed mid-run, then
// an immediate rerun (well inside the 30 s lease), as scripts/faults.sh
// row d does: the rerun exits 0, no run is left running (the killed one
// is abandoned, its owner process being gone), and the rows equal a clean
// reference run's.
func TestIngestKilledThenRerun(t *testing.T) {
	if db := os.Getenv(killChildEnv); db != "" {
		killChild(t, db)
		return
	}
	t.Parallel()
	tests := []struct {
		name string
		db   func(t *testing.T) (db, ref string)
		open func(ctx context.Context, db string) (kisfeed.PriceStore, error)
	}{
		{"sqlite", func(t *testing.T) (string, string) {
			dir := t.TempDir()
			return filepath.Join(dir, "k.db"), filepath.Join(dir, "ref.db")
		}, func(ctx context.Context, db string) (kisfeed.PriceStore, error) { return sqlite.Open(ctx, db) }},
		{"postgres", func(t *testing.T) (string, string) {
			return pricestoretest.PostgresURL(t), pricestoretest.PostgresURL(t)
		}, func(ctx context.Context, db string) (kisfeed.PriceStore, error) { return postgres.Open(ctx, db) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, ref := tt.db(t)
			if code, _, errOut := ingestExec(t.Context(), ingestApp(nil, ingestNow), killArgs(ref)...); code != 0 {
				t.Fatalf("reference run exit %d; stderr:\n%s", code, errOut)
			}

			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestIngestKilledThenRerun$", "-test.count=1")
			cmd.Env = append(os.Environ(), killChildEnv+"="+db)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(out)
			ready := false
			for !ready && sc.Scan() {
				ready = strings.Contains(sc.Text(), killReady)
			}
			if !ready {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("child ended without reaching mid-run; stderr:\n%s", stderr.String())
			}
			if err := cmd.Process.Signal(os.Kill); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
				t.Fatalf("child: %v, want killed", err)
			}

			// The rerun, at once: the killed run's heartbeat is seconds
			// old, far inside the lease.
			code, outJSON, errOut := ingestExec(t.Context(), ingestApp(nil, ingestNow), killArgs(db)...)
			if code != 0 {
				t.Fatalf("rerun exit %d; stderr:\n%s", code, errOut)
			}
			if s := decodeSummary(t, outJSON); s.Skipped == 0 && s.Written == 0 {
				t.Errorf("rerun summary %+v: want it to write the rest", s)
			}

			st, err := tt.open(t.Context(), db)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			runs, err := st.Runs(t.Context(), 10)
			if err != nil {
				t.Fatal(err)
			}
			var statuses []kisfeed.RunStatus
			for _, r := range runs {
				statuses = append(statuses, r.Status)
			}
			if len(runs) != 2 || runs[0].Status != kisfeed.RunSucceeded || runs[1].Status != kisfeed.RunAbandoned ||
				runs[1].FinishedAt.IsZero() {
				t.Errorf("runs newest first: %v, want [succeeded abandoned] (no run left running)", statuses)
			}

			refStore, err := tt.open(t.Context(), ref)
			if err != nil {
				t.Fatal(err)
			}
			defer refStore.Close()
			got, want := barsDigest(t, st), barsDigest(t, refStore)
			if strings.HasPrefix(want, "0 ") || got != want {
				t.Errorf("rows after kill + rerun: %s; reference: %s", got, want)
			}
		})
	}
}

func killArgs(db string) []string {
	return []string{"ingest", "--db", db, "--json", "--workers", "2", "--market", "kosdaq", "--path", "candles",
		"--date", "2025-06-02"}
}

// killChild ingests into db and, once some bars are fetched, says so on
// stdout and waits to be killed (bounded: it fails after a minute).
func killChild(t *testing.T, db string) {
	base := synthetic.NewSource(ingestMarket(), kisfeed.Clock{Market: func() time.Time { return ingestNow }})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var calls atomic.Int64
	src := &sourcetest.Func{
		UniverseFn: base.Universe,
		CandlesFn: func(cctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
			if calls.Add(1) == 300 {
				fmt.Println(killReady)
				<-cctx.Done() // the parent's SIGKILL comes first
			}
			return base.Candles(cctx, q)
		},
	}
	code, _, errOut := ingestExec(ctx, ingestApp(src, ingestNow), killArgs(db)...)
	t.Fatalf("child ingest returned (exit %d) instead of being killed; stderr:\n%s", code, errOut)
}

// barsDigest is the count and the values of every stored bar of the
// killed run's day, in code order.
func barsDigest(t *testing.T, st kisfeed.PriceStore) string {
	t.Helper()
	bars, err := st.BarsOn(t.Context(), kisfeed.Date(2025, 6, 2))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, x := range bars {
		fmt.Fprintf(&b, "%s,%d,%d,%d,%d,%d,%d;", x.Code, x.Open, x.High, x.Low, x.Close, x.Volume, x.Value)
	}
	return fmt.Sprintf("%d rows %s", len(bars), b.String())
}
