package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"

	"github.com/kisfeed/kisfeed"
)

// Problem is an RFC 9457 problem details object, the body of every error
// response (Content-Type application/problem+json).
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Param names the request parameter at fault (400 only).
	Param string `json:"param,omitempty"`
	// RetryAfter repeats the Retry-After header, in seconds (429 and 503).
	RetryAfter int `json:"retry_after,omitempty"`
}

// problemBase prefixes problem type URIs. RFC 9457 allows relative
// references; the types are documented in openapi.json.
const problemBase = "/problems/"

// errorKind is one row of the table mapping domain errors to HTTP.
type errorKind struct {
	target error // matched with errors.Is
	status int
	slug   string // problem type, after problemBase
	title  string
	// showDetail says whether the error text is safe and useful to show:
	// true for caller mistakes, false for upstream failures whose text may
	// carry internals (URLs, hosts).
	showDetail bool
	detail     string // the generic detail when showDetail is false
}

// errorTable is the one place domain errors map to statuses. The first
// match wins, so more specific errors come first.
var errorTable = []errorKind{
	// Before ErrInvalid, which it also matches: the request is well formed,
	// but the source has no calendar for the day (RFC 9110's 422).
	{kisfeed.ErrNoCalendar, http.StatusUnprocessableEntity, "no-calendar", "No trading calendar", true, ""},
	{kisfeed.ErrInvalid, http.StatusBadRequest, "invalid-parameter", "Invalid parameter", true, ""},
	{kisfeed.ErrNotFound, http.StatusNotFound, "not-found", "Not found", true, ""},
	// Before ErrUnavailable, which the cache's flight timeout also
	// matches: an upstream that did not answer in time is a 504, as
	// `serve --help` promises, not a 503. See upstreamTimedOut.
	{errUpstreamTimeout, http.StatusGatewayTimeout, "upstream-timeout", "Upstream timeout",
		false, "the market-data upstream did not answer in time"},
	{kisfeed.ErrUnavailable, http.StatusServiceUnavailable, "upstream-unavailable", "Upstream unavailable",
		false, "the market-data upstream is unavailable and nothing cached can stand in; retry later"},
	{context.Canceled, statusClientClosed, "client-closed", "Client closed request",
		false, "the client went away before the answer was ready"},
}

// statusClientClosed is nginx's non-standard status for a request the
// client abandoned; it only ever shows in logs and metrics.
const statusClientClosed = 499

var internalKind = errorKind{nil, http.StatusInternalServerError, "internal", "Internal server error",
	false, "the server failed to answer; the failure has been logged"}

// errUpstreamTimeout is the errorTable target of upstreamTimedOut.
var errUpstreamTimeout = errors.New("upstream timeout")

// upstreamTimedOut reports whether err says the upstream did not answer in
// time: it carries a deadline (context.DeadlineExceeded, which the cache's
// flight timeout, the request's own deadline and net/http's client timeout
// all match) or a network timeout. One exception keeps its 503: a fast refusal — a
// *kisfeed.UnavailableError with a RetryAfter, which the breaker returns
// while the circuit is open — whose carried last failure may be a
// timeout, though this request never waited for the upstream.
func upstreamTimedOut(err error) bool {
	var ue *kisfeed.UnavailableError
	if errors.As(err, &ue) && ue.RetryAfter > 0 {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// classify finds the table row for err.
func classify(err error) errorKind {
	for _, k := range errorTable {
		if k.target == errUpstreamTimeout {
			if upstreamTimedOut(err) {
				return k
			}
			continue
		}
		if errors.Is(err, k.target) {
			return k
		}
	}
	return internalKind
}

// paramError is a malformed request parameter; it wraps ErrInvalid.
type paramError struct {
	param string
	msg   string
}

func (e *paramError) Error() string { return e.msg }
func (e *paramError) Is(target error) bool {
	return target == kisfeed.ErrInvalid
}

// badParam returns a *paramError for param with a formatted message.
func badParam(param, format string, a ...any) error {
	return &paramError{param: param, msg: fmt.Sprintf(format, a...)}
}

// codeParam adapts a kisfeed.ParseCode error to the parameter name.
func codeParam(param string, err error) error {
	return &paramError{param: param, msg: trimInvalid(err)}
}

// trimInvalid drops the "invalid argument: " prefix the sentinel wrapping
// adds, which the problem title already says.
func trimInvalid(err error) string {
	msg := err.Error()
	for _, prefix := range []string{kisfeed.ErrInvalid.Error() + ": ", kisfeed.ErrNotFound.Error() + ": "} {
		if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
			return msg[len(prefix):]
		}
	}
	return msg
}

// problemFor builds the problem for err and logs what users do not see.
func (s *Server) problemFor(r *http.Request, err error) Problem {
	k := classify(err)
	p := Problem{Type: problemBase + k.slug, Title: k.title, Status: k.status, Instance: instance(r)}
	if k.showDetail {
		p.Detail = trimInvalid(err)
		var pe *paramError
		if errors.As(err, &pe) {
			p.Param = pe.param
		}
	} else {
		p.Detail = k.detail
	}
	var ue *kisfeed.UnavailableError
	if errors.As(err, &ue) && ue.RetryAfter > 0 {
		p.RetryAfter = int(math.Ceil(ue.RetryAfter.Seconds()))
	} else if k.status == http.StatusServiceUnavailable {
		p.RetryAfter = defaultRetryAfter
	}
	switch {
	case k.status >= 500 && k.status != http.StatusServiceUnavailable && k.status != http.StatusGatewayTimeout:
		s.log.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("route", routeLabel(r.Pattern)), slog.String("path", instance(r)), slog.Any("error", err))
	case k.status >= 500:
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "upstream failure",
			slog.String("route", routeLabel(r.Pattern)), slog.Int("status", k.status), slog.Any("error", err))
	}
	return p
}

// defaultRetryAfter is sent with a 503 whose error carries no delay.
const defaultRetryAfter = 5

// writeError answers with the problem for err.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	s.writeProblem(w, s.problemFor(r, err))
}

// writeProblem writes p with its status and headers.
func (s *Server) writeProblem(w http.ResponseWriter, p Problem) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("X-Cache")
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	writeJSONBody(w, p.Status, p)
}

// instance is the request path shown in problems, capped so a huge path
// is not echoed back whole.
func instance(r *http.Request) string {
	const maxLen = 200
	p := r.URL.Path
	if len(p) > maxLen {
		p = p[:maxLen] + "…"
	}
	return p
}
