package wiring

import (
	"testing"

	"github.com/kisfeed/kisfeed/internal/config"
)

// TestRefreshesAhead: only a long-running stack refreshes ahead; a
// one-shot command (ingest made 98 requests instead of 88 when the cache
// refreshed what it had just asked) never does, nor the KIS mock server.
func TestRefreshesAhead(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	off := cfg
	off.RefreshRate = 0
	real, mock := cfg, cfg
	real.UseRealServer, mock.UseRealServer = true, false
	tests := []struct {
		name        string
		cfg         config.Config
		mode        config.Mode
		longRunning bool
		want        bool
	}{
		{"serve, embedded", cfg, config.ModeEmbedded, true, true},
		{"ingest, embedded", cfg, config.ModeEmbedded, false, false},
		{"serve, KIS real server", real, config.ModeKIS, true, true},
		{"serve, KIS mock server", mock, config.ModeKIS, true, false},
		{"serve, CACHE_REFRESH_RATE=0", off, config.ModeEmbedded, true, false},
		{"serve, synthetic source", cfg, config.ModeMock, true, true},
	}
	for _, tt := range tests {
		if got := refreshesAhead(tt.cfg, tt.mode, tt.longRunning); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
