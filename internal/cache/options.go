package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kisfeed/kisfeed"
)

// Option configures a [Cache].
type Option func(*Cache) error

// WithTTLs sets the freshness periods; zero fields keep their defaults.
func WithTTLs(t TTLs) Option {
	return func(c *Cache) error {
		for name, d := range map[string]time.Duration{"price": t.Price, "orderbook": t.OrderBook, "candles": t.Candles, "info": t.Info} {
			if d < 0 {
				return fmt.Errorf("cache: %s ttl %s: want > 0", name, d)
			}
		}
		if t.Price > 0 {
			c.ttl.Price = t.Price
		}
		if t.OrderBook > 0 {
			c.ttl.OrderBook = t.OrderBook
		}
		if t.Candles > 0 {
			c.ttl.Candles = t.Candles
		}
		if t.Info > 0 {
			c.ttl.Info = t.Info
		}
		return nil
	}
}

// WithStaleMaxAge bounds how old a stale copy may be and so how long the
// store keeps values (default 72h).
func WithStaleMaxAge(d time.Duration) Option {
	return func(c *Cache) error {
		if d <= 0 {
			return fmt.Errorf("cache: stale max age %s: want > 0", d)
		}
		c.staleMaxAge = d
		return nil
	}
}

// WithPrefix puts prefix in front of every key, e.g. "kisfeed:" or a
// unique prefix per test.
func WithPrefix(prefix string) Option {
	return func(c *Cache) error { c.prefix = prefix; return nil }
}

// WithClock sets the cache's clocks (the zero Clock, time.Now for both, by
// default). The wall clock (clk.Wall) drives TTLs, stale ages and store
// expiry. The market clock (clk.Market; nil follows the wall clock) is
// the one on which session boundaries (the 09:00 open and 15:30 close
// that end intraday freshness) and "today" (for candle series) are read:
// the wiring hands the synthetic market's clock in mock and embedded
// modes (KISFEED_MARKET_TIME), whose sessions open and close in market
// time, not wall-clock time: a quote fetched at 15:29 market time must
// not outlive 15:30 market time.
func WithClock(clk kisfeed.Clock) Option {
	return func(c *Cache) error { c.clock = clk; return nil }
}

// WithObserver reports hits, misses and stale serves to o.
func WithObserver(o Observer) Option {
	return func(c *Cache) error {
		if o != nil {
			c.obs = o
		}
		return nil
	}
}

// WithFlightTimeout bounds a shared upstream flight, which runs detached
// from its callers' contexts (default 30s). Make it longer than the
// upstream's own worst case, or the cache cuts off calls the upstream
// would still finish: the kis client may wait up to a minute for the next
// token issuance, then try a request several times (package wiring sets
// it from KIS_TIMEOUT and KIS_RETRY_ATTEMPTS). A caller with a deadline is
// bounded by that anyway. A flight cut off by it fails with an error that
// names the lookup and the bound ("quote 005930: upstream did not answer
// within 30s: context deadline exceeded") and matches both
// kisfeed.ErrUnavailable and context.DeadlineExceeded.
func WithFlightTimeout(d time.Duration) Option {
	return func(c *Cache) error {
		if d <= 0 {
			return fmt.Errorf("cache: flight timeout %s: want > 0", d)
		}
		c.flightTimeout = d
		return nil
	}
}

// WithStaleBudget sets how long a lookup that has a stale copy (within
// the stale max age) waits for the upstream before answering with that
// copy, marked stale (default [DefaultStaleBudget], 150 ms; 0 = wait for
// the upstream as long as the caller's deadline allows). The upstream call
// goes on in the background and stores its answer when it comes, so the
// next caller gets it fresh. A lookup with no copy at all still waits for
// the upstream (or its error).
//
// Why a budget: during an outage the upstream call fails only after every
// retry (seconds), and before the circuit opens every caller would wait
// that long for a copy the cache had all along. 150 ms is above a healthy
// KIS quote (tens of milliseconds plus one rate-limiter slot, 55 ms at
// 18/s), so a healthy upstream is not cut short, and leaves headroom under
// a 200 ms p95 for the rest of the request.
func WithStaleBudget(d time.Duration) Option {
	return func(c *Cache) error {
		if d < 0 {
			return fmt.Errorf("cache: stale budget %s: want >= 0", d)
		}
		c.staleBudget = d
		return nil
	}
}

