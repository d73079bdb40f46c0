package postgres

import (
	"io/fs"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/pricestore/pricestoretest"
)

// TestLeaseMigrationKeepsRuns: a database at version 1 holding a run
// killed before the upgrade is migrated with its rows; that run gets its
// start as heartbeat and is abandoned once the lease has run out.
func TestLeaseMigrationKeepsRuns(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pricestoretest.PostgresURL(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	sdb := stdlib.OpenDBFromPool(pool)
	fsys, _ := fs.Sub(migrations, "migrations")
	p, err := goose.NewProvider(goose.DialectPostgres, sdb, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 11, 27, 16, 10, 0, 0, kisfeed.KST)
	if _, err := pool.Exec(ctx, `INSERT INTO ingestion_runs (started_at, window_from, window_to, status)
VALUES ($1, '2026-11-27', '2026-11-27', 'running'), ($1, '2026-11-27', '2026-11-27', 'succeeded')`, started); err != nil {
		t.Fatal(err)
	}
	sdb.Close()
	pool.Close()

	db, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runs, err := db.Runs(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || !runs[1].HeartbeatAt.Equal(started) || runs[1].Status != kisfeed.RunRunning {
		t.Fatalf("runs after migration = %+v, want 2 with the running one's heartbeat at its start %v", runs, started)
	}
	ids, err := db.AbandonRuns(ctx, started.Add(time.Minute), nil)
	if err != nil || len(ids) != 1 || ids[0] != runs[1].ID {
		t.Errorf("AbandonRuns = %v, %v; want [%d]", ids, err, runs[1].ID)
	}
}
