package wiring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/batch"
	"github.com/kisfeed/kisfeed/internal/breaker"
	"github.com/kisfeed/kisfeed/internal/cache"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/live"
	"github.com/kisfeed/kisfeed/internal/shared"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/internal/synthetic"
	"github.com/kisfeed/kisfeed/kis"
	"github.com/kisfeed/kisfeed/kis/stream"
	"github.com/kisfeed/kisfeed/krx"
)

// Embedded-mode constants: the demo credentials the built-in emulator
// accepts (the same ones `kisfeed emulator --help` shows) and its rate.
const (
	DemoAppKey    = "demo-key"
	DemoAppSecret = "demo-secret"
	EmbeddedRate  = 18.0
	// DemoStreamKeys is how many demo app keys the real-time stream uses
	// in embedded mode: DemoAppKey and DemoAppKey-2 … -N, which the
	// built-in emulator registers (internal/embedded StreamKeys); 41
	// registrations each, so 60 codes' trades and books fit.
	DemoStreamKeys = 3
)

// Deps are the factory's injected dependencies; every field may be zero.
type Deps struct {
	// Logger receives state changes (breaker, Redis); discard when nil.
	Logger *slog.Logger
	// Now is the wall clock (time.Now when nil): [New] builds the stack's
	// one [kisfeed.Clock] from it and cfg, and hands that to the cache, the
	// mock market, the emulator and the reachability observations.
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
	// LongRunning says the stack serves for a long time (kisfeed serve):
	// only then does the cache refresh hot quotes ahead of their expiry
	// (CACHE_REFRESH_*). A one-shot command (ingest, quote) asks for
	// each value once; refreshing what it asked would only spend its
	// rate budget (an ingest made 98 requests instead of 88).
	LongRunning bool
	// Stream starts the real-time stream (internal/live) over the cache in
	// KIS and embedded modes (serve): STREAM_CODES from start-up, other
	// codes on demand ([Stack.Live]). Synthetic mode has none.
	Stream bool
	// StreamOnLease (with Stream; serve with NATS_URL) builds the stream
	// but does not start it: [Stack.NewLive] makes one for each tenure of
	// the replicas' stream lease, and [Stack.Live] stays nil.
	StreamOnLease bool
	// StreamObserver receives the stream's sessions, frames, records,
	// parse errors, reconnects, gaps and lag (metrics.Stream).
	StreamObserver stream.Observer
}

// Stack is what [New] builds. Close it when done.
type Stack struct {
	// Source is what commands read: cache(breaker(upstream)).
	Source kisfeed.Source
	// Clients are the KIS clients, one per app key (kis and embedded
	// modes; empty in mock mode): their tokens and counters.
	Clients []*kis.Client
	// Mode is the mode the configuration selected.
	Mode config.Mode
	// BaseURL is the KIS base URL in use ("" in mock mode); in embedded
	// mode, the built-in emulator's address.
	BaseURL string
	// RateLimit is the request rate each KIS client was configured with,
	// per app key, requests/s (0 in mock mode); the clients pace a little
	// under it and lower after EGW00201 (kis.Client.RateLimit). Exported
	// as a gauge so a dashboard can set the upstream rate against it.
	RateLimit float64
	// Clock is the stack's one pair of clocks, built once in [New] and
	// handed to every part: Wall is Deps.Now (time.Now); Market, the
	// clock the market being served runs on, is in mock and embedded modes
	// the synthetic market's (KISFEED_MARKET_TIME, see
	// config.Config.MarketClock), in kis mode the wall clock.
	Clock kisfeed.Clock
	// Live is the real-time stream when Deps.Stream asked for it in KIS or
	// embedded mode: demand (Acquire), consumers (Listen) and its Stats;
	// nil otherwise.
	Live *live.Live
	// NewLive builds a new, unstarted stream over the cache when
	// Deps.StreamOnLease asked for one (the replica holding the lease
	// starts it and closes it when its tenure ends); nil otherwise.
	NewLive func() (*live.Live, error)
	// Redis is the shared Redis client (REDIS_URL), nil without it; the
	// replicas' stream lease lives there.
	Redis *goredis.Client

	// direct is the upstream without cache and breaker (the synthetic source, a
	// kis.Source, or a [Multi] over several). Unlike Source, it judges days
	// outside the built-in KRX calendar by weekday (see [BuiltinCalendar]).
	direct  kisfeed.Source
	breaker *breaker.Breaker // its State feeds readiness and Health
	// batcher coalesces the cache's concurrent quote misses into
	// intstock-multprice calls (cache → batch → breaker); nil when the
	// upstream does not batch natively or QUOTE_BATCH_WINDOW is 0.
	batcher *batch.Source
	redis   *goredis.Client // the shared Redis client, nil without REDIS_URL
	reach   *reach          // the upstream host's reachability; nil in mock mode
	gate    *breakerGate    // the KIS clients' retry gate, bound to breaker
	// limiters are the Redis-shared rate limiters, one per KIS client
	// (none without REDIS_URL or with SHARED_RATE_LIMIT off); kept so
	// tests can check the spacing they were built with.
	limiters []*shared.Limiter

	closers []func() error
	once    sync.Once
	err     error
}

