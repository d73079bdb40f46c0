package kis

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// fakeGate records what the client tells it and allows retries while
// allow returns true.
type fakeGate struct {
	mu     sync.Mutex
	failed []error // guarded by mu
	asked  int     // guarded by mu
	allow  func(asked int) bool
}

func (g *fakeGate) AttemptFailed(_ context.Context, _ string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failed = append(g.failed, err)
}

func (g *fakeGate) RetryAllowed(context.Context) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked++
	return g.allow(g.asked)
}

// TestRetryGate: each failed attempt the policy would retry is reported
// at once (never the last one, which is the call's error), and a gate
// that refuses stops the retries — right after a failure or when the next
// attempt is due — with the last attempt's error, still matchable.
func TestRetryGate(t *testing.T) {
	t.Parallel()
	ok := func(w http.ResponseWriter, r *http.Request) { w.Write(fixture(t, "inquire-price.json")) }
	gw := errBody(500, "EGW00002", "서버 에러")
	tests := []struct {
		name       string
		h          http.HandlerFunc
		allow      func(asked int) bool
		wantCalls  int
		wantFailed int
		wantMsg    string // "" = success
	}{
		{"allowed: every retry runs", gw, func(int) bool { return true }, 3, 2, "after 3 attempts"},
		{"allowed, then ok", sequence(gw, ok), func(int) bool { return true }, 2, 1, ""},
		{"refused after the first failure", gw, func(int) bool { return false }, 1, 1, "retries stopped"},
		{"refused when the second retry is due", gw, func(asked int) bool { return asked < 3 }, 2, 2, "after 2 attempts (retries stopped)"},
		{"not retryable: not reported", errBody(500, "EGW00205", "credentials"), func(int) bool { return true }, 1, 0, "EGW00205"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			path := "/uapi/domestic-stock/v1/quotations/inquire-price"
			f.handle(path, tt.h)
			g := &fakeGate{allow: tt.allow}
			c := testClient(t, f.url(), WithRetryGate(g))
			_, _, err := c.Price(t.Context(), "000660")
			switch {
			case tt.wantMsg == "" && err != nil:
				t.Fatalf("got %v, want success", err)
			case tt.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tt.wantMsg)):
				t.Fatalf("got %v, want an error with %q", err, tt.wantMsg)
			}
			var ae *APIError
			if err != nil && !errors.As(err, &ae) {
				t.Errorf("got %v, want it to carry the *APIError", err)
			}
			if got := f.count(path); got != tt.wantCalls {
				t.Errorf("requests: got %d, want %d", got, tt.wantCalls)
			}
			if got := len(g.failed); got != tt.wantFailed {
				t.Errorf("attempts reported: got %d, want %d", got, tt.wantFailed)
			}
			for _, e := range g.failed {
				if !errors.As(e, &ae) || ae.MsgCd != "EGW00002" {
					t.Errorf("reported %v, want the EGW00002 *APIError", e)
				}
			}
		})
	}
}

func TestWithRetryGateRejectsNil(t *testing.T) {
	if _, err := NewClient(WithAppKey(testKey, testSecret), WithRetryGate(nil)); err == nil || !strings.Contains(err.Error(), "retry gate") {
		t.Errorf("got %v, want a retry gate error", err)
	}
}
