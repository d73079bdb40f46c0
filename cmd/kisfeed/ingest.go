package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/ingest"
	"github.com/kisfeed/kisfeed/internal/postgres"
	"github.com/kisfeed/kisfeed/internal/sqlite"
	"github.com/kisfeed/kisfeed/kis"
)

// defaultSQLite is the database when neither --db nor DATABASE_URL is set.
const defaultSQLite = "kisfeed.db"

// exitInterrupted is the exit code of a run stopped by SIGINT/SIGTERM
// (128 + SIGINT, as shells report it).
const exitInterrupted = 130

// ingestLong is the ingest command's help.
const ingestLong = `ingest fetches daily bars for the whole market (or --codes), validates every
bar, and writes the sound ones to daily_prices exactly once; bars that fail
validation go to rejected_bars with the reason and the raw payload. A value
the upstream sent unreadable (a non-numeric price) is rejected the same way
("malformed upstream field <field>: <value>", the raw row as payload) and
only its own code is affected; every rejected code is fetched once more.

The summary's limiter wait is the mean per HTTP request; the total is summed
over requests that wait at the same time (--workers), so it is not wall time.
--json: rate_limit_wait_seconds (sum), rate_limit_wait_avg_seconds (mean per
request), workers, malformed (unreadable bars, included in rejected).

Default window: the last completed trading day. Universe: the master files'
common stocks — the "ST" security group, i.e. ordinary and preferred shares,
halted ones included; ETFs, ETNs, REITs and other groups are left out
because their tick and limit rules differ. Stocks listed after the window
are left out too.

Right after the close of the latest session (until the next open) the bars
come from multi-stock quotes, 30 codes per call; older days and windows use
one daily chart per stock. The summary says which.

Runs are resumable: codes that already have every bar of the window are
skipped (--force refetches them). SIGINT/SIGTERM stops taking work, stores
what was fetched, records the run as interrupted and exits 130.

A write that fails on a connection-level error (PostgreSQL 57P01 and other
57P0x/08xxx errors, a reset connection, SQLite "database is locked") is
retried on a healthy connection, 6 tries over about 3 s; the upserts are
idempotent, so a retried batch cannot duplicate rows. A write that still
fails stops the fetches at once and fails the run, naming the error; the
summary lists the codes left unwritten (fetched, not stored) and pending
(not fetched), and a rerun fetches exactly those.

Every run is recorded in ingestion_runs with a status: running (renewing
its heartbeat every 7.5 s), succeeded, failed, interrupted, or abandoned.
Each run records its owner (host/pid); the next ingest or verify marks a
running run abandoned, finished at its last heartbeat, at once when its
owner is a process of the same host that no longer exists (SIGKILL, a
crash), else once it has been silent for 30 s (another host's, or a host
lost).

Database: --db, else DATABASE_URL, else SQLite at ./kisfeed.db. A
postgres:// URL selects PostgreSQL; anything else is a SQLite file
(sqlite:path or a plain path).

Exit status: 0 success; 1 when the codes left without their bars exceed
--max-failure-ratio of the universe, or on an error; 2 bad usage; 130
interrupted.`

// ingestExample is the ingest command's examples.
const ingestExample = `  kisfeed ingest
  kisfeed ingest --date 2025-06-02 --json
  kisfeed ingest --from 2024-06-01 --to 2025-05-30 --codes 005930,000660
  kisfeed ingest --market kosdaq --db postgres://kisfeed@localhost/kisfeed`

// ingestFlags holds the ingest command's flags.
type ingestFlags struct {
	date, from, to, markets, codes, dbURL, path string
	asJSON, force                               bool
	maxFailure                                  float64
	workers                                     int
}

