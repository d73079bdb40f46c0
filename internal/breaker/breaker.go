// Package breaker is a circuit-breaker [kisfeed.Source] decorator: after a
// run of consecutive upstream failures it stops calling the upstream for a
// while and answers at once with a *[kisfeed.UnavailableError], so an
// outage costs callers microseconds instead of timeouts, and the cache
// stacked above can serve stale copies.
//
// Stack it under the cache: cache(breaker(upstream)). Codes arrive parsed
// ([kisfeed.Code]: the edge checked them), so it checks none.
//
// Every outcome is one of three kinds, as sony/gobreaker v2 separates
// IsSuccessful from IsExcluded:
//
//   - success: the upstream answered, so it is healthy. It resets the
//     consecutive-failure count and counts toward closing a half-open
//     circuit. A nil error, a "not found" ([kisfeed.ErrNotFound]: KIS
//     looked the code up and said it has no such stock or no data) and a
//     *[kisfeed.BatchError] (the batch was answered; some codes failed on
//     their own) are successes.
//   - excluded: the outcome says nothing about the upstream's health:
//     the call was refused locally before it reached the upstream (our
//     rate limiter's deadline, a full queue), the caller cancelled or its
//     deadline passed, the parameters were rejected ([kisfeed.ErrInvalid],
//     which the kis package mostly decides locally, before any request),
//     or the [WithNeutral] predicate matched (the factory excludes KIS
//     rate-limit back-pressure and the local refusals). An excluded
//     outcome neither closes the circuit nor resets the count, and a
//     half-open trial that ends excluded gives its trial permit back, so
//     another trial can find out whether the upstream is back.
//   - failure: anything else (5xx, timeouts, refused or reset
//     connections). Failures in a row open the circuit; a failed trial
//     opens it again.
//
// A result that started before the last state change is ignored, so a
// slow call from before the circuit opened cannot close it again.
//
// Failed attempts inside one call can be reported as they happen with
// [Breaker.AttemptFailed] (the kis client does so through its retry gate),
// so a connection-level outage opens the circuit after a few failed
// exchanges instead of after several calls have exhausted their retries;
// [Breaker.RetryAllowed] then stops the retries an open circuit would
// waste.
//
// # Recovery probe
//
// An open circuit lets no call through until its delay has passed, so
// without help an outage that ends a second after the circuit opened is
// noticed only BREAKER_DELAY later (10–60 s of stale data). With
// [WithProbe], a goroutine owned by the breaker calls a probe function —
// one cheap real request — every probe interval while the circuit is
// open. A probe that succeeds ends the open period at once and counts as
// the first half-open trial, so with the default of one trial it closes
// the circuit; a probe that fails or proves nothing keeps it open (the
// delay still runs, as the backstop). The goroutine exists only while the
// circuit is open: it starts on opening, is cancelled on leaving open,
// and [Breaker.Close] cancels it and waits for it.
//
// The probe counts as the trial, rather than only making the next call
// one, because a replica taken out of service while degraded (readiness
// fails while the circuit is not closed) gets no calls at all: it would
// stay half-open, and unready, for good. The probe is a real request
// through the same client, token, rate limiter and connection pool as the
// calls it stands for, so its success proves what a trial call's would.
//
// The breaker is its own small state machine rather than failsafe-go's:
// failsafe-go v0.9 gives a half-open trial permit back only when a result
// is recorded (success or failure), so a trial refused locally would have
// to close or re-open the circuit, which is exactly what must not happen.
package breaker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

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

// Defaults of the package. BREAKER_DELAY and BREAKER_SUCCESSES default to
// the same; BREAKER_FAILURES defaults to 3 (see config.Config), because
// kisfeed counts every failed attempt and probes for recovery, so an early
// opening is cheap to undo.
const (
	DefaultFailures  = 5
	DefaultDelay     = 60 * time.Second
	DefaultSuccesses = 1
)

// MaxProbeTimeout bounds one recovery probe (a shorter probe interval
// bounds it more): a healthy upstream answers one price request in tens
// of milliseconds, KIS's mock server in well under a second, so a probe
// still waiting after 2 s has found the upstream as unhealthy as a failed
// one, and the next probe should not wait for it.
const MaxProbeTimeout = 2 * time.Second

// Breaker is the circuit-breaking Source. Build it with [New].
type Breaker struct {
	up       kisfeed.Source
	log      *slog.Logger
	neutral  func(error) bool
	onChange func(from, to State)
	now      func() time.Time

	failures, successes int
	delay               time.Duration

	probe        func(context.Context) error // nil: no recovery probe
	probeEvery   time.Duration
	probeTimeout time.Duration

	mu        sync.Mutex         // guards the fields below, and probes.Add
	state     State              // Open stays Open after its delay until a call asks
	gen       uint64             // bumped on every state change
	failed    int                // closed: consecutive failures
	openedAt  time.Time          // open: when
	permits   int                // half-open: trial permits left
	passed    int                // half-open: successful trials
	lastErr   error              // the last failure, for the fast answer and logs
	stopProbe context.CancelFunc // open: cancels the running probe loop; nil when none runs
	closed    bool               // Close was called: no probe loop starts any more
	probes    sync.WaitGroup     // probe loops, waited for by Close
}

