package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/krx"
)

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
	// codes maps each universe code to its parsed form, for the Source
	// calls: parsed once when the universe was read.
	codes map[string]kisfeed.Code
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
