package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
)

// TestServeGracefulShutdown cancels the serve context while a request is
// in flight: the request still completes with 200, new connections are
// refused, and Serve returns nil.
func TestServeGracefulShutdown(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release := make(chan struct{})
	src := &sourcetest.Func{QuoteFn: func(ctx context.Context, code string) (*kisfeed.Quote, error) {
		close(entered)
		<-release
		return testQuote(code, kisfeed.OriginSource), nil
	}}
	h := New(Options{Source: src, Clock: kisfeed.Clock{Wall: fixedNow}, Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	draining := make(chan struct{})
	go func() {
		served <- Serve(ctx, ln, h, ServeOptions{ShutdownTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler),
			OnShutdown: func() { close(draining) }})
	}()
	base := "http://" + ln.Addr().String()

	type result struct {
		status int
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/v1/stocks/005930/quote")
		if err != nil {
			got <- result{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got <- result{status: resp.StatusCode}
	}()
	<-entered
	cancel()
	<-draining
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Errorf("dial during drain: got a connection, want refused")
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v before the in-flight request finished", err)
	default:
	}
	close(release)
	if r := <-got; r.err != nil || r.status != http.StatusOK {
		t.Errorf("in-flight request: got %d, %v; want 200, nil", r.status, r.err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: got %v, want nil after a clean shutdown", err)
	}
}

// TestServeHugeQuery sends a 1 MB query string through the real server:
// refused with a 4xx before any handler runs, never a 5xx.
func TestServeHugeQuery(t *testing.T) {
	t.Parallel()
	base := startServer(t)
	tests := []struct {
		name   string
		size   int
		status int
	}{
		{"8 KB", 8 << 10, http.StatusRequestURITooLong},
		{"1 MB", 1 << 20, http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status := rawGet(t, base, "/v1/stocks/005930/candles?from="+strings.Repeat("1", tt.size))
			if status != tt.status {
				t.Errorf("status: got %d, want %d", status, tt.status)
			}
		})
	}
}

// startServer runs Serve on a loopback port for the test's lifetime.
func startServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := New(Options{Source: fakeSource(new(atomic.Int64)), Clock: kisfeed.Clock{Wall: fixedNow}, Logger: slog.New(slog.DiscardHandler)})
	go func() { done <- Serve(ctx, ln, h, ServeOptions{Logger: slog.New(slog.DiscardHandler)}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// rawGet writes the request line by hand (net/http's client would refuse
// nothing, but this keeps the test independent of client limits) and
// returns the status code.
func rawGet(t *testing.T, addr, target string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		_, _ = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