// Check is one readiness check of the stack: a name and a probe that
// fails while the part is not ready (the shape of httpapi.Check).
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// Checks are the stack's readiness checks: the circuit breaker, and Redis
// when REDIS_URL is set.
func (u *Stack) Checks() []Check {
	checks := []Check{{Name: "breaker", Func: u.CheckBreaker}}
	if u.redis != nil {
		checks = append(checks, Check{Name: "redis", Func: u.CheckRedis})
	}
	return checks
}

// Close stops everything the factory started: the breaker's recovery
// probe, the embedded emulator's HTTP server, the KIS clients' idle
// connections and the Redis pool. It
// is safe to call more than once.
func (u *Stack) Close() error {
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
func (u *Stack) CheckBreaker(context.Context) error {
	switch s := u.breaker.State(); s {
	case breaker.Open:
		return fmt.Errorf("circuit breaker open (retry in %s)", u.breaker.RetryAfter().Round(time.Second))
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
func (u *Stack) Health(ctx context.Context) error {
	if u.breaker != nil {
		if err := u.breaker.Health(ctx); err != nil {
			return err
		}
	}
	if u.reach != nil {
		return u.reach.health(ctx)
	}
	return nil
}

// CheckRedis is a readiness check: a PING to Redis (nil without Redis).
func (u *Stack) CheckRedis(ctx context.Context) error {
	if u.redis == nil {
		return nil
	}
	if err := u.redis.Ping(ctx).Err(); err != nil {
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
func New(ctx context.Context, cfg config.Config, deps Deps) (_ *Stack, err error) {
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u := &Stack{Mode: cfg.Mode(), gate: &breakerGate{}}
	// The synthetic market (synthetic source, embedded emulator) runs on the
	// market clock: KISFEED_MARKET_TIME starts it at a simulated instant
	// and it advances in real time. One clock, made once, so the market and
	// the cache's session boundaries agree. KIS itself, tokens and rate
	// windows keep the real clock.
	clk := kisfeed.NewClock(deps.Now, nil)
	if u.Mode != config.ModeKIS {
		clk.Market = cfg.MarketClock(clk.Wall)
	}
	u.Clock = clk
	defer func() {
		if err != nil {
			_ = u.Close()
		}
	}()

	if cfg.RedisURL != "" {
		if err := u.openRedis(ctx, cfg, log); err != nil {
			return nil, err
		}
	}
	switch u.Mode {
	case config.ModeMock:
		u.direct = synthetic.NewSource(sim.New(cfg.Seed), clk)
	case config.ModeEmbedded:
		err = u.startEmbedded(cfg, deps, log, clk)
	default:
		err = u.startKIS(cfg, deps, log, clk)
	}
	if err != nil {
		return nil, err
	}
	if err := u.startBreaker(cfg, deps, log); err != nil {
		return nil, err
	}
	var under kisfeed.Source = u.breaker
	if cfg.QuoteBatchWindow > 0 && nativeBatch(cfg, u.Mode) {
		if under, err = u.startBatcher(cfg); err != nil {
			return nil, err
		}
	}
	c, err := cache.New(under, u.cacheStore(cfg, log, clk), u.cacheOptions(cfg, deps, clk)...)
	if err != nil {
		return nil, err
	}
	u.Source = c
	u.closers = append(u.closers, c.Close) // stops refresh-ahead first
	if deps.Stream {
		if err := u.startLive(cfg, deps, log, clk, c); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// openRedis connects the shared Redis client. Redis being down at start
// is not fatal: the cache, token store and limiter degrade until it
// answers.
func (u *Stack) openRedis(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	driverLogOnce.Do(func() { goredis.SetLogger(shared.DriverLogger(log)) })
	rdb, err := shared.Open(cfg.RedisURL)
	if err != nil {
		return err
	}
	u.redis = rdb
	u.Redis = rdb
	u.closers = append(u.closers, rdb.Close)
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if perr := rdb.Ping(pctx).Err(); perr != nil {
		log.Warn("redis unreachable at start; continuing without it until it answers",
			"redis", config.Redact(cfg.RedisURL), "err", perr)
	}
	return nil
}

// startBreaker puts the circuit breaker over u.direct, with the recovery
// probe when there are KIS clients to probe with.
func (u *Stack) startBreaker(cfg config.Config, deps Deps, log *slog.Logger) error {
	guarded := u.direct
	if BuiltinCalendar(cfg) {
		guarded = tableCalendar{u.direct}
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
		return err
	}
	// Runs before the clients' Close (closers run in reverse): the probe
	// stops before the client it uses.
	u.closers = append(u.closers, b.Close)
	if deps.OnBreakerState != nil {
		deps.OnBreakerState(string(breaker.Closed))
	}
	u.breaker = b
	u.gate.b.Store(b)
	return nil
}

// startBatcher puts the quote batcher over the breaker: cache → batch →
// breaker.
func (u *Stack) startBatcher(cfg config.Config) (kisfeed.Source, error) {
	keys := max(1, len(u.Clients))
	perKey := cfg.EffectiveRate()
	if u.Mode == config.ModeEmbedded {
		perKey = EmbeddedRate
	}
	bt, err := batch.New(u.breaker,
		batch.WithWindow(cfg.QuoteBatchWindow),
		batch.WithMaxInFlight(2*keys),
		batch.WithPartialRate(partialShare*perKey*float64(keys)),
		batch.WithFlightTimeout(FlightTimeout(cfg)))
	if err != nil {
		return nil, err
	}
	u.batcher = bt
	u.closers = append(u.closers, bt.Close)
	return bt, nil
}

// cacheStore is the one Store the cache sees: the memory LRU, or with
// Redis, Redis shared by the replicas with decoded local copies in front
// and the memory store standing in while Redis fails.
func (u *Stack) cacheStore(cfg config.Config, log *slog.Logger, clk kisfeed.Clock) cache.Store {
	mem := cache.NewMemory(cfg.MemoryEntries, clk.Wall)
	if u.redis == nil {
		return mem
	}
	shared := cache.Failover(cache.NewRedis(u.redis), mem, cache.FailoverConfig{
		Retry: cache.DefaultStoreRetry, Logger: log.With("component", "cache"), Clock: clk.Wall})
	return cache.Tiered(cache.NewMemory(cache.DefaultLocalEntries, clk.Wall), shared, cache.DefaultLocalTTL)
}

// cacheOptions are the cache's settings from cfg.
func (u *Stack) cacheOptions(cfg config.Config, deps Deps, clk kisfeed.Clock) []cache.Option {
	opts := []cache.Option{
		cache.WithTTLs(cache.TTLs{Price: cfg.PriceTTL, OrderBook: cfg.OrderBookTTL, Candles: cfg.CandlesTTL, Info: cfg.InfoTTL}),
		cache.WithStaleMaxAge(cfg.StaleMaxAge),
		cache.WithStaleBudget(cfg.StaleBudget),
		cache.WithFlightTimeout(FlightTimeout(cfg)),
		cache.WithConfigError(configError),
		// The one Clock: TTLs on its wall half; session boundaries (the
		// 09:00 open and 15:30 close that end intraday freshness) on its
		// market half, those of the market being served: in mock and
		// embedded modes the synthetic market's sessions run in market
		// time, so a quote fetched at 15:29 market time must not outlive
		// 15:30 market time whatever the wall clock says.
		cache.WithClock(clk),
		cache.WithSessionBoundaries(krx.NextBoundary),
		// A trade written through (internal/live) may move the price into
		// another tick band.
		cache.WithTickSize(krx.TickSize),
		cache.WithObserver(deps.CacheObserver),
	}
	if u.Mode != config.ModeMock {
		// A fresh hit is served marked stale while the upstream is known
		// to be down (circuit open, or the host refuses connections): the
		// value cannot be refreshed, and clients are told so at once
		// rather than only after the TTL has passed.
		opts = append(opts, cache.WithUpstreamHealth(u.Health))
	}
	if refreshesAhead(cfg, u.Mode, deps.LongRunning) {
		opts = append(opts, cache.WithRefreshAhead(cache.Refresh{
			Rate: cfg.RefreshRate, Codes: cfg.RefreshCodes, Universe: cfg.RefreshUniverse}))
	}
	if u.redis != nil {
		opts = append(opts, cache.WithPrefix(deps.RedisPrefix))
	}
	return opts
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
// TR (its client falls back to one call per code), and the synthetic source
// makes no calls at all, so batching would only add its window there.
func nativeBatch(cfg config.Config, mode config.Mode) bool {
	return mode == config.ModeEmbedded || (mode == config.ModeKIS && cfg.UseRealServer)
}

// setReach keeps r for [Stack.Health] and stops its background probe
// on Close.
func (u *Stack) setReach(r *reach) {
	u.reach = r
	u.closers = append(u.closers, r.close)
}

// refreshesAhead says whether the cache refreshes hot quotes ahead of
// their expiry: only for a long-running stack (serve), only when
// CACHE_REFRESH_RATE allows it, and only where a multi-quote call exists
// (the KIS mock server has none, and a batch there would be 30 calls at
// 1 req/s).
func refreshesAhead(cfg config.Config, mode config.Mode, longRunning bool) bool {
	return longRunning && cfg.RefreshRate > 0 && (mode != config.ModeKIS || cfg.UseRealServer)
}
