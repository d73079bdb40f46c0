package httpapi

import "net/http"

// The stream routes, served by the handlers in Options.Stream and
// Options.StreamWS (internal/fanout).
const (
	StreamPath   = "/v1/stream"
	StreamWSPath = "/v1/ws"
)

// isStream reports whether path is a stream route: no request timeout,
// and the API key may come in the kisfeed_key cookie.
func isStream(path string) bool { return path == StreamPath || path == StreamWSPath }

// streamRoute is h, or a 503 problem when streaming is not enabled.
func streamRoute(h http.Handler) http.HandlerFunc {
	if h != nil {
		return h.ServeHTTP
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Cache-Control", "no-store")
		writeJSONBody(w, http.StatusServiceUnavailable, Problem{Type: problemBase + "stream-disabled",
			Title: "Streaming not enabled", Status: http.StatusServiceUnavailable, Instance: instance(r),
			Detail: "this server does not stream real-time data"})
	}
}
