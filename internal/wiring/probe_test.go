package wiring_test

import (
	"github.com/kisfeed/kisfeed"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed/internal/breaker"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/embedded"
	"github.com/kisfeed/kisfeed/internal/wiring"
)

// failObserver is a kis.Observer that signals every failed HTTP attempt.
type failObserver struct{ failed chan error }

func (o failObserver) Request(_ string, _ int, _ string, _ time.Duration, err error) {
	if err != nil {
		select {
		case o.failed <- err:
		default:
		}
	}
}
func (failObserver) Retry(string, string)      {}
func (failObserver) LimiterWait(time.Duration) {}
func (failObserver) TokenIssued()              {}

// TestRecoveryProbeClosesAfterOutage: the factory wires a recovery probe
// that sees an outage at the HTTP level (the emulator's outage resets
// every request while its port still accepts connections, which the TCP
// reachability check cannot tell from health) and closes the circuit
// once the outage ends — here with a one-hour BREAKER_DELAY, which
// without the probe would keep it open for the rest of the test.
func TestRecoveryProbeClosesAfterOutage(t *testing.T) {
	const bound = 10 * time.Second // a failure bound, not a wait: the probe runs every 500 ms
	cfg := config.Default()        // embedded emulator
	cfg.MarketTime = "2026-11-27T10:00:00+09:00"
	cfg.BreakerFailures = 1
	cfg.BreakerDelay = time.Hour
	every := 500 * time.Millisecond // also the probe's timeout: room for a loaded -race run
	cfg.BreakerProbe = &every
	cfg.RetryAttempts = 0
	cfg.RefreshRate = 0
	cfg.QuoteBatchWindow = 0
	states := make(chan string, 16)
	obs := failObserver{failed: make(chan error, 64)}
	var emu *embedded.Emulator
	u := newUpstream(t, cfg, withEmulator(wiring.Deps{KISObserver: obs, OnBreakerState: func(s string) { states <- s }}, &emu))
	ctx := t.Context()
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-states:
			if got != want {
				t.Fatalf("breaker state: got %s, want %s", got, want)
			}
		case <-time.After(bound):
			t.Fatalf("breaker state: nothing in %s, want %s", bound, want)
		}
	}
	failure := func(what string) {
		t.Helper()
		select {
		case <-obs.failed:
		case <-time.After(bound):
			t.Fatalf("no failed request in %s: want %s", bound, what)
		}
	}
	expect("closed")
	// A token and a price before the outage, as a running server has.
	if _, err := wiring.BreakerOf(u).Quote(ctx, kisfeed.MustParseCode("000660")); err != nil {
		t.Fatalf("before the outage: %v", err)
	}

	emu.Server.SetOutage(time.Hour)
	if _, err := wiring.BreakerOf(u).Quote(ctx, kisfeed.MustParseCode("000660")); err == nil {
		t.Fatal("during the outage: got a quote, want an error")
	}
	failure("the call")
	expect("open")
	// Probes fail at the HTTP level, and the circuit stays open.
	failure("the first probe")
	failure("the second probe")
	if got := wiring.BreakerOf(u).State(); got != breaker.Open {
		t.Fatalf("after two failed probes: state %s, want open", got)
	}

	emu.Server.SetOutage(0)
	expect("closed")
	if _, err := wiring.BreakerOf(u).Quote(ctx, kisfeed.MustParseCode("000660")); err != nil {
		t.Errorf("after the probe closed the circuit: %v", err)
	}
}

// TestRecoveryProbeOff: BREAKER_PROBE_INTERVAL=0 wires no probe, so the
// circuit stays open for BREAKER_DELAY whatever the upstream does.
func TestRecoveryProbeOff(t *testing.T) {
	cfg := config.Default()
	cfg.MarketTime = "2026-11-27T10:00:00+09:00"
	cfg.BreakerFailures = 1
	cfg.BreakerDelay = time.Hour
	off := time.Duration(0)
	cfg.BreakerProbe = &off
	cfg.RetryAttempts = 0
	cfg.RefreshRate = 0
	cfg.QuoteBatchWindow = 0
	obs := failObserver{failed: make(chan error, 64)}
	var emu *embedded.Emulator
	u := newUpstream(t, cfg, withEmulator(wiring.Deps{KISObserver: obs}, &emu))
	ctx := t.Context()
	if _, err := wiring.BreakerOf(u).Quote(ctx, kisfeed.MustParseCode("000660")); err != nil {
		t.Fatalf("before the outage: %v", err)
	}
	emu.Server.SetOutage(time.Hour)
	if _, err := wiring.BreakerOf(u).Quote(ctx, kisfeed.MustParseCode("000660")); err == nil {
		t.Fatal("during the outage: got a quote, want an error")
	}
	if got := wiring.BreakerOf(u).State(); got != breaker.Open {
		t.Fatalf("state %s, want open", got)
	}
	emu.Server.SetOutage(0)
	// No probe: nothing reaches the upstream while the circuit is open.
	<-obs.failed // the call's own failure
	select {
	case err := <-obs.failed:
		t.Errorf("a request failed while the circuit was open with the probe off: %v", err)
	default:
	}
	if got := wiring.BreakerOf(u).RetryAfter(); got < 59*time.Minute {
		t.Errorf("RetryAfter with the probe off: got %s, want the hour's delay", got)
	}
}
