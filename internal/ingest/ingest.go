package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

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
	switch p := Path(strings.ToLower(strings.TrimSpace(s))); p {
	case "", PathAuto:
		return PathAuto, nil
	case PathQuotes, PathCandles:
		return p, nil
	}
	return "", fmt.Errorf("%w: path %q: want auto, quotes or candles", kisfeed.ErrInvalid, s)
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
	Codes []string
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
	// Now is the clock (nil: time.Now). It decides the default day and
	// whether the market is closed.
	Now func() time.Time
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
	// Clock is the wall clock of the lease (nil: time.Now). It is not
	// Now: that is the market clock, which a backfill or a test pins,
	// while liveness must be judged on real time.
	Clock func() time.Time
	// Owner is recorded on the runs this ingester starts
	// (kisfeed.IngestionRun.Owner; "": [ProcessOwner]).
	Owner string
	// Dead reports whether a running run's owner is gone, so the run is
	// marked abandoned at once rather than after the lease (nil:
	// [OwnerDead], which knows the processes of this host only).
	Dead func(owner string) bool
}

// DefaultLease is the default [Ingester.Lease]: a heartbeat every 7.5 s,
// so a run killed (SIGKILL, OOM, a lost host) is known dead 30 s later
// even where its owner cannot be checked (another host's process; on its
// own host [OwnerDead] tells at once),
// while a database hiccup of a few seconds never makes a live run look
// dead. A live run marked abandoned all the same records its real outcome
// when it finishes.
const DefaultLease = 30 * time.Second

func (in *Ingester) lease() time.Duration {
	if in.Lease > 0 {
		return in.Lease
	}
	return DefaultLease
}

func (in *Ingester) clock() time.Time {
	if in.Clock != nil {
		return in.Clock()
	}
	return time.Now()
}

func (in *Ingester) owner() string {
	if in.Owner != "" {
		return in.Owner
	}
	return ProcessOwner()
}

func (in *Ingester) dead() func(string) bool {
	if in.Dead != nil {
		return in.Dead
	}
	return OwnerDead
}

// AbandonStale marks as abandoned the running runs whose process is dead:
// at once when their owner is a process of this host that is gone
// ([Ingester.Dead]), else once their heartbeat is older than the lease.
// It returns their ids. Run calls it when a run starts and ends, Verify
// when it looks.
func (in *Ingester) AbandonStale(ctx context.Context) ([]int64, error) {
	ids, err := in.Store.AbandonRuns(ctx, in.clock().Add(-in.lease()), in.dead())
	if err != nil {
		return nil, fmt.Errorf("ingest: mark dead runs abandoned: %w", err)
	}
	for _, id := range ids {
		in.log().Warn("a run that stopped without finishing is marked abandoned", "abandoned_run", id,
			"lease", in.lease())
	}
	return ids, nil
}

// heartbeat renews run id's lease every Lease/4 until stop is closed,
// then returns. A failed renewal is logged, not fatal: the writes that
// matter retry on their own, and a run wrongly marked abandoned records
// its real outcome when it finishes.
func (in *Ingester) heartbeat(ctx context.Context, log *slog.Logger, id int64, stop <-chan struct{}) {
	t := time.NewTicker(in.lease() / 4)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, in.lease()/2)
		err := in.Store.HeartbeatRun(hctx, id, in.clock())
		cancel()
		if err != nil {
			log.Warn("heartbeat failed", "err", err)
		}
	}
}

