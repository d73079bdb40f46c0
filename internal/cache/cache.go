package cache

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/kisfeed/kisfeed"
)

// The kinds of cached values, as passed to an [Observer].
const (
	KindPrice     = "price"
	KindOrderBook = "orderbook"
	KindCandles   = "candles"
	KindInfo      = "info"
	KindUniverse  = "universe"
	KindCalendar  = "calendar"
)

// Observer is told the outcome of every lookup, per kind (KindPrice, ...):
// a fresh hit, a miss answered by the upstream (or failed), or a stale copy
// served. A metrics adapter implements it; calls must be cheap and safe for
// concurrent use.
type Observer interface {
	Hit(kind string)
	Miss(kind string)
	Stale(kind string)
}

type nopObserver struct{}

func (nopObserver) Hit(string)   {}
func (nopObserver) Miss(string)  {}
func (nopObserver) Stale(string) {}

// TTLs are the freshness periods per kind. Zero fields take the defaults
// of [DefaultTTLs].
type TTLs struct {
	Price     time.Duration // quotes
	OrderBook time.Duration
	Candles   time.Duration
	Info      time.Duration // stock info, the universe and the calendar
}

// DefaultTTLs are the TTLs when none are configured: the CACHE_*_TTL
// defaults.
var DefaultTTLs = TTLs{Price: 30 * time.Minute, OrderBook: 10 * time.Second, Candles: time.Hour, Info: 24 * time.Hour}

// DefaultStaleMaxAge is how long a value is kept for stale serving when
// [WithStaleMaxAge] is not given.
const DefaultStaleMaxAge = 72 * time.Hour

// Cache is the caching [kisfeed.Source] decorator. Build it with [New].
type Cache struct {
	up            kisfeed.Source
	clock         kisfeed.Clock // wall: TTLs and ages; market: session boundaries
	obs           Observer
	ttl           TTLs
	staleMaxAge   time.Duration
	prefix        string
	flightTimeout time.Duration
	staleBudget   time.Duration             // 0 = wait for the flight
	health        upstreamMark              // nil = always available
	configErr     func(error) bool          // errors passed through as they are
	boundary      func(time.Time) time.Time // next session boundary; nil = none

	// store is the one Store values are kept in. hot is its in-process
	// tier, which fresh hits are read from before any flight, decoded:
	// the store itself when it is a *Memory, else the local copies of
	// tier, a TieredStore in front of a shared store (Redis).
	store        Store
	hot          *Memory
	tier         *TieredStore // nil: hot is the whole store
	localTTL     time.Duration
	localEntries int

	flight singleflight.Group
	// stale holds, while a flight runs, the expired copy it read from a
	// shared store (key → *envelope[T]), for callers whose stale budget
	// passes: they answer from it without a store round trip of their own
	// (they make one only when the flight has not read the store yet).
	stale sync.Map

	ref *refresher // refresh-ahead of quotes; nil = off

	// wlocks serialise writes of a code's price and book (codeLock): the
	// write-through's check-and-write and the read path's saves.
	wlocks   [writeLocks]sync.Mutex
	tickSize func(price int64) int64 // WithTickSize; nil = keep the base's tick
}

var _ kisfeed.Source = (*Cache)(nil)

// New returns a Cache in front of upstream, keeping values in store.
func New(upstream kisfeed.Source, store Store, opts ...Option) (*Cache, error) {
	if upstream == nil || store == nil {
		return nil, errors.New("cache: upstream and store are required")
	}
	c := &Cache{
		up: upstream, store: store,
		obs: nopObserver{}, ttl: DefaultTTLs, staleMaxAge: DefaultStaleMaxAge,
		flightTimeout: 30 * time.Second, staleBudget: DefaultStaleBudget, configErr: func(error) bool { return false },
		localTTL: DefaultLocalTTL, localEntries: DefaultLocalEntries,
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	c.hot, c.tier = localTier(store)
	if c.hot == nil {
		// A shared store: decoded local copies go in front of it.
		c.tier = Tiered(NewMemory(c.localEntries, c.now), store, c.localTTL)
		c.store, c.hot = c.tier, c.tier.local
	}
	if c.ref != nil {
		c.startRefresh()
	}
	return c, nil
}

// envelope is the stored form of a value: JSON in a shared store, the
// decoded *envelope itself in a [Memory]. A stored envelope is never
// modified: readers copy its Value.
type envelope[T any] struct {
	FetchedAt  time.Time `json:"fetched_at"`
	FreshUntil time.Time `json:"fresh_until"`
	Value      T         `json:"value"`
}

func (e *envelope[T]) encode() ([]byte, error) { return json.Marshal(e) }

// Keys.

func (c *Cache) stockKey(code kisfeed.Code, what string) string {
	return c.prefix + "stock:" + code.String() + ":" + what
}

// appendStockKey appends stockKey(code, what) to b, so the hit path can
// build the key on its stack.
func (c *Cache) appendStockKey(b []byte, code kisfeed.Code, what string) []byte {
	b = append(b, c.prefix...)
	b = append(b, "stock:"...)
	b = append(b, code.String()...)
	b = append(b, ':')
	return append(b, what...)
}

func ymd(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(kisfeed.KST).Format("20060102")
}

// CandlesKey returns the key of a candle query (without the prefix):
// stock:{code}:candles:{interval}:{from}:{to}:{adj}.
func CandlesKey(q kisfeed.CandleQuery) string {
	adj := "adj"
	if q.Unadjusted {
		adj = "raw"
	}
	return "stock:" + q.Code.String() + ":candles:" + string(q.Interval) + ":" + ymd(q.From) + ":" + ymd(q.To) + ":" + adj
}

// Store access.

// get reads keys from the store; a failing store reads as absent.
func (c *Cache) get(ctx context.Context, keys ...string) [][]byte {
	vals, err := c.store.Get(ctx, keys...)
	if err != nil || len(vals) != len(keys) {
		return make([][]byte, len(keys))
	}
	return vals
}

// save stores values for the stale max age: decoded in every Memory
// involved, JSON-encoded in the other stores.
func (c *Cache) save(ctx context.Context, items ...saved) {
	if len(items) > 0 {
		_ = setEnvelopes(ctx, c.store, items, c.staleMaxAge)
	}
}

// keepLocal keeps a decoded local copy of a shared store's value (see
// [TieredStore]); nothing when the store is a Memory.
func (c *Cache) keepLocal(key string, env encoder, until, now time.Time) {
	if c.tier != nil {
		c.tier.keep(key, env, until, now)
	}
}

// Freshness.

// freshUntil is the end of freshness of a value fetched at fetched: its
// TTL, capped for intraday values at the next session boundary, which is
// found on the market clock and applied as a duration from fetched.
func (c *Cache) freshUntil(fetched time.Time, ttl time.Duration, intraday bool) time.Time {
	until := fetched.Add(ttl)
	if intraday && c.boundary != nil {
		mnow := fetched
		if c.clock.Market != nil {
			mnow = c.clock.Market()
		}
		if left := c.boundary(mnow).Sub(mnow); left < ttl {
			until = fetched.Add(left)
		}
	}
	return until
}

// marketNow is the market clock's now (the freshness clock by default).
func (c *Cache) marketNow() time.Time { return c.clock.MarketNow() }

// now is the wall clock's now.
func (c *Cache) now() time.Time { return c.clock.Now() }
