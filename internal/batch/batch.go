package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/kisfeed/kisfeed"
)

// Defaults.
const (
	// DefaultMaxBatch is the most codes in one upstream call: what
	// intstock-multprice takes (kis.MaxBatch).
	DefaultMaxBatch = 30
	// DefaultWindow is how long a batch collects codes after its first.
	// It is what a lone cold miss pays in added latency: a tenth of KIS's
	// own answer time (~50 ms) and of the 55 ms between two rate slots
	// at 18 req/s, while misses arriving together (a page of a watch
	// list, a flood after a restart) land in one call.
	DefaultWindow = 5 * time.Millisecond
	// DefaultMaxInFlight is how many batches may run before a partial
	// batch waits for one to finish (see the package comment).
	DefaultMaxInFlight = 2
	// DefaultFlightTimeout bounds a batch none of whose callers has a
	// deadline.
	DefaultFlightTimeout = 30 * time.Second
)

// ErrClosed is the answer to calls still waiting in a batch not yet sent
// when [Source.Close] runs. It matches [kisfeed.ErrUnavailable], so a
// cache above serves its stale copy.
var ErrClosed = fmt.Errorf("quote batcher closed: %w", kisfeed.ErrUnavailable)

// Source batches Quote calls to the source it wraps; every other method
// passes through. Create it with [New]; stop it with Close.
type Source struct {
	up            kisfeed.Source
	window        time.Duration
	maxBatch      int
	maxInFlight   int
	flightTimeout time.Duration
	partial       *rate.Limiter // paces partial batches; nil = no pacing

	ctx    context.Context // parent of every batch; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // running batches

	mu       sync.Mutex
	calls    map[kisfeed.Code]*call // guarded by mu: calls pending or in flight, by code
	pending  *batch                 // guarded by mu: the batch collecting codes, or nil
	inFlight int                    // guarded by mu: batches sent and not yet answered
	closed   bool                   // guarded by mu
}

var _ kisfeed.Source = (*Source)(nil)

// batch is a set of calls sent together.
type batch struct {
	calls     []*call
	latest    time.Time   // latest deadline among its callers
	unbounded bool        // a caller without a deadline joined
	due       bool        // the window has passed
	timer     *time.Timer // ends the window
}

// call is one code's lookup, shared by every caller of that code.
type call struct {
	code    kisfeed.Code
	batch   *batch // guarded by Source.mu: the pending batch, nil once sent
	waiters int    // guarded by Source.mu: callers still waiting
	done    chan struct{}
	q       *kisfeed.Quote // set before done is closed
	err     error          // set before done is closed
}

// Option configures a [Source].
type Option func(*Source) error

// checked is the Option that sets a setting with set when ok, its check
// of v, holds; otherwise it fails as "batch: NAME V: want WANT".
func checked[T any](name string, v T, ok bool, want string, set func(s *Source)) Option {
	return func(s *Source) error {
		if !ok {
			return fmt.Errorf("batch: %s %v: want %s", name, v, want)
		}
		set(s)
		return nil
	}
}

// WithWindow sets the collection window (default [DefaultWindow]); it
// must be > 0.
func WithWindow(d time.Duration) Option {
	return checked("window", d, d > 0, "> 0", func(s *Source) { s.window = d })
}

// WithMaxBatch sets the most codes in one upstream call (default
// [DefaultMaxBatch]), 1 or more.
func WithMaxBatch(n int) Option {
	return checked("max batch", n, n >= 1, "1 or more", func(s *Source) { s.maxBatch = n })
}

// WithMaxInFlight sets how many batches may run before a partial batch
// waits for one to finish (default [DefaultMaxInFlight]), 1 or more. Full
// batches are sent whatever the count. Size it to the upstream's
// concurrency: about two per app key.
func WithMaxInFlight(n int) Option {
	return checked("max in flight", n, n >= 1, "1 or more", func(s *Source) { s.maxInFlight = n })
}

