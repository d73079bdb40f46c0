package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/krx"
)

// Path names how bars are fetched.
type Path string

// The fetch paths.
const (
	// PathAuto picks PathQuotes when it applies, else PathCandles.
	PathAuto Path = "auto"
	// PathQuotes builds each bar from the stock's quote after the close,
	// fetched in batches of [BatchSize]: only for the latest session
	// while the market is closed.
	PathQuotes Path = "quotes"
	// PathCandles fetches each stock's daily chart for the window.
	PathCandles Path = "candles"
)

// ParsePath accepts "auto", "quotes" or "candles" ("" means auto).
func ParsePath(s string) (Path, error) {
	p := Path(strings.ToLower(strings.TrimSpace(s)))
	if p == "" {
		p = PathAuto
	}
	if !slices.Contains([]Path{PathAuto, PathQuotes, PathCandles}, p) {
		return "", fmt.Errorf("%w: path %q: want auto, quotes or candles", kisfeed.ErrInvalid, s)
	}
	return p, nil
}

// BatchSize is the number of codes per Quotes call on the quotes path:
// KIS intstock-multprice takes at most 30 (REFERENCE §d.9).
const BatchSize = 30

// DefaultWorkers is the number of concurrent fetches when Options.Workers
// is 0. More only queue on the client's rate limiter.
const DefaultWorkers = 8

// Options select what a run ingests.
type Options struct {
	// From and To bound the window (KST calendar days, inclusive). Both
	// zero: the last completed session. One zero: the other alone.
	From, To time.Time
	// Markets keeps only these markets (empty: all).
	Markets []kisfeed.Market
	// Codes keeps only these codes (empty: the whole universe). Each must
	// be a listed common stock.
	Codes []kisfeed.Code
	// Workers bounds the concurrent fetches (0: DefaultWorkers).
	Workers int
	// Force refetches codes that are already complete in the store.
	Force bool
	// Path forces a fetch path ("" or PathAuto: choose).
	Path Path
	// MaxFailureRatio, when > 0, is the largest share of the universe
	// that may be left without its bars for the run to be recorded as
	// succeeded; above it the run is recorded (and summarised) as failed
	// with the reason, so the runs table agrees with the exit status.
	// 0: per-code failures never fail the run.
	MaxFailureRatio float64
}

// ClientStats are counters of the HTTP clients under the source, read
// before and after a run to report its requests and rate-limit waits.
type ClientStats struct {
	Requests    int64         // HTTP requests sent
	Retries     int64         // retries
	RateLimited int64         // EGW00201 rate-limit answers
	LimiterWait time.Duration // time spent waiting on the rate limiter
}

// Ingester runs ingestion jobs. Source and Store are required.
type Ingester struct {
	Source kisfeed.Source
	Store  kisfeed.PriceStore
	// Logger receives progress and warnings (nil: discard).
	Logger *slog.Logger
	// Clock is the gateway's one pair of clocks (the zero Clock: time.Now
	// for both). Its market half decides the default day and whether the
	// market is closed; its wall half dates leases and heartbeats, because
	// liveness is judged on real time while a backfill or a test pins the
	// market.
	Clock kisfeed.Clock
	// Stats reads the HTTP clients' counters (nil: no HTTP underneath,
	// requests are reported as 0).
	Stats func() ClientStats
	// Progress is told how the run advances (nil: nothing).
	Progress Progress
	// FlushSize is the number of bars per store write (0: 1000).
	FlushSize int
	// DB names the store in the summary (password already redacted).
	DB string
	// Lease is how long a run may go without a heartbeat before another
	// run or verify marks it abandoned (0: [DefaultLease]). The running
	// process renews it every Lease/4.
	Lease time.Duration
	// Owner is recorded on the runs this ingester starts
	// (kisfeed.IngestionRun.Owner; "": [ProcessOwner]).
	Owner string
	// Dead reports whether a running run's owner is gone, so the run is
	// marked abandoned at once rather than after the lease (nil:
	// [OwnerDead], which knows the processes of this host only).
	Dead func(owner string) bool
}

// now is the market clock's time.
func (in *Ingester) now() time.Time { return in.Clock.MarketNow() }

