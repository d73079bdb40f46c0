package live

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/cache"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// The write-through's tuning.
const (
	// writeWorkers write codes in parallel (one code at a time each, so a
	// code's writes stay in order): a cache write is a Redis round trip,
	// and a code's first trade may wait for a REST base quote.
	writeWorkers = 4
	// writeTimeout bounds one code's write, the base quote fetch included.
	writeTimeout = 10 * time.Second
	// baseRetry is the least time between two base quote fetches for a
	// code whose fetch failed: trades keep coming, and each must not
	// become a REST call while the upstream is down.
	baseRetry = 5 * time.Second
)

// writer is the write-through consumer. The KIS reader only stores the
// event in its code's slot (latest wins) and, if the slot was idle,
// queues the code; workers write the slots out. Latest-wins loses
// nothing: a trade's cumulative fields (volume, value, OHLC) are the
// day's as of that trade, and a book is the whole book, so the newest
// of each is the cache's whole state. The queue holds each code at most
// once, so it is bounded by the codes streamed; the reader never waits.
type writer struct {
	cache  Cache
	source string
	log    *slog.Logger

	mu      sync.Mutex // guards slots, queue, busy, waiters
	slots   map[string]*slot
	queue   []string
	busy    int             // workers writing
	waiters []chan struct{} // Flush callers, released when idle
	wake    chan struct{}   // cap 1

	trades, books, skipped, failed atomic.Int64

	cancel context.CancelFunc
	wg     sync.WaitGroup

	// afterWrite, when set (tests), is called after each slot is written.
	afterWrite func(code string)
}

// slot is one code's pending writes.
type slot struct {
	// The newest trade and book not yet written, kept by value so that
	// the reader's hand-over allocates nothing once the slot exists.
	trade             kisfeed.Trade
	book              kisfeed.Book
	hasTrade, hasBook bool
	queued            bool      // in the queue or being written
	noBase            time.Time // no base fetch before this (wall clock)
}

func newWriter(c Cache, source string, log *slog.Logger) *writer {
	return &writer{cache: c, source: source, log: log, slots: map[string]*slot{}, wake: make(chan struct{}, 1)}
}

// offer is the writer's Handler: never blocks.
func (w *writer) offer(ev stream.Event) {
	var code string
	switch ev.Kind {
	case stream.EventTrade:
		if ev.Trade.Expected {
			// An auction's expected price is not an execution: it must
			// not take a real trade's place in the slot.
			return
		}
		code = ev.Trade.Code
	case stream.EventBook:
		code = ev.Book.Code
	default:
		return
	}
	w.mu.Lock()
	s := w.slots[code]
	if s == nil {
		s = &slot{}
		w.slots[code] = s
	}
	if ev.Kind == stream.EventTrade {
		// Within a session trades arrive in order; across a reconnect an
		// older one may follow a newer: keep the larger cumulative volume.
		if !s.hasTrade || kisfeed.Day(ev.Trade.Time).After(kisfeed.Day(s.trade.Time)) || ev.Trade.CumVolume >= s.trade.CumVolume {
			s.trade, s.hasTrade = ev.Trade, true
		}
	} else {
		s.book, s.hasBook = ev.Book, true
	}
	queue := !s.queued
	if queue {
		s.queued = true
		w.queue = append(w.queue, code)
	}
	w.mu.Unlock()
	if queue {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

func (w *writer) start(ctx context.Context) {
	ctx, w.cancel = context.WithCancel(ctx)
	for range writeWorkers {
		w.wg.Go(func() { w.work(ctx) })
	}
}

func (w *writer) stop() {
	if w.cancel != nil {
		w.cancel()
		w.wg.Wait()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ch := range w.waiters {
		close(ch)
	}
	w.waiters = nil
}

// work writes queued codes until ctx ends.
func (w *writer) work(ctx context.Context) {
	for {
		code, s, trade, book, ok := w.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
				continue
			}
		}
		w.write(ctx, s, trade, book)
		if w.afterWrite != nil {
			w.afterWrite(code)
		}
		w.done(code, s)
		// Another worker may be asleep while codes remain queued.
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// next pops a queued code and takes its pending events.
func (w *writer) next() (string, *slot, *kisfeed.Trade, *kisfeed.Book, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return "", nil, nil, nil, false
	}
	code := w.queue[0]
	w.queue = w.queue[1:]
	s := w.slots[code]
	var trade *kisfeed.Trade
	var book *kisfeed.Book
	if s.hasTrade {
		t := s.trade
		trade = &t
	}
	if s.hasBook {
		b := s.book
		book = &b
	}
	s.hasTrade, s.hasBook = false, false
	w.busy++
	return code, s, trade, book, true
}

// done requeues code if events came in while it was written, and wakes
// Flush callers once nothing is pending.
func (w *writer) done(code string, s *slot) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.busy--
	if s.hasTrade || s.hasBook {
		w.queue = append(w.queue, code)
	} else {
		s.queued = false
	}
	if len(w.queue) == 0 && w.busy == 0 {
		for _, ch := range w.waiters {
			close(ch)
		}
		w.waiters = nil
	}
}

// write puts one code's newest trade and book into the cache.
func (w *writer) write(ctx context.Context, s *slot, trade *kisfeed.Trade, book *kisfeed.Book) {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if trade != nil {
		if time.Now().Before(s.noBase) { // s.noBase is only touched by the worker holding the slot
			w.skipped.Add(1)
		} else {
			ok, err := w.cache.PutTrade(ctx, *trade)
			w.count(&w.trades, ok, err)
			if errors.Is(err, cache.ErrNoBase) {
				s.noBase = time.Now().Add(baseRetry)
				w.log.Warn("live: trade not written through: no base quote", "code", trade.Code, "err", err)
			}
		}
	}
	if book != nil {
		ok, err := w.cache.PutBook(ctx, *book, w.source)
		w.count(&w.books, ok, err)
	}
}

func (w *writer) count(written *atomic.Int64, ok bool, err error) {
	switch {
	case err != nil:
		w.failed.Add(1)
	case ok:
		written.Add(1)
	default:
		w.skipped.Add(1)
	}
}

// flush waits until nothing is queued or being written.
func (w *writer) flush(ctx context.Context) error {
	w.mu.Lock()
	if len(w.queue) == 0 && w.busy == 0 {
		w.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	w.waiters = append(w.waiters, ch)
	w.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WriteStats count the write-through's cache writes.
type WriteStats struct {
	Trades  int64 // trades merged into cached quotes
	Books   int64 // books written
	Skipped int64 // events not newer than the cache (or waiting for a base quote)
	Failed  int64 // writes that failed (no base quote, a bad code)
}

func (w *writer) stats() WriteStats {
	return WriteStats{Trades: w.trades.Load(), Books: w.books.Load(), Skipped: w.skipped.Load(), Failed: w.failed.Load()}
}
