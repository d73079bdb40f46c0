package pricestore

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kisfeed/kisfeed"
)

// Writer is the write path both SQL price stores share: each write runs
// through [Retry] with the store's policy and its dialect's test of a
// transient error, so the two stores retry, log and word their retries
// alike. The zero value is not usable; the stores build one in Open.
type Writer struct {
	// Name names the store in logs and error texts ("sqlite", "postgres").
	Name string
	// Policy bounds the retries; tests shorten it.
	Policy RetryPolicy
	// Transient reports whether a later try may get past err (the
	// dialect's reading of its driver's errors).
	Transient func(err error) bool
}

// Do runs op, retrying it while it fails with a transient error.
func (w *Writer) Do(ctx context.Context, op func(ctx context.Context) error) error {
	return Retry(ctx, w.Policy, w.Transient, op)
}

// Write is Do with a failure wrapped as "name: what: err".
func (w *Writer) Write(ctx context.Context, what string, op func(ctx context.Context) error) error {
	if err := w.Do(ctx, op); err != nil {
		return fmt.Errorf("%s: %s: %w", w.Name, what, err)
	}
	return nil
}

// UpsertBars is the frame of [kisfeed.PriceStore.UpsertBars]: no bars
// write nothing; a bar repeated in the batch counts once, the last
// winning ([Dedupe]); and upsert is retried as one write, its count taken
// from the try that succeeded. Its error is returned as it is.
func (w *Writer) UpsertBars(ctx context.Context, bars []kisfeed.DailyBar,
	upsert func(ctx context.Context, bars []kisfeed.DailyBar) (kisfeed.WriteResult, error)) (kisfeed.WriteResult, error) {
	var res kisfeed.WriteResult
	if len(bars) == 0 {
		return res, nil
	}
	bars = Dedupe(bars)
	err := w.Do(ctx, func(ctx context.Context) error {
		var err error
		res, err = upsert(ctx, bars)
		return err
	})
	if err != nil {
		return kisfeed.WriteResult{}, err
	}
	return res, nil
}

// SetLogger makes Do log each retried write on l (see [LogRetries]); nil
// logs nothing.
func (w *Writer) SetLogger(l *slog.Logger) {
	w.Policy.Notify = LogRetries(l, w.Name)
}
