package batch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
)

// upstream is a fake batch upstream: each Quotes call is recorded, and
// answered by answer (nil: every code's quote at once).
type upstream struct {
	mu     sync.Mutex
	calls  [][]string        // guarded by mu
	ctxs   []context.Context // guarded by mu
	answer func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error)
}

func (u *upstream) source() *sourcetest.Func {
	return &sourcetest.Func{
		QuotesFn: func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
			u.mu.Lock()
			u.calls = append(u.calls, slices.Clone(codes))
			u.ctxs = append(u.ctxs, ctx)
			u.mu.Unlock()
			if u.answer != nil {
				return u.answer(ctx, codes)
			}
			return quotes(codes), nil
		},
		QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
			return nil, fmt.Errorf("single call for %q: %w", code, kisfeed.ErrInvalid)
		},
		OrderBookFn: func(ctx context.Context, code string) (*kisfeed.OrderBook, error) {
			return &kisfeed.OrderBook{Code: code}, nil
		},
	}
}

func (u *upstream) recorded() [][]string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.calls)
}

func quotes(codes []string) []*kisfeed.Quote {
	out := make([]*kisfeed.Quote, len(codes))
	for i, c := range codes {
		out[i] = &kisfeed.Quote{Code: c, Price: int64(1000 + i)}
	}
	return out
}

func code(i int) string { return fmt.Sprintf("%06d", i) }

// kc is code(i) parsed, as the Source methods take it.
func kc(i int) kisfeed.Code { return kisfeed.MustParseCode(code(i)) }

func newSource(t *testing.T, up kisfeed.Source, opts ...Option) *Source {
	t.Helper()
	s, err := New(up, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// answer is one caller's result.
type answer struct {
	code string
	q    *kisfeed.Quote
	err  error
}

// ask starts one Quote call per code, each in its own goroutine.
func ask(ctx context.Context, s *Source, codes ...string) <-chan answer {
	ch := make(chan answer, len(codes))
	for _, c := range codes {
		go func() {
			q, err := s.Quote(ctx, kisfeed.MustParseCode(c))
			ch <- answer{c, q, err}
		}()
	}
	return ch
}

func collect(t *testing.T, ch <-chan answer, n int) map[string]answer {
	t.Helper()
	out := map[string]answer{}
	for range n {
		a := <-ch
		out[a.code] = a
	}
	return out
}

// TestCoalesce: callers arriving within one window share one upstream
// call; a full batch leaves at once, before the window ends; concurrent
// callers of one code are one code in the batch.
func TestCoalesce(t *testing.T) {
	tests := []struct {
		name      string
		codes     []string
		wantCalls [][]string
		wantWait  time.Duration // time from the first caller to the answers
	}{
		{"three codes, one window", []string{code(1), code(2), code(3)},
			[][]string{{code(1), code(2), code(3)}}, DefaultWindow},
		{"duplicates are asked once", []string{code(1), code(1), code(2), code(1)},
			[][]string{{code(1), code(2)}}, DefaultWindow},
		{"a full batch leaves at once", seq(0, DefaultMaxBatch),
			[][]string{seq(0, DefaultMaxBatch)}, 0},
		{"overflow starts the next batch", seq(0, DefaultMaxBatch+2),
			[][]string{seq(0, DefaultMaxBatch), seq(DefaultMaxBatch, DefaultMaxBatch+2)}, DefaultWindow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := &upstream{}
				s := newSource(t, up.source())
				start := time.Now()
				var all []answer
				ch := make(chan answer, len(tt.codes))
				for _, c := range tt.codes {
					// One at a time, in order, so batch contents are exact.
					go func() {
						q, err := s.Quote(t.Context(), kisfeed.MustParseCode(c))
						ch <- answer{c, q, err}
					}()
					synctest.Wait()
				}
				for range tt.codes {
					all = append(all, <-ch)
				}
				if got := time.Since(start); got != tt.wantWait {
					t.Errorf("answered after %s, want %s", got, tt.wantWait)
				}
				for _, a := range all {
					if a.err != nil || a.q == nil || a.q.Code != a.code {
						t.Errorf("%s: got %+v, %v; want its quote", a.code, a.q, a.err)
					}
				}
				if got := up.recorded(); !slices.EqualFunc(got, tt.wantCalls, slices.Equal) {
					t.Errorf("upstream calls: got %v, want %v", got, tt.wantCalls)
				}
			})
		})
	}
}

