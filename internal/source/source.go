// Package source is the one data-source factory every kisfeed command
// uses: from a [config.Config] it builds the upstream (the mock market,
// KIS through one client per app key, or the built-in emulator) and stacks
// the circuit breaker and the cache on top:
//
//	cache(breaker(upstream))
//
// with, where the upstream batches natively (the real server and the
// embedded emulator, QUOTE_BATCH_WINDOW > 0), package batch between the
// cache and the breaker, coalescing concurrent quote misses into
// intstock-multprice calls: cache(batch(breaker(upstream))). So while the
// breaker is open the cache serves its stale copies, and with nothing
// cached callers get a fast *kisfeed.UnavailableError.
//
// Modes ([config.Config.Mode]):
//
//   - mock (ENABLE_KIS_API=false): the synthetic market in-process
//     (package mock), no HTTP at all.
//   - kis: one kis.Client per app key (KIS_APP_KEY, then KIS_APP_KEYS),
//     real or mock server by KIS_USE_REAL_SERVER, KIS_BASE_URL overriding
//     the URL (and, unless it is a koreainvestment.com host, serving the
//     master files too, as the emulator does), spread by [Multi]. Tokens are shared in Redis when
//     REDIS_URL is set (one issuance per app key across replicas), else
//     kept in KIS_TOKEN_FILE or <user cache dir>/kisfeed/tokens.json. With
//     REDIS_URL and KISFEED_SHARED_RATE_LIMIT the per-key rate budget is
//     shared in Redis too.
//   - embedded (no credentials): the built-in emulator runs in this
//     process on 127.0.0.1 (real-server behaviour, 18 req/s, seed
//     KISFEED_SEED) and the real kis client talks to it with a demo key.
//     The factory prints nothing; the caller tells the user (e.g. "using
//     the built-in KIS emulator (no KIS_APP_KEY set)" on stderr). Tokens
//     and rate budget stay in-process: each process has its own emulator.
//
// Failing fast: a refused connection is not retried by the KIS client (see
// [RefusedError]), and with the shared limiter a TCP probe runs before a
// rate slot is taken, so a stopped upstream costs a lookup milliseconds:
// the cache answers with its stale copy or a *kisfeed.UnavailableError.
//
// Recovering fast: while the circuit is open, the breaker's recovery
// probe sends one price request every BREAKER_PROBE_INTERVAL
// (config.Config.ProbeInterval: 1 s at 18 req/s, 18 s on the mock server)
// and closes the circuit as soon as one is answered, so fresh data
// returns within about an interval of an outage's end rather than after
// BREAKER_DELAY (see recoveryProbe).
//
// Marking hits stale: the cache asks [Upstream.Health] on every fresh hit
// and serves the hit with Origin "stale" (Stale=true) while the breaker is
// open or the upstream host refuses connections, so an outage shows at
// once, not only after the TTL. The answer reuses the last reachability
// observation (seconds old at most) and dials at most once per process
// start or refresh interval, never once per request.
//
// The cache uses Redis when REDIS_URL is set (with an in-memory LRU as its
// fallback while Redis fails, and decoded local copies of at most 1 s in
// front of it), else the in-memory LRU; its keys carry no prefix
// (stock:{code}:price, ...), see package cache.
//
// Simulated market hours: in mock and embedded modes KISFEED_MARKET_TIME
// (config.Config.MarketClock) starts the synthetic market at a chosen
// instant, advancing in real time from the factory's start. The mock
// source and the embedded emulator's quotes, books and minute bars follow
// that clock ([Upstream.MarketNow]); so do the cache's session boundaries
// (the 09:00 open and 15:30 close that end intraday freshness), because
// the synthetic sessions open and close in market time. Tokens, rate
// windows, TTLs and timeouts keep the real clock. KIS mode ignores it.
package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/batch"
	"github.com/kisfeed/kisfeed/internal/breaker"
	"github.com/kisfeed/kisfeed/internal/cache"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/mock"
	redisx "github.com/kisfeed/kisfeed/internal/redis"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/kis"
	"github.com/kisfeed/kisfeed/krx"
)

