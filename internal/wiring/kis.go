package wiring

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/shared"
	"github.com/kisfeed/kisfeed/kis"
)

// sharedHeadroom is the share of the configured rate the Redis limiter
// grants, for the reason the kis client paces at 97 %: KIS counts
// arrivals in a window we cannot see, and network jitter can squeeze one
// more request into it than an exact 1/rate spacing allows.
const sharedHeadroom = 0.97

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
	return shared.DefaultPrefix
}

// neutral marks the errors the breaker excludes: they say nothing about
// whether the upstream is healthy (it pushed back, or was never asked), so
// they neither open nor close the circuit nor reset its failure count,
// and a half-open trial ending with one gives its permit back. A
// malformed answer (kisfeed.ErrMalformed) is a data problem of one response,
// not an outage; a limiter wait refused for the caller's deadline
// (kis.ErrLimiterDeadline) means our own budget is spent and the upstream
// was not even asked; refused credentials are a configuration error (see
// configError).
func neutral(err error) bool {
	return errors.Is(err, kis.ErrRateLimited) || errors.Is(err, kis.ErrQueueFull) ||
		errors.Is(err, kis.ErrUnsupported) || errors.Is(err, kis.ErrTokenIssueTooSoon) ||
		errors.Is(err, kis.ErrLimiterDeadline) || errors.Is(err, kisfeed.ErrMalformed) ||
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

func (u *Stack) startKIS(cfg config.Config, deps Deps, log *slog.Logger, clk kisfeed.Clock) error {
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
	r := newReach(base, cfg.Timeout, clk)
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
		if u.redis != nil && cfg.SharedRateLimit {
			lim, err := shared.NewLimiter(u.redis, k.Key, rate*sharedHeadroom,
				shared.WithLimiterPrefix(redisPrefix(deps)),
				shared.WithLimiterLogger(log.With("component", "redis-limiter")))
			if err != nil {
				return err
			}
			opts = append(opts, kis.WithLimiter(reachLimiter{reach: r, next: lim}))
			u.limiters = append(u.limiters, lim)
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
	u.RateLimit = rate
	if len(srcs) == 1 {
		u.direct = srcs[0]
		return nil
	}
	m, err := NewMulti(srcs...)
	if err != nil {
		return err
	}
	u.direct = m
	return nil
}

// tokenStore picks the token store: Redis (with the file store as its
// local fallback) when REDIS_URL is set, else the file store, else memory.
func (u *Stack) tokenStore(cfg config.Config, deps Deps, log *slog.Logger) (kis.TokenStore, error) {
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
	if u.redis == nil {
		return local, nil
	}
	// internal/shared keeps kis.Tokens as opaque JSON records; kis says
	// how long a record must live.
	ts, err := shared.NewTokenStore(u.redis, local, kis.Token.RetainUntil,
		shared.WithTokenPrefix(redisPrefix(deps)),
		shared.WithTokenLogger(log.With("component", "redis-tokens")))
	if err != nil {
		return nil, err
	}
	return ts, nil
}

func (u *Stack) startEmbedded(cfg config.Config, deps Deps, log *slog.Logger, clk kisfeed.Clock) error {
	if deps.StartEmulator == nil {
		return errors.New("embedded mode (no KIS_APP_KEY) needs Deps.StartEmulator: the wiring never starts the built-in emulator on its own")
	}
	// Quotes, books and minute bars at the market clock; the token and
	// rate windows keep the emulator's real clock.
	base, stop, err := deps.StartEmulator(cfg.Seed, clk.Market, DemoAppKey, DemoAppSecret, EmbeddedRate)
	if err != nil {
		return err
	}
	u.closers = append(u.closers, stop)
	log.Debug("using the built-in KIS emulator", "url", base)
	r := newReach(base, cfg.Timeout, clk)
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
		kis.WithMarketClock(clk.Market),
	)
	c, err := kis.NewClient(opts...)
	if err != nil {
		return err
	}
	u.Clients = []*kis.Client{c}
	u.closers = append(u.closers, c.Close)
	u.direct = kis.NewSource(c)
	u.BaseURL = base
	u.RateLimit = EmbeddedRate
	return nil
}
