// Package postgres is the PostgreSQL [kisfeed.PriceStore], on a pgx v5
// connection pool. Bars are written by COPY into a temporary staging table
// and one INSERT ... ON CONFLICT that touches only rows whose values
// differ, so a day's 2,500 bars take one round trip and re-writing them
// rewrites nothing.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/pricestore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a PostgreSQL database holding daily prices, rejected bars and the
// runs of the ingestion job.
type DB struct {
	// Common are Bars, BarsOn, BarCounts, SampleBars, CountBars,
	// StartRun, FinishRun and HeartbeatRun.
	*pricestore.Common
	pool *pgxpool.Pool
	now  func() time.Time
	// w retries a statement that failed on a connection-level error;
	// tests shorten its policy.
	w pricestore.Writer
}

var _ kisfeed.PriceStore = (*DB)(nil)

// Open connects to the database at url (postgres://user:pass@host/db;
// a search_path parameter selects the schema) and applies the embedded
// migrations. Errors never show the password.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's redaction of parse errors is best effort (its docs say
		// not to expose them), so name the problem without quoting it.
		return nil, errors.New("postgres: cannot parse the database URL: want postgres://user:password@host:5432/db?sslmode=disable")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	d := &DB{pool: pool, now: time.Now, w: pricestore.Writer{Name: "postgres", Policy: pricestore.DefaultRetry, Transient: Transient}}
	d.Common = pricestore.NewCommon(pricestore.Dialect{
		Name: "postgres",
		Query: func(ctx context.Context, sql string, args ...any) (pricestore.QueryRows, error) {
			return pool.Query(ctx, sql, args...)
		},
		Numbered: true,
		Day:      func(t time.Time) any { return date(t) },
		DayName:  func(time.Time) string { return "day" },
		Instant:  func(t time.Time) any { return t },
		Now:      d.now,
		ScanBar:  scanBar,
		Exec: func(ctx context.Context, sql string, args ...any) (int64, error) {
			tag, err := pool.Exec(ctx, sql, args...)
			return tag.RowsAffected(), err
		},
		Heartbeat: "heartbeat_at",
		Beat:      func(t time.Time) any { return t },
		ScanRunning: func(rows pricestore.ScanRows, r *pricestore.RunningRun) error {
			return rows.Scan(&r.ID, &r.Owner, &r.HeartbeatAt)
		},
	}, &d.w)
	if err := d.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return d, nil
}

func (d *DB) provider() (*goose.Provider, func() error, error) {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: migrations: %w", err)
	}
	sdb := stdlib.OpenDBFromPool(d.pool)
	p, err := goose.NewProvider(goose.DialectPostgres, sdb, fsys)
	if err != nil {
		sdb.Close()
		return nil, nil, fmt.Errorf("postgres: migrations: %w", err)
	}
	return p, sdb.Close, nil
}

func (d *DB) migrate(ctx context.Context) error {
	p, closeDB, err := d.provider()
	if err != nil {
		return err
	}
	defer closeDB()
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// SchemaVersion returns the applied migration version.
func (d *DB) SchemaVersion(ctx context.Context) (int64, error) {
	p, closeDB, err := d.provider()
	if err != nil {
		return 0, err
	}
	defer closeDB()
	return p.GetDBVersion(ctx)
}

// Close closes the pool.
func (d *DB) Close() error {
	d.pool.Close()
	return nil
}

func date(t time.Time) pgtype.Date {
	t = kisfeed.Day(t)
	// pgx encodes a date from the time's own Y-M-D; make it UTC midnight
	// of the KST calendar day so no zone conversion can shift it.
	return pgtype.Date{Time: time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC), Valid: true}
}

func fromDate(d pgtype.Date) time.Time {
	if !d.Valid {
		return time.Time{}
	}
	return kisfeed.Date(d.Time.Year(), d.Time.Month(), d.Time.Day())
}

func nullDate(t time.Time) pgtype.Date {
	if t.IsZero() {
		return pgtype.Date{}
	}
	return date(t)
}

// UpsertBars implements [kisfeed.PriceStore]. The WHERE of DO UPDATE skips
// rows whose values are the same, so they are neither rewritten (no dead
// tuple, no WAL) nor returned; RETURNING (xmax = 0) tells a fresh insert
// from an update.
func (d *DB) UpsertBars(ctx context.Context, bars []kisfeed.DailyBar) (kisfeed.WriteResult, error) {
	res, err := d.w.UpsertBars(ctx, bars, d.upsertBars)
	if err != nil {
		return kisfeed.WriteResult{}, fmt.Errorf("postgres: upsert bars: %w", err)
	}
	return res, nil
}

