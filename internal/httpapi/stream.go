package httpapi

// The stream routes, served by the handlers in Options.Stream and
// Options.StreamWS (internal/fanout).
const (
	StreamPath   = "/v1/stream"
	StreamWSPath = "/v1/ws"
)

// isStream reports whether path is a stream route: no request timeout,
// and the API key may come in the kisfeed_key cookie.
func isStream(path string) bool { return path == StreamPath || path == StreamWSPath }
