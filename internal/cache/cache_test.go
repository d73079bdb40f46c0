package cache_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/kisfeed/kisfeed/internal/clocktest"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/cache"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
	"github.com/kisfeed/kisfeed/krx"
)

// sessions is the wiring's session-boundary rule (KRX opens and closes),
// which intraday freshness ends at.
var sessions = cache.WithSessionBoundaries(krx.NextBoundary)

// clock is the shared settable test clock.
type clock = clocktest.Clock

func newClock(t time.Time) *clock { return clocktest.New(t) }

// kst returns an instant on 2026-03-10 (a Tuesday, a trading day) in KST.
func kst(hh, mm int) time.Time {
	return time.Date(2026, 3, 10, hh, mm, 0, 0, kisfeed.KST)
}

var errDown = errors.New("dial tcp 127.0.0.1:9443: connect: connection refused")

// fakeUpstream counts calls and answers quotes whose price is the call
// number, failing while down is set.
type fakeUpstream struct {
	calls atomic.Int64
	down  atomic.Bool
	now   func() time.Time
}

func (f *fakeUpstream) source() *sourcetest.Func {
	quote := func(code string) (*kisfeed.Quote, error) {
		if code == "999999" {
			return nil, fmt.Errorf("%w: %s", kisfeed.ErrNotFound, code)
		}
		return &kisfeed.Quote{Code: code, Price: 1000 * f.calls.Load(),
			Meta: kisfeed.Meta{AsOf: f.now(), Source: "fake", Origin: kisfeed.OriginSource}}, nil
	}
	return &sourcetest.Func{
		QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
			f.calls.Add(1)
			if f.down.Load() {
				return nil, errDown
			}
			return quote(code)
		},
		QuotesFn: func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
			f.calls.Add(1)
			if f.down.Load() {
				return nil, errDown
			}
			out := make([]*kisfeed.Quote, len(codes))
			var be *kisfeed.BatchError
			for i, c := range codes {
				q, err := quote(c)
				if err != nil {
					if be == nil {
						be = &kisfeed.BatchError{Errs: map[string]error{}}
					}
					be.Errs[c] = err
					continue
				}
				out[i] = q
			}
			if be != nil {
				return out, be
			}
			return out, nil
		},
		OrderBookFn: func(ctx context.Context, code string) (*kisfeed.OrderBook, error) {
			f.calls.Add(1)
			if f.down.Load() {
				return nil, errDown
			}
			return &kisfeed.OrderBook{Code: code, Meta: kisfeed.Meta{AsOf: f.now(), Source: "fake"}}, nil
		},
		CandlesFn: func(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
			f.calls.Add(1)
			if f.down.Load() {
				return nil, errDown
			}
			return &kisfeed.Candles{Code: q.Code.String(), Interval: q.Interval,
				Bars: []kisfeed.Candle{{Time: kisfeed.Day(f.now()), Close: 100}}, Meta: kisfeed.Meta{AsOf: f.now(), Source: "fake"}}, nil
		},
		StockInfoFn: func(ctx context.Context, code string) (*kisfeed.StockInfo, error) {
			f.calls.Add(1)
			if f.down.Load() {
				return nil, errDown
			}
			return &kisfeed.StockInfo{Code: code, Name: "x", Meta: kisfeed.Meta{AsOf: f.now(), Source: "fake"}}, nil
		},
		UniverseFn: func(ctx context.Context) ([]kisfeed.Stock, error) {
			f.calls.Add(1)
			if f.down.Load() {
				return nil, errDown
			}
			return []kisfeed.Stock{{Code: "005930"}, {Code: "000660"}}, nil
		},
		IsTradingDayFn: func(ctx context.Context, d time.Time) (bool, error) {
			f.calls.Add(1)
			if f.down.Load() {
				return false, errDown
			}
			return d.Weekday() != time.Sunday, nil
		},
	}
}

// countObserver counts observer calls per kind and outcome.
type countObserver struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *countObserver) add(k string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[k]++
}
func (o *countObserver) Hit(kind string)   { o.add("hit:" + kind) }
func (o *countObserver) Miss(kind string)  { o.add("miss:" + kind) }
func (o *countObserver) Stale(kind string) { o.add("stale:" + kind) }
func (o *countObserver) get(k string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[k]
}

type env struct {
	clk *clock
	up  *fakeUpstream
	c   *cache.Cache
	obs *countObserver
}

