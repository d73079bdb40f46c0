package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/breaker"
	"github.com/kisfeed/kisfeed/internal/cache"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
)

var err5xx = errors.New("kis: HTTP 500: EGW00002 server error")

// upstream fails with the error in fail (nil = success) and counts calls.
type upstream struct {
	calls atomic.Int64
	mu    sync.Mutex
	fail  error
	block chan struct{} // when non-nil, calls wait for it to close
}

func (u *upstream) setFail(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.fail = err
}

func (u *upstream) source() *sourcetest.Func {
	return &sourcetest.Func{QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
		u.calls.Add(1)
		u.mu.Lock()
		err, block := u.fail, u.block
		u.mu.Unlock()
		if block != nil {
			select {
			case <-block:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if err != nil {
			return nil, err
		}
		return &kisfeed.Quote{Code: code, Price: 70000, Meta: kisfeed.Meta{AsOf: time.Now(), Source: "fake"}}, nil
	}}
}

type transitions struct {
	mu  sync.Mutex
	got []string
}

func (t *transitions) add(from, to breaker.State) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.got = append(t.got, string(from)+"→"+string(to))
}

func (t *transitions) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return fmt.Sprint(t.got)
}

func newBreaker(t *testing.T, u *upstream, tr *transitions, opts ...breaker.Option) *breaker.Breaker {
	t.Helper()
	if tr != nil {
		opts = append(opts, breaker.WithOnStateChange(tr.add))
	}
	b, err := breaker.New(u.source(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpensAfterFiveFailuresAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{fail: err5xx}
		tr := &transitions{}
		b := newBreaker(t, u, tr)
		ctx := t.Context()

		for i := range 5 {
			if b.State() != breaker.Closed {
				t.Fatalf("before failure %d: state %s, want closed", i+1, b.State())
			}
			if _, err := b.Quote(ctx, kisfeed.MustParseCode("005930")); !errors.Is(err, err5xx) {
				t.Fatalf("failure %d: got %v, want the upstream error", i+1, err)
			}
		}
		if got := b.State(); got != breaker.Open {
			t.Fatalf("after 5 failures: state %s, want open", got)
		}

		// While open: fast ErrUnavailable, zero upstream calls.
		for range 10 {
			_, err := b.Quote(ctx, kisfeed.MustParseCode("005930"))
			var ue *kisfeed.UnavailableError
			if !errors.As(err, &ue) || !errors.Is(err, kisfeed.ErrUnavailable) {
				t.Fatalf("while open: got %v, want *UnavailableError", err)
			}
			if ue.RetryAfter <= 0 || ue.RetryAfter > 60*time.Second {
				t.Errorf("RetryAfter: got %s, want (0, 60s]", ue.RetryAfter)
			}
			if !errors.Is(err, err5xx) {
				t.Errorf("while open: got %v, want it to carry the last failure", err)
			}
		}
		if got := u.calls.Load(); got != 5 {
			t.Errorf("upstream calls while open: got %d, want 5 (none after opening)", got)
		}

		time.Sleep(59 * time.Second)
		if _, err := b.Quote(ctx, kisfeed.MustParseCode("005930")); !errors.Is(err, kisfeed.ErrUnavailable) {
			t.Fatalf("at 59s: got %v, want still open", err)
		}
		time.Sleep(time.Second)
		if got := b.State(); got != breaker.HalfOpen {
			t.Errorf("at 60s: state %s, want half-open", got)
		}

		// One trial, and it succeeds: closed.
		u.setFail(nil)
		if _, err := b.Quote(ctx, kisfeed.MustParseCode("005930")); err != nil {
			t.Fatalf("trial: %v", err)
		}
		if got := u.calls.Load(); got != 6 {
			t.Errorf("upstream calls after the trial: got %d, want 6", got)
		}
		if got := b.State(); got != breaker.Closed {
			t.Errorf("after a successful trial: state %s, want closed", got)
		}
		want := "[closed→open open→half-open half-open→closed]"
		if got := tr.String(); got != want {
			t.Errorf("transitions: got %s, want %s", got, want)
		}
	})
}

func TestHalfOpenLetsOneTrialThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{fail: err5xx}
		b := newBreaker(t, u, nil, breaker.WithFailures(2), breaker.WithDelay(10*time.Second))
		ctx := t.Context()
		for range 2 {
			_, _ = b.Quote(ctx, kisfeed.MustParseCode("005930"))
		}
		time.Sleep(10 * time.Second)

		// The trial blocks in the upstream; concurrent calls fail fast.
		block := make(chan struct{})
		u.mu.Lock()
		u.block, u.fail = block, nil
		u.mu.Unlock()
		done := make(chan error)
		go func() { _, err := b.Quote(ctx, kisfeed.MustParseCode("005930")); done <- err }()
		synctest.Wait()
		for range 5 {
			if _, err := b.Quote(ctx, kisfeed.MustParseCode("005930")); !errors.Is(err, kisfeed.ErrUnavailable) {
				t.Fatalf("during the trial: got %v, want ErrUnavailable", err)
			}
		}
		if got := u.calls.Load(); got != 3 {
			t.Errorf("upstream calls: got %d, want 3 (2 failures + 1 trial)", got)
		}
		close(block)
		if err := <-done; err != nil {
			t.Fatalf("trial: %v", err)
		}
		if got := b.State(); got != breaker.Closed {
			t.Errorf("state: got %s, want closed", got)
		}
	})
}

func TestFailedTrialReopens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{fail: err5xx}
		b := newBreaker(t, u, nil)
		for range 5 {
			_, _ = b.Quote(t.Context(), kisfeed.MustParseCode("005930"))
		}
		time.Sleep(60 * time.Second)
		if _, err := b.Quote(t.Context(), kisfeed.MustParseCode("005930")); !errors.Is(err, err5xx) {
			t.Fatalf("trial: got %v, want the upstream failure", err)
		}
		if got := b.State(); got != breaker.Open {
			t.Errorf("after a failed trial: state %s, want open", got)
		}
		if got := b.RetryAfter(); got != 60*time.Second {
			t.Errorf("RetryAfter: got %s, want 60s", got)
		}
	})
}

func TestWhatCounts(t *testing.T) {
	rateLimited := errors.New("EGW00201 rate limited")
	tests := []struct {
		name     string
		err      error
		ctx      func() (context.Context, context.CancelFunc)
		wantOpen bool
	}{
		{"5xx", err5xx, nil, true},
		{"upstream timeout", context.DeadlineExceeded, nil, true},
		{"not found", fmt.Errorf("%w: 999999", kisfeed.ErrNotFound), nil, false},
		{"invalid", fmt.Errorf("%w: bad", kisfeed.ErrInvalid), nil, false},
		{"batch error", &kisfeed.BatchError{}, nil, false},
		{"neutral rate limit", rateLimited, nil, false},
		{"caller cancelled", context.Canceled, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, func() {}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				u := &upstream{fail: tt.err}
				b := newBreaker(t, u, nil, breaker.WithNeutral(func(err error) bool { return errors.Is(err, rateLimited) }))
				ctx := t.Context()
				if tt.ctx != nil {
					c, cancel := tt.ctx()
					defer cancel()
					ctx = c
				}
				for range 5 {
					_, _ = b.Quote(ctx, kisfeed.MustParseCode("005930"))
				}
				if got := b.State() == breaker.Open; got != tt.wantOpen {
					t.Errorf("open after 5 × %v: got %v, want %v", tt.err, got, tt.wantOpen)
				}
			})
		})
	}
}

func TestSuccessResetsTheCount(t *testing.T) {
	u := &upstream{}
	b := newBreaker(t, u, nil)
	for i := range 12 {
		if i%4 == 3 {
			u.setFail(nil)
		} else {
			u.setFail(err5xx)
		}
		_, _ = b.Quote(t.Context(), kisfeed.MustParseCode("005930"))
	}
	if got := b.State(); got != breaker.Closed {
		t.Errorf("3 failures between successes: state %s, want closed", got)
	}
}

// TestInvalidInputCountsForNothing: the upstream's ErrInvalid (a bad
// interval or date range: codes arrive parsed) reaches the caller and
// never opens the circuit.
func TestInvalidInputCountsForNothing(t *testing.T) {
	u := &upstream{}
	u.setFail(fmt.Errorf("%w: interval \"hour\": want minute, day, week or month", kisfeed.ErrInvalid))
	b := newBreaker(t, u, nil)
	for range 10 {
		if _, err := b.Quote(t.Context(), kisfeed.MustParseCode("005930")); !errors.Is(err, kisfeed.ErrInvalid) {
			t.Fatalf("got %v, want the upstream's ErrInvalid", err)
		}
	}
	if u.calls.Load() != 10 {
		t.Errorf("upstream calls: got %d, want 10", u.calls.Load())
	}
	if got := b.State(); got != breaker.Closed {
		t.Errorf("state after 10 invalid calls: %s, want closed", got)
	}
}