func (in *Ingester) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}

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
func selectUniverse(all []kisfeed.Stock, markets []kisfeed.Market, codes []string) ([]kisfeed.Stock, error) {
	byCode := make(map[string]kisfeed.Stock, len(all))
	for _, s := range all {
		byCode[s.Code] = s
	}
	var out []kisfeed.Stock
	if len(codes) > 0 {
		var bad []string
		seen := map[string]bool{}
		for _, c := range codes {
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
	for _, c := range opts.Codes {
		if err := kisfeed.ValidateCode(c); err != nil {
			return nil, err
		}
	}
	stats0 := in.stats()
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

	sum := &Summary{
		From: from, To: to, Days: len(days), Path: path, PathReason: why,
		Universe: len(universe), DB: in.DB, Workers: workers,
	}
	// A run killed before it could record its end is still "running":
	// mark it abandoned now, so the record says what happened.
	if _, err := in.AbandonStale(ctx); err != nil {
		in.log().Warn("could not look for dead runs", "err", err)
	}
	run := &kisfeed.IngestionRun{StartedAt: started, From: from, To: to, Path: string(path), Universe: len(universe),
		HeartbeatAt: in.clock(), Owner: in.owner()}
	if err := in.Store.StartRun(ctx, run); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	sum.RunID = run.ID
	log := in.log().With("run", run.ID)
	stopBeat, beatDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(beatDone)
		in.heartbeat(context.WithoutCancel(ctx), log, run.ID, stopBeat)
	}()
	stopHeartbeat := sync.OnceFunc(func() { close(stopBeat); <-beatDone })
	defer stopHeartbeat()
	log.Info("ingestion started", "from", from.Format(time.DateOnly), "to", to.Format(time.DateOnly),
		"path", path, "why", why, "universe", len(universe), "workers", workers)

	j := &job{
		in: in, log: log, runID: run.ID, path: path, from: from, to: to,
		lookback: krx.PrevTradingDay(from),
		v:        &validator{universe: map[string]kisfeed.Stock{}},
		sum:      sum, failed: map[string]error{},
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

	switch {
	case runErr != nil && ctx.Err() != nil && !errors.Is(runErr, errStore):
		sum.Status = kisfeed.RunInterrupted
		runErr = fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))
	case runErr != nil:
		sum.Status = kisfeed.RunFailed
	case opts.MaxFailureRatio > 0 && sum.FailureRatio() > opts.MaxFailureRatio:
		sum.Status = kisfeed.RunFailed
		sum.Error = fmt.Sprintf("%d of %d codes (%.4f) left without their bars, above the maximum failure ratio %v",
			sum.Incomplete, sum.Universe, sum.FailureRatio(), opts.MaxFailureRatio)
	default:
		sum.Status = kisfeed.RunSucceeded
	}
	if runErr != nil {
		sum.Error = runErr.Error()
	}
	fin := kisfeed.IngestionRun{
		ID: run.ID, StartedAt: started, FinishedAt: started.Add(sum.Elapsed), From: from, To: to,
		Path: string(path), Status: sum.Status, Universe: sum.Universe, Fetched: sum.Fetched,
		Written: sum.Written, Unchanged: sum.Unchanged, Rejected: sum.Rejected, Failed: sum.Failed,
		Requests: sum.Requests, Elapsed: sum.Elapsed, Error: sum.Error, Unwritten: sum.Unwritten + sum.Pending,
	}
	// Record the outcome even when ctx is cancelled: that is the point
	// of an interrupted run's record.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	stopHeartbeat()
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
	return sum, runErr
}

// errStore marks a store failure inside a run, which fails the run rather
// than interrupting it.
var errStore = errors.New("store")

// job is the state of one run.
type job struct {
	in       *Ingester
	log      *slog.Logger
	runID    int64
	path     Path
	from, to time.Time
	lookback time.Time // the trading day before from: limit reference
	widen    bool      // retry pass: ask daily charts one more day back
	v        *validator
	// prevClose holds, on the quotes path, the stored close of the
	// trading day before the run's day: the limit reference.
	prevClose map[string]int64

	calls atomic.Int64 // Source calls made

	// Owned by the writer goroutine of the pass running, read after it.
	sum           *Summary
	failed        map[string]error // final per-code failures
	rejectedCodes map[string]bool  // codes whose last attempt was rejected
	// unwritten holds the codes fetched whose bars were never stored: their
	// batch's write failed, or they came in after it had.
	unwritten map[string]bool
	// pending holds the codes not fetched: the run was interrupted or
	// stopped after a store failure.
	pending map[string]bool
}

// unit is one fetch: a Quotes batch, or one code's daily chart.
type unit struct {
	codes   []string
	candles bool
}

// result is what one unit produced.
type result struct {
	codes   []string
	bars    []kisfeed.DailyBar
	fetched int
	rejects []kisfeed.RejectedBar
	// malformed counts the rejects that are unreadable upstream values.
	malformed int
	failed    map[string]error // per code
	pending   bool             // cancelled before or while fetching
}

func (r *result) fail(code string, err error) {
	if r.failed == nil {
		r.failed = map[string]error{}
	}
	r.failed[code] = err
}