func newIngestCmd(a *app) *cobra.Command {
	f := &ingestFlags{}
	c := &cobra.Command{
		Use:     "ingest",
		Short:   "Load the day's OHLCV of every listed stock into the database",
		Long:    ingestLong,
		Example: ingestExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(a, cmd)
		},
	}
	fs := c.Flags()
	fs.StringVar(&f.date, "date", "", "trading day YYYY-MM-DD (default: the last completed session)")
	fs.StringVar(&f.from, "from", "", "first day of a window YYYY-MM-DD (with --to)")
	fs.StringVar(&f.to, "to", "", "last day of a window YYYY-MM-DD (default: --from)")
	fs.StringVar(&f.markets, "market", "", "markets to load, comma separated: kospi,kosdaq (default: all)")
	fs.StringVar(&f.codes, "codes", "", "stock codes to load, comma separated (default: the whole universe)")
	fs.StringVar(&f.dbURL, "db", "", "database URL (default: DATABASE_URL, else SQLite ./kisfeed.db)")
	fs.BoolVar(&f.asJSON, "json", false, "print the summary as JSON")
	fs.Float64Var(&f.maxFailure, "max-failure-ratio", 0.001, "exit 1 when more than this fraction of codes is left without bars")
	fs.IntVar(&f.workers, "workers", 0, "concurrent fetches (default: INGEST_WORKERS, else 8); the client's rate limit sets the pace")
	fs.BoolVar(&f.force, "force", false, "refetch codes already complete in the database")
	fs.StringVar(&f.path, "path", "auto", "fetch path: auto, quotes (latest session, market closed) or candles")
	return c
}

// run is the ingest command: one run with the flags in f.
func (f *ingestFlags) run(a *app, cmd *cobra.Command) error {
	ctx := cmd.Context()
	// An explicit empty list ("--codes $CODES" with CODES unset)
	// must not silently mean the whole market.
	for _, name := range []string{"codes", "market"} {
		if v, _ := cmd.Flags().GetString(name); cmd.Flags().Changed(name) && len(splitList(v)) == 0 {
			return usageError("--%s %q: an empty list; leave the flag out for all", name, v)
		}
	}
	opts, err := ingestOptions(f.date, f.from, f.to, f.markets, f.codes, f.path)
	if err != nil {
		return err
	}
	if f.maxFailure < 0 || f.maxFailure > 1 {
		return usageError("--max-failure-ratio %v: want a fraction from 0 to 1", f.maxFailure)
	}
	opts.Force = f.force
	// The run is recorded failed above the same ratio that exits 1
	// (0 = any failure: the smallest positive ratio, since 0 means
	// "never" to the ingester).
	opts.MaxFailureRatio = max(f.maxFailure, math.SmallestNonzeroFloat64)
	cfg, err := a.config()
	if err != nil {
		return err
	}
	if cmd.Flags().Changed("workers") {
		if f.workers < 1 || f.workers > 256 {
			return usageError("--workers %d: want 1 to 256", f.workers)
		}
		opts.Workers = f.workers
	} else {
		opts.Workers = cfg.IngestWorkers
	}
	log := a.logger(cfg)
	in, closeAll, err := a.ingester(ctx, cfg, f.dbURL, log)
	if err != nil {
		return err
	}
	defer closeAll()

	if isTerminal(a.stderr) {
		in.Progress = ingest.NewBarProgress(a.stderr)
	} else {
		in.Progress = ingest.NewLogProgress(log, a.clock.Wall, 5*time.Second)
	}
	sum, runErr := in.Run(ctx, opts)
	if runErr != nil && (errors.Is(runErr, kisfeed.ErrInvalid) || errors.Is(runErr, kisfeed.ErrNotFound)) && sum == nil {
		return usageError("%v", runErr)
	}
	if sum != nil {
		if err := writeSummary(a.stdout, sum, f.asJSON); err != nil {
			return withExit(1, err)
		}
	}
	switch {
	case errors.Is(runErr, ingest.ErrInterrupted):
		return withExit(exitInterrupted, runErr)
	case runErr != nil:
		return withExit(1, runErr)
	case sum.FailureRatio() > f.maxFailure:
		return withExit(1, fmt.Errorf("%d of %d codes (%.4f) left without their bars, above --max-failure-ratio %v",
			sum.Incomplete, sum.Universe, sum.FailureRatio(), f.maxFailure))
	}
	return nil
}