func (d *DB) upsertBars(ctx context.Context, bars []kisfeed.DailyBar) (kisfeed.WriteResult, error) {
	var res kisfeed.WriteResult
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE daily_prices_staging
(LIKE daily_prices INCLUDING DEFAULTS) ON COMMIT DROP`); err != nil {
			return fmt.Errorf("create staging table: %w", err)
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"daily_prices_staging"},
			[]string{"code", "trade_date", "open", "high", "low", "close", "volume", "value", "source", "fetched_at"},
			pgx.CopyFromSlice(len(bars), func(i int) ([]any, error) {
				b := bars[i]
				return []any{b.Code, date(b.Date), b.Open, b.High, b.Low, b.Close, b.Volume, b.Value, b.Source, b.FetchedAt}, nil
			}))
		if err != nil {
			return fmt.Errorf("copy into staging table: %w", err)
		}
		rows, err := tx.Query(ctx, `INSERT INTO daily_prices AS p
SELECT code, trade_date, open, high, low, close, volume, value, source, fetched_at FROM daily_prices_staging
ON CONFLICT (code, trade_date) DO UPDATE SET
  open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
  volume = excluded.volume, value = excluded.value, source = excluded.source, fetched_at = excluded.fetched_at
WHERE (p.open, p.high, p.low, p.close, p.volume, p.value)
  IS DISTINCT FROM (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume, excluded.value)
RETURNING (xmax = 0)`)
		if err != nil {
			return fmt.Errorf("upsert: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var inserted bool
			if err := rows.Scan(&inserted); err != nil {
				return fmt.Errorf("upsert: %w", err)
			}
			if inserted {
				res.Inserted++
			} else {
				res.Updated++
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("upsert: %w", err)
		}
		res.Unchanged = len(bars) - res.Inserted - res.Updated
		return nil
	})
	return res, err
}

// scanBar reads a row selected as [pricestore.BarColumns].
func scanBar(rows pricestore.ScanRows) (kisfeed.DailyBar, error) {
	var b kisfeed.DailyBar
	var dt pgtype.Date
	if err := rows.Scan(&b.Code, &dt, &b.Open, &b.High, &b.Low, &b.Close, &b.Volume, &b.Value, &b.Source, &b.FetchedAt); err != nil {
		return b, fmt.Errorf("postgres: scan bar: %w", err)
	}
	b.Date = fromDate(dt)
	b.FetchedAt = b.FetchedAt.In(kisfeed.KST)
	return b, nil
}

// AddRejected implements [kisfeed.PriceStore]. A payload that is not JSON
// is stored as a JSON string so nothing fetched is lost.
func (d *DB) AddRejected(ctx context.Context, rejects []kisfeed.RejectedBar) error {
	if len(rejects) == 0 {
		return nil
	}
	now := d.now()
	for i := range rejects {
		if rejects[i].CreatedAt.IsZero() {
			rejects[i].CreatedAt = now
		}
	}
	// Retried like the bars: the rare retry after a commit whose answer
	// was lost records a reject twice, which a log of rejects can bear
	// better than losing it.
	err := d.do(ctx, func(ctx context.Context) error {
		batch := &pgx.Batch{}
		for i := range rejects {
			r := &rejects[i]
			payload := pricestore.Payload(r.Payload)
			if !json.Valid(payload) {
				payload, _ = json.Marshal(string(payload))
			}
			var runID *int64
			if r.RunID != 0 {
				runID = &r.RunID
			}
			batch.Queue(`INSERT INTO rejected_bars (run_id, code, trade_date, reason, payload, created_at)
VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING id`, runID, r.Code, nullDate(r.Date), r.Reason, string(payload), r.CreatedAt).
				QueryRow(func(row pgx.Row) error { return row.Scan(&r.ID) })
		}
		return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
			return tx.SendBatch(ctx, batch).Close()
		})
	})
	if err != nil {
		return fmt.Errorf("postgres: insert rejected bars: %w", err)
	}
	return nil
}

// Rejected implements [kisfeed.PriceStore].
func (d *DB) Rejected(ctx context.Context, from, to time.Time) ([]kisfeed.RejectedBar, error) {
	where, args := d.Window(from, to)
	return pricestore.Select(ctx, d.Common, "postgres: rejected", "postgres: rejected", scanRejected,
		`SELECT id, run_id, code, trade_date, reason, payload::text, created_at FROM rejected_bars`+where+` ORDER BY id`, args...)
}

func scanRejected(rows pricestore.ScanRows) (kisfeed.RejectedBar, error) {
	var r kisfeed.RejectedBar
	var runID *int64
	var dt pgtype.Date
	var payload string
	if err := rows.Scan(&r.ID, &runID, &r.Code, &dt, &r.Reason, &payload, &r.CreatedAt); err != nil {
		return r, fmt.Errorf("postgres: scan rejected: %w", err)
	}
	if runID != nil {
		r.RunID = *runID
	}
	r.Date = fromDate(dt)
	r.Payload = []byte(payload)
	r.CreatedAt = r.CreatedAt.In(kisfeed.KST)
	return r, nil
}

// Runs implements [kisfeed.PriceStore].
func (d *DB) Runs(ctx context.Context, limit int) ([]kisfeed.IngestionRun, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := d.pool.Query(ctx, `SELECT id, started_at, finished_at, window_from, window_to, path, status,
universe, fetched, written, unchanged, rejected, failed, requests, elapsed_ms, error, unwritten, heartbeat_at, owner
FROM ingestion_runs ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: runs: %w", err)
	}
	defer rows.Close()
	return pricestore.Collect(rows, "postgres: runs", func() (kisfeed.IngestionRun, error) {
		var r kisfeed.IngestionRun
		var finished *time.Time
		var from, to pgtype.Date
		var status string
		var elapsed int64
		var universe, fetched, written, unchanged, rejected, failed, unwritten int32
		if err := rows.Scan(&r.ID, &r.StartedAt, &finished, &from, &to, &r.Path, &status, &universe, &fetched,
			&written, &unchanged, &rejected, &failed, &r.Requests, &elapsed, &r.Error, &unwritten, &r.HeartbeatAt, &r.Owner); err != nil {
			return r, fmt.Errorf("postgres: scan run: %w", err)
		}
		r.Universe, r.Fetched, r.Written, r.Unchanged = int(universe), int(fetched), int(written), int(unchanged)
		r.Rejected, r.Failed, r.Unwritten = int(rejected), int(failed), int(unwritten)
		r.HeartbeatAt = r.HeartbeatAt.In(kisfeed.KST)
		r.Status = kisfeed.RunStatus(status)
		r.Elapsed = time.Duration(elapsed) * time.Millisecond
		r.StartedAt = r.StartedAt.In(kisfeed.KST)
		if finished != nil {
			r.FinishedAt = finished.In(kisfeed.KST)
		}
		r.From, r.To = fromDate(from), fromDate(to)
		return r, nil
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
	tag, err := d.pool.Exec(ctx, `UPDATE ingestion_runs SET status = 'abandoned', finished_at = heartbeat_at, error = $1
WHERE id = $2 AND status = 'running' AND heartbeat_at = $3`, reason, r.ID, r.HeartbeatAt)
	return tag.RowsAffected() == 1, err
}

// SetLogger makes the store log each write it retries (the attempt and
// the error) on l. Call it before use; nil logs nothing.
func (d *DB) SetLogger(l *slog.Logger) { d.w.SetLogger(l) }

// do runs op, retrying it on connection-level errors: pgx drops a broken
// connection from the pool when it is released, so the next try runs on
// another (or a new) one.
func (d *DB) do(ctx context.Context, op func(ctx context.Context) error) error {
	return d.w.Do(ctx, op)
}

// Transient reports whether err is a connection-level failure worth
// retrying on another connection: the backend was terminated or the
// server is shutting down or starting (SQLSTATE 57P01–57P03), a connection
// exception (class 08), a serialization failure or deadlock (40001,
// 40P01), or the socket was reset or closed. A cancelled or expired
// context is not.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"),
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03",
			pe.Code == "40001", pe.Code == "40P01":
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.SafeToRetry(err) {
		return true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// UpsertStocks implements [kisfeed.PriceStore].
func (d *DB) UpsertStocks(ctx context.Context, stocks []kisfeed.Stock) error {
	if len(stocks) == 0 {
		return nil
	}
	now := d.now()
	batch := &pgx.Batch{}
	for _, s := range stocks {
		batch.Queue(`INSERT INTO stocks (code, isin, name, market, grp, preferred, halted, listed_shares, listing_date, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (code) DO UPDATE SET isin = excluded.isin, name = excluded.name, market = excluded.market, grp = excluded.grp,
preferred = excluded.preferred, halted = excluded.halted, listed_shares = excluded.listed_shares,
listing_date = excluded.listing_date, updated_at = excluded.updated_at
WHERE (stocks.isin, stocks.name, stocks.market, stocks.grp, stocks.preferred, stocks.halted, stocks.listed_shares, stocks.listing_date)
  IS DISTINCT FROM (excluded.isin, excluded.name, excluded.market, excluded.grp, excluded.preferred, excluded.halted,
                    excluded.listed_shares, excluded.listing_date)`,
			s.Code, s.ISIN, s.Name, string(s.Market), s.Group, s.Preferred, s.Halted, s.ListedShares, nullDate(s.ListingDate), now)
	}
	err := d.do(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
			return tx.SendBatch(ctx, batch).Close()
		})
	})
	if err != nil {
		return fmt.Errorf("postgres: upsert stocks: %w", err)
	}
	return nil
}