func newEnv(t *testing.T, start time.Time, store cache.Store, opts ...cache.Option) *env {
	t.Helper()
	clk := newClock(start)
	up := &fakeUpstream{now: clk.Now}
	obs := &countObserver{}
	if store == nil {
		store = cache.NewMemory(100, clk.Now)
	}
	opts = append([]cache.Option{sessions, cache.WithClock(kisfeed.Clock{Wall: clk.Now}), cache.WithObserver(obs)}, opts...)
	c, err := cache.New(up.source(), store, opts...)
	if err != nil {
		t.Fatalf("cache.New: %v", err)
	}
	return &env{clk: clk, up: up, c: c, obs: obs}
}

func (e *env) quote(t *testing.T, code string) *kisfeed.Quote {
	t.Helper()
	q, err := e.c.Quote(t.Context(), kisfeed.MustParseCode(code))
	if err != nil {
		t.Fatalf("Quote(%s) at %s: %v", code, e.clk.Now().Format("15:04"), err)
	}
	return q
}

func TestQuoteFreshness(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fetch      time.Time
		read       time.Time
		wantOrigin kisfeed.Origin
	}{
		{"within ttl", kst(10, 0), kst(10, 29), kisfeed.OriginCache},
		{"ttl expired", kst(10, 0), kst(10, 30), kisfeed.OriginSource},
		{"fetched 15:29 read 15:31 refetches", kst(15, 29), kst(15, 31), kisfeed.OriginSource},
		{"fetched 15:29 read 15:29:59 hits", kst(15, 29), kst(15, 29).Add(59 * time.Second), kisfeed.OriginCache},
		{"fetched after close stays for ttl", kst(15, 31), kst(15, 59), kisfeed.OriginCache},
		{"fetched 08:59 read 09:01 refetches", kst(8, 59), kst(9, 1), kisfeed.OriginSource},
		{"saturday fetch keeps ttl", time.Date(2026, 3, 14, 15, 29, 0, 0, kisfeed.KST), time.Date(2026, 3, 14, 15, 50, 0, 0, kisfeed.KST), kisfeed.OriginCache},
		{"holiday (2026-03-02) has no close", time.Date(2026, 3, 2, 15, 29, 0, 0, kisfeed.KST), time.Date(2026, 3, 2, 15, 31, 0, 0, kisfeed.KST), kisfeed.OriginCache},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.fetch, nil)
			first := e.quote(t, "005930")
			if first.Meta.Origin != kisfeed.OriginSource {
				t.Fatalf("first read origin: got %q, want %q", first.Meta.Origin, kisfeed.OriginSource)
			}
			if first.Meta.Expires.IsZero() {
				t.Errorf("first read Expires: got zero, want the freshness end")
			}
			e.clk.Set(tt.read)
			q := e.quote(t, "005930")
			if q.Meta.Origin != tt.wantOrigin {
				t.Errorf("second read origin: got %q, want %q", q.Meta.Origin, tt.wantOrigin)
			}
			wantCalls := int64(1)
			if tt.wantOrigin == kisfeed.OriginSource {
				wantCalls = 2
			}
			if got := e.up.calls.Load(); got != wantCalls {
				t.Errorf("upstream calls: got %d, want %d", got, wantCalls)
			}
		})
	}
}

func TestOrderBookTTL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, kst(10, 0), nil, cache.WithTTLs(cache.TTLs{OrderBook: 10 * time.Second}))
	for i, step := range []struct {
		advance time.Duration
		want    kisfeed.Origin
	}{{0, kisfeed.OriginSource}, {9 * time.Second, kisfeed.OriginCache}, {time.Second, kisfeed.OriginSource}} {
		e.clk.Advance(step.advance)
		b, err := e.c.OrderBook(t.Context(), kisfeed.MustParseCode("005930"))
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if b.Meta.Origin != step.want {
			t.Errorf("step %d origin: got %q, want %q", i, b.Meta.Origin, step.want)
		}
	}
}

