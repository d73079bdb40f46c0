// Package httpserve owns the lifetime of one HTTP server: serve on a
// listener until a context ends, then shut down within a deadline. The
// HTTP API, the emulator command and the built-in emulator share it, each
// with its own server settings and shutdown timeout.
package httpserve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Run serves srv on ln until ctx is done, then shuts it down gracefully:
// it stops accepting and lets in-flight requests finish within timeout;
// connections still busy then are closed. Request contexts do not derive
// from ctx, so cancelling ctx drains requests rather than aborting them.
//
// It returns nil after a clean shutdown; the error of Serve when serving
// failed before ctx was done or while draining; else the error of
// Shutdown (context.DeadlineExceeded when the drain outlived timeout).
func Run(ctx context.Context, srv *http.Server, ln net.Listener, timeout time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		// Drain deadline passed: cut the stragglers.
		_ = srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
