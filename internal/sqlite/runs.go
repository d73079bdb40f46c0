package sqlite

// The ingestion_runs table: a run's record, its heartbeat, and the
// dead runs marked abandoned.

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/store"
)

// StartRun implements [kisfeed.PriceStore].
func (d *DB) StartRun(ctx context.Context, run *kisfeed.IngestionRun) error {
	store.StartingRun(run, d.now)
	err := d.db.QueryRowContext(ctx, `INSERT INTO ingestion_runs (started_at, window_from, window_to, path, status, universe, heartbeat_ms, owner)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		fmtTime(run.StartedAt), fmtDate(run.From), fmtDate(run.To), run.Path, string(run.Status), run.Universe,
		run.HeartbeatAt.UnixMilli(), run.Owner).Scan(&run.ID)
	if err != nil {
		return fmt.Errorf("sqlite: start run: %w", err)
	}
	return nil
}

// FinishRun implements [kisfeed.PriceStore].
func (d *DB) FinishRun(ctx context.Context, run kisfeed.IngestionRun) error {
	store.FinishingRun(&run, d.now)
	var res sql.Result
	err := d.do(ctx, func(ctx context.Context) error {
		var err error
		res, err = d.db.ExecContext(ctx, `UPDATE ingestion_runs SET finished_at = ?, path = ?, status = ?, universe = ?,
fetched = ?, written = ?, unchanged = ?, rejected = ?, failed = ?, requests = ?, elapsed_ms = ?, error = ?, unwritten = ?
WHERE id = ?`,
			fmtTime(run.FinishedAt), run.Path, string(run.Status), run.Universe, run.Fetched, run.Written, run.Unchanged,
			run.Rejected, run.Failed, run.Requests, run.Elapsed.Milliseconds(), run.Error, run.Unwritten, run.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: finish run %d: %w", run.ID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("sqlite: finish run %d: no such run", run.ID)
	}
	return nil
}

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
	return store.Collect(rows, "sqlite: runs", func() (kisfeed.IngestionRun, error) {
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

// HeartbeatRun implements [kisfeed.PriceStore].
func (d *DB) HeartbeatRun(ctx context.Context, id int64, at time.Time) error {
	err := d.do(ctx, func(ctx context.Context) error {
		_, err := d.db.ExecContext(ctx, `UPDATE ingestion_runs SET heartbeat_ms = ? WHERE id = ? AND status = 'running'`,
			at.UnixMilli(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: heartbeat of run %d: %w", id, err)
	}
	return nil
}

// AbandonRuns implements [kisfeed.PriceStore], with the decision in
// [store.AbandonRuns].
func (d *DB) AbandonRuns(ctx context.Context, staleBefore time.Time, dead func(owner string) bool) ([]int64, error) {
	var ids []int64
	err := d.do(ctx, func(ctx context.Context) error {
		var err error
		ids, err = store.AbandonRuns(ctx, staleBefore, dead, d.runningRuns, d.abandonRun)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: abandon dead runs: %w", err)
	}
	return ids, nil
}

func (d *DB) runningRuns(ctx context.Context) ([]store.RunningRun, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, owner, heartbeat_ms FROM ingestion_runs WHERE status = 'running' ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return store.Collect(rows, "read running runs", func() (store.RunningRun, error) {
		var r store.RunningRun
		var hb int64
		err := rows.Scan(&r.ID, &r.Owner, &hb)
		r.HeartbeatAt = time.UnixMilli(hb)
		return r, err
	})
}

// abandonRun marks r abandoned unless it finished or renewed its lease
// since it was read.
func (d *DB) abandonRun(ctx context.Context, r store.RunningRun, reason string) (bool, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE ingestion_runs SET status = 'abandoned', finished_at = ?, error = ?
WHERE id = ? AND status = 'running' AND heartbeat_ms = ?`, fmtTime(r.HeartbeatAt), reason, r.ID, r.HeartbeatAt.UnixMilli())
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
