package kis

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"golang.org/x/sync/singleflight"
)

// Server selects a KIS environment: the real (실전) or the mock (모의투자)
// server. They differ in base URL, rate limit and supported TRs.
type Server int

// The KIS servers (REFERENCE §a).
const (
	Real Server = iota + 1
	Mock
)

// String returns "real" or "mock".
func (s Server) String() string {
	switch s {
	case Real:
		return "real"
	case Mock:
		return "mock"
	}
	return fmt.Sprintf("Server(%d)", int(s))
}

// Base URLs and defaults from REFERENCE §a, §f and §g.
const (
	RealBaseURL = "https://openapi.koreainvestment.com:9443"
	MockBaseURL = "https://openapivts.koreainvestment.com:29443"
	// DefaultMasterURL is the public host serving the stock master zips.
	DefaultMasterURL = "https://new.real.download.dws.co.kr"
	// RealRateLimit and MockRateLimit are KIS's per-app-key REST limits
	// since the 2026-04-20 notice (they were 20 and 2).
	RealRateLimit = 18.0
	MockRateLimit = 1.0
	// DefaultTimeout bounds one HTTP attempt.
	DefaultTimeout = 10 * time.Second
	// DefaultTokenMargin is how long before expiry a token is renewed.
	DefaultTokenMargin = 10 * time.Minute
	// DefaultMaxQueue bounds the callers waiting on the rate limiter.
	DefaultMaxQueue = 10000
	// TokenIssueInterval is the least time between two issuance calls for
	// one app key (EGW00133 "1분당 1회").
	TokenIssueInterval = 60 * time.Second
)

// Limiter is an extra rate limiter shared beyond this client (e.g. by
// every process using the same app key, backed by Redis). The client
// consults it in addition to its own pacing, once per HTTP request.
type Limiter interface {
	// Wait blocks until one request may go, or returns ctx's error.
	Wait(ctx context.Context) error
}

// Observer receives metrics events. Implementations must be cheap and
// safe for concurrent use; the client calls them inline.
type Observer interface {
	// Request reports one HTTP attempt: its tr_id (or oauth path), HTTP
	// status (0 when none), KIS msg_cd, duration and error (nil on success).
	Request(trID string, status int, msgCode string, elapsed time.Duration, err error)
	// Retry reports a retry about to be scheduled and why.
	Retry(trID, reason string)
	// LimiterWait reports the time one request waited for the limiter.
	LimiterWait(d time.Duration)
	// TokenIssued reports a successful token issuance call.
	TokenIssued()
}

// RetryGate lets a layer above the client (a circuit breaker) see failed
// attempts as they happen, rather than only the call's error after the
// last retry, and stop retries that can no longer help: while the
// upstream is known to be down, a retry only delays the caller's
// fallback (a stale copy, a fast "unavailable"). Implementations must be
// cheap and safe for concurrent use; the client calls them inline.
type RetryGate interface {
	// AttemptFailed reports an attempt that failed with err and that the
	// retry policy would retry (a reset or refused connection, a timeout,
	// a transient 5xx, a rate-limit answer). ctx is the call's context,
	// values included. The last attempt's failure is not reported: it is
	// the call's own error, so each failed exchange is told once.
	AttemptFailed(ctx context.Context, trID string, err error)
	// RetryAllowed reports whether another attempt may go now; false ends
	// the call at once with the last attempt's error.
	RetryAllowed(ctx context.Context) bool
}

// ClientStats are the client's counters since it was built.
type ClientStats struct {
	Requests     int64         // HTTP attempts sent (token calls included)
	Retries      int64         // retries scheduled
	RateLimited  int64         // EGW00201 answers seen
	LimiterWait  time.Duration // total time spent waiting for the limiter
	TokensIssued int64         // successful tokenP calls
}

