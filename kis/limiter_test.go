package kis

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestPacerEven checks, in a synctest bubble, that 16 goroutines sharing
// the pacer are spaced evenly: never more than the limit in any 1 s.
func TestPacerEven(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(18, 100)
		var mu sync.Mutex
		var times []time.Time
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for range 20 {
					if _, err := p.wait(t.Context()); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					times = append(times, time.Now())
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if got := maxInWindow(times, time.Second); got > 18 {
			t.Errorf("max requests in a 1 s window: got %d, want <= 18", got)
		}
		elapsed := times[len(times)-1].Sub(times[0])
		if rate := float64(len(times)-1) / elapsed.Seconds(); math.Abs(rate-18*headroom) > 0.1 {
			t.Errorf("rate: got %.2f/s, want %.2f/s", rate, 18*headroom)
		}
	})
}

func maxInWindow(times []time.Time, w time.Duration) int {
	best, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// TestPacerAdapts simulates a server whose limit is 12/s while the client
// is configured for 18: the rate drops on rejections and settles near 12.
func TestPacerAdapts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(18, 100)
		const limit = 12
		var accepted []time.Time
		rejections := 0
		end := time.Now().Add(120 * time.Second)
		var lateAccepted int
		lateStart := time.Now().Add(60 * time.Second)
		for time.Now().Before(end) {
			if _, err := p.wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			// The server: sliding window over accepted requests.
			n := 0
			for i := len(accepted) - 1; i >= 0 && now.Sub(accepted[i]) < time.Second; i-- {
				n++
			}
			if n >= limit {
				rejections++
				p.rateLimited()
				continue
			}
			accepted = append(accepted, now)
			if now.After(lateStart) {
				lateAccepted++
			}
		}
		rate := float64(lateAccepted) / 60
		if rate < 10.5 || rate > 12 {
			t.Errorf("settled throughput: got %.2f/s, want near 12", rate)
		}
		if rejections > 40 {
			t.Errorf("rejections over 2 minutes: got %d, want few", rejections)
		}
		t.Logf("settled %.2f/s, %d rejections, rate now %.2f", rate, rejections, p.current())
	})
}

// TestPacerRecovers: after the limit is restored, the rate creeps back to
// the configured one.
func TestPacerRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(18, 100)
		p.rateLimited()
		time.Sleep(2 * time.Second)
		p.rateLimited()
		low := p.current()
		if low > 18*headroom*0.6 {
			t.Fatalf("after two rejections: rate %.2f, want lower", low)
		}
		for range 3000 {
			if _, err := p.wait(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if got := p.current(); got != 18*headroom {
			t.Errorf("rate after a quiet period: got %.2f, want %.2f", got, 18*headroom)
		}
	})
}

func TestPacerFloorAndDebounce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(10, 100)
		p.rateLimited()
		first := p.current()
		p.rateLimited() // within the debounce: ignored
		if p.current() != first {
			t.Errorf("debounce: got %.2f, want %.2f", p.current(), first)
		}
		for range 30 {
			time.Sleep(1100 * time.Millisecond)
			p.rateLimited()
		}
		if got := p.current(); got != 10*minRateShare {
			t.Errorf("floor: got %.2f, want %.2f", got, 10*minRateShare)
		}
	})
}

func TestPacerQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(1, 2)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		if _, err := p.wait(ctx); err != nil { // takes the first token
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { p.wait(ctx) })
		}
		synctest.Wait() // both are queued
		if _, err := p.wait(ctx); !errors.Is(err, ErrQueueFull) {
			t.Errorf("third waiter: got %v, want ErrQueueFull", err)
		}
		cancel()
		wg.Wait()
	})
}

func TestQueueFullFromClient(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := testClient(t, f.url(), WithMaxQueue(1))
	c.pacer.waiting.Add(1) // someone is already waiting
	if _, _, err := c.Price(t.Context(), "005930"); !errors.Is(err, ErrQueueFull) {
		t.Errorf("got %v, want ErrQueueFull", err)
	}
	c.pacer.waiting.Add(-1)
}

// TestLimiterError: a limiter refusal for a live context with a deadline is
// ErrLimiterDeadline; cancellation, expiry and a full queue keep their own.
func TestLimiterError(t *testing.T) {
	t.Parallel()
	refused := errors.New("rate: Wait(n=1) would exceed context deadline")
	live, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"refused for the deadline", live, refused, true},
		{"no deadline", context.Background(), refused, false},
		{"context already cancelled", done, refused, false},
		{"queue full", live, ErrQueueFull, false},
		{"deadline exceeded while waiting", live, context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := limiterError(tt.ctx, tt.err)
			if got := errors.Is(err, ErrLimiterDeadline); got != tt.want {
				t.Errorf("errors.Is(%v, ErrLimiterDeadline) = %v, want %v", err, got, tt.want)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("%v no longer wraps %v", err, tt.err)
			}
		})
	}
}

