package breaker_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/breaker"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
)

// TestAttemptFailures: failed attempts reported from inside a call count
// like failed calls (a call retrying through an outage opens the circuit
// by itself), excluded ones do not, an attempt of a call from before the
// last state change is ignored, and retries are allowed only while
// closed.
func TestAttemptFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b *breaker.Breaker
		attempts := []error{err5xx, errRateLimit, err5xx, err5xx, err5xx}
		up := &sourcetest.Func{QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
			for _, err := range attempts {
				if !b.RetryAllowed(ctx) {
					return nil, err
				}
				b.AttemptFailed(ctx, err)
			}
			return nil, err5xx
		}}
		var err error
		b, err = breaker.New(up, breaker.WithNeutral(isNeutral), breaker.WithDelay(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if !b.RetryAllowed(t.Context()) {
			t.Fatal("closed: RetryAllowed false, want true")
		}
		b.AttemptFailed(t.Context(), err5xx) // outside any call: counts
		if _, err := b.Quote(t.Context(), kisfeed.MustParseCode("005930")); !errors.Is(err, err5xx) {
			t.Fatalf("call: got %v, want the upstream failure", err)
		}
		// 1 + 4 failed attempts (the rate-limit answer excluded) = 5.
		if got := b.State(); got != breaker.Open {
			t.Fatalf("after 5 failed attempts: state %s, want open", got)
		}
		if b.RetryAllowed(t.Context()) {
			t.Error("open: RetryAllowed true, want false")
		}
		time.Sleep(10 * time.Second)

		// A trial gets one attempt (no retries while half-open) and its
		// failure re-opens the circuit for the whole delay.
		if _, err := b.Quote(t.Context(), kisfeed.MustParseCode("005930")); !errors.Is(err, err5xx) {
			t.Fatalf("trial: got %v, want the upstream failure", err)
		}
		if got := b.State(); got != breaker.Open {
			t.Errorf("after a trial's failed attempt: state %s, want open", got)
		}
		if got := b.RetryAfter(); got != 10*time.Second {
			t.Errorf("RetryAfter: got %s, want 10s", got)
		}
	})
}

// TestStaleAttemptIgnored: an attempt of a call that started before the
// circuit opened cannot re-open it after it has closed again.
func TestStaleAttemptIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b *breaker.Breaker
		release := make(chan struct{})
		var slowCtx context.Context
		up := &sourcetest.Func{QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
			if code == "000660" {
				slowCtx = ctx
				<-release
				return nil, err5xx
			}
			return nil, nil
		}}
		var err error
		b, err = breaker.New(up, breaker.WithFailures(1), breaker.WithDelay(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _, _ = b.Quote(t.Context(), kisfeed.MustParseCode("000660")); close(done) }()
		synctest.Wait()
		b.AttemptFailed(t.Context(), err5xx) // opens
		time.Sleep(time.Second)
		if _, err := b.Quote(t.Context(), kisfeed.MustParseCode("005930")); err != nil { // the trial closes it
			t.Fatal(err)
		}
		b.AttemptFailed(slowCtx, err5xx)
		close(release)
		<-done
		if got := b.State(); got != breaker.Closed {
			t.Errorf("after a stale call's attempt and result: state %s, want closed", got)
		}
	})
}
