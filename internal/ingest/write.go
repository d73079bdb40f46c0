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
