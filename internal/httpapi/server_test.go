package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/jsonview"
	"github.com/kisfeed/kisfeed/internal/metrics"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
)

// testNow is a Tuesday trading day, mid-session.
var testNow = time.Date(2025, time.March, 11, 10, 30, 0, 0, kisfeed.KST)

func fixedNow() time.Time { return testNow }

// listed is the fake universe of the fake source.
var listed = map[string]string{"005930": "삼성전자", "000660": "SK하이닉스", "035420": "NAVER"}

func testQuote(code string, origin kisfeed.Origin) *kisfeed.Quote {
	m := kisfeed.Meta{AsOf: testNow.Add(-time.Minute), Source: "mock", Origin: origin, Stale: origin == kisfeed.OriginStale}
	if origin == kisfeed.OriginCache || origin == kisfeed.OriginSource {
		m.Expires = testNow.Add(30 * time.Second)
	}
	return &kisfeed.Quote{Code: code, Name: listed[code], Market: kisfeed.MarketKOSPI, Price: 71000, Open: 70500,
		High: 71500, Low: 70000, PrevClose: 70000, BasePrice: 70000, Change: 1000, ChangeRate: 1.43,
		Volume: 1234567, TradingValue: 87654321000, UpperLimit: 91000, LowerLimit: 49000, TickSize: 100, Meta: m}
}

// fakeSource answers from listed: unknown codes are ErrNotFound, and each
// call is counted so tests can assert bad input never reaches it.
func fakeSource(calls *atomic.Int64) *sourcetest.Func {
	lookup := func(code string) error {
		calls.Add(1)
		if _, ok := listed[code]; !ok {
			return fmt.Errorf("%w: stock code %q is not listed", kisfeed.ErrNotFound, code)
		}
		return nil
	}
	meta := kisfeed.Meta{AsOf: testNow, Source: "mock", Origin: kisfeed.OriginCache, Expires: testNow.Add(10 * time.Second)}
	return &sourcetest.Func{
		QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
			if err := lookup(code); err != nil {
				return nil, err
			}
			return testQuote(code, kisfeed.OriginCache), nil
		},
		OrderBookFn: func(ctx context.Context, code string) (*kisfeed.OrderBook, error) {
			if err := lookup(code); err != nil {
				return nil, err
			}
			b := &kisfeed.OrderBook{Code: code, TotalAskQty: 10, TotalBidQty: 20, Meta: meta}
			for i := range b.Asks {
				b.Asks[i] = kisfeed.Level{Price: 71100 + int64(i)*100, Quantity: 1}
				b.Bids[i] = kisfeed.Level{Price: 71000 - int64(i)*100, Quantity: 2}
			}
			return b, nil
		},
		CandlesFn: func(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
			if err := lookup(q.Code.String()); err != nil {
				return nil, err
			}
			return &kisfeed.Candles{Code: q.Code.String(), Interval: q.Interval, Meta: meta, Bars: []kisfeed.Candle{
				{Time: q.From, Open: 1, High: 2, Low: 1, Close: 2, Volume: 3, Value: 4},
			}}, nil
		},
		StockInfoFn: func(ctx context.Context, code string) (*kisfeed.StockInfo, error) {
			if err := lookup(code); err != nil {
				return nil, err
			}
			return &kisfeed.StockInfo{Code: code, Name: listed[code], Market: kisfeed.MarketKOSPI, Group: "ST",
				ListingDate: kisfeed.Date(1975, 6, 11), Meta: meta}, nil
		},
		UniverseFn: func(ctx context.Context) ([]kisfeed.Stock, error) {
			calls.Add(1)
			return []kisfeed.Stock{
				{Code: "000660", Name: listed["000660"], Market: kisfeed.MarketKOSPI, Group: "ST"},
				{Code: "005930", Name: listed["005930"], Market: kisfeed.MarketKOSPI, Group: "ST"},
				{Code: "035420", Name: listed["035420"], Market: kisfeed.MarketKOSDAQ, Group: "ST"},
			}, nil
		},
		IsTradingDayFn: func(ctx context.Context, date time.Time) (bool, error) {
			calls.Add(1)
			return date.Weekday() != time.Saturday && date.Weekday() != time.Sunday, nil
		},
	}
}