// Embedded-mode constants: the demo credentials the built-in emulator
// accepts (the same ones `kisfeed emulator --help` shows) and its rate.
const (
	DemoAppKey    = "demo-key"
	DemoAppSecret = "demo-secret"
	EmbeddedRate  = 18.0
)

// sharedHeadroom is the share of the configured rate the Redis limiter
// grants, for the reason the kis client paces at 97 %: KIS counts
// arrivals in a window we cannot see, and network jitter can squeeze one
// more request into it than an exact 1/rate spacing allows.
const sharedHeadroom = 0.97

// Deps are the factory's injected dependencies; every field may be zero.
type Deps struct {
	// Logger receives state changes (breaker, Redis); discard when nil.
	Logger *slog.Logger
	// Now is the clock for the cache, the mock market and the age of
	// reachability observations (time.Now).
	Now func() time.Time
	// KISObserver receives the KIS clients' request metrics.
	KISObserver kis.Observer
	// CacheObserver receives cache hits, misses and stale serves.
	CacheObserver cache.Observer
	// RedisPrefix, when set, starts every Redis key the upstream writes
	// (cache, tokens, rate limiter), e.g. a unique prefix per test. When
	// empty, cache keys are unprefixed (stock:{code}:price, ...) and token
	// and limiter keys start with "kisfeed:".
	RedisPrefix string
	// StartEmulator starts the built-in KIS emulator in embedded mode
	// and returns its base URL and how to stop it; cmd/kisfeed hands in
	// embedded.Start only in that mode. Embedded mode without it is an
	// error: the wiring never imports or starts the emulator itself.
	StartEmulator func(seed int64, market func() time.Time, appKey, appSecret string, rate float64) (baseURL string, stop func() error, err error)
	// OnBreakerState is called with the new state ("closed", "open",
	// "half-open") after every breaker transition, and once at start with
	// "closed".
	OnBreakerState func(state string)
}

// Upstream is what [New] builds. Close it when done.
type Upstream struct {
	// Source is what commands read: cache(breaker(upstream)).
	Source kisfeed.Source
	// Direct is the upstream without cache and breaker (the mock source, a
	// kis.Source, or a [Multi] over several); benchmarks use it to measure
	// the client itself. Unlike Source, it judges days outside the built-in
	// KRX calendar by weekday (see [BuiltinCalendar]).
	Direct kisfeed.Source
	// Clients are the KIS clients, one per app key (kis and embedded
	// modes; empty in mock mode).
	Clients []*kis.Client
	// Breaker is the circuit breaker; its State feeds readiness.
	Breaker *breaker.Breaker
	// Cache is the caching layer.
	Cache *cache.Cache
	// Batcher coalesces the cache's concurrent quote misses into
	// intstock-multprice calls (cache → batch → breaker); nil when the
	// upstream does not batch natively or QUOTE_BATCH_WINDOW is 0.
	Batcher *batch.Source
	// Redis is the shared Redis client, nil without REDIS_URL.
	Redis *goredis.Client
	// Mode is the mode the configuration selected.
	Mode config.Mode
	// BaseURL is the KIS base URL in use ("" in mock mode); in embedded
	// mode, the built-in emulator's address.
	BaseURL string
	// MarketNow is the clock the market being served runs on: in mock and
	// embedded modes the synthetic market's (KISFEED_MARKET_TIME, see
	// config.Config.MarketClock), in kis mode Deps.Now.
	MarketNow func() time.Time

	reach *reach       // the upstream host's reachability; nil in mock mode
	gate  *breakerGate // the KIS clients' retry gate, bound to Breaker

	closers []func() error
	once    sync.Once
	err     error
}

