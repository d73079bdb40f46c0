package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/postgres"
	"github.com/kisfeed/kisfeed/internal/pricestore/pricestoretest"
)

func TestTransient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"admin shutdown 57P01", &pgconn.PgError{Code: "57P01"}, true},
		{"crash shutdown 57P02", &pgconn.PgError{Code: "57P02"}, true},
		{"cannot connect now 57P03", &pgconn.PgError{Code: "57P03"}, true},
		{"connection failure 08006", &pgconn.PgError{Code: "08006"}, true},
		{"serialization failure 40001", &pgconn.PgError{Code: "40001"}, true},
		{"wrapped 57P01", fmt.Errorf("upsert: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"syntax error 42601", &pgconn.PgError{Code: "42601"}, false},
		{"unique violation 23505", &pgconn.PgError{Code: "23505"}, false},
		{"context canceled", fmt.Errorf("query: %w", context.Canceled), false},
		{"deadline", context.DeadlineExceeded, false},
		{"plain", errors.New("boom"), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := postgres.Transient(tt.err); got != tt.want {
				t.Errorf("Transient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

var appSeq atomic.Int64

// killBackends terminates every backend of application name app, waiting
// up to 5 s for each to exit: what an operator's pg_terminate_backend (or a
// failover) does to the ingest's pool. It returns how many it killed.
func killBackends(t *testing.T, app string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, os.Getenv(pricestoretest.EnvDatabaseURL))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000))
FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWritesSurviveKilledConnections: every connection of the pool is
// terminated (SQLSTATE 57P01) between writes, twice; each write still
// succeeds on a fresh connection and the rows are exactly the bars.
func TestWritesSurviveKilledConnections(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(pricestoretest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	app := fmt.Sprintf("kisfeed_kill_%d_%d", os.Getpid(), appSeq.Add(1))
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	db, err := postgres.Open(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := t.Context()
	day := kisfeed.Date(2026, 11, 27)
	at := time.Date(2026, 11, 27, 16, 5, 0, 0, kisfeed.KST)
	batch := func(first, n int) []kisfeed.DailyBar {
		var out []kisfeed.DailyBar
		for i := first; i < first+n; i++ {
			c := int64(10000 + i*10)
			out = append(out, kisfeed.DailyBar{Code: fmt.Sprintf("%06d", i), Date: day, Open: c, High: c + 50, Low: c - 50,
				Close: c, Volume: 100, Value: 100 * c, Source: "test", FetchedAt: at})
		}
		return out
	}
	run := &kisfeed.IngestionRun{StartedAt: at, From: day, To: day, Universe: 300}
	if err := db.StartRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if i > 0 {
			if n := killBackends(t, app); n == 0 {
				t.Fatalf("kill %d: no backend of %s to terminate", i, app)
			}
		}
		res, err := db.UpsertBars(ctx, batch(i*100, 100))
		if err != nil {
			t.Fatalf("UpsertBars after kill %d: %v", i, err)
		}
		if res.Inserted != 100 {
			t.Errorf("UpsertBars after kill %d: inserted %d, want 100", i, res.Inserted)
		}
		if i > 0 {
			killBackends(t, app)
		}
		if err := db.HeartbeatRun(ctx, run.ID, at.Add(time.Duration(i+1)*time.Minute)); err != nil {
			t.Fatalf("HeartbeatRun after kill %d: %v", i, err)
		}
	}
	if n, err := db.CountBars(ctx, day, day); err != nil || n != 300 {
		t.Errorf("CountBars = %d, %v; want 300", n, err)
	}
}
