package wiring

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/kis"
)

// TestNeutral: pushback errors — including our own rate limiter refusing
// a wait that would end past the deadline — do not count against the
// breaker; real failures do.
func TestNeutral(t *testing.T) {
	t.Parallel()
	lim := rate.NewLimiter(rate.Every(time.Hour), 1)
	lim.Allow()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	limErr := lim.Wait(ctx) // refused at once: the slot is an hour away
	if limErr == nil {
		t.Fatal("limiter wait: got nil, want a would-exceed-deadline error")
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"limiter wait past the deadline, as kis wraps it", fmt.Errorf("quote 005930: FHKST01010100: rate limiter: %w: %w", kis.ErrLimiterDeadline, limErr), true},
		{"malformed answer", &kis.MalformedError{MalformedError: kisfeed.MalformedError{Op: "FHKST01010100", Field: "output.stck_prpr", Value: "12a", Want: "an integer"}}, true},
		{"malformed answer, root type", fmt.Errorf("quote 005930: %w", &kisfeed.MalformedError{Field: "output.stck_prpr", Value: "12a"}), true},
		{"rate limited", kis.ErrRateLimited, true},
		{"queue full", kis.ErrQueueFull, true},
		{"refused credentials", fmt.Errorf("quote 005930: get access token: issue token: %w", kis.ErrInvalidCredentials), true},
		{"connection refused", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), false},
		{"deadline exceeded on the wire", context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := neutral(tt.err); got != tt.want {
				t.Errorf("neutral(%v): got %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
