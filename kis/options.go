package kis

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// options collects what the Option functions set before NewClient builds.
type options struct {
	baseURL    string
	server     Server
	masterURL  string
	appKey     string
	appSecret  string
	rate       float64
	limiter    Limiter
	timeout    time.Duration
	store      TokenStore
	log        *slog.Logger
	now        func() time.Time
	market     func() time.Time
	attempts   int
	retryBase  time.Duration
	retryMax   time.Duration
	httpClient *http.Client
	transport  func(http.RoundTripper) http.RoundTripper
	margin     time.Duration
	maxQueue   int
	observer   Observer
	gate       RetryGate
}

// Option configures a [Client]. Each rejects bad input with an error from
// [NewClient].
type Option func(*options) error

// nonNil is an Option setting a value that must not be nil: isNil says
// whether it is, name is how the error calls it.
func nonNil(name string, isNil bool, set func(*options)) Option {
	return func(o *options) error {
		if isNil {
			return errors.New(name + ": want non-nil")
		}
		set(o)
		return nil
	}
}

// urlOption is an Option setting an absolute http(s) URL, kept without
// trailing slashes; the error names the setting (name) and what it wants.
func urlOption(name, raw, want string, set func(o *options, u string)) Option {
	return func(o *options) error {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s %q: %s", name, raw, want)
		}
		set(o, strings.TrimRight(raw, "/"))
		return nil
	}
}

// WithBaseURL overrides the REST base URL (an emulator, a proxy). It wins
// over the URL [WithServer] implies, whatever the order.
func WithBaseURL(raw string) Option {
	return urlOption("base url", raw, "want an http(s) URL like https://openapi.koreainvestment.com:9443", func(o *options, u string) { o.baseURL = u })
}

// WithServer selects the real or mock server: its base URL, its default
// rate (18/s real, 1/s mock) and, on mock, the fallbacks for TRs the mock
// server lacks. The default is Real.
func WithServer(s Server) Option {
	return func(o *options) error {
		if s != Real && s != Mock {
			return fmt.Errorf("server %d: want kis.Real or kis.Mock", int(s))
		}
		o.server = s
		return nil
	}
}

// WithAppKey sets the app key and secret. Both are required.
func WithAppKey(key, secret string) Option {
	return func(o *options) error {
		if strings.TrimSpace(key) == "" || strings.TrimSpace(secret) == "" {
			return errors.New("app key and secret: want both non-empty")
		}
		o.appKey, o.appSecret = key, secret
		return nil
	}
}

// WithRateLimit sets the requests per second this client sends at most.
// The default is the server's limit (18 real, 1 mock).
func WithRateLimit(perSecond float64) Option {
	return func(o *options) error {
		if !(perSecond > 0) || perSecond > 10000 {
			return fmt.Errorf("rate limit %v: want requests per second > 0", perSecond)
		}
		o.rate = perSecond
		return nil
	}
}

// WithLimiter adds a shared limiter consulted in addition to the client's
// own pacing (e.g. a Redis limiter shared by every process of one app key).
func WithLimiter(l Limiter) Option {
	return nonNil("limiter", l == nil, func(o *options) { o.limiter = l })
}

// WithTimeout bounds each HTTP attempt (default 10 s).
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("timeout %s: want > 0", d)
		}
		o.timeout = d
		return nil
	}
}

// WithTokenStore sets where tokens persist. The default is a file in the
// user cache directory (kisfeed/kis-tokens.json), so restarts reuse a
// valid token instead of issuing one (each issuance notifies the account
// holder).
func WithTokenStore(s TokenStore) Option {
	return nonNil("token store", s == nil, func(o *options) { o.store = s })
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return nonNil("logger", l == nil, func(o *options) { o.log = l })
}

// WithClock sets the clock used for token expiry and issuance pacing
// (default time.Now), and for quote dates unless [WithMarketClock] sets
// another. Rate pacing always uses the real clock.
func WithClock(now func() time.Time) Option {
	return nonNil("clock", now == nil, func(o *options) { o.now = now })
}

// WithMarketClock sets the clock of the market the server serves: it
// stamps a quote's or book's AsOf, places KIS's HHMMSS times on a day and
// decides which day is "today" for minute candles (default: the
// [WithClock] clock). Tokens never follow it: a server that simulates
// another instant (the emulator with KISFEED_MARKET_TIME) still issues
// and expires tokens on the real clock, so the two must be separate.
func WithMarketClock(now func() time.Time) Option {
	return nonNil("market clock", now == nil, func(o *options) { o.market = now })
}

// WithRetry sets the retry policy: at most attempts tries in total (0 or 1
// = no retries), exponential backoff from base doubling up to max, with
// jitter. Default: 5 attempts, 200 ms, 5 s.
func WithRetry(attempts int, base, max time.Duration) Option {
	return func(o *options) error {
		if attempts < 0 || attempts > 100 {
			return fmt.Errorf("retry attempts %d: want 0 to 100", attempts)
		}
		if base <= 0 || max < base {
			return fmt.Errorf("retry delays %s..%s: want 0 < base <= max", base, max)
		}
		o.attempts, o.retryBase, o.retryMax = attempts, base, max
		return nil
	}
}

// WithHTTPClient replaces the pooled HTTP client (tests, proxies). The
// client's own Timeout is kept; [WithTimeout] then does not apply.
func WithHTTPClient(h *http.Client) Option {
	return nonNil("http client", h == nil, func(o *options) { o.httpClient = h })
}

// WithTransport wraps the pooled transport in wrap, for behaviour on top
// of it (observing requests, turning some dial errors into final ones).
// The pooled transport keeps its settings — keep-alive with enough idle
// connections for every concurrent caller, HTTP/1.1 only, TLS 1.2 or
// later, the [WithTimeout] header timeout — so a caller adds behaviour
// without copying them, and they live in one place. It cannot be combined
// with [WithHTTPClient], which replaces the transport altogether; wrap
// must return a non-nil RoundTripper.
func WithTransport(wrap func(http.RoundTripper) http.RoundTripper) Option {
	return nonNil("transport wrapper", wrap == nil, func(o *options) { o.transport = wrap })
}

// WithTokenMargin sets how long before expiry a token is renewed
// (default 10 min).
func WithTokenMargin(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 || d >= 24*time.Hour {
			return fmt.Errorf("token margin %s: want 0 to 24h", d)
		}
		o.margin = d
		return nil
	}
}

// WithMaxQueue bounds how many callers may wait on the rate limiter;
// callers beyond it get [ErrQueueFull] at once (default 10000).
func WithMaxQueue(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("max queue %d: want 1 or more", n)
		}
		o.maxQueue = n
		return nil
	}
}

// WithObserver sets the metrics hooks.
func WithObserver(obs Observer) Option {
	return nonNil("observer", obs == nil, func(o *options) { o.observer = obs })
}

// WithRetryGate reports failed attempts to g as they happen and asks it
// before every retry (see [RetryGate]).
func WithRetryGate(g RetryGate) Option {
	return nonNil("retry gate", g == nil, func(o *options) { o.gate = g })
}

// WithMasterURL sets the host serving the master zips (default
// [DefaultMasterURL]); tests point it at the emulator.
func WithMasterURL(raw string) Option {
	return urlOption("master url", raw, "want an http(s) URL", func(o *options, u string) { o.masterURL = u })
}
