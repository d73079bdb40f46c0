package pricestore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kisfeed/kisfeed"
)

// QueryRows is what [Dialect.Query] returns: rows to read and close.
// pgx.Rows is one; *sql.Rows needs a Close without a result.
type QueryRows interface {
	ScanRows
	Close()
}

// Dialect is what the read statements of [Common] need of one SQL price
// store: the SQL text of these statements is the same in both dialects
// but for the placeholders, so only how to run it, how to write a day and
// how to read a bar differ.
type Dialect struct {
	// Name names the store in error texts ("sqlite", "postgres").
	Name string
	// Query runs a statement with args; the caller closes the rows.
	Query func(ctx context.Context, sql string, args ...any) (QueryRows, error)
	// Numbered says the placeholders are $1, $2, … (PostgreSQL) rather
	// than ? (SQLite).
	Numbered bool
	// Day is a KST calendar day as the driver takes it.
	Day func(t time.Time) any
	// DayName is how the error of [Common.BarsOn] names its day.
	DayName func(t time.Time) string
	// ScanBar reads the current row, selected as [BarColumns], into a bar.
	ScanBar func(rows ScanRows) (kisfeed.DailyBar, error)
	// Instant is an instant as the driver takes it.
	Instant func(t time.Time) any
	// Now stamps a finished run (time.Now when nil).
	Now func() time.Time
	// Exec runs a statement that writes, returning the rows it changed.
	Exec func(ctx context.Context, sql string, args ...any) (int64, error)
	// Heartbeat is the column of a run's heartbeat and Beat a heartbeat
	// as stored there (SQLite keeps Unix milliseconds, so the lease
	// compares as a number whatever the offset it was written with).
	Heartbeat string
	Beat      func(t time.Time) any
	// ScanRunning reads the current row (id, owner, heartbeat) into r.
	ScanRunning func(rows ScanRows, r *RunningRun) error
}

// BarColumns are the columns of daily_prices in the order
// [Dialect.ScanBar] reads them.
const BarColumns = `code, trade_date, open, high, low, close, volume, value, source, fetched_at`

// Common implements the methods of [kisfeed.PriceStore] whose SQL is the
// same in both dialects (Bars, BarsOn, BarCounts, SampleBars, CountBars,
// StartRun, FinishRun, HeartbeatRun) for a [Dialect]; a store embeds it.
type Common struct {
	d Dialect
	w *Writer
	// The statements, with the dialect's placeholders.
	bars, barsOn, barCounts, sample, count, window, heartbeat, running, finish, start string
}

