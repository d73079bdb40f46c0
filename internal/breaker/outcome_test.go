package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/breaker"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
)

// Local refusals and back-pressure as the factory's neutral predicate
// sees them (kis.ErrLimiterDeadline, kis.ErrQueueFull, kis.ErrRateLimited).
var (
	errLimiter   = errors.New("rate limiter: wait would end past the deadline")
	errQueueFull = errors.New("rate limiter queue full")
	errRateLimit = errors.New("EGW00201 rate limited")
)

func isNeutral(err error) bool {
	return errors.Is(err, errLimiter) || errors.Is(err, errQueueFull) || errors.Is(err, errRateLimit)
}

// step is one scripted upstream answer. cancel makes the caller give up
// (its context is cancelled and the upstream returns context.Canceled).
type step struct {
	err    error
	cancel bool
}

var (
	s5xx      = step{err: err5xx}
	sOK       = step{}
	sLimiter  = step{err: fmt.Errorf("quote 005930: %w", errLimiter)}
	sQueue    = step{err: fmt.Errorf("quote 005930: %w", errQueueFull)}
	sRateLim  = step{err: errRateLimit}
	sCancel   = step{cancel: true}
	sNotFound = step{err: fmt.Errorf("stock 999999: %w", kisfeed.ErrNotFound)}
	sInvalid  = step{err: fmt.Errorf("%w: period %q", kisfeed.ErrInvalid, "X")}
	sBatch    = step{err: &kisfeed.BatchError{}}
)

// scripted runs steps through b, one call each, and returns how many
// reached the upstream.
func scripted(t *testing.T, steps []step, opts ...breaker.Option) (*breaker.Breaker, func([]step) int) {
	t.Helper()
	var next error
	calls := 0
	up := &sourcetest.Func{QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
		calls++
		if next != nil {
			return nil, next
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return &kisfeed.Quote{Code: code}, nil
	}}
	b, err := breaker.New(up, append([]breaker.Option{breaker.WithNeutral(isNeutral)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	run := func(steps []step) int {
		before := calls
		for _, s := range steps {
			ctx, cancel := context.WithCancel(t.Context())
			next = s.err
			if s.cancel {
				cancel()
			}
			_, _ = b.Quote(ctx, kisfeed.MustParseCode("005930"))
			cancel()
		}
		return calls - before
	}
	return b, run
}

func repeat(n int, s step) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func concat(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestExcludedNeitherClosesNorResets: in the closed state only genuine
// answers (a quote, a "not found", a batch answer) reset the run of
// failures; local refusals, back-pressure, a caller giving up and
// rejected parameters leave it as it is, so 5xx failures interleaved with
// them still open the circuit at the fifth.
func TestExcludedNeitherClosesNorResets(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  breaker.State
	}{
		{"5xx interleaved with limiter deadlines and full queues",
			[]step{s5xx, sLimiter, s5xx, sQueue, s5xx, sLimiter, s5xx, sQueue, s5xx}, breaker.Open},
		{"5xx interleaved with rate-limit answers", []step{s5xx, sRateLim, s5xx, sRateLim, s5xx, sRateLim, s5xx, sRateLim, s5xx}, breaker.Open},
		{"5xx interleaved with callers giving up", []step{s5xx, sCancel, s5xx, sCancel, s5xx, sCancel, s5xx, sCancel, s5xx}, breaker.Open},
		{"rejected parameters do not reset", concat(repeat(4, s5xx), []step{sInvalid}, []step{s5xx}), breaker.Open},
		{"four 5xx stay closed", concat(repeat(4, s5xx), repeat(20, sLimiter)), breaker.Closed},
		{"a quote resets", concat(repeat(4, s5xx), []step{sOK}, repeat(4, s5xx)), breaker.Closed},
		{"not found is KIS answering: resets", concat(repeat(4, s5xx), []step{sNotFound}, repeat(4, s5xx)), breaker.Closed},
		{"a batch answer resets", concat(repeat(4, s5xx), []step{sBatch}, repeat(4, s5xx)), breaker.Closed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, run := scripted(t, nil)
			run(tt.steps)
			if got := b.State(); got != tt.want {
				t.Errorf("state: got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestHalfOpenTrialOutcomes: a trial that never reached KIS (or whose
// answer says nothing about it) keeps the circuit half-open and gives its
// permit back, so the very next call is another trial; only a genuine
// answer closes the circuit and only a failure re-opens it.
func TestHalfOpenTrialOutcomes(t *testing.T) {
	tests := []struct {
		name      string
		trial     step
		want      breaker.State
		nextTrial bool // the next call reaches the upstream at once
	}{
		{"limiter deadline", sLimiter, breaker.HalfOpen, true},
		{"queue full", sQueue, breaker.HalfOpen, true},
		{"caller cancelled", sCancel, breaker.HalfOpen, true},
		{"rate-limit answer", sRateLim, breaker.HalfOpen, true},
		{"rejected parameters", sInvalid, breaker.HalfOpen, true},
		{"quote", sOK, breaker.Closed, true},
		{"not found", sNotFound, breaker.Closed, true},
		{"5xx", s5xx, breaker.Open, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr := &transitions{}
				b, run := scripted(t, nil, breaker.WithDelay(10*time.Second), breaker.WithOnStateChange(tr.add))
				run(repeat(5, s5xx))
				time.Sleep(10 * time.Second)
				if got := run([]step{tt.trial}); got != 1 {
					t.Fatalf("trial: %d upstream calls, want 1", got)
				}
				if got := b.State(); got != tt.want {
					t.Errorf("after the trial: state %s, want %s (transitions %s)", got, tt.want, tr)
				}
				got := run([]step{sLimiter}) == 1
				if got != tt.nextTrial {
					t.Errorf("next call reached the upstream: got %v, want %v", got, tt.nextTrial)
				}
			})
		})
	}
}

// TestRefusedTrialsThenSuccessCloses: with two trials required, locally
// refused trials in between neither count nor use up the permits.
func TestRefusedTrialsThenSuccessCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, run := scripted(t, nil, breaker.WithDelay(10*time.Second), breaker.WithSuccesses(2))
		run(repeat(5, s5xx))
		time.Sleep(10 * time.Second)
		if got := run([]step{sLimiter, sQueue, sCancel, sOK, sLimiter}); got != 5 {
			t.Errorf("trials that reached the upstream: got %d, want 5", got)
		}
		if got := b.State(); got != breaker.HalfOpen {
			t.Fatalf("after one successful trial of two: state %s, want half-open", got)
		}
		run([]step{sOK})
		if got := b.State(); got != breaker.Closed {
			t.Errorf("after two successful trials: state %s, want closed", got)
		}
	})
}
