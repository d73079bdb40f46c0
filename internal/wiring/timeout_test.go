package wiring_test

import (
	"testing"
	"time"

	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/wiring"
	"github.com/kisfeed/kisfeed/kis"
)

// TestFlightTimeout checks the cache's shared-call bound outlasts what the
// kis client does on purpose: a token-issuance wait, then every attempt.
func TestFlightTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		timeout  time.Duration
		attempts int // KIS_RETRY_ATTEMPTS
		want     time.Duration
	}{
		{"defaults", 10 * time.Second, 4, 2*time.Minute + 15*time.Second},
		{"no retries", 10 * time.Second, 0, 75 * time.Second},
		{"long timeout", 30 * time.Second, 2, 60*time.Second + 3*35*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.Timeout, cfg.RetryAttempts = tt.timeout, tt.attempts
			got := wiring.FlightTimeout(cfg)
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if min := kis.TokenIssueInterval + time.Duration(tt.attempts+1)*tt.timeout; got < min {
				t.Errorf("got %s, want at least the token wait plus every attempt, %s", got, min)
			}
		})
	}
}
