package ingest

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kisfeed/kisfeed"
)

// MaxListedCodes caps the failed and rejected codes a summary lists.
const MaxListedCodes = 50

// Summary is the outcome of a run: what the job prints and the DAG reads.
type Summary struct {
	RunID      int64
	Status     kisfeed.RunStatus
	From, To   time.Time
	Days       int    // trading days in the window
	Path       Path   // fetch path used
	PathReason string // why that path
	Universe   int    // codes in scope
	Skipped    int    // codes already complete in the store, not fetched
	Fetched    int    // bars fetched (retries included)
	Written    int    // bars inserted or updated
	Inserted   int
	Updated    int
	Unchanged  int // bars fetched that were already stored as is
	Rejected   int // bars that failed validation (each attempt counts)
	// Malformed is the part of Rejected the upstream sent unreadable (a
	// non-numeric number: kisfeed.ErrMalformed), rejected before validation.
	Malformed int
	// Failed is the number of codes whose fetch failed for good.
	Failed      int
	FailedCodes []string // sorted, at most MaxListedCodes
	// RejectedCodes are codes whose last attempt was rejected (they
	// have no row for the day), sorted, at most MaxListedCodes.
	RejectedCodes []string
	// Incomplete is the number of codes left without their bars:
	// failed plus rejected on the last attempt (pending excluded).
	Incomplete int
	// Unwritten is the number of codes whose bars were fetched but never
	// stored: their batch's write failed, or they arrived after it had.
	Unwritten      int
	UnwrittenCodes []string // sorted, at most MaxListedCodes
	// Pending is the number of codes not fetched because the run was
	// interrupted or stopped after a failed write. Unwritten and pending
	// codes are what a rerun fetches; failed and rejected ones are
	// counted there, not here.
	Pending      int
	PendingCodes []string // sorted, at most MaxListedCodes
	SourceCalls  int64    // Source method calls (a Quotes batch is one)
	Requests     int64    // HTTP requests, 0 without HTTP underneath
	Retries      int64
	RateLimited  int64 // EGW00201 answers
	// LimiterWait is the time requests spent waiting on the client's rate
	// limiter, summed over every request. Workers wait at the same time,
	// so it is not wall time: with 8 workers it can be ~8x Elapsed. See
	// AvgLimiterWait for the figure per request.
	LimiterWait time.Duration
	Workers     int // concurrent fetches of the run
	Elapsed     time.Duration
	DB          string // store, password redacted
	Error       string

	done    int // codes done in the first pass, for progress
	failing int // codes failed so far, for progress
}

// Tally is the progress of a run.
type Tally struct {
	Done, Total                int // codes
	Fetched, Rejected, Written int // bars
	Failed                     int // codes
	Elapsed                    time.Duration
}

func (s *Summary) tally() Tally {
	return Tally{Done: s.done, Total: s.Universe - s.Skipped, Fetched: s.Fetched, Rejected: s.Rejected,
		Written: s.Written, Failed: s.failing}
}

func capped(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for c := range m {
		out = append(out, c)
	}
	sort.Strings(out)
	if len(out) > MaxListedCodes {
		out = out[:MaxListedCodes]
	}
	return out
}

// finish sorts every code left without its bars into exactly one of
// failed (the fetch failed), rejected (the last attempt was rejected),
// unwritten (fetched, not stored) and pending (not fetched).
func (s *Summary) finish(elapsed time.Duration, failed map[string]error, rejected, unwritten, pending map[string]bool) {
	s.Elapsed = elapsed
	uc := map[string]bool{}
	for c := range unwritten {
		uc[c] = true
	}
	fc := map[string]bool{}
	for c := range failed {
		if !uc[c] {
			fc[c] = true
		}
	}
	rc := map[string]bool{}
	for c := range rejected {
		if !fc[c] && !uc[c] {
			rc[c] = true
		}
	}
	pc := map[string]bool{}
	for c := range pending {
		if !fc[c] && !rc[c] && !uc[c] {
			pc[c] = true
		}
	}
	s.Failed = len(fc)
	s.FailedCodes = capped(fc)
	s.RejectedCodes = capped(rc)
	s.Incomplete = len(fc) + len(rc)
	s.Unwritten, s.UnwrittenCodes = len(uc), capped(uc)
	s.Pending, s.PendingCodes = len(pc), capped(pc)
}