type fixture struct {
	srv   *Server
	calls *atomic.Int64
	logs  *bytes.Buffer
	reg   *prometheus.Registry
}

func newFixture(t *testing.T, src kisfeed.Source, checks ...Check) *fixture {
	t.Helper()
	f := &fixture{calls: new(atomic.Int64), logs: new(bytes.Buffer), reg: prometheus.NewRegistry()}
	if src == nil {
		src = fakeSource(f.calls)
	}
	m := metrics.New(f.reg)
	f.srv = New(Options{
		Source: src, Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: f.logs}, nil)),
		Observer: m, Gatherer: f.reg, Checks: checks, Clock: kisfeed.Clock{Wall: fixedNow}, AccessLog: true,
		RequestTimeout: 5 * time.Second,
	})
	return f
}

// lockedWriter serialises writes from concurrent handlers.
type lockedWriter struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (f *fixture) get(t *testing.T, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "http://kisfeed.test"+target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode body %q: %v", rec.Body.String(), err)
	}
	return v
}

func TestQuote(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	rec := f.get(t, "/v1/stocks/005930/quote")
	if rec.Code != http.StatusOK {
		t.Fatalf("status: got %d, want 200; body %s", rec.Code, rec.Body)
	}
	body := decode[map[string]any](t, rec)
	want := map[string]any{
		"code": "005930", "name": "삼성전자", "market": "KOSPI", "price": 71000.0, "change_rate": 1.43,
		"prev_close": 70000.0, "as_of": "2025-03-11T10:29:00+09:00", "source": "mock", "origin": "cache", "stale": false,
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("%s: got %v, want %v", k, body[k], v)
		}
	}
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", got)
	}
	if got := rec.Header().Get("X-Cache"); got != "HIT" {
		t.Errorf("X-Cache: got %q, want HIT", got)
	}
	if got := rec.Header().Get("Cache-Control"); got != "max-age=30" {
		t.Errorf("Cache-Control: got %q, want max-age=30", got)
	}
}

func TestCacheHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		meta         kisfeed.Meta
		xcache, cc   string
		stale        bool
		wantOriginIn string
	}{
		{"cache hit", kisfeed.Meta{Origin: kisfeed.OriginCache, Expires: testNow.Add(90 * time.Second)}, "HIT", "max-age=90", false, "cache"},
		{"fresh fetch, cached", kisfeed.Meta{Origin: kisfeed.OriginSource, Expires: testNow.Add(10*time.Second + 500*time.Millisecond)}, "MISS", "max-age=10", false, "source"},
		{"fresh fetch, not cached", kisfeed.Meta{Origin: kisfeed.OriginSource}, "MISS", "no-store", false, "source"},
		{"stale", kisfeed.Meta{Origin: kisfeed.OriginStale, Stale: true, Expires: testNow.Add(-time.Hour)}, "STALE", "max-age=0", true, "stale"},
		{"expired", kisfeed.Meta{Origin: kisfeed.OriginCache, Expires: testNow.Add(-time.Second)}, "HIT", "max-age=0", false, "cache"},
		{"no origin", kisfeed.Meta{}, "MISS", "no-store", false, "source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := &sourcetest.Func{QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
				q := testQuote(code, kisfeed.OriginCache)
				q.Meta = tt.meta
				q.Meta.AsOf, q.Meta.Source = testNow, "kis"
				return q, nil
			}}
			rec := newFixture(t, src).get(t, "/v1/stocks/005930/quote")
			if got := rec.Header().Get("X-Cache"); got != tt.xcache {
				t.Errorf("X-Cache: got %q, want %q", got, tt.xcache)
			}
			if got := rec.Header().Get("Cache-Control"); got != tt.cc {
				t.Errorf("Cache-Control: got %q, want %q", got, tt.cc)
			}
			body := decode[map[string]any](t, rec)
			if body["stale"] != tt.stale || body["origin"] != tt.wantOriginIn {
				t.Errorf("stale, origin: got %v, %v; want %v, %v", body["stale"], body["origin"], tt.stale, tt.wantOriginIn)
			}
		})
	}
}

