package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/embedded"
	"github.com/kisfeed/kisfeed/internal/source"
)

// upstream is what the data-source factory builds for a command: the
// Source every command reads through (cache and breaker included), the KIS
// clients underneath when the mode has any, and Close, which stops
// everything the factory started (embedded emulator, pools).
type upstream struct {
	Source kisfeed.Source
	// Clients holds the *kis.Client values (one per app key) in KIS and
	// embedded modes; empty in mock mode.
	Clients []any
	Close   func() error
	// Built is the factory's full result (breaker, Redis, emulator); nil
	// when a test injected the upstream.
	Built *source.Upstream
}

// upstream builds the data source for cfg through the one factory,
// internal/source. deps, when given, adds observers (metrics). In embedded
// mode it says on stderr that the built-in emulator is in use, so nobody
// mistakes synthetic numbers for KIS data. Tests replace app.newUpstream.
func (a *app) upstream(ctx context.Context, cfg config.Config, log *slog.Logger, deps ...source.Deps) (*upstream, error) {
	if a.newUpstream != nil {
		return a.newUpstream(ctx, cfg, log)
	}
	var d source.Deps
	if len(deps) > 0 {
		d = deps[0]
	}
	d = a.sourceDeps(cfg, log, d)
	u, err := source.New(ctx, cfg, d)
	if err != nil {
		return nil, err
	}
	switch u.Mode {
	case config.ModeEmbedded:
		fmt.Fprintf(a.stderr, "kisfeed: no KIS_APP_KEY set: using the built-in KIS emulator at %s (synthetic market, seed %d)\n", u.BaseURL, cfg.Seed)
	case config.ModeMock:
		fmt.Fprintf(a.stderr, "kisfeed: ENABLE_KIS_API=false: using the in-process mock market (seed %d)\n", cfg.Seed)
	}
	clients := make([]any, len(u.Clients))
	for i, c := range u.Clients {
		clients[i] = c
	}
	return &upstream{Source: u.Source, Clients: clients, Close: u.Close, Built: u}, nil
}

// sourceDeps completes d for the factory: the logger, the app's clock and,
// only in embedded mode, the built-in emulator.
func (a *app) sourceDeps(cfg config.Config, log *slog.Logger, d source.Deps) source.Deps {
	if d.Logger == nil {
		d.Logger = log
	}
	if d.Now == nil {
		d.Now = a.now
	}
	if cfg.Mode() == config.ModeEmbedded {
		d.StartEmulator = embedded.Start // the one place the built-in emulator is chosen: no KIS_APP_KEY set
	}
	return d
}

// marketNow is the clock of the market the upstream serves: with
// KISFEED_MARKET_TIME the synthetic market runs from that instant, and
// ingest must judge "latest session" and "market closed" by it, not by the
// wall clock — else at 16:00 with KISFEED_MARKET_TIME=10:00 it took the
// quotes path and stored a 10:00 snapshot as the day's final bar. wall
// when the factory gave no market clock (KIS mode, tests).
func (u *upstream) marketNow(wall func() time.Time) func() time.Time {
	if u.Built != nil && u.Built.MarketNow != nil {
		return u.Built.MarketNow
	}
	return wall
}
