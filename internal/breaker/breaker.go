// Package breaker is a circuit-breaker [kisfeed.Source] decorator built on
// failsafe-go: after a run of consecutive upstream failures it stops
// calling the upstream for a while and answers at once with a
// *[kisfeed.UnavailableError], so an outage costs callers microseconds
// instead of timeouts, and the cache stacked above can serve stale copies.
//
// Stack it under the cache: cache(breaker(upstream)).
//
// What counts as a failure: any error except business errors
// ([kisfeed.IsBusinessError]: bad input, unknown code, no data), errors the
// [WithNeutral] predicate excludes (the factory excludes KIS rate-limit
// back-pressure) and the caller's own cancellation or deadline. A result
// that started before the last state change is ignored, so a slow call
// from before the circuit opened cannot close it again.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"github.com/kisfeed/kisfeed"
)

// State is the circuit state.
type State string

// The circuit states.
const (
	// Closed: calls go through; failures are counted.
	Closed State = "closed"
	// Open: calls fail fast without reaching the upstream.
	Open State = "open"
	// HalfOpen: a limited number of trial calls go through; a success
	// closes the circuit, a failure opens it again.
	HalfOpen State = "half-open"
)

// Defaults, matching BREAKER_FAILURES, BREAKER_DELAY and BREAKER_SUCCESSES.
const (
	DefaultFailures  = 5
	DefaultDelay     = 60 * time.Second
	DefaultSuccesses = 1
)

// Breaker is the circuit-breaking Source. Build it with [New].
type Breaker struct {
	up       kisfeed.Source
	cb       circuitbreaker.CircuitBreaker[any]
	log      *slog.Logger
	neutral  func(error) bool
	onChange func(from, to State)

	failures, successes uint
	delay               time.Duration

	gen atomic.Uint64 // bumped on every state change

	mu      sync.Mutex // guards lastErr
	lastErr error
}

var _ kisfeed.Source = (*Breaker)(nil)

// Option configures a [Breaker].
type Option func(*Breaker) error

// WithFailures sets how many consecutive failures open the circuit
// (default 5).
func WithFailures(n int) Option {
	return func(b *Breaker) error {
		if n < 1 {
			return fmt.Errorf("breaker: failures %d: want 1 or more", n)
		}
		b.failures = uint(n)
		return nil
	}
}

// WithDelay sets how long the circuit stays open before trial calls
// (default 60s).
func WithDelay(d time.Duration) Option {
	return func(b *Breaker) error {
		if d <= 0 {
			return fmt.Errorf("breaker: delay %s: want > 0", d)
		}
		b.delay = d
		return nil
	}
}

