// Package pricestore holds the Go logic the SQL price stores (internal/sqlite
// and internal/postgres) share, so the two cannot drift apart: what they do
// to their inputs before any SQL, how they retry writes and read rows, and
// the statements whose SQL is the same in both dialects ([Common], over a
// [Dialect] of small differences). The SQL that really differs (upserts,
// rejects, the run list) stays in each store.
package pricestore

import (
	"fmt"
	"time"

	"github.com/kisfeed/kisfeed"
)

// Dedupe keeps the last bar of each (code, KST calendar day), in
// first-seen order: [kisfeed.PriceStore.UpsertBars] counts a bar repeated
// in one batch once, and the last wins.
func Dedupe(bars []kisfeed.DailyBar) []kisfeed.DailyBar {
	type key struct {
		code  string
		year  int
		month time.Month
		day   int
	}
	idx := make(map[key]int, len(bars))
	out := make([]kisfeed.DailyBar, 0, len(bars))
	for _, b := range bars {
		y, m, d := b.Date.In(kisfeed.KST).Date()
		k := key{b.Code, y, m, d}
		if i, ok := idx[k]; ok {
			out[i] = b
			continue
		}
		idx[k] = len(out)
		out = append(out, b)
	}
	return out
}

// Rows is the part of *sql.Rows and pgx.Rows that [Collect] reads; the
// caller still closes them.
type Rows interface {
	Next() bool
	Err() error
}

// Collect reads rows to the end, turning each into a T with scan, whose
// error is returned as it is. An error of the rows themselves is wrapped
// as "what: err". No rows give a nil slice.
func Collect[T any](rows Rows, what string, scan func() (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := scan()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// ScanRows is [Rows] that also scan a row, as *sql.Rows and pgx.Rows do.
type ScanRows interface {
	Rows
	Scan(dest ...any) error
}

// CountByCode reads rows of (code, count) into a map, as
// [kisfeed.PriceStore.BarCounts] returns them; any error is wrapped as
// "what: err".
func CountByCode(rows ScanRows, what string) (map[string]int, error) {
	out := map[string]int{}
	for rows.Next() {
		var code string
		var n int64
		if err := rows.Scan(&code, &n); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out[code] = int(n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// StartingRun readies run for [kisfeed.PriceStore.StartRun]: its status is
// forced to running, a zero StartedAt becomes now() and a zero HeartbeatAt
// now() too (not StartedAt: that may be a pinned market clock, while the
// lease runs on the wall clock).
func StartingRun(run *kisfeed.IngestionRun, now func() time.Time) {
	run.Status = kisfeed.RunRunning
	if run.StartedAt.IsZero() {
		run.StartedAt = now()
	}
	if run.HeartbeatAt.IsZero() {
		run.HeartbeatAt = now()
	}
	// Milliseconds are what both dialects keep, so the run reads back
	// as it was written.
	run.HeartbeatAt = run.HeartbeatAt.Round(0).Truncate(time.Millisecond)
}

// FinishingRun readies run for [kisfeed.PriceStore.FinishRun]: a zero
// FinishedAt becomes now().
func FinishingRun(run *kisfeed.IngestionRun, now func() time.Time) {
	if run.FinishedAt.IsZero() {
		run.FinishedAt = now()
	}
}

// Payload is the payload stored for a reject: JSON null when it has none.
func Payload(p []byte) []byte {
	if len(p) == 0 {
		return []byte("null")
	}
	return p
}
