package sqlite_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/pricestore/pricestoretest"
	"github.com/kisfeed/kisfeed/internal/sqlite"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	pricestoretest.Run(t, func(t *testing.T) kisfeed.PriceStore {
		db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "kisfeed.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "kisfeed.db")
	ctx := t.Context()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	day := kisfeed.Date(2025, 6, 2)
	if _, err := db.UpsertBars(ctx, []kisfeed.DailyBar{{Code: "005930", Date: day, Open: 1, High: 1, Low: 1, Close: 1}}); err != nil {
		t.Fatal(err)
	}
	v1, err := db.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	if v2, _ := db.SchemaVersion(ctx); v2 != v1 || v1 < 1 {
		t.Errorf("schema version %d then %d, want the same >= 1", v1, v2)
	}
	if n, _ := db.CountBars(ctx, day, day); n != 1 {
		t.Errorf("CountBars after reopen = %d, want 1", n)
	}
}

func TestPathFromURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"kisfeed.db", "kisfeed.db"},
		{"sqlite:kisfeed.db", "kisfeed.db"},
		{"sqlite://data/k.db", "data/k.db"},
		{"sqlite:///var/lib/k.db", "/var/lib/k.db"},
		{"file:k.db?mode=rwc", "k.db"},
	}
	for _, tt := range tests {
		if got := sqlite.PathFromURL(tt.in); got != tt.want {
			t.Errorf("PathFromURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestTransient: a real "database is locked" (a second writer without a
// busy timeout) is transient; a constraint failure is not.
func TestTransient(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "lock.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw := func() *sql.DB {
		d, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
		if err != nil {
			t.Fatal(err)
		}
		d.SetMaxOpenConns(1)
		t.Cleanup(func() { d.Close() })
		return d
	}
	ctx := t.Context()
	holder, other := raw(), raw()
	tx, err := holder.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO stocks (code, updated_at) VALUES ('000001', 'x')`); err != nil {
		t.Fatal(err)
	}
	_, locked := other.ExecContext(ctx, `INSERT INTO stocks (code, updated_at) VALUES ('000002', 'x')`)
	_, dup := tx.ExecContext(ctx, `INSERT INTO stocks (code, updated_at) VALUES ('000001', 'x')`)
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"database is locked", fmt.Errorf("upsert: %w", locked), true},
		{"unique constraint", dup, false},
		{"not sqlite", errors.New("boom"), false},
	}
	for _, tt := range tests {
		if tt.err == nil {
			t.Fatalf("%s: no error produced", tt.name)
		}
		if got := sqlite.Transient(tt.err); got != tt.want {
			t.Errorf("%s: Transient(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}
