package sqlite

// The ingestion_runs table: a run's record, its heartbeat, and the
// dead runs marked abandoned.

import (
	"context"
	"fmt"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/pricestore"
)

// Runs implements [kisfeed.PriceStore].
func (d *DB) Runs(ctx context.Context, limit int) ([]kisfeed.IngestionRun, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := d.db.QueryContext(ctx, `SELECT id, started_at, coalesce(finished_at, ''), window_from, window_to, path, status,
universe, fetched, written, unchanged, rejected, failed, requests, elapsed_ms, error, unwritten, heartbeat_ms, owner
FROM ingestion_runs ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: runs: %w", err)
	}
	defer rows.Close()
	return pricestore.Collect(rows, "sqlite: runs", func() (kisfeed.IngestionRun, error) {
		var r kisfeed.IngestionRun
		var started, finished, from, to, status string
		var elapsed, heartbeat int64
		if err := rows.Scan(&r.ID, &started, &finished, &from, &to, &r.Path, &status, &r.Universe, &r.Fetched,
			&r.Written, &r.Unchanged, &r.Rejected, &r.Failed, &r.Requests, &elapsed, &r.Error, &r.Unwritten, &heartbeat, &r.Owner); err != nil {
			return r, fmt.Errorf("sqlite: scan run: %w", err)
		}
		r.HeartbeatAt = time.UnixMilli(heartbeat).In(kisfeed.KST)
		r.Status = kisfeed.RunStatus(status)
		r.Elapsed = time.Duration(elapsed) * time.Millisecond
		var err error
		if r.StartedAt, err = parseTime(started); err != nil {
			return r, err
		}
		if r.FinishedAt, err = parseTime(finished); err != nil {
			return r, err
		}
		if r.From, err = parseDate(from); err != nil {
			return r, err
		}
		r.To, err = parseDate(to)
		return r, err
	})
}

// AbandonRuns implements [kisfeed.PriceStore], with the decision in
// [pricestore.AbandonRuns].
func (d *DB) AbandonRuns(ctx context.Context, staleBefore time.Time, dead func(owner string) bool) ([]int64, error) {
	return d.Abandon(ctx, staleBefore, dead, d.abandonRun)
}

// abandonRun marks r abandoned unless it finished or renewed its lease
// since it was read.
func (d *DB) abandonRun(ctx context.Context, r pricestore.RunningRun, reason string) (bool, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE ingestion_runs SET status = 'abandoned', finished_at = ?, error = ?
WHERE id = ? AND status = 'running' AND heartbeat_ms = ?`, fmtTime(r.HeartbeatAt), reason, r.ID, r.HeartbeatAt.UnixMilli())
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
