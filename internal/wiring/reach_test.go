package wiring

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kisfeed/kisfeed"
)

// fakeDialer answers dials with a pipe (accepted) or ECONNREFUSED, counts
// them, and can hold them until released.
type fakeDialer struct {
	dials   atomic.Int64
	refuse  atomic.Bool
	mu      sync.Mutex
	release chan struct{} // when non-nil, dials wait for it to close
}

func (f *fakeDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	f.dials.Add(1)
	f.mu.Lock()
	release := f.release
	f.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.refuse.Load() {
		return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	a, b := net.Pipe()
	b.Close()
	return a, nil
}

// newTestReach is a reach for a fake address dialled through f, closed at
// the end of the test.
func newTestReach(t *testing.T, f *fakeDialer) *reach {
	r := newReach("http://127.0.0.1:1", 10*time.Second, kisfeed.Clock{})
	r.dial = f.dial
	t.Cleanup(func() { _ = r.close() })
	return r
}

func wantHealth(t *testing.T, r *reach, f *fakeDialer, step string, wantRefused bool, wantDials int64) {
	t.Helper()
	err := r.health(t.Context())
	var re *RefusedError
	if got := errors.As(err, &re); got != wantRefused || (err != nil && !got) {
		t.Errorf("%s: health got %v, want refused: %v", step, err, wantRefused)
	}
	synctest.Wait() // let a background refresh finish before counting
	if got := f.dials.Load(); got != wantDials {
		t.Errorf("%s: dials got %d, want %d", step, got, wantDials)
	}
}

func TestReachHealth(t *testing.T) {
	t.Run("first check dials once for all concurrent callers", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := &fakeDialer{release: make(chan struct{})}
			r := newTestReach(t, f)
			const n = 20
			errs := make(chan error, n)
			for range n {
				go func() { errs <- r.health(t.Context()) }()
			}
			synctest.Wait()
			close(f.release)
			for range n {
				if err := <-errs; err != nil {
					t.Errorf("health: got %v, want nil", err)
				}
			}
			if got := f.dials.Load(); got != 1 {
				t.Errorf("dials for %d concurrent first checks: got %d, want 1", n, got)
			}
		})
	})
	t.Run("success reused, refreshed in the background, redialled when old", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := &fakeDialer{}
			r := newTestReach(t, f)
			wantHealth(t, r, f, "first", false, 1)
			time.Sleep(healthFresh - time.Second)
			wantHealth(t, r, f, "within healthFresh", false, 1)
			f.refuse.Store(true) // the host goes down
			time.Sleep(2 * time.Second)
			wantHealth(t, r, f, "past healthFresh: old answer, background dial", false, 2)
			wantHealth(t, r, f, "after the background dial", true, 2)
			time.Sleep(reachTTL + time.Second)
			f.refuse.Store(false)
			wantHealth(t, r, f, "past reachTTL: synchronous dial", false, 3)
		})
	})
	t.Run("refusal reused briefly", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := &fakeDialer{}
			f.refuse.Store(true)
			r := newTestReach(t, f)
			wantHealth(t, r, f, "first", true, 1)
			time.Sleep(refusedFresh - time.Second)
			wantHealth(t, r, f, "within refusedFresh", true, 1)
			f.refuse.Store(false) // the host is back
			time.Sleep(2 * time.Second)
			wantHealth(t, r, f, "past refusedFresh: old answer, background dial", true, 2)
			wantHealth(t, r, f, "after the background dial", false, 2)
		})
	})
	t.Run("transport observations need no dial", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := &fakeDialer{}
			r := newTestReach(t, f)
			r.refused()
			wantHealth(t, r, f, "after a refused request", true, 0)
			r.answered()
			wantHealth(t, r, f, "after an answered request", false, 0)
		})
	})
	t.Run("caller giving up is not a refusal", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := &fakeDialer{release: make(chan struct{})}
			r := newTestReach(t, f)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if err := r.health(ctx); err != nil {
				t.Errorf("health with a cancelled context: got %v, want nil", err)
			}
			close(f.release)
		})
	})
	t.Run("timeout is not a refusal", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := &fakeDialer{release: make(chan struct{})} // never released: the dial times out
			r := newTestReach(t, f)
			wantHealth(t, r, f, "dial timed out", false, 1)
		})
	})
	t.Run("no address never dials", func(t *testing.T) {
		f := &fakeDialer{}
		r := newReach("::bad url", time.Second, kisfeed.Clock{})
		r.dial = f.dial
		if err := r.health(t.Context()); err != nil || f.dials.Load() != 0 {
			t.Errorf("got %v after %d dials, want nil after 0", err, f.dials.Load())
		}
	})
}

// TestReachCheck: the limiter path reuses only a recent success and dials
// again after a refusal.
func TestReachCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeDialer{}
		r := newTestReach(t, f)
		steps := []struct {
			name        string
			refuse      bool
			sleep       time.Duration
			wantRefused bool
			wantDials   int64
		}{
			{"first", false, 0, false, 1},
			{"recent success", false, reachTTL - time.Second, false, 1},
			{"old success", true, 2 * time.Second, true, 2},
			{"after a refusal", true, 0, true, 3},
			{"back", false, 0, false, 4},
		}
		for _, s := range steps {
			time.Sleep(s.sleep)
			f.refuse.Store(s.refuse)
			err := r.check(t.Context())
			var re *RefusedError
			if got := errors.As(err, &re); got != s.wantRefused {
				t.Errorf("%s: check got %v, want refused: %v", s.name, err, s.wantRefused)
			}
			if got := f.dials.Load(); got != s.wantDials {
				t.Errorf("%s: dials got %d, want %d", s.name, got, s.wantDials)
			}
		}
	})
}
