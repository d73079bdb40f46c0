// Package sqlite is the SQLite [kisfeed.PriceStore]: the zero-configuration
// default of the ingestion job (./kisfeed.db), on the pure-Go
// modernc.org/sqlite driver so the binary needs no cgo.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/pricestore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a SQLite database holding daily prices, rejected bars and the runs
// of the ingestion job.
type DB struct {
	// Common are Bars, BarsOn, BarCounts, SampleBars, CountBars,
	// StartRun, FinishRun and HeartbeatRun.
	*pricestore.Common
	db   *sql.DB
	path string
	// now stamps created_at/updated_at; tests may replace it.
	now func() time.Time
	// w retries a write that found the database locked; tests shorten
	// its policy.
	w pricestore.Writer
}

var _ kisfeed.PriceStore = (*DB)(nil)

// Open opens (creating if needed) the database file at path and applies
// the embedded migrations.
//
// WAL mode lets readers (verify, a dashboard) run while the job writes;
// busy_timeout makes a second process wait for the lock instead of failing
// at once; and a single connection makes this process one writer, which is
// what SQLite wants (concurrent writers would only contend for the lock).
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, fmt.Errorf("sqlite: path is empty: want a file name like kisfeed.db")
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	sdb.SetMaxOpenConns(1)
	sdb.SetConnMaxIdleTime(0)
	d := &DB{db: sdb, path: path, now: time.Now, w: pricestore.Writer{Name: "sqlite", Policy: pricestore.DefaultRetry, Transient: Transient}}
	d.Common = pricestore.NewCommon(pricestore.Dialect{
		Name: "sqlite",
		Query: func(ctx context.Context, sql string, args ...any) (pricestore.QueryRows, error) {
			rows, err := sdb.QueryContext(ctx, sql, args...)
			if err != nil {
				return nil, err
			}
			return sqlRows{rows}, nil
		},
		Day:     func(t time.Time) any { return fmtDate(t) },
		DayName: fmtDate,
		Instant: func(t time.Time) any { return fmtTime(t) },
		Now:     d.now,
		ScanBar: scanBar,
		Exec: func(ctx context.Context, sql string, args ...any) (int64, error) {
			res, err := sdb.ExecContext(ctx, sql, args...)
			if err != nil {
				return 0, err
			}
			return res.RowsAffected()
		},
		Heartbeat: "heartbeat_ms",
		Beat:      func(t time.Time) any { return t.UnixMilli() },
		ScanRunning: func(rows pricestore.ScanRows, r *pricestore.RunningRun) error {
			var hb int64
			err := rows.Scan(&r.ID, &r.Owner, &hb)
			r.HeartbeatAt = time.UnixMilli(hb)
			return err
		},
	}, &d.w)
	if err := d.migrate(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	return d, nil
}

func (d *DB) migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, d.db, fsys)
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate %s: %w", d.path, err)
	}
	return nil
}

// SchemaVersion returns the applied migration version.
func (d *DB) SchemaVersion(ctx context.Context) (int64, error) {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return 0, err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, d.db, fsys)
	if err != nil {
		return 0, fmt.Errorf("sqlite: migrations: %w", err)
	}
	return p.GetDBVersion(ctx)
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

const dateLayout = "2006-01-02"

func fmtDate(t time.Time) string { return t.In(kisfeed.KST).Format(dateLayout) }

func parseDate(s string) (time.Time, error) {
	t, err := time.ParseInLocation(dateLayout, s, kisfeed.KST)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: date %q: %w", s, err)
	}
	return t, nil
}

func fmtTime(t time.Time) string { return t.In(kisfeed.KST).Format(time.RFC3339Nano) }

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: time %q: %w", s, err)
	}
	return t.In(kisfeed.KST), nil
}

// upsertChunk is the number of rows per multi-row statement: 10 values a
// row stays far below SQLite's 32,766 parameters, and one statement per
// hundred rows instead of one per row is what makes a day's 2,600 bars
// cheap.
const upsertChunk = 100

