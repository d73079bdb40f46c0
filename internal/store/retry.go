package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// RetryPolicy bounds how a store retries a write that failed on a
// connection-level error (a backend killed by pg_terminate_backend, a reset
// connection, a locked SQLite file). The writes retried are idempotent
// upserts, so a retry after a commit whose answer was lost cannot
// duplicate rows.
type RetryPolicy struct {
	// Attempts is the total number of tries, the first included (< 1: 1).
	Attempts int
	// Base is the wait before the second try; each further wait doubles,
	// up to Max.
	Base, Max time.Duration
	// Notify, when set, is told of each failed try that will be retried
	// (attempt counts from 1), so the operator sees a database that
	// needed retries.
	Notify func(attempt int, err error)
}

// DefaultRetry is the policy the stores use: 6 tries over about 3 s
// (0.1 + 0.2 + 0.4 + 0.8 + 1.6 s of waits), long enough for a pool to
// replace a killed connection or a competing writer to commit, short
// enough that a database really down fails the run within seconds.
var DefaultRetry = RetryPolicy{Attempts: 6, Base: 100 * time.Millisecond, Max: 2 * time.Second}

// Retry calls op until it succeeds, returns an error transient rejects,
// the attempts run out or ctx ends (the wait selects on it). The last
// error is returned, wrapped with the number of attempts when there was
// more than one.
func Retry(ctx context.Context, p RetryPolicy, transient func(error) bool, op func(ctx context.Context) error) error {
	attempts := max(p.Attempts, 1)
	wait := p.Base
	var err error
	for i := 1; ; i++ {
		if err = op(ctx); err == nil {
			return nil
		}
		if i >= attempts || !transient(err) {
			if i > 1 {
				return fmt.Errorf("after %d attempts: %w", i, err)
			}
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("after %d attempts (%w): %w", i, context.Cause(ctx), err)
		}
		if p.Notify != nil {
			p.Notify(i, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("after %d attempts (%w): %w", i, context.Cause(ctx), err)
		case <-t.C:
		}
		wait = min(2*wait, p.Max)
	}
}

// LogRetries is a [RetryPolicy.Notify] that logs each retried write on l
// as a warning naming the store, the attempt and the error; nil when l is
// nil (nothing logged).
func LogRetries(l *slog.Logger, store string) func(attempt int, err error) {
	if l == nil {
		return nil
	}
	return func(attempt int, err error) {
		l.Warn("database write failed, retrying", "store", store, "attempt", attempt, "err", err)
	}
}
