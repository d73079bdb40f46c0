package breaker_test

import (
	"bytes"
	"context"
	"errors"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/breaker"
)

// prober is a probe function whose answer the test sets; it counts calls,
// the most that ran at once, and records each call's timeout.
type prober struct {
	calls      atomic.Int64
	running    atomic.Int64
	mostAtOnce atomic.Int64

	mu       sync.Mutex
	err      error           // the answer
	hang     bool            // wait for the context instead of answering
	timeouts []time.Duration // each call's deadline, from its start
}

func (p *prober) set(err error, hang bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err, p.hang = err, hang
}

func (p *prober) probe(ctx context.Context) error {
	p.calls.Add(1)
	n := p.running.Add(1)
	defer p.running.Add(-1)
	for {
		m := p.mostAtOnce.Load()
		if n <= m || p.mostAtOnce.CompareAndSwap(m, n) {
			break
		}
	}
	p.mu.Lock()
	err, hang := p.err, p.hang
	if d, ok := ctx.Deadline(); ok {
		p.timeouts = append(p.timeouts, time.Until(d))
	} else {
		p.timeouts = append(p.timeouts, -1)
	}
	p.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

// probeLoops counts the breaker's probe goroutines in the process (the
// tests of this package do not run in parallel).
func probeLoops(t *testing.T) int {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 2); err != nil {
		t.Fatal(err)
	}
	return strings.Count(buf.String(), "breaker.(*Breaker).probeLoop(")
}

// openWithProbe returns a breaker with a 1 s probe, 10 s delay, opened
// by two failures at the bubble's start; Close runs at cleanup.
func openWithProbe(t *testing.T, u *upstream, p *prober, tr *transitions, opts ...breaker.Option) *breaker.Breaker {
	t.Helper()
	opts = append([]breaker.Option{breaker.WithFailures(2), breaker.WithDelay(10 * time.Second),
		breaker.WithProbe(p.probe, time.Second)}, opts...)
	b := newBreaker(t, u, tr, opts...)
	t.Cleanup(func() { _ = b.Close() })
	u.setFail(err5xx)
	for range 2 {
		_, _ = b.Quote(t.Context(), kisfeed.MustParseCode("005930"))
	}
	if got := b.State(); got != breaker.Open {
		t.Fatalf("after 2 failures: state %s, want open", got)
	}
	return b
}

func TestProbeEndsTheOpenPeriodEarly(t *testing.T) {
	tests := []struct {
		name      string
		successes int
		probeErr  error // what the probe answers once the upstream is back
		wantAfter breaker.State
		wantTr    string
	}{
		{"one trial: the probe closes", 1, nil, breaker.Closed, "[closed→open open→closed]"},
		{"not found is an answer", 1, kisfeed.ErrNotFound, breaker.Closed, "[closed→open open→closed]"},
		{"two trials: the probe is the first", 2, nil, breaker.HalfOpen, "[closed→open open→half-open]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				u, p, tr := &upstream{}, &prober{}, &transitions{}
				p.set(err5xx, false)
				b := openWithProbe(t, u, p, tr, breaker.WithSuccesses(tt.successes))

				// Outage for 3.5 s: three probes fail, the circuit stays open.
				time.Sleep(3500 * time.Millisecond)
				if got := b.State(); got != breaker.Open {
					t.Fatalf("after 3 failed probes: state %s, want open", got)
				}
				p.set(tt.probeErr, false)
				u.setFail(nil)
				time.Sleep(time.Second) // the probe at 4 s answers
				synctest.Wait()
				if got := b.State(); got != tt.wantAfter {
					t.Fatalf("4.5 s after opening (delay 10 s), probe answered: state %s, want %s", got, tt.wantAfter)
				}
				if got := p.calls.Load(); got != 4 {
					t.Errorf("probes: got %d, want 4 (1 s, 2 s, 3 s, 4 s)", got)
				}
				if got := tr.String(); got != tt.wantTr {
					t.Errorf("transitions: got %s, want %s", got, tt.wantTr)
				}
				if tt.wantAfter == breaker.HalfOpen {
					// The second trial is a real call.
					if _, err := b.Quote(t.Context(), kisfeed.MustParseCode("005930")); err != nil {
						t.Fatalf("second trial: %v", err)
					}
					if got := b.State(); got != breaker.Closed {
						t.Errorf("after the probe and one trial call: state %s, want closed", got)
					}
				}
				if got := u.calls.Load(); got != 2+int64(tt.successes-1) {
					t.Errorf("upstream calls: got %d, want %d (the probe stood for the first trial)", got, 2+tt.successes-1)
				}
			})
		})
	}
}

