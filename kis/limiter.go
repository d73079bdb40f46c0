package kis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Pacing constants. KIS counts requests per app key in a one-second window
// we cannot see and that is not aligned with ours, and it counts arrivals,
// not our departures: scheduling and network jitter can squeeze one more
// request into a window than an exact 1/rate spacing allows. So the client
// paces evenly (burst 1) at a little under the configured rate.
const (
	// headroom is the share of the configured rate actually used: at 18/s
	// that is 17.46/s, 57.3 s for 1,000 calls, and 19 consecutive requests
	// span at least 1.03 s, so jitter up to 30 ms cannot put 19 in one
	// KIS window.
	headroom = 0.97
	// backoffFactor scales the rate down on an EGW00201 answer.
	backoffFactor = 0.75
	// minRateShare is the floor as a share of the configured rate.
	minRateShare = 0.1
	// debounce ignores further EGW00201 answers right after a decrease:
	// requests already paced at the old rate are still in flight.
	debounce = time.Second
	// quietPeriod is how long without EGW00201 before creeping up a step.
	quietPeriod = 3 * time.Second
	// probeQuiet is the quiet spell before probing above a rate that
	// drew EGW00201 before.
	probeQuiet = 30 * time.Second
	// probeStep is how far above the last known-good rate a probe goes
	// once the bracket has closed, as a share of the configured rate.
	probeStep = 0.02
	// minService is the floor of the service-time estimate: even a fast
	// upstream (the emulator on loopback answers in a millisecond) needs
	// scheduling, a token check and decoding, and one sample below it
	// says little about the next answer.
	minService = 20 * time.Millisecond
	// srttGain and varGain are the EWMA gains of the mean and the mean
	// deviation of recent response times (RFC 6298's 1/8 and 1/4), and
	// varFactor how many deviations above the mean the estimate sits: a
	// high percentile, so that a call admitted as "can finish" nearly
	// always does.
	srttGain  = 0.125
	varGain   = 0.25
	varFactor = 4
	// serviceHalfLife is how fast the estimate forgets without new
	// samples: it halves every serviceHalfLife since the last answer.
	// Only answered calls feed it, and a high estimate refuses the short-
	// deadline calls that would bring it down again; without decay one
	// slow answer could keep refusing every short call (a breaker's
	// recovery probe, a refresh-ahead batch) for as long as nothing with
	// a long deadline happens to pass.
	serviceHalfLife = 5 * time.Second
)

// errNoTime is the pacer's refusal: the next slot plus the time the
// upstream takes to answer would end past the caller's deadline. It is
// wrapped with [ErrLimiterDeadline].
var errNoTime = errors.New("no time left to get the answer")

// pacer is the client's rate limiter: a token bucket with burst 1 shared by
// every goroutine, a bounded queue, and an adaptive rate.
//
// Adaptation brackets KIS's real limit: bad is the lowest rate that drew
// EGW00201, good the highest rate that ran a quiet period without one. On
// a rate-limit answer the rate drops to good (or ×0.75 when nothing is
// known good yet); after each quiet period it moves halfway towards bad,
// and once the bracket is narrow it probes a step above it, so a limit
// lowered without notice costs seconds and a limit raised again is found.
type pacer struct {
	lim        *rate.Limiter
	configured float64 // requests/s asked for (before headroom)
	maxQueue   int64
	waiting    atomic.Int64
	now        func() time.Time // real time; faked only by synctest

	mu         sync.Mutex
	cur        float64   // guarded by mu: effective rate now
	good, bad  float64   // guarded by mu: the bracket; bad = ceiling
	lastDown   time.Time // guarded by mu
	lastChange time.Time // guarded by mu
	srtt       float64   // guarded by mu: EWMA of response times, seconds; 0 = no sample yet
	rttvar     float64   // guarded by mu: EWMA of their mean deviation, seconds
	lastObs    time.Time // guarded by mu: when the last sample came
}

func newPacer(perSecond float64, maxQueue int) *pacer {
	eff := perSecond * headroom
	p := &pacer{
		lim:        rate.NewLimiter(rate.Limit(eff), 1),
		configured: perSecond,
		maxQueue:   int64(maxQueue),
		now:        time.Now,
		cur:        eff,
		bad:        eff,
	}
	p.lastChange = p.now()
	return p
}

