package pricestore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kisfeed/kisfeed/internal/pricestore"
)

var errConn = errors.New("connection reset")

func isConn(err error) bool { return errors.Is(err, errConn) }

func TestRetry(t *testing.T) {
	t.Parallel()
	p := pricestore.RetryPolicy{Attempts: 4, Base: 100 * time.Millisecond, Max: 250 * time.Millisecond}
	tests := []struct {
		name      string
		fails     []error // what each call returns, then nil
		wantCalls int
		wantErr   string        // "" for success
		wantWait  time.Duration // fake time spent waiting
		wantNotes int           // retries announced to Notify
	}{
		{"first try", nil, 1, "", 0, 0},
		{"two resets then ok", []error{errConn, errConn}, 3, "", 300 * time.Millisecond, 2},
		{"gives up after the attempts", []error{errConn, errConn, errConn, errConn, errConn}, 4, "after 4 attempts: connection reset", 550 * time.Millisecond, 3},
		{"not transient: no retry", []error{errors.New("syntax error")}, 1, "syntax error", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls, notes := 0, 0
				p := p
				p.Notify = func(attempt int, err error) {
					notes++
					if attempt != notes || !errors.Is(err, errConn) {
						t.Errorf("Notify(%d, %v), want attempt %d and the reset", attempt, err, notes)
					}
				}
				start := time.Now()
				err := pricestore.Retry(t.Context(), p, isConn, func(context.Context) error {
					calls++
					if calls <= len(tt.fails) {
						return tt.fails[calls-1]
					}
					return nil
				})
				if notes != tt.wantNotes {
					t.Errorf("Notify called %d times, want %d", notes, tt.wantNotes)
				}
				if calls != tt.wantCalls {
					t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
				}
				if got := time.Since(start); got != tt.wantWait {
					t.Errorf("waited %v, want %v", got, tt.wantWait)
				}
				switch {
				case tt.wantErr == "" && err != nil:
					t.Errorf("err = %v, want nil", err)
				case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
			})
		})
	}
}

// TestRetryStopsWithContext: a cancelled context ends the wait at once.
func TestRetryStopsWithContext(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		err := pricestore.Retry(ctx, pricestore.RetryPolicy{Attempts: 10, Base: time.Hour, Max: time.Hour}, isConn, func(context.Context) error {
			calls++
			cancel()
			return errConn
		})
		if calls != 1 || !errors.Is(err, errConn) || !strings.Contains(err.Error(), "canceled") {
			t.Errorf("calls %d, err %v; want 1 call and the reset error naming the cancellation", calls, err)
		}
	})
}