func seq(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, code(i))
	}
	return out
}

// TestErrorsGoToTheirCallers: a code's own error (BatchError) reaches its
// callers only; an error of the whole call reaches every caller.
func TestErrorsGoToTheirCallers(t *testing.T) {
	outage := errors.New("connection reset")
	tests := []struct {
		name   string
		answer func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error)
		want   map[string]error // nil = the quote
	}{
		{
			name: "one unknown code",
			answer: func(_ context.Context, codes []string) ([]*kisfeed.Quote, error) {
				qs := quotes(codes)
				qs[slices.Index(codes, code(2))] = nil
				return qs, &kisfeed.BatchError{Errs: map[string]error{code(2): fmt.Errorf("quote %s: %w", code(2), kisfeed.ErrNotFound)}}
			},
			want: map[string]error{code(1): nil, code(2): kisfeed.ErrNotFound, code(3): nil},
		},
		{
			name: "the whole call fails",
			answer: func(context.Context, []string) ([]*kisfeed.Quote, error) {
				return nil, outage
			},
			want: map[string]error{code(1): outage, code(2): outage, code(3): outage},
		},
		{
			name: "a nil quote without an error",
			answer: func(_ context.Context, codes []string) ([]*kisfeed.Quote, error) {
				qs := quotes(codes)
				qs[slices.Index(codes, code(3))] = nil
				return qs, nil
			},
			want: map[string]error{code(1): nil, code(2): nil, code(3): kisfeed.ErrNotFound},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := &upstream{answer: tt.answer}
				s := newSource(t, up.source())
				got := collect(t, ask(t.Context(), s, code(1), code(2), code(3)), 3)
				for c, want := range tt.want {
					a := got[c]
					switch {
					case want == nil && (a.err != nil || a.q == nil || a.q.Code != c):
						t.Errorf("%s: got %+v, %v; want its quote", c, a.q, a.err)
					case want != nil && !errors.Is(a.err, want):
						t.Errorf("%s: got %v, want %v", c, a.err, want)
					}
				}
				if n := len(up.recorded()); n != 1 {
					t.Errorf("upstream calls: got %d, want 1", n)
				}
			})
		})
	}
}

// TestCallerLeavesAlone: a caller whose context ends returns at once; the
// batch goes on, on a context its cancellation does not touch, and the
// other callers get their quotes.
func TestCallerLeavesAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		up := &upstream{answer: func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
			<-release
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return quotes(codes), nil
		}}
		s := newSource(t, up.source())
		leaving, leave := context.WithCancel(t.Context())
		gone := ask(leaving, s, code(1))
		stays := ask(t.Context(), s, code(2), code(1))
		synctest.Wait()
		time.Sleep(DefaultWindow) // the window passes (fake time)
		synctest.Wait()
		if n := len(up.recorded()); n != 1 {
			t.Fatalf("upstream calls before release: got %d, want 1", n)
		}
		leave()
		if a := <-gone; !errors.Is(a.err, context.Canceled) {
			t.Errorf("leaving caller: got %v, want context.Canceled", a.err)
		}
		close(release)
		for c, a := range collect(t, stays, 2) {
			if a.err != nil || a.q.Code != c {
				t.Errorf("%s: got %+v, %v; want its quote", c, a.q, a.err)
			}
		}
	})
}

// TestAbandonedCodesAreNotAsked: a code whose every caller left before the
// batch was sent costs no place in it.
func TestAbandonedCodesAreNotAsked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{}
		s := newSource(t, up.source())
		leaving, leave := context.WithCancel(t.Context())
		gone := ask(leaving, s, code(1))
		stays := ask(t.Context(), s, code(2))
		synctest.Wait()
		leave()
		<-gone
		<-stays
		if got, want := up.recorded(), [][]string{{code(2)}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("upstream calls: got %v, want %v", got, want)
		}
	})
}