// Client talks to the KIS REST API. It is safe for concurrent use; share
// one per app key so its rate limiter and token cover every caller.
type Client struct {
	baseURL   *url.URL
	masterURL string
	server    Server
	appKey    string
	appSecret string
	http      *http.Client
	log       *slog.Logger
	now       func() time.Time // tokens: expiry, issuance pacing
	market    func() time.Time // the served market: AsOf stamps, "today"
	store     TokenStore
	storeID   string
	margin    time.Duration
	observer  Observer
	gate      RetryGate // nil: retry as the policy says
	shared    Limiter
	pacer     *pacer
	retry     retrypolicy.RetryPolicy[*Response]
	attempts  int

	// sleep waits d or until ctx ends; replaced in tests.
	sleep func(ctx context.Context, d time.Duration) error

	tokenGroup singleflight.Group
	token      atomic.Pointer[Token] // current token, nil before the first
	detached   background            // token refreshes no caller can cancel; Close ends them

	requests, retries, rateLimited, limiterWait, tokensIssued atomic.Int64

	fallbackOnce sync.Map // feature name → *sync.Once: "logged once" notices
	unsupported  sync.Map // tr_id → true once the server said EGW00213

	calMu sync.Mutex
	cal   map[string]CalendarDay // guarded by calMu: YYYYMMDD → day

	uniMu  sync.Mutex
	uniDay time.Time // guarded by uniMu: KST day the universe was loaded
	uni    []stockEntry
}

// NewClient builds a client. WithAppKey is required.
func NewClient(opts ...Option) (*Client, error) {
	o := options{
		server:    Real,
		masterURL: DefaultMasterURL,
		timeout:   DefaultTimeout,
		margin:    DefaultTokenMargin,
		maxQueue:  DefaultMaxQueue,
		attempts:  5,
		retryBase: 200 * time.Millisecond,
		retryMax:  5 * time.Second,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("kis: %w", err)
		}
	}
	if o.appKey == "" {
		return nil, errors.New("kis: app key and secret required (WithAppKey)")
	}
	if o.httpClient != nil && o.transport != nil {
		return nil, errors.New("kis: WithHTTPClient and WithTransport: want one (an HTTP client brings its own transport)")
	}
	if o.baseURL == "" {
		o.baseURL = RealBaseURL
		if o.server == Mock {
			o.baseURL = MockBaseURL
		}
	}
	if o.rate == 0 {
		o.rate = RealRateLimit
		if o.server == Mock {
			o.rate = MockRateLimit
		}
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.market == nil {
		o.market = o.now
	}
	if o.observer == nil {
		o.observer = nopObserver{}
	}
	if o.store == nil {
		o.store = defaultTokenStore(o.log)
	}
	base, _ := url.Parse(o.baseURL) // validated by WithBaseURL or a constant
	c := &Client{
		baseURL:   base,
		masterURL: o.masterURL,
		server:    o.server,
		appKey:    o.appKey,
		appSecret: o.appSecret,
		log:       o.log.With("component", "kis"),
		now:       o.now,
		market:    o.market,
		store:     o.store,
		storeID:   storeID(o.baseURL, o.appKey),
		margin:    o.margin,
		observer:  o.observer,
		gate:      o.gate,
		shared:    o.limiter,
		pacer:     newPacer(o.rate, o.maxQueue),
		attempts:  max(o.attempts, 1),
		sleep:     sleepCtx,
		cal:       map[string]CalendarDay{},
	}
	c.http = o.httpClient
	if c.http == nil {
		c.http = newHTTPClient(o.timeout)
		if o.transport != nil {
			rt := o.transport(c.http.Transport)
			if rt == nil {
				return nil, errors.New("kis: transport wrapper returned nil: want a RoundTripper")
			}
			c.http.Transport = rt
		}
	}
	c.retry = c.newRetryPolicy(o.retryBase, o.retryMax)
	return c, nil
}

// newHTTPClient is the pooled client: keep-alive with enough idle
// connections for every concurrent caller, HTTP/1.1 only (KIS speaks it;
// an empty TLSNextProto map disables h2), TLS 1.2 or later.
func newHTTPClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     false,
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		MaxIdleConns:          128,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// defaultTokenStore is the file store in the user cache directory, or a
// memory store (logged) when there is no usable directory.
func defaultTokenStore(log *slog.Logger) TokenStore {
	dir, err := os.UserCacheDir()
	if err == nil {
		var fs *FileTokenStore
		fs, err = NewFileTokenStore(filepath.Join(dir, "kisfeed", "kis-tokens.json"))
		if err == nil {
			return fs
		}
	}
	log.Warn("kis: no token file; tokens will not survive a restart", "err", err)
	return NewMemoryTokenStore()
}

