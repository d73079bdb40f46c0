package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Option configures a [Breaker].
type Option func(*Breaker) error

// checked is the Option that sets a setting with set when ok, its check
// of v, holds; otherwise it fails as "breaker: NAME V: want WANT".
func checked[T any](name string, v T, ok bool, want string, set func(b *Breaker)) Option {
	return func(b *Breaker) error {
		if !ok {
			return fmt.Errorf("breaker: %s %v: want %s", name, v, want)
		}
		set(b)
		return nil
	}
}

// WithFailures sets how many consecutive failures open the circuit
// (default 5).
func WithFailures(n int) Option {
	return checked("failures", n, n >= 1, "1 or more", func(b *Breaker) { b.failures = n })
}

// WithDelay sets how long the circuit stays open before trial calls
// (default 60s).
func WithDelay(d time.Duration) Option {
	return checked("delay", d, d > 0, "> 0", func(b *Breaker) { b.delay = d })
}

// WithSuccesses sets how many half-open trial calls run and must all
// succeed to close the circuit (default 1).
func WithSuccesses(n int) Option {
	return checked("successes", n, n >= 1, "1 or more", func(b *Breaker) { b.successes = n })
}

// WithProbe checks, while the circuit is open, whether the upstream is
// back: every interval a goroutine calls probe with a timeout of
// min(interval, [MaxProbeTimeout]), one probe at a time. A probe whose
// result is a success (as a call's result would be judged: nil, "not
// found", ...) moves the circuit out of open at once and counts as the
// first half-open trial, which closes it with the default of one trial.
// A failed or excluded probe changes nothing: the circuit stays open and
// its delay keeps running. probe must be one cheap real request that
// reaches the upstream as callers' requests do (same client and rate
// limiter), so that it sees HTTP-level failures, not just a TCP port. Its
// context carries the probe's circuit generation, so failed attempts
// reported through [Breaker.AttemptFailed] are judged as a call's are.
// interval 0 or a nil probe means no probe (the default); a negative
// interval is an error. Call [Breaker.Close] to stop a running probe.
func WithProbe(probe func(ctx context.Context) error, interval time.Duration) Option {
	return func(b *Breaker) error {
		if interval < 0 {
			return fmt.Errorf("breaker: probe interval %s: want >= 0 (0 = no probe)", interval)
		}
		if probe == nil || interval == 0 {
			b.probe, b.probeEvery = nil, 0
			return nil
		}
		b.probe, b.probeEvery, b.probeTimeout = probe, interval, min(interval, MaxProbeTimeout)
		return nil
	}
}

// WithLogger logs state changes to l.
func WithLogger(l *slog.Logger) Option {
	return func(b *Breaker) error {
		if l != nil {
			b.log = l
		}
		return nil
	}
}

// WithClock sets the clock that times the open delay (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(b *Breaker) error {
		if now == nil {
			return errors.New("breaker: clock: want non-nil")
		}
		b.now = now
		return nil
	}
}

// WithOnStateChange calls f after every state change (e.g. to set a gauge).
// f runs synchronously on the goroutine whose call changed the state,
// outside the breaker's lock; it may call [Breaker.State].
func WithOnStateChange(f func(from, to State)) Option {
	return func(b *Breaker) error { b.onChange = f; return nil }
}

// WithNeutral marks errors as excluded: they say nothing about the
// upstream's health (it pushed back, e.g. a rate-limit answer, or was
// never asked, e.g. a local limiter refusal). They neither count toward
// opening the circuit nor reset the count, and a half-open trial ending
// with one gives its permit back.
func WithNeutral(f func(error) bool) Option {
	return func(b *Breaker) error {
		if f != nil {
			b.neutral = f
		}
		return nil
	}
}