// ingestOptions turns the flags into options, or a usage error (exit 2)
// that names the flag and what it expects.
func ingestOptions(date, from, to, markets, codes, path string) (ingest.Options, error) {
	var opts ingest.Options
	if date != "" && (from != "" || to != "") {
		return opts, usageError("--date cannot be combined with --from/--to")
	}
	if to != "" && from == "" {
		return opts, usageError("--to needs --from")
	}
	var err error
	if date != "" {
		if opts.From, err = parseDay("--date", date); err != nil {
			return opts, err
		}
		opts.To = opts.From
	}
	if from != "" {
		if opts.From, err = parseDay("--from", from); err != nil {
			return opts, err
		}
		opts.To = opts.From
	}
	if to != "" {
		if opts.To, err = parseDay("--to", to); err != nil {
			return opts, err
		}
		if opts.To.Before(opts.From) {
			return opts, usageError("--to %s is before --from %s", to, from)
		}
	}
	for _, m := range splitList(markets) {
		mk, err := kisfeed.ParseMarket(m)
		if err != nil || mk == kisfeed.MarketKONEX {
			// KONEX parses as a market but is not in the master files the
			// universe comes from: it would select nothing.
			return opts, usageError("--market %q: want kospi or kosdaq (comma separated)", m)
		}
		opts.Markets = append(opts.Markets, mk)
	}
	for _, s := range splitList(codes) {
		c, err := kisfeed.ParseCode(s)
		if err != nil {
			return opts, usageError("--codes: %v", err)
		}
		opts.Codes = append(opts.Codes, c)
	}
	if opts.Path, err = ingest.ParsePath(path); err != nil {
		return opts, usageError("--path %q: want auto, quotes or candles", path)
	}
	return opts, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseDay reads YYYY-MM-DD (or YYYYMMDD) as a KST calendar day.
func parseDay(flag, s string) (time.Time, error) {
	for _, layout := range []string{time.DateOnly, "20060102"} {
		if t, err := time.ParseInLocation(layout, strings.TrimSpace(s), kisfeed.KST); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageError("%s %q: want a date like 2025-06-02", flag, s)
}

func writeSummary(w io.Writer, v interface {
	WriteText(io.Writer) error
}, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // a URL's & stays readable
		return enc.Encode(v)
	}
	return v.WriteText(w)
}

// priceStore is a PriceStore that can also report its schema version and
// log the writes it retries.
type priceStore interface {
	kisfeed.PriceStore
	SchemaVersion(ctx context.Context) (int64, error)
	SetLogger(l *slog.Logger)
}

// ingester opens the database (dbURL, else the configuration's) and the
// data source, and returns an Ingester over them and the function that
// closes both. Its errors carry their exit status.
func (a *app) ingester(ctx context.Context, cfg config.Config, dbURL string, log *slog.Logger) (*ingest.Ingester, func(), error) {
	st, dbName, err := openPriceStore(ctx, dbURL, cfg)
	if err != nil {
		return nil, nil, exitOr(1, err)
	}
	st.SetLogger(log)
	up, err := a.upstream(ctx, cfg, log)
	if err != nil {
		st.Close()
		return nil, nil, withExit(1, fmt.Errorf("data source: %w", err))
	}
	in := &ingest.Ingester{
		Source: up.Source, Store: st, Logger: log, Clock: up.Clock,
		Stats: clientStats(up.Clients), DB: dbName,
	}
	return in, func() { up.Close(); st.Close() }, nil
}

// openPriceStore opens (and migrates) the database named by --db, else
// DATABASE_URL, else ./kisfeed.db. It returns the price store and its name for
// output, the password hidden.
func openPriceStore(ctx context.Context, flag string, cfg config.Config) (priceStore, string, error) {
	raw := flag
	if raw == "" {
		raw = cfg.DatabaseURL
	}
	if raw == "" {
		raw = defaultSQLite
	}
	if flag != "" {
		// DATABASE_URL was checked with the rest of the configuration.
		if err := config.ValidateDatabaseURL(flag); err != nil {
			return nil, "", usageError("--db %v", err)
		}
	}
	if strings.HasPrefix(raw, "postgres://") || strings.HasPrefix(raw, "postgresql://") {
		db, err := postgres.Open(ctx, raw)
		if err != nil {
			return nil, "", err
		}
		return db, config.Redact(raw), nil
	}
	path := sqlite.PathFromURL(raw)
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, "", err
	}
	return db, "sqlite:" + path, nil
}