func TestCandlesIntradayAndHistorical(t *testing.T) {
	t.Parallel()
	today := kisfeed.Day(kst(0, 0))
	tests := []struct {
		name string
		q    kisfeed.CandleQuery
		want kisfeed.Origin // at 15:31 after a 15:29 fetch
	}{
		{"range to today invalidated at close", kisfeed.CandleQuery{Code: kisfeed.MustParseCode("005930"), Interval: kisfeed.IntervalDay, From: today.AddDate(0, 0, -30), To: today}, kisfeed.OriginSource},
		{"today's minutes invalidated at close", kisfeed.CandleQuery{Code: kisfeed.MustParseCode("005930"), Interval: kisfeed.IntervalMinute, From: today}, kisfeed.OriginSource},
		{"historical range kept", kisfeed.CandleQuery{Code: kisfeed.MustParseCode("005930"), Interval: kisfeed.IntervalWeek, From: today.AddDate(0, 0, -60), To: today.AddDate(0, 0, -7)}, kisfeed.OriginCache},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, kst(15, 29), nil)
			if _, err := e.c.Candles(t.Context(), tt.q); err != nil {
				t.Fatal(err)
			}
			e.clk.Set(kst(15, 31))
			cs, err := e.c.Candles(t.Context(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if cs.Meta.Origin != tt.want {
				t.Errorf("origin: got %q, want %q", cs.Meta.Origin, tt.want)
			}
			if cs.Bars[0].Time.Location() != kisfeed.KST {
				t.Errorf("bar time location: got %v, want KST", cs.Bars[0].Time.Location())
			}
		})
	}
}

func TestStaleFallback(t *testing.T) {
	t.Parallel()
	t.Run("expired copy served stale when upstream fails", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, kst(10, 0), nil)
		want := e.quote(t, "005930").Price
		e.clk.Advance(2 * time.Hour)
		e.up.down.Store(true)
		q := e.quote(t, "005930")
		if q.Meta.Origin != kisfeed.OriginStale || !q.Meta.Stale {
			t.Errorf("meta: got origin %q stale %v, want %q true", q.Meta.Origin, q.Meta.Stale, kisfeed.OriginStale)
		}
		if q.Price != want {
			t.Errorf("price: got %d, want the cached %d", q.Price, want)
		}
		if !q.Meta.Expires.IsZero() {
			t.Errorf("stale Expires: got %v, want zero", q.Meta.Expires)
		}
		if got := e.obs.get("stale:price"); got != 1 {
			t.Errorf("stale observations: got %d, want 1", got)
		}
	})
	t.Run("breaker-open error served stale", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, kst(10, 0), nil)
		store := cache.NewMemory(10, e.clk.Now)
		good, _ := cache.New(e.up.source(), store, sessions, cache.WithClock(kisfeed.Clock{Wall: e.clk.Now}))
		if _, err := good.Quote(t.Context(), kisfeed.MustParseCode("005930")); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(time.Hour)
		var calls atomic.Int64
		open, _ := cache.New(&sourcetest.Func{QuoteFn: func(context.Context, string) (*kisfeed.Quote, error) {
			calls.Add(1)
			return nil, &kisfeed.UnavailableError{RetryAfter: time.Minute}
		}}, store, cache.WithClock(kisfeed.Clock{Wall: e.clk.Now}))
		q, err := open.Quote(t.Context(), kisfeed.MustParseCode("005930"))
		if err != nil || !q.Meta.Stale {
			t.Fatalf("got %v, %v; want a stale quote", q, err)
		}
		_, err = open.Quote(t.Context(), kisfeed.MustParseCode("000660"))
		var ue *kisfeed.UnavailableError
		if !errors.As(err, &ue) || ue.RetryAfter != time.Minute {
			t.Errorf("uncached code: got %v, want the breaker's UnavailableError with RetryAfter 1m", err)
		}
	})
	t.Run("too old copy not served", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, kst(10, 0), nil, cache.WithStaleMaxAge(3*time.Hour))
		e.quote(t, "005930")
		e.clk.Advance(3*time.Hour + time.Second)
		e.up.down.Store(true)
		_, err := e.c.Quote(t.Context(), kisfeed.MustParseCode("005930"))
		if !errors.Is(err, kisfeed.ErrUnavailable) {
			t.Errorf("err: got %v, want ErrUnavailable", err)
		}
	})
	t.Run("nothing cached gives ErrUnavailable", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, kst(10, 0), nil)
		e.up.down.Store(true)
		_, err := e.c.Quote(t.Context(), kisfeed.MustParseCode("000660"))
		var ue *kisfeed.UnavailableError
		if !errors.As(err, &ue) {
			t.Fatalf("err: got %v, want *UnavailableError", err)
		}
		if !errors.Is(err, errDown) {
			t.Errorf("err: got %v, want it to wrap the upstream failure", err)
		}
	})
	t.Run("business error passes through, not cached, no stale", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, kst(10, 0), nil)
		for range 2 {
			if _, err := e.c.Quote(t.Context(), kisfeed.MustParseCode("999999")); !errors.Is(err, kisfeed.ErrNotFound) {
				t.Errorf("err: got %v, want ErrNotFound", err)
			}
		}
		if got := e.up.calls.Load(); got != 2 {
			t.Errorf("upstream calls: got %d, want 2 (not cached)", got)
		}
	})
}

