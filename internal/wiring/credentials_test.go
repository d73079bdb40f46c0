package wiring_test

import (
	"errors"
	"testing"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/emulator"
	"github.com/kisfeed/kisfeed/emulator/emulatortest"
	"github.com/kisfeed/kisfeed/internal/wiring"
	"github.com/kisfeed/kisfeed/kis"
)

// TestRefusedCredentials checks credentials KIS refuses are a
// configuration error through the whole stack: every lookup returns
// kis.ErrInvalidCredentials as it is (not unavailable, not a stale copy),
// and the breaker stays closed however often it happens.
func TestRefusedCredentials(t *testing.T) {
	t.Parallel()
	_, base := emulatortest.Start(t, emulator.WithAppKey("k", "right"))
	cfg := kisConfig(t, base)
	cfg.AppKey, cfg.AppSecret = "k", "wrong"
	u := newUpstream(t, cfg, wiring.Deps{})
	for i := range cfg.BreakerFailures + 2 {
		_, err := u.Source.Quote(t.Context(), kisfeed.MustParseCode("005930"))
		if !errors.Is(err, kis.ErrInvalidCredentials) || errors.Is(err, kisfeed.ErrUnavailable) {
			t.Fatalf("call %d: got %v, want kis.ErrInvalidCredentials, not unavailable", i+1, err)
		}
	}
	if err := u.CheckBreaker(t.Context()); err != nil {
		t.Errorf("breaker after refused credentials: %v; want closed", err)
	}
}
