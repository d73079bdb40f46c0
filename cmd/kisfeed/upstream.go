package main

import (
	"context"
	"log/slog"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/config"
)

// upstream is what the data-source factory builds for a command: the
// Source every command reads through (cache and breaker included), the KIS
// clients underneath when the mode has any, and Close, which stops
// everything the factory started (embedded emulator, pools).
type upstream struct {
	Source kisfeed.Source
	// Clients holds the *kis.Client values (one per app key) in KIS and
	// embedded modes; empty in mock mode. Typed any until the kis package
	// lands, then []*kis.Client.
	Clients []any
	Close   func() error
}

// newUpstream builds the upstream for cfg. Tests replace app.newUpstream.
func (a *app) upstream(ctx context.Context, cfg config.Config, log *slog.Logger) (*upstream, error) {
	if a.newUpstream != nil {
		return a.newUpstream(ctx, cfg, log)
	}
	return nil, errNotYet // wired to internal/source.New once it lands
}
