package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/metrics"
	"github.com/kisfeed/kisfeed/internal/natsbus"
	"github.com/kisfeed/kisfeed/internal/replica"
	"github.com/kisfeed/kisfeed/internal/wiring"
)

// startReplica runs serve as one replica of several (NATS_URL): it
// connects to NATS, builds the replica's hub over the upstream's
// per-tenure stream and competes for the stream lease in the background.
// stop ends the tenure (closing the KIS sessions, releasing the lease),
// says goodbye on NATS and closes the connection; call it before the
// upstream closes.
func startReplica(ctx context.Context, cfg config.Config, up *upstream, m *metrics.Metrics, log *slog.Logger) (*replica.Replica, func(), error) {
	if up.NewLive == nil || up.Redis == nil {
		return nil, nil, errors.New("NATS_URL: replicas need the KIS stream (KIS or embedded mode) and REDIS_URL")
	}
	keys, err := appKeys(cfg)
	if err != nil {
		return nil, nil, err
	}
	name := cfg.ReplicaName()
	rlog := log.With("component", "replica", "replica", name)
	var hook atomic.Pointer[replica.Replica] // set once the replica exists; NATS may call first
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	bus, err := natsbus.Connect(cctx, cfg.NATSURL, natsbus.WithName("kisfeed-"+name), natsbus.WithLogger(rlog),
		// Ids increase across codes: forward in the holder's order, so a
		// consumer's Last-Event-ID never skips a lower id of another code.
		natsbus.WithOrderedDelivery(replica.OrderedQueue),
		natsbus.WithConnEvents(func(e natsbus.ConnEvent) {
			if r := hook.Load(); r != nil {
				r.ConnEvent(e)
			}
		}))
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("NATS_URL: %w", err)
	}
	rep, err := replica.New(replica.Config{
		Name: name, AppKeys: keys, TTL: cfg.StreamLeaseTTL, Redis: up.Redis, Bus: bus, NewLive: up.NewLive,
		Hub:    hubConfig(up, m, log),
		Logger: rlog,
	})
	if err != nil {
		_ = bus.Close()
		return nil, nil, err
	}
	hook.Store(rep)
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := rep.Run(rctx); err != nil {
			rlog.Error("replica stopped", "err", err)
		}
	}()
	rlog.Info("replica: competing for the KIS stream lease", "lease", "kisfeed:lease:stream:"+replica.LeaseID(keys), "ttl", cfg.StreamLeaseTTL)
	stop := func() {
		rep.Hub().Close()
		rcancel()
		<-done
		_ = bus.Close()
	}
	return rep, stop, nil
}

// appKeys are the app keys whose sessions the holder opens: the
// configured ones, or the built-in emulator's in embedded mode.
func appKeys(cfg config.Config) ([]string, error) {
	if cfg.Mode() == config.ModeEmbedded {
		return []string{wiring.DemoAppKey}, nil
	}
	ks, err := cfg.Keys()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.Key
	}
	return out, nil
}