// AvgLimiterWait is the mean time one HTTP request waited on the rate
// limiter: LimiterWait / Requests (0 without requests).
func (s *Summary) AvgLimiterWait() time.Duration {
	if s.Requests <= 0 {
		return 0
	}
	return s.LimiterWait / time.Duration(s.Requests)
}

// FailureRatio is Incomplete / Universe: the share of the scope left
// without its bars. The job exits 1 when it exceeds --max-failure-ratio.
func (s *Summary) FailureRatio() float64 {
	if s.Universe == 0 {
		return 0
	}
	return float64(s.Incomplete) / float64(s.Universe)
}

// summaryJSON is the machine form: stable snake_case keys, dates as
// YYYY-MM-DD, durations in seconds. rate_limit_wait_seconds is the
// limiter wait summed over every request (not wall time: concurrent
// workers wait at once); rate_limit_wait_avg_seconds is the mean per
// request and workers the concurrency. malformed counts the rejected bars
// the upstream sent unreadable (included in rejected).
type summaryJSON struct {
	RunID          int64    `json:"run_id"`
	Status         string   `json:"status"`
	From           string   `json:"from"`
	To             string   `json:"to"`
	Days           int      `json:"days"`
	Path           string   `json:"path"`
	PathReason     string   `json:"path_reason"`
	Universe       int      `json:"universe"`
	Skipped        int      `json:"skipped"`
	Fetched        int      `json:"fetched"`
	Written        int      `json:"written"`
	Inserted       int      `json:"inserted"`
	Updated        int      `json:"updated"`
	Unchanged      int      `json:"unchanged"`
	Rejected       int      `json:"rejected"`
	Malformed      int      `json:"malformed"`
	Failed         int      `json:"failed"`
	FailedCodes    []string `json:"failed_codes"`
	RejectedCodes  []string `json:"rejected_codes"`
	Incomplete     int      `json:"incomplete"`
	FailureRatio   float64  `json:"failure_ratio"`
	Unwritten      int      `json:"unwritten"`
	UnwrittenCodes []string `json:"unwritten_codes"`
	Pending        int      `json:"pending"`
	PendingCodes   []string `json:"pending_codes"`
	SourceCalls    int64    `json:"source_calls"`
	Requests       int64    `json:"requests"`
	Retries        int64    `json:"retries"`
	RateLimited    int64    `json:"rate_limited"`
	LimiterWaitSec float64  `json:"rate_limit_wait_seconds"`
	LimiterAvgSec  float64  `json:"rate_limit_wait_avg_seconds"`
	Workers        int      `json:"workers"`
	ElapsedSec     float64  `json:"elapsed_seconds"`
	DB             string   `json:"db"`
	Error          string   `json:"error,omitempty"`
}

// MarshalJSON writes the machine form of the summary.
func (s *Summary) MarshalJSON() ([]byte, error) {
	nonNil := func(v []string) []string {
		if v == nil {
			return []string{}
		}
		return v
	}
	return json.Marshal(summaryJSON{
		RunID: s.RunID, Status: string(s.Status), From: s.From.Format(time.DateOnly), To: s.To.Format(time.DateOnly),
		Days: s.Days, Path: string(s.Path), PathReason: s.PathReason, Universe: s.Universe, Skipped: s.Skipped,
		Fetched: s.Fetched, Written: s.Written, Inserted: s.Inserted, Updated: s.Updated, Unchanged: s.Unchanged,
		Rejected: s.Rejected, Malformed: s.Malformed, Failed: s.Failed, FailedCodes: nonNil(s.FailedCodes), RejectedCodes: nonNil(s.RejectedCodes),
		Incomplete: s.Incomplete, FailureRatio: s.FailureRatio(), Unwritten: s.Unwritten, UnwrittenCodes: nonNil(s.UnwrittenCodes),
		Pending: s.Pending, PendingCodes: nonNil(s.PendingCodes), SourceCalls: s.SourceCalls,
		Requests: s.Requests, Retries: s.Retries, RateLimited: s.RateLimited,
		LimiterWaitSec: s.LimiterWait.Seconds(), LimiterAvgSec: s.AvgLimiterWait().Seconds(), Workers: s.Workers, ElapsedSec: s.Elapsed.Seconds(), DB: s.DB, Error: s.Error,
	})
}