func TestOptionsRejectBadValues(t *testing.T) {
	for name, opt := range map[string]breaker.Option{
		"failures 0":  breaker.WithFailures(0),
		"delay 0":     breaker.WithDelay(0),
		"successes 0": breaker.WithSuccesses(0),
	} {
		if _, err := breaker.New(&sourcetest.Func{}, opt); err == nil {
			t.Errorf("%s: got nil error, want one", name)
		}
	}
}

// TestCacheOverBreaker checks the stacking cache(breaker(upstream)): while
// the circuit is open the cache serves its stale copy with zero upstream
// calls, and an uncached code fails fast with ErrUnavailable.
func TestCacheOverBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{}
		b := newBreaker(t, u, nil)
		c, err := cache.New(b, cache.NewMemory(100, time.Now), cache.WithTTLs(cache.TTLs{Price: time.Minute}))
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		if _, err := c.Quote(ctx, kisfeed.MustParseCode("005930")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute) // the cached price expires
		u.setFail(err5xx)
		for _, code := range []string{"000660", "035420", "035720", "068270", "207940"} {
			if _, err := c.Quote(ctx, kisfeed.MustParseCode(code)); !errors.Is(err, kisfeed.ErrUnavailable) {
				t.Fatalf("%s while failing: got %v, want ErrUnavailable", code, err)
			}
		}
		if b.State() != breaker.Open {
			t.Fatalf("state: got %s, want open", b.State())
		}
		calls := u.calls.Load()
		q, err := c.Quote(ctx, kisfeed.MustParseCode("005930"))
		if err != nil || !q.Meta.Stale || q.Meta.Origin != kisfeed.OriginStale {
			t.Errorf("cached code while open: got %+v, %v; want a stale quote", q, err)
		}
		_, err = c.Quote(ctx, kisfeed.MustParseCode("005380"))
		var ue *kisfeed.UnavailableError
		if !errors.As(err, &ue) || ue.RetryAfter <= 0 {
			t.Errorf("uncached code while open: got %v, want *UnavailableError with RetryAfter", err)
		}
		if got := u.calls.Load() - calls; got != 0 {
			t.Errorf("upstream calls while open: got %d, want 0", got)
		}
	})
}

// TestHealth follows the circuit: nil while closed, an UnavailableError
// while open, nil once a trial may run, an error again after a failed
// trial, nil after a successful one; it never calls the upstream.
func TestHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &upstream{fail: err5xx}
		b := newBreaker(t, u, nil, breaker.WithFailures(2), breaker.WithDelay(10*time.Second))
		ctx := t.Context()
		wantHealth := func(step string, wantErr bool) {
			t.Helper()
			err := b.Health(ctx)
			if got := err != nil; got != wantErr {
				t.Errorf("%s: Health got %v, want error: %v", step, err, wantErr)
			}
			var ue *kisfeed.UnavailableError
			if err != nil && (!errors.As(err, &ue) || ue.RetryAfter <= 0) {
				t.Errorf("%s: Health got %v, want *UnavailableError with RetryAfter > 0", step, err)
			}
		}
		wantHealth("closed", false)
		for range 2 {
			_, _ = b.Quote(ctx, kisfeed.MustParseCode("005930"))
		}
		wantHealth("open", true)
		time.Sleep(10 * time.Second)
		wantHealth("delay passed", false)
		_, _ = b.Quote(ctx, kisfeed.MustParseCode("005930")) // the trial fails
		wantHealth("failed trial", true)
		time.Sleep(10 * time.Second)
		u.setFail(nil)
		if _, err := b.Quote(ctx, kisfeed.MustParseCode("005930")); err != nil {
			t.Fatalf("trial: %v", err)
		}
		wantHealth("closed again", false)
		if got := u.calls.Load(); got != 4 {
			t.Errorf("upstream calls: got %d, want 4 (Health makes none)", got)
		}
	})
}