// TestPacerRefusesCallsThatCannotFinish: a slot is granted only when the
// wait for it plus the estimated service time ends before the deadline; a
// refused call gives its slot back, so the next caller is not pushed back.
// Before the fix the pacer only checked the wait (x/time/rate's Wait) and
// sent calls whose answer could not arrive in time.
func TestPacerRefusesCallsThatCannotFinish(t *testing.T) {
	const interval = 100 * time.Millisecond // newPacer(10/headroom): 10/s after headroom
	tests := []struct {
		name     string
		samples  []time.Duration // observed response times
		deadline time.Duration   // 0 = none
		refused  bool
	}{
		{"slow answers, deadline after the slot but before the answer", repeat(200*time.Millisecond, 20), 250 * time.Millisecond, true},
		{"slow answers, time enough", repeat(200*time.Millisecond, 20), 400 * time.Millisecond, false},
		{"no samples yet: the floor counts", nil, interval + minService/2, true},
		{"no samples yet, time enough", nil, interval + 2*minService, false},
		{"no deadline", repeat(10*time.Second, 3), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPacer(10/headroom, 100)
				for _, d := range tt.samples {
					p.observe(d)
				}
				if _, err := p.wait(t.Context()); err != nil { // takes the only token
					t.Fatal(err)
				}
				ctx := t.Context()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				start := time.Now()
				_, err := p.wait(ctx)
				if got := err != nil; got != tt.refused {
					t.Fatalf("refused: got %v (err %v), want %v", got, err, tt.refused)
				}
				if !tt.refused {
					return
				}
				if !errors.Is(err, ErrLimiterDeadline) {
					t.Errorf("err: got %v, want ErrLimiterDeadline", err)
				}
				if waited := time.Since(start); waited != 0 {
					t.Errorf("refusal took %s, want at once", waited)
				}
				// The refused call's slot was given back: the next call
				// goes one interval after the first, not two.
				if _, err := p.wait(t.Context()); err != nil {
					t.Fatal(err)
				}
				if got := time.Since(start); got > interval+time.Millisecond {
					t.Errorf("next call left after %s, want about %s (slot not given back)", got, interval)
				}
			})
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

// TestPacerServiceEstimate: the estimate follows recent response times,
// starts high after one sample (mean plus four deviations), and never drops
// below minService.
func TestPacerServiceEstimate(t *testing.T) {
	t.Parallel()
	p := newPacer(18, 10)
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return now }
	if got := p.service(); got != minService {
		t.Errorf("no samples: got %s, want %s", got, minService)
	}
	p.observe(100 * time.Millisecond)
	if got := p.service(); got != 300*time.Millisecond {
		t.Errorf("one 100 ms sample: got %s, want 300ms", got)
	}
	for range 50 {
		p.observe(100 * time.Millisecond)
	}
	if got := p.service(); got < 100*time.Millisecond || got > 105*time.Millisecond {
		t.Errorf("steady 100 ms: got %s, want about 100ms", got)
	}
	for range 50 {
		p.observe(time.Millisecond)
	}
	if got := p.service(); got != minService {
		t.Errorf("fast answers: got %s, want the floor %s", got, minService)
	}
	// Without new answers the estimate forgets: one slow answer must not
	// refuse short-deadline calls (which would bring it down) for good.
	p.observe(2 * time.Second)
	high := p.service()
	now = now.Add(serviceHalfLife)
	if got, want := p.service(), high/2; got < want-time.Millisecond || got > want+time.Millisecond {
		t.Errorf("one half-life after a slow answer: got %s, want about %s (half of %s)", got, want, high)
	}
	now = now.Add(10 * serviceHalfLife)
	if got := p.service(); got != minService {
		t.Errorf("long after: got %s, want the floor %s", got, minService)
	}
}

// TestClientDoesNotSendHopelessCalls: with answers known to take 2 s, a
// call with 1 s left is refused before it leaves (ErrLimiterDeadline, the
// server never asked), through the client's pacer and through a shared
// limiter, which sees a deadline moved earlier by the estimate.
func TestClientDoesNotSendHopelessCalls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		shared *deadlineLimiter
	}{
		{"own pacer", nil},
		{"shared limiter", &deadlineLimiter{next: 500 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.fixed(pathPrice, "inquire-price.json")
			var opts []Option
			if tt.shared != nil {
				opts = append(opts, WithLimiter(tt.shared))
			}
			c := testClient(t, f.url(), opts...)
			if _, _, err := c.Price(t.Context(), "005930"); err != nil { // token and one answer
				t.Fatal(err)
			}
			before := f.count(pathPrice)
			if tt.shared == nil {
				for range 20 {
					c.pacer.observe(2 * time.Second)
				}
			} else {
				// The pacer is fast (10,000/s); only the shared limiter's
				// next slot in 500 ms plus 600 ms of answer overruns.
				for range 20 {
					c.pacer.observe(600 * time.Millisecond)
				}
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			_, _, err := c.Price(ctx, "005930")
			if !errors.Is(err, ErrLimiterDeadline) {
				t.Errorf("err: got %v, want ErrLimiterDeadline", err)
			}
			if got := f.count(pathPrice) - before; got != 0 {
				t.Errorf("requests sent: got %d, want 0", got)
			}
		})
	}
}

// deadlineLimiter is a shared limiter whose next slot is next from now:
// like the Redis limiter, it refuses at once a wait past ctx's deadline,
// and grants at once otherwise (the test never needs the wait itself).
type deadlineLimiter struct{ next time.Duration }

func (l *deadlineLimiter) Wait(ctx context.Context) error {
	if dl, ok := ctx.Deadline(); ok && time.Now().Add(l.next).After(dl) {
		return errors.New("shared: next slot past the deadline")
	}
	return nil
}
