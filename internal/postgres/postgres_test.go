package postgres_test

import (
	"strings"
	"testing"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/postgres"
	"github.com/kisfeed/kisfeed/internal/pricestore/pricestoretest"
)

// openTestDB opens a store in a fresh schema of KISFEED_TEST_DATABASE_URL,
// dropped when the test ends; it skips when the variable is unset.
func openTestDB(t *testing.T) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), pricestoretest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	t.Parallel()
	pricestoretest.Run(t, func(t *testing.T) kisfeed.PriceStore { return openTestDB(t) })
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
