//go:build integration

package kis_test

// Integration tests against KIS's own virtual-trading (모의투자) server.
// They need the build tag AND credentials, so neither `go test ./...` nor
// CI ever runs them:
//
//	KIS_INTEGRATION_APP_KEY=... KIS_INTEGRATION_APP_SECRET=... \
//	  go test -tags integration -run Integration -v ./kis/
//
// Optional: KIS_INTEGRATION_BASE_URL (default kis.MockBaseURL) and
// KIS_INTEGRATION_MASTER_URL (default kis.DefaultMasterURL) point them
// elsewhere, e.g. at `kisfeed emulator --server mock` to check the tests
// themselves; KIS_INTEGRATION_TOKEN_FILE is where the access token is kept
// between runs (default: kisfeed-integration-token.json in the user cache
// directory), because KIS issues about one token a minute per key and a
// token lives 24 h.
//
// Calls are paced at 0.9 req/s, under the mock server's limit of 1, and run one after
// another in one test so that no two share a second; the whole run makes
// about 25 calls.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/kis"
	"github.com/kisfeed/kisfeed/krx"
)

// Integration settings, read from the environment.
const (
	envAppKey    = "KIS_INTEGRATION_APP_KEY"
	envAppSecret = "KIS_INTEGRATION_APP_SECRET"
	envBaseURL   = "KIS_INTEGRATION_BASE_URL"
	envMasterURL = "KIS_INTEGRATION_MASTER_URL"
	envTokenFile = "KIS_INTEGRATION_TOKEN_FILE"
)

// integrationCode is Samsung Electronics: listed on every server, always
// traded.
const integrationCode = "005930"

// integrationRate is the pace of every call: the mock server allows 1
// request per second per key, and pacing at exactly 1/s still met an
// EGW00201 now and then (window edges), so stay a little below.
const integrationRate = 0.9

// integrationClient returns a client for the mock server, or skips the
// test naming the variables it needs.
func integrationClient(t *testing.T, store kis.TokenStore) *kis.Client {
	t.Helper()
	key, secret := os.Getenv(envAppKey), os.Getenv(envAppSecret)
	if key == "" || secret == "" {
		t.Skipf("integration tests need a KIS 모의투자 app key: set %s and %s (optional: %s, %s, %s)",
			envAppKey, envAppSecret, envBaseURL, envMasterURL, envTokenFile)
	}
	opts := []kis.Option{
		kis.WithServer(kis.Mock),
		kis.WithAppKey(key, secret),
		kis.WithRateLimit(integrationRate),
		kis.WithTokenStore(store),
		kis.WithTimeout(20 * time.Second),
	}
	if v := os.Getenv(envBaseURL); v != "" {
		opts = append(opts, kis.WithBaseURL(v))
	}
	if v := os.Getenv(envMasterURL); v != "" {
		opts = append(opts, kis.WithMasterURL(v))
	}
	c, err := kis.NewClient(opts...)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// integrationStore is the token store kept between runs.
func integrationStore(t *testing.T) kis.TokenStore {
	t.Helper()
	path := os.Getenv(envTokenFile)
	if path == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = t.TempDir()
		}
		path = filepath.Join(dir, "kisfeed-integration-token.json")
	}
	s, err := kis.NewFileTokenStore(path)
	if err != nil {
		t.Fatalf("token store %s: %v", path, err)
	}
	return s
}