func (j *job) run(ctx context.Context, universe []kisfeed.Stock, days []time.Time, workers int, force bool) error {
	if err := j.in.Store.UpsertStocks(ctx, universe); err != nil {
		return fmt.Errorf("ingest: %w: %w", errStore, err)
	}
	todo := make([]string, 0, len(universe))
	if force {
		for _, s := range universe {
			todo = append(todo, s.Code)
		}
	} else {
		counts, err := j.in.Store.BarCounts(ctx, j.from, j.to)
		if err != nil {
			return fmt.Errorf("ingest: %w: %w", errStore, err)
		}
		for _, s := range universe {
			want := len(days)
			if !s.ListingDate.IsZero() && s.ListingDate.After(j.from) {
				want = 0
				for _, d := range days {
					if !d.Before(kisfeed.Day(s.ListingDate)) {
						want++
					}
				}
			}
			if counts[s.Code] < want {
				todo = append(todo, s.Code)
			}
		}
	}
	j.sum.Skipped = len(universe) - len(todo)
	if j.sum.Skipped > 0 {
		j.log.Info("resuming: codes already complete are skipped", "skipped", j.sum.Skipped, "todo", len(todo))
	}
	if j.path == PathQuotes && len(todo) > 0 {
		prev, err := j.in.Store.BarsOn(ctx, krx.PrevTradingDay(j.from))
		if err != nil {
			return fmt.Errorf("ingest: %w: %w", errStore, err)
		}
		j.prevClose = make(map[string]int64, len(prev))
		for _, b := range prev {
			j.prevClose[b.Code] = b.Close
		}
	}
	if p := j.in.Progress; p != nil {
		p.Start(len(todo))
		defer func() { p.Finish(j.sum.tally()) }()
	}
	failed, rejected, err := j.pass(ctx, j.units(todo, j.path == PathCandles), workers, true)
	if err != nil || len(failed)+len(rejected) == 0 {
		return err
	}
	// One more attempt for codes whose fetch failed or whose bar was
	// rejected: a corrupted response or a timeout rarely repeats, real
	// bad data is rejected again. The cache in front of the source keeps
	// what it was given, a rejected bar included, so the second attempt
	// must not ask the same question: a rejected quote is checked against
	// the daily chart (another endpoint), a rejected chart is asked for
	// one more day back (another cache key). Failures were not cached and
	// are asked again as they were.
	j.log.Info("retrying failed and rejected codes once", "failed", len(failed), "rejected", len(rejected))
	var units []unit
	if j.path == PathQuotes {
		units = append(j.units(failed, false), j.units(rejected, true)...)
	} else {
		j.widen = true
		units = j.units(append(failed, rejected...), true)
	}
	_, _, err = j.pass(ctx, units, workers, false)
	return err
}

// units groups codes into fetches: daily charts one code each, quotes in
// batches of BatchSize.
func (j *job) units(codes []string, candles bool) []unit {
	size := BatchSize
	if candles {
		size = 1
	}
	var out []unit
	for c := range slices.Chunk(codes, size) {
		out = append(out, unit{codes: c, candles: candles})
	}
	return out
}