// TestBatchDeadline: the batch runs until the latest deadline of its
// callers, or the flight timeout when one of them has none, and never
// past the flight timeout.
func TestBatchDeadline(t *testing.T) {
	const flight = 20 * time.Second
	tests := []struct {
		name      string
		deadlines []time.Duration // 0 = none
		want      time.Duration   // from the first caller; the batch leaves one window later
	}{
		{"latest caller deadline", []time.Duration{time.Second, 3 * time.Second, 2 * time.Second}, 3 * time.Second},
		{"a caller without deadline", []time.Duration{time.Second, 0}, DefaultWindow + flight},
		{"capped by the flight timeout", []time.Duration{time.Minute}, DefaultWindow + flight},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := &upstream{}
				s := newSource(t, up.source(), WithFlightTimeout(flight))
				start := time.Now()
				ch := make(chan answer, len(tt.deadlines))
				for i, d := range tt.deadlines {
					ctx := t.Context()
					if d > 0 {
						var cancel context.CancelFunc
						ctx, cancel = context.WithTimeout(ctx, d)
						defer cancel()
					}
					go func() {
						q, err := s.Quote(ctx, kc(i))
						ch <- answer{code(i), q, err}
					}()
				}
				collect(t, ch, len(tt.deadlines))
				up.mu.Lock()
				dl, ok := up.ctxs[0].Deadline()
				up.mu.Unlock()
				if got := dl.Sub(start); !ok || got != tt.want {
					t.Errorf("batch deadline: got %s after start (set %v), want %s", got, ok, tt.want)
				}
			})
		})
	}
}

// TestPartialBatchWaitsForInFlight: with the in-flight limit reached, a
// batch whose window has passed keeps collecting until a batch finishes;
// then it leaves at once with everything it collected.
func TestPartialBatchWaitsForInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		first := true
		up := &upstream{}
		up.answer = func(_ context.Context, codes []string) ([]*kisfeed.Quote, error) {
			up.mu.Lock()
			wait := first
			first = false
			up.mu.Unlock()
			if wait {
				<-release
			}
			return quotes(codes), nil
		}
		s := newSource(t, up.source(), WithMaxInFlight(1))
		a := ask(t.Context(), s, code(1))
		synctest.Wait()
		time.Sleep(DefaultWindow) // first batch leaves and blocks upstream
		synctest.Wait()
		b := ask(t.Context(), s, code(2))
		synctest.Wait()
		time.Sleep(10 * DefaultWindow) // its window has long passed
		synctest.Wait()
		c := ask(t.Context(), s, code(3))
		synctest.Wait()
		if got := len(up.recorded()); got != 1 {
			t.Fatalf("upstream calls while one is in flight: got %d, want 1", got)
		}
		close(release)
		for _, ch := range []<-chan answer{a, b, c} {
			if r := <-ch; r.err != nil {
				t.Errorf("%s: %v", r.code, r.err)
			}
		}
		want := [][]string{{code(1)}, {code(2), code(3)}}
		if got := up.recorded(); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("upstream calls: got %v, want %v", got, want)
		}
	})
}

