package kis

import (
	"errors"
	"net/http"
	"os"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/emulator"
)

func TestSource(t *testing.T) {
	t.Parallel()
	_, c := startEmulator(t, nil)
	s := NewSource(c)
	if s.Client() != c {
		t.Fatal("Client() is not the wrapped client")
	}
	ctx := t.Context()
	m := simMarket()

	q, err := s.Quote(ctx, kisfeed.MustParseCode("005930"))
	if err != nil {
		t.Fatal(err)
	}
	if q.Name != "삼성전자" || q.Market != kisfeed.MarketKOSPI || q.Meta.Source != "kis" || q.Meta.Origin != kisfeed.OriginSource || !q.Meta.AsOf.Equal(marketDay) {
		t.Errorf("quote: got %+v", q)
	}
	qs, err := s.Quotes(ctx, kisfeed.MustParseCodes("000660", "999999"))
	var be *kisfeed.BatchError
	if !errors.As(err, &be) || qs[0] == nil || qs[0].Name != "SK하이닉스" || qs[1] != nil {
		t.Errorf("quotes: got %v %v", qs, err)
	}
	if _, err := s.OrderBook(ctx, kisfeed.MustParseCode("005930")); err != nil {
		t.Error(err)
	}
	tests := []struct {
		name     string
		q        kisfeed.CandleQuery
		wantBars int
		wantErr  error
	}{
		{"day default window", kisfeed.CandleQuery{Code: kisfeed.MustParseCode("005930"), Interval: kisfeed.IntervalDay}, len(m.DailyBars("005930", marketDay.AddDate(0, -3, 0), marketDay)), nil},
		{"week default window", kisfeed.CandleQuery{Code: kisfeed.MustParseCode("005930"), Interval: kisfeed.IntervalWeek}, 0, nil},
		{"month default window", kisfeed.CandleQuery{Code: kisfeed.MustParseCode("005930"), Interval: kisfeed.IntervalMonth, Unadjusted: true}, 0, nil},
		{"minute today", kisfeed.CandleQuery{Code: kisfeed.MustParseCode("005930"), Interval: kisfeed.IntervalMinute}, 381, nil},
		{"bad interval", kisfeed.CandleQuery{Code: kisfeed.MustParseCode("005930"), Interval: "hour"}, 0, kisfeed.ErrInvalid},
		{"reversed", kisfeed.CandleQuery{Code: kisfeed.MustParseCode("005930"), Interval: kisfeed.IntervalDay, From: marketDay, To: marketDay.AddDate(0, 0, -5)}, 0, kisfeed.ErrInvalid},
		{"unknown", kisfeed.CandleQuery{Code: kisfeed.MustParseCode("999999"), Interval: kisfeed.IntervalDay}, 0, kisfeed.ErrNotFound},
		{"empty range", kisfeed.CandleQuery{Code: kisfeed.MustParseCode("005930"), Interval: kisfeed.IntervalDay, From: kisfeed.Date(2026, 5, 23), To: kisfeed.Date(2026, 5, 24)}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Candles(ctx, tt.q)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Bars == nil || (tt.wantBars > 0 && len(got.Bars) != tt.wantBars) || (tt.wantBars == 0 && tt.name != "empty range" && len(got.Bars) == 0) {
				t.Errorf("got %d bars, want %d", len(got.Bars), tt.wantBars)
			}
			if got.Meta.Source != "kis" || got.Code != tt.q.Code.String() || got.Interval != tt.q.Interval {
				t.Errorf("meta: got %+v", got)
			}
		})
	}
	info, err := s.StockInfo(ctx, kisfeed.MustParseCode("005930"))
	if err != nil || info.Name != "삼성전자" {
		t.Errorf("info: got %+v %v", info, err)
	}
	u, err := s.Universe(ctx)
	if err != nil || len(u) != len(m.Universe()) {
		t.Errorf("universe: got %d %v", len(u), err)
	}
	open, err := s.IsTradingDay(ctx, kisfeed.Date(2026, 5, 25))
	if err != nil || open {
		t.Errorf("2026-05-25: got %v %v, want closed", open, err)
	}
	// Input is validated before any request: a date by the Source, a
	// code by the Client's string API (the Source takes parsed codes).
	for name, call := range map[string]func() error{
		"quote":     func() error { _, _, err := s.Client().Price(ctx, "x"); return err },
		"book":      func() error { _, _, err := s.Client().OrderBook(ctx, "x"); return err },
		"info":      func() error { _, err := s.Client().StockInfo(ctx, "x"); return err },
		"day":       func() error { _, err := s.IsTradingDay(ctx, time.Time{}); return err },
		"not found": func() error { _, err := s.Quote(ctx, kisfeed.MustParseCode("999999")); return err },
	} {
		err := call()
		want := kisfeed.ErrInvalid
		if name == "not found" {
			want = kisfeed.ErrNotFound
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", name, err, want)
		}
	}
}

// TestSourceWithoutMasters: quotes still work when the master host is
// down, only without names, and the master host is not asked again at
// once.
func TestSourceWithoutMasters(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.fixed(pathPrice, "inquire-price.json")
	f.handle("/common/master/kospi_code.mst.zip", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) })
	f.mu.Lock()
	f.open = true
	f.mu.Unlock()
	c := testClient(t, f.url())
	s := NewSource(c)
	for range 3 {
		q, err := s.Quote(t.Context(), kisfeed.MustParseCode("000660"))
		if err != nil || q.Name != "" {
			t.Fatalf("got %+v %v", q, err)
		}
	}
	if got := f.count("/common/master/kospi_code.mst.zip"); got != 1 {
		t.Errorf("master downloads: got %d, want 1", got)
	}
	if _, err := s.Universe(t.Context()); err == nil {
		t.Error("universe without masters: want an error")
	}
	if _, err := s.Quotes(t.Context(), kisfeed.MustParseCodes("005930")); err == nil {
		t.Error("quotes with no multprice handler: want an error")
	}
}

// BenchmarkClientOverhead measures the client's own cost per call (build,
// headers, limiter bookkeeping, decode, map) against an in-process
// handler, with the pacing effectively off.
func BenchmarkClientOverhead(b *testing.B) {
	body, err := os.ReadFile("testdata/inquire-price.json")
	if err != nil {
		b.Fatal(err)
	}
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: nopBody(body), Request: r}, nil
	})
	c, err := NewClient(WithBaseURL("http://kis.invalid"), WithAppKey(testKey, testSecret),
		WithTokenStore(NewMemoryTokenStore()), WithRateLimit(10000),
		WithHTTPClient(&http.Client{Transport: rt}))
	if err != nil {
		b.Fatal(err)
	}
	c.token.Store(&Token{Value: testToken, Expires: time.Now().Add(time.Hour)})
	c.pacer.lim.SetLimit(rate.Inf) // limiter off: measure the client alone
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.Price(ctx, "000660"); err != nil {
			b.Fatal(err)
		}
	}
}

var _ = emulator.KindMock
