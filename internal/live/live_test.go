package live

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// newTestLive is a Live over a client that is never run: Subscribe and
// Unsubscribe only place registrations, so demand is observable in Stats
// without a network.
func newTestLive(t testing.TB, keys int, perKey int, linger time.Duration) *Live {
	t.Helper()
	cfg := Config{RESTBaseURL: "http://127.0.0.1:1", WSURL: "ws://127.0.0.1:1/tryitout", Linger: linger}
	for i := range keys {
		cfg.Keys = append(cfg.Keys, stream.Credentials{AppKey: "key-" + string(rune('a'+i)), AppSecret: "secret"})
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if perKey > 0 {
		// The client's cap, lowered so a test reaches it with few codes.
		c, err := stream.New(stream.Config{Keys: cfg.Keys, RESTBaseURL: cfg.RESTBaseURL, WSURL: "ws://127.0.0.1:1/tryitout",
			MaxPerSession: perKey, Handler: l.dispatch})
		if err != nil {
			t.Fatal(err)
		}
		l.client = c
	}
	return l
}

// registrations is the registrations every key holds, summed.
func registrations(l *Live) int {
	n := 0
	for _, k := range l.Stats().Stream.Keys {
		n += k.Registrations
	}
	return n
}

var (
	samsung = kisfeed.MustParseCode("005930")
	hynix   = kisfeed.MustParseCode("000660")
)

// TestAcquireRefcount: the first holder registers, later ones only
// count; the last release unregisters after the linger, not before, and
// an acquire during the linger keeps the registration.
func TestAcquireRefcount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newTestLive(t, 1, 0, 30*time.Second)
		defer l.Close()
		ctx := t.Context()
		r1, err := l.Acquire(ctx, samsung)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := l.Acquire(ctx, samsung, stream.KindTrade)
		if err != nil {
			t.Fatal(err)
		}
		var release func()
		steps := []struct {
			name string
			do   func()
			want int // registrations
		}{
			{"two holders", func() {}, 2},
			{"trade holder leaves", r2, 2},
			{"released twice", r2, 2},
			{"last holder leaves", r1, 2},
			{"29 s later", func() { time.Sleep(29 * time.Second); synctest.Wait() }, 2},
			// At 29 s the book is acquired again; at 34 s the trade's
			// linger has ended but the book is still held.
			{"book back within the linger", func() {
				r3, err := l.Acquire(ctx, samsung, stream.KindBook)
				if err != nil {
					t.Fatal(err)
				}
				release = r3
				time.Sleep(5 * time.Second)
				synctest.Wait()
			}, 1},
			{"book released: lingering", func() { release() }, 1},
			{"29 s into the book's linger", func() { time.Sleep(29 * time.Second); synctest.Wait() }, 1},
			{"book's linger ends", func() { time.Sleep(time.Second); synctest.Wait() }, 0},
		}
		for _, s := range steps {
			s.do()
			if got := registrations(l); got != s.want {
				t.Fatalf("%s: %d registrations, want %d (demand %+v)", s.name, got, s.want, l.Stats().Demand)
			}
		}
		if d := l.Stats().Demand; len(d) != 0 {
			t.Errorf("demand after every linger: %+v, want none", d)
		}
	})
}

// TestAcquireNoLinger: with a negative linger the last release
// unregisters at once.
func TestAcquireNoLinger(t *testing.T) {
	l := newTestLive(t, 1, 0, -1)
	defer l.Close()
	r, err := l.Acquire(t.Context(), samsung)
	if err != nil {
		t.Fatal(err)
	}
	r()
	if got := registrations(l); got != 0 {
		t.Errorf("registrations after the release: %d, want 0", got)
	}
}