// NewCommon returns the common methods of d, their statements written
// once here; writes go through w.
func NewCommon(d Dialect, w *Writer) *Common {
	if d.Now == nil {
		d.Now = time.Now
	}
	sql := func(q string) string {
		if !d.Numbered {
			return q
		}
		var b strings.Builder
		n := 0
		for _, c := range q {
			if c == '?' {
				n++
				fmt.Fprintf(&b, "$%d", n)
				continue
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	return &Common{
		d: d,
		w: w,
		finish: sql(`UPDATE ingestion_runs SET finished_at = ?, path = ?, status = ?, universe = ?,
fetched = ?, written = ?, unchanged = ?, rejected = ?, failed = ?, requests = ?, elapsed_ms = ?, error = ?,
unwritten = ? WHERE id = ?`),
		start: sql(`INSERT INTO ingestion_runs (started_at, window_from, window_to, path, status, universe, ` + d.Heartbeat + `, owner)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		heartbeat: sql(`UPDATE ingestion_runs SET ` + d.Heartbeat + ` = ? WHERE id = ? AND status = 'running'`),
		running:   sql(`SELECT id, owner, ` + d.Heartbeat + ` FROM ingestion_runs WHERE status = 'running' ORDER BY id`),
		bars: sql(`SELECT ` + BarColumns + ` FROM daily_prices
WHERE code = ? AND trade_date BETWEEN ? AND ? ORDER BY trade_date`),
		barsOn: sql(`SELECT ` + BarColumns + ` FROM daily_prices
WHERE trade_date = ? ORDER BY code`),
		barCounts: sql(`SELECT code, count(*) FROM daily_prices
WHERE trade_date BETWEEN ? AND ? GROUP BY code`),
		sample: sql(`SELECT ` + BarColumns + ` FROM daily_prices
WHERE trade_date BETWEEN ? AND ? ORDER BY random() LIMIT ?`),
		count:  sql(`SELECT count(*) FROM daily_prices WHERE trade_date BETWEEN ? AND ?`),
		window: sql(` WHERE trade_date BETWEEN ? AND ?`),
	}
}

// Select runs sql with args on r's dialect and reads each row with scan,
// whose error is returned as it is. A failed statement is wrapped as
// "what: err" (returned as it is when what is empty), an error of the
// rows as "rowsWhat: err".
func Select[T any](ctx context.Context, r *Common, what, rowsWhat string, scan func(ScanRows) (T, error),
	sql string, args ...any) ([]T, error) {
	rows, err := r.d.Query(ctx, sql, args...)
	if err != nil {
		if what == "" {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	return Collect(rows, rowsWhat, func() (T, error) { return scan(rows) })
}

// Window is the WHERE clause and arguments of a read of rejected bars:
// none when from and to are both zero (all of them), else trade_date
// between the two days.
func (r *Common) Window(from, to time.Time) (string, []any) {
	if from.IsZero() && to.IsZero() {
		return "", nil
	}
	return r.window, []any{r.d.Day(from), r.d.Day(to)}
}

// readBars runs a statement selecting [BarColumns] and reads its bars; a
// failed statement is wrapped as "what: err".
func (r *Common) readBars(ctx context.Context, what, sql string, args ...any) ([]kisfeed.DailyBar, error) {
	return Select(ctx, r, what, r.d.Name+": read bars", r.d.ScanBar, sql, args...)
}

// Bars implements [kisfeed.PriceStore.Bars].
func (r *Common) Bars(ctx context.Context, code string, from, to time.Time) ([]kisfeed.DailyBar, error) {
	return r.readBars(ctx, r.d.Name+": bars "+code, r.bars, code, r.d.Day(from), r.d.Day(to))
}

// BarsOn implements [kisfeed.PriceStore.BarsOn].
func (r *Common) BarsOn(ctx context.Context, day time.Time) ([]kisfeed.DailyBar, error) {
	return r.readBars(ctx, r.d.Name+": bars on "+r.d.DayName(day), r.barsOn, r.d.Day(day))
}

// SampleBars implements [kisfeed.PriceStore.SampleBars].
func (r *Common) SampleBars(ctx context.Context, from, to time.Time, n int) ([]kisfeed.DailyBar, error) {
	if n <= 0 {
		return nil, nil
	}
	return r.readBars(ctx, r.d.Name+": sample bars", r.sample, r.d.Day(from), r.d.Day(to), n)
}

// BarCounts implements [kisfeed.PriceStore.BarCounts].
func (r *Common) BarCounts(ctx context.Context, from, to time.Time) (map[string]int, error) {
	what := r.d.Name + ": bar counts"
	rows, err := r.d.Query(ctx, r.barCounts, r.d.Day(from), r.d.Day(to))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	return CountByCode(rows, what)
}

// CountBars implements [kisfeed.PriceStore.CountBars].
func (r *Common) CountBars(ctx context.Context, from, to time.Time) (int, error) {
	what := r.d.Name + ": count bars"
	rows, err := r.d.Query(ctx, r.count, r.d.Day(from), r.d.Day(to))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	n, err := Collect(rows, what, func() (n int64, err error) {
		if err := rows.Scan(&n); err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		return n, nil
	})
	if err != nil {
		return 0, err
	}
	if len(n) != 1 {
		return 0, fmt.Errorf("%s: %d rows, want 1", what, len(n))
	}
	return int(n[0]), nil
}

// StartRun implements [kisfeed.PriceStore.StartRun].
func (r *Common) StartRun(ctx context.Context, run *kisfeed.IngestionRun) error {
	StartingRun(run, r.d.Now)
	what := r.d.Name + ": start run"
	ids, err := Select(ctx, r, what, what, func(rows ScanRows) (id int64, err error) {
		if err := rows.Scan(&id); err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		return id, nil
	}, r.start, r.d.Instant(run.StartedAt), r.d.Day(run.From), r.d.Day(run.To), run.Path, string(run.Status),
		run.Universe, r.d.Beat(run.HeartbeatAt), run.Owner)
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		return fmt.Errorf("%s: %d ids returned, want 1", what, len(ids))
	}
	run.ID = ids[0]
	return nil
}

// FinishRun implements [kisfeed.PriceStore.FinishRun].
func (r *Common) FinishRun(ctx context.Context, run kisfeed.IngestionRun) error {
	FinishingRun(&run, r.d.Now)
	var n int64
	err := r.w.Write(ctx, fmt.Sprintf("finish run %d", run.ID), func(ctx context.Context) error {
		var err error
		n, err = r.d.Exec(ctx, r.finish, r.d.Instant(run.FinishedAt), run.Path, string(run.Status), run.Universe,
			run.Fetched, run.Written, run.Unchanged, run.Rejected, run.Failed, run.Requests, run.Elapsed.Milliseconds(),
			run.Error, run.Unwritten, run.ID)
		return err
	})
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("%s: finish run %d: no such run", r.d.Name, run.ID)
	}
	return nil
}

// HeartbeatRun implements [kisfeed.PriceStore.HeartbeatRun].
func (r *Common) HeartbeatRun(ctx context.Context, id int64, at time.Time) error {
	return r.w.Write(ctx, fmt.Sprintf("heartbeat of run %d", id), func(ctx context.Context) error {
		_, err := r.d.Exec(ctx, r.heartbeat, r.d.Beat(at), id)
		return err
	})
}

// Abandon is [kisfeed.PriceStore.AbandonRuns] with the dialect's mark
// (see [AbandonRuns]), retried as one write: a retry reads the running
// runs afresh.
func (r *Common) Abandon(ctx context.Context, staleBefore time.Time, dead func(owner string) bool,
	mark func(ctx context.Context, r RunningRun, reason string) (bool, error)) ([]int64, error) {
	running := func(ctx context.Context) ([]RunningRun, error) {
		return Select(ctx, r, "", "read running runs", func(rows ScanRows) (RunningRun, error) {
			var run RunningRun
			return run, r.d.ScanRunning(rows, &run)
		}, r.running)
	}
	var ids []int64
	err := r.w.Do(ctx, func(ctx context.Context) error {
		var err error
		ids, err = AbandonRuns(ctx, staleBefore, dead, running, mark)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: abandon dead runs: %w", r.w.Name, err)
	}
	return ids, nil
}
