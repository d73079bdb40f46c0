package main

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/config"
)

// TestUpstreamWiring: the factory's result reaches the commands typed —
// the KIS clients as *kis.Client, the market clock, the readiness checks —
// and the built-in emulator runs only in embedded mode, said on stderr.
func TestUpstreamWiring(t *testing.T) {
	t.Parallel()
	market := time.Date(2026, 11, 27, 10, 0, 0, 0, kisfeed.KST)
	tests := []struct {
		name        string
		kisAPI      string
		wantClients int
		wantStderr  string
	}{
		{name: "embedded", wantClients: 1, wantStderr: "using the built-in KIS emulator at http://127.0.0.1:"},
		{name: "mock", kisAPI: "false", wantClients: 0, wantStderr: "using the in-process mock market"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.EnableKISAPI = tt.kisAPI
			cfg.MarketTime = market.Format(time.RFC3339)
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			a := &app{stderr: &stderr, clock: kisfeed.Clock{Wall: time.Now}}
			up, err := a.upstream(t.Context(), cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer up.Close()
			if len(up.Clients) != tt.wantClients {
				t.Errorf("clients: got %d, want %d", len(up.Clients), tt.wantClients)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.wantStderr)
			}
			var names []string
			for _, c := range up.Checks {
				names = append(names, c.Name)
			}
			if !slices.Equal(names, []string{"breaker"}) {
				t.Errorf("readiness checks: got %v, want [breaker] (no Redis configured)", names)
			}
			// The market clock starts at KISFEED_MARKET_TIME, whatever the
			// wall clock says (an hour of slack for a slow machine).
			if got := up.Clock.MarketNow(); got.Before(market) || got.After(market.Add(time.Hour)) {
				t.Errorf("market clock: got %s, want about %s", got, market)
			}
		})
	}
}
