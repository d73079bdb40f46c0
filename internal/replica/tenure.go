package replica

import (
	"context"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/fanout"
	"github.com/kisfeed/kisfeed/internal/live"
	"github.com/kisfeed/kisfeed/internal/natsbus"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// tenure is the lease holder's work: the KIS sessions for everybody's
// demand, events to the hub and NATS, until tctx ends.
func (r *Replica) tenure(tctx context.Context, fence int64) {
	start := r.cfg.Hub.Clock.Now()
	if r.cfg.Hub.Clock.Wall == nil {
		start = time.Now()
	}
	ep := makeEpoch(fence, start, r.tag)
	l, err := r.cfg.NewLive()
	if err != nil {
		r.log.Error("stream: cannot build the KIS client; giving the lease back", "err", err)
		return
	}
	defer func() {
		// Close the sessions before returning: the lease's Run waits for
		// this, and releases or lets it expire only then.
		r.live.Store(nil)
		_ = l.Close()
		r.mu.Lock()
		r.status.Holder, r.status.Epoch, r.status.Fence, r.status.Since = false, "", 0, time.Time{}
		r.mu.Unlock()
		r.log.Info("stream: tenure ended, KIS sessions closed", "fence", fence)
		if r.cfg.OnTenure != nil {
			r.cfg.OnTenure(fence, false)
		}
	}()
	r.mu.Lock()
	r.ownEpochs[ep.raw] = true
	r.status.Holder, r.status.Epoch, r.status.Fence, r.status.Since = true, ep.raw, fence, start
	r.status.Tenures++
	r.mu.Unlock()
	r.fwdMu.Lock()
	if err := r.hub.SetEpoch(ep.raw); err != nil {
		r.fwdMu.Unlock()
		r.log.Error("stream: epoch refused", "epoch", ep.raw, "err", err)
		return
	}
	r.newEpochLocked(ep)
	r.fwdMu.Unlock()
	bus := r.cfg.Bus
	l.ListenAll(func(ev stream.Event) {
		m := r.hub.Publish(fanout.FromStream(ev))
		code, err := kisfeed.ParseCode(m.Code)
		if err != nil {
			return
		}
		if err := bus.Publish(tctx, m.Type, code, m.Data); err != nil && tctx.Err() == nil {
			r.log.Debug("nats publish failed", "err", err)
		}
	})
	if err := l.Start(); err != nil {
		r.log.Error("stream: cannot start; giving the lease back", "err", err)
		return
	}
	r.live.Store(l)
	r.log.Info("stream: holding the KIS sessions", "replica", r.cfg.Name, "fence", fence, "epoch", ep.raw)
	if r.cfg.OnTenure != nil {
		r.cfg.OnTenure(fence, true)
	}
	held := map[demandKey]func(){}
	retry := time.NewTicker(r.lease.Interval())
	defer retry.Stop()
	for {
		r.register(tctx, l, held)
		select {
		case <-tctx.Done():
			return
		case <-r.changed:
		case <-retry.C:
		}
	}
}

// register makes l hold exactly what every replica wants (the watched
// aggregate and this replica's own demand).
func (r *Replica) register(ctx context.Context, l *live.Live, held map[demandKey]func()) {
	r.mu.Lock()
	want := r.agg.Merge(r.localDemandLocked())
	r.mu.Unlock()
	wanted := map[demandKey]bool{}
	for code, kinds := range want {
		for _, k := range kinds {
			wanted[demandKey{code, k}] = true
		}
	}
	for k, release := range held {
		if !wanted[k] {
			release()
			delete(held, k)
		}
	}
	for k := range wanted {
		if held[k] != nil || ctx.Err() != nil {
			continue
		}
		sk := stream.KindTrade
		if k.kind == natsbus.KindBook {
			sk = stream.KindBook
		}
		release, err := l.Acquire(ctx, k.code, sk)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("stream: registration refused", "code", k.code.String(), "kind", k.kind, "err", err)
			}
			continue
		}
		held[k] = release
	}
}