// TestIntegrationMockServer walks the client's calls against the mock
// server in order: token, quotes, book, charts, info, then the calls the
// mock server lacks and the client answers another way.
func TestIntegrationMockServer(t *testing.T) {
	// Skip before touching the user's cache directory.
	if os.Getenv(envAppKey) == "" || os.Getenv(envAppSecret) == "" {
		integrationClient(t, nil)
	}
	store := integrationStore(t)
	c := integrationClient(t, store)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if got := c.Server(); got != kis.Mock {
		t.Fatalf("server %v, want the mock server", got)
	}
	// today is the market's date on KST; the latest session is today's
	// when KRX trades today, else the previous trading day.
	today := kisfeed.Day(time.Now())
	session := today
	if !krx.IsTradingDay(session) {
		session = krx.PrevTradingDay(session)
	}

	t.Run("token issue and reuse", func(t *testing.T) {
		tok, err := c.Token(ctx)
		if err != nil {
			t.Fatalf("token: %v", err)
		}
		if tok.Value == "" || tok.Type != "Bearer" || !tok.Expires.After(time.Now().Add(time.Hour)) {
			t.Fatalf("token %v: want a Bearer token valid for more than an hour", tok)
		}
		again, err := c.Token(ctx)
		if err != nil || again.Value != tok.Value {
			t.Errorf("second Token: %v; want the same token, not a new one", err)
		}
		// A second client over the same store reuses it: no tokenP call.
		other := integrationClient(t, store)
		shared, err := other.Token(ctx)
		if err != nil || shared.Value != tok.Value {
			t.Errorf("second client: %v; want the stored token", err)
		}
		if n := other.Stats().TokensIssued; n != 0 {
			t.Errorf("second client issued %d tokens, want 0", n)
		}
		if n := c.Stats().TokensIssued; n > 1 {
			t.Errorf("client issued %d tokens, want at most 1", n)
		}
	})

	t.Run("price", func(t *testing.T) {
		q, resp, err := c.Price(ctx, integrationCode)
		if err != nil {
			t.Fatalf("price: %v", err)
		}
		if q.Code != integrationCode || q.Price <= 0 || q.High < q.Low || resp == nil {
			t.Errorf("quote %+v: want %s with a positive price and high >= low", q, integrationCode)
		}
		if _, _, err := c.Price(ctx, "999999"); !errors.Is(err, kisfeed.ErrNotFound) {
			t.Errorf("unknown code: got %v, want kisfeed.ErrNotFound", err)
		}
	})

	t.Run("order book", func(t *testing.T) {
		b, _, err := c.OrderBook(ctx, integrationCode)
		if err != nil {
			t.Fatalf("order book: %v", err)
		}
		if b.Code != integrationCode {
			t.Errorf("book code %q, want %s", b.Code, integrationCode)
		}
		// Outside the session the book may be empty; when both sides
		// quote, it is not crossed.
		if a, bid := b.Asks[0].Price, b.Bids[0].Price; a > 0 && bid > 0 && bid >= a {
			t.Errorf("best bid %d >= best ask %d: crossed book", bid, a)
		}
	})

	t.Run("daily chart", func(t *testing.T) {
		from := session.AddDate(0, 0, -30)
		bars, err := c.DailyCandles(ctx, integrationCode, kis.PeriodDay, from, session, true)
		if err != nil {
			t.Fatalf("daily candles: %v", err)
		}
		if len(bars) < 10 {
			t.Fatalf("%d daily bars over 30 days, want at least 10", len(bars))
		}
		checkBars(t, bars, from, session.Add(24*time.Hour))
	})

	t.Run("minute chart", func(t *testing.T) {
		bars, err := c.MinuteCandles(ctx, integrationCode, today)
		if err != nil {
			t.Fatalf("minute candles: %v", err)
		}
		// Before the open, or on a holiday, there may be none.
		checkBars(t, bars, today, today.Add(24*time.Hour))
		t.Logf("%d minute bars today", len(bars))
	})

	// The calls below are the ones the mock server lacks; the client
	// answers them another way.
	t.Run("info from the master files", func(t *testing.T) {
		info, err := c.StockInfo(ctx, integrationCode)
		if err != nil {
			t.Fatalf("stock info: %v", err)
		}
		if info.Code != integrationCode || info.Name == "" || info.Market != kisfeed.MarketKOSPI {
			t.Errorf("info %+v: want %s named, on KOSPI", info, integrationCode)
		}
	})

	t.Run("prices one by one", func(t *testing.T) {
		codes := []string{integrationCode, "000660", "035420"}
		qs, err := c.Prices(ctx, codes)
		if err != nil {
			t.Fatalf("prices: %v", err)
		}
		for i, q := range qs {
			if q == nil || q.Code != codes[i] || q.Price <= 0 {
				t.Errorf("prices[%d] = %+v, want %s with a price", i, q, codes[i])
			}
		}
	})

	t.Run("calendar from krx", func(t *testing.T) {
		ok, err := c.IsTradingDay(ctx, session)
		if err != nil || !ok {
			t.Errorf("IsTradingDay(%s) = %v, %v; want true", session.Format(time.DateOnly), ok, err)
		}
		days, err := c.Calendar(ctx, session.AddDate(0, 0, -7), session)
		if err != nil || len(days) != 8 {
			t.Errorf("calendar over 8 days: %d days, %v; want 8", len(days), err)
		}
	})

	t.Run("past minutes unsupported", func(t *testing.T) {
		past := krx.PrevTradingDay(session)
		_, err := c.MinuteCandles(ctx, integrationCode, past)
		if !errors.Is(err, kis.ErrUnsupported) {
			t.Errorf("minute candles of %s: got %v, want kis.ErrUnsupported (real server only)", past.Format(time.DateOnly), err)
		}
	})

	st := c.Stats()
	t.Logf("%d HTTP requests, %d retries, %d rate-limited, %d tokens issued", st.Requests, st.Retries, st.RateLimited, st.TokensIssued)
}

// checkBars checks that bars are oldest first, inside [from, to), and
// self-consistent.
func checkBars(t *testing.T, bars []kisfeed.Candle, from, to time.Time) {
	t.Helper()
	if !slices.IsSortedFunc(bars, func(a, b kisfeed.Candle) int { return a.Time.Compare(b.Time) }) {
		t.Errorf("bars not oldest first")
	}
	for _, b := range bars {
		if b.Time.Before(from) || !b.Time.Before(to) || b.High < b.Low || b.Close <= 0 || b.Low <= 0 {
			t.Errorf("bar %+v: want a positive bar between %s and %s with high >= low", b, from, to)
		}
	}
}