// WriteText writes the human table of the summary.
func (s *Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	dates := s.From.Format(time.DateOnly)
	if !s.To.Equal(s.From) {
		dates += " .. " + s.To.Format(time.DateOnly) + fmt.Sprintf(" (%d trading days)", s.Days)
	}
	list := func(codes []string, n int) string {
		if n == 0 {
			return "-"
		}
		out := strings.Join(codes, " ")
		if n > len(codes) {
			out += fmt.Sprintf(" … (+%d)", n-len(codes))
		}
		return out
	}
	malformed := ""
	if s.Malformed > 0 {
		malformed = fmt.Sprintf(" (%d unreadable upstream)", s.Malformed)
	}
	rows := [][2]string{
		{"run", fmt.Sprintf("%d (%s)", s.RunID, s.Status)},
		{"date", dates},
		{"path", fmt.Sprintf("%s — %s", s.Path, s.PathReason)},
		{"universe", fmt.Sprintf("%d common stocks", s.Universe)},
		{"skipped", fmt.Sprintf("%d already stored", s.Skipped)},
		{"fetched", fmt.Sprintf("%d bars", s.Fetched)},
		{"written", fmt.Sprintf("%d (%d new, %d updated)", s.Written, s.Inserted, s.Updated)},
		{"unchanged", fmt.Sprint(s.Unchanged)},
		{"rejected", fmt.Sprintf("%d bars%s; codes still rejected: %s", s.Rejected, malformed, list(s.RejectedCodes, s.Incomplete-s.Failed))},
		{"failed", fmt.Sprintf("%d codes: %s", s.Failed, list(s.FailedCodes, s.Failed))},
	}
	if s.Unwritten > 0 {
		rows = append(rows, [2]string{"unwritten", fmt.Sprintf("%d codes fetched but not stored (a write failed): %s",
			s.Unwritten, list(s.UnwrittenCodes, s.Unwritten))})
	}
	if s.Pending > 0 || s.Status == kisfeed.RunInterrupted {
		why := "interrupted"
		if s.Status != kisfeed.RunInterrupted {
			why = "the run stopped"
		}
		rows = append(rows, [2]string{"pending", fmt.Sprintf("%d codes not fetched (%s): %s", s.Pending, why,
			list(s.PendingCodes, s.Pending))})
	}
	rows = append(rows,
		[2]string{"requests", fmt.Sprintf("%d HTTP (%d source calls, %d retries)", s.Requests, s.SourceCalls, s.Retries)},
		[2]string{"rate limit", s.rateLimitText()},
		[2]string{"elapsed", s.Elapsed.Round(time.Millisecond).String()},
		[2]string{"db", s.DB},
	)
	if s.Error != "" {
		rows = append(rows, [2]string{"error", s.Error})
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// rateLimitText says how the rate limit weighed on the run. The limiter
// wait is summed over requests that wait at the same time, so the mean
// per request leads and the sum is labelled as such, never as wall time.
func (s *Summary) rateLimitText() string {
	out := fmt.Sprintf("%d EGW00201 answers", s.RateLimited)
	if s.Requests <= 0 {
		return out + "; limiter wait: no HTTP requests"
	}
	workers := ""
	if s.Workers > 0 {
		workers = fmt.Sprintf(" by %d workers", s.Workers)
	}
	return out + fmt.Sprintf("; limiter wait %s per request on average (%s summed over %d requests%s, not wall time)",
		roundWait(s.AvgLimiterWait()), roundWait(s.LimiterWait), s.Requests, workers)
}

// roundWait keeps a wait readable: ms under a minute, seconds above.
func roundWait(d time.Duration) time.Duration {
	if d >= time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