// timeoutErr is a net.Error that timed out, as a dial or read deadline
// gives.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "read tcp 10.0.0.1:443: i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		panicWith  any
		status     int
		typ        string
		retryAfter string
		hidden     string // must not appear in the body
	}{
		{"not found", fmt.Errorf("%w: stock code \"999999\" is not listed", kisfeed.ErrNotFound), nil, 404, "/problems/not-found", "", ""},
		{"invalid from source", fmt.Errorf("%w: candles: day is in the future", kisfeed.ErrInvalid), nil, 400, "/problems/invalid-parameter", "", ""},
		{"breaker open", &kisfeed.UnavailableError{RetryAfter: 41500 * time.Millisecond, Err: errors.New("dial tcp 10.1.2.3:9443: connection refused")}, nil, 503, "/problems/upstream-unavailable", "42", "10.1.2.3"},
		{"unavailable without delay", fmt.Errorf("source: %w", kisfeed.ErrUnavailable), nil, 503, "/problems/upstream-unavailable", "5", ""},
		{"deadline", fmt.Errorf("kis: quote: %w", context.DeadlineExceeded), nil, 504, "/problems/upstream-timeout", "", ""},
		{"net timeout", fmt.Errorf("kis: quote: %w", timeoutErr{}), nil, 504, "/problems/upstream-timeout", "", "10.0.0.1"},
		{"internal", errors.New("kis: decode: appsecret=s3cr3t unexpected token"), nil, 500, "/problems/internal", "", "s3cr3t"},
		{"panic", nil, "boom with token=abc", 500, "/problems/internal", "", "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := &sourcetest.Func{QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
				if tt.panicWith != nil {
					panic(tt.panicWith)
				}
				return nil, tt.err
			}}
			f := newFixture(t, src)
			rec := f.get(t, "/v1/stocks/005930/quote")
			if rec.Code != tt.status {
				t.Fatalf("status: got %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/problem+json" {
				t.Errorf("Content-Type: got %q, want application/problem+json", got)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After: got %q, want %q", got, tt.retryAfter)
			}
			if rec.Header().Get("X-Cache") != "" {
				t.Errorf("X-Cache: got %q on an error, want none", rec.Header().Get("X-Cache"))
			}
			p := decode[Problem](t, rec)
			if p.Type != tt.typ || p.Status != tt.status || p.Title == "" || p.Detail == "" || p.Instance != "/v1/stocks/005930/quote" {
				t.Errorf("problem: got %+v, want type %s, status %d, title, detail and instance", p, tt.typ, tt.status)
			}
			if tt.hidden != "" && strings.Contains(rec.Body.String(), tt.hidden) {
				t.Errorf("body %s: shows %q, want internals hidden", rec.Body, tt.hidden)
			}
		})
	}
}