// WithPartialRate caps how many partial batches (fewer than the maximum
// codes) leave per second, > 0; full batches are not counted. Without it
// a partial batch leaves as soon as its window ends. Under load a slot of
// the upstream's rate budget spent on a half-empty batch is one that order
// books and charts, which cannot batch, do not get, and one fewer code per
// call fills the cache; so set it to a share of the budget (package wiring
// gives partial batches a quarter). Held back, a partial batch keeps
// collecting codes and leaves when it is full or the rate allows.
func WithPartialRate(perSecond float64) Option {
	return checked("partial rate", perSecond, perSecond > 0, "> 0", func(s *Source) { s.partial = rate.NewLimiter(rate.Limit(perSecond), 1) })
}

// WithFlightTimeout bounds a batch that a caller without a deadline joined
// (default [DefaultFlightTimeout]); it must be > 0.
func WithFlightTimeout(d time.Duration) Option {
	return checked("flight timeout", d, d > 0, "> 0", func(s *Source) { s.flightTimeout = d })
}

// New wraps up, whose Quotes must be one upstream call per batch.
func New(up kisfeed.Source, opts ...Option) (*Source, error) {
	if up == nil {
		return nil, errors.New("batch: upstream source is nil")
	}
	s := &Source{
		up:            up,
		window:        DefaultWindow,
		maxBatch:      DefaultMaxBatch,
		maxInFlight:   DefaultMaxInFlight,
		flightTimeout: DefaultFlightTimeout,
		calls:         map[kisfeed.Code]*call{},
	}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Quote implements [kisfeed.Source]: the code joins the call already
// pending or in flight for it, or the batch being collected. It returns
// when that call is answered or ctx ends, whichever is first. An error of
// the whole batch is every caller's error; a code's own error (from the
// upstream's *[kisfeed.BatchError]) is only its callers'. Calls after
// Close go straight to the upstream's Quote. Codes arrive parsed
// ([kisfeed.Code]).
func (s *Source) Quote(ctx context.Context, code kisfeed.Code) (*kisfeed.Quote, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return s.up.Quote(ctx, code)
	}
	c, ok := s.calls[code]
	if !ok {
		c = &call{code: code, done: make(chan struct{})}
		s.calls[code] = c
		b := s.pending
		if b == nil {
			b = &batch{}
			s.pending = b
			b.timer = time.AfterFunc(s.window, func() { s.windowEnd(b) })
		}
		b.calls = append(b.calls, c)
		c.batch = b
	}
	c.waiters++
	if b := c.batch; b != nil {
		// Still collecting: this caller's deadline may give the batch
		// longer to run.
		if dl, ok := ctx.Deadline(); ok {
			if dl.After(b.latest) {
				b.latest = dl
			}
		} else {
			b.unbounded = true
		}
		if len(b.calls) >= s.maxBatch {
			s.sendLocked()
		}
	}
	s.mu.Unlock()

	select {
	case <-c.done:
		if c.err != nil {
			return nil, c.err
		}
		q := *c.q // each caller its own copy: callers may set Meta
		return &q, nil
	case <-ctx.Done():
		s.mu.Lock()
		c.waiters--
		s.mu.Unlock()
		return nil, ctx.Err()
	}
}

// windowEnd marks b's window as passed and sends it if it may go.
func (s *Source) windowEnd(b *batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending != b {
		return // already sent (full), or closed
	}
	b.due = true
	s.sendPartialLocked()
}

// sendPartialLocked sends the pending batch, whose window has passed,
// unless the in-flight limit is reached (then the first batch to finish
// calls it again) or the partial rate says later (then a timer does).
func (s *Source) sendPartialLocked() {
	b := s.pending
	if s.inFlight >= s.maxInFlight {
		return
	}
	if s.partial != nil {
		now := time.Now()
		r := s.partial.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now) // the timer asks again; the slot stays free for it
			b.timer.Stop()
			b.timer = time.AfterFunc(d, func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				if s.pending == b {
					s.sendPartialLocked()
				}
			})
			return
		}
	}
	s.sendLocked()
}

