package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/krx"
)

// VerifyOptions select what Verify checks.
type VerifyOptions struct {
	// Date is the trading day to check (zero: the last completed session).
	Date time.Time
	// Sample is how many stored bars to re-fetch (0: 100).
	Sample int
	// Workers bounds concurrent fetches (0: DefaultWorkers).
	Workers int
}

// FieldDiff is one value that differs between the store and the source.
type FieldDiff struct {
	Field  string `json:"field"`
	Stored int64  `json:"stored"`
	Source int64  `json:"source"`
}

// Mismatch is a stored bar the source disagrees with.
type Mismatch struct {
	Code string `json:"code"`
	Date string `json:"date"`
	// Reason is "values differ" or "missing at the source".
	Reason string      `json:"reason"`
	Diffs  []FieldDiff `json:"diffs,omitempty"`
}

// VerifyError is a sampled bar the source could not be asked about.
type VerifyError struct {
	Code  string `json:"code"`
	Error string `json:"error"`
}

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	Date    time.Time
	Stored  int // bars stored for the day
	Sample  int // bars sampled
	Matched int
	// Transient counts bars whose first re-fetch disagreed but whose
	// second agreed with the store: a bad response, not bad data.
	Transient  int
	Mismatches []Mismatch
	Errors     []VerifyError
	Requests   int64
	Elapsed    time.Duration
	DB         string
}

// OK reports whether every sampled bar matched.
func (r *VerifyReport) OK() bool { return len(r.Mismatches) == 0 && len(r.Errors) == 0 }

