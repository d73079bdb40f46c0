package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/fanout"
	"github.com/kisfeed/kisfeed/internal/metrics"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// printReport writes a load generator's report: indented JSON, or its
// text form.
func (a *app) printReport(r interface{ WriteText(io.Writer) error }, asJSON bool) error {
	if !asJSON {
		return r.WriteText(a.stdout)
	}
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// streamHandlers are the real-time routes serve mounts; nil without a
// stream.
type streamHandlers struct{ sse, ws http.Handler }

// startFanout puts the real-time fan-out on the KIS stream: every event
// the live client receives is published once to the hub, and the hub's
// consumers (GET /v1/stream, /v1/ws) drive the registrations through
// live's demand. Without a stream (synthetic mode, or an injected
// upstream) it returns no hub and no routes: the API document then leaves
// them out, and the page stays on polling.
func startFanout(up *upstream, m *metrics.Metrics, log *slog.Logger) (*fanout.Hub, streamHandlers, error) {
	if up.Live == nil {
		return nil, streamHandlers{}, nil
	}
	cfg := hubConfig(up, m, log)
	cfg.Demand = up.Live
	hub, err := fanout.NewHub(cfg)
	if err != nil {
		return nil, streamHandlers{}, err
	}
	// The live client stops with the upstream's Close, after the hub.
	up.Live.ListenAll(func(ev stream.Event) { hub.Publish(fanout.FromStream(ev)) })
	return hub, newStreamHandlers(hub, log), nil
}

// hubConfig is the fan-out hub's configuration, one process or replica
// alike (the replica supplies the Demand): the stack's clock, the metrics,
// and the universe check that refuses an unlisted code before it costs a
// KIS registration.
func hubConfig(up *upstream, m *metrics.Metrics, log *slog.Logger) fanout.Config {
	return fanout.Config{Clock: up.Clock, Observer: m.Fanout(), Logger: log.With("component", "fanout"),
		Listed: listedCodes(up.Source, up.Clock.Now, time.Hour)}
}

// newStreamHandlers mounts hub's consumers: GET /v1/stream and /v1/ws.
func newStreamHandlers(hub *fanout.Hub, log *slog.Logger) streamHandlers {
	ho := fanout.HandlerOptions{Logger: log.With("component", "fanout")}
	return streamHandlers{sse: fanout.NewSSEHandler(hub, ho), ws: fanout.NewWSHandler(hub, ho)}
}

// listedCodes is the hub's Config.Listed: whether src's universe lists a
// code, from a set of its codes read once per ttl (the universe is the
// master file: it changes overnight, and a stream subscribe must not cost
// a read of 2,600 stocks). A failed read is an error (the hub then lets
// the code through) and is retried on the next call.
func listedCodes(src kisfeed.Source, now func() time.Time, ttl time.Duration) func(context.Context, kisfeed.Code) (bool, error) {
	var mu sync.Mutex
	var set map[string]bool
	var read time.Time
	return func(ctx context.Context, code kisfeed.Code) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if set == nil || now().Sub(read) >= ttl {
			u, err := src.Universe(ctx)
			if err != nil {
				return false, fmt.Errorf("stream: universe: %w", err)
			}
			set = make(map[string]bool, len(u))
			for _, st := range u {
				set[st.Code] = true
			}
			read = now()
		}
		return set[code.String()], nil
	}
}
