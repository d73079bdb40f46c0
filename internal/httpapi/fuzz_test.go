package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
)

// FuzzRequest sends arbitrary paths and queries: the API may refuse them
// (4xx) but never panics and never answers 5xx, since the fake source
// only fails with business errors.
func FuzzRequest(f *testing.F) {
	for _, seed := range []struct{ path, query string }{
		{"/v1/stocks/005930/quote", ""},
		{"/v1/stocks/005930/candles", "interval=minute&from=2025-03-10"},
		{"/v1/stocks/005930/candles", "from=2020-13-45&to=0001-01-01"},
		{"/v1/quotes", "codes=005930,000660,abc,%3Cscript%3E"},
		{"/v1/calendar/2025-10-06", ""},
		{"/v1/stocks/0088M0/info", "x=%zz"},
		{"/v1/stocks", "market=kospi&group=ST"},
	} {
		f.Add(seed.path, seed.query)
	}
	srv := New(Options{Source: fakeSource(new(atomic.Int64)), Clock: kisfeed.Clock{Wall: fixedNow}, Logger: slog.New(slog.DiscardHandler)})
	f.Fuzz(func(t *testing.T, path, query string) {
		u := &url.URL{Scheme: "http", Host: "kisfeed.test", Path: path, RawQuery: query}
		if !strings.HasPrefix(path, "/") {
			u.Path = "/" + path
		}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u.String(), nil)
		if err != nil {
			t.Skip()
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Errorf("GET %s: got %d, want < 500; body %s", u, rec.Code, rec.Body)
		}
	})
}

// BenchmarkQuoteCached measures the handler on the hot path: a quote the
// cache already holds, served through the whole middleware chain
// (timeout, metrics, no access log).
func BenchmarkQuoteCached(b *testing.B) {
	q := testQuote("005930", kisfeed.OriginCache)
	q.Meta.Expires = time.Now().Add(time.Hour)
	src := fakeSource(new(atomic.Int64))
	src.QuoteFn = func(ctx context.Context, code string) (*kisfeed.Quote, error) { return q, nil }
	f := newBenchServer(src)
	req := httptest.NewRequest(http.MethodGet, "/v1/stocks/005930/quote", nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			f.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				b.Fatalf("status: got %d, want 200", w.status)
			}
		}
	})
}

func newBenchServer(src kisfeed.Source) *Server {
	return New(Options{Source: src, Logger: slog.New(slog.DiscardHandler), Observer: benchObserver()})
}

// discardWriter is a minimal ResponseWriter, so the benchmark measures the
// handler rather than httptest.ResponseRecorder.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