// WithSuccesses sets how many half-open trial calls run and must all
// succeed to close the circuit (default 1).
func WithSuccesses(n int) Option {
	return func(b *Breaker) error {
		if n < 1 {
			return fmt.Errorf("breaker: successes %d: want 1 or more", n)
		}
		b.successes = uint(n)
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

// WithOnStateChange calls f after every state change (e.g. to set a gauge).
// f runs synchronously on the goroutine whose call changed the state; it
// may call [Breaker.State].
func WithOnStateChange(f func(from, to State)) Option {
	return func(b *Breaker) error { b.onChange = f; return nil }
}

// WithNeutral marks errors that are neither failures nor trouble: the
// upstream answered but pushed back (e.g. a rate-limit response). They do
// not count toward opening the circuit.
func WithNeutral(f func(error) bool) Option {
	return func(b *Breaker) error { b.neutral = f; return nil }
}

// New returns a Breaker around upstream.
func New(upstream kisfeed.Source, opts ...Option) (*Breaker, error) {
	if upstream == nil {
		return nil, errors.New("breaker: upstream is required")
	}
	b := &Breaker{
		up: upstream, log: slog.New(slog.DiscardHandler), neutral: func(error) bool { return false },
		failures: DefaultFailures, successes: DefaultSuccesses, delay: DefaultDelay,
	}
	for _, o := range opts {
		if err := o(b); err != nil {
			return nil, err
		}
	}
	b.cb = circuitbreaker.NewBuilder[any]().
		WithFailureThreshold(b.failures).
		WithSuccessThreshold(b.successes).
		WithDelay(b.delay).
		OnStateChanged(b.changed).
		Build()
	return b, nil
}

func convert(s circuitbreaker.State) State {
	switch s {
	case circuitbreaker.OpenState:
		return Open
	case circuitbreaker.HalfOpenState:
		return HalfOpen
	}
	return Closed
}

// changed runs outside failsafe's lock after each transition.
func (b *Breaker) changed(e circuitbreaker.StateChangedEvent) {
	b.gen.Add(1)
	from, to := convert(e.OldState), convert(e.NewState)
	switch to {
	case Open:
		b.mu.Lock()
		last := b.lastErr
		b.mu.Unlock()
		b.log.Warn("circuit breaker opened: failing fast", "from", string(from), "retry_after", b.delay, "last_error", errString(last))
	case HalfOpen:
		b.log.Info("circuit breaker half-open: letting trial calls through")
	case Closed:
		b.log.Info("circuit breaker closed: upstream healthy again", "from", string(from))
	}
	if b.onChange != nil {
		b.onChange(from, to)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// State returns the circuit state. An open circuit whose delay has passed
// reports HalfOpen: the next call is a trial.
func (b *Breaker) State() State {
	s := convert(b.cb.State())
	if s == Open && b.cb.RemainingDelay() == 0 {
		return HalfOpen
	}
	return s
}

// RetryAfter returns how long an open circuit stays open; 0 otherwise.
func (b *Breaker) RetryAfter() time.Duration { return b.cb.RemainingDelay() }

// Health reports whether the circuit would refuse a call now: a
// *[kisfeed.UnavailableError] (with RetryAfter and the last failure) while
// it is open, nil when it is closed or ready for a trial (an open circuit
// whose delay has passed, or half-open). A failed half-open trial opens
// the circuit again, so Health errs again from then on. It takes no
// permit and makes no call, so it is cheap enough for every cache hit
// (see cache.WithUpstreamHealth).
func (b *Breaker) Health(context.Context) error {
	if b.State() != Open {
		return nil
	}
	return b.unavailable()
}

// unavailable is the fast answer while the circuit refuses calls.
func (b *Breaker) unavailable() error {
	b.mu.Lock()
	last := b.lastErr
	b.mu.Unlock()
	retry := b.cb.RemainingDelay()
	if retry <= 0 {
		// Half-open with every trial permit taken: retry soon.
		retry = time.Second
	}
	return &kisfeed.UnavailableError{RetryAfter: retry, Err: last}
}

// callerGaveUp reports whether err is the caller's own cancellation or
// deadline rather than the upstream's failure.
func callerGaveUp(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// record feeds one call's outcome to the circuit, unless the state changed
// while the call ran.
func (b *Breaker) record(ctx context.Context, gen uint64, err error) {
	if b.gen.Load() != gen {
		return
	}
	var be *kisfeed.BatchError
	switch {
	case err == nil || kisfeed.IsBusinessError(err) || errors.As(err, &be) || b.neutral(err):
		b.cb.RecordSuccess()
	case callerGaveUp(ctx, err):
		// Not the upstream's fault, so it must not count in the closed
		// state; but a half-open trial permit has to be given back, and
		// the only way failsafe-go releases it is a result. Counting it as
		// a failure re-opens the circuit: the safe choice when we could
		// not learn whether the upstream is back.
		if b.cb.IsHalfOpen() {
			b.fail(err)
		}
	default:
		b.fail(err)
	}
}

func (b *Breaker) fail(err error) {
	b.mu.Lock()
	b.lastErr = err
	b.mu.Unlock()
	b.cb.RecordFailure()
}

// call runs fn through the circuit.
func call[T any](ctx context.Context, b *Breaker, fn func(context.Context) (T, error)) (T, error) {
	if !b.cb.TryAcquirePermit() {
		var zero T
		return zero, b.unavailable()
	}
	gen := b.gen.Load()
	v, err := fn(ctx)
	b.record(ctx, gen, err)
	return v, err
}

// Quote calls the upstream through the circuit.
func (b *Breaker) Quote(ctx context.Context, code string) (*kisfeed.Quote, error) {
	if err := kisfeed.ValidateCode(code); err != nil {
		return nil, err
	}
	return call(ctx, b, func(ctx context.Context) (*kisfeed.Quote, error) { return b.up.Quote(ctx, code) })
}

// Quotes calls the upstream through the circuit; a *BatchError counts as
// success (the upstream answered).
func (b *Breaker) Quotes(ctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
	return call(ctx, b, func(ctx context.Context) ([]*kisfeed.Quote, error) { return b.up.Quotes(ctx, codes) })
}

// OrderBook calls the upstream through the circuit.
func (b *Breaker) OrderBook(ctx context.Context, code string) (*kisfeed.OrderBook, error) {
	if err := kisfeed.ValidateCode(code); err != nil {
		return nil, err
	}
	return call(ctx, b, func(ctx context.Context) (*kisfeed.OrderBook, error) { return b.up.OrderBook(ctx, code) })
}

// Candles calls the upstream through the circuit.
func (b *Breaker) Candles(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
	if err := kisfeed.ValidateCode(q.Code); err != nil {
		return nil, err
	}
	return call(ctx, b, func(ctx context.Context) (*kisfeed.Candles, error) { return b.up.Candles(ctx, q) })
}

// StockInfo calls the upstream through the circuit.
func (b *Breaker) StockInfo(ctx context.Context, code string) (*kisfeed.StockInfo, error) {
	if err := kisfeed.ValidateCode(code); err != nil {
		return nil, err
	}
	return call(ctx, b, func(ctx context.Context) (*kisfeed.StockInfo, error) { return b.up.StockInfo(ctx, code) })
}

// Universe calls the upstream through the circuit.
func (b *Breaker) Universe(ctx context.Context) ([]kisfeed.Stock, error) {
	return call(ctx, b, func(ctx context.Context) ([]kisfeed.Stock, error) { return b.up.Universe(ctx) })
}

// IsTradingDay calls the upstream through the circuit.
func (b *Breaker) IsTradingDay(ctx context.Context, date time.Time) (bool, error) {
	return call(ctx, b, func(ctx context.Context) (bool, error) { return b.up.IsTradingDay(ctx, date) })
}
