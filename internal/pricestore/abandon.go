package pricestore

import (
	"context"
	"slices"
	"time"
)

// RunningRun is what [AbandonRuns] needs of a running run: its id, its
// owner and its last heartbeat, as read from the store (the heartbeat
// exactly as stored, since marking the run compares it).
type RunningRun struct {
	ID          int64
	Owner       string
	HeartbeatAt time.Time
}

// AbandonRuns is the logic of [kisfeed.PriceStore.AbandonRuns] both SQL
// stores share: running lists the running runs; each whose heartbeat is
// before staleBefore, or whose owner dead reports gone, is handed to mark
// with the reason to record, and mark reports whether it changed the run
// (it must leave alone a run no longer running or whose heartbeat moved
// since it was read: a run that finished or renewed its lease meanwhile
// keeps its own state). The ids marked are returned, oldest first.
//
// The decision is made in Go rather than SQL because liveness is a
// question for the local host (a pid), not the database; the running
// runs are few (one per live ingest, plus the dead), so reading them all
// costs nothing.
func AbandonRuns(ctx context.Context, staleBefore time.Time, dead func(owner string) bool,
	running func(ctx context.Context) ([]RunningRun, error),
	mark func(ctx context.Context, r RunningRun, reason string) (bool, error)) ([]int64, error) {
	runs, err := running(ctx)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, r := range runs {
		reason, ok := AbandonReason(r, staleBefore, dead)
		if !ok {
			continue
		}
		changed, err := mark(ctx, r, reason)
		if err != nil {
			return nil, err
		}
		if changed {
			ids = append(ids, r.ID)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// AbandonReason says whether running run r is to be marked abandoned and
// the error text to record: its lease ran out (heartbeat before
// staleBefore), or dead says its owner is gone. The owner is asked first,
// as it is the more specific reason.
func AbandonReason(r RunningRun, staleBefore time.Time, dead func(owner string) bool) (string, bool) {
	hb := r.HeartbeatAt.UTC().Format(time.DateTime) + " UTC"
	switch {
	case r.Owner != "" && dead != nil && dead(r.Owner):
		return "abandoned: its process " + r.Owner + " is gone (last heartbeat " + hb + ")", true
	case r.HeartbeatAt.Before(staleBefore):
		return "abandoned: no heartbeat since " + hb + " (the process died or lost the database)", true
	}
	return "", false
}
