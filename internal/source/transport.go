package source

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/kisfeed/kisfeed/kis"
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
func newHTTPClient(timeout time.Duration, r *reach) *http.Client {
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
	return &http.Client{Transport: refusedFast{rt: tr, reach: r}, Timeout: timeout}
}

// refusedFast turns ECONNREFUSED into a [RefusedError], which the kis
// client does not retry.
type refusedFast struct {
	rt    http.RoundTripper
	reach *reach // told about refusals; may be nil
}

func (f refusedFast) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := f.rt.RoundTrip(r)
	if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
		if f.reach != nil {
			f.reach.refused()
		}
		return nil, &RefusedError{msg: err.Error()}
	}
	return resp, err
}

// RefusedError is a refused connection to the upstream. It deliberately
// does not unwrap to syscall.ECONNREFUSED, so the kis client's retry
// policy treats it as final; match it with errors.As.
type RefusedError struct{ msg string }

func (e *RefusedError) Error() string { return e.msg }

// reach remembers whether the upstream host accepted a connection lately.
// The shared (Redis) rate limiter consults it before taking a slot: a slot
// is a share of the app key's budget that other processes then wait for,
// and a host that refuses connections should cost no slot and no wait. A
// fresh process (every CLI lookup) probes once with a plain TCP dial;
// after that the probe is repeated only once a refusal has been seen or
// the last success is older than reachTTL.
type reach struct {
	addr    string // host:port; "" disables probing
	timeout time.Duration

	mu      sync.Mutex // guards okUntil
	okUntil time.Time
}

const reachTTL = 30 * time.Second

// newReach returns a reach for baseURL, or one that never probes when the
// URL cannot be dialled directly (unparsable, or behind a proxy).
func newReach(baseURL string, timeout time.Duration) *reach {
	r := &reach{timeout: min(timeout, 2*time.Second)}
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return r
	}
	if req, err := http.NewRequest(http.MethodGet, baseURL, nil); err == nil {
		if p, _ := http.ProxyFromEnvironment(req); p != nil {
			return r
		}
	}
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	r.addr = net.JoinHostPort(u.Hostname(), port)
	return r
}

func (r *reach) refused() {
	r.mu.Lock()
	r.okUntil = time.Time{}
	r.mu.Unlock()
}

// check returns a *RefusedError when the host refuses a connection now;
// any other probe outcome lets the request proceed.
func (r *reach) check(ctx context.Context) error {
	if r.addr == "" {
		return nil
	}
	r.mu.Lock()
	fresh := time.Now().Before(r.okUntil)
	r.mu.Unlock()
	if fresh {
		return nil
	}
	d := net.Dialer{Timeout: r.timeout}
	conn, err := d.DialContext(ctx, "tcp", r.addr)
	if err == nil {
		conn.Close()
		r.mu.Lock()
		r.okUntil = time.Now().Add(reachTTL)
		r.mu.Unlock()
		return nil
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return &RefusedError{msg: "upstream refused the connection: " + err.Error()}
	}
	return nil
}

// reachLimiter checks reachability before waiting on the shared limiter.
type reachLimiter struct {
	reach *reach
	next  kis.Limiter
}

func (l reachLimiter) Wait(ctx context.Context) error {
	if err := l.reach.check(ctx); err != nil {
		return err
	}
	return l.next.Wait(ctx)
}