func TestSingleflight(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, store cache.Store) {
		e := newEnv(t, kst(10, 0), store)
		const n = 200
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				<-start
				q, err := e.c.Quote(t.Context(), kisfeed.MustParseCode("005930"))
				if err == nil && q.Price == 0 {
					err = errors.New("zero price")
				}
				errs <- err
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("Quote: %v", err)
			}
		}
		if got := e.up.calls.Load(); got != 1 {
			t.Errorf("upstream calls for %d concurrent cold requests: got %d, want 1", n, got)
		}
	}
	t.Run("memory", func(t *testing.T) { run(t, nil) })
	t.Run("redis", func(t *testing.T) {
		rdb, prefix := testRedis(t)
		_ = prefix
		run(t, prefixed{cache.NewRedis(rdb), prefix})
	})
}

func TestQuotesBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, kst(10, 0), nil)
	e.quote(t, "005930") // cached
	calls := e.up.calls.Load()
	codes := []string{"000660", "005930", "999999", "000660", "035420"}
	qs, err := e.c.Quotes(t.Context(), kisfeed.MustParseCodes(codes...))
	var be *kisfeed.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("err: got %v, want *BatchError", err)
	}
	if len(be.Errs) != 1 || !errors.Is(be.Errs["999999"], kisfeed.ErrNotFound) {
		t.Errorf("batch errors: got %v, want 999999→not found", be.Errs)
	}
	if got := e.up.calls.Load() - calls; got != 1 {
		t.Errorf("upstream calls: got %d, want 1 for all misses", got)
	}
	for i, code := range codes {
		q := qs[i]
		switch code {
		case "999999":
			if q != nil {
				t.Errorf("position %d (%s): got a quote, want nil", i, code)
			}
			continue
		}
		if q == nil || q.Code != code {
			t.Fatalf("position %d: got %+v, want %s", i, q, code)
		}
		want := kisfeed.OriginSource
		if code == "005930" {
			want = kisfeed.OriginCache
		}
		if q.Meta.Origin != want {
			t.Errorf("position %d (%s) origin: got %q, want %q", i, code, q.Meta.Origin, want)
		}
	}
	// Everything valid is cached now: a second batch makes no call.
	calls = e.up.calls.Load()
	if _, err := e.c.Quotes(t.Context(), kisfeed.MustParseCodes("035420", "000660", "005930")); err != nil {
		t.Fatal(err)
	}
	if got := e.up.calls.Load() - calls; got != 0 {
		t.Errorf("upstream calls for an all-hit batch: got %d, want 0", got)
	}
	// Upstream down: expired entries come back stale; an uncached code
	// fails the call.
	e.clk.Advance(time.Hour)
	e.up.down.Store(true)
	qs, err = e.c.Quotes(t.Context(), kisfeed.MustParseCodes("035420", "000660"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if !q.Meta.Stale {
			t.Errorf("%s: got stale=false, want true", q.Code)
		}
	}
	if _, err := e.c.Quotes(t.Context(), kisfeed.MustParseCodes("035420", "068270")); !errors.Is(err, kisfeed.ErrUnavailable) {
		t.Errorf("uncached code while down: got %v, want ErrUnavailable", err)
	}
}

