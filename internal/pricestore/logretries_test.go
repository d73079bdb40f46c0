package pricestore_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/kisfeed/kisfeed/internal/pricestore"
)

// TestLogRetries: a retried write is logged with the store's name, the
// attempt and the error; no logger, no Notify.
func TestLogRetries(t *testing.T) {
	if n := pricestore.LogRetries(nil, "sqlite"); n != nil {
		t.Errorf("LogRetries(nil) is not nil")
	}
	var buf bytes.Buffer
	n := pricestore.LogRetries(slog.New(slog.NewTextHandler(&buf, nil)), "postgres")
	n(2, errors.New("connection reset"))
	for _, want := range []string{"level=WARN", "store=postgres", "attempt=2", `err="connection reset"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log %q lacks %q", buf.String(), want)
		}
	}
}