// TestBadInput: every malformed request gets a 4xx problem naming the
// parameter and what was expected, never reaches the source, never 5xx.
func TestBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		target string
		status int
		param  string
		detail string // substring of the detail
	}{
		{"malformed code", "/v1/stocks/abc/quote", 400, "code", "want 6 characters like 005930"},
		{"7-digit code", "/v1/stocks/0059301/quote", 400, "code", `"0059301"`},
		{"5-digit code", "/v1/stocks/00593/orderbook", 400, "code", "want 6 characters"},
		{"lowercase code", "/v1/stocks/0088m0/info", 400, "code", "want 6 characters"},
		{"SQL in code", "/v1/stocks/005930'%20OR%20'1'='1/quote", 400, "code", "want 6 characters"},
		{"HTML in code", "/v1/stocks/%3Cscript%3Ealert(1)%3C%2Fscript%3E/quote", 400, "code", "want 6 characters"},
		{"unicode code", "/v1/stocks/%EC%82%BC%EC%84%B1%EC%A0%84%EC%9E%90/quote", 400, "code", "want 6 characters"},
		{"null byte code", "/v1/stocks/00593%00/quote", 400, "code", "want 6 characters"},
		{"year 0001", "/v1/stocks/005930/candles?from=0001-01-01", 400, "from", "between 1956-01-01 and 2100-12-31"},
		{"year 9999", "/v1/stocks/005930/candles?to=9999-12-31", 400, "to", "between 1956-01-01 and 2100-12-31"},
		{"month 13 day 45", "/v1/stocks/005930/candles?from=2020-13-45", 400, "from", "want a calendar date like 2024-01-31"},
		{"Feb 30", "/v1/stocks/005930/candles?from=2024-02-30", 400, "from", "YYYY-MM-DD"},
		{"compact date", "/v1/stocks/005930/candles?from=20240101", 400, "from", "YYYY-MM-DD"},
		{"from after to", "/v1/stocks/005930/candles?from=2024-02-01&to=2024-01-01", 400, "from", "from 2024-02-01 is after to 2024-01-01"},
		{"unknown interval", "/v1/stocks/005930/candles?interval=hour", 400, "interval", "want day, week, month or minute"},
		{"minute range", "/v1/stocks/005930/candles?interval=minute&from=2025-03-10&to=2025-03-11", 400, "to", "minute candles cover one day"},
		{"bad adjusted", "/v1/stocks/005930/candles?adjusted=maybe", 400, "adjusted", "want true or false"},
		{"repeated param", "/v1/stocks/005930/candles?interval=day&interval=week", 400, "interval", "given 2 times"},
		{"unknown param", "/v1/stocks/005930/candles?intervall=day", 400, "intervall", "want interval, from, to, adjusted"},
		{"param on quote", "/v1/stocks/005930/quote?fresh=1", 400, "fresh", "takes none"},
		{"malformed escape", "/v1/stocks/005930/candles?from=%zz", 400, "query", "malformed"},
		{"calendar bad date", "/v1/calendar/2020-13-45", 400, "date", "YYYY-MM-DD"},
		{"calendar year 0001", "/v1/calendar/0001-01-01", 400, "date", "between"},
		{"batch missing codes", "/v1/quotes", 400, "codes", "codes is required"},
		{"batch empty codes", "/v1/quotes?codes=,,", 400, "codes", "codes is empty"},
		{"batch too many", "/v1/quotes?codes=" + manyCodes(101), 400, "codes", "want at most 100"},
		{"stocks bad market", "/v1/stocks?market=nyse", 400, "market", "want kospi, kosdaq or konex"},
		{"query too long", "/v1/stocks/005930/candles?from=" + strings.Repeat("9", 5000), 414, "", "want at most 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			rec := f.get(t, tt.target)
			if rec.Code != tt.status {
				t.Fatalf("status: got %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			p := decode[Problem](t, rec)
			if p.Param != tt.param {
				t.Errorf("param: got %q, want %q", p.Param, tt.param)
			}
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail: got %q, want it to contain %q", p.Detail, tt.detail)
			}
			if n := f.calls.Load(); n != 0 {
				t.Errorf("source calls: got %d, want 0 for bad input", n)
			}
		})
	}
}