// pass runs units with bounded workers while one writer stores the
// results. When first, it returns the codes worth one more attempt: those
// whose fetch failed and those whose bar was rejected.
func (j *job) pass(ctx context.Context, units []unit, workers int, first bool) (failed, rejected []string, err error) {
	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	results := make(chan result, workers)
	writerDone := make(chan error, 1)
	go func() {
		var err error
		// The writer stops the fetches the moment a write fails for
		// good: what they would fetch could not be stored, and each one
		// spends the rate budget.
		failed, rejected, err = j.write(ctx, results, first, cancel)
		writerDone <- err
	}()

	g := new(errgroup.Group)
	g.SetLimit(workers)
	launched := 0
	for _, u := range units {
		if fctx.Err() != nil {
			break // interrupted: take no new work
		}
		launched++
		g.Go(func() error {
			results <- j.fetch(fctx, u)
			return nil
		})
	}
	_ = g.Wait() // fetches never return errors: they report in results
	close(results)
	werr := <-writerDone
	for _, u := range units[launched:] {
		for _, c := range u.codes {
			j.pending[c] = true // the writer is done: no race
		}
	}
	if werr != nil {
		return nil, nil, werr
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	return failed, rejected, nil
}

func (j *job) fetch(ctx context.Context, u unit) result {
	if ctx.Err() != nil {
		return result{codes: u.codes, pending: true}
	}
	j.calls.Add(1)
	if u.candles {
		return j.fetchCandles(ctx, u.codes[0])
	}
	return j.fetchQuotes(ctx, u.codes)
}

// fetchErr sorts a failed call: cancelled (pending) or a failure of codes.
func fetchErr(ctx context.Context, r *result, codes []string, err error) result {
	if ctx.Err() != nil {
		r.pending = true
		return *r
	}
	for _, c := range codes {
		r.fail(c, err)
	}
	return *r
}

func sourceLabel(m kisfeed.Meta, path Path) string {
	src := m.Source
	if src == "" {
		src = "unknown"
	}
	return src + "/" + string(path)
}

func (j *job) fetchQuotes(ctx context.Context, codes []string) result {
	r := result{codes: codes}
	qs, err := j.in.Source.Quotes(ctx, codes)
	var be *kisfeed.BatchError
	now := j.in.now()
	if err != nil && !errors.As(err, &be) {
		// An unreadable answer that names its code is that code's
		// rejected bar; the others of the call failed with it.
		if me := malformed(err); me != nil && slices.Contains(codes, me.Code) && ctx.Err() == nil {
			r.fetched++
			r.malformed++
			r.rejects = append(r.rejects, j.rejectMalformed(me.Code, j.from, me, now))
			codes = slices.DeleteFunc(slices.Clone(codes), func(c string) bool { return c == me.Code })
		}
		return fetchErr(ctx, &r, codes, fmt.Errorf("quotes: %w", err))
	}
	for i, code := range codes {
		if be != nil {
			if e, ok := be.Errs[code]; ok {
				// A row KIS sent but the client could not read is a bar
				// that failed validation upstream of ours: rejected, with
				// the raw row, not a failed fetch.
				if me := malformed(e); me != nil {
					r.fetched++
					r.malformed++
					r.rejects = append(r.rejects, j.rejectMalformed(code, j.from, me, now))
					continue
				}
				r.fail(code, e)
				continue
			}
		}
		var q *kisfeed.Quote
		if i < len(qs) {
			q = qs[i]
		}
		if q == nil {
			r.fail(code, fmt.Errorf("quotes: no quote returned for %s", code))
			continue
		}
		r.fetched++
		payload, _ := json.Marshal(q)
		bar := kisfeed.DailyBar{
			Code: code, Date: j.from, Open: q.Open, High: q.High, Low: q.Low, Close: q.Price,
			Volume: q.Volume, Value: q.TradingValue, Source: sourceLabel(q.Meta, PathQuotes), FetchedAt: now,
		}
		reason := ""
		switch {
		case q.Code != "" && q.Code != code:
			reason = fmt.Sprintf("quote for %s answered the request for %s", q.Code, code)
		case !q.Meta.AsOf.IsZero() && q.Meta.AsOf.Before(krx.CloseTime(j.from)):
			// A snapshot from before the close (a cache that outlived
			// it, a clock gone wrong) is not the day's bar.
			reason = fmt.Sprintf("quote as of %s precedes the close of %s", q.Meta.AsOf.In(kisfeed.KST).Format(time.DateTime),
				j.from.Format(time.DateOnly))
		default:
			// Limit reference: the stored, validated close of the day
			// before; without one, the quote's own previous close.
			ref := j.prevClose[code]
			if ref == 0 && q.PrevClose > 0 {
				ref = q.PrevClose
			}
			reason = j.v.check(bar, ref)
		}
		if reason != "" {
			r.rejects = append(r.rejects, j.reject(code, j.from, reason, payload, now))
			continue
		}
		r.bars = append(r.bars, bar)
	}
	return r
}

func (j *job) reject(code string, day time.Time, reason string, payload []byte, now time.Time) kisfeed.RejectedBar {
	return kisfeed.RejectedBar{RunID: j.runID, Code: code, Date: day, Reason: reason, Payload: payload, CreatedAt: now}
}

// malformed returns the *kisfeed.MalformedError in err: a value the
// upstream sent that the client could not read (nil when err is anything
// else). Adapters wrap the root type (kis's own error unwraps to it), so
// ingest need not know which one answered.
func malformed(err error) *kisfeed.MalformedError {
	var me *kisfeed.MalformedError
	if errors.As(err, &me) {
		return me
	}
	return nil
}

// rejectMalformed records an unreadable upstream value as a rejected bar
// of code on day: the reason names the field and the value, the payload
// is the raw row (or, when that is not JSON, what the error knows).
func (j *job) rejectMalformed(code string, day time.Time, me *kisfeed.MalformedError, now time.Time) kisfeed.RejectedBar {
	payload := []byte(me.Raw)
	if len(payload) == 0 || !json.Valid(payload) {
		payload, _ = json.Marshal(struct {
			TrID  string `json:"tr_id"`
			Field string `json:"field"`
			Value string `json:"value"`
		}{me.Op, me.Field, me.Value})
	}
	return j.reject(code, day, fmt.Sprintf("malformed upstream field %s: %q", me.Field, me.Value), payload, now)
}

// malformedDay is the trading day of an unreadable daily-chart row: its
// stck_bsop_date when that reads, else fallback.
func malformedDay(me *kisfeed.MalformedError, fallback time.Time) time.Time {
	var row struct {
		Date string `json:"stck_bsop_date"`
	}
	if json.Unmarshal(me.Raw, &row) != nil {
		return fallback
	}
	d, err := time.ParseInLocation("20060102", strings.TrimSpace(row.Date), kisfeed.KST)
	if err != nil {
		return fallback
	}
	return d
}

// candlePayload is the raw JSON kept for a rejected daily-chart bar.
type candlePayload struct {
	Code     string         `json:"code"`
	Interval string         `json:"interval"`
	Bar      kisfeed.Candle `json:"bar"`
	Meta     kisfeed.Meta   `json:"meta"`
}

func (j *job) fetchCandles(ctx context.Context, code string) result {
	r := result{codes: []string{code}}
	// Ask from the trading day before the window: that bar is the limit
	// reference of the first one and costs no extra call (≤100 rows a
	// page). Unadjusted prices are what traded, as a quote shows them, so
	// both paths store the same numbers and the tick rule holds.
	from := j.lookback
	if j.widen {
		from = krx.PrevTradingDay(from) // a retry: not the cached question
	}
	cs, err := j.in.Source.Candles(ctx, kisfeed.CandleQuery{
		Code: code, Interval: kisfeed.IntervalDay, From: from, To: j.to, Unadjusted: true,
	})
	now := j.in.now()
	if me := malformed(err); me != nil && ctx.Err() == nil {
		// The chart held an unreadable row: that bar is rejected (on its
		// own date when it reads, else the window's last day); the rest
		// of the series comes with the retry.
		r.fetched++
		r.malformed++
		r.rejects = append(r.rejects, j.rejectMalformed(code, malformedDay(me, j.to), me, now))
		return r
	}
	if err != nil {
		return fetchErr(ctx, &r, r.codes, fmt.Errorf("candles: %w", err))
	}
	bars := slices.Clone(cs.Bars)
	sort.SliceStable(bars, func(a, b int) bool { return bars[a].Time.Before(bars[b].Time) })
	label := sourceLabel(cs.Meta, PathCandles)
	var ref int64
	for _, c := range bars {
		day := kisfeed.Day(c.Time)
		bar := kisfeed.DailyBar{
			Code: code, Date: day, Open: c.Open, High: c.High, Low: c.Low, Close: c.Close,
			Volume: c.Volume, Value: c.Value, Source: label, FetchedAt: now,
		}
		if cs.Code != "" && cs.Code != code {
			bar.Code = cs.Code
		}
		if day.Before(j.from) || day.After(j.to) {
			// Outside the window: the lookback bar is only a reference,
			// and only when it is sound itself.
			if day.Before(j.from) {
				ref = 0
				if j.v.check(bar, 0) == "" {
					ref = bar.Close
				}
			}
			continue
		}
		r.fetched++
		if reason := j.v.check(bar, ref); reason != "" {
			payload, _ := json.Marshal(candlePayload{Code: cs.Code, Interval: string(cs.Interval), Bar: c, Meta: cs.Meta})
			r.rejects = append(r.rejects, j.reject(code, day, reason, payload, now))
			ref = 0 // a rejected close is no reference for the next day
			continue
		}
		ref = bar.Close
		r.bars = append(r.bars, bar)
	}
	return r
}

// write stores results as they come, in batches, and keeps the tallies.
// It writes with a context that outlives cancellation so an interrupted
// run still stores what it fetched; the writes themselves are short.
//
// When a write fails for good (after the store's own retries) it calls
// stop with the error at once, so no further rate budget is spent on bars
// that cannot be stored, and keeps draining: the bars that still come in
// are counted, their codes listed as unwritten.
func (j *job) write(ctx context.Context, results <-chan result, first bool, stop context.CancelCauseFunc) (retryFailed, retryRejected []string, err error) {
	wctx := context.WithoutCancel(ctx)
	flushSize := j.in.FlushSize
	if flushSize <= 0 {
		flushSize = 1000
	}
	var (
		buf      []kisfeed.DailyBar
		bufCodes []string // codes whose bars are in buf
		rejects  []kisfeed.RejectedBar
		storeErr error
	)
	failWrite := func(err error) {
		storeErr = fmt.Errorf("ingest: %w: %w", errStore, err)
		stop(storeErr)
		for _, c := range bufCodes {
			j.unwritten[c] = true
		}
		buf, bufCodes = nil, nil
	}
	if j.rejectedCodes == nil {
		j.rejectedCodes = map[string]bool{}
	}
	flush := func() {
		if storeErr != nil {
			return
		}
		if len(rejects) > 0 {
			if err := j.in.Store.AddRejected(wctx, rejects); err != nil {
				failWrite(err)
				return
			}
			rejects = rejects[:0]
		}
		if len(buf) > 0 {
			res, err := j.in.Store.UpsertBars(wctx, buf)
			if err != nil {
				failWrite(err)
				return
			}
			j.sum.Inserted += res.Inserted
			j.sum.Updated += res.Updated
			j.sum.Written += res.Written()
			j.sum.Unchanged += res.Unchanged
			buf, bufCodes = buf[:0], bufCodes[:0]
		}
	}
	for r := range results {
		if r.pending {
			for _, c := range r.codes {
				j.pending[c] = true
			}
			continue
		}
		j.sum.Fetched += r.fetched
		// After a failed write nothing more is stored, but what still
		// arrives is tallied like the rest, so the summary says which
		// codes were left unwritten rather than nothing at all.
		withBars := map[string]bool{}
		for _, b := range r.bars {
			withBars[b.Code] = true
		}
		for c := range withBars {
			if storeErr != nil {
				j.unwritten[c] = true
			} else {
				bufCodes = append(bufCodes, c)
			}
		}
		if storeErr == nil {
			buf = append(buf, r.bars...)
			rejects = append(rejects, r.rejects...)
		}
		j.sum.Rejected += len(r.rejects)
		j.sum.Malformed += r.malformed
		rejected := map[string]bool{}
		for _, rj := range r.rejects {
			rejected[rj.Code] = true
		}
		for _, c := range r.codes {
			ferr, failed := r.failed[c]
			switch {
			case failed:
				// Recorded now; a successful retry clears it.
				j.failed[c] = ferr
				if first && !kisfeed.IsBusinessError(ferr) {
					retryFailed = append(retryFailed, c)
				}
				j.log.Warn("fetch failed", "code", c, "err", ferr, "will_retry", first && !kisfeed.IsBusinessError(ferr))
			case rejected[c]:
				delete(j.failed, c)
				j.rejectedCodes[c] = true
				if first {
					retryRejected = append(retryRejected, c)
				}
			default:
				delete(j.failed, c)
				delete(j.rejectedCodes, c)
			}
		}
		for _, rj := range r.rejects {
			j.log.Warn("bar rejected", "code", rj.Code, "date", rj.Date.Format(time.DateOnly), "reason", rj.Reason)
		}
		if first {
			j.sum.done += len(r.codes)
		}
		if len(buf) >= flushSize || len(rejects) >= flushSize {
			flush()
		}
		j.sum.failing = len(j.failed)
		if p := j.in.Progress; p != nil {
			p.Update(j.sum.tally())
		}
	}
	flush()
	return retryFailed, retryRejected, storeErr
}
