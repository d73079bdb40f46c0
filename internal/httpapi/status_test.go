package httpapi

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisfeed/kisfeed"
)

// TestStatus: /v1/status carries the provider's figures with the times
// and the market's session state added, and answers unknown (never null
// lists) without a provider.
func TestStatus(t *testing.T) {
	t.Parallel()
	market := time.Date(2026, 11, 27, 10, 0, 0, 0, kisfeed.KST) // a Friday in session
	ratio, limit := 0.9, 18.0
	full := Status{Breaker: "open", Cache: StatusCache{Hits: 9, Misses: 1, HitRatio: &ratio},
		Upstream:  StatusUpstream{Requests: 5, Limit: &limit, Keys: 1},
		Stream:    StatusStream{Keys: []StatusStreamKey{{Key: 1}}},
		Ingestion: StatusIngestion{Database: true, Runs: []StatusRun{{ID: 3, Status: "succeeded", From: "2026-11-26", To: "2026-11-26"}}}}
	tests := []struct {
		name       string
		status     func(context.Context) Status
		marketNow  func() time.Time
		wantOpen   bool
		wantBody   []string
		wantStatus int
		query      string
	}{
		{name: "figures", status: func(context.Context) Status { return full }, marketNow: func() time.Time { return market }, wantOpen: true,
			wantBody: []string{`"breaker":"open"`, `"hit_ratio":0.9`, `"limit":18`, `"per_second":null`, `"keys":[{"key":1,"sessions":0,"registrations":0}]`,
				`"runs":[{"id":3,"status":"succeeded","started_at":"0001-01-01T00:00:00Z","from":"2026-11-26"`, `"market_time":"2026-11-27T10:00:00+09:00"`}},
		{name: "market closed", status: func(context.Context) Status { return full }, marketNow: func() time.Time { return market.Add(6 * time.Hour) }},
		{name: "no provider", marketNow: func() time.Time { return market.Add(-2 * time.Hour) }, wantBody: []string{`"breaker":"unknown"`, `"keys":[]`, `"runs":[]`, `"database":false`, `"hit_ratio":null`, `"limit":null`}},
		{name: "provider leaves lists nil", status: func(context.Context) Status { return Status{} }, marketNow: func() time.Time { return market.AddDate(0, 0, 1) }, wantBody: []string{`"breaker":"unknown"`, `"keys":[]`, `"runs":[]`}},
		{name: "query refused", query: "?x=1", wantStatus: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := New(Options{Source: fakeSource(nil), Gatherer: prometheus.NewRegistry(), Clock: kisfeed.Clock{Wall: fixedNow, Market: tt.marketNow}, Status: tt.status})
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/v1/status"+tt.query, nil))
			want := tt.wantStatus
			if want == 0 {
				want = http.StatusOK
			}
			if rec.Code != want {
				t.Fatalf("status: got %d %s, want %d", rec.Code, rec.Body, want)
			}
			if want != http.StatusOK {
				return
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control: got %q, want no-store", cc)
			}
			var got Status
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.MarketOpen != tt.wantOpen {
				t.Errorf("market_open: got %v, want %v", got.MarketOpen, tt.wantOpen)
			}
			for _, w := range tt.wantBody {
				if !strings.Contains(rec.Body.String(), w) {
					t.Errorf("body %s: missing %s", rec.Body, w)
				}
			}
		})
	}
}

// TestCandlesFollowTheMarketClock: the candles' default day is the
// market's, not the wall clock's, so a minute chart of the synthetic
// market (KISFEED_MARKET_TIME) asks for the day it is on.
func TestCandlesFollowTheMarketClock(t *testing.T) {
	t.Parallel()
	market := time.Date(2026, 11, 27, 10, 0, 0, 0, kisfeed.KST)
	src := fakeSource(new(atomic.Int64))
	var got kisfeed.CandleQuery
	inner := src.CandlesFn
	src.CandlesFn = func(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
		got = q
		return inner(ctx, q)
	}
	srv := New(Options{Source: src, Clock: kisfeed.Clock{Wall: fixedNow, Market: func() time.Time { return market }}})
	for _, tt := range []struct{ interval, from, to string }{{"minute", "2026-11-27", "2026-11-27"}, {"day", "2026-08-27", "2026-11-27"}} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/v1/stocks/005930/candles?interval="+tt.interval, nil))
		if rec.Code != 200 || got.From.Format(time.DateOnly) != tt.from || got.To.Format(time.DateOnly) != tt.to {
			t.Errorf("%s: got %d, window %s–%s; want 200, %s–%s", tt.interval, rec.Code,
				got.From.Format(time.DateOnly), got.To.Format(time.DateOnly), tt.from, tt.to)
		}
	}
}

// TestOpenAPIStatusSchemas keeps the /v1/status schemas equal to the Go
// types, as TestOpenAPISchemas does for the others.
func TestOpenAPIStatusSchemas(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	for name, v := range map[string]any{
		"Status": Status{}, "StatusCache": StatusCache{}, "StatusUpstream": StatusUpstream{}, "StatusStream": StatusStream{},
		"StatusStreamKey": StatusStreamKey{}, "StatusReplica": StatusReplica{}, "StatusIngestion": StatusIngestion{}, "StatusRun": StatusRun{},
	} {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s: missing from openapi.json", name)
			continue
		}
		fields, props := jsonFields(reflect.TypeOf(v)), slices.Sorted(maps.Keys(schema.Properties))
		if !slices.Equal(fields, props) {
			t.Errorf("schema %s properties:\ngot  %v\nwant %v (the Go type's JSON fields)", name, props, fields)
		}
		for _, r := range schema.Required {
			if !slices.Contains(fields, r) {
				t.Errorf("schema %s: required %q is not a field", name, r)
			}
		}
	}
}
