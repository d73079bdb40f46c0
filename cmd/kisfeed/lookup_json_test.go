package main

import (
	"encoding/json"
	"github.com/kisfeed/kisfeed"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kisfeed/kisfeed/internal/httpapi"
	"github.com/kisfeed/kisfeed/internal/synthetic"
)

// TestLookupJSONMatchesAPI checks each lookup's --json output is the HTTP
// API's body for the same value: one representation of each domain type.
func TestLookupJSONMatchesAPI(t *testing.T) {
	t.Parallel()
	now := func() time.Time { return lookupNow }
	api := httptest.NewServer(httpapi.New(httpapi.Options{
		Source: synthetic.NewSource(lookupMarket(), kisfeed.Clock{Market: now}), Clock: kisfeed.Clock{Wall: now}, Logger: slog.New(slog.DiscardHandler),
	}))
	t.Cleanup(api.Close)
	tests := []struct {
		name string
		args []string
		path string
	}{
		{"quote", []string{"quote", "005930", "--json"}, "/v1/stocks/005930/quote"},
		{"order book", []string{"orderbook", "005930", "--json"}, "/v1/stocks/005930/orderbook"},
		{"candles", []string{"candles", "005930", "--interval", "week", "--from", "2026-01-05", "--to", "2026-05-20", "--json"},
			"/v1/stocks/005930/candles?interval=week&from=2026-01-05&to=2026-05-20"},
		{"minute candles", []string{"candles", "005930", "--interval", "minute", "--from", "2026-05-20", "--json"},
			"/v1/stocks/005930/candles?interval=minute&from=2026-05-20"},
		{"unadjusted candles", []string{"candles", "005930", "--from", "2026-04-01", "--unadjusted", "--json"},
			"/v1/stocks/005930/candles?from=2026-04-01&adjusted=false"},
		{"info", []string{"info", "005930", "--json"}, "/v1/stocks/005930/info"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, stderr := lookupExec(t, lookupApp(nil, nil), tt.args...)
			if code != 0 {
				t.Fatalf("%v: exit %d: %s", tt.args, code, stderr)
			}
			var cli map[string]any
			if err := json.Unmarshal([]byte(out), &cli); err != nil {
				t.Fatalf("--json output %q: %v", out, err)
			}
			resp, err := http.Get(api.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var web map[string]any
			if err := json.Unmarshal(body, &web); err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET %s: %d %s (%v)", tt.path, resp.StatusCode, body, err)
			}
			if diff := cmp.Diff(web, cli); diff != "" {
				t.Errorf("--json output differs from GET %s (-api +cli):\n%s", tt.path, diff)
			}
		})
	}
}