// tuples is the VALUES list of a multi-row statement: n copies of tuple
// ("(?, ?)") joined by commas. n is at least 1 (slices.Chunk yields no
// empty chunk).
func tuples(n int, tuple string) string {
	return strings.Repeat(tuple+",", n-1) + tuple
}

// inTx runs fn in a transaction and commits it; a failure rolls it back.
func (d *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// writeTx is inTx retried as a whole while the database is locked.
func (d *DB) writeTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return d.do(ctx, func(ctx context.Context) error {
		return d.inTx(ctx, func(tx *sql.Tx) error { return fn(ctx, tx) })
	})
}

// UpsertBars implements [kisfeed.PriceStore]. Inside one transaction it
// reads the stored values of the batch's keys, compares in Go (SQLite's
// upsert cannot tell an insert from an update, nor report an unchanged
// row), and writes only the new and changed rows.
func (d *DB) UpsertBars(ctx context.Context, bars []kisfeed.DailyBar) (kisfeed.WriteResult, error) {
	return d.w.UpsertBars(ctx, bars, func(ctx context.Context, bars []kisfeed.DailyBar) (kisfeed.WriteResult, error) {
		var res kisfeed.WriteResult
		err := d.inTx(ctx, func(tx *sql.Tx) error {
			var err error
			res, err = d.upsertBars(ctx, tx, bars)
			return err
		})
		return res, err
	})
}

func (d *DB) upsertBars(ctx context.Context, tx *sql.Tx, bars []kisfeed.DailyBar) (kisfeed.WriteResult, error) {
	var res kisfeed.WriteResult

	type key struct{ code, date string }
	stored := make(map[key][6]int64, len(bars))
	for chunk := range slices.Chunk(bars, 400) {
		args := make([]any, 0, 2*len(chunk))
		for _, b := range chunk {
			args = append(args, b.Code, fmtDate(b.Date))
		}
		q := `SELECT code, trade_date, open, high, low, close, volume, value FROM daily_prices WHERE (code, trade_date) IN (VALUES ` +
			tuples(len(chunk), "(?, ?)") + `)`
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return res, fmt.Errorf("sqlite: read stored bars: %w", err)
		}
		for rows.Next() {
			var k key
			var v [6]int64
			if err := rows.Scan(&k.code, &k.date, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]); err != nil {
				rows.Close()
				return res, fmt.Errorf("sqlite: read stored bars: %w", err)
			}
			stored[k] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return res, fmt.Errorf("sqlite: read stored bars: %w", err)
		}
	}

	var write []kisfeed.DailyBar
	for _, b := range bars {
		v, ok := stored[key{b.Code, fmtDate(b.Date)}]
		switch {
		case !ok:
			res.Inserted++
			write = append(write, b)
		case v == [6]int64{b.Open, b.High, b.Low, b.Close, b.Volume, b.Value}:
			res.Unchanged++
		default:
			res.Updated++
			write = append(write, b)
		}
	}
	for chunk := range slices.Chunk(write, upsertChunk) {
		args := make([]any, 0, 10*len(chunk))
		for _, b := range chunk {
			args = append(args, b.Code, fmtDate(b.Date), b.Open, b.High, b.Low, b.Close, b.Volume, b.Value, b.Source, fmtTime(b.FetchedAt))
		}
		q := `INSERT INTO daily_prices (code, trade_date, open, high, low, close, volume, value, source, fetched_at) VALUES ` +
			tuples(len(chunk), "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)") +
			` ON CONFLICT (code, trade_date) DO UPDATE SET open = excluded.open, high = excluded.high,
low = excluded.low, close = excluded.close, volume = excluded.volume, value = excluded.value,
source = excluded.source, fetched_at = excluded.fetched_at`
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return kisfeed.WriteResult{}, fmt.Errorf("sqlite: upsert %d bars: %w", len(chunk), err)
		}
	}
	return res, nil
}