// sendLocked sends the pending batch. Calls whose callers have all left
// are dropped first: nobody would take their answer, and a rate slot is
// worth more than a cache fill nobody asked for any more.
func (s *Source) sendLocked() {
	b := s.pending
	s.pending = nil
	b.timer.Stop()
	live := b.calls[:0]
	for _, c := range b.calls {
		c.batch = nil
		if c.waiters > 0 {
			live = append(live, c)
			continue
		}
		delete(s.calls, c.code)
		c.err = context.Canceled
		close(c.done)
	}
	b.calls = live
	if len(live) == 0 {
		return
	}
	s.inFlight++
	s.wg.Add(1)
	go s.run(b) // owned by s: Close cancels s.ctx and waits on s.wg
}

// run sends b upstream and hands each caller its answer.
func (s *Source) run(b *batch) {
	defer s.wg.Done()
	d := s.flightTimeout
	if !b.unbounded {
		d = min(d, time.Until(b.latest))
	}
	ctx, cancel := context.WithTimeout(s.ctx, d)
	codes := make([]kisfeed.Code, len(b.calls))
	for i, c := range b.calls {
		codes[i] = c.code
	}
	qs, err := s.up.Quotes(ctx, codes)
	cancel()
	deliver(b.calls, qs, err)

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range b.calls {
		if s.calls[c.code] == c {
			delete(s.calls, c.code)
		}
	}
	s.inFlight--
	if p := s.pending; p != nil && p.due {
		s.sendPartialLocked()
	}
}

// deliver sets each call's answer and wakes its callers.
func deliver(calls []*call, qs []*kisfeed.Quote, err error) {
	var be *kisfeed.BatchError
	if err != nil && !errors.As(err, &be) {
		for _, c := range calls {
			c.err = err
			close(c.done)
		}
		return
	}
	for i, c := range calls {
		switch {
		case be != nil && be.Errs[c.code.String()] != nil:
			c.err = be.Errs[c.code.String()]
		case len(qs) != len(calls):
			c.err = fmt.Errorf("quote %s: upstream answered %d quotes for %d codes", c.code, len(qs), len(calls))
		case qs[i] == nil:
			c.err = fmt.Errorf("quote %s: upstream returned no quote: %w", c.code, kisfeed.ErrNotFound)
		default:
			c.q = qs[i]
		}
		close(c.done)
	}
}

// Close stops the batcher: calls waiting in a batch not yet sent get
// [ErrClosed], batches in flight are cancelled, and Close waits for their
// goroutines. Later Quote calls go straight to the upstream. It is safe to
// call more than once.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if b := s.pending; b != nil {
		s.pending = nil
		b.timer.Stop()
		for _, c := range b.calls {
			delete(s.calls, c.code)
			c.err = ErrClosed
			close(c.done)
		}
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// Quotes passes through: the caller has batched already.
func (s *Source) Quotes(ctx context.Context, codes []kisfeed.Code) ([]*kisfeed.Quote, error) {
	return s.up.Quotes(ctx, codes)
}

// OrderBook passes through.
func (s *Source) OrderBook(ctx context.Context, code kisfeed.Code) (*kisfeed.OrderBook, error) {
	return s.up.OrderBook(ctx, code)
}

// Candles passes through.
func (s *Source) Candles(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
	return s.up.Candles(ctx, q)
}

// StockInfo passes through.
func (s *Source) StockInfo(ctx context.Context, code kisfeed.Code) (*kisfeed.StockInfo, error) {
	return s.up.StockInfo(ctx, code)
}

// Universe passes through.
func (s *Source) Universe(ctx context.Context) ([]kisfeed.Stock, error) {
	return s.up.Universe(ctx)
}

// IsTradingDay passes through.
func (s *Source) IsTradingDay(ctx context.Context, date time.Time) (bool, error) {
	return s.up.IsTradingDay(ctx, date)
}