func (in *Ingester) log() *slog.Logger {
	if in.Logger != nil {
		return in.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (in *Ingester) stats() ClientStats {
	if in.Stats == nil {
		return ClientStats{}
	}
	return in.Stats()
}

// ErrInterrupted is returned (wrapping the context's error) when a run was
// cancelled: what was fetched is stored and the run is recorded as
// interrupted.
var ErrInterrupted = errors.New("ingestion interrupted")

// Window resolves the options' window against now: the first and last
// trading day and every trading day between. The error wraps
// [kisfeed.ErrInvalid] and says what is wrong.
func Window(from, to, now time.Time) (first, last time.Time, days []time.Time, err error) {
	latest := krx.LastCompletedSession(now)
	switch {
	case from.IsZero() && to.IsZero():
		from, to = latest, latest
	case from.IsZero():
		from = to
	case to.IsZero():
		to = from
	}
	from, to = kisfeed.Day(from), kisfeed.Day(to)
	if to.Before(from) {
		return first, last, nil, fmt.Errorf("%w: window: from %s is after to %s", kisfeed.ErrInvalid,
			from.Format(time.DateOnly), to.Format(time.DateOnly))
	}
	if to.After(latest) {
		return first, last, nil, fmt.Errorf("%w: window: %s has no completed session yet (the latest completed session is %s)",
			kisfeed.ErrInvalid, to.Format(time.DateOnly), latest.Format(time.DateOnly))
	}
	// Before the built-in calendar, weekends are all it knows: holidays
	// (2019-12-31, ...) would pass for trading days, so neither the window
	// nor the date validation could be trusted. Refuse rather than spend a
	// request per stock on a window the source may not even hold.
	if from.Year() < krx.FirstYear {
		return first, last, nil, fmt.Errorf("%w: window: %s is before %d-01-01, the start of the built-in KRX calendar (%d–%d): want a day from %s",
			kisfeed.ErrInvalid, from.Format(time.DateOnly), krx.FirstYear, krx.FirstYear, krx.LastYear,
			krx.NextTradingDay(kisfeed.Date(krx.FirstYear-1, 12, 31)).Format(time.DateOnly))
	}
	days = krx.TradingDays(from, to)
	if len(days) == 0 {
		if from.Equal(to) {
			why := "a weekend"
			if name := krx.HolidayName(from); name != "" {
				why = "a market holiday (" + name + ")"
			}
			return first, last, nil, fmt.Errorf("%w: %s is not a trading day: %s", kisfeed.ErrInvalid, from.Format(time.DateOnly), why)
		}
		return first, last, nil, fmt.Errorf("%w: window %s..%s holds no trading day", kisfeed.ErrInvalid,
			from.Format(time.DateOnly), to.Format(time.DateOnly))
	}
	return days[0], days[len(days)-1], days, nil
}

// ChoosePath decides how a window is fetched at instant now: the quotes
// path only when the window is the single latest completed session and the
// market has not opened since (a quote taken after the close is the day's
// final bar; once the next session opens it shows the new day). want forces
// a path; forcing quotes where it does not apply is an error.
func ChoosePath(want Path, now, from, to time.Time) (Path, string, error) {
	now = now.In(kisfeed.KST)
	latest := krx.LastCompletedSession(now)
	var why string
	switch {
	case !from.Equal(to):
		why = "a window of several days: per-stock daily charts"
	case !from.Equal(latest):
		why = fmt.Sprintf("%s is not the latest session (%s): per-stock daily charts",
			from.Format(time.DateOnly), latest.Format(time.DateOnly))
	case !now.Before(krx.OpenTime(krx.NextTradingDay(latest))):
		// The next session is running: a quote now is today's, live.
		why = "the market is open: per-stock daily charts"
	}
	switch want {
	case "", PathAuto:
		if why != "" {
			return PathCandles, why, nil
		}
		return PathQuotes, fmt.Sprintf("latest session %s, market closed: multi-quotes in batches of %d",
			from.Format(time.DateOnly), BatchSize), nil
	case PathQuotes:
		if why != "" {
			return "", "", fmt.Errorf("%w: path quotes needs the latest session with the market closed; here %s",
				kisfeed.ErrInvalid, strings.SplitN(why, ":", 2)[0])
		}
		return PathQuotes, "forced: multi-quotes", nil
	case PathCandles:
		return PathCandles, "forced: per-stock daily charts", nil
	}
	return "", "", fmt.Errorf("%w: path %q: want auto, quotes or candles", kisfeed.ErrInvalid, want)
}

// selectUniverse filters the listed securities to the run's scope: common
// stocks ("ST" group: ordinary and preferred shares; ETFs, ETNs, REITs and
// other groups are left out because their tick and limit rules differ;
// halted stocks stay, their bars say so), in the asked markets and codes.
func selectUniverse(all []kisfeed.Stock, markets []kisfeed.Market, codes []kisfeed.Code) ([]kisfeed.Stock, error) {
	byCode := make(map[string]kisfeed.Stock, len(all))
	for _, s := range all {
		byCode[s.Code] = s
	}
	var out []kisfeed.Stock
	if len(codes) > 0 {
		var bad []string
		seen := map[string]bool{}
		for _, kc := range codes {
			c := kc.String()
			if seen[c] {
				continue
			}
			seen[c] = true
			s, ok := byCode[c]
			switch {
			case !ok:
				bad = append(bad, c+" (not listed)")
			case !s.IsCommonStock():
				bad = append(bad, fmt.Sprintf("%s (group %s, not a common stock)", c, s.Group))
			default:
				out = append(out, s)
			}
		}
		if len(bad) > 0 {
			return nil, fmt.Errorf("%w: codes: %s", kisfeed.ErrNotFound, strings.Join(bad, ", "))
		}
	} else {
		for _, s := range all {
			if s.IsCommonStock() {
				out = append(out, s)
			}
		}
	}
	if len(markets) > 0 {
		out = slices.DeleteFunc(out, func(s kisfeed.Stock) bool { return !slices.Contains(markets, s.Market) })
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out, nil
}

// Run ingests the window opts selects and returns the summary. Per-code
// failures do not fail the run: they are counted and listed. The error is
// non-nil for bad options (wrapping [kisfeed.ErrInvalid] or
// [kisfeed.ErrNotFound]), when the universe or the store fails, and when
// ctx is cancelled ([ErrInterrupted]); the summary is non-nil whenever the
// run was recorded.
func (in *Ingester) Run(ctx context.Context, opts Options) (*Summary, error) {
	started := in.now()
	// Elapsed is wall time on the monotonic clock: Now is the market
	// clock, which tests pin.
	wallStart := time.Now()
	from, to, days, err := Window(opts.From, opts.To, started)
	if err != nil {
		return nil, err
	}
	path, why, err := ChoosePath(opts.Path, started, from, to)
	if err != nil {
		return nil, err
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	stats0 := in.stats()
	universe, err := in.universe(ctx, opts, to)
	if err != nil {
		return nil, err
	}
	listed := len(universe) // malformed codes included: they count as failed
	codes, badCodes := parseUniverse(universe)
	universe = slices.DeleteFunc(universe, func(s kisfeed.Stock) bool { return badCodes[s.Code] != nil })

	sum := &Summary{
		From: from, To: to, Days: len(days), Path: path, PathReason: why,
		Universe: listed, DB: in.DB, Workers: workers,
	}
	// A run killed before it could record its end is still "running":
	// mark it abandoned now, so the record says what happened.
	if _, err := in.AbandonStale(ctx); err != nil {
		in.log().Warn("could not look for dead runs", "err", err)
	}
	run := &kisfeed.IngestionRun{StartedAt: started, From: from, To: to, Path: string(path), Universe: listed,
		HeartbeatAt: in.clock(), Owner: in.owner()}
	if err := in.Store.StartRun(ctx, run); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	sum.RunID = run.ID
	log := in.log().With("run", run.ID)
	stopHeartbeat := in.startHeartbeat(ctx, log, run.ID)
	defer stopHeartbeat()
	log.Info("ingestion started", "from", from.Format(time.DateOnly), "to", to.Format(time.DateOnly),
		"path", path, "why", why, "universe", listed, "workers", workers)
	for code, err := range badCodes {
		log.Warn("code left out", "code", code, "err", err)
	}

	j := &job{
		in: in, log: log, runID: run.ID, path: path, from: from, to: to,
		lookback: krx.PrevTradingDay(from),
		v:        &validator{universe: map[string]kisfeed.Stock{}},
		codes:    codes, sum: sum, failed: badCodes,
		unwritten: map[string]bool{}, pending: map[string]bool{},
	}
	for _, s := range universe {
		j.v.universe[s.Code] = s
	}
	runErr := j.run(ctx, universe, days, workers, opts.Force)

	st := in.stats()
	sum.Requests = st.Requests - stats0.Requests
	sum.Retries = st.Retries - stats0.Retries
	sum.RateLimited = st.RateLimited - stats0.RateLimited
	sum.LimiterWait = st.LimiterWait - stats0.LimiterWait
	sum.SourceCalls = j.calls.Load()
	sum.finish(time.Since(wallStart), j.failed, j.rejectedCodes, j.unwritten, j.pending)
	runErr = sum.settle(ctx, runErr, opts.MaxFailureRatio)
	stopHeartbeat()
	runErr = in.record(ctx, log, run.ID, started, sum, runErr)
	return sum, runErr
}

// parseUniverse parses the universe's codes once, for the Source calls:
// the codes that parse, and the error of each that does not. A malformed
// code in the upstream's listing is that code's failure (listed in the
// summary with the reason), not the run's.
func parseUniverse(universe []kisfeed.Stock) (codes map[string]kisfeed.Code, bad map[string]error) {
	codes = make(map[string]kisfeed.Code, len(universe))
	bad = map[string]error{}
	for _, s := range universe {
		c, err := kisfeed.ParseCode(s.Code)
		if err != nil {
			bad[s.Code] = fmt.Errorf("the upstream's universe lists a malformed code: %w", err)
			continue
		}
		codes[s.Code] = c
	}
	return codes, bad
}

// universe is the run's selection of today's listing: the common stocks
// of opts' markets or codes listed by to.
func (in *Ingester) universe(ctx context.Context, opts Options, to time.Time) ([]kisfeed.Stock, error) {
	all, err := in.Source.Universe(ctx)
	if err != nil {
		return nil, fmt.Errorf("ingest: universe: %w", err)
	}
	universe, err := selectUniverse(all, opts.Markets, opts.Codes)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	// The universe is today's listing; a stock listed after the window
	// has nothing to fetch in it.
	universe = slices.DeleteFunc(universe, func(s kisfeed.Stock) bool {
		return !s.ListingDate.IsZero() && kisfeed.Day(s.ListingDate).After(to)
	})
	if len(universe) == 0 {
		return nil, fmt.Errorf("%w: ingest: no common stock listed by %s in the selected markets or codes",
			kisfeed.ErrNotFound, to.Format(time.DateOnly))
	}
	return universe, nil
}

// startHeartbeat renews run id's lease in the background until the
// returned function is called; that function waits for the last renewal
// and may be called more than once.
func (in *Ingester) startHeartbeat(ctx context.Context, log *slog.Logger, id int64) (stop func()) {
	stopBeat, beatDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(beatDone)
		in.heartbeat(context.WithoutCancel(ctx), log, id, stopBeat)
	}()
	return sync.OnceFunc(func() { close(stopBeat); <-beatDone })
}

// settle sets the run's status from how it ended (runErr, ctx) and the
// failure ratio allowed, and returns the run's error: an interruption
// becomes [ErrInterrupted].
func (s *Summary) settle(ctx context.Context, runErr error, maxFailureRatio float64) error {
	switch {
	case runErr != nil && ctx.Err() != nil && !errors.Is(runErr, errStore):
		s.Status = kisfeed.RunInterrupted
		runErr = fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))
	case runErr != nil:
		s.Status = kisfeed.RunFailed
	case maxFailureRatio > 0 && s.FailureRatio() > maxFailureRatio:
		s.Status = kisfeed.RunFailed
		s.Error = fmt.Sprintf("%d of %d codes (%.4f) left without their bars, above the maximum failure ratio %v",
			s.Incomplete, s.Universe, s.FailureRatio(), maxFailureRatio)
	default:
		s.Status = kisfeed.RunSucceeded
	}
	if runErr != nil {
		s.Error = runErr.Error()
	}
	return runErr
}

// record stores the outcome of run id and logs it. It returns runErr, or
// the store's error when recording fails after a run that did not.
func (in *Ingester) record(ctx context.Context, log *slog.Logger, id int64, started time.Time, sum *Summary, runErr error) error {
	fin := kisfeed.IngestionRun{
		ID: id, StartedAt: started, FinishedAt: started.Add(sum.Elapsed), From: sum.From, To: sum.To,
		Path: string(sum.Path), Status: sum.Status, Universe: sum.Universe, Fetched: sum.Fetched,
		Written: sum.Written, Unchanged: sum.Unchanged, Rejected: sum.Rejected, Failed: sum.Failed,
		Requests: sum.Requests, Elapsed: sum.Elapsed, Error: sum.Error, Unwritten: sum.Unwritten + sum.Pending,
	}
	// Record the outcome even when ctx is cancelled: that is the point
	// of an interrupted run's record.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	// A run killed shortly before this one started was not yet past its
	// lease then; it may be now.
	if _, err := in.AbandonStale(wctx); err != nil {
		log.Warn("could not look for dead runs", "err", err)
	}
	if err := in.Store.FinishRun(wctx, fin); err != nil && runErr == nil {
		runErr = fmt.Errorf("ingest: %w", err)
		sum.Status = kisfeed.RunFailed
	}
	log.Info("ingestion finished", "status", sum.Status, "fetched", sum.Fetched, "written", sum.Written,
		"unchanged", sum.Unchanged, "rejected", sum.Rejected, "failed", sum.Failed, "skipped", sum.Skipped,
		"elapsed", sum.Elapsed.Round(time.Millisecond))
	return runErr
}