// Verify re-fetches a random sample of the day's stored bars from the
// source (per-stock daily chart, unadjusted, which also cross-checks bars
// stored from quotes) and reports every mismatch. A bar whose first
// re-fetch disagrees is fetched once more and reported only when that
// second answer disagrees too: a corrupted response must not pass for a
// corrupted store. The second fetch asks a slightly wider window, so a
// cache in front cannot repeat the first answer. The error is for bad options or a failing store.
func (in *Ingester) Verify(ctx context.Context, opts VerifyOptions) (*VerifyReport, error) {
	started := in.now()
	wallStart := time.Now()
	day, _, _, err := Window(opts.Date, opts.Date, started)
	if err != nil {
		return nil, err
	}
	n := opts.Sample
	if n <= 0 {
		n = 100
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	// verify is the other command an operator runs after a crash: the
	// record of a run that died must not claim it still runs.
	if _, err := in.AbandonStale(ctx); err != nil {
		in.log().Warn("could not look for dead runs", "err", err)
	}
	stored, err := in.Store.CountBars(ctx, day, day)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if stored == 0 {
		return nil, fmt.Errorf("%w: verify: no bars stored for %s: run kisfeed ingest --date %s first",
			kisfeed.ErrNotFound, day.Format(time.DateOnly), day.Format(time.DateOnly))
	}
	sample, err := in.Store.SampleBars(ctx, day, day, n)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	stats0 := in.stats()
	rep := &VerifyReport{Date: day, Stored: stored, Sample: len(sample), DB: in.DB}
	var (
		mu        sync.Mutex // guards rep's slices and counters below
		transient atomic.Int64
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, b := range sample {
		g.Go(func() error {
			m, ferr := in.verifyOne(gctx, b)
			if ferr == nil && m == nil {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case ferr != nil:
				rep.Errors = append(rep.Errors, VerifyError{Code: b.Code, Error: ferr.Error()})
			case m.Reason == "":
				transient.Add(1)
			default:
				rep.Mismatches = append(rep.Mismatches, *m)
			}
			return nil
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	rep.Transient = int(transient.Load())
	rep.Matched = rep.Sample - len(rep.Mismatches) - len(rep.Errors)
	sort.Slice(rep.Mismatches, func(i, j int) bool { return rep.Mismatches[i].Code < rep.Mismatches[j].Code })
	sort.Slice(rep.Errors, func(i, j int) bool { return rep.Errors[i].Code < rep.Errors[j].Code })
	rep.Requests = in.stats().Requests - stats0.Requests
	rep.Elapsed = time.Since(wallStart)
	return rep, nil
}

// verifyFetches bounds the fetches of one bar: a disagreement must be
// seen in two sound answers before it counts, and an answer that fails
// (an error, or numbers no bar can have) is asked again.
const verifyFetches = 4

// verifyOne compares one stored bar with the source. It returns nil when
// they agree at the first fetch, a Mismatch with an empty Reason when a
// later fetch agreed (transient), and a full Mismatch when two sound
// answers disagreed with the stored bar. An answer that fails (an error,
// or a bar whose numbers fail shapeProblem: a corrupted reply) is never
// evidence; when no sound answer came in verifyFetches the last failure
// is the error.
func (in *Ingester) verifyOne(ctx context.Context, b kisfeed.DailyBar) (*Mismatch, error) {
	// Parsed once for the fetches below; a stored bar with a malformed
	// code cannot be compared with any source.
	code, err := kisfeed.ParseCode(b.Code)
	if err != nil {
		return nil, fmt.Errorf("stored bar of %s: %w", b.Date.Format(time.DateOnly), err)
	}
	var (
		first   *Mismatch // the first sound disagreement
		lastErr error
	)
	for attempt := range verifyFetches {
		// Every other fetch asks from one trading day earlier: another
		// question, so a cache in front cannot hand back the same answer.
		src, err := in.fetchBar(ctx, code, b.Date, attempt%2 == 1)
		if err == nil && src != nil {
			if why := shapeProblem(*src); why != "" {
				err = fmt.Errorf("candles %s: the source's bar for %s is unsound: %s", b.Code, b.Date.Format(time.DateOnly), why)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			lastErr = err
			continue
		}
		m := compare(b, src)
		switch {
		case m == nil && attempt == 0:
			return nil, nil
		case m == nil:
			return &Mismatch{}, nil // transient
		case first != nil:
			return m, nil // a second sound answer disagrees too
		}
		first = m
	}
	if first != nil {
		return first, nil
	}
	return nil, lastErr
}

func (in *Ingester) fetchBar(ctx context.Context, code kisfeed.Code, day time.Time, widen bool) (*kisfeed.DailyBar, error) {
	from := day
	if widen {
		from = krx.PrevTradingDay(day)
	}
	cs, err := in.Source.Candles(ctx, kisfeed.CandleQuery{Code: code, Interval: kisfeed.IntervalDay, From: from, To: day, Unadjusted: true})
	if err != nil {
		return nil, fmt.Errorf("candles %s: %w", code, err)
	}
	for _, c := range cs.Bars {
		if kisfeed.Day(c.Time).Equal(day) {
			return &kisfeed.DailyBar{Code: code.String(), Date: day, Open: c.Open, High: c.High, Low: c.Low, Close: c.Close,
				Volume: c.Volume, Value: c.Value}, nil
		}
	}
	return nil, nil
}

func compare(stored kisfeed.DailyBar, src *kisfeed.DailyBar) *Mismatch {
	m := &Mismatch{Code: stored.Code, Date: stored.Date.Format(time.DateOnly)}
	if src == nil {
		m.Reason = "missing at the source"
		return m
	}
	for _, f := range []struct {
		name string
		a, b int64
	}{
		{"open", stored.Open, src.Open}, {"high", stored.High, src.High}, {"low", stored.Low, src.Low},
		{"close", stored.Close, src.Close}, {"volume", stored.Volume, src.Volume}, {"value", stored.Value, src.Value},
	} {
		if f.a != f.b {
			m.Diffs = append(m.Diffs, FieldDiff{Field: f.name, Stored: f.a, Source: f.b})
		}
	}
	if len(m.Diffs) == 0 {
		return nil
	}
	m.Reason = "values differ"
	return m
}

type verifyJSON struct {
	Date       string        `json:"date"`
	OK         bool          `json:"ok"`
	Stored     int           `json:"stored"`
	Sample     int           `json:"sample"`
	Matched    int           `json:"matched"`
	Transient  int           `json:"transient"`
	Mismatches []Mismatch    `json:"mismatches"`
	Errors     []VerifyError `json:"errors"`
	Requests   int64         `json:"requests"`
	ElapsedSec float64       `json:"elapsed_seconds"`
	DB         string        `json:"db"`
}

// MarshalJSON writes the machine form of the report.
func (r *VerifyReport) MarshalJSON() ([]byte, error) {
	v := verifyJSON{Date: r.Date.Format(time.DateOnly), OK: r.OK(), Stored: r.Stored, Sample: r.Sample,
		Matched: r.Matched, Transient: r.Transient, Mismatches: r.Mismatches, Errors: r.Errors,
		Requests: r.Requests, ElapsedSec: r.Elapsed.Seconds(), DB: r.DB}
	if v.Mismatches == nil {
		v.Mismatches = []Mismatch{}
	}
	if v.Errors == nil {
		v.Errors = []VerifyError{}
	}
	return json.Marshal(v)
}

// WriteText writes the human form of the report.
func (r *VerifyReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "date\t%s\n", r.Date.Format(time.DateOnly))
	fmt.Fprintf(tw, "sample\t%d of %d stored bars\n", r.Sample, r.Stored)
	fmt.Fprintf(tw, "matched\t%d (%d after a second fetch)\n", r.Matched, r.Transient)
	fmt.Fprintf(tw, "mismatches\t%d\n", len(r.Mismatches))
	fmt.Fprintf(tw, "errors\t%d\n", len(r.Errors))
	fmt.Fprintf(tw, "requests\t%d\n", r.Requests)
	fmt.Fprintf(tw, "elapsed\t%s\n", r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(tw, "db\t%s\n", r.DB)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range r.Mismatches {
		var parts []string
		for _, d := range m.Diffs {
			parts = append(parts, fmt.Sprintf("%s stored %d source %d", d.Field, d.Stored, d.Source))
		}
		detail := m.Reason
		if len(parts) > 0 {
			detail += ": " + strings.Join(parts, ", ")
		}
		fmt.Fprintf(w, "MISMATCH %s %s: %s\n", m.Code, m.Date, detail)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "ERROR %s: %s\n", e.Code, e.Error)
	}
	return nil
}
