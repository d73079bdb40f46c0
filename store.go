package kisfeed

import (
	"context"
	"time"
)

// DailyBar is one stored daily OHLCV row: the validated bar of one stock on
// one trading day. (Code, Date) is its key.
type DailyBar struct {
	Code   string
	Date   time.Time // midnight KST of the trading day
	Open   int64
	High   int64
	Low    int64
	Close  int64
	Volume int64
	Value  int64 // traded value in won
	// Source names where the bar came from ("kis", "emulator", "mock")
	// and which call produced it, e.g. "kis/quotes" or "mock/candles".
	Source string
	// FetchedAt is when the bar was fetched; a store keeps the first
	// FetchedAt of a bar until its values change.
	FetchedAt time.Time
}

// SameValues reports whether b and o carry the same key and OHLCV values
// (Source and FetchedAt are provenance, not values).
func (b DailyBar) SameValues(o DailyBar) bool {
	return b.Code == o.Code && b.Date.Equal(o.Date) &&
		b.Open == o.Open && b.High == o.High && b.Low == o.Low && b.Close == o.Close &&
		b.Volume == o.Volume && b.Value == o.Value
}

// RejectedBar is a fetched bar that failed validation. It is kept, with the
// reason and the raw payload, instead of being written to the prices.
type RejectedBar struct {
	ID     int64
	RunID  int64
	Code   string
	Date   time.Time // zero when the payload had no usable date
	Reason string
	// Payload is the JSON of what the source returned for this bar.
	Payload   []byte
	CreatedAt time.Time
}

// WriteResult counts what an upsert did.
type WriteResult struct {
	Inserted  int // new (code, date) rows
	Updated   int // existing rows whose values changed
	Unchanged int // existing rows already holding the same values
}

// Written returns Inserted + Updated: the rows the upsert changed.
func (r WriteResult) Written() int { return r.Inserted + r.Updated }

// Add returns the sum of r and o.
func (r WriteResult) Add(o WriteResult) WriteResult {
	return WriteResult{r.Inserted + o.Inserted, r.Updated + o.Updated, r.Unchanged + o.Unchanged}
}

// RunStatus is the state of an ingestion run.
type RunStatus string

// The states of an ingestion run. A run starts running and ends in exactly
// one of the others.
const (
	// RunRunning: the process is (or was, until its lease ran out) at
	// work; it renews HeartbeatAt while it runs.
	RunRunning RunStatus = "running"
	// RunSucceeded: finished, at most the allowed share of codes left
	// without bars.
	RunSucceeded RunStatus = "succeeded"
	// RunFailed: finished with an error (the store failed, too many
	// codes failed); Error says why.
	RunFailed RunStatus = "failed"
	// RunInterrupted: stopped by SIGINT/SIGTERM; what was fetched is
	// stored and a rerun resumes.
	RunInterrupted RunStatus = "interrupted"
	// RunAbandoned: the process died without finishing (SIGKILL, a
	// crash, a lost host), and the next run or verify marked it: at once
	// when its Owner is a process of that same host that no longer
	// exists, else once its heartbeat stopped for longer than the lease.
	// FinishedAt is its last heartbeat. A rerun resumes, as after an
	// interruption.
	RunAbandoned RunStatus = "abandoned"
)

// IngestionRun records one run of the daily ingestion job.
type IngestionRun struct {
	ID         int64
	StartedAt  time.Time
	FinishedAt time.Time // zero while running
	From, To   time.Time // the window of trading days, inclusive
	Path       string    // "quotes" or "candles"
	Status     RunStatus
	Universe   int   // codes in scope
	Fetched    int   // bars fetched
	Written    int   // bars inserted or updated
	Unchanged  int   // bars already stored with the same values
	Rejected   int   // bars that failed validation
	Failed     int   // codes whose fetch failed
	Requests   int64 // HTTP requests made (0 when the source has none)
	// Unwritten is the number of codes the run left for a rerun: not
	// fetched (interrupted, stopped by a store failure) or fetched but
	// never stored because the write failed.
	Unwritten int
	Elapsed   time.Duration
	Error     string
	// HeartbeatAt is when the running process last renewed its lease
	// (set by StartRun and HeartbeatRun, read by Runs).
	HeartbeatAt time.Time
	// Owner names the process that started the run, "host/pid" (with
	// "@start" when the process start time is known, so a reused pid
	// is told apart): what lets the next run on the same host see at
	// once that the owner is gone. Empty for runs recorded before it
	// existed; set by StartRun from the run given, read by Runs.
	Owner string
}

// PriceStore keeps daily bars, rejected bars and the record of ingestion
// runs. Implementations apply their schema when opened and are safe for
// concurrent use; dates are KST calendar days (the time of day is ignored).
// Errors are storage failures; a lookup that finds nothing returns an empty
// result, not [ErrNotFound].
type PriceStore interface {
	// UpsertBars writes bars keyed by (Code, Date): a new key is
	// inserted, an existing one is updated only when a value differs, so
	// re-writing the same bars changes nothing. Bars repeated in the
	// slice count once (the last wins). All or nothing.
	UpsertBars(ctx context.Context, bars []DailyBar) (WriteResult, error)
	// Bars returns the stored bars of code in [from, to], oldest first.
	Bars(ctx context.Context, code string, from, to time.Time) ([]DailyBar, error)
	// BarsOn returns every stored bar of day, sorted by code.
	BarsOn(ctx context.Context, day time.Time) ([]DailyBar, error)
	// BarCounts returns, for every code with bars in [from, to], how
	// many it has: what a resumed run uses to skip complete codes.
	BarCounts(ctx context.Context, from, to time.Time) (map[string]int, error)
	// SampleBars returns up to n stored bars in [from, to] chosen at
	// random.
	SampleBars(ctx context.Context, from, to time.Time, n int) ([]DailyBar, error)
	// CountBars returns the number of stored bars in [from, to].
	CountBars(ctx context.Context, from, to time.Time) (int, error)

	// AddRejected records bars that failed validation; it sets their ID.
	AddRejected(ctx context.Context, rejects []RejectedBar) error
	// Rejected returns the rejected bars whose Date lies in [from, to]
	// (or of every date when both are zero), oldest first.
	Rejected(ctx context.Context, from, to time.Time) ([]RejectedBar, error)

	// StartRun inserts run (its status is forced to running) and sets
	// run.ID.
	StartRun(ctx context.Context, run *IngestionRun) error
	// FinishRun stores the final state of the run with run.ID.
	FinishRun(ctx context.Context, run IngestionRun) error
	// Runs returns the latest runs, newest first, at most limit.
	Runs(ctx context.Context, limit int) ([]IngestionRun, error)
	// HeartbeatRun renews the lease of the running run id: its
	// HeartbeatAt becomes at. A run no longer running (finished, or
	// marked abandoned meanwhile) is left alone.
	HeartbeatRun(ctx context.Context, id int64, at time.Time) error
	// AbandonRuns marks as [RunAbandoned] every running run whose last
	// heartbeat is before staleBefore, or whose Owner dead reports gone
	// (nil: none is), its FinishedAt set to that last heartbeat, and
	// returns their ids (oldest first). dead is called once per running
	// run and must answer quickly (no I/O beyond the local host).
	AbandonRuns(ctx context.Context, staleBefore time.Time, dead func(owner string) bool) ([]int64, error)

	// UpsertStocks records the universe's descriptive data.
	UpsertStocks(ctx context.Context, stocks []Stock) error

	// Close releases the connections.
	Close() error
}
