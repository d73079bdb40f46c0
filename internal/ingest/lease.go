package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/pricestore"
)

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

// clock is the wall clock's time: leases and heartbeats.
func (in *Ingester) clock() time.Time { return in.Clock.Now() }

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

// RunDead reports whether r, recorded as running, belongs to a dead
// process by the rule the next run and verify apply when they mark runs
// abandoned ([Ingester.AbandonStale] with the defaults): its owner is a
// process of this host that is gone ([OwnerDead]), or it has been silent
// past [DefaultLease] at now. For readers that must not write, such as
// serve's /metrics.
func RunDead(r kisfeed.IngestionRun, now time.Time) bool {
	_, dead := pricestore.AbandonReason(pricestore.RunningRun{ID: r.ID, Owner: r.Owner, HeartbeatAt: r.HeartbeatAt},
		now.Add(-DefaultLease), OwnerDead)
	return dead
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
