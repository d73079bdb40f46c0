package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/kisfeed/kisfeed"
)

// write stores results as they come, in batches, and keeps the tallies.
// It writes with a context that outlives cancellation so an interrupted
// run still stores what it fetched; the writes themselves are short.
//
// When a write fails for good (after the store's own retries) it calls
// stop with the error at once, so no further rate budget is spent on bars
// that cannot be stored, and keeps draining: the bars that still come in
// are counted, their codes listed as unwritten.
func (j *job) write(ctx context.Context, results <-chan result, first bool, stop context.CancelCauseFunc) (retryFailed, retryRejected []string, err error) {
	flushSize := j.in.FlushSize
	if flushSize <= 0 {
		flushSize = 1000
	}
	if j.rejectedCodes == nil {
		j.rejectedCodes = map[string]bool{}
	}
	w := &writer{j: j, wctx: context.WithoutCancel(ctx), stop: stop, first: first}
	for r := range results {
		if r.pending {
			for _, c := range r.codes {
				j.pending[c] = true
			}
			continue
		}
		w.take(r)
		if len(w.buf) >= flushSize || len(w.rejects) >= flushSize {
			w.flush()
		}
		j.sum.failing = len(j.failed)
		if p := j.in.Progress; p != nil {
			p.Update(j.sum.tally())
		}
	}
	w.flush()
	return w.retryFailed, w.retryRejected, w.storeErr
}

// writer is the state of one pass's writer goroutine.
type writer struct {
	j     *job
	wctx  context.Context
	stop  context.CancelCauseFunc
	first bool // the first pass: failed and rejected codes are worth a retry

	buf      []kisfeed.DailyBar
	bufCodes []string // codes whose bars are in buf
	rejects  []kisfeed.RejectedBar
	storeErr error

	retryFailed, retryRejected []string
}

// failWrite records a write that failed for good: it stops the fetches
// and lists the codes of the bars it held as unwritten.
func (w *writer) failWrite(err error) {
	w.storeErr = fmt.Errorf("ingest: %w: %w", errStore, err)
	w.stop(w.storeErr)
	for _, c := range w.bufCodes {
		w.j.unwritten[c] = true
	}
	w.buf, w.bufCodes = nil, nil
}

// flush stores the rejects and bars held, unless a write already failed.
func (w *writer) flush() {
	if w.storeErr != nil {
		return
	}
	j := w.j
	if len(w.rejects) > 0 {
		if err := j.in.Store.AddRejected(w.wctx, w.rejects); err != nil {
			w.failWrite(err)
			return
		}
		w.rejects = w.rejects[:0]
	}
	if len(w.buf) > 0 {
		res, err := j.in.Store.UpsertBars(w.wctx, w.buf)
		if err != nil {
			w.failWrite(err)
			return
		}
		j.sum.Inserted += res.Inserted
		j.sum.Updated += res.Updated
		j.sum.Written += res.Written()
		j.sum.Unchanged += res.Unchanged
		w.buf, w.bufCodes = w.buf[:0], w.bufCodes[:0]
	}
}

// take holds a fetched result's bars and rejects for the next flush and
// tallies its codes.
func (w *writer) take(r result) {
	j := w.j
	j.sum.Fetched += r.fetched
	// After a failed write nothing more is stored, but what still
	// arrives is tallied like the rest, so the summary says which
	// codes were left unwritten rather than nothing at all.
	withBars := map[string]bool{}
	for _, b := range r.bars {
		withBars[b.Code] = true
	}
	for c := range withBars {
		if w.storeErr != nil {
			j.unwritten[c] = true
		} else {
			w.bufCodes = append(w.bufCodes, c)
		}
	}
	if w.storeErr == nil {
		w.buf = append(w.buf, r.bars...)
		w.rejects = append(w.rejects, r.rejects...)
	}
	j.sum.Rejected += len(r.rejects)
	j.sum.Malformed += r.malformed
	w.tallyCodes(r)
	for _, rj := range r.rejects {
		j.log.Warn("bar rejected", "code", rj.Code, "date", rj.Date.Format(time.DateOnly), "reason", rj.Reason)
	}
	if w.first {
		j.sum.done += len(r.codes)
	}
}

// tallyCodes records how each code of r ended: failed, rejected or
// fetched, and on the first pass lists those worth one more attempt.
func (w *writer) tallyCodes(r result) {
	j, first := w.j, w.first
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
				w.retryFailed = append(w.retryFailed, c)
			}
			j.log.Warn("fetch failed", "code", c, "err", ferr, "will_retry", first && !kisfeed.IsBusinessError(ferr))
		case rejected[c]:
			delete(j.failed, c)
			j.rejectedCodes[c] = true
			if first {
				w.retryRejected = append(w.retryRejected, c)
			}
		default:
			delete(j.failed, c)
			delete(j.rejectedCodes, c)
		}
	}
}
