package wiring

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/kis"
)

// refusedFastTransport is the wrapper handed to [kis.WithTransport]: the
// KIS client's pooled transport (its settings live in package kis) with
// one change, a refused connection fails at once instead of being retried
// with backoff. A refused connection means the host is up and nothing
// listens (an emulator or gateway that is down); retrying it for seconds
// only delays the answer the layers above give anyway — the cache's stale
// copy, or a fast "upstream unavailable" — and the circuit breaker counts
// it toward opening. Timeouts, resets and 5xx keep their retries. r, when
// not nil, is told about refusals and answers.
func refusedFastTransport(r *reach) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper { return refusedFast{rt: rt, reach: r} }
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
	if err == nil && f.reach != nil {
		f.reach.answered()
	}
	return resp, err
}

// RefusedError is a refused connection to the upstream. It deliberately
// does not unwrap to syscall.ECONNREFUSED, so the kis client's retry
// policy treats it as final; match it with errors.As.
type RefusedError struct{ msg string }

func (e *RefusedError) Error() string { return e.msg }

// reach remembers what the upstream host's TCP port last said: it
// accepted a connection, refused one, or the probe was inconclusive
// (timeout, DNS, anything else). Two readers use it:
//
//   - The shared (Redis) rate limiter calls [reach.check] before taking a
//     slot: a slot is a share of the app key's budget that other
//     processes then wait for, and a host that refuses connections should
//     cost no slot and no wait. A fresh process (every CLI lookup) probes
//     once with a plain TCP dial; after that the probe is repeated only
//     once the last success is older than reachTTL or a refusal has been
//     seen.
//   - The cache's upstream health check calls [reach.health] on every
//     fresh hit, to mark the hit stale while the host refuses
//     connections. It must cost nothing on serve's hot path, so it answers
//     from the last observation while that is recent (healthFresh for a
//     success, refusedFresh for a refusal), refreshes it in the background
//     while it is older but within reachTTL, and dials synchronously —
//     once, shared by concurrent callers, with a short timeout — only
//     when there is no usable observation (a fresh CLI process pays one
//     loopback dial).
//
// The HTTP transport feeds it too: a refused request records a refusal, an
// answered one a success.
type reach struct {
	addr          string // host:port; "" disables probing
	timeout       time.Duration
	healthTimeout time.Duration
	clock         kisfeed.Clock // its wall clock dates the observations
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)

	last   atomic.Pointer[observation]
	probes singleflight.Group // the synchronous health dial

	mu         sync.Mutex // guards refreshing and closed, and wg.Add
	refreshing bool
	closed     bool
	wg         sync.WaitGroup // background refreshes
}

// The reachability states.
const (
	reachUnknown = iota // inconclusive probe: assume the host is up
	reachOK
	reachRefused
)

// observation is one reachability result and when it was made.
type observation struct {
	state int
	at    time.Time
}

// err is the health answer for o: a *RefusedError after a refusal.
func (o *observation) err() error {
	if o.state == reachRefused {
		return &RefusedError{msg: "upstream refused the connection (reachability probe)"}
	}
	return nil
}

const (
	// reachTTL is how long a success spares the limiter path a dial, and
	// the oldest observation the health check answers from.
	reachTTL = 30 * time.Second
	// healthFresh is how long the health check reuses a success (or an
	// inconclusive probe) before refreshing it in the background.
	healthFresh = 5 * time.Second
	// refusedFresh is the same for a refusal: short, so that an upstream
	// that comes back is noticed within seconds.
	refusedFresh = 2 * time.Second
	// healthDialTimeout bounds the health check's synchronous dial: a
	// loopback or LAN dial takes well under a millisecond, and the check
	// must never hold a cache hit up for long.
	healthDialTimeout = 200 * time.Millisecond
)

// newReach returns a reach for baseURL, or one that never probes when the
// URL cannot be dialled directly (unparsable, or behind a proxy). clock's
// wall clock dates the observations.
func newReach(baseURL string, timeout time.Duration, clock kisfeed.Clock) *reach {
	t := min(timeout, 2*time.Second)
	r := &reach{timeout: t, healthTimeout: min(t, healthDialTimeout), clock: clock,
		dial: (&net.Dialer{}).DialContext}
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

func (r *reach) record(state int) *observation {
	o := &observation{state: state, at: r.clock.Now()}
	r.last.Store(o)
	return o
}

// refused records a refused connection seen by the transport.
func (r *reach) refused() { r.record(reachRefused) }

// answered records a response seen by the transport; cheap when a recent
// success is already recorded (no allocation per request).
func (r *reach) answered() {
	if o := r.last.Load(); o != nil && o.state == reachOK && r.clock.Now().Sub(o.at) < time.Second {
		return
	}
	r.record(reachOK)
}

// probe dials the host once and records the outcome.
func (r *reach) probe(ctx context.Context, timeout time.Duration) *observation {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := r.dial(ctx, "tcp", r.addr)
	switch {
	case err == nil:
		conn.Close()
		return r.record(reachOK)
	case errors.Is(err, syscall.ECONNREFUSED):
		return r.record(reachRefused)
	}
	return r.record(reachUnknown)
}

// check returns a *RefusedError when the host refuses a connection now;
// any other probe outcome lets the request proceed.
func (r *reach) check(ctx context.Context) error {
	if r.addr == "" {
		return nil
	}
	if o := r.last.Load(); o != nil && o.state == reachOK && r.clock.Now().Sub(o.at) < reachTTL {
		return nil
	}
	if o := r.probe(ctx, r.timeout); o.state == reachRefused {
		return &RefusedError{msg: "upstream refused the connection: dial " + r.addr}
	}
	return nil
}

// health returns a *RefusedError while the host is known to refuse
// connections, else nil; see [reach] for what it costs.
func (r *reach) health(ctx context.Context) error {
	if r.addr == "" {
		return nil
	}
	if o := r.last.Load(); o != nil {
		fresh := healthFresh
		if o.state == reachRefused {
			fresh = refusedFresh
		}
		switch age := r.clock.Now().Sub(o.at); {
		case age < fresh:
			return o.err()
		case age < reachTTL:
			r.refreshAsync()
			return o.err()
		}
	}
	// Nothing usable: one dial, shared by concurrent callers and detached
	// from any one caller's context.
	ch := r.probes.DoChan("probe", func() (any, error) {
		return r.probe(context.Background(), r.healthTimeout), nil
	})
	select {
	case res := <-ch:
		return res.Val.(*observation).err()
	case <-ctx.Done():
		return nil // unknown: never mark a hit stale on a guess
	}
}

// refreshAsync starts one background probe unless one is running.
func (r *reach) refreshAsync() {
	r.mu.Lock()
	if r.refreshing || r.closed {
		r.mu.Unlock()
		return
	}
	r.refreshing = true
	r.wg.Add(1)
	r.mu.Unlock()
	go func() { // bounded by healthTimeout; close waits for it
		defer r.wg.Done()
		r.probe(context.Background(), r.healthTimeout)
		r.mu.Lock()
		r.refreshing = false
		r.mu.Unlock()
	}()
}

// close stops background refreshes and waits for a running one.
func (r *reach) close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.wg.Wait()
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