// wait blocks until a request may go. It fails fast with ErrQueueFull when
// too many callers already wait, and with an error wrapping
// [ErrLimiterDeadline] when the request could not finish before ctx's
// deadline: the wait for a slot plus [pacer.service] would end past it. A
// request refused so gives its slot back (the reservation is cancelled),
// so a call that would be abandoned before its answer arrives costs no
// share of the rate budget — under overload such calls were a third of
// all upstream requests, each answered by KIS and thrown away.
func (p *pacer) wait(ctx context.Context) (time.Duration, error) {
	if n := p.waiting.Add(1); n > p.maxQueue {
		p.waiting.Add(-1)
		return 0, ErrQueueFull
	}
	defer p.waiting.Add(-1)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	p.creep()
	start := p.now()
	r := p.lim.ReserveN(start, 1)
	if !r.OK() {
		return 0, fmt.Errorf("rate limiter: %w", ErrLimiterDeadline) // burst 1 always fits; kept for safety
	}
	delay := r.DelayFrom(start)
	if dl, ok := ctx.Deadline(); ok {
		if need := delay + p.service(); start.Add(need).After(dl) {
			r.CancelAt(start)
			return 0, fmt.Errorf("%w: next slot in %s, answer in about %s, deadline in %s: %w",
				ErrLimiterDeadline, delay.Round(time.Millisecond), (need - delay).Round(time.Millisecond),
				dl.Sub(start).Round(time.Millisecond), errNoTime)
		}
	}
	if delay <= 0 {
		return 0, nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return p.now().Sub(start), nil
	case <-ctx.Done():
		// Give the slot back for the callers behind this one.
		r.CancelAt(p.now())
		return p.now().Sub(start), ctx.Err()
	}
}

// observe feeds one response time (request sent to body read) into the
// service-time estimate.
func (p *pacer) observe(d time.Duration) {
	if d < 0 {
		return
	}
	x := d.Seconds()
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastObs = now
	if p.srtt == 0 {
		p.srtt, p.rttvar = x, x/2
		return
	}
	dev := p.srtt - x
	if dev < 0 {
		dev = -dev
	}
	p.rttvar += varGain * (dev - p.rttvar)
	p.srtt += srttGain * (x - p.srtt)
}

// service is how long a request is expected to take once it leaves: a
// high percentile of this client's recent response times (mean plus four
// mean deviations, as TCP estimates its retransmission timeout), at least
// minService. Before the first answer it is minService; it halves every
// serviceHalfLife without a new answer.
func (p *pacer) service() time.Duration {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	sec := p.srtt + varFactor*p.rttvar
	if age := now.Sub(p.lastObs); !p.lastObs.IsZero() && age > 0 {
		sec *= math.Exp2(-age.Seconds() / serviceHalfLife.Seconds())
	}
	return max(time.Duration(sec*float64(time.Second)), minService)
}

// current returns the effective rate.
func (p *pacer) current() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// rateLimited lowers the rate after an EGW00201 answer.
func (p *pacer) rateLimited() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if !p.lastDown.IsZero() && now.Sub(p.lastDown) < debounce {
		return
	}
	floor := p.configured * minRateShare
	r := p.cur
	var next float64
	switch {
	case p.good > 0 && r <= p.good*1.001:
		// A rate that ran quietly before was refused: jitter at the edge
		// of the limit, or the limit moved down a little. Step down
		// gently; a real drop brings more rejections and more steps.
		next = r * 0.95
		p.good = next
	case p.good > 0:
		next = p.good // a probe above the last good rate failed
	default:
		next = r * backoffFactor // nothing known good yet
	}
	p.bad = r
	p.set(max(next, floor), now)
	p.lastDown = now
}

// creep raises the rate after a quiet period.
func (p *pacer) creep() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if now.Sub(p.lastChange) < quietPeriod || now.Sub(p.lastDown) < quietPeriod {
		return
	}
	top := p.configured * headroom
	if p.cur >= top {
		return
	}
	p.good = max(p.good, p.cur)
	next := p.cur + (p.bad-p.cur)/2
	if p.bad-p.cur < p.configured*probeStep {
		// Bracket closed: probe a step above the old ceiling, so a limit
		// KIS raised again is found, but only after a longer quiet spell:
		// each probe at a real limit costs a rejection and a retry.
		if now.Sub(p.lastDown) < probeQuiet {
			return
		}
		next = p.cur + p.configured*probeStep
		p.bad = max(p.bad, next)
	}
	p.set(min(next, top), now)
}

func (p *pacer) set(r float64, now time.Time) {
	p.cur = r
	p.lastChange = now
	p.lim.SetLimit(rate.Limit(r))
}
