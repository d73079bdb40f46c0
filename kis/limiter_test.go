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