func TestProbeFailuresKeepItOpen(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		hang       bool
		wantProbes int64 // in the 9.5 s after opening
	}{
		// One probe per second: at 1 s, 2 s, ... 9 s.
		{"5xx", err5xx, false, 9},
		{"excluded (caller-side timeout)", context.DeadlineExceeded, false, 9},
		// A hanging probe is cut at its timeout (1 s) and the next one
		// waits a full interval after it: at 1, 3, 5, 7, 9 s.
		{"hangs", nil, true, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				u, p := &upstream{}, &prober{}
				p.set(tt.err, tt.hang)
				b := openWithProbe(t, u, p, nil)
				time.Sleep(9500 * time.Millisecond)
				if got := b.State(); got != breaker.Open {
					t.Errorf("9.5 s into a 10 s delay with failing probes: state %s, want open", got)
				}
				if got := p.calls.Load(); got != tt.wantProbes {
					t.Errorf("probes: got %d, want %d", got, tt.wantProbes)
				}
				if got := p.mostAtOnce.Load(); got != 1 {
					t.Errorf("probes at once: got %d, want 1", got)
				}
				p.mu.Lock()
				for i, d := range p.timeouts {
					if d <= 0 || d > time.Second {
						t.Errorf("probe %d: timeout %s, want (0, 1s]", i, d)
					}
				}
				p.mu.Unlock()
				if got := b.RetryAfter(); got <= 0 || got > time.Second {
					t.Errorf("RetryAfter while probing: got %s, want (0, 1s] (the next probe)", got)
				}
				if got := u.calls.Load(); got != 2 {
					t.Errorf("upstream calls: got %d, want 2 (probes are not calls)", got)
				}
			})
		})
	}
}

func TestProbeGoroutineLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u, p := &upstream{}, &prober{}
		b := newBreaker(t, u, nil, breaker.WithFailures(2), breaker.WithDelay(10*time.Second),
			breaker.WithProbe(p.probe, time.Second))
		t.Cleanup(func() { _ = b.Close() })
		ctx := t.Context()
		fail := func() {
			u.setFail(err5xx)
			for range 2 {
				_, _ = b.Quote(ctx, kisfeed.MustParseCode("005930"))
			}
		}
		check := func(when string, want int) {
			t.Helper()
			synctest.Wait()
			if got := probeLoops(t); got != want {
				t.Errorf("%s: %d probe goroutines, want %d", when, got, want)
			}
		}

		check("closed from the start", 0)
		p.set(err5xx, false)
		fail()
		check("open", 1)
		p.set(nil, false)
		time.Sleep(1500 * time.Millisecond) // the probe at 1 s answers
		if got := b.State(); got != breaker.Closed {
			t.Fatalf("after a good probe: state %s, want closed", got)
		}
		check("closed by the probe", 0)

		// Open again; Close while a probe is in flight cancels it and
		// waits for the loop.
		p.set(nil, true)
		fail()
		check("open again", 1)
		time.Sleep(1500 * time.Millisecond) // the probe at 1 s hangs
		if got := p.running.Load(); got != 1 {
			t.Fatalf("probes in flight: got %d, want 1", got)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if got := probeLoops(t); got != 0 {
			t.Errorf("right after Close: %d probe goroutines, want 0", got)
		}
		if got := p.running.Load(); got != 0 {
			t.Errorf("after Close: %d probes in flight, want 0", got)
		}
		before := p.calls.Load()

		// After Close a new open period starts no probe; the delay still
		// ends it.
		time.Sleep(10 * time.Second)
		u.setFail(err5xx)
		if _, err := b.Quote(ctx, kisfeed.MustParseCode("005930")); !errors.Is(err, err5xx) {
			t.Fatalf("trial: got %v, want the upstream failure", err)
		}
		if got := b.State(); got != breaker.Open {
			t.Fatalf("after a failed trial: state %s, want open", got)
		}
		time.Sleep(5 * time.Second)
		check("open after Close", 0)
		if got := p.calls.Load(); got != before {
			t.Errorf("probes after Close: got %d, want %d", got, before)
		}
		if err := b.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

func TestWithProbeRejectsNegative(t *testing.T) {
	tests := []struct {
		name    string
		every   time.Duration
		wantErr bool
	}{
		{"negative", -time.Second, true},
		{"zero is off", 0, false},
		{"one second", time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := breaker.New((&upstream{}).source(), breaker.WithProbe(func(context.Context) error { return nil }, tt.every))
			if (err != nil) != tt.wantErr {
				t.Errorf("WithProbe(%s): error %v, want error %v", tt.every, err, tt.wantErr)
			}
		})
	}
}
