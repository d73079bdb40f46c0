package source

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"syscall"
	"time"
)

// newHTTPClient is the KIS client's HTTP client with one change from the
// kis package's default: a refused connection fails at once instead of
// being retried with backoff. A refused connection means the host is up
// and nothing listens (an emulator or gateway that is down); retrying it
// for seconds only delays the answer the layers above give anyway — the
// cache's stale copy, or a fast "upstream unavailable" — and the circuit
// breaker counts it toward opening. Timeouts, resets and 5xx keep their
// retries. The other settings mirror kis's default client: keep-alive
// with enough idle connections for every concurrent caller, HTTP/1.1 only
// (KIS speaks it), TLS 1.2 or later.
func newHTTPClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		MaxIdleConns:          128,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: refusedFast{tr}, Timeout: timeout}
}

// refusedFast turns ECONNREFUSED into a [RefusedError], which the kis
// client does not retry.
type refusedFast struct{ rt http.RoundTripper }

func (f refusedFast) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := f.rt.RoundTrip(r)
	if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
		return nil, &RefusedError{msg: err.Error()}
	}
	return resp, err
}

// RefusedError is a refused connection to the upstream. It deliberately
// does not unwrap to syscall.ECONNREFUSED, so the kis client's retry
// policy treats it as final; match it with errors.As.
type RefusedError struct{ msg string }

func (e *RefusedError) Error() string { return e.msg }
