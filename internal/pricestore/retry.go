package pricestore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
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
// more than one. The retrying itself is failsafe-go's retry policy, as in
// the kis client; this adds the store's error wording.
func Retry(ctx context.Context, p RetryPolicy, transient func(error) bool, op func(ctx context.Context) error) error {
	b := retrypolicy.NewBuilder[any]().
		HandleIf(func(_ any, err error) bool { return err != nil && transient(err) }).
		WithMaxAttempts(max(p.Attempts, 1)).
		ReturnLastFailure()
	if p.Base > 0 {
		b = b.WithBackoff(p.Base, max(p.Max, p.Base))
	}
	if p.Notify != nil {
		b = b.OnRetryScheduled(func(e failsafe.ExecutionScheduledEvent[any]) { p.Notify(e.Attempts(), e.LastError()) })
	}
	attempts := 0
	var last error
	err := failsafe.With[any](b.Build()).WithContext(ctx).RunWithExecution(func(e failsafe.Execution[any]) error {
		attempts++
		last = op(e.Context())
		return last
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && last != nil && transient(last) && attempts < max(p.Attempts, 1):
		// Cancelled while waiting to retry: the store's failure is what
		// the caller needs, with why the retries stopped.
		return fmt.Errorf("after %d attempts (%w): %w", attempts, context.Cause(ctx), last)
	case attempts > 1:
		return fmt.Errorf("after %d attempts: %w", attempts, err)
	}
	return err
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
