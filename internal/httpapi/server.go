// Package httpapi is kisfeed's HTTP API: market data as JSON under /v1,
// RFC 9457 problems for errors, /healthz, /readyz, /metrics and the
// OpenAPI document at /openapi.json.
//
// [New] builds the handler from a [kisfeed.Source] and small pluggable
// parts (readiness checks, a metrics observer, a Prometheus gatherer, a
// logger, a clock); [Serve] runs it with graceful shutdown.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/access"
)

// RequestObserver records served requests; *metrics.Metrics implements it.
type RequestObserver interface {
	ObserveHTTP(method, route string, status int, elapsed time.Duration)
}

// Check is one readiness check. Func returns nil when the dependency is
// fine, else an error whose text is shown on /readyz: it must not carry
// secrets (no passwords, no tokens).
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// Options configure [New]. Only Source is required.
type Options struct {
	// Source serves the market data.
	Source kisfeed.Source
	// Logger receives the access log and failures (slog.Default if nil).
	Logger *slog.Logger
	// Observer records request metrics (none if nil).
	Observer RequestObserver
	// Gatherer is served at /metrics (404 there if nil).
	Gatherer prometheus.Gatherer
	// Checks are run by /readyz.
	Checks []Check
	// Clock is the stack's one clock value: Wall for Cache-Control ages
	// and default dates (time.Now when nil), Market (Wall when nil) for
	// "today" in candles' default window and /v1/status's market time.
	// Against the synthetic market with KISFEED_MARKET_TIME they differ,
	// and a minute chart of the wall clock's day would ask the market for
	// a day it has not reached.
	Clock kisfeed.Clock
	// Status fills /v1/status's figures (breaker, cache, upstream rate,
	// stream, ingestion runs); nil answers them unknown. It is called
	// with a deadline and must not block past it.
	Status func(ctx context.Context) Status
	// RequestTimeout bounds each request (DefaultRequestTimeout if 0).
	RequestTimeout time.Duration
	// ReadyTimeout bounds /readyz's checks (2 s if 0).
	ReadyTimeout time.Duration
	// AccessLog logs every request at Info; failures are logged anyway.
	AccessLog bool
	// Access, when not nil, requires an API key on /v1 (see auth.go) and
	// enforces each key's quotas; nil = every route is public.
	Access *access.Guard
	// MetricsRequireKey makes /metrics need a key with the metrics scope
	// (only with Access).
	MetricsRequireKey bool
	// Stream serves GET /v1/stream (Server-Sent Events) and StreamWS GET
	// /v1/ws (WebSocket): internal/fanout's NewSSEHandler and
	// NewWSHandler. Nil leaves the route out (404) and out of the served
	// OpenAPI document. Both run
	// without the request timeout, and with keys configured they also
	// take the key from the kisfeed_key cookie (EventSource cannot send
	// a header); the key reaches them through access.FromContext.
	Stream, StreamWS http.Handler
}

// DefaultRequestTimeout bounds a request when Options.RequestTimeout is 0:
// above one KIS call's timeout so the upstream's own error wins.
const DefaultRequestTimeout = 15 * time.Second

// Server is the HTTP API handler. It is safe for concurrent use.
type Server struct {
	src       kisfeed.Source
	log       *slog.Logger
	obs       RequestObserver
	checks    []Check
	now       func() time.Time
	timeout   time.Duration
	readyTime time.Duration
	accessLog bool
	// guard and metricsNeedKey are Options.Access and MetricsRequireKey.
	guard          *access.Guard
	metricsNeedKey bool
	marketNow      func() time.Time
	status         func(ctx context.Context) Status

	mux    *http.ServeMux
	routes []string // registered patterns, for the OpenAPI sync test
}

// New returns the API handler.
func New(o Options) *Server {
	s := &Server{
		src: o.Source, log: o.Logger, obs: o.Observer, checks: o.Checks, now: o.Clock.Wall,
		timeout: o.RequestTimeout, readyTime: o.ReadyTimeout, accessLog: o.AccessLog,
		guard: o.Access, metricsNeedKey: o.MetricsRequireKey,
		marketNow: o.Clock.Market, status: o.Status,
		mux: http.NewServeMux(),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.marketNow == nil {
		s.marketNow = s.now
	}
	if s.timeout <= 0 {
		s.timeout = DefaultRequestTimeout
	}
	if s.readyTime <= 0 {
		s.readyTime = 2 * time.Second
	}
	s.handle("GET /v1/stocks", s.handleStocks)
	s.handle("GET /v1/stocks/{code}/quote", s.handleQuote)
	s.handle("GET /v1/stocks/{code}/orderbook", s.handleOrderBook)
	s.handle("GET /v1/stocks/{code}/candles", s.handleCandles)
	s.handle("GET /v1/stocks/{code}/info", s.handleInfo)
	s.handle("GET /v1/quotes", s.handleQuotes)
	s.handle("GET /v1/calendar/{date}", s.handleCalendar)
	s.handle("GET /v1/status", s.handleStatus)
	var absent []string
	for _, r := range []struct {
		path string
		h    http.Handler
	}{{StreamPath, o.Stream}, {StreamWSPath, o.StreamWS}} {
		if r.h == nil {
			absent = append(absent, r.path)
			continue
		}
		s.handle("GET "+r.path, r.h.ServeHTTP)
	}
	s.handle("GET /healthz", s.handleHealthz)
	s.handle("GET /readyz", s.handleReadyz)
	s.handle("GET /openapi.json", openAPIHandler(openAPIWithout(absent...)))
	if o.Gatherer != nil {
		s.handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError),
		}).ServeHTTP)
	}
	// The page and its assets are not API routes (Routes, and so the
	// OpenAPI document, leave them out).
	s.mux.HandleFunc("GET /{$}", handlePage)
	s.mux.Handle("GET "+assetsPrefix, assets)
	// The catch-all turns the mux's plain-text 404 and 405 into problems.
	s.mux.HandleFunc("/", s.handleNoRoute)
	return s
}

