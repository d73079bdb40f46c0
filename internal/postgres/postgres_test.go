package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/postgres"
	"github.com/kisfeed/kisfeed/internal/store/storetest"
)

var schemaSeq atomic.Int64

// openTestDB opens a store in a fresh schema of KISFEED_TEST_DATABASE_URL and
// drops the schema when the test ends, so parallel tests and packages never
// see each other's rows.
func openTestDB(t *testing.T) *postgres.DB {
	t.Helper()
	base := os.Getenv("KISFEED_TEST_DATABASE_URL")
	if base == "" {
		t.Skip("KISFEED_TEST_DATABASE_URL not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	ctx := t.Context()
	schema := fmt.Sprintf("kisfeed_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, schemaSeq.Add(1))
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect KISFEED_TEST_DATABASE_URL: %v", err)
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		conn.Close(ctx)
		t.Fatalf("create schema: %v", err)
	}
	conn.Close(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("cleanup connect: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := postgres.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) kisfeed.PriceStore { return openTestDB(t) })
}

func TestSchemaVersion(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	v, err := db.SchemaVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v < 1 {
		t.Errorf("SchemaVersion = %d, want >= 1", v)
	}
}

func TestOpenBadURL(t *testing.T) {
	t.Parallel()
	_, err := postgres.Open(t.Context(), "postgres://user:s3cret@[::1")
	if err == nil {
		t.Fatal("Open(bad URL): got nil error, want one")
	}
	if got := err.Error(); strings.Contains(got, "s3cret") {
		t.Errorf("error %q shows the password", got)
	}
}