func manyCodes(n int) string {
	codes := make([]string, n)
	for i := range codes {
		codes[i] = fmt.Sprintf("%06d", i)
	}
	return strings.Join(codes, ",")
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		method string
		target string
		status int
	}{
		{"unknown path", "GET", "/v2/quotes", 404},
		{"trailing segment", "GET", "/v1/stocks/005930/quote/extra", 404},
		{"unknown stock", "GET", "/v1/stocks/999999/quote", 404},
		{"post", "POST", "/v1/stocks/005930/quote", 405},
		{"delete", "DELETE", "/v1/quotes", 405},
		{"head", "HEAD", "/v1/stocks/005930/quote", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			req := httptest.NewRequestWithContext(t.Context(), tt.method, tt.target, nil)
			rec := httptest.NewRecorder()
			f.srv.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status: got %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status >= 400 && rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("Content-Type: got %q, want application/problem+json", rec.Header().Get("Content-Type"))
			}
		})
	}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	rec := f.get(t, "/v1/quotes?codes=005930,%20000660,abc,999999,005930&codes=035420")
	if rec.Code != http.StatusOK {
		t.Fatalf("status: got %d, want 200; body %s", rec.Code, rec.Body)
	}
	type item struct {
		Code   string `json:"code"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	body := decode[struct {
		Requested int    `json:"requested"`
		Quotes    []item `json:"quotes"`
		Errors    []item `json:"errors"`
		AsOf      string `json:"as_of"`
		Source    string `json:"source"`
		Origin    string `json:"origin"`
	}](t, rec)
	var got []string
	for _, q := range body.Quotes {
		got = append(got, q.Code)
	}
	if want := "005930,000660,035420"; strings.Join(got, ",") != want {
		t.Errorf("quotes: got %v, want %s in request order, duplicates dropped", got, want)
	}
	if body.Requested != 5 {
		t.Errorf("requested: got %d, want 5", body.Requested)
	}
	if len(body.Errors) != 2 || body.Errors[0].Code != "abc" || body.Errors[0].Status != 400 ||
		body.Errors[1].Code != "999999" || body.Errors[1].Status != 404 {
		t.Errorf("errors: got %+v, want abc 400 then 999999 404", body.Errors)
	}
	if body.AsOf != "2025-03-11T10:29:00+09:00" || body.Source != "mock" || body.Origin != "cache" {
		t.Errorf("meta: got %s %s %s, want 2025-03-11T10:29:00+09:00 mock cache", body.AsOf, body.Source, body.Origin)
	}
	if got := rec.Header().Get("X-Cache"); got != "HIT" {
		t.Errorf("X-Cache: got %q, want HIT", got)
	}
}

func TestBatchUpstreamDown(t *testing.T) {
	t.Parallel()
	src := &sourcetest.Func{QuotesFn: func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
		return nil, &kisfeed.UnavailableError{RetryAfter: 30 * time.Second}
	}}
	rec := newFixture(t, src).get(t, "/v1/quotes?codes=005930")
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "30" {
		t.Errorf("got %d Retry-After %q, want 503 and 30", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestBatchMergesMeta(t *testing.T) {
	t.Parallel()
	src := &sourcetest.Func{QuotesFn: func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
		return []*kisfeed.Quote{testQuote(codes[0], kisfeed.OriginCache), testQuote(codes[1], kisfeed.OriginStale)}, nil
	}}
	rec := newFixture(t, src).get(t, "/v1/quotes?codes=005930,000660")
	body := decode[map[string]any](t, rec)
	if body["origin"] != "stale" || body["stale"] != true || rec.Header().Get("X-Cache") != "STALE" ||
		rec.Header().Get("Cache-Control") != "max-age=0" {
		t.Errorf("got origin %v stale %v X-Cache %q Cache-Control %q, want stale true STALE max-age=0",
			body["origin"], body["stale"], rec.Header().Get("X-Cache"), rec.Header().Get("Cache-Control"))
	}
}

func TestCandles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		query    string
		interval kisfeed.Interval
		from, to string
		unadj    bool
	}{
		{"defaults", "", kisfeed.IntervalDay, "2024-12-11", "2025-03-11", false},
		{"week default range", "?interval=week", kisfeed.IntervalWeek, "2024-03-11", "2025-03-11", false},
		{"month default range", "?interval=month&to=2024-12-31", kisfeed.IntervalMonth, "2019-12-31", "2024-12-31", false},
		{"explicit", "?interval=day&from=2024-01-02&to=2024-01-31&adjusted=false", kisfeed.IntervalDay, "2024-01-02", "2024-01-31", true},
		{"same day", "?from=2024-01-02&to=2024-01-02", kisfeed.IntervalDay, "2024-01-02", "2024-01-02", false},
		{"minute today", "?interval=minute", kisfeed.IntervalMinute, "2025-03-11", "2025-03-11", false},
		{"minute day", "?interval=minute&from=2025-03-10", kisfeed.IntervalMinute, "2025-03-10", "2025-03-10", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got kisfeed.CandleQuery
			src := &sourcetest.Func{CandlesFn: func(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
				got = q
				return &kisfeed.Candles{Code: q.Code.String(), Interval: q.Interval, Bars: []kisfeed.Candle{{Time: q.From, Close: 5}},
					Meta: kisfeed.Meta{AsOf: testNow, Source: "mock", Origin: kisfeed.OriginSource}}, nil
			}}
			rec := newFixture(t, src).get(t, "/v1/stocks/005930/candles"+tt.query)
			if rec.Code != 200 {
				t.Fatalf("status: got %d, want 200; body %s", rec.Code, rec.Body)
			}
			if got.Code.String() != "005930" || got.Interval != tt.interval || got.From.Format(time.DateOnly) != tt.from ||
				got.To.Format(time.DateOnly) != tt.to || got.Unadjusted != tt.unadj || got.From.Location() != kisfeed.KST {
				t.Errorf("query: got %+v, want %s %s..%s unadjusted=%v in KST", got, tt.interval, tt.from, tt.to, tt.unadj)
			}
			body := decode[map[string]any](t, rec)
			bars := body["bars"].([]any)
			if bar := bars[0].(map[string]any); bar["time"] != tt.from+"T00:00:00+09:00" {
				t.Errorf("bar time: got %v, want %sT00:00:00+09:00", bar["time"], tt.from)
			}
		})
	}
}

func TestOtherRoutes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		target string
		want   map[string]any
	}{
		{"/v1/stocks/005930/orderbook", map[string]any{"code": "005930", "total_bid_qty": 20.0, "origin": "cache"}},
		{"/v1/stocks/005930/info", map[string]any{"code": "005930", "name": "삼성전자", "listing_date": "1975-06-11T00:00:00+09:00", "source": "mock"}},
		{"/v1/stocks", map[string]any{"count": 3.0, "source": "universe"}},
		{"/v1/stocks?market=kosdaq", map[string]any{"count": 1.0}},
		{"/v1/calendar/2025-10-06", map[string]any{"date": "2025-10-06", "trading_day": true, "weekday": "Monday"}},
		{"/v1/calendar/2025-03-15", map[string]any{"trading_day": false, "next_trading_day": "2025-03-17", "prev_trading_day": "2025-03-14"}},
		{"/v1/calendar/2025-03-11", map[string]any{"trading_day": true, "open": "2025-03-11T09:00:00+09:00", "close": "2025-03-11T15:30:00+09:00"}},
		{"/healthz", map[string]any{"status": "ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			t.Parallel()
			rec := newFixture(t, nil).get(t, tt.target)
			if rec.Code != 200 {
				t.Fatalf("status: got %d, want 200; body %s", rec.Code, rec.Body)
			}
			body := decode[map[string]any](t, rec)
			for k, v := range tt.want {
				if body[k] != v {
					t.Errorf("%s: got %v, want %v", k, body[k], v)
				}
			}
		})
	}
}

func TestOrderBookLevels(t *testing.T) {
	t.Parallel()
	rec := newFixture(t, nil).get(t, "/v1/stocks/005930/orderbook")
	body := decode[struct {
		Asks []jsonview.Level `json:"asks"`
		Bids []jsonview.Level `json:"bids"`
	}](t, rec)
	if len(body.Asks) != kisfeed.BookDepth || len(body.Bids) != kisfeed.BookDepth ||
		body.Asks[0] != (jsonview.Level{Price: 71100, Quantity: 1}) || body.Bids[9] != (jsonview.Level{Price: 70100, Quantity: 2}) {
		t.Errorf("levels: got asks %v bids %v, want 10 each, best ask 71100, 10th bid 70100", body.Asks, body.Bids)
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	ok := Check{Name: "database", Func: func(ctx context.Context) error { return nil }}
	open := Check{Name: "breaker", Func: func(ctx context.Context) error { return errors.New("open; retry in 30s") }}
	slow := Check{Name: "redis", Func: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}
	panicky := Check{Name: "weird", Func: func(ctx context.Context) error { panic("x") }}
	tests := []struct {
		name     string
		checks   []Check
		status   int
		degraded []string
	}{
		{"no checks", nil, 200, []string{}},
		{"all ok", []Check{ok}, 200, []string{}},
		{"breaker open", []Check{ok, open}, 503, []string{"breaker"}},
		{"timeout and panic", []Check{slow, ok, panicky}, 503, []string{"redis", "weird"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fixture{calls: new(atomic.Int64)}
			f.srv = New(Options{Source: fakeSource(f.calls), Checks: tt.checks, ReadyTimeout: 50 * time.Millisecond,
				Logger: slog.New(slog.DiscardHandler)})
			rec := f.get(t, "/readyz")
			if rec.Code != tt.status {
				t.Fatalf("status: got %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			body := decode[readyJSON](t, rec)
			if strings.Join(body.Degraded, ",") != strings.Join(tt.degraded, ",") {
				t.Errorf("degraded: got %v, want %v", body.Degraded, tt.degraded)
			}
			for _, c := range tt.checks {
				if body.Checks[c.Name] == "" {
					t.Errorf("checks[%s]: missing", c.Name)
				}
			}
		})
	}
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.get(t, "/v1/stocks/005930/quote")
	f.get(t, "/v1/stocks/abc/quote")
	f.get(t, "/nope")
	rec := f.get(t, "/metrics")
	if rec.Code != 200 {
		t.Fatalf("status: got %d, want 200", rec.Code)
	}
	for _, want := range []string{
		`kisfeed_http_requests_total{method="GET",route="/v1/stocks/{code}/quote",status="200"} 1`,
		`kisfeed_http_requests_total{method="GET",route="/v1/stocks/{code}/quote",status="400"} 1`,
		`kisfeed_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`kisfeed_http_request_duration_seconds_bucket{method="GET",route="/v1/stocks/{code}/quote",status="200",le="+Inf"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics: missing %s", want)
		}
	}
}

func TestAccessLogHidesHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.get(t, "/v1/stocks/005930/quote", "Authorization", "Bearer tok-SECRET", "appsecret", "app-SECRET")
	log := f.logs.String()
	if strings.Contains(log, "SECRET") {
		t.Errorf("access log shows a header value: %s", log)
	}
	for _, want := range []string{"method=GET", "route=/v1/stocks/{code}/quote", "status=200", "duration=", "bytes="} {
		if !strings.Contains(log, want) {
			t.Errorf("access log %q: missing %s", log, want)
		}
	}
}

func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	src := &sourcetest.Func{QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
		<-ctx.Done()
		return nil, fmt.Errorf("kis: quote: %w", ctx.Err())
	}}
	srv := New(Options{Source: src, RequestTimeout: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), "GET", "/v1/stocks/005930/quote", nil))
	if rec.Code != http.StatusGatewayTimeout {
		t.Errorf("status: got %d, want 504", rec.Code)
	}
}