// Close stops everything the factory started: the breaker's recovery
// probe, the embedded emulator's HTTP server, the KIS clients' idle
// connections and the Redis pool. It
// is safe to call more than once.
func (u *Upstream) Close() error {
	u.once.Do(func() {
		var errs []error
		for i := len(u.closers) - 1; i >= 0; i-- {
			if err := u.closers[i](); err != nil {
				errs = append(errs, err)
			}
		}
		u.err = errors.Join(errs...)
	})
	return u.err
}

// CheckBreaker is a readiness check: an error unless the circuit is
// closed. Half-open is degraded too: the upstream has failed and has not
// yet been seen healthy again (only trial calls reach it), so a replica in
// that state is not ready whatever its last trial did.
func (u *Upstream) CheckBreaker(context.Context) error {
	switch s := u.Breaker.State(); s {
	case breaker.Open:
		return fmt.Errorf("circuit breaker open (retry in %s)", u.Breaker.RetryAfter().Round(time.Second))
	case breaker.HalfOpen:
		return errors.New("circuit breaker half-open (trial calls under way; the upstream has not answered yet)")
	}
	return nil
}

// Health reports whether the upstream is known to be unavailable right
// now: the breaker's *kisfeed.UnavailableError while the circuit is open,
// a *[RefusedError] while the upstream host refuses TCP connections (KIS
// and embedded modes), else nil. It is what the cache asks on every fresh
// hit to decide between Origin "cache" and "stale" (see
// cache.WithUpstreamHealth), so it is cheap: the reachability answer
// comes from the last observation (the transport's own requests, or a
// probe) and only a process with no recent observation dials — once,
// with a 200 ms timeout; a long-running process refreshes it in the
// background. Mock mode is always available.
func (u *Upstream) Health(ctx context.Context) error {
	if u.Breaker != nil {
		if err := u.Breaker.Health(ctx); err != nil {
			return err
		}
	}
	if u.reach != nil {
		return u.reach.health(ctx)
	}
	return nil
}