func TestOtherKinds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, kst(10, 0), nil)
	ctx := t.Context()
	for range 2 {
		if _, err := e.c.StockInfo(ctx, kisfeed.MustParseCode("005930")); err != nil {
			t.Fatal(err)
		}
		if u, err := e.c.Universe(ctx); err != nil || len(u) != 2 {
			t.Fatalf("Universe: got %d, %v; want 2 stocks", len(u), err)
		}
		if ok, err := e.c.IsTradingDay(ctx, kst(0, 0)); err != nil || !ok {
			t.Fatalf("IsTradingDay: got %v, %v; want true", ok, err)
		}
	}
	if got := e.up.calls.Load(); got != 3 {
		t.Errorf("upstream calls: got %d, want 3 (one per kind)", got)
	}
	for _, k := range []string{cache.KindInfo, cache.KindUniverse, cache.KindCalendar} {
		if h, m := e.obs.get("hit:"+k), e.obs.get("miss:"+k); h != 1 || m != 1 {
			t.Errorf("%s: got %d hits %d misses, want 1 and 1", k, h, m)
		}
	}
}

func TestMemoryLRU(t *testing.T) {
	t.Parallel()
	clk := newClock(kst(10, 0))
	m := cache.NewMemory(2, clk.Now)
	ctx := t.Context()
	set := func(k string) { _ = m.Set(ctx, cache.Item{Key: k, Value: []byte(k), TTL: time.Minute}) }
	set("a")
	set("b")
	_, _ = m.Get(ctx, "a") // a is now most recent
	set("c")               // evicts b
	got, _ := m.Get(ctx, "a", "b", "c")
	if string(got[0]) != "a" || got[1] != nil || string(got[2]) != "c" {
		t.Errorf("after eviction: got %q, want [a <nil> c]", got)
	}
	clk.Advance(time.Minute)
	got, _ = m.Get(ctx, "a")
	if got[0] != nil {
		t.Errorf("after ttl: got %q, want nil", got[0])
	}
	if m.Len() != 1 {
		t.Errorf("Len: got %d, want 1", m.Len())
	}
}

// syncBuffer is a log sink safe for concurrent writes.
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

func TestRedisDownDegrades(t *testing.T) {
	t.Parallel()
	// Port 1 on loopback: nothing listens, connections are refused.
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	var logs syncBuffer
	clk := newClock(kst(10, 0))
	mem := cache.NewMemory(100, clk.Now)
	store := cache.Failover(cache.NewRedis(rdb), mem,
		cache.FailoverConfig{Clock: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	e := newEnv(t, kst(10, 0), store, cache.WithClock(kisfeed.Clock{Wall: clk.Now}))
	e.clk = clk
	e.up.now = clk.Now
	for i := range 3 {
		q := e.quote(t, "005930")
		want := kisfeed.OriginCache
		if i == 0 {
			want = kisfeed.OriginSource
		}
		if q.Meta.Origin != want {
			t.Errorf("read %d origin: got %q, want %q (memory fallback)", i, q.Meta.Origin, want)
		}
	}
	if got := strings.Count(logs.String(), "cache store failing"); got != 1 {
		t.Errorf("store-failing log lines: got %d, want 1\n%s", got, logs.String())
	}
	if got := e.up.calls.Load(); got != 1 {
		t.Errorf("upstream calls: got %d, want 1", got)
	}
}

// prefixed puts a per-test prefix on every key of a Store, the way the
// cache's WithPrefix does, so Redis tests can clean up by prefix.
type prefixed struct {
	s      cache.Store
	prefix string
}

func (p prefixed) Get(ctx context.Context, keys ...string) ([][]byte, error) {
	k := make([]string, len(keys))
	for i := range keys {
		k[i] = p.prefix + keys[i]
	}
	return p.s.Get(ctx, k...)
}

func (p prefixed) Set(ctx context.Context, items ...cache.Item) error {
	it := make([]cache.Item, len(items))
	for i := range items {
		it[i] = items[i]
		it[i].Key = p.prefix + items[i].Key
	}
	return p.s.Set(ctx, it...)
}

// testRedis connects to KISFEED_TEST_REDIS_URL and returns a client and a
// unique key prefix whose keys are deleted when the test ends.
func testRedis(t *testing.T) (*goredis.Client, string) { return testRedisB(t) }

// testRedisB is testRedis for tests and benchmarks.
func testRedisB(t testing.TB) (*goredis.Client, string) {
	t.Helper()
	url := os.Getenv("KISFEED_TEST_REDIS_URL")
	if url == "" {
		t.Skip("KISFEED_TEST_REDIS_URL not set: skipping real-Redis test")
	}
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatalf("KISFEED_TEST_REDIS_URL: %v", err)
	}
	rdb := goredis.NewClient(opt)
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("redis ping: %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "kisfeedtest:cache:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		rdb.Close()
	})
	return rdb, prefix
}