// WithConfigError marks upstream errors that say the configuration is
// wrong (credentials the upstream refuses): like business errors, they
// reach the caller as they are — no stale copy stands in for the value
// and they are not turned into a *kisfeed.UnavailableError — because no
// wait fixes them and the caller must be told what to change.
func WithConfigError(is func(error) bool) Option {
	return func(c *Cache) error {
		if is != nil {
			c.configErr = is
		}
		return nil
	}
}

// WithUpstreamHealth sets a check the cache runs on every fresh hit: a
// non-nil error means the upstream is known to be unavailable right now
// (its circuit is open, or it refuses connections), and the hit is then
// served marked stale (Origin "stale", Stale=true) instead of "cache":
// the value is still within its TTL, but nobody can refresh it, and a
// client deciding whether to trust or retry must be told so. The check
// only changes the marking — a hit never fails because of it — so it must
// be cheap: answer from a recent observation and dial at most rarely (the
// wiring in package wiring reuses its breaker state and a cached TCP
// probe). It is called with the lookup's flight context; nil (the
// default) means always available.
func WithUpstreamHealth(f func(ctx context.Context) error) Option {
	return func(c *Cache) error { c.health = f; return nil }
}

// WithSessionBoundaries sets next, which returns the first session
// boundary strictly after a market-clock instant (the wiring passes
// krx.NextBoundary: the 09:00 open or 15:30 close of a KRX trading day).
// Intraday values (prices, order books, candle series reaching today) stay
// fresh at most until that boundary, so a price fetched at 15:29 is not
// served as fresh at 15:31. Without it intraday values live their TTL.
func WithSessionBoundaries(next func(t time.Time) time.Time) Option {
	return func(c *Cache) error {
		if next == nil {
			return errors.New("cache: session boundaries: want a non-nil func")
		}
		c.boundary = next
		return nil
	}
}

// DefaultLocalTTL is how long a decoded local copy of a value read from
// a shared store (Redis) is used without asking the store again, when
// [WithLocalCopies] is not given.
const DefaultLocalTTL = time.Second

// DefaultLocalEntries bounds the local copies in front of a shared store
// when [WithLocalCopies] is not given.
const DefaultLocalEntries = 10_000

// WithLocalCopies sizes the in-process copies kept in front of a shared
// store such as [Redis]: at most entries decoded values (default 10,000),
// each used for at most ttl (default [DefaultLocalTTL], 1 s) and never
// past its own freshness end. A hit on a local copy costs no Redis round
// trip and no JSON decode; the price is that a value another replica
// wrote to Redis is seen here up to ttl later — replicas agree within
// that window, and TTL expiry and the close invalidation are still exact
// because a copy never outlives its fresh_until. ttl 0 turns local copies
// off (every read goes to the store). [New] puts these copies, as a
// [TieredStore], in front of a store that has no in-process tier of its
// own; it has no effect with a [Memory] store, which keeps decoded values
// itself, or a [TieredStore], which has its local copies already.
func WithLocalCopies(entries int, ttl time.Duration) Option {
	return func(c *Cache) error {
		if entries < 1 || ttl < 0 {
			return fmt.Errorf("cache: local copies %d for %s: want entries >= 1 and ttl >= 0", entries, ttl)
		}
		c.localEntries, c.localTTL = entries, ttl
		return nil
	}
}

// WithTickSize sets the tick rule for ordinary shares (the wiring passes
// krx.TickSize), which [Cache.PutTrade] applies when a trade moves a
// quote's price into another tick band. Without it a written-through
// quote keeps the tick of its base quote.
func WithTickSize(tick func(price int64) int64) Option {
	return func(c *Cache) error { c.tickSize = tick; return nil }
}