// storeID keys a token by server and app key; the key is hashed so token
// files and Redis keys do not carry it.
func storeID(baseURL, appKey string) string {
	sum := sha256.Sum256([]byte(baseURL + "\x00" + appKey))
	return hex.EncodeToString(sum[:16])
}

// Server returns the server kind the client was configured for.
func (c *Client) Server() Server { return c.server }

// BaseURL returns the REST base URL.
func (c *Client) BaseURL() string { return c.baseURL.String() }

// MasterURL returns the host the master zips are downloaded from.
func (c *Client) MasterURL() string { return c.masterURL }

// RateLimit returns the rate the client currently paces at (lower than
// configured after rate-limit errors, creeping back).
func (c *Client) RateLimit() float64 { return c.pacer.current() }

// Stats returns the client's counters.
func (c *Client) Stats() ClientStats {
	return ClientStats{
		Requests:     c.requests.Load(),
		Retries:      c.retries.Load(),
		RateLimited:  c.rateLimited.Load(),
		LimiterWait:  time.Duration(c.limiterWait.Load()),
		TokensIssued: c.tokensIssued.Load(),
	}
}

// ErrClientClosed is a token refresh asked of a [Client] after Close.
var ErrClientClosed = errors.New("kis: client closed")

// Close cancels the token refresh under way, if any, waits for it to end
// and releases idle connections. The refresh runs detached from its
// callers (they share it; one caller giving up must not fail the
// others), so without this it outlived its callers' cancellation and
// Close, and could still write the token store (a file: its temporary
// file and rename) after the owner had moved on, e.g. removed the
// directory. After Close, a refresh fails with [ErrClientClosed].
func (c *Client) Close() error {
	c.detached.close()
	c.http.CloseIdleConnections()
	return nil
}

// background tracks work a Client runs detached from its callers'
// contexts, so that Close can cancel it and wait for it. Its zero value
// is ready to use.
type background struct {
	mu      sync.Mutex
	closed  bool // guarded by mu
	next    int
	cancels map[int]context.CancelFunc // guarded by mu: the work under way
	wg      sync.WaitGroup
}

// start returns a context derived from parent that close cancels, and the
// function to call when the work ends; ErrClientClosed after close.
func (b *background) start(parent context.Context) (context.Context, func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, nil, ErrClientClosed
	}
	ctx, cancel := context.WithCancel(parent)
	if b.cancels == nil {
		b.cancels = make(map[int]context.CancelFunc)
	}
	id := b.next
	b.next++
	b.cancels[id] = cancel
	b.wg.Add(1)
	return ctx, func() {
		b.mu.Lock()
		delete(b.cancels, id)
		b.mu.Unlock()
		cancel()
		b.wg.Done()
	}, nil
}

// close refuses new work, cancels the work under way and waits for it.
func (b *background) close() {
	b.mu.Lock()
	b.closed = true
	for _, cancel := range b.cancels {
		cancel()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// logOnce logs msg at info level the first time feature is seen.
func (c *Client) logOnce(feature, msg string, args ...any) {
	v, _ := c.fallbackOnce.LoadOrStore(feature, new(sync.Once))
	v.(*sync.Once).Do(func() { c.log.Info(msg, args...) })
}

// redact removes the app secret and the current token from s; used on
// any server text that goes into an error.
func (c *Client) redact(s string) string {
	if c.appSecret != "" {
		s = strings.ReplaceAll(s, c.appSecret, "***")
	}
	if t := c.token.Load(); t != nil && t.Value != "" {
		s = strings.ReplaceAll(s, t.Value, "***")
	}
	return s
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type nopObserver struct{}

func (nopObserver) Request(string, int, string, time.Duration, error) {}
func (nopObserver) Retry(string, string)                              {}
func (nopObserver) LimiterWait(time.Duration)                         {}
func (nopObserver) TokenIssued()                                      {}

var _ io.Closer = (*Client)(nil)