// TestAcquireLimit: beyond the registrations the keys hold, Acquire fails
// with the client's typed error naming the cap and the use, and changes
// nothing.
func TestAcquireLimit(t *testing.T) {
	l := newTestLive(t, 2, 3, 0) // 2 keys × 3 = 6 registrations
	defer l.Close()
	ctx := t.Context()
	for _, c := range []string{"005930", "000660", "035420"} {
		if _, err := l.Acquire(ctx, kisfeed.MustParseCode(c)); err != nil {
			t.Fatalf("acquire %s: %v", c, err)
		}
	}
	_, err := l.Acquire(ctx, kisfeed.MustParseCode("051910"), stream.KindTrade)
	var le *stream.SubscriptionLimitError
	if !errors.Is(err, stream.ErrSubscriptionLimit) || !errors.As(err, &le) {
		t.Fatalf("acquire beyond the cap: %v, want a *stream.SubscriptionLimitError", err)
	}
	if le.InUse != 6 || le.PerKey != 3 || le.Keys != 2 || !strings.Contains(err.Error(), "6 registrations in use of 6") {
		t.Errorf("error %+v (%q), want 6 in use of 2 keys × 3", le, err)
	}
	if got := registrations(l); got != 6 {
		t.Errorf("registrations after the refusal: %d, want 6", got)
	}
	// An existing code's second holder needs no registration: accepted.
	if _, err := l.Acquire(ctx, samsung); err != nil {
		t.Errorf("second holder of a registered code: %v", err)
	}
}

// TestStartLimit: STREAM_CODES beyond the cap fail Start, naming the
// setting.
func TestStartLimit(t *testing.T) {
	l := newTestLive(t, 1, 2, 0)
	l.cfg.Codes = []kisfeed.Code{samsung, hynix}
	defer l.Close()
	err := l.Start()
	if !errors.Is(err, stream.ErrSubscriptionLimit) || !strings.Contains(err.Error(), "STREAM_CODES 000660") {
		t.Errorf("Start: %v, want the limit error naming STREAM_CODES 000660", err)
	}
}

// TestLifetimeCodes: a STREAM_CODES code is never released, whatever
// other holders do.
func TestLifetimeCodes(t *testing.T) {
	l := newTestLive(t, 1, 0, -1)
	defer l.Close()
	if err := l.hold(samsung); err != nil {
		t.Fatal(err)
	}
	r, err := l.Acquire(t.Context(), samsung)
	if err != nil {
		t.Fatal(err)
	}
	r()
	if got := registrations(l); got != 2 {
		t.Errorf("registrations: %d, want 2 (held for the lifetime)", got)
	}
}

// TestListen: per-code listeners hear their code only, all-code listeners
// everything, and stop ends delivery.
func TestListen(t *testing.T) {
	l := newTestLive(t, 1, 0, 0)
	defer l.Close()
	var mu sync.Mutex
	got := map[string][]string{}
	rec := func(name string) Handler {
		return func(ev stream.Event) {
			mu.Lock()
			defer mu.Unlock()
			got[name] = append(got[name], eventCode(&ev))
		}
	}
	stopS := l.Listen(samsung, rec("samsung"))
	stopAll := l.ListenAll(rec("all"))
	l.dispatch(stream.Event{Kind: stream.EventTrade, Trade: kisfeed.Trade{Code: "005930"}})
	l.dispatch(stream.Event{Kind: stream.EventBook, Book: kisfeed.Book{Code: "000660"}})
	stopS()
	stopS()
	l.dispatch(stream.Event{Kind: stream.EventTrade, Trade: kisfeed.Trade{Code: "005930"}})
	stopAll()
	l.dispatch(stream.Event{Kind: stream.EventTrade, Trade: kisfeed.Trade{Code: "005930"}})
	want := map[string]string{"samsung": "005930", "all": "005930,000660,005930"}
	for name, w := range want {
		if g := strings.Join(got[name], ","); g != w {
			t.Errorf("%s heard %q, want %q", name, g, w)
		}
	}
}

// fakeCache records what the writer writes; PutTrade blocks while gate
// is set, so a test can pile events up behind a write.
type fakeCache struct {
	mu      sync.Mutex
	trades  []kisfeed.Trade
	books   []kisfeed.Book
	refresh []string
	gate    chan struct{}
	started chan struct{}
}

func (f *fakeCache) PutTrade(ctx context.Context, t kisfeed.Trade) (bool, error) {
	if f.gate != nil {
		f.started <- struct{}{}
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trades = append(f.trades, t)
	return true, nil
}

func (f *fakeCache) PutBook(ctx context.Context, b kisfeed.Book, source string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.books = append(f.books, b)
	return true, nil
}

func (f *fakeCache) RefreshQuote(ctx context.Context, code kisfeed.Code) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refresh = append(f.refresh, "quote "+code.String())
	return nil
}

