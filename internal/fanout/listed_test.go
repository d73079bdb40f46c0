package fanout

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kisfeed/kisfeed"
)

// listedOnly is a Config.Listed over a fixed set; "fail" makes it error.
func listedOnly(fail bool, codes ...string) func(context.Context, kisfeed.Code) (bool, error) {
	set := map[string]bool{}
	for _, c := range codes {
		set[c] = true
	}
	return func(_ context.Context, c kisfeed.Code) (bool, error) {
		if fail {
			return false, errors.New("universe unavailable")
		}
		return set[c.String()], nil
	}
}

// TestUnlistedCodes: a well-formed code the market does not list is
// refused before Demand (KIS would spend a registration on it and stream
// nothing): SSE answers 400 naming it, a subscribe gets an unknown_code
// error event naming it while listed codes go through, and a listing
// that cannot be read lets codes through.
func TestUnlistedCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		fail        bool
		codes       []string
		wantStatus  int    // SSE
		wantRefused string // the code of the unknown_code event; "" none
		wantHeld    []string
	}{
		{"all listed", false, []string{"005930", "000660"}, http.StatusOK, "", []string{"005930", "000660"}},
		{"one unlisted", false, []string{"005930", "999999"}, http.StatusBadRequest, "999999", []string{"005930"}},
		{"listing unavailable", true, []string{"999999"}, http.StatusOK, "", []string{"999999"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newFakeDemand()
			h, _ := testHub(t, Config{Demand: d, Listed: listedOnly(tt.fail, "005930", "000660")})
			c := subscribe(t, h, Request{Transport: "ws"})
			c.Subscribe(context.Background(), codes(tt.codes...), AllKinds)
			var refused []string
			for _, m := range take(t, c) {
				if m.Type == TypeError {
					refused = append(refused, string(m.Data))
				}
			}
			switch {
			case tt.wantRefused == "" && len(refused) > 0:
				t.Errorf("error events %v, want none", refused)
			case tt.wantRefused != "" && (len(refused) != 1 || !strings.Contains(refused[0], `"reason":"unknown_code"`) ||
				!strings.Contains(refused[0], tt.wantRefused)):
				t.Errorf("error events %v, want one unknown_code naming %s", refused, tt.wantRefused)
			}
			for _, code := range tt.wantHeld {
				if _, ok := c.Codes()[code]; !ok {
					t.Errorf("%s not subscribed; codes %v", code, c.Codes())
				}
			}
			// trade and book per subscribed code; none for the unlisted one.
			if acquires, _ := d.counts(); acquires != 2*len(tt.wantHeld) {
				t.Errorf("Demand asked %d times, want %d", acquires, 2*len(tt.wantHeld))
			}
			if tt.wantRefused != "" {
				if _, ok := c.Codes()[tt.wantRefused]; ok {
					t.Errorf("%s subscribed, want refused", tt.wantRefused)
				}
			}

			if tt.wantStatus == http.StatusOK {
				return // the SSE 200 path is TestSSEGolden's
			}
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, "/v1/stream?codes="+strings.Join(tt.codes, ","), nil)
			NewSSEHandler(h, HandlerOptions{}).ServeHTTP(rec, r)
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.wantRefused+" is not a listed code") {
				t.Errorf("SSE: %d %s, want %d naming %s", rec.Code, rec.Body, tt.wantStatus, tt.wantRefused)
			}
		})
	}
}
