package httpserve_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed/internal/httpserve"
)

// TestRun: Run serves until its context ends and then returns; a request
// in flight when the context ends is drained (answered), one still busy at
// the deadline is cut and Run reports the deadline.
func TestRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		release bool // the handler finishes once shutdown has begun
		timeout time.Duration
		wantErr error
	}{
		{name: "drained", release: true, timeout: 5 * time.Second},
		{name: "cut at the deadline", release: false, timeout: 50 * time.Millisecond, wantErr: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			entered, shutdown, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
			defer close(done)
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(entered)
				<-shutdown
				if !tt.release {
					<-done
				}
				io.WriteString(w, "ok")
			})}
			srv.RegisterOnShutdown(func() { close(shutdown) })
			ctx, cancel := context.WithCancel(t.Context())
			ran := make(chan error, 1)
			go func() { ran <- httpserve.Run(ctx, srv, ln, tt.timeout) }()
			got := make(chan error, 1)
			go func() {
				resp, err := http.Get("http://" + ln.Addr().String())
				if err == nil {
					resp.Body.Close()
				}
				got <- err
			}()
			<-entered
			cancel()
			if err := <-ran; !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run = %v, want %v", err, tt.wantErr)
			}
			if err := <-got; (err == nil) != tt.release {
				t.Errorf("request error %v, want answered=%v", err, tt.release)
			}
		})
	}
}

// TestRunServeError: a listener that fails is Serve's error, returned at
// once without waiting for the context.
func TestRunServeError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := httpserve.Run(t.Context(), &http.Server{}, ln, time.Second); err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Run on a closed listener = %v, want the accept error", err)
	}
}