var _ kisfeed.Source = (*Breaker)(nil)

// New returns a Breaker around upstream.
func New(upstream kisfeed.Source, opts ...Option) (*Breaker, error) {
	if upstream == nil {
		return nil, errors.New("breaker: upstream is required")
	}
	b := &Breaker{
		up: upstream, log: slog.New(slog.DiscardHandler), neutral: func(error) bool { return false },
		now: time.Now, failures: DefaultFailures, successes: DefaultSuccesses, delay: DefaultDelay,
		state: Closed,
	}
	for _, o := range opts {
		if err := o(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// change is one state transition, announced after the lock is released.
type change struct{ from, to State }

// setState moves to s; the caller holds b.mu and announces the result.
func (b *Breaker) setState(s State) change {
	c := change{from: b.state, to: s}
	if c.from == s {
		return change{}
	}
	b.state = s
	b.gen++
	switch s {
	case Closed:
		b.failed = 0
	case Open:
		b.openedAt = b.now()
		b.startProbeLocked()
	case HalfOpen:
		b.permits, b.passed = b.successes, 0
	}
	if c.from == Open && b.stopProbe != nil {
		// Leaving open: the probe has nothing left to find out. It is
		// cancelled, not waited for: the probe loop itself may be the
		// caller.
		b.stopProbe()
		b.stopProbe = nil
	}
	return c
}

// startProbeLocked starts the probe loop for the open period that has just
// begun (generation b.gen); the caller holds b.mu.
func (b *Breaker) startProbeLocked() {
	if b.probe == nil || b.closed || b.stopProbe != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.stopProbe = cancel
	b.probes.Add(1)
	go b.probeLoop(ctx, b.gen)
}

// probeLoop probes every probeEvery until ctx is cancelled (the circuit
// left open, or Close). Probes run one at a time, each bounded by
// probeTimeout, so the upstream sees at most one probe per interval.
func (b *Breaker) probeLoop(ctx context.Context, gen uint64) {
	defer b.probes.Done()
	t := time.NewTimer(b.probeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.probeOnce(ctx, gen)
		t.Reset(b.probeEvery)
	}
}

// probeOnce runs one probe for the open period gen and applies its result.
func (b *Breaker) probeOnce(ctx context.Context, gen uint64) {
	pctx, cancel := context.WithTimeout(context.WithValue(ctx, genKey{}, gen), b.probeTimeout)
	err := b.probe(pctx)
	o := b.classify(pctx, err)
	cancel()
	if ctx.Err() != nil {
		return // stopped while probing: the answer belongs to a state that is gone
	}
	b.mu.Lock()
	if b.gen != gen || b.state != Open {
		b.mu.Unlock()
		return
	}
	var c change
	switch o {
	case success:
		// The probe is the first half-open trial.
		c = b.setState(HalfOpen)
		b.permits, b.passed = b.successes-1, 1
		if b.passed >= b.successes {
			b.setState(Closed)
			c.to = Closed
		}
	case failure:
		b.lastErr = err
	}
	last := b.lastErr
	b.mu.Unlock()
	if o == success {
		b.log.Info("circuit breaker probe answered: ending the open period early")
	} else {
		b.log.Debug("circuit breaker probe failed: staying open", "err", errString(err))
	}
	b.announce(c, last)
}

// Close stops the recovery probe, if one runs, and waits for it to return;
// no probe starts after it. The breaker keeps working otherwise (an open
// circuit then waits for its delay). It never fails and is safe to call
// more than once.
func (b *Breaker) Close() error {
	b.mu.Lock()
	b.closed = true
	if b.stopProbe != nil {
		b.stopProbe()
		b.stopProbe = nil
	}
	b.mu.Unlock()
	b.probes.Wait()
	return nil
}

// announce logs c and calls the state-change callback; it runs without
// b.mu held.
func (b *Breaker) announce(c change, last error) {
	if c.to == "" {
		return
	}
	switch c.to {
	case Open:
		b.log.Warn("circuit breaker opened: failing fast", "from", string(c.from), "retry_after", b.delay, "last_error", errString(last))
	case HalfOpen:
		b.log.Info("circuit breaker half-open: letting trial calls through")
	case Closed:
		b.log.Info("circuit breaker closed: upstream healthy again", "from", string(c.from))
	}
	if b.onChange != nil {
		b.onChange(c.from, c.to)
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
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == Open && b.remainingLocked() == 0 {
		return HalfOpen
	}
	return b.state
}

// RetryAfter returns how long an open circuit stays open at most (the
// rest of its delay, or the probe interval when a recovery probe runs and
// that is sooner); 0 otherwise.
func (b *Breaker) RetryAfter() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.retryAfterLocked()
}

// retryAfterLocked is RetryAfter with b.mu held: when to try again, which
// with a running probe is no later than its next round.
func (b *Breaker) retryAfterLocked() time.Duration {
	r := b.remainingLocked()
	if r > 0 && b.stopProbe != nil {
		r = min(r, b.probeEvery)
	}
	return r
}

func (b *Breaker) remainingLocked() time.Duration {
	if b.state != Open {
		return 0
	}
	return max(0, b.delay-b.now().Sub(b.openedAt))
}

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
	retry := b.retryAfterLocked()
	b.mu.Unlock()
	if retry <= 0 {
		// Half-open with every trial permit taken: retry soon.
		retry = time.Second
	}
	return &kisfeed.UnavailableError{RetryAfter: retry, Err: last}
}

// acquire asks for a permit to call the upstream: always while closed, one
// of the trial permits while half-open (an open circuit whose delay has
// passed turns half-open here), never while open. It returns the
// generation the call belongs to.
func (b *Breaker) acquire() (gen uint64, ok bool) {
	b.mu.Lock()
	var c change
	if b.state == Open && b.remainingLocked() == 0 {
		c = b.setState(HalfOpen)
	}
	switch b.state {
	case Closed:
		ok = true
	case HalfOpen:
		if b.permits > 0 {
			b.permits--
			ok = true
		}
	}
	gen = b.gen
	b.mu.Unlock()
	b.announce(c, nil)
	return gen, ok
}

// outcome is what one call's result says about the upstream.
type outcome int

const (
	success  outcome = iota // the upstream answered
	excluded                // says nothing about the upstream's health
	failure                 // the upstream failed
)

// classify sorts a call's result. Business errors split: a "not found"
// comes back from KIS itself (rt_cd 7, or an empty answer for the code),
// so KIS parsed the request, looked the code up and answered — as good a
// proof that it is healthy as a quote; an "invalid" is mostly our own
// validation (the kis endpoints check periods, ranges and dates before
// sending anything), so it proves nothing and is excluded. Errors matching
// both (ErrNoCalendar is an ErrInvalid) are excluded: the safe side, as
// excluding only delays what a later call will tell.
func (b *Breaker) classify(ctx context.Context, err error) outcome {
	var be *kisfeed.BatchError
	switch {
	case err == nil:
		return success
	case errors.Is(err, kisfeed.ErrInvalid):
		return excluded
	case errors.Is(err, kisfeed.ErrNotFound) || errors.As(err, &be):
		return success
	case b.neutral(err) || callerGaveUp(ctx, err):
		return excluded
	}
	return failure
}

// callerGaveUp reports whether err is the caller's own cancellation or
// deadline rather than the upstream's failure.
func callerGaveUp(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// record feeds one call's outcome to the circuit, unless the state changed
// while the call ran (its permit, if any, belonged to a state that is
// gone).
func (b *Breaker) record(ctx context.Context, gen uint64, err error) {
	o := b.classify(ctx, err)
	b.mu.Lock()
	if b.gen != gen {
		b.mu.Unlock()
		return
	}
	var c change
	switch o {
	case success:
		switch b.state {
		case Closed:
			b.failed = 0
		case HalfOpen:
			if b.passed++; b.passed >= b.successes {
				c = b.setState(Closed)
			}
		}
	case excluded:
		if b.state == HalfOpen {
			// The trial never told us anything: let another one run.
			b.permits++
		}
	case failure:
		c = b.failLocked(err)
	}
	last := b.lastErr
	b.mu.Unlock()
	b.announce(c, last)
}

// failLocked counts a failure: the threshold in a row opens a closed
// circuit, and any failure re-opens a half-open one.
func (b *Breaker) failLocked(err error) change {
	b.lastErr = err
	switch b.state {
	case Closed:
		if b.failed++; b.failed >= b.failures {
			return b.setState(Open)
		}
	case HalfOpen:
		return b.setState(Open)
	}
	return change{}
}

// genKey carries, in a call's context, the generation the call belongs to,
// so attempt reports from inside the upstream are judged like the call's
// own result.
type genKey struct{}

// AttemptFailed reports one failed attempt inside a call that is about to
// be retried: a failed exchange with the upstream, counted at once rather
// than when the call's last retry fails. Only failures count (an excluded
// error, e.g. a rate-limit answer, is ignored). ctx must be the call's
// context (or derived from it): an attempt of a call that started before
// the last state change is ignored, like the call's own result. It is
// cheap and safe for concurrent use.
func (b *Breaker) AttemptFailed(ctx context.Context, err error) {
	if err == nil || b.classify(ctx, err) != failure {
		return
	}
	b.mu.Lock()
	if gen, ok := ctx.Value(genKey{}).(uint64); ok && gen != b.gen {
		b.mu.Unlock()
		return
	}
	c := b.failLocked(err)
	b.mu.Unlock()
	b.announce(c, err)
}

// RetryAllowed reports whether a call may retry now: only while the
// circuit is closed. While it is open a retry is wasted (the caller's
// fallback waits for it), and while it is half-open only trial calls,
// each with one attempt, should reach the upstream.
func (b *Breaker) RetryAllowed(context.Context) bool {
	return b.State() == Closed
}