// CheckRedis is a readiness check: a PING to Redis (nil without Redis).
func (u *Upstream) CheckRedis(ctx context.Context) error {
	if u.Redis == nil {
		return nil
	}
	if err := u.Redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// driverLogOnce routes go-redis's process-wide logger through slog once:
// its "failed to dial" notices would otherwise hit stderr on every
// attempt while Redis is down.
var driverLogOnce sync.Once

// New builds the upstream for cfg, which config.Validate has accepted. On
// error everything already started is stopped.
func New(ctx context.Context, cfg config.Config, deps Deps) (_ *Upstream, err error) {
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	u := &Upstream{Mode: cfg.Mode(), gate: &breakerGate{}}
	// The synthetic market (mock source, embedded emulator) runs on the
	// market clock: KISFEED_MARKET_TIME starts it at a simulated instant
	// and it advances in real time. One clock, made once, so the market and
	// the cache's session boundaries agree. KIS itself, tokens and rate
	// windows keep the real clock.
	market := now
	if u.Mode != config.ModeKIS {
		market = cfg.MarketClock(now)
	}
	u.MarketNow = market
	defer func() {
		if err != nil {
			_ = u.Close()
		}
	}()

	if cfg.RedisURL != "" {
		driverLogOnce.Do(func() { goredis.SetLogger(redisx.DriverLogger(log)) })
		rdb, err := redisx.Open(cfg.RedisURL)
		if err != nil {
			return nil, err
		}
		u.Redis = rdb
		u.closers = append(u.closers, rdb.Close)
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		if perr := rdb.Ping(pctx).Err(); perr != nil {
			// Not fatal: the cache, token store and limiter degrade.
			log.Warn("redis unreachable at start; continuing without it until it answers",
				"redis", config.Redact(cfg.RedisURL), "err", perr)
		}
		cancel()
	}

	switch u.Mode {
	case config.ModeMock:
		u.Direct = mock.NewSource(sim.New(cfg.Seed), market)
	case config.ModeEmbedded:
		if err := u.startEmbedded(cfg, deps, log, now, market); err != nil {
			return nil, err
		}
	default:
		if err := u.startKIS(cfg, deps, log, now); err != nil {
			return nil, err
		}
	}

	guarded := u.Direct
	if BuiltinCalendar(cfg) {
		guarded = tableCalendar{u.Direct}
	}
	bopts := []breaker.Option{
		breaker.WithFailures(cfg.BreakerFailures),
		breaker.WithDelay(cfg.BreakerDelay),
		breaker.WithSuccesses(cfg.BreakerSuccesses),
		breaker.WithLogger(log.With("component", "breaker")),
		breaker.WithNeutral(neutral),
		breaker.WithOnStateChange(func(_, to breaker.State) {
			if deps.OnBreakerState != nil {
				deps.OnBreakerState(string(to))
			}
		}),
	}
	if every := cfg.ProbeInterval(); every > 0 && len(u.Clients) > 0 {
		// While the circuit is open, a price request every interval ends
		// the open period as soon as KIS answers (see recoveryProbe).
		bopts = append(bopts, breaker.WithProbe(recoveryProbe(u.Clients), every))
	}
	b, err := breaker.New(guarded, bopts...)
	if err != nil {
		return nil, err
	}
	// Runs before the clients' Close (closers run in reverse): the probe
	// stops before the client it uses.
	u.closers = append(u.closers, b.Close)
	if deps.OnBreakerState != nil {
		deps.OnBreakerState(string(breaker.Closed))
	}
	u.Breaker = b
	u.gate.b.Store(b)

	mem := cache.NewMemory(cfg.MemoryEntries, now)
	var store cache.Store = mem
	opts := []cache.Option{
		cache.WithTTLs(cache.TTLs{Price: cfg.PriceTTL, OrderBook: cfg.OrderBookTTL, Candles: cfg.CandlesTTL, Info: cfg.InfoTTL}),
		cache.WithStaleMaxAge(cfg.StaleMaxAge),
		cache.WithStaleBudget(cfg.StaleBudget),
		cache.WithFlightTimeout(FlightTimeout(cfg)),
		cache.WithConfigError(configError),
		cache.WithClock(now),
		// Session boundaries (the 09:00 open and 15:30 close that end
		// intraday freshness) are those of the market being served: in
		// mock and embedded modes the synthetic market's sessions run in
		// market time, so a quote fetched at 15:29 market time must not
		// outlive 15:30 market time whatever the wall clock says.
		cache.WithMarketClock(market),
		cache.WithSessionBoundaries(krx.NextBoundary),
		cache.WithObserver(deps.CacheObserver),
	}
	if u.Mode != config.ModeMock {
		// A fresh hit is served marked stale while the upstream is known
		// to be down (circuit open, or the host refuses connections): the
		// value cannot be refreshed, and clients are told so at once
		// rather than only after the TTL has passed.
		opts = append(opts, cache.WithUpstreamHealth(u.Health))
	}
	if cfg.RefreshRate > 0 && (u.Mode != config.ModeKIS || cfg.UseRealServer) {
		// Refresh-ahead needs a multi-quote call: the KIS mock server has
		// none, and a batch there would be 30 calls at 1 req/s.
		opts = append(opts, cache.WithRefreshAhead(cache.Refresh{
			Rate: cfg.RefreshRate, Codes: cfg.RefreshCodes, Universe: cfg.RefreshUniverse}))
	}
	if u.Redis != nil {
		// Redis, shared by the replicas, with decoded local copies in
		// front and the memory store standing in while Redis fails.
		shared := cache.Failover(cache.NewRedis(u.Redis), mem, cache.FailoverConfig{
			Retry: cache.DefaultStoreRetry, Logger: log.With("component", "cache"), Clock: now})
		store = cache.Tiered(cache.NewMemory(cache.DefaultLocalEntries, now), shared, cache.DefaultLocalTTL)
		opts = append(opts, cache.WithPrefix(deps.RedisPrefix))
	}
	var under kisfeed.Source = b
	if cfg.QuoteBatchWindow > 0 && nativeBatch(cfg, u.Mode) {
		keys := max(1, len(u.Clients))
		perKey := cfg.EffectiveRate()
		if u.Mode == config.ModeEmbedded {
			perKey = EmbeddedRate
		}
		bt, err := batch.New(b,
			batch.WithWindow(cfg.QuoteBatchWindow),
			batch.WithMaxInFlight(2*keys),
			batch.WithPartialRate(partialShare*perKey*float64(keys)),
			batch.WithFlightTimeout(FlightTimeout(cfg)))
		if err != nil {
			return nil, err
		}
		u.Batcher = bt
		u.closers = append(u.closers, bt.Close)
		under = bt
	}
	c, err := cache.New(under, store, opts...)
	if err != nil {
		return nil, err
	}
	u.Cache = c
	u.Source = c
	u.closers = append(u.closers, c.Close) // stops refresh-ahead first
	return u, nil
}

// partialShare is the share of the rate budget partial quote batches may
// use (see batch.WithPartialRate). A flood of cold misses would otherwise
// spend every rate slot on a half-empty batch; held to a third (6 req/s at
// 18), batches fill up instead: 3,000 req/s over 2,600 cold codes made ~100
// upstream calls in 10 s (a quarter: ~92, a half: ~112, no cap: ~155), and
// two thirds of the budget stay for full batches, books and charts. The
// price: back-to-back cold lookups of one code at a time by one client go
// at 6/s instead of 17/s (a lone miss still leaves after the window; many
// codes at once should use Quotes, which is not held).
const partialShare = 1.0 / 3

// nativeBatch reports whether the upstream answers a Quotes call with one
// request per 30 codes (intstock-multprice): the real server and the
// embedded emulator (real-server behaviour). KIS's mock server lacks the
// TR (its client falls back to one call per code), and the mock source
// makes no calls at all, so batching would only add its window there.
func nativeBatch(cfg config.Config, mode config.Mode) bool {
	return mode == config.ModeEmbedded || (mode == config.ModeKIS && cfg.UseRealServer)
}

// setReach keeps r for [Upstream.Health] and stops its background probe
// on Close.
func (u *Upstream) setReach(r *reach) {
	u.reach = r
	u.closers = append(u.closers, r.close)
}

// isKISHost reports whether raw points at KIS itself
// (*.koreainvestment.com) rather than an emulator or proxy.
func isKISHost(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	return h == "koreainvestment.com" || strings.HasSuffix(h, ".koreainvestment.com")
}

// redisPrefix is the prefix of token and limiter keys.
func redisPrefix(deps Deps) string {
	if deps.RedisPrefix != "" {
		return deps.RedisPrefix
	}
	return redisx.DefaultPrefix
}

// neutral marks the errors the breaker excludes: they say nothing about
// whether the upstream is healthy (it pushed back, or was never asked), so
// they neither open nor close the circuit nor reset its failure count,
// and a half-open trial ending with one gives its permit back. A
// malformed answer (kis.ErrMalformed) is a data problem of one response,
// not an outage; a limiter wait refused for the caller's deadline
// (kis.ErrLimiterDeadline) means our own budget is spent and the upstream
// was not even asked; refused credentials are a configuration error (see
// configError).
func neutral(err error) bool {
	return errors.Is(err, kis.ErrRateLimited) || errors.Is(err, kis.ErrQueueFull) ||
		errors.Is(err, kis.ErrUnsupported) || errors.Is(err, kis.ErrTokenIssueTooSoon) ||
		errors.Is(err, kis.ErrLimiterDeadline) || errors.Is(err, kis.ErrMalformed) ||
		configError(err)
}

// configError marks errors only a configuration change fixes: credentials
// KIS refuses (kis.ErrInvalidCredentials). The upstream answered, so they
// do not open the circuit, and the cache hands them to the caller as they
// are rather than as "upstream unavailable" or a stale copy, so commands
// can say which settings to check (KIS_APP_KEY, KIS_APP_SECRET).
func configError(err error) bool {
	return errors.Is(err, kis.ErrInvalidCredentials)
}

// The kis client's retry backoff: the first wait and the longest.
const (
	retryBase = 200 * time.Millisecond
	retryMax  = 5 * time.Second
)

// minFlightTimeout is the cache's own default flight timeout, the least
// FlightTimeout returns.
const minFlightTimeout = 30 * time.Second

// FlightTimeout is how long the cache lets one shared upstream call run
// for a caller without a deadline (a CLI lookup; an HTTP request is bounded
// by its own deadline): long enough for the worst case the kis client
// goes through on purpose rather than a fixed 30 s that cut it short with
// a bare "context deadline exceeded" — one wait for KIS's token issuance
// window (kis.TokenIssueInterval, a minute) and then every attempt of a
// request (1 + KIS_RETRY_ATTEMPTS) at KIS_TIMEOUT with the longest backoff
// before each: 60s + 5 × (10s + 5s) = 2m15s with the defaults. Never less
// than 30 s.
func FlightTimeout(cfg config.Config) time.Duration {
	attempts := time.Duration(cfg.RetryAttempts + 1)
	return max(minFlightTimeout, kis.TokenIssueInterval+attempts*(cfg.Timeout+retryMax))
}

// clientOptions are the options every KIS client shares.
func clientOptions(cfg config.Config, deps Deps, log *slog.Logger, r *reach, gate kis.RetryGate) []kis.Option {
	opts := []kis.Option{
		kis.WithTimeout(cfg.Timeout),
		kis.WithTransport(refusedFastTransport(r)),
		kis.WithLogger(log),
		kis.WithTokenMargin(cfg.TokenMargin),
		kis.WithMaxQueue(cfg.MaxQueue),
		// KIS_RETRY_ATTEMPTS counts attempts after the first.
		kis.WithRetry(cfg.RetryAttempts+1, retryBase, retryMax),
		kis.WithRetryGate(gate),
	}
	if deps.KISObserver != nil {
		opts = append(opts, kis.WithObserver(deps.KISObserver))
	}
	return opts
}

func (u *Upstream) startKIS(cfg config.Config, deps Deps, log *slog.Logger, now func() time.Time) error {
	keys, err := cfg.Keys()
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return errors.New("KIS_APP_KEY required when ENABLE_KIS_API=true or KIS_BASE_URL is set")
	}
	server := kis.Mock
	if cfg.UseRealServer {
		server = kis.Real
	}
	store, err := u.tokenStore(cfg, deps, log)
	if err != nil {
		return err
	}
	rate := cfg.EffectiveRate()
	base := cfg.BaseURL
	if base == "" {
		base = kis.MockBaseURL
		if server == kis.Real {
			base = kis.RealBaseURL
		}
	}
	r := newReach(base, cfg.Timeout, now)
	u.setReach(r)
	var srcs []kisfeed.Source
	for _, k := range keys {
		opts := append(clientOptions(cfg, deps, log, r, u.gate),
			kis.WithServer(server),
			kis.WithAppKey(k.Key, k.Secret.Reveal()),
			kis.WithRateLimit(rate),
			kis.WithTokenStore(store),
		)
		if cfg.BaseURL != "" {
			opts = append(opts, kis.WithBaseURL(cfg.BaseURL))
		}
		if m := cfg.MasterHost(); m != "" {
			// A proxy at KIS_BASE_URL forwards the API, not KIS's download
			// host, so the base URL is taken for the master files only
			// when it is a local emulator (config.Config.MasterHost).
			opts = append(opts, kis.WithMasterURL(m))
		}
		if u.Redis != nil && cfg.SharedRateLimit {
			lim, err := redisx.NewLimiter(u.Redis, k.Key, rate*sharedHeadroom,
				redisx.WithLimiterPrefix(redisPrefix(deps)),
				redisx.WithLimiterLogger(log.With("component", "redis-limiter")))
			if err != nil {
				return err
			}
			opts = append(opts, kis.WithLimiter(reachLimiter{reach: r, next: lim}))
		}
		c, err := kis.NewClient(opts...)
		if err != nil {
			return err
		}
		u.Clients = append(u.Clients, c)
		u.closers = append(u.closers, c.Close)
		srcs = append(srcs, kis.NewSource(c))
	}
	u.BaseURL = u.Clients[0].BaseURL()
	if len(srcs) == 1 {
		u.Direct = srcs[0]
		return nil
	}
	m, err := NewMulti(srcs...)
	if err != nil {
		return err
	}
	u.Direct = m
	return nil
}