func (s *Server) handle(pattern string, h http.HandlerFunc) {
	s.routes = append(s.routes, pattern)
	s.mux.HandleFunc(pattern, h)
}

// Routes returns the registered route patterns ("GET /v1/quotes").
func (s *Server) Routes() []string { return append([]string(nil), s.routes...) }

// ServeHTTP runs the middleware chain around the router: panic recovery,
// the per-request timeout, the query-size cap, API keys and quotas (auth.go),
// metrics and the access log.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w}
	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	if isStream(r.URL.Path) {
		// A stream lasts as long as its client stays; the handlers bound
		// each write instead.
		ctx, cancel = context.WithCancel(r.Context())
	}
	defer cancel()
	// The router sets Pattern on the request it is given, so keep that
	// request to read the route from after it returns.
	req := r.WithContext(ctx)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.LogAttrs(ctx, slog.LevelError, "panic serving request",
				slog.String("method", req.Method), slog.String("route", routeLabel(req.Pattern)),
				slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			if !rw.wroteHeader {
				s.writeProblem(rw, Problem{Type: problemBase + internalKind.slug, Title: internalKind.title,
					Status: internalKind.status, Detail: internalKind.detail, Instance: instance(req)})
			}
		}
		s.done(req, rw, time.Since(start))
	}()
	if len(r.URL.RawQuery) > MaxQueryBytes {
		s.writeProblem(rw, Problem{Type: problemBase + "query-too-long", Title: "Query string too long",
			Status: http.StatusRequestURITooLong, Instance: instance(req),
			Detail: "query string of " + itoa(len(r.URL.RawQuery)) + " bytes: want at most " + itoa(MaxQueryBytes)})
		return
	}
	p, ok := s.authorize(rw, req)
	if p != nil {
		rw.key = p.Name()
	}
	if !ok {
		return
	}
	if p != nil {
		// Handlers that charge the key themselves (the streams) find it
		// here. The deferred done reads req (the variable) for the route,
		// so it sees the request the router set Pattern on.
		req = req.WithContext(access.NewContext(req.Context(), p))
	}
	s.mux.ServeHTTP(rw, req)
	s.chargeMiss(p, req, rw)
}

// done records metrics and the access log for a finished request.
func (s *Server) done(r *http.Request, rw *statusWriter, elapsed time.Duration) {
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	route := routeLabel(r.Pattern)
	if s.obs != nil {
		s.obs.ObserveHTTP(r.Method, route, status, elapsed)
	}
	if s.accessLog && s.log.Enabled(r.Context(), slog.LevelInfo) {
		// Headers are never logged: callers may send credentials in them.
		// The key's configured name stands for the caller instead.
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
			slog.String("method", r.Method), slog.String("route", route), slog.String("path", instance(r)),
			slog.Int("status", status), slog.Duration("duration", elapsed), slog.Int64("bytes", rw.bytes),
			slog.String("key", rw.key))
	}
}

// routeLabel turns a router pattern into the metrics' route label:
// "GET /v1/quotes" → "/v1/quotes"; no match → "unmatched".
func routeLabel(pattern string) string {
	if pattern == "" || pattern == "/" {
		return "unmatched"
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return path
	}
	return pattern
}

// statusWriter captures the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	key         string // the API key's name, "" without one
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status = code
		w.wroteHeader = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) handleNoRoute(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.writeProblem(w, Problem{Type: problemBase + "method-not-allowed", Title: "Method not allowed",
			Status: http.StatusMethodNotAllowed, Instance: instance(r),
			Detail: "method " + truncate(r.Method) + ": this API only answers GET and HEAD"})
		return
	}
	s.writeProblem(w, Problem{Type: problemBase + "no-route", Title: "Not found",
		Status: http.StatusNotFound, Instance: instance(r),
		Detail: "no route for this path; see /openapi.json"})
}