// scanBar reads a row selected as [pricestore.BarColumns].
func scanBar(rows pricestore.ScanRows) (kisfeed.DailyBar, error) {
	var b kisfeed.DailyBar
	var date, fetched string
	if err := rows.Scan(&b.Code, &date, &b.Open, &b.High, &b.Low, &b.Close, &b.Volume, &b.Value, &b.Source, &fetched); err != nil {
		return b, fmt.Errorf("sqlite: scan bar: %w", err)
	}
	var err error
	if b.Date, err = parseDate(date); err != nil {
		return b, err
	}
	b.FetchedAt, err = parseTime(fetched)
	return b, err
}

// sqlRows gives *sql.Rows the Close of [pricestore.QueryRows]; its error adds
// nothing to that of Next and Err.
type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

func nullDate(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return fmtDate(t)
}

// AddRejected implements [kisfeed.PriceStore].
func (d *DB) AddRejected(ctx context.Context, rejects []kisfeed.RejectedBar) error {
	if len(rejects) == 0 {
		return nil
	}
	return d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error { return d.addRejected(ctx, tx, rejects) })
}

func (d *DB) addRejected(ctx context.Context, tx *sql.Tx, rejects []kisfeed.RejectedBar) error {
	st, err := tx.PrepareContext(ctx, `INSERT INTO rejected_bars (run_id, code, trade_date, reason, payload, created_at)
VALUES (?, ?, ?, ?, ?, ?) RETURNING id`)
	if err != nil {
		return fmt.Errorf("sqlite: prepare: %w", err)
	}
	defer st.Close()
	now := d.now()
	for i := range rejects {
		r := &rejects[i]
		if r.CreatedAt.IsZero() {
			r.CreatedAt = now
		}
		var runID any
		if r.RunID != 0 {
			runID = r.RunID
		}
		payload := pricestore.Payload(r.Payload)
		if err := st.QueryRowContext(ctx, runID, r.Code, nullDate(r.Date), r.Reason, string(payload), fmtTime(r.CreatedAt)).Scan(&r.ID); err != nil {
			return fmt.Errorf("sqlite: insert rejected %s: %w", r.Code, err)
		}
	}
	return nil
}

// Rejected implements [kisfeed.PriceStore].
func (d *DB) Rejected(ctx context.Context, from, to time.Time) ([]kisfeed.RejectedBar, error) {
	where, args := d.Window(from, to)
	return pricestore.Select(ctx, d.Common, "sqlite: rejected", "sqlite: rejected", scanRejected,
		`SELECT id, run_id, code, trade_date, reason, payload, created_at FROM rejected_bars`+where+` ORDER BY id`, args...)
}

func scanRejected(rows pricestore.ScanRows) (kisfeed.RejectedBar, error) {
	var r kisfeed.RejectedBar
	var runID sql.NullInt64
	var date sql.NullString
	var payload, created string
	if err := rows.Scan(&r.ID, &runID, &r.Code, &date, &r.Reason, &payload, &created); err != nil {
		return r, fmt.Errorf("sqlite: scan rejected: %w", err)
	}
	r.RunID = runID.Int64
	var err error
	if date.Valid {
		if r.Date, err = parseDate(date.String); err != nil {
			return r, err
		}
	}
	r.Payload = []byte(payload)
	r.CreatedAt, err = parseTime(created)
	return r, err
}

// SetLogger makes the store log each write it retries (the attempt and
// the error) on l. Call it before use; nil logs nothing.
func (d *DB) SetLogger(l *slog.Logger) { d.w.SetLogger(l) }

// do runs op, retrying it while the database is locked: busy_timeout
// already waits for a competing writer, so a lock that outlasts it (or
// a SQLITE_BUSY it cannot wait out, such as a stale read snapshot) gets a
// few more tries before the run fails.
func (d *DB) do(ctx context.Context, op func(ctx context.Context) error) error {
	return d.w.Do(ctx, op)
}