// TestClose: callers of a batch not yet sent get ErrClosed (matching
// kisfeed.ErrUnavailable); a batch in flight is cancelled and Close waits
// for it; later calls go straight to the upstream.
func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		started := make(chan struct{})
		up := &upstream{}
		up.answer = func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
			close(started)
			<-ctx.Done()
			return nil, ctx.Err()
		}
		s, err := New(up.source(), WithMaxInFlight(1))
		if err != nil {
			t.Fatal(err)
		}
		inFlight := ask(t.Context(), s, code(1))
		<-started
		pending := ask(t.Context(), s, code(2))
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if a := <-pending; !errors.Is(a.err, ErrClosed) || !errors.Is(a.err, kisfeed.ErrUnavailable) {
			t.Errorf("pending caller: got %v, want ErrClosed", a.err)
		}
		if a := <-inFlight; !errors.Is(a.err, context.Canceled) {
			t.Errorf("in-flight caller: got %v, want context.Canceled", a.err)
		}
		if _, err := s.Quote(t.Context(), kc(3)); !errors.Is(err, kisfeed.ErrInvalid) {
			t.Errorf("after Close: got %v, want the upstream's single call", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

// TestCodeErrorIsTheUpstreams: a code's own error in the upstream's
// BatchError reaches that code's callers as the upstream gave it.
func TestCodeErrorIsTheUpstreams(t *testing.T) {
	t.Parallel()
	notListed := fmt.Errorf("%w: 999999 is not listed", kisfeed.ErrNotFound)
	up := &upstream{answer: func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
		qs, be := quotes(codes), &kisfeed.BatchError{Errs: map[string]error{}}
		for i, c := range codes {
			if c == "999999" {
				qs[i], be.Errs[c] = nil, notListed
			}
		}
		if len(be.Errs) > 0 {
			return qs, be
		}
		return qs, nil
	}}
	s := newSource(t, up.source())
	_, err := s.Quote(t.Context(), kisfeed.MustParseCode("999999"))
	if err != notListed {
		t.Errorf("unlisted code: got %v, want the upstream's %v", err, notListed)
	}
	if got := up.recorded(); len(got) != 1 || !slices.Equal(got[0], []string{"999999"}) {
		t.Errorf("upstream Quotes calls: got %v, want [[999999]]", got)
	}
}

// TestPassThrough: the other methods reach the upstream unchanged.
func TestPassThrough(t *testing.T) {
	t.Parallel()
	up := &upstream{}
	s := newSource(t, up.source())
	if b, err := s.OrderBook(t.Context(), kc(1)); err != nil || b.Code != code(1) {
		t.Errorf("OrderBook: got %+v, %v", b, err)
	}
	if qs, err := s.Quotes(t.Context(), []kisfeed.Code{kc(1), kc(2)}); err != nil || len(qs) != 2 {
		t.Errorf("Quotes: got %d quotes, %v", len(qs), err)
	}
	if n := len(up.recorded()); n != 1 {
		t.Errorf("upstream Quotes calls: got %d, want 1", n)
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	up := &upstream{}
	tests := []struct {
		name string
		opt  Option
	}{
		{"zero window", WithWindow(0)},
		{"zero batch", WithMaxBatch(0)},
		{"zero in flight", WithMaxInFlight(0)},
		{"negative flight timeout", WithFlightTimeout(-time.Second)},
		{"zero partial rate", WithPartialRate(0)},
	}
	for _, tt := range tests {
		if _, err := New(up.source(), tt.opt); err == nil {
			t.Errorf("%s: got no error", tt.name)
		}
	}
	if _, err := New(nil); err == nil {
		t.Error("nil upstream: got no error")
	}
}

// TestPartialRate: partial batches leave at most at the partial rate and
// keep collecting codes while held back; full batches are not held.
func TestPartialRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{}
		s := newSource(t, up.source(), WithPartialRate(1), WithMaxBatch(3))
		start := time.Now()
		first := ask(t.Context(), s, code(1))
		<-first // a partial batch, after one window
		if got := time.Since(start); got != DefaultWindow {
			t.Errorf("first partial batch answered after %s, want %s", got, DefaultWindow)
		}
		second := ask(t.Context(), s, code(2))
		synctest.Wait()
		time.Sleep(100 * time.Millisecond) // its window has passed; the rate holds it
		synctest.Wait()
		third := ask(t.Context(), s, code(3))
		synctest.Wait()
		if n := len(up.recorded()); n != 1 {
			t.Fatalf("upstream calls while the partial rate holds: got %d, want 1", n)
		}
		<-second
		<-third
		// One second after the first partial batch left.
		if got, want := time.Since(start), DefaultWindow+time.Second; got != want {
			t.Errorf("held partial batch answered after %s, want %s (the partial rate)", got, want)
		}
		before := time.Now()
		full := ask(t.Context(), s, code(4), code(5), code(6))
		collect(t, full, 3)
		if got := time.Since(before); got != 0 {
			t.Errorf("full batch answered after %s, want at once", got)
		}
		want := [][]string{{code(1)}, {code(2), code(3)}}
		got := up.recorded()
		if len(got) != 3 || !slices.EqualFunc(got[:2], want, slices.Equal) || len(got[2]) != 3 {
			t.Errorf("upstream calls: got %v, want %v then one full batch", got, want)
		}
	})
}

// BenchmarkQuote measures the batcher's own cost per Quote under many
// concurrent callers of distinct codes over an upstream that answers at
// once, and reports the codes per upstream call it achieved.
//
//	go test -run '^$' -bench Quote -cpu 2,8 ./internal/batch/
func BenchmarkQuote(b *testing.B) {
	up := &upstream{}
	s, err := New(up.source(), WithWindow(time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var next sync.Mutex
	n := 0
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			next.Lock()
			c := code(n % 1000000)
			n++
			next.Unlock()
			if _, err := s.Quote(context.Background(), kisfeed.MustParseCode(c)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if calls := len(up.recorded()); calls > 0 {
		b.ReportMetric(float64(b.N)/float64(calls), "codes/call")
	}
}