func TestRedisShared(t *testing.T) {
	t.Parallel()
	rdb, prefix := testRedis(t)
	clk := newClock(kst(10, 0))
	// Two caches on one Redis, as two processes would be.
	upA, upB := &fakeUpstream{now: clk.Now}, &fakeUpstream{now: clk.Now}
	mk := func(up *fakeUpstream) *cache.Cache {
		c, err := cache.New(up.source(), cache.NewRedis(rdb), cache.WithPrefix(prefix), sessions, cache.WithClock(kisfeed.Clock{Wall: clk.Now}))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := mk(upA), mk(upB)
	ctx := t.Context()
	qa, err := a.Quote(ctx, kisfeed.MustParseCode("005930"))
	if err != nil {
		t.Fatal(err)
	}
	qb, err := b.Quote(ctx, kisfeed.MustParseCode("005930"))
	if err != nil {
		t.Fatal(err)
	}
	if qb.Meta.Origin != kisfeed.OriginCache || qb.Price != qa.Price {
		t.Errorf("second process: got origin %q price %d, want cache %d", qb.Meta.Origin, qb.Price, qa.Price)
	}
	if !qb.Meta.AsOf.Equal(qa.Meta.AsOf) || qb.Meta.AsOf.Location() != kisfeed.KST {
		t.Errorf("as_of: got %v, want %v in KST", qb.Meta.AsOf, qa.Meta.AsOf)
	}
	if n, err := rdb.Exists(ctx, prefix+"stock:005930:price").Result(); err != nil || n != 1 {
		t.Errorf("key %sstock:005930:price: exists %d, %v; want 1", prefix, n, err)
	}
	ttl, err := rdb.PTTL(ctx, prefix+"stock:005930:price").Result()
	if err != nil || ttl <= 71*time.Hour {
		t.Errorf("redis TTL: got %v, %v; want about the 72h stale window", ttl, err)
	}
	// Close invalidation through Redis: 15:29 fetch, 15:31 read.
	clk.Set(kst(15, 29))
	if _, err := a.Quote(ctx, kisfeed.MustParseCode("000660")); err != nil {
		t.Fatal(err)
	}
	clk.Set(kst(15, 31))
	if q, err := b.Quote(ctx, kisfeed.MustParseCode("000660")); err != nil || q.Meta.Origin != kisfeed.OriginSource {
		t.Errorf("15:31 read of a 15:29 price: got %v, %v; want a refetch", q, err)
	}
	// Upstream down: the Redis copy is served stale to the other process.
	clk.Advance(2 * time.Hour)
	upA.down.Store(true)
	q, err := a.Quote(ctx, kisfeed.MustParseCode("005930"))
	if err != nil || !q.Meta.Stale {
		t.Errorf("stale from redis: got %v, %v; want stale=true", q, err)
	}
	// Candles key layout.
	day := kisfeed.Date(2026, 1, 5)
	cq := kisfeed.CandleQuery{Code: kisfeed.MustParseCode("005930"), Interval: kisfeed.IntervalDay, From: day, To: day.AddDate(0, 0, 4)}
	if _, err := b.Candles(ctx, cq); err != nil {
		t.Fatal(err)
	}
	key := prefix + "stock:005930:candles:day:20260105:20260109:adj"
	if n, _ := rdb.Exists(ctx, key).Result(); n != 1 {
		t.Errorf("candles key %s: missing", key)
	}
}

// TestUpstreamHealth: a fresh hit is marked stale, without an upstream
// call and with the value unchanged, while the injected health check says
// the upstream is unavailable; it is an ordinary hit while it is healthy.
func TestUpstreamHealth(t *testing.T) {
	t.Parallel()
	errOpen := &kisfeed.UnavailableError{RetryAfter: time.Minute}
	tests := []struct {
		name       string
		health     error
		wantOrigin kisfeed.Origin
		wantObs    string
	}{
		{"healthy: cache", nil, kisfeed.OriginCache, "hit:price"},
		{"circuit open: stale", errOpen, kisfeed.OriginStale, "stale:price"},
		{"refused: stale", errDown, kisfeed.OriginStale, "stale:price"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var down atomic.Bool
			var checks atomic.Int64
			health := func(context.Context) error {
				checks.Add(1)
				if down.Load() {
					return tt.health
				}
				return nil
			}
			e := newEnv(t, kst(10, 0), nil, cache.WithUpstreamHealth(health))
			first := e.quote(t, "005930")
			if first.Meta.Origin != kisfeed.OriginSource {
				t.Fatalf("first read origin: got %q, want %q", first.Meta.Origin, kisfeed.OriginSource)
			}
			if got := checks.Load(); got != 0 {
				t.Errorf("health checks on a miss: got %d, want 0", got)
			}
			e.clk.Advance(time.Minute) // well within the 30 min TTL
			down.Store(true)

			q := e.quote(t, "005930")
			if q.Meta.Origin != tt.wantOrigin || q.Meta.Stale != (tt.wantOrigin == kisfeed.OriginStale) {
				t.Errorf("quote meta: got origin %q stale %v, want %q", q.Meta.Origin, q.Meta.Stale, tt.wantOrigin)
			}
			if q.Price != first.Price || !q.Meta.AsOf.Equal(first.Meta.AsOf) {
				t.Errorf("quote value: got price %d as of %v, want the cached %d as of %v", q.Price, q.Meta.AsOf, first.Price, first.Meta.AsOf)
			}
			if wantZero := tt.wantOrigin == kisfeed.OriginStale; q.Meta.Expires.IsZero() != wantZero {
				t.Errorf("Expires: got %v, want zero: %v", q.Meta.Expires, wantZero)
			}
			qs, err := e.c.Quotes(t.Context(), kisfeed.MustParseCodes("005930", "005930"))
			if err != nil {
				t.Fatalf("Quotes: %v", err)
			}
			for i, q := range qs {
				if q.Meta.Origin != tt.wantOrigin || q.Price != first.Price {
					t.Errorf("Quotes[%d]: got origin %q price %d, want %q %d", i, q.Meta.Origin, q.Price, tt.wantOrigin, first.Price)
				}
			}
			if got := e.up.calls.Load(); got != 1 {
				t.Errorf("upstream calls: got %d, want 1 (hits never call it)", got)
			}
			if got := checks.Load(); got != 2 {
				t.Errorf("health checks: got %d, want 2 (one per Quote, one per Quotes batch)", got)
			}
			if got := e.obs.get(tt.wantObs); got != 2 {
				t.Errorf("%s observations: got %d, want 2", tt.wantObs, got)
			}
		})
	}
	t.Run("other kinds", func(t *testing.T) {
		t.Parallel()
		var down atomic.Bool
		e := newEnv(t, kst(10, 0), nil, cache.WithUpstreamHealth(func(context.Context) error {
			if down.Load() {
				return errDown
			}
			return nil
		}))
		if _, err := e.c.OrderBook(t.Context(), kisfeed.MustParseCode("005930")); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.StockInfo(t.Context(), kisfeed.MustParseCode("005930")); err != nil {
			t.Fatal(err)
		}
		down.Store(true)
		b, err := e.c.OrderBook(t.Context(), kisfeed.MustParseCode("005930"))
		if err != nil || !b.Meta.Stale {
			t.Errorf("OrderBook: got %+v, %v; want a stale hit", b, err)
		}
		s, err := e.c.StockInfo(t.Context(), kisfeed.MustParseCode("005930"))
		if err != nil || !s.Meta.Stale {
			t.Errorf("StockInfo: got %+v, %v; want a stale hit", s, err)
		}
		if got := e.up.calls.Load(); got != 2 {
			t.Errorf("upstream calls: got %d, want 2", got)
		}
	})
	t.Run("recovers", func(t *testing.T) {
		t.Parallel()
		var down atomic.Bool
		down.Store(true)
		e := newEnv(t, kst(10, 0), nil, cache.WithUpstreamHealth(func(context.Context) error {
			if down.Load() {
				return errDown
			}
			return nil
		}))
		e.quote(t, "005930") // a miss still calls the upstream (which answers)
		if q := e.quote(t, "005930"); q.Meta.Origin != kisfeed.OriginStale {
			t.Errorf("while down: got %q, want stale", q.Meta.Origin)
		}
		down.Store(false)
		if q := e.quote(t, "005930"); q.Meta.Origin != kisfeed.OriginCache || q.Meta.Stale {
			t.Errorf("after recovery: got %q stale %v, want cache false", q.Meta.Origin, q.Meta.Stale)
		}
	})
}