// Transient reports whether err says the database is busy or locked
// (SQLITE_BUSY, SQLITE_LOCKED and their extended codes): another
// connection holds the lock, and a later try may succeed.
func Transient(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}

// UpsertStocks implements [kisfeed.PriceStore], in multi-row statements
// that leave unchanged rows alone.
func (d *DB) UpsertStocks(ctx context.Context, stocks []kisfeed.Stock) error {
	if len(stocks) == 0 {
		return nil
	}
	return d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error { return d.upsertStocks(ctx, tx, stocks) })
}

func (d *DB) upsertStocks(ctx context.Context, tx *sql.Tx, stocks []kisfeed.Stock) error {
	// Read what is stored and write only new or changed stocks: the
	// universe rarely changes from one day to the next.
	type row struct {
		isin, name, market, grp string
		preferred, halted       bool
		listed                  int64
		listing                 string
	}
	have := map[string]row{}
	rows, err := tx.QueryContext(ctx, `SELECT code, isin, name, market, grp, preferred, halted, listed_shares, coalesce(listing_date, '') FROM stocks`)
	if err != nil {
		return fmt.Errorf("sqlite: read stocks: %w", err)
	}
	for rows.Next() {
		var code string
		var r row
		if err := rows.Scan(&code, &r.isin, &r.name, &r.market, &r.grp, &r.preferred, &r.halted, &r.listed, &r.listing); err != nil {
			rows.Close()
			return fmt.Errorf("sqlite: read stocks: %w", err)
		}
		have[code] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: read stocks: %w", err)
	}
	var changed []kisfeed.Stock
	for _, s := range stocks {
		listing := ""
		if !s.ListingDate.IsZero() {
			listing = fmtDate(s.ListingDate)
		}
		r, ok := have[s.Code]
		if !ok || r != (row{s.ISIN, s.Name, string(s.Market), s.Group, s.Preferred, s.Halted, s.ListedShares, listing}) {
			changed = append(changed, s)
		}
	}
	now := fmtTime(d.now())
	for chunk := range slices.Chunk(changed, upsertChunk) {
		args := make([]any, 0, 10*len(chunk))
		for _, s := range chunk {
			args = append(args, s.Code, s.ISIN, s.Name, string(s.Market), s.Group, s.Preferred, s.Halted,
				s.ListedShares, nullDate(s.ListingDate), now)
		}
		q := `INSERT INTO stocks (code, isin, name, market, grp, preferred, halted, listed_shares, listing_date, updated_at) VALUES ` +
			tuples(len(chunk), "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)") + `
ON CONFLICT (code) DO UPDATE SET isin = excluded.isin, name = excluded.name, market = excluded.market, grp = excluded.grp,
preferred = excluded.preferred, halted = excluded.halted, listed_shares = excluded.listed_shares,
listing_date = excluded.listing_date, updated_at = excluded.updated_at
WHERE (isin, name, market, grp, preferred, halted, listed_shares, coalesce(listing_date, ''))
  IS NOT (excluded.isin, excluded.name, excluded.market, excluded.grp, excluded.preferred, excluded.halted,
          excluded.listed_shares, coalesce(excluded.listing_date, ''))`
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("sqlite: upsert %d stocks: %w", len(chunk), err)
		}
	}
	return nil
}

// PathFromURL returns the file path of a SQLite database URL: "sqlite:x.db",
// "sqlite://x.db", "sqlite:///abs/x.db", "file:x.db", or a plain path.
func PathFromURL(raw string) string {
	for _, p := range []string{"sqlite3://", "sqlite://", "sqlite3:", "sqlite:", "file:"} {
		if strings.HasPrefix(raw, p) {
			raw = strings.TrimPrefix(raw, p)
			break
		}
	}
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	return raw
}
