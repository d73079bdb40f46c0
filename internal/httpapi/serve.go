package httpapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/kisfeed/kisfeed/internal/httpserve"
)

// ServeOptions tune [Serve]; zero values take the documented defaults.
type ServeOptions struct {
	// ShutdownTimeout bounds the drain of in-flight requests once ctx is
	// done (default 20 s); connections still busy then are closed.
	ShutdownTimeout time.Duration
	// WriteTimeout bounds writing a response (default 60 s): above the
	// request timeout so handlers time out first and answer 504.
	WriteTimeout time.Duration
	// Logger receives server errors (slog.Default if nil).
	Logger *slog.Logger
	// OnShutdown, when set, is called once the listener is closed and
	// draining has begun.
	OnShutdown func()
	// ConnContext, when set, is the server's ConnContext (the stream
	// handlers use fanout.ConnContext to reach their connection).
	ConnContext func(ctx context.Context, c net.Conn) context.Context
}

// MaxHeaderBytes caps the request line plus headers. A longer request
// (a megabyte of query string) is refused by net/http with 431 before any
// handler runs; queries between MaxQueryBytes and this get a 414 problem.
const MaxHeaderBytes = 64 << 10

// Serve serves h on ln until ctx is done, then shuts down gracefully:
// it stops accepting, lets in-flight requests finish within
// ShutdownTimeout, and returns. Request contexts do not derive from ctx,
// so cancelling ctx drains requests rather than aborting them. It returns
// nil after a clean shutdown.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, o ServeOptions) error {
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 20 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 60 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		ConnContext:       o.ConnContext,
	}
	if o.OnShutdown != nil {
		srv.RegisterOnShutdown(o.OnShutdown)
	}
	return httpserve.Run(ctx, srv, ln, o.ShutdownTimeout)
}
