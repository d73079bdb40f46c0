package main

import (
	"context"
	"fmt"
	goredis "github.com/redis/go-redis/v9"
	"log/slog"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/embedded"
	"github.com/kisfeed/kisfeed/internal/httpapi"
	"github.com/kisfeed/kisfeed/internal/live"
	"github.com/kisfeed/kisfeed/internal/wiring"
	"github.com/kisfeed/kisfeed/kis"
)

// upstream is what the data-source factory builds for a command: the
// Source every command reads through (cache and breaker included), the KIS
// clients underneath when the mode has any, the market's clock, the
// readiness checks, and Close, which stops everything the factory started
// (embedded emulator, pools). Tests inject one through app.newUpstream.
type upstream struct {
	Source kisfeed.Source
	// Clients are the KIS clients (one per app key) in KIS and embedded
	// modes; empty in mock mode.
	Clients []*kis.Client
	// RateLimit is the clients' configured rate per app key, requests/s
	// (wiring.Stack.RateLimit; 0 in mock mode), for the rate gauges.
	RateLimit float64
	// Clock is the one pair of clocks the parts were built with
	// (wiring.Stack.Clock). Its Market half is the clock of the market
	// being served: with KISFEED_MARKET_TIME the synthetic market runs
	// from that instant, and ingest must judge "latest session" and
	// "market closed" by it, not by the wall clock — else at 16:00 with
	// KISFEED_MARKET_TIME=10:00 it took the quotes path and stored a 10:00
	// snapshot as the day's final bar. [app.upstream] fills a half an
	// injected upstream leaves nil from the app's clock.
	Clock kisfeed.Clock
	// Checks are what /readyz checks of the upstream: the circuit breaker,
	// and Redis when it is configured; none for an injected upstream.
	Checks []httpapi.Check
	// BaseURL is the KIS REST base URL in use (wiring.Stack.BaseURL): in
	// embedded mode the built-in emulator's address, from which `watch`
	// derives its WebSocket URL (config.Config.WebSocketURL); "" in mock
	// mode.
	BaseURL string
	// Live is the real-time stream serve runs (wiring.Stack.Live): nil in
	// synthetic mode, for commands that did not ask for it, and for an
	// injected upstream.
	Live *live.Live
	// NewLive and Redis are wiring.Stack's: with NATS_URL, serve's
	// replica builds a stream per lease tenure (internal/replica).
	NewLive func() (*live.Live, error)
	Redis   *goredis.Client
	Close   func() error
}

// upstream builds the data source for cfg through the one factory,
// internal/wiring. deps, when given, adds observers (metrics). In embedded
// mode it says on stderr that the built-in emulator is in use, so nobody
// mistakes synthetic numbers for KIS data. Tests replace app.newUpstream.
func (a *app) upstream(ctx context.Context, cfg config.Config, log *slog.Logger, deps ...wiring.Deps) (*upstream, error) {
	if a.newUpstream != nil {
		up, err := a.newUpstream(ctx, cfg, log)
		if err != nil || up == nil {
			return up, err
		}
		wall := up.Clock.Wall
		if wall == nil {
			wall = a.clock.Wall
		}
		up.Clock = kisfeed.NewClock(wall, up.Clock.Market)
		return up, nil
	}
	var d wiring.Deps
	if len(deps) > 0 {
		d = deps[0]
	}
	d = a.sourceDeps(cfg, log, d)
	u, err := wiring.New(ctx, cfg, d)
	if err != nil {
		return nil, err
	}
	switch u.Mode {
	case config.ModeEmbedded:
		fmt.Fprintf(a.stderr, "kisfeed: no KIS_APP_KEY set: using the built-in KIS emulator at %s (synthetic market, seed %d)\n", u.BaseURL, cfg.Seed)
	case config.ModeMock:
		fmt.Fprintf(a.stderr, "kisfeed: ENABLE_KIS_API=false: using the in-process mock market (seed %d)\n", cfg.Seed)
	}
	var checks []httpapi.Check
	for _, c := range u.Checks() {
		checks = append(checks, httpapi.Check(c))
	}
	return &upstream{Source: u.Source, Clients: u.Clients, RateLimit: u.RateLimit, Clock: u.Clock, Checks: checks,
		BaseURL: u.BaseURL, Live: u.Live, NewLive: u.NewLive, Redis: u.Redis, Close: u.Close}, nil
}

// sourceDeps completes d for the factory: the logger, the app's clock and,
// only in embedded mode, the built-in emulator.
func (a *app) sourceDeps(cfg config.Config, log *slog.Logger, d wiring.Deps) wiring.Deps {
	if d.Logger == nil {
		d.Logger = log
	}
	if d.Now == nil {
		d.Now = a.clock.Wall
	}
	if cfg.Mode() == config.ModeEmbedded {
		d.StartEmulator = embedded.Start // the one place the built-in emulator is chosen: no KIS_APP_KEY set
	}
	return d
}