// tokenStore picks the token store: Redis (with the file store as its
// local fallback) when REDIS_URL is set, else the file store, else memory.
func (u *Upstream) tokenStore(cfg config.Config, deps Deps, log *slog.Logger) (kis.TokenStore, error) {
	var local kis.TokenStore
	path := cfg.TokenFile
	if path == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			path = filepath.Join(dir, "kisfeed", "tokens.json")
		}
	}
	if path != "" {
		fs, err := kis.NewFileTokenStore(path)
		switch {
		case err == nil:
			local = fs
		case cfg.TokenFile != "":
			return nil, fmt.Errorf("KIS_TOKEN_FILE=%s: %w", cfg.TokenFile, err)
		default:
			log.Warn("no token file; tokens will not survive a restart", "err", err)
		}
	}
	if local == nil {
		local = kis.NewMemoryTokenStore()
	}
	if u.Redis == nil {
		return local, nil
	}
	return redisx.NewTokenStore(u.Redis,
		redisx.WithFallback(local),
		redisx.WithTokenPrefix(redisPrefix(deps)),
		redisx.WithTokenLogger(log.With("component", "redis-tokens"))), nil
}

func (u *Upstream) startEmbedded(cfg config.Config, deps Deps, log *slog.Logger, now, market func() time.Time) error {
	if deps.StartEmulator == nil {
		return errors.New("embedded mode (no KIS_APP_KEY) needs Deps.StartEmulator: the wiring never starts the built-in emulator on its own")
	}
	// Quotes, books and minute bars at the market clock; the token and
	// rate windows keep the emulator's real clock.
	base, stop, err := deps.StartEmulator(cfg.Seed, market, DemoAppKey, DemoAppSecret, EmbeddedRate)
	if err != nil {
		return err
	}
	u.closers = append(u.closers, stop)
	log.Debug("using the built-in KIS emulator", "url", base)
	r := newReach(base, cfg.Timeout, now)
	u.setReach(r)

	opts := append(clientOptions(cfg, deps, log, r, u.gate),
		kis.WithServer(kis.Real),
		kis.WithBaseURL(base),
		kis.WithMasterURL(base),
		kis.WithAppKey(DemoAppKey, DemoAppSecret),
		kis.WithRateLimit(EmbeddedRate),
		kis.WithTokenStore(kis.NewMemoryTokenStore()),
		// The emulator serves the market at the market clock; the client
		// stamps what it reads with the same clock (tokens keep now).
		kis.WithMarketClock(market),
	)
	c, err := kis.NewClient(opts...)
	if err != nil {
		return err
	}
	u.Clients = []*kis.Client{c}
	u.closers = append(u.closers, c.Close)
	u.Direct = kis.NewSource(c)
	u.BaseURL = base
	return nil
}
