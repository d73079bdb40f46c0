package cache

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/kisfeed/kisfeed"
)

// The shared lookup path.

// result is what a flight hands to each of its callers.
type result[T any] struct {
	val     T
	origin  kisfeed.Origin
	expires time.Time
}

// A flight started by a caller with a deadline hands the upstream a
// context with two instants (see answerBy):
//
//   - its Deadline, "answer by", is that caller's deadline minus a margin
//     (a quarter of its time left, at most maxDeadlineMargin);
//   - it is cancelled only at that caller's deadline plus a grace (a
//     quarter of its time left, at most maxLateGrace), or at the flight
//     timeout, whichever is sooner.
const (
	maxDeadlineMargin = 250 * time.Millisecond
	maxLateGrace      = time.Second
)

// DefaultStaleBudget is how long a lookup with a stale copy waits for the
// upstream before answering with that copy, when [WithStaleBudget] is not
// given.
const DefaultStaleBudget = 150 * time.Millisecond

// flightBounds returns, for a flight started by a caller with ctx, how long
// from now the flight may run (cancel) and, when that caller has a
// deadline, how long from now the upstream should have answered (by; ok
// false without a caller deadline: the flight timeout is both).
func (c *Cache) flightBounds(ctx context.Context) (cancel, by time.Duration, ok bool) {
	cancel = c.flightTimeout
	dl, ok := ctx.Deadline()
	if !ok {
		return cancel, cancel, false
	}
	left := max(time.Until(dl), 0)
	by = min(cancel, left-min(maxDeadlineMargin, left/4))
	cancel = min(cancel, left+min(maxLateGrace, left/4))
	return cancel, by, true
}

// answerBy is a flight's context when its starting caller has a deadline:
// cancelled at that deadline plus a grace, but reporting as its Deadline
// the earlier instant by which the upstream should answer.
//
// Why two instants: the flight's context is all the upstream sees, and
// the kis client's rate limiter decides from its Deadline whether a call
// can still be made — it takes a rate slot only when the call can finish
// by then, and refuses at once otherwise (x/time/rate: "would exceed
// context deadline"). That instant must leave the caller time to be
// answered: a slot granted later produces an answer nobody waits for, and
// under overload the caller would wait for its own deadline (a 504)
// instead of getting a fast refusal (a 503, or its stale copy). So the
// Deadline is the caller's minus a margin, as it always was. But a call
// that did get its slot and was sent should not be abandoned the moment
// the caller leaves: KIS answers it anyway (the rate slot is spent), and
// its answer serves the callers that joined the flight later and the next
// ones. So cancellation waits for a grace past the caller's deadline, and
// an answer arriving in it is stored. Handing down the flight timeout
// (minutes) instead would let an overloaded limiter queue calls minutes
// long. Consumers that read the Deadline (the limiter, a dialer, a derived
// per-attempt timeout) only ever plan to finish earlier than the real
// cancellation, never later.
type answerBy struct {
	context.Context
	by time.Time
}

// Deadline reports the answer-by instant.
func (a answerBy) Deadline() (time.Time, bool) { return a.by, true }

// startFlight starts fn once for concurrent callers of key, detached from
// any one caller's context and bounded as [Cache.flightBounds] says for
// the caller that starts it; callers receive its result on the channel. A
// flight cut off by its bound fails with a *timeoutError naming subj and
// the bound ("quote 005930: upstream did not answer within 30s: ..."),
// not a bare "context deadline exceeded" that says neither what nor how
// long.
func (c *Cache) startFlight(ctx context.Context, key string, subj subject, fn func(ctx context.Context) (any, error)) <-chan singleflight.Result {
	return c.flight.DoChan(key, func() (any, error) {
		d, by, ok := c.flightBounds(ctx)
		start := time.Now()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
		defer cancel()
		var uctx context.Context = fctx
		if ok && by < d {
			uctx = answerBy{fctx, start.Add(by)}
		}
		v, err := fn(uctx)
		if err != nil && errors.Is(fctx.Err(), context.DeadlineExceeded) && errors.Is(err, context.DeadlineExceeded) {
			err = newTimeoutError(subj, d, err)
		}
		return v, err
	})
}

// errBudget is what awaitFlight returns when the stale budget passed
// before the flight ended; the flight goes on.
var errBudget = errors.New("cache: stale budget passed")

// awaitFlight waits for a flight's result, or ctx's end, or — when
// withBudget is set and the cache has a stale budget — for the budget,
// reporting errBudget then.
func (c *Cache) awaitFlight(ctx context.Context, ch <-chan singleflight.Result, withBudget bool) (any, error) {
	var budget <-chan time.Time
	if withBudget && c.staleBudget > 0 {
		t := time.NewTimer(c.staleBudget)
		defer t.Stop()
		budget = t.C
	}
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-budget:
		return nil, errBudget
	}
}

// subject names what a lookup fetches, for its errors: "quote" and
// "005930". Kept in two parts so that naming costs nothing until an error
// is reported.
type subject struct {
	what, arg string
	code      kisfeed.Code // a per-code value's code (arg), for refresh-ahead
}

func (s subject) String() string {
	if s.arg == "" {
		return s.what
	}
	return s.what + " " + s.arg
}

// timeoutError is a flight cut off by its bound (the flight timeout, or
// the starting caller's deadline plus its grace). It is an upstream failure: it matches
// kisfeed.ErrUnavailable, and context.DeadlineExceeded through Err.
type timeoutError struct {
	subj  subject
	after time.Duration
	err   error // the upstream's error, a context.DeadlineExceeded
}

// newTimeoutError wraps err, dropping the *kisfeed.UnavailableError a
// lookup may have put around it: the timeoutError says as much itself.
func newTimeoutError(subj subject, after time.Duration, err error) *timeoutError {
	var ue *kisfeed.UnavailableError
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	return &timeoutError{subj: subj, after: after.Round(time.Millisecond), err: err}
}

func (e *timeoutError) Error() string {
	return e.subj.String() + ": upstream did not answer within " + e.after.String() + ": " + e.err.Error()
}

// Is makes errors.Is(err, kisfeed.ErrUnavailable) true.
func (e *timeoutError) Is(target error) bool { return target == kisfeed.ErrUnavailable }

func (e *timeoutError) Unwrap() error { return e.err }

// unavailable turns an upstream failure into the error callers get when no
// stale copy can stand in.
func unavailable(err error) error {
	if errors.Is(err, kisfeed.ErrUnavailable) || errors.Is(err, context.Canceled) {
		return err
	}
	return &kisfeed.UnavailableError{Err: err}
}
