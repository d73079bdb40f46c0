package sqlite

import (
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/pricestore"
)

// TestUpsertRetriesWhileLocked: another process holds the write lock
// past the busy timeout; the batch fails with "database is locked", is
// retried once the lock is gone, and is stored exactly once.
func TestUpsertRetriesWhileLocked(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "locked.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// No waiting inside SQLite: the lock is met at once, as after a
	// busy_timeout ran out.
	if _, err := db.db.ExecContext(ctx, `PRAGMA busy_timeout = 0`); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)
	holder, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, `INSERT INTO stocks (code, updated_at) VALUES ('000001', 'x')`); err != nil {
		t.Fatal(err)
	}
	var notes []error
	release := sync.OnceFunc(func() {
		if err := holder.Commit(); err != nil {
			t.Errorf("release the lock: %v", err)
		}
	})
	defer release()
	db.w.Policy = pricestore.RetryPolicy{Attempts: 3, Base: time.Millisecond, Max: time.Millisecond,
		Notify: func(_ int, err error) { notes = append(notes, err); release() }}
	day := kisfeed.Date(2026, 11, 27)
	bars := []kisfeed.DailyBar{{Code: "005930", Date: day, Open: 100, High: 110, Low: 90, Close: 105, Volume: 1, Value: 105,
		FetchedAt: time.Date(2026, 11, 27, 16, 0, 0, 0, kisfeed.KST)}}
	res, err := db.UpsertBars(ctx, bars)
	if err != nil {
		t.Fatalf("UpsertBars while locked: %v", err)
	}
	if len(notes) != 1 || !Transient(notes[0]) {
		t.Errorf("retried after %v, want one retry after database is locked", notes)
	}
	if res.Inserted != 1 {
		t.Errorf("inserted %d, want 1", res.Inserted)
	}
	if n, _ := db.CountBars(ctx, day, day); n != 1 {
		t.Errorf("stored %d bars, want 1", n)
	}
}