func (f *fakeCache) RefreshOrderBook(ctx context.Context, code kisfeed.Code) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refresh = append(f.refresh, "book "+code.String())
	if code == hynix {
		return errors.New("refused")
	}
	return nil
}

// TestWriterCoalesces: events arriving while a code is being written are
// coalesced to the newest trade and book; the reader never waits.
func TestWriterCoalesces(t *testing.T) {
	fc := &fakeCache{gate: make(chan struct{}), started: make(chan struct{}, 1)}
	w := newWriter(fc, "kis", slog.New(slog.DiscardHandler))
	w.start(t.Context())
	defer w.stop()
	trade := func(cum int64) stream.Event {
		return stream.Event{Kind: stream.EventTrade, Trade: kisfeed.Trade{Code: "005930", Time: time.Date(2026, 3, 10, 10, 0, 0, 0, kisfeed.KST), CumVolume: cum}}
	}
	w.offer(trade(10))
	<-fc.started                              // the first trade is being written
	for _, cum := range []int64{20, 40, 30} { // 30 arrives late: 40 stays
		w.offer(trade(cum))
	}
	expected := trade(50)
	expected.Trade.Expected = true // an auction's expected price: not written
	w.offer(expected)
	w.offer(stream.Event{Kind: stream.EventBook, Book: kisfeed.Book{Code: "005930", CumVolume: 1}})
	w.offer(stream.Event{Kind: stream.EventBook, Book: kisfeed.Book{Code: "005930", CumVolume: 2}})
	fc.gate <- struct{}{}
	<-fc.started
	fc.gate <- struct{}{}
	if err := w.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	var cums []int64
	for _, tr := range fc.trades {
		cums = append(cums, tr.CumVolume)
	}
	if len(cums) != 2 || cums[0] != 10 || cums[1] != 40 {
		t.Errorf("trades written: %v, want [10 40]", cums)
	}
	if len(fc.books) != 1 || fc.books[0].CumVolume != 2 {
		t.Errorf("books written: %+v, want only the newest", fc.books)
	}
	if s := w.stats(); s.Trades != 2 || s.Books != 1 {
		t.Errorf("stats %+v, want 2 trades 1 book", s)
	}
}

// TestGapLog: the gaps of one reconnect make one log line naming the
// codes and the window; a failed resync is counted in it.
func TestGapLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		log := slog.New(slog.NewTextHandler(&buf, nil))
		l := newTestLive(t, 1, 0, 0)
		l.gaps = newGapLog(log, gapQuiet, true)
		fc := &fakeCache{}
		l.cfg.Cache = fc
		from := time.Date(2026, 3, 10, 10, 0, 0, 0, kisfeed.KST)
		for i, code := range []string{"005930", "000660"} {
			l.dispatch(stream.Event{Kind: stream.EventGap, Key: "key1", Gap: kisfeed.Gap{Code: code,
				From: from.Add(time.Duration(i) * time.Second), To: from.Add(5 * time.Second), Reason: "dropped"}})
			l.resync(t.Context(), code)
		}
		if buf.Len() != 0 && !strings.Contains(buf.String(), "resync from REST failed") {
			t.Fatalf("logged before the quiet period: %s", buf.String())
		}
		time.Sleep(gapQuiet)
		synctest.Wait()
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		var gapLines []string
		for _, ln := range lines {
			if strings.Contains(ln, "kis stream gap") {
				gapLines = append(gapLines, ln)
			}
		}
		if len(gapLines) != 1 {
			t.Fatalf("gap lines: %d, want 1\n%s", len(gapLines), buf.String())
		}
		for _, want := range []string{"codes=2", "list=000660,005930", "from=10:00:00", "to=10:00:05", "reason=dropped", "resync_failed=1", "key=key1"} {
			if !strings.Contains(gapLines[0], want) {
				t.Errorf("gap line %q lacks %q", gapLines[0], want)
			}
		}
		fc.mu.Lock()
		defer fc.mu.Unlock()
		if got := strings.Join(fc.refresh, ","); got != "quote 005930,book 005930,quote 000660,book 000660" {
			t.Errorf("resync refreshes: %s", got)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for a logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}