// clientStats sums the counters of the KIS clients under the source; nil
// when there are none (mock mode), which the summary reports as 0.
func clientStats(clients []*kis.Client) func() ingest.ClientStats {
	if len(clients) == 0 {
		return nil
	}
	return func() ingest.ClientStats {
		st := sumClientStats(clients)
		return ingest.ClientStats{
			Requests: st.Requests, Retries: st.Retries, RateLimited: st.RateLimited, LimiterWait: st.LimiterWait,
		}
	}
}

// sumClientStats sums the counters of clients.
func sumClientStats(clients []*kis.Client) kis.ClientStats {
	var out kis.ClientStats
	for _, c := range clients {
		st := c.Stats()
		out.Requests += st.Requests
		out.Retries += st.Retries
		out.RateLimited += st.RateLimited
		out.LimiterWait += st.LimiterWait
		out.TokensIssued += st.TokensIssued
	}
	return out
}

// isTerminal reports whether w is a terminal (progress bar) rather than a
// file or pipe (log lines).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newMigrateCmd(a *app) *cobra.Command {
	var dbURL string
	c := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the database schema",
		Long: `migrate applies the embedded schema migrations (daily_prices, rejected_bars,
ingestion_runs, stocks) to the database: --db, else DATABASE_URL, else SQLite
./kisfeed.db. ingest and verify also migrate when they start; this command
does it alone, e.g. before granting a read-only role.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			st, name, err := openPriceStore(cmd.Context(), dbURL, cfg)
			if err != nil {
				return exitOr(1, err)
			}
			defer st.Close()
			v, err := st.SchemaVersion(cmd.Context())
			if err != nil {
				return withExit(1, err)
			}
			fmt.Fprintf(a.stdout, "%s: schema at version %d\n", name, v)
			return nil
		},
	}
	c.Flags().StringVar(&dbURL, "db", "", "database URL (default: DATABASE_URL, else SQLite ./kisfeed.db)")
	return c
}

func newVerifyCmd(a *app) *cobra.Command {
	var (
		date, dbURL string
		sample      int
		asJSON      bool
	)
	c := &cobra.Command{
		Use:   "verify",
		Short: "Re-fetch a random sample of stored bars and report every mismatch",
		Long: `verify draws a random sample of the day's stored bars, fetches each again from
the source (per-stock daily chart) and compares open, high, low, close,
volume and value. A bar whose first re-fetch disagrees is fetched once more
and reported only if the disagreement holds, so one bad response does not
pass for bad data. It also marks runs whose process died as abandoned in
ingestion_runs: at once when it ran on this host, else after 30 s without
a heartbeat.

Exit status: 0 when every sampled bar matches; 1 on any mismatch or fetch
error; 2 bad usage.`,
		Example: `  kisfeed verify
  kisfeed verify --date 2025-06-02 --sample 500 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var opts ingest.VerifyOptions
			if date != "" {
				d, err := parseDay("--date", date)
				if err != nil {
					return err
				}
				opts.Date = d
			}
			if sample < 1 || sample > 100000 {
				return usageError("--sample %d: want 1 to 100000", sample)
			}
			opts.Sample = sample
			cfg, err := a.config()
			if err != nil {
				return err
			}
			opts.Workers = cfg.IngestWorkers
			in, closeAll, err := a.ingester(ctx, cfg, dbURL, a.logger(cfg))
			if err != nil {
				return err
			}
			defer closeAll()
			rep, err := in.Verify(ctx, opts)
			switch {
			case errors.Is(err, kisfeed.ErrInvalid):
				return usageError("%v", err)
			case err != nil:
				return withExit(1, err)
			}
			if err := writeSummary(a.stdout, rep, asJSON); err != nil {
				return withExit(1, err)
			}
			if !rep.OK() {
				return withExit(1, fmt.Errorf("verify: %d mismatches and %d errors in %d sampled bars",
					len(rep.Mismatches), len(rep.Errors), rep.Sample))
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&date, "date", "", "trading day YYYY-MM-DD (default: the last completed session)")
	f.IntVar(&sample, "sample", 100, "number of stored bars to re-fetch")
	f.StringVar(&dbURL, "db", "", "database URL (default: DATABASE_URL, else SQLite ./kisfeed.db)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return c
}

// exitOr gives err exit code code unless it already carries one (a usage
// error from deeper down).
func exitOr(code int, err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return withExit(code, err)
}
