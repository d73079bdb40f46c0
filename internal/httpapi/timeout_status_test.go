package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/breaker"
	"github.com/kisfeed/kisfeed/internal/cache"
	"github.com/kisfeed/kisfeed/internal/httpapi"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
)

// netTimeout is a network timeout as net/http reports one.
type netTimeout struct{}

func (netTimeout) Error() string   { return "i/o timeout" }
func (netTimeout) Timeout() bool   { return true }
func (netTimeout) Temporary() bool { return true }

var _ net.Error = netTimeout{}

// TestUpstreamTimeoutStatus runs the production stack (cache over breaker
// over an upstream) through the HTTP handler: an upstream that did not
// answer in time is 504 with a problem body, as `serve --help` promises,
// while the fast refusals of an open circuit stay 503 with Retry-After,
// even when the failure that opened it was a timeout.
func TestUpstreamTimeoutStatus(t *testing.T) {
	refused := fmt.Errorf("kis: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	tests := []struct {
		name       string
		fail       func(ctx context.Context) error // the upstream's answer
		calls      int                             // requests made first, then the checked one
		wantStatus int
		wantType   string
		wantRetry  bool
	}{
		{"flight timeout: the upstream hangs", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
			1, http.StatusGatewayTimeout, "/problems/upstream-timeout", false},
		{"network timeout after the retries", func(context.Context) error { return fmt.Errorf("after 5 attempts: %w", netTimeout{}) },
			1, http.StatusGatewayTimeout, "/problems/upstream-timeout", false},
		{"circuit open after timeouts", func(context.Context) error { return fmt.Errorf("after 5 attempts: %w", netTimeout{}) },
			2, http.StatusServiceUnavailable, "/problems/upstream-unavailable", true},
		{"refused connection", func(context.Context) error { return refused },
			1, http.StatusServiceUnavailable, "/problems/upstream-unavailable", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := &sourcetest.Func{QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
					return nil, tt.fail(ctx)
				}}
				br, err := breaker.New(up, breaker.WithFailures(1))
				if err != nil {
					t.Fatal(err)
				}
				c, err := cache.New(br, cache.NewMemory(100, time.Now), cache.WithFlightTimeout(2*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				srv := httpapi.New(httpapi.Options{Source: c, Logger: slog.New(slog.DiscardHandler)})
				var rec *httptest.ResponseRecorder
				for range tt.calls {
					rec = httptest.NewRecorder()
					srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/stocks/005930/quote", nil))
				}
				var p httpapi.Problem
				if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
					t.Fatalf("body %q: %v", rec.Body, err)
				}
				if rec.Code != tt.wantStatus || p.Status != tt.wantStatus || p.Type != tt.wantType {
					t.Errorf("got %d (problem %d %s), want %d %s; body %s", rec.Code, p.Status, p.Type, tt.wantStatus, tt.wantType, rec.Body)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type: got %q, want application/problem+json", ct)
				}
				if got := rec.Header().Get("Retry-After") != ""; got != tt.wantRetry {
					t.Errorf("Retry-After %q: present %v, want %v", rec.Header().Get("Retry-After"), got, tt.wantRetry)
				}
			})
		})
	}
}
